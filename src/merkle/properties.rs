//! Properties of the node hash over generated input, under every rule set: deterministic,
//! blind to JSON key order and to everything that is not hashed, and sensitive to everything
//! that is.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::{Bucket, Chain, build_chain_under, node_hash};
use crate::llm::{ContentBlock, RawJson, Rules};
use crate::wire::decode_turn_under;

const OLD: Rules = Rules::TAPES_F237B6E;
const NEW: Rules = Rules::TAPES_6EA4DFC;

fn short() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_é😀｡]{0,6}"
}

/// Text that is empty or keeps something after projection, so that no generated block is
/// dropped by it (a dropped block hides its other fields from the hash).
fn text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-z ]{0,8}[a-z0-9][a-z \\n]{0,8}"]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-1000i64..1000).prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        short().prop_map(Value::String),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(short(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn input() -> impl Strategy<Value = Option<Map<String, Value>>> {
    prop::option::of(
        prop::collection::btree_map(short(), value(), 0..5).prop_map(|m| m.into_iter().collect()),
    )
}

prop_compose! {
    fn block()(
        kind in prop_oneof![Just("text".to_owned()), Just("tool_use".to_owned()), short()],
        text in text(),
        strings in prop::collection::vec(short(), 9),
        tool_input in input(),
        is_error in any::<bool>(),
        content in prop::option::of(value()),
    ) -> ContentBlock {
        ContentBlock {
            kind,
            text,
            image_url: strings[0].clone(),
            image_base64: strings[1].clone(),
            media_type: strings[2].clone(),
            tool_use_id: strings[3].clone(),
            tool_name: strings[4].clone(),
            tool_input,
            tool_result_id: strings[5].clone(),
            tool_output: strings[6].clone(),
            is_error,
            thinking: strings[7].clone(),
            thinking_signature: strings[8].clone(),
            content: content.as_ref().map(RawJson::from_value),
        }
    }
}

prop_compose! {
    fn bucket()(
        role in prop_oneof![Just("user".to_owned()), Just("assistant".to_owned()), short()],
        content in prop::option::of(prop::collection::vec(block(), 0..4)),
        model in short(),
        provider in short(),
        agent_name in short(),
    ) -> Bucket {
        Bucket { kind: "message".into(), role, content, model, provider, agent_name }
    }
}

/// Writes JSON with every object's members in an order chosen by `order` (rotated by it
/// and reversed on odd values), so the same value can be sent with different key orders.
fn shuffled(v: &Value, order: usize) -> String {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            if !entries.is_empty() {
                let k = order % entries.len();
                entries.rotate_left(k);
            }
            if order % 2 == 1 {
                entries.reverse();
            }
            let members: Vec<String> = entries
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}:{}",
                        Value::String((*k).clone()),
                        shuffled(v, order / 2 + 1)
                    )
                })
                .collect();
            format!("{{{}}}", members.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(|v| shuffled(v, order)).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

fn chain_of(json: &str, rules: &Rules) -> Chain {
    let (payload, _) = decode_turn_under(json.as_bytes(), rules).unwrap();
    build_chain_under(payload, rules).unwrap()
}

fn hashes(chain: &Chain) -> Vec<String> {
    chain.nodes.iter().map(|n| n.hash.clone()).collect()
}

prop_compose! {
    /// An Anthropic turn with string and block content, tool inputs and results.
    fn anthropic_turn()(
        messages in prop::collection::vec(
            (prop_oneof![Just("user"), Just("assistant")], text(), short(), prop::collection::btree_map(short(), value(), 0..4)),
            1..5,
        ),
        reply in "[a-z]{1,10}",
    ) -> Value {
        let messages: Vec<Value> = messages.into_iter().map(|(role, text, name, input)| {
            json!({"role": role, "content": [
                {"type": "text", "text": text, "cache_control": {"type": "ephemeral"}},
                {"type": "tool_use", "id": format!("toolu_{name}"), "name": name, "input": input},
                {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": text}]},
                {"type": "web_search_tool_result", "tool_use_id": "s", "content": [input]}
            ]})
        }).collect();
        json!({
            "provider": "anthropic", "agent_name": "agent",
            "request": {"model": "claude", "max_tokens": 100, "system": "sys", "messages": messages},
            "response": {"model": "claude", "done": true, "stop_reason": "end_turn",
                "usage": {"prompt_tokens": 1, "completion_tokens": 2},
                "message": {"role": "assistant", "content": [{"type": "text", "text": reply}]}}
        })
    }
}

prop_compose! {
    /// An OpenAI Responses turn: message items, function calls and their (string) outputs,
    /// and items of unknown types, which are kept raw.
    fn responses_turn()(
        items in prop::collection::vec(
            (0usize..4, text(), short(), prop::collection::btree_map(short(), value(), 0..4)),
            1..5,
        ),
        reply in "[a-z]{1,10}",
    ) -> Value {
        let items: Vec<Value> = items.into_iter().map(|(which, text, name, object)| match which {
            0 => json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}),
            1 => json!({"type": "function_call", "call_id": name, "name": name,
                        "arguments": Value::Object(object.into_iter().collect()).to_string()}),
            2 => json!({"type": "function_call_output", "call_id": name, "output": text}),
            _ => json!({"type": "web_search_call", "id": name, "action": object}),
        }).collect();
        json!({
            "provider": "openai", "agent_name": "agent",
            "request": {"model": "gpt", "instructions": "sys", "input": items},
            "response": {"model": "gpt", "done": true, "stop_reason": "end_turn",
                "message": {"role": "assistant", "content": [{"type": "text", "text": reply}]}}
        })
    }
}

/// A banner the later rules take for injected context.
const BANNER: &str = "# MCP Server Instructions\nuse the tools";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn hashing_is_deterministic(b in bucket(), parent in prop::option::of("[0-9a-f]{64}")) {
        for rules in Rules::ALL {
            prop_assert_eq!(node_hash(parent.as_deref(), &b, &rules), node_hash(parent.as_deref(), &b.clone(), &rules));
        }
    }

    #[test]
    fn chains_do_not_depend_on_key_order(turn in anthropic_turn(), a in 0usize..64, b in 0usize..64) {
        for rules in Rules::ALL {
            let first = chain_of(&shuffled(&turn, a), &rules);
            let second = chain_of(&shuffled(&turn, b), &rules);
            prop_assert_eq!(hashes(&first), hashes(&second));
        }
    }

    #[test]
    fn responses_chains_do_not_depend_on_key_order(turn in responses_turn(), a in 0usize..64, b in 0usize..64) {
        // Raw items are stored as sent but hashed canonically.
        let first = chain_of(&shuffled(&turn, a), &NEW);
        let second = chain_of(&shuffled(&turn, b), &NEW);
        prop_assert_eq!(hashes(&first), hashes(&second));
    }

    #[test]
    fn unhashed_fields_do_not_matter(b in bucket(), model in short(), provider in short(), agent in short()) {
        let other = Bucket { model, provider, agent_name: agent, ..b.clone() };
        for rules in Rules::ALL {
            prop_assert_eq!(node_hash(None, &b, &rules), node_hash(None, &other, &rules));
        }
        // The earlier rules know no raw content.
        let mut without = b.clone();
        for block in without.content.iter_mut().flatten() {
            block.content = None;
        }
        prop_assert_eq!(node_hash(None, &b, &OLD), node_hash(None, &without, &OLD));
    }

    #[test]
    fn turn_metadata_does_not_matter(
        turn in anthropic_turn(),
        model in "[a-z0-9-]{0,12}",
        agent in "[a-z]{0,8}",
        stop in "[a-z_]{0,8}",
        tokens in 0i64..1_000_000,
        stream in any::<bool>(),
        max_tokens in 0i64..100,
    ) {
        let mut other = turn.clone();
        other["agent_name"] = json!(agent);
        other["request"]["model"] = json!(model);
        other["request"]["stream"] = json!(stream);
        other["request"]["max_tokens"] = json!(max_tokens);
        other["request"]["system"] = json!("You are a security monitor");
        other["response"]["model"] = json!(model);
        other["response"]["stop_reason"] = json!(stop);
        other["response"]["usage"] = json!({"prompt_tokens": tokens, "total_tokens": tokens});
        for rules in Rules::ALL {
            prop_assert_eq!(
                hashes(&chain_of(&turn.to_string(), &rules)),
                hashes(&chain_of(&other.to_string(), &rules))
            );
        }
    }

    #[test]
    fn providers_agree_on_plain_text_conversations(
        messages in prop::collection::vec((prop_oneof![Just("user"), Just("assistant"), Just("system")], "[a-z][a-z ]{0,12}"), 0..5),
    ) {
        let msgs: Vec<Value> = messages.iter().map(|(r, t)| json!({"role": r, "content": t})).collect();
        let response = json!({"model": "m", "message": {"role": "assistant", "content": [{"type": "text", "text": "ok"}]}});
        for rules in Rules::ALL {
            let chains: Vec<Vec<String>> = ["anthropic", "openai", "ollama"].iter().map(|p| {
                let turn = json!({"provider": p, "request": {"model": p, "messages": msgs}, "response": response});
                hashes(&chain_of(&turn.to_string(), &rules))
            }).collect();
            prop_assert_eq!(&chains[0], &chains[1]);
            prop_assert_eq!(&chains[1], &chains[2]);
        }
        // The same conversation as Responses items, which may leave out `type`.
        if !msgs.is_empty() {
            let turn = json!({"provider": "openai", "request": {"model": "m", "input": msgs}, "response": response});
            let chat = json!({"provider": "openai", "request": {"model": "m", "messages": msgs}, "response": response});
            prop_assert_eq!(hashes(&chain_of(&turn.to_string(), &NEW)), hashes(&chain_of(&chat.to_string(), &NEW)));
        }
    }

    #[test]
    fn injected_context_leaves_the_spine_as_it_was(
        messages in prop::collection::vec((prop_oneof![Just("user"), Just("assistant")], "[a-z][a-z ]{0,12}"), 1..5),
        at in 0usize..5,
    ) {
        let msgs: Vec<Value> = messages.iter().map(|(r, t)| json!({"role": r, "content": t})).collect();
        let mut with = msgs.clone();
        let at = at.min(with.len());
        with.insert(at, json!({"role": "user", "content": BANNER}));
        let response = json!({"model": "m", "message": {"role": "assistant", "content": [{"type": "text", "text": "ok"}]}});
        let turn = |msgs: &[Value]| json!({"provider": "anthropic", "request": {"messages": msgs}, "response": response}).to_string();
        let mut spine = chain_of(&turn(&with), &NEW);
        let banner = spine.nodes.remove(at);
        prop_assert_eq!(banner.kind.map(|k| k.to_string()), Some("injected:mcp-instructions".to_owned()));
        prop_assert_eq!(hashes(&spine), hashes(&chain_of(&turn(&msgs), &NEW)));
        // The earlier rules chain it like any message.
        prop_assert_ne!(hashes(&chain_of(&turn(&with), &OLD))[at + 1..].to_vec(), hashes(&chain_of(&turn(&msgs), &OLD))[at..].to_vec());
    }

    #[test]
    fn every_hashed_field_changes_the_hash(
        b in bucket().prop_filter("needs a block", |b| b.content.as_ref().is_some_and(|c| !c.is_empty())),
        which in 0usize..16,
        parent in prop::option::of("[0-9a-f]{64}"),
    ) {
        for rules in Rules::ALL {
            let before = node_hash(parent.as_deref(), &b, &rules);
            let mut changed = b.clone();
            let mut parent_after = parent.clone();
            let blocks = changed.content.as_mut().unwrap();
            let block = &mut blocks[0];
            let mut hashed = true;
            match which {
                0 => changed.role.push('z'),
                1 => changed.kind.push('z'),
                2 => parent_after = Some(match parent { Some(_) => "0".repeat(64), None => "1".repeat(64) }),
                3 => block.kind.push('z'),
                4 => block.text.push('z'),
                5 => block.image_url.push('z'),
                6 => block.image_base64.push('z'),
                7 => block.media_type.push('z'),
                8 => block.tool_use_id.push('z'),
                9 => block.tool_name.push('z'),
                10 => { block.tool_input.get_or_insert_with(Map::new).insert("zz new key".into(), json!(1)); }
                11 => block.tool_result_id.push('z'),
                12 => block.tool_output.push('z'),
                13 => block.is_error = !block.is_error,
                14 => block.thinking.push('z'),
                _ => {
                    let old = block.content.as_ref().map(|raw| raw.get().to_owned());
                    block.content = Some(RawJson::from_value(&json!({"zz changed": old})));
                    hashed = rules.raw_content;
                }
            }
            let after = node_hash(parent_after.as_deref(), &changed, &rules);
            if hashed {
                prop_assert_ne!(before, after, "{}", rules.name);
            } else {
                prop_assert_eq!(before, after, "{}", rules.name);
            }
        }
    }
}
