//! The JSON contract of the ingest API: turn payloads and the session envelope.

mod envelope;
mod payload;

pub use envelope::{EnvelopeError, SessionEnvelope, UNKNOWN_HARNESS, parse_org_id};
pub use payload::{
    BatchPayload, ChatResponse, DecodeError, Repairs, ResponseError, TurnError, TurnPayload,
    decode_batch, decode_batch_with_repairs, decode_turn, decode_turn_with_repairs,
};
