//! The JSON contract of the ingest API: turn payloads, the session envelope and the capture
//! client's members (`raw_response`, `meta`).

mod decode;
mod envelope;
mod meta;
mod payload;
mod raw_bytes;
mod response;

pub use decode::{
    DecodeError, Repairs, decode_batch, decode_batch_with_repairs, decode_response, decode_turn,
    decode_turn_under, decode_turn_verbatim, decode_turn_with_repairs,
};
pub use envelope::{EnvelopeError, SessionEnvelope, UNKNOWN_HARNESS, parse_org_id};
pub use meta::Meta;
pub use payload::{BatchPayload, Request, TurnError, TurnPayload, Verbatim};
pub use raw_bytes::decode_base64;
pub use response::{ChatResponse, ResponseError};
