//! The reference vectors (docs/hashing.md#reference-vectors), each a named test: hand-checked
//! buckets (V1–V26), the reference's test-fixture chains, and end-to-end payloads (E1–E6).

use serde_json::{Map, Value, json};

use super::{Bucket, Chain, build_chain, hash_input, node_hash};
use crate::llm::{ContentBlock, Rules};
use crate::wire::decode_turn;

/// The vectors are the reference's at f237b6e.
const OLD: Rules = Rules::TAPES_F237B6E;

/// `B(role, blocks)`: model and provider are arbitrary because they are not hashed.
fn b(role: &str, blocks: Vec<ContentBlock>) -> Bucket {
    Bucket {
        kind: "message".into(),
        role: role.into(),
        content: Some(blocks),
        model: "any-model".into(),
        provider: "any-provider".into(),
        agent_name: String::new(),
    }
}

fn text(t: &str) -> ContentBlock {
    ContentBlock::text(t)
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn tool_use(id: &str, name: &str, input: Option<Value>) -> ContentBlock {
    ContentBlock {
        kind: "tool_use".into(),
        tool_use_id: id.into(),
        tool_name: name.into(),
        tool_input: input.map(object),
        ..ContentBlock::default()
    }
}

fn root(bucket: &Bucket) -> String {
    node_hash(None, bucket, &OLD)
}

fn canon(parent: Option<&str>, bucket: &Bucket) -> String {
    String::from_utf8(hash_input(parent, bucket, &OLD)).unwrap()
}

const V1: &str = "7d3a447a18e3f3a102967dde0d802d512f69383907c3d32a48d10058a1f55950";

#[test]
fn v1_text_root() {
    let bucket = b("user", vec![text("hello world")]);
    assert_eq!(
        canon(None, &bucket),
        r#"{"content":{"content":[{"is_error":false,"text":"hello world","type":"text"}],"role":"user","type":"message"},"parent":""}"#
    );
    assert_eq!(root(&bucket), V1);
}

#[test]
fn v2_child_of_v1() {
    let bucket = b("user", vec![text("child content")]);
    assert!(canon(Some(V1), &bucket).ends_with(&format!(r#""parent":"{V1}"}}"#)));
    assert_eq!(
        node_hash(Some(V1), &bucket, &OLD),
        "4e06907d81abb317d2eaaeb8942fd00356f5f9eaa4cbeb79250a9acc6352b9d5"
    );
}

#[test]
fn v3_v4_role_is_hashed() {
    assert_eq!(
        root(&b("user", vec![text("Hi")])),
        "a5caf5b21c94f79d795db3115c0361ef168f86d6940790e7327e42afedb965e9"
    );
    assert_eq!(
        root(&b("assistant", vec![text("Hi")])),
        "40c444620f5decfb189efa723f35455f869ca7cea090bc2eac423cb84eaf02ec"
    );
}

const EMPTY_ASSISTANT: &str = "aa8fef63de5fe87c659eff502939a91a8c345215d79275022ad94b57967f34c5";

#[test]
fn v5_nil_and_empty_content_hash_alike() {
    let mut nil = b("assistant", vec![]);
    nil.content = None;
    let empty = b("assistant", vec![]);
    assert_eq!(
        canon(None, &nil),
        r#"{"content":{"content":[],"role":"assistant","type":"message"},"parent":""}"#
    );
    assert_eq!(root(&nil), EMPTY_ASSISTANT);
    assert_eq!(root(&empty), EMPTY_ASSISTANT);
}

#[test]
fn v7_whitespace_only_text_drops_the_block() {
    let bucket = b("user", vec![text(" \n\t ")]);
    assert!(canon(None, &bucket).contains(r#""content":[]"#));
    assert_eq!(
        root(&bucket),
        "613442d3481093478e32aaab30668596b839c250a01a4f5584bdd3cddb9d84c0"
    );
}

#[test]
fn v8_empty_text_block_is_kept() {
    let bucket = b(
        "user",
        vec![ContentBlock {
            kind: "text".into(),
            ..ContentBlock::default()
        }],
    );
    assert!(canon(None, &bucket).contains(r#"[{"is_error":false,"type":"text"}]"#));
    assert_eq!(
        root(&bucket),
        "2196ae14d637af5579a03e7e169bf2e0e4e5a37f14408a2c32e431218320db19"
    );
}

#[test]
fn v9_empty_block_keeps_its_empty_type() {
    let bucket = b("user", vec![ContentBlock::default()]);
    assert!(canon(None, &bucket).contains(r#"[{"is_error":false,"type":""}]"#));
    assert_eq!(
        root(&bucket),
        "93fb183bf87c89db6004a5c2b34687832e91e908b72e61394a40f53e125c79db"
    );
}

#[test]
fn v10_zero_values_are_pruned_from_tool_input() {
    let input = json!({
        "file_path": "/tmp/x.md", "replace_all": false, "n": 0, "s": "", "nil": null,
        "arr": [], "arr2": [false, "", null],
        "nested": {"on": true, "off": false, "deep": {"z": 0}}, "empty": {}
    });
    let bucket = b("assistant", vec![tool_use("toolu_1", "Edit", Some(input))]);
    assert!(canon(None, &bucket).contains(
        r#""tool_input":{"arr2":[false,"",null],"file_path":"/tmp/x.md","nested":{"on":true}}"#
    ));
    assert_eq!(
        root(&bucket),
        "74263c201ff774bb6db8f38a8c48344645edb74f0df4c2825558481e93d3e1dc"
    );
}

#[test]
fn v11_v12_all_zero_input_hashes_as_no_input() {
    const WANT: &str = "18a5cabf421b0cbd5aa72eb64aaab54a54bf3baad2d71dbb371d696c0dc6c63c";
    let with = b(
        "assistant",
        vec![tool_use("t", "X", Some(json!({"a": false})))],
    );
    let without = b("assistant", vec![tool_use("t", "X", None)]);
    assert!(
        canon(None, &with).contains(
            r#"[{"is_error":false,"tool_name":"X","tool_use_id":"t","type":"tool_use"}]"#
        )
    );
    assert_eq!(root(&with), WANT);
    assert_eq!(root(&without), WANT);
}

#[test]
fn v13_numbers_in_ecmascript_form() {
    let input: Value = serde_json::from_str(
        r#"{"a":1,"b":1.5,"c":1e21,"d":1e-7,"e":1.2345678901234568e29,"f":2,"g":0.1,"h":-3,"i":9007199254740993,"j":1e20,"k":5e-324}"#,
    )
    .unwrap();
    let bucket = b("assistant", vec![tool_use("", "N", Some(input))]);
    assert!(canon(None, &bucket).contains(
        r#""tool_input":{"a":1,"b":1.5,"c":1e+21,"d":1e-7,"e":1.2345678901234568e+29,"f":2,"g":0.1,"h":-3,"i":9007199254740992,"j":100000000000000000000,"k":5e-324}"#
    ));
    assert_eq!(
        root(&bucket),
        "843f11b4f4f272d0f0789454ebef135b316e6f5b638d9baa98ba8820c9d1a171"
    );
}

#[test]
fn v14_string_escaping() {
    let t = "<a href=\"x\">&amp;</a> \u{2028} \u{2029} \u{7f} \u{1} \t tab é 😀 \\ /";
    let bucket = b("user", vec![text(t)]);
    assert!(canon(None, &bucket).contains(
        "\"text\":\"<a href=\\\"x\\\">&amp;</a> \u{2028} \u{2029} \u{7f} \\u0001 \\t tab é 😀 \\\\ /\""
    ));
    assert_eq!(
        root(&bucket),
        "3cf20eae84259ca8234f8c62d58b09e6863a9669514b980a05851f4b0011b401"
    );
}

#[test]
fn v15_keys_sort_by_utf16_code_units() {
    let input = json!({"b":"1","a":"2","A":"3","é":"4","😀":"5","｡":"6","aa":"7","_":"8","1":"9"});
    let bucket = b("assistant", vec![tool_use("", "K", Some(input))]);
    assert!(canon(None, &bucket).contains(
        r#""tool_input":{"1":"9","A":"3","_":"8","a":"2","aa":"7","b":"1","é":"4","😀":"5","｡":"6"}"#
    ));
    assert_eq!(
        root(&bucket),
        "e54002a9c8b5b5e9314cf86e421c632a4d6658b11992713fa92097a9d1e4df80"
    );
}

#[test]
fn v16_thinking_is_not_normalised_and_its_signature_is_dropped() {
    let bucket = b(
        "assistant",
        vec![ContentBlock {
            kind: "thinking".into(),
            thinking: "  let me\n\n think  ".into(),
            thinking_signature: "sig".into(),
            ..ContentBlock::default()
        }],
    );
    assert!(
        canon(None, &bucket).contains(
            r#"[{"is_error":false,"thinking":"  let me\n\n think  ","type":"thinking"}]"#
        )
    );
    assert_eq!(
        root(&bucket),
        "b38aa233841984119570b76777c030478a9b3135f86cf4aec2c84ad9b76ae3f9"
    );
}

#[test]
fn v17_tool_result_output_is_not_normalised() {
    let bucket = b(
        "user",
        vec![ContentBlock {
            kind: "tool_result".into(),
            tool_result_id: "toolu_1".into(),
            tool_output: "  out \n\n put ".into(),
            is_error: true,
            ..ContentBlock::default()
        }],
    );
    assert!(canon(None, &bucket).contains(
        r#"[{"is_error":true,"tool_output":"  out \n\n put ","tool_result_id":"toolu_1","type":"tool_result"}]"#
    ));
    assert_eq!(
        root(&bucket),
        "57ea195912f419c254922d5dec3c85d89fce2bbc868e7607df9674695e942fd2"
    );
}

#[test]
fn v18_image_fields_are_hashed_verbatim() {
    let bucket = b(
        "user",
        vec![ContentBlock {
            kind: "image".into(),
            image_url: "https://e/x.png".into(),
            image_base64: "AAAA".into(),
            media_type: "image/png".into(),
            ..ContentBlock::default()
        }],
    );
    assert_eq!(
        root(&bucket),
        "1a84fc0b2556046049514981387cb7ed6175cc4b9f383a8cd9435f19080fb2f7"
    );
}

#[test]
fn v19_system_reminder_and_whitespace_drift() {
    let bucket = b(
        "user",
        vec![text(
            "<system-reminder>\nx\n</system-reminder>\n\nHey Claude!  \r\n\r\n\r\nline2\t \n",
        )],
    );
    assert!(canon(None, &bucket).contains(r#""text":"Hey Claude!\nline2""#));
    assert_eq!(
        root(&bucket),
        "b6f7406410f61120302c389c083d807d24348def94ce0d670b1a0b31d8109e5e"
    );
}

#[test]
fn v20_nested_same_tag_is_non_greedy() {
    let bucket = b(
        "user",
        vec![text(
            "<system-reminder>a<system-reminder>b</system-reminder>c</system-reminder>d",
        )],
    );
    assert!(canon(None, &bucket).contains(r#""text":"c</system-reminder>d""#));
    assert_eq!(
        root(&bucket),
        "12e71fb524ae8bec6c171faa3a015a114d0bd394727a4d615013a7002d212a2a"
    );
}

#[test]
fn v21_unterminated_tag_swallows_the_rest() {
    let bucket = b("user", vec![text("keep this\n<command-name>never closes")]);
    assert!(canon(None, &bucket).contains(r#""text":"keep this""#));
    assert_eq!(
        root(&bucket),
        "9abd95891b1f73c3dcbac2d71900587f8afda730d8a68abd102374518550830a"
    );
}

#[test]
fn v22_unicode_whitespace_is_trimmed_but_not_inside() {
    let bucket = b("user", vec![text("\u{a0}a\rb \u{3000}\n\n\u{2003}c\u{a0}")]);
    assert!(canon(None, &bucket).contains("\"text\":\"a\\rb \u{3000}\\n\u{2003}c\""));
    assert_eq!(
        root(&bucket),
        "91141f765067e43ac04e6b821c92f2e8b9b4081390f4742546db6f4c9f28d38d"
    );
}

#[test]
fn v23_block_emptied_by_projection_is_dropped_with_its_input() {
    let bucket = b(
        "assistant",
        vec![ContentBlock {
            kind: "text".into(),
            text: "<system-reminder>x</system-reminder>".into(),
            tool_input: Some(object(json!({"a": 1}))),
            ..ContentBlock::default()
        }],
    );
    assert_eq!(root(&bucket), EMPTY_ASSISTANT);
}

#[test]
fn v24_tags_with_other_case_or_attributes_stay() {
    let t = "<System-Reminder>a</System-Reminder><system-reminder foo=1>b</system-reminder>";
    let bucket = b("user", vec![text(t)]);
    assert!(canon(None, &bucket).contains(&format!("\"text\":\"{}\"", t.replace('"', "\\\""))));
    assert_eq!(
        root(&bucket),
        "c7a329592a4d81323bc366fedeefe1928f0dee983c70208a974635ebdd7138ef"
    );
}

#[test]
fn v25_integers_hash_as_doubles() {
    let bucket = b(
        "assistant",
        vec![tool_use("", "I", Some(json!({"count": 3_i64, "i": 7})))],
    );
    assert!(canon(None, &bucket).contains(r#""tool_input":{"count":3,"i":7}"#));
    assert_eq!(
        root(&bucket),
        "a26242b852b0a3b9b3ad0fab589798af6c3b7b877ca1f99f836243f74992ba6e"
    );
}

#[test]
fn v26_arrays_are_not_pruned() {
    let bucket = b(
        "assistant",
        vec![tool_use(
            "",
            "A",
            Some(json!({"edits": [{"x": false, "y": ""}]})),
        )],
    );
    assert!(canon(None, &bucket).contains(r#""tool_input":{"edits":[{"x":false,"y":""}]}"#));
    assert_eq!(
        root(&bucket),
        "177e4f5fb1d4164e5291dadfe3da94e52e3ab485338f6f20237a043bb817e152"
    );
}

// ── Test-fixture chains of the reference (model "test-model", provider "test-provider") ──

fn fixture(role: &str, t: &str) -> Bucket {
    Bucket {
        model: "test-model".into(),
        provider: "test-provider".into(),
        ..b(role, vec![text(t)])
    }
}

/// Hashes a linear chain of `(role, text)` and returns the hashes, root first.
fn chain_hashes(messages: &[(&str, &str)]) -> Vec<String> {
    let mut parent: Option<String> = None;
    messages
        .iter()
        .map(|(role, t)| {
            let hash = node_hash(parent.as_deref(), &fixture(role, t), &OLD);
            parent = Some(hash.clone());
            hash
        })
        .collect()
}

fn session_fixture(t: &str) -> Vec<String> {
    chain_hashes(&[("user", t), ("assistant", &format!("ok: {t}"))])
}

#[test]
fn fixture_session_happy_path() {
    let hashes = session_fixture("happy path");
    assert_eq!(
        hashes,
        [
            "aceb0ccf6999d03ecf6fb665af691eb2b711806d7ca727950020d715ec34b6da",
            "105dee421b5d67a6dfa007038e79442cacfa673170ae0907193315b4e0bc0304"
        ]
    );
    assert_eq!(&hashes[0][..16], "aceb0ccf6999d03e");
}

#[test]
fn fixture_session_synthetic() {
    let hashes = session_fixture("synthetic");
    assert_eq!(
        hashes,
        [
            "5e588df1762a5fb5b468aca79c29bcde66fd08c7ca19cbdab38c13eb04194a12",
            "08b3d72618d14b21b7f4c510abc2e74756fd9dc82a2c6da5d5fe864064f25429"
        ]
    );
    assert_eq!(&hashes[0][..16], "5e588df1762a5fb5");
}

#[test]
fn fixture_session_retry_me() {
    assert_eq!(
        session_fixture("retry me"),
        [
            "fce80b3781d37b7e040369dd345ba00c4c96dc533ab5069433b9907db5b48385",
            "acdcbfd177506fb42fa1cad273023c5a0e0982f1ede441c980b7b685eba9b8c2"
        ]
    );
}

#[test]
fn fixture_shared_content() {
    assert_eq!(
        chain_hashes(&[("user", "shared content")]),
        ["c880786ece077ffa3763576d7f615b78aabf73a3a0029de94637f6b3febb31a5"]
    );
}

#[test]
fn fixture_pool_multi_turn() {
    assert_eq!(
        chain_hashes(&[
            ("system", "You are a helpful assistant."),
            ("user", "What is 2+2?"),
            ("assistant", "2+2 equals 4."),
            ("user", "And what is 3+3?"),
            ("assistant", "3+3 equals 6."),
        ]),
        [
            "d343a7022afb7d39f668eac98c5a3e645b7fe07cdb7b15662203a1bf8c26074b",
            "5f7204c208f41bec044872f90fd824896b887d3813b3075a2f99e65d7d0e495b",
            "a089113ec2f97ac391f216bd90719f889179a1a7f5894fcf8b5f40c97925281d",
            "936c94a30623afbcade0e9c53691a082dec355850087da3471ef392861bc8fd7",
            "fefbd9e83a954631a484af75295165d52e12a57b6a4a2dafc52bc99dda7973ee"
        ]
    );
}

#[test]
fn fixture_pool_session_sample_job() {
    assert_eq!(
        chain_hashes(&[
            ("system", "you are helpful"),
            ("user", "ping"),
            ("assistant", "pong")
        ]),
        [
            "b58e4092e93948e37df9ef8b34611079f8e6b9b9634c918e26a9ca7c4f717805",
            "0709995c4a700f05d8b9bdb8db9fc3e9704821365ae12094f16e498fbd4e1cef",
            "796f111ff082fc70e52dc1f8879a9f3bb4d2cf62f23e2ed21b65711e30de77db"
        ]
    );
}

// ── End to end: HTTP payload → provider parse → chain ──

fn chain(payload: Value) -> Chain {
    let body = serde_json::to_vec(&payload).unwrap();
    let turn = decode_turn(&body).unwrap();
    build_chain(turn).unwrap()
}

fn hashes(chain: &Chain) -> Vec<&str> {
    chain.nodes.iter().map(|n| n.hash.as_str()).collect()
}

fn response(t: &str) -> Value {
    json!({
        "model": "m", "done": true, "stop_reason": "stop",
        "message": {"role": "assistant", "content": [{"type": "text", "text": t}]}
    })
}

#[test]
fn e1_openai_hurl_turn() {
    let c = chain(json!({
        "provider": "openai", "agent_name": "e2e-test",
        "request": {"model": "gpt-4", "messages": [{"role": "user", "content": "What is content addressing?"}]},
        "response": response("Content addressing is a method of storing and retrieving data based on the content itself, rather than its location."),
    }));
    assert_eq!(
        hashes(&c),
        [
            "7dfcacd63916fcb36b1ad02714c7423fc6b1a001ddf8c4b2f666981d8a8be378",
            "ff304c291cf870d66d1d20a4fd0a02da43ff3366390202595b156cfb2dc657dc"
        ]
    );
}

#[test]
fn e2_anthropic_hurl_turn_system_prompt_not_hashed() {
    let c = chain(json!({
        "provider": "anthropic", "agent_name": "e2e-test",
        "request": {
            "model": "claude-sonnet-4-20250514", "max_tokens": 1024,
            "system": "You are a helpful assistant.",
            "messages": [{"role": "user", "content": "Explain Merkle DAGs in one sentence."}]
        },
        "response": response("A Merkle DAG is a directed acyclic graph where each node is identified by a cryptographic hash of its content and links."),
    }));
    assert_eq!(
        hashes(&c),
        [
            "d5309d1954f5cbf613addb5520a4f4c8be238b8f7431acf193389a037cebffc9",
            "8f2d867845681e22f5fef1cd0a2b744fd8807606174f1e9a36c6e80e5046aeb0"
        ]
    );
}

#[test]
fn e3_ollama_hurl_turn() {
    let c = chain(json!({
        "provider": "ollama", "agent_name": "e2e-test",
        "request": {"model": "llama3", "stream": false, "messages": [{"role": "user", "content": "Hello"}]},
        "response": response("Hi there! How can I help you?"),
    }));
    assert_eq!(
        hashes(&c),
        [
            "781233c52618cb1b5cc432f92585cb1881c1883b71dcc3317c9f3b3feb57f7ff",
            "69e1bc357a5bdd23c3415538bddd65566803c1af8e743aec6c145bd1d7c46c5d"
        ]
    );
}

#[test]
fn e4_anthropic_tool_round_trip() {
    let c = chain(json!({
        "provider": "anthropic",
        "request": {
            "model": "claude", "max_tokens": 64,
            "system": [{"type": "text", "text": "You are Claude Code."}],
            "messages": [
                {"role": "user", "content": "<system-reminder>today</system-reminder>\n\nEdit the file"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "SIG"},
                    {"type": "tool_use", "id": "toolu_01", "name": "Edit",
                     "input": {"file_path": "/x", "old_string": "a", "new_string": "b", "replace_all": false}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01", "is_error": false,
                     "content": [{"type": "text", "text": "ok"}, {"type": "image"}, {"type": "text", "text": "done"}]}
                ]}
            ]
        },
        "response": response("Done."),
    }));
    assert_eq!(
        hashes(&c),
        [
            "dd7ec737aa15e294110aeadc3a213f1f15dbdec94ceb9b2c945a35f4fe762369",
            "d4f39c76daa255b4affb336345acdbf871e8eaa6c61013c7ea1e8de17d841d29",
            "e98053420f270c117db671b55601b3cb2fce70a11161ff7879487ff2bb3bb317",
            "3d5393169b3e49622d2d40ff3570dc8d9207c2c0b74ed26052aacfafad69e1d9"
        ]
    );
    let assistant = &c.nodes[1];
    assert!(
        canon(assistant.parent_hash.as_deref(), &assistant.bucket).contains(
            r#"[{"is_error":false,"type":"thinking"},{"is_error":false,"tool_input":{"file_path":"/x","new_string":"b","old_string":"a"},"tool_name":"Edit","tool_use_id":"toolu_01","type":"tool_use"}]"#
        )
    );
    assert_eq!(
        c.nodes[2].bucket.content.as_ref().unwrap()[0].tool_output,
        "ok\ndone"
    );
}

#[test]
fn e5_openai_tools_and_images() {
    let c = chain(json!({
        "provider": "openai",
        "request": {"model": "gpt-4o", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "https://e/x.png", "detail": "high"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"location\":\"NYC\",\"units\":null}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
        ]},
        "response": response("It is sunny."),
    }));
    assert_eq!(
        hashes(&c),
        [
            "b940ae77fb2e4407a9ea49b716c2b95f3e94797a4cdc16af2fa06338450fdf03",
            "0e514412a619e571dd9d56eac253ebf511063e1f950d09fc27cc0233a4359108",
            "bd58c45b252df1455036de65110bc5a2bf635401d030c9b6c39e9321360162e7",
            "a562726c29d5025f36b7f7f505a2d010a7959578a99967589d972e9f49b71d34",
            "5e26484e6e383e85f29a1ff27a16aa3c8e43b8d06bf2b9d8d4b0a9dde476cd82"
        ]
    );
}

#[test]
fn e6_ollama_images_and_tool_calls() {
    let c = chain(json!({
        "provider": "ollama",
        "request": {"model": "llama3", "messages": [
            {"role": "user", "content": "weather?", "images": ["AAA"]},
            {"role": "assistant", "content": "", "tool_calls": [
                {"function": {"name": "get_weather", "arguments": {"city": "Tokyo", "n": 2}}}
            ]},
            {"role": "tool", "content": "sunny"}
        ]},
        "response": response("Sunny."),
    }));
    assert_eq!(
        hashes(&c),
        [
            "54b81faf5fcd42dcb7c0a75a6d848649ea1515412c1733076be6a9489d3a830b",
            "3dbc2d596e0ed4733c2bee948bec0da1ea57c0fd465ea689c14a3dbaad4c949c",
            "a9fdc44e8d482c9301e8367748ef8d0e19b00e761c80e2ce6150ee76a29beac7",
            "ae8e7087ccccbdfe13ecf7b9edbe9e102c75b8f49bbab1d7679bae3a466c2594"
        ]
    );
}
