//! Turn and batch payloads (wire.md §1.4) and their decoding.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::SessionEnvelope;
use crate::llm::{Message, Usage};

/// One captured turn: the provider's raw request and the reduced response.
#[derive(Debug, Deserialize)]
pub struct TurnPayload {
    #[serde(default)]
    pub provider: String,
    #[serde(default)]
    pub agent_name: String,
    /// The provider's original request body, kept raw and parsed by `llm`.
    #[serde(default)]
    pub request: Option<Box<RawValue>>,
    #[serde(default)]
    pub response: ChatResponse,
    #[serde(default)]
    pub session: Option<SessionEnvelope>,
}

/// The already-reduced, provider-agnostic response.
#[derive(Debug, Default, Deserialize)]
pub struct ChatResponse {
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub message: Message,
    #[serde(default)]
    pub done: bool,
    #[serde(default)]
    pub stop_reason: String,
    #[serde(default)]
    pub usage: Option<Usage>,
}

/// A body that could not be decoded: 400 `invalid envelope: <text>`.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("{0}")]
    Json(String),
    #[error("empty batch")]
    EmptyBatch,
}

/// Decodes a single-turn body.
pub fn decode_turn(body: &[u8]) -> Result<TurnPayload, DecodeError> {
    serde_json::from_slice(body).map_err(|e| DecodeError::Json(e.to_string()))
}

/// Decodes a batch body `{"turns":[…]}`; a missing, null or empty `turns` is `EmptyBatch`.
pub fn decode_batch(body: &[u8]) -> Result<Vec<TurnPayload>, DecodeError> {
    #[derive(Deserialize)]
    struct Batch {
        #[serde(default)]
        turns: Option<Vec<TurnPayload>>,
    }
    let batch: Batch =
        serde_json::from_slice(body).map_err(|e| DecodeError::Json(e.to_string()))?;
    match batch.turns {
        Some(turns) if !turns.is_empty() => Ok(turns),
        _ => Err(DecodeError::EmptyBatch),
    }
}

/// A turn that decoded but cannot be turned into a chain: 422 `unprocessable turn: <text>`.
#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    #[error("unsupported provider {0:?} (supported: [anthropic openai ollama])")]
    UnsupportedProvider(String),
    #[error("cannot parse request: {0}")]
    Parse(String),
    #[error("invalid reduced response: {0}")]
    InvalidResponse(String),
}
