//! The JSON contract of the ingest API: turn payloads and the session envelope.

mod envelope;

pub use envelope::{EnvelopeError, SessionEnvelope, UNKNOWN_HARNESS};
