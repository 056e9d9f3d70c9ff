//! From a decoded payload to a turn ready to commit: validation, chain, session key, cost.
//!
//! Pure CPU: no I/O, so it may run on a blocking thread for large bodies.

use crate::cost::{PriceBook, Priced};
use crate::merkle::build_chain;
use crate::sessions::{SessionKey, Turn};
use crate::telemetry::{Metrics, status};
use crate::wire::{EnvelopeError, TurnError, TurnPayload};

/// A turn that passed every check, with what its metrics need.
pub struct Prepared {
    pub provider: String,
    pub key: SessionKey,
    pub turn: Turn,
}

/// Why a decoded turn was refused, in the reference's check order.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// The session block failed validation: 400.
    #[error("invalid envelope: {0}")]
    Envelope(EnvelopeError),
    /// The turn cannot become a chain: 422.
    #[error("unprocessable turn: {0}")]
    Turn(TurnError),
}

impl Rejection {
    /// The `status` label of `tapes_ingest_writes_total` for this rejection.
    pub fn status(&self) -> &'static str {
        match self {
            Rejection::Envelope(_) => status::REJECT_ENVELOPE,
            Rejection::Turn(TurnError::UnsupportedProvider(_)) => status::UNKNOWN_PROVIDER,
            Rejection::Turn(_) => status::REJECT_PARSE,
        }
    }
}

/// Validates the envelope, builds the chain, resolves the session and prices the response.
pub fn prepare(
    mut payload: TurnPayload,
    prices: &PriceBook,
    metrics: &Metrics,
) -> Result<Prepared, Rejection> {
    if let Some(envelope) = &payload.session {
        envelope.validate().map_err(Rejection::Envelope)?;
    }
    let envelope = payload.session.take();
    let chain = build_chain(payload).map_err(Rejection::Turn)?;
    let key = SessionKey::resolve(envelope.as_ref(), &chain);
    // The head carries the response's model and usage, and the provider's canonical name
    // (the payload's own, since names match exactly).
    let head = chain.head();
    let provider = head.bucket.provider.clone();
    let usage = head.usage.as_ref();
    let priced = prices.cost(&provider, &head.bucket.model, usage);
    if priced == Priced::UnknownModel {
        metrics.unknown_model_cost_total.inc();
    }
    let (input_tokens, output_tokens) =
        usage.map_or((0, 0), |u| (u.prompt_tokens, u.completion_tokens));
    let turn = Turn {
        envelope,
        chain,
        input_tokens,
        output_tokens,
        cost_usd: priced.usd(),
    };
    Ok(Prepared {
        provider,
        key,
        turn,
    })
}
