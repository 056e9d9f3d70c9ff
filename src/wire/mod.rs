//! The JSON contract of the ingest API: turn payloads and the session envelope.

mod decode;
mod envelope;
mod payload;
mod response;

pub use decode::{
    DecodeError, Repairs, decode_batch, decode_batch_with_repairs, decode_turn,
    decode_turn_with_repairs,
};
pub use envelope::{EnvelopeError, SessionEnvelope, UNKNOWN_HARNESS, parse_org_id};
pub use payload::{BatchPayload, TurnError, TurnPayload};
pub use response::{ChatResponse, ResponseError};
