//! Payloads decoded as the reference decodes them give its chains, or its errors: the checks
//! that need both the decoder and the chain builder.

use super::build_chain;
use crate::wire::{TurnError, decode_turn};

fn chain_error(body: &str) -> String {
    let payload = decode_turn(body.as_bytes()).expect("the body decodes");
    build_chain(payload).expect_err("no chain").to_string()
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
