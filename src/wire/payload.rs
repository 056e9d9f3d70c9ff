//! Turn and batch payloads (wire.md §1.4) and their decoding.
//!
//! Bodies are decoded with Go's leniencies (see [`crate::gojson`]): bytes that are not UTF-8
//! and lone surrogate escapes become U+FFFD, `null` leaves a field at its zero value, the
//! last duplicate key wins and unknown keys are ignored.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::error::Category;
use serde_json::value::RawValue;

use super::{EnvelopeError, SessionEnvelope};
use crate::gojson::typed::Object;
use crate::gojson::{
    InPlace, Key, Path, TimeCheck, decode_whole, in_place_struct, match_field, null_clears,
    null_keeps, repair_body,
};
use crate::llm::provider::Provider;
use crate::llm::{ChatRequest, Message, ParseError, Usage};

/// One captured turn: the provider's request and the reduced response.
#[derive(Debug, Default)]
pub struct TurnPayload {
    pub provider: String,
    pub agent_name: String,
    pub request: Request,
    pub response: ChatResponse,
    pub session: Option<SessionEnvelope>,
}

/// The provider's request body of a turn.
#[derive(Debug, Default)]
pub enum Request {
    /// No `request` key: parsing it fails as Go's decoder fails on empty input.
    #[default]
    Absent,
    /// The request kept verbatim, to be parsed by `llm`; a JSON `null` is kept as the text
    /// `null` (an empty request).
    Raw(Box<RawValue>),
    /// The request already parsed for a chain by this provider's parser, in the same pass
    /// as the body around it ([`decode_turn`]); its bytes were never copied.
    Parsed(Provider, ChatRequest),
}

impl Request {
    /// The verbatim request, when it was kept.
    pub fn raw(&self) -> Option<&RawValue> {
        match self {
            Request::Raw(raw) => Some(raw),
            Request::Absent | Request::Parsed(..) => None,
        }
    }

    /// The request parsed for a chain by `provider`, in the reference's terms: an absent
    /// request is empty input, a request parsed in the body's pass is used as it is.
    pub fn into_chain_request(self, provider: Provider) -> Result<ChatRequest, ParseError> {
        match self {
            Request::Absent => provider.parse_request_for_chain(None),
            Request::Raw(raw) => provider.parse_request_for_chain(Some(raw.get())),
            Request::Parsed(parsed_by, request) if parsed_by == provider => Ok(request),
            // `decode_turn` never leaves a request parsed by another provider than the
            // payload's; should one be built by hand, it cannot be re-read.
            Request::Parsed(..) => Err(ParseError::Syntax(
                "request was parsed for another provider".to_owned(),
            )),
        }
    }
}

impl TurnPayload {
    /// Validates the session envelope, if any (wire.md §5.2); no envelope is valid.
    pub fn validate_session(&self) -> Result<(), EnvelopeError> {
        self.session
            .as_ref()
            .map_or(Ok(()), SessionEnvelope::validate)
    }
}

/// A batch body: `{"turns":[TurnPayload…]}`.
#[derive(Debug, Default)]
pub struct BatchPayload {
    pub turns: Option<Vec<TurnPayload>>,
}

/// The already-reduced, provider-agnostic response.
#[derive(Debug, Default)]
pub struct ChatResponse {
    pub model: String,
    pub message: Message,
    pub done: bool,
    pub stop_reason: String,
    pub usage: Option<Usage>,
}

/// Why a reduced response cannot make a head node (wire.md §1.5 4c), in check order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("missing response.message.role")]
    MissingRole,
    #[error("missing response.message.content")]
    MissingContent,
    #[error("missing response.message.content[{0}].type")]
    MissingBlockType(usize),
}

impl ChatResponse {
    /// The reference's checks before a turn is accepted: a role, at least one block, and a
    /// type on every block.
    pub fn validate(&self) -> Result<(), ResponseError> {
        if self.message.role.is_empty() {
            return Err(ResponseError::MissingRole);
        }
        let blocks = self.message.content.as_deref().unwrap_or_default();
        if blocks.is_empty() {
            return Err(ResponseError::MissingContent);
        }
        match blocks.iter().position(|b| b.kind.is_empty()) {
            Some(i) => Err(ResponseError::MissingBlockType(i)),
            None => Ok(()),
        }
    }
}

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

/// A turn that decoded but cannot be turned into a chain: 422 `unprocessable turn: <text>`.
#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    #[error("unsupported provider {0:?} (supported: [anthropic openai ollama])")]
    UnsupportedProvider(String),
    #[error("cannot parse request: {0}")]
    Parse(#[from] ParseError),
    #[error("invalid reduced response: {0}")]
    InvalidResponse(#[from] ResponseError),
}

/// Decodes a single-turn body.
///
/// When `provider` names a supported provider before `request` comes (the order capture
/// proxies write), the request is parsed for the chain in the same pass as the body: on
/// large turns that halves the bytes scanned. Whenever that pass fails, or a later
/// duplicate `provider` key changes the provider, the body is decoded again the plain way
/// (request kept verbatim), so errors, their texts and their order are exactly those of
/// decoding first and parsing the request afterwards.
pub fn decode_turn(body: &[u8]) -> Result<TurnPayload, DecodeError> {
    decode_turn_with_repairs(body).map(|(turn, _)| turn)
}

/// [`decode_turn`], also telling what had to be repaired in the body.
pub fn decode_turn_with_repairs(body: &[u8]) -> Result<(TurnPayload, Repairs), DecodeError> {
    let (text, invalid_utf8) = repair_body(body);
    let retry = Cell::new(false);
    let turn = match decode_text(&text, TurnSeed(Some(&retry))) {
        Err(_) if retry.get() => decode_text(&text, TurnSeed(None)),
        decoded => decoded,
    }?;
    Ok((turn, Repairs { invalid_utf8 }))
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

impl<'de> Deserialize<'de> for TurnPayload {
    /// The plain decode: the request is kept verbatim (batches need its size).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        TurnSeed(None).deserialize(d)
    }
}

/// Decodes a turn payload. With a flag, a request whose provider is already known is
/// parsed in the same pass, and the flag is raised when the decode must be redone the
/// plain way (see [`decode_turn`]).
struct TurnSeed<'a>(Option<&'a Cell<bool>>);

impl<'de> DeserializeSeed<'de> for TurnSeed<'_> {
    type Value = TurnPayload;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<TurnPayload, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TurnSeed<'_> {
    type Value = TurnPayload;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a turn payload object")
    }

    fn visit_unit<E>(self) -> Result<TurnPayload, E> {
        Ok(TurnPayload::default())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TurnPayload, A::Error> {
        let mut out = TurnPayload::default();
        while let Some(key) = map.next_key::<Key>()? {
            match_field!(key.as_str(), {
                "provider" => map.next_value_seed(InPlace(&mut out.provider))?,
                "agent_name" => map.next_value_seed(InPlace(&mut out.agent_name))?,
                "request" => {
                    let inline = self.0.zip(Provider::from_name(&out.provider));
                    out.request = match inline {
                        Some((retry, provider)) => {
                            // Any failure inside the request is reported by the plain
                            // decode instead, with the reference's text.
                            retry.set(true);
                            let request = map.next_value_seed(provider.chain_seed())?;
                            retry.set(false);
                            Request::Parsed(provider, request)
                        }
                        None => Request::Raw(map.next_value()?),
                    };
                },
                "response" => map.next_value_seed(InPlace(&mut out.response))?,
                "session" => map.next_value_seed(InPlace(&mut out.session))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                },
            });
        }
        if let (Request::Parsed(parsed_by, _), Some(retry)) = (&out.request, self.0) {
            // A duplicate `provider` after `request` wins in Go: the request must be read
            // again by the final provider's parser, or not at all.
            if parsed_by.name() != out.provider {
                retry.set(true);
                return Err(serde::de::Error::custom("provider changed after request"));
            }
        }
        Ok(out)
    }
}

in_place_struct!(BatchPayload, "a batch payload object" {
    "turns" => turns,
});

null_keeps!(ChatResponse);
null_clears!(SessionEnvelope, Vec<TurnPayload>);

static RESPONSE: Path<'static> = Path::Root("ChatResponse");

impl<'de> Deserialize<'de> for ChatResponse {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ResponseVisitor)
    }
}

struct ResponseVisitor;

impl<'de> Visitor<'de> for ResponseVisitor {
    type Value = ChatResponse;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a response object")
    }

    fn visit_unit<E>(self) -> Result<ChatResponse, E> {
        Ok(ChatResponse::default())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ChatResponse, A::Error> {
        let mut out = ChatResponse::default();
        while let Some(key) = map.next_key::<Key>()? {
            match_field!(key.as_str(), {
                "model" => map.next_value_seed(InPlace(&mut out.model))?,
                "message" => map.next_value_seed(InPlace(&mut out.message))?,
                "done" => map.next_value_seed(InPlace(&mut out.done))?,
                "stop_reason" => map.next_value_seed(InPlace(&mut out.stop_reason))?,
                "usage" => map.next_value_seed(InPlace(&mut out.usage))?,
                // Not kept, but typed in the reference: a wrong kind fails the decode.
                "created_at" => map.next_value_seed(TimeCheck)?,
                "extra" => {
                    map.next_value_seed(Object(RESPONSE.field("extra")))?;
                },
                _ => {
                    map.next_value::<IgnoredAny>()?;
                },
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ContentBlock;

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
            Request::Parsed(Provider::OpenAi, request) => {
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
            p.request.into_chain_request(Provider::Anthropic),
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
    fn response_validation_in_order() {
        let mut r = ChatResponse::default();
        assert_eq!(r.validate(), Err(ResponseError::MissingRole));
        r.message.role = "assistant".into();
        assert_eq!(r.validate(), Err(ResponseError::MissingContent));
        r.message.content = Some(vec![]);
        assert_eq!(r.validate(), Err(ResponseError::MissingContent));
        r.message.content = Some(vec![ContentBlock::text("a"), ContentBlock::default()]);
        assert_eq!(r.validate(), Err(ResponseError::MissingBlockType(1)));
        assert_eq!(
            ResponseError::MissingBlockType(1).to_string(),
            "missing response.message.content[1].type"
        );
        r.message.content = Some(vec![ContentBlock::text("a")]);
        assert_eq!(r.validate(), Ok(()));
    }
}
