//! Turn and batch payloads (docs/wire.md#turn-payload) and their decoding.
//!
//! Bodies are decoded with Go's leniencies (see [`crate::gojson`]): bytes that are not UTF-8
//! and lone surrogate escapes become U+FFFD, `null` leaves a field at its zero value, the
//! last duplicate key wins and unknown keys are ignored.

use std::cell::Cell;
use std::fmt;
use std::ops::Range;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::meta::Meta;
use super::raw_bytes::RawBytes;
use super::response::{ChatResponse, ResponseError, ResponseSlots};
use super::{EnvelopeError, SessionEnvelope};
use crate::gojson::{
    DecodeInPlace, GoSlice, InPlace, Key, decode_whole, in_place_struct, match_field,
};
use crate::llm::provider::Provider;
use crate::llm::{ChatRequest, ParseError, Rules};

/// One captured turn: the provider's request, the reduced response and what the capture
/// client sent beside them (docs/capture.md §1).
#[derive(Debug, Default)]
pub struct TurnPayload {
    pub provider: String,
    pub agent_name: String,
    pub request: Request,
    pub response: ChatResponse,
    pub session: Option<SessionEnvelope>,
    /// The upstream response body still under its content-coding; empty when not sent.
    pub raw_response: Vec<u8>,
    pub raw_response_encoding: String,
    /// The client had the bytes and deliberately did not send them.
    pub raw_response_withheld: bool,
    pub meta: Option<Meta>,
    /// The members kept verbatim with the raw turn, as sent (the last of a repeated key).
    pub verbatim: Verbatim,
    /// Where the request's JSON lies in the body as decoded, when the decode kept it
    /// verbatim. Repairs of lone surrogate escapes keep lengths, so unless the body held bytes
    /// that are not UTF-8 the same range of the body as received holds the request's bytes.
    pub request_span: Option<Range<usize>>,
}

/// JSON members of a payload exactly as they were sent.
#[derive(Debug, Default)]
pub struct Verbatim {
    pub response: Option<Box<RawValue>>,
    pub meta: Option<Box<RawValue>>,
    pub session: Option<Box<RawValue>>,
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
    /// The request already parsed for a chain by this provider's parser under the rules of
    /// this name, in the same pass as the body around it ([`super::decode_turn_under`]); its
    /// bytes were never copied.
    Parsed(Provider, &'static str, Box<ChatRequest>),
}

impl Request {
    /// The verbatim request, when it was kept.
    pub fn raw(&self) -> Option<&RawValue> {
        match self {
            Request::Raw(raw) => Some(raw),
            Request::Absent | Request::Parsed(..) => None,
        }
    }

    /// The request parsed for a chain by `provider` under `rules`, in the reference's
    /// terms: an absent request is empty input, a request parsed in the body's pass is used
    /// as it is.
    pub fn into_chain_request(
        self,
        provider: Provider,
        rules: &Rules,
    ) -> Result<ChatRequest, ParseError> {
        match self {
            Request::Absent => provider.parse_request_for_chain(None, rules),
            Request::Raw(raw) => provider.parse_request_for_chain(Some(raw.get()), rules),
            Request::Parsed(parsed_by, parsed_under, request)
                if parsed_by == provider && parsed_under == rules.name =>
            {
                Ok(*request)
            }
            // The decode parses for the payload's provider under the rules it was given;
            // a request parsed otherwise cannot be re-read.
            Request::Parsed(..) => Err(ParseError::Syntax(
                "request was parsed for another provider or other rules".to_owned(),
            )),
        }
    }
}

impl TurnPayload {
    /// The server reduces `raw_response` itself exactly when bytes were sent and the
    /// response is absent (docs/capture.md §2).
    pub fn is_raw_only(&self) -> bool {
        !self.raw_response.is_empty() && self.response.is_absent()
    }

    /// Validates the session envelope, if any
    /// (docs/wire.md#envelope-validation); no envelope is valid.
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

/// A turn as Go decodes it, before its slices are cut to length (see [`GoSlice`]). A batch
/// keeps its turns so until the whole body is decoded, since a repeated `turns` key decodes
/// into them.
#[derive(Default)]
pub(super) struct TurnSlots {
    provider: String,
    agent_name: String,
    request: Request,
    response: ResponseSlots,
    session: Option<SessionEnvelope>,
    raw_response: RawBytes,
    raw_response_encoding: String,
    raw_response_withheld: bool,
    meta: Option<Meta>,
    verbatim: Verbatim,
    request_span: Option<Range<usize>>,
}

impl TurnSlots {
    pub(super) fn finish(self) -> TurnPayload {
        TurnPayload {
            provider: self.provider,
            agent_name: self.agent_name,
            request: self.request,
            response: self.response.finish(),
            session: self.session,
            raw_response: self.raw_response.0,
            raw_response_encoding: self.raw_response_encoding,
            raw_response_withheld: self.raw_response_withheld,
            meta: self.meta,
            verbatim: self.verbatim,
            request_span: self.request_span,
        }
    }
}

/// Decodes a member into `slot` from its verbatim text, and keeps the text: the members a
/// raw turn stores as sent cost one more scan of their (small) text, not a copy of the body.
fn verbatim_into<'de, A: MapAccess<'de>, T: DecodeInPlace<'de>>(
    map: &mut A,
    slot: &mut T,
    kept: &mut Option<Box<RawValue>>,
) -> Result<(), A::Error> {
    let raw: &'de RawValue = map.next_value()?;
    decode_whole(raw.get(), InPlace(slot)).map_err(serde::de::Error::custom)?;
    *kept = Some(raw.to_owned());
    Ok(())
}

impl<'de> Deserialize<'de> for TurnPayload {
    /// The plain decode: the request is kept verbatim (batches need its size).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut turn = TurnSlots::default();
        turn.decode_in_place(d)?;
        Ok(turn.finish())
    }
}

/// Decodes a turn payload into `turn`. With `inline`, a request whose provider is already
/// known is parsed in the same pass under the rules given with it, and the flag is raised
/// when the decode must be redone the plain way (see [`super::decode_turn_under`]).
pub(super) struct TurnSeed<'a, 't> {
    pub(super) inline: Option<(&'a Cell<bool>, &'a Rules)>,
    pub(super) turn: &'t mut TurnSlots,
    /// The address of the text being decoded, to locate the request in it
    /// ([`TurnPayload::request_span`]); only for a decode from borrowed text.
    pub(super) base: Option<usize>,
}

impl<'de> DeserializeSeed<'de> for TurnSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TurnSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a turn payload object")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let out = self.turn;
        while let Some(key) = map.next_key::<Key>()? {
            match_field!(key.as_str(), {
                "provider" => map.next_value_seed(InPlace(&mut out.provider))?,
                "agent_name" => map.next_value_seed(InPlace(&mut out.agent_name))?,
                "request" => {
                    let inline = self.inline.zip(Provider::from_name(&out.provider));
                    out.request = match inline {
                        Some(((retry, rules), provider)) => {
                            // Any failure inside the request is reported by the plain
                            // decode instead, with the reference's text.
                            retry.set(true);
                            let request = map.next_value_seed(provider.chain_seed(rules))?;
                            retry.set(false);
                            Request::Parsed(provider, rules.name, Box::new(request))
                        }
                        // `json.RawMessage`: a repeated key replaces it.
                        None => match self.base {
                            Some(base) => {
                                let raw: &'de RawValue = map.next_value()?;
                                let start = (raw.get().as_ptr() as usize).wrapping_sub(base);
                                out.request_span = Some(start..start + raw.get().len());
                                Request::Raw(raw.to_owned())
                            }
                            None => {
                                out.request_span = None;
                                Request::Raw(map.next_value()?)
                            }
                        },
                    };
                },
                "response" => {
                    verbatim_into(&mut map, &mut out.response, &mut out.verbatim.response)?
                },
                "session" => {
                    verbatim_into(&mut map, &mut out.session, &mut out.verbatim.session)?
                },
                "meta" => verbatim_into(&mut map, &mut out.meta, &mut out.verbatim.meta)?,
                "raw_response" => map.next_value_seed(InPlace(&mut out.raw_response))?,
                "raw_response_encoding" => {
                    map.next_value_seed(InPlace(&mut out.raw_response_encoding))?
                },
                "raw_response_withheld" => {
                    map.next_value_seed(InPlace(&mut out.raw_response_withheld))?
                },
                _ => {
                    map.next_value::<IgnoredAny>()?;
                },
            });
        }
        if let (Request::Parsed(parsed_by, ..), Some((retry, _))) = (&out.request, self.inline) {
            // A duplicate `provider` after `request` wins in Go: the request must be read
            // again by the final provider's parser, or not at all.
            if parsed_by.name() != out.provider {
                retry.set(true);
                return Err(serde::de::Error::custom("provider changed after request"));
            }
        }
        Ok(())
    }
}

/// A batch element is decoded into the turn already at its place (see [`GoSlice`]).
impl<'de> DecodeInPlace<'de> for TurnSlots {
    fn decode_in_place<D: Deserializer<'de>>(&mut self, d: D) -> Result<(), D::Error> {
        TurnSeed {
            inline: None,
            turn: self,
            base: None,
        }
        .deserialize(d)
    }
}

/// A batch body as Go decodes it (see [`TurnSlots`]).
#[derive(Default)]
struct BatchSlots {
    turns: Option<GoSlice<TurnSlots>>,
}

in_place_struct!(BatchSlots, "a batch payload object" {
    "turns" => turns,
});

impl<'de> Deserialize<'de> for BatchPayload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let batch = BatchSlots::deserialize(d)?;
        let turns = batch.turns.map(|turns| {
            turns
                .into_vec()
                .into_iter()
                .map(TurnSlots::finish)
                .collect()
        });
        Ok(BatchPayload { turns })
    }
}
