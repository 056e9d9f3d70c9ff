//! Decoding turn and batch bodies, and what the decode had to repair.

use std::cell::Cell;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::DeserializeSeed;
use serde_json::error::Category;

use super::payload::{BatchPayload, TurnPayload, TurnSeed, TurnSlots};
use super::response::{ChatResponse, ResponseSlots};
use crate::gojson::{InPlace, decode_whole, repair_body};
use crate::llm::Rules;

/// A body that could not be decoded: 400 `invalid envelope: <text>`.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("{0}")]
    Json(String),
    #[error("empty batch")]
    EmptyBatch,
}

impl DecodeError {
    fn from_json(e: &serde_json::Error) -> Self {
        match e.classify() {
            // Go's text for a truncated or empty body.
            Category::Eof => DecodeError::Json("unexpected end of JSON input".to_owned()),
            _ => DecodeError::Json(e.to_string()),
        }
    }
}

/// [`decode_turn_under`] the rules reel parses by until a caller picks others, without the
/// repairs.
pub fn decode_turn(body: &[u8]) -> Result<TurnPayload, DecodeError> {
    decode_turn_with_repairs(body).map(|(turn, _)| turn)
}

/// [`decode_turn_under`] the rules reel parses by until a caller picks others.
pub fn decode_turn_with_repairs(body: &[u8]) -> Result<(TurnPayload, Repairs), DecodeError> {
    decode_turn_under(body, &Rules::default())
}

/// Decodes a single-turn body, also telling what had to be repaired in it.
///
/// When `provider` names a supported provider before `request` comes (the order capture
/// proxies write), the request is parsed for the chain under `rules` in the same pass as
/// the body: on large turns that halves the bytes scanned. Whenever that pass fails, or a
/// later duplicate `provider` key changes the provider, the body is decoded again the plain
/// way (request kept verbatim), so errors, their texts and their order are exactly those of
/// decoding first and parsing the request afterwards.
pub fn decode_turn_under(
    body: &[u8],
    rules: &Rules,
) -> Result<(TurnPayload, Repairs), DecodeError> {
    let (text, invalid_utf8) = repair_body(body);
    let retry = Cell::new(false);
    let mut turn = TurnSlots::default();
    let inline = TurnSeed {
        inline: Some((&retry, rules)),
        turn: &mut turn,
        base: None,
    };
    match decode_text(&text, inline) {
        Err(_) if retry.get() => {
            turn = TurnSlots::default();
            let plain = TurnSeed {
                inline: None,
                turn: &mut turn,
                base: None,
            };
            decode_text(&text, plain)
        }
        decoded => decoded,
    }?;
    Ok((turn.finish(), Repairs { invalid_utf8 }))
}

/// [`decode_turn_with_repairs`] with the request kept verbatim ([`super::Request::Raw`]),
/// to be parsed afterwards: for a turn whose request bytes are stored as they came.
pub fn decode_turn_verbatim(body: &[u8]) -> Result<(TurnPayload, Repairs), DecodeError> {
    let (text, invalid_utf8) = repair_body(body);
    let mut turn = TurnSlots::default();
    let plain = TurnSeed {
        inline: None,
        turn: &mut turn,
        base: Some(text.as_ptr() as usize),
    };
    decode_text(&text, plain)?;
    Ok((turn.finish(), Repairs { invalid_utf8 }))
}

/// Decodes a reduced response as the body's `response` member is decoded; for reductions
/// made by the server from `raw_response`.
pub fn decode_response(text: &str) -> Result<ChatResponse, DecodeError> {
    let mut response = ResponseSlots::default();
    decode_text(text, InPlace(&mut response))?;
    Ok(response.finish())
}

/// Decodes a batch body `{"turns":[…]}`; a missing, null or empty `turns` is `EmptyBatch`.
pub fn decode_batch(body: &[u8]) -> Result<Vec<TurnPayload>, DecodeError> {
    decode_batch_with_repairs(body).map(|(turns, _)| turns)
}

/// [`decode_batch`], also telling what had to be repaired in the body (all turns together).
pub fn decode_batch_with_repairs(body: &[u8]) -> Result<(Vec<TurnPayload>, Repairs), DecodeError> {
    let (batch, repairs): (BatchPayload, _) = decode(body)?;
    match batch.turns {
        Some(turns) if !turns.is_empty() => Ok((turns, repairs)),
        _ => Err(DecodeError::EmptyBatch),
    }
}

/// What decoding a body had to repair, as the reference repairs it silently; for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Repairs {
    /// Bytes that were not UTF-8, each of which became U+FFFD.
    pub invalid_utf8: usize,
}

fn decode<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<(T, Repairs), DecodeError> {
    let (text, invalid_utf8) = repair_body(body);
    let value = decode_text(&text, PhantomData)?;
    Ok((value, Repairs { invalid_utf8 }))
}

/// Runs `seed` over the whole text, refusing trailing data. The text is UTF-8 by now, so
/// parsing from `str` skips serde_json's per-string checks.
fn decode_text<'de, S: DeserializeSeed<'de>>(
    text: &'de str,
    seed: S,
) -> Result<S::Value, DecodeError> {
    decode_whole(text, seed).map_err(|e| DecodeError::from_json(&e))
}

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;

    use super::*;
    use crate::llm::provider::Provider;
    use crate::llm::{ContentBlock, ParseError};
    use crate::wire::payload::Request;

    fn turn(json: &str) -> Result<TurnPayload, String> {
        decode_turn(json.as_bytes()).map_err(|e| e.to_string())
    }

    /// The turn as a batch decodes it: request kept verbatim.
    fn batch_turn(json: &str) -> TurnPayload {
        let body = format!(r#"{{"turns":[{json}]}}"#);
        decode_batch(body.as_bytes()).unwrap().remove(0)
    }

    #[test]
    fn request_null_is_kept_and_absence_is_none() {
        let p = batch_turn(r#"{"provider":"openai","request":null}"#);
        assert_eq!(p.request.raw().map(RawValue::get), Some("null"));
        let p = turn(r#"{"provider":"openai"}"#).unwrap();
        assert!(matches!(p.request, Request::Absent));
    }

    #[test]
    fn request_is_kept_byte_exact() {
        let raw = r#"{ "model" : "m",  "messages":[ ] }"#;
        let p = batch_turn(&format!(r#"{{"provider":"openai","request":{raw}}}"#));
        assert_eq!(p.request.raw().map(RawValue::get), Some(raw));
    }

    #[test]
    fn request_is_parsed_in_the_body_pass_when_its_provider_comes_first() {
        let body = r#"{"provider":"openai","request":{"model":"a"},
            "request":{"model":"m","messages":[{"role":"user","content":"hi"}]}}"#;
        match turn(body).unwrap().request {
            Request::Parsed(Provider::OpenAi, _, request) => {
                assert_eq!(request.model, "m", "the last duplicate wins");
                assert_eq!(request.messages.len(), 1);
            }
            other => panic!("expected a parsed request, got {other:?}"),
        }
        let raw = |body: &str| matches!(turn(body).unwrap().request, Request::Raw(_));
        assert!(raw(r#"{"request":{},"provider":"openai"}"#));
        assert!(raw(r#"{"provider":"bedrock","request":{}}"#));
    }

    #[test]
    fn a_request_its_parser_refuses_is_kept_verbatim_for_the_reference_error() {
        let p = turn(r#"{"provider":"anthropic","request":{"max_tokens":1.5}}"#).unwrap();
        assert!(matches!(p.request, Request::Raw(_)));
        assert!(matches!(
            p.request
                .into_chain_request(Provider::Anthropic, &Rules::default()),
            Err(ParseError::Type(_))
        ));
    }

    #[test]
    fn a_provider_changed_after_the_request_is_the_one_that_parses_it() {
        let p = turn(
            r#"{"provider":"openai","request":{"messages":[{"role":"user","content":"x"}]},
                "provider":"ollama"}"#,
        )
        .unwrap();
        assert_eq!(p.provider, "ollama");
        assert!(matches!(p.request, Request::Raw(_)));
        let p = turn(r#"{"provider":"openai","request":{},"provider":"nope"}"#).unwrap();
        assert_eq!(p.provider, "nope");
        assert!(matches!(p.request, Request::Raw(_)));
    }

    #[test]
    fn body_errors_read_the_same_whether_or_not_the_request_was_parsed_inline() {
        for body in [
            r#"{"provider":"openai","request":{"model":}}"#,
            r#"{"provider":"openai","request":{"model":"m""#,
            r#"{"provider":"openai","request":{"messages":[1]},"response":{"usage":{"prompt_tokens":"x"}}}"#,
            r#"{"provider":"openai","request":{},"response":{"done":"yes"}}"#,
        ] {
            let plain = decode::<TurnPayload>(body.as_bytes()).map(drop);
            assert_eq!(
                turn(body).map(drop),
                plain.map_err(|e| e.to_string()),
                "{body}"
            );
        }
    }

    #[test]
    fn repeated_keys_decode_into_what_the_earlier_ones_left() {
        let p = turn(
            r#"{"response":{"model":"m","message":{"role":"assistant","content":[
                {"type":"text","text":"a"},{"type":"tool_use","tool_input":{"x":1,"y":{"a":1}}}]},
                "usage":{"prompt_tokens":1}},
                "response":{"message":{"content":[{"text":"b"},{"tool_input":{"y":{"b":2},"z":3}}]},
                "usage":{"completion_tokens":2}},
                "session":{"harness_id":"claude"},"session":{"cwd":"/w"}}"#,
        )
        .unwrap();
        let r = &p.response;
        // Structs merge: the second `response` and `message` keep what they do not name.
        assert_eq!((&*r.model, &*r.message.role), ("m", "assistant"));
        let usage = r.usage.as_ref().unwrap();
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (1, 2));
        // A slice is refilled element by element, each element merging.
        let blocks = r.message.content.as_deref().unwrap();
        assert_eq!(blocks[0], ContentBlock::text("b"));
        assert_eq!(blocks[1].kind, "tool_use");
        // A map merges its entries; an entry's `any` value is replaced whole.
        let input = blocks[1].tool_input.as_ref().unwrap();
        assert_eq!(
            serde_json::Value::Object(input.clone()),
            serde_json::json!({"x": 1, "y": {"b": 2}, "z": 3})
        );
        let session = p.session.as_ref().unwrap();
        assert_eq!((&*session.harness_id, &*session.cwd), ("claude", "/w"));
    }

    #[test]
    fn repeated_slice_keys_refill_as_go_refills_a_slice() {
        let content = |arrays: &[&str]| {
            let keys: Vec<String> = arrays.iter().map(|a| format!(r#""content":{a}"#)).collect();
            let body = format!(r#"{{"response":{{"message":{{{}}}}}}}"#, keys.join(","));
            let p = turn(&body).unwrap();
            p.response.message.content.map(|blocks| {
                blocks
                    .into_iter()
                    .map(|b| format!("{}:{}", b.kind, b.text))
                    .collect::<Vec<_>>()
            })
        };
        let t = |s: &[&str]| Some(s.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        // A shorter array cuts the slice; its elements past the cut stay in the backing
        // array, and a later, longer array decodes into them.
        assert_eq!(
            content(&[
                r#"[{"type":"a"},{"type":"b"},{"type":"c"}]"#,
                r#"[{"text":"x"}]"#,
                "[{},{},{},{}]"
            ]),
            t(&["a:x", "b:", "c:", ":"])
        );
        assert_eq!(content(&[r#"[{"type":"a"}]"#, "[]", "[{}]"]), t(&[":"]));
        assert_eq!(content(&[r#"[{"type":"a"}]"#, "null"]), None);
        assert_eq!(content(&[r#"[{"type":"a"}]"#, "null", "[{}]"]), t(&[":"]));
        // A `null` element leaves the element at its place.
        assert_eq!(
            content(&[r#"[{"type":"a"},{"type":"b"}]"#, "[null]"]),
            t(&["a:"])
        );
    }

    #[test]
    fn repeated_turns_keys_merge_turn_by_turn() {
        let turns = decode_batch(
            br#"{"turns":[{"provider":"openai","agent_name":"a"},{"provider":"ollama"}],
                 "turns":[{"agent_name":"b"}]}"#,
        )
        .unwrap();
        assert_eq!(turns.len(), 1);
        assert_eq!(
            (&*turns[0].provider, &*turns[0].agent_name),
            ("openai", "b")
        );
    }

    #[test]
    fn minus_zero_in_an_int_field_is_zero() {
        let usage = |n: &str| {
            turn(&format!(
                r#"{{"response":{{"usage":{{"prompt_tokens":7,"prompt_tokens":{n}}}}}}}"#
            ))
            .map(|p| p.response.usage.map(|u| u.prompt_tokens))
        };
        assert_eq!(usage("-0"), Ok(Some(0)));
        assert_eq!(usage("-12"), Ok(Some(-12)));
        for refused in ["-0.0", "0.0", "1e2", "-0e0", "9223372036854775808"] {
            assert!(usage(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn go_leniencies() {
        let p = turn(
            r#"{"provider":"x","provider":"openai","agent_name":null,"unknown":[1],
                "response":{"model":null,"done":null,"usage":null,"message":{"role":"assistant","content":null}},
                "session":null}"#,
        )
        .unwrap();
        assert_eq!(p.provider, "openai");
        assert_eq!(p.agent_name, "");
        assert_eq!(p.response.message.content, None);
        assert!(p.session.is_none());
        assert!(turn("null").unwrap().provider.is_empty());
    }

    #[test]
    fn key_case_folds_to_struct_fields_at_every_level() {
        let p = turn(
            r#"{"Provider":"openai","AGENT_NAME":"a","Response":{"Model":"m","DONE":true,
                "Stop_Reason":"end","Usage":{"Prompt_Tokens":3},"Created_At":"2024-05-01T10:00:00Z",
                "Message":{"ROLE":"assistant","Content":[{"TYPE":"tool_use","Tool_Input":{"K":1},
                "I\u017F_error":true}]}},"SESSION":{"Harness_Id":"claude","Parent_Harness_Session_ID":"p"}}"#,
        )
        .unwrap();
        assert_eq!((&*p.provider, &*p.agent_name), ("openai", "a"));
        let r = &p.response;
        assert_eq!((&*r.model, r.done, &*r.stop_reason), ("m", true, "end"));
        assert_eq!(r.usage.as_ref().map(|u| u.prompt_tokens), Some(3));
        assert_eq!(r.message.role, "assistant");
        let block = &r.message.content.as_ref().unwrap()[0];
        assert_eq!(block.kind, "tool_use");
        assert!(block.is_error);
        // Inside a map[string]any the key is data, kept as written.
        assert!(block.tool_input.as_ref().unwrap().contains_key("K"));
        let session = p.session.unwrap();
        assert_eq!(session.harness_id, "claude");
        assert_eq!(session.parent_harness_session_id.as_deref(), Some("p"));
        // Folded keys are typed like exact ones.
        assert!(turn(r#"{"Response":{"CREATED_AT":5}}"#).is_err());
        assert!(turn(r#"{"response":{"Extra":"x"}}"#).is_err());
        // Exact or folded, the later key wins.
        for body in [
            r#"{"provider":"a","PROVIDER":"b"}"#,
            r#"{"PROVIDER":"a","provider":"b"}"#,
        ] {
            assert_eq!(turn(body).unwrap().provider, "b", "{body}");
        }
    }

    #[test]
    fn lone_surrogates_become_replacement_characters() {
        let p = turn(
            r#"{"response":{"message":{"role":"assistant","content":[{"type":"text","text":"\ud800 \udc00 \ud83d\ude00"}]}}}"#,
        )
        .unwrap();
        let text = &p.response.message.content.unwrap()[0].text;
        assert_eq!(text, "\u{fffd} \u{fffd} \u{1f600}");
    }

    #[test]
    fn invalid_utf8_in_strings_becomes_replacement_characters_and_is_counted() {
        let (p, repairs) =
            decode_turn_with_repairs(b"{\"provider\":\"o\xffpen\",\"agent_name\":\"\xe2\x82\"}")
                .unwrap();
        assert_eq!(p.provider, "o\u{fffd}pen");
        assert_eq!(p.agent_name, "\u{fffd}\u{fffd}");
        assert_eq!(repairs, Repairs { invalid_utf8: 3 });
        let (turns, repairs) =
            decode_batch_with_repairs(b"{\"turns\":[{\"provider\":\"\xc0\"},{\"\xff\":1}]}")
                .unwrap();
        assert_eq!(turns[0].provider, "\u{fffd}");
        assert_eq!(repairs.invalid_utf8, 2);
        assert_eq!(
            decode_turn_with_repairs(b"{}").unwrap().1,
            Repairs::default()
        );
        // Outside a string the byte is a syntax error, as in Go.
        assert!(decode_turn(b"{\"provider\":\xff}").is_err());
        assert!(decode_batch(b"\xff").is_err());
    }

    #[test]
    fn created_at_is_checked_as_go_time_unmarshal_json_checks_it() {
        let created_at = |at: &str| turn(&format!(r#"{{"response":{{"created_at":{at}}}}}"#));
        for ok in [
            r#""2024-05-01T10:00:00+24:00""#,
            r#""2024-05-01T1:02:03,5Z""#,
            "null",
        ] {
            assert!(created_at(ok).is_ok(), "{ok}");
        }
        for bad in [
            r#""2024-05-01T23:59:60Z""#,
            r#""2024-05-01 10:00:00Z""#,
            r#""2024-05-01t10:00:00z""#,
            // Go reads the string raw, without unescaping it.
            r#""2024-05-01T10:00:00\u005a""#,
        ] {
            assert!(created_at(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn undecodable_bodies_are_errors() {
        assert_eq!(turn("").unwrap_err(), "unexpected end of JSON input");
        assert!(turn("{").is_err());
        assert!(turn("[1]").is_err());
        assert!(decode_turn(b"{\"provider\":\"x\"\xff}").is_err());
        assert!(turn(r#"{"response":{"usage":{"prompt_tokens":1.5}}}"#).is_err());
        assert!(turn(r#"{"response":{"created_at":"yesterday"}}"#).is_err());
        assert!(turn(r#"{"response":{"created_at":5}}"#).is_err());
        assert!(turn(r#"{"response":{"extra":"x"}}"#).is_err());
        assert!(turn(r#"{"response":{"created_at":"2024-05-01T10:00:00Z","extra":{"a":1},"raw_response":[1]}}"#).is_ok());
    }

    #[test]
    fn batches() {
        assert!(matches!(decode_batch(b"{}"), Err(DecodeError::EmptyBatch)));
        assert!(matches!(
            decode_batch(b"{\"turns\":null}"),
            Err(DecodeError::EmptyBatch)
        ));
        assert!(matches!(
            decode_batch(b"{\"turns\":[]}"),
            Err(DecodeError::EmptyBatch)
        ));
        let turns = decode_batch(br#"{"turns":[{"provider":"openai"},null]}"#).unwrap();
        assert_eq!(turns.len(), 2);
        assert_eq!(turns[1].provider, "");
        assert!(
            decode_batch(br#"{"turns":[{"response":{"usage":{"total_tokens":"x"}}}]}"#).is_err()
        );
    }

    #[test]
    fn capture_members_decode_as_go_decodes_them() {
        let p = turn(
            r#"{"provider":"anthropic","raw_response":"aGk=","RAW_RESPONSE_ENCODING":"gzip",
                "raw_response_withheld":true,"meta":{"request_id":"r1","extra_field":1}}"#,
        )
        .unwrap();
        assert_eq!(p.raw_response, b"hi");
        assert_eq!(p.raw_response_encoding, "gzip");
        assert!(p.raw_response_withheld);
        assert_eq!(p.meta.as_ref().map(|m| m.request_id.as_str()), Some("r1"));
        assert_eq!(
            p.verbatim.meta.as_deref().map(RawValue::get),
            Some(r#"{"request_id":"r1","extra_field":1}"#),
            "meta is kept as sent, unknown members included"
        );
        let p = turn(r#"{"raw_response":null,"raw_response_encoding":null,"meta":null}"#).unwrap();
        assert!(p.raw_response.is_empty());
        assert_eq!(p.meta, None);
    }

    #[test]
    fn capture_members_of_the_wrong_type_are_refused() {
        for body in [
            r#"{"raw_response":"not base64"}"#,
            r#"{"raw_response":12}"#,
            r#"{"raw_response":"aGk"}"#,
            r#"{"raw_response_encoding":1}"#,
            r#"{"raw_response_withheld":"true"}"#,
            r#"{"meta":"x"}"#,
            r#"{"meta":{"upstream_status":"200"}}"#,
            r#"{"meta":{"elapsed_seconds":"1"}}"#,
        ] {
            assert!(turn(body).is_err(), "{body} must be a 400");
        }
    }

    #[test]
    fn raw_only_means_bytes_and_an_absent_response() {
        let raw_only = |response: &str| {
            let body = format!(r#"{{"raw_response":"aGk=","response":{response}}}"#);
            turn(&body).unwrap().is_raw_only()
        };
        assert!(raw_only("null"));
        assert!(raw_only("{}"));
        assert!(raw_only(
            r#"{"model":"","message":{"role":"","content":[]},"done":false}"#
        ));
        assert!(raw_only(
            r#"{"created_at":"2026-01-01T00:00:00Z","extra":{"x":1}}"#
        ));
        assert!(!raw_only(r#"{"usage":{}}"#));
        assert!(!raw_only(r#"{"done":true}"#));
        assert!(!raw_only(
            r#"{"stop_reason":"error","usage":{"prompt_tokens":3}}"#
        ));
        assert!(!turn(r#"{"raw_response":""}"#).unwrap().is_raw_only());
        assert!(!turn(r#"{}"#).unwrap().is_raw_only());
    }

    #[test]
    fn the_response_and_session_are_kept_verbatim() {
        let body = r#"{"response":{"model":"m", "extra":{"k":[1]}},"session":{"harness_id":"h"}}"#;
        let p = turn(body).unwrap();
        assert_eq!(p.response.model, "m");
        assert_eq!(
            p.verbatim.response.as_deref().map(RawValue::get),
            Some(r#"{"model":"m", "extra":{"k":[1]}}"#)
        );
        assert_eq!(
            p.verbatim.session.as_deref().map(RawValue::get),
            Some(r#"{"harness_id":"h"}"#)
        );
        let (verbatim, _) =
            decode_turn_verbatim(br#"{"provider":"openai","request":{"model":"x","messages":[]}}"#)
                .unwrap();
        assert_eq!(
            verbatim.request.raw().map(RawValue::get),
            Some(r#"{"model":"x","messages":[]}"#)
        );
    }

    #[test]
    fn a_reduction_decodes_like_a_sent_response() {
        let r = decode_response(
            r#"{"model":"m","message":{"role":"assistant","content":[{"type":"text","text":"a"}]},
                "done":true,"raw_response":{"any":"thing"}}"#,
        )
        .unwrap();
        assert_eq!(r.message.content, Some(vec![ContentBlock::text("a")]));
        assert!(r.done);
    }
}
