//! Payloads decoded as the reference decodes them give its chains, or its errors: the checks
//! that need both the decoder and the chain builder.

use super::build_chain;
use crate::llm::ContentBlock;
use crate::wire::{TurnError, decode_turn};

fn chain_error(body: &str) -> String {
    let payload = decode_turn(body.as_bytes()).expect("the body decodes");
    build_chain(payload).expect_err("no chain").to_string()
}

#[test]
fn invalid_utf8_hashes_as_the_replacement_characters_go_puts_in_its_place() {
    let body = |text: &[u8]| {
        let mut body =
            br#"{"provider":"anthropic","request":{"messages":[{"role":"user","content":""#
                .to_vec();
        body.extend_from_slice(text);
        body.extend_from_slice(
            br#""}]},"response":{"message":{"role":"assistant","content":[{"type":"text","text":""#,
        );
        body.extend_from_slice(text);
        body.extend_from_slice(br#""}]}}}"#);
        body
    };
    let chain = |body: &[u8]| build_chain(decode_turn(body).unwrap()).unwrap();
    let invalid = chain(&body(b"caf\xe9 \xf0\x9f\x98!"));
    let replaced = chain(&body("caf\u{fffd} \u{fffd}\u{fffd}\u{fffd}!".as_bytes()));
    assert_eq!(invalid, replaced);
}

#[test]
fn key_case_folds_as_in_go_and_hashes_as_the_exact_spelling() {
    let exact = r#"{"provider":"openai","request":{"model":"m","messages":[
        {"role":"user","content":"hi"}]},"response":{"message":{"role":"assistant",
        "content":[{"type":"text","text":"yo"}]}}}"#;
    let folded = r#"{"PROVIDER":"openai","Request":{"MODEL":"m","Messages":[
        {"ROLE":"user","Content":"hi"}]},"RESPONSE":{"Message":{"Role":"assistant",
        "CONTENT":[{"TYPE":"text","Text":"yo"}]}}}"#;
    let chain = |body: &str| build_chain(decode_turn(body.as_bytes()).unwrap()).unwrap();
    assert_eq!(chain(folded), chain(exact));
}

#[test]
fn a_repeated_content_key_merges_into_the_earlier_blocks_as_in_go() {
    // The second `content` names no `type`: the block keeps the earlier one's, so the turn
    // is valid and its head holds the second text, as the reference stores it.
    let payload = decode_turn(
        br#"{"provider":"openai","request":{"messages":[]},"response":{"message":{
            "role":"assistant","content":[{"type":"text","text":"a"}],"content":[{"text":"b"}]}}}"#,
    )
    .unwrap();
    let chain = build_chain(payload).unwrap();
    assert_eq!(
        chain.head().bucket.content,
        Some(vec![ContentBlock::text("b")])
    );
}

#[test]
fn minus_zero_in_an_int_field_is_accepted_as_zero() {
    let payload = decode_turn(
        br#"{"provider":"ollama","request":{"options":{"num_predict":-0}},"response":{
            "usage":{"prompt_tokens":-0},"message":{"role":"assistant","content":[{"type":"text"}]}}}"#,
    )
    .unwrap();
    let chain = build_chain(payload).unwrap();
    assert_eq!(
        chain.head().usage.as_ref().map(|u| u.prompt_tokens),
        Some(0)
    );
}

#[test]
fn a_number_beyond_float64_in_a_request_any_value_is_unprocessable() {
    let body = r#"{"provider":"anthropic","request":{"messages":[{"role":"user","content":[
        {"type":"text","text":"hi","cache_control":{"ttl":1e400}}]}]},
        "response":{"message":{"role":"assistant","content":[{"type":"text","text":"yo"}]}}}"#;
    assert!(chain_error(body).starts_with("cannot parse request: "));
    // In the payload's own `any` values it fails the body itself.
    let body = r#"{"provider":"anthropic","response":{"message":{"role":"assistant",
        "content":[{"type":"tool_use","tool_input":{"n":1e400}}]}}}"#;
    assert!(decode_turn(body.as_bytes()).is_err());
}

#[test]
fn a_request_its_parser_refuses_gives_the_reference_error() {
    assert_eq!(
        chain_error(r#"{"provider":"anthropic","request":{"max_tokens":1.5}}"#),
        "cannot parse request: json: cannot unmarshal number 1.5 into Go struct field \
         anthropicRequest.max_tokens of type int"
    );
}

#[test]
fn a_provider_changed_after_the_request_decides_the_outcome() {
    let payload = decode_turn(br#"{"provider":"openai","request":{},"provider":"nope"}"#).unwrap();
    assert!(matches!(
        build_chain(payload),
        Err(TurnError::UnsupportedProvider(name)) if name == "nope"
    ));
}
