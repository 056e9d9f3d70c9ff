//! From a request body to a turn ready to commit: decoding, validation, chain, session key,
//! cost — and, when any of it fails, the one place that says which status and text the API
//! answers.
//!
//! Pure CPU: no I/O, so it may run on a blocking thread for large bodies.

use super::limits::{self, LimitError};
use super::{SessionKey, Turn};
use crate::cost::{PriceBook, Priced};
use crate::merkle::{Rules, build_chain_under};
use crate::wire::{DecodeError, EnvelopeError, TurnError, TurnPayload, decode_turn_under};

/// A turn that passed every check, with what its metrics need.
#[derive(Debug)]
pub struct Prepared {
    /// The provider's canonical name, as the head node stores it.
    pub provider: String,
    pub turn: Turn,
    /// The response's model has no price: the turn costs 0 (counted in a metric).
    pub unknown_model: bool,
}

/// Why a body is not a turn, in the reference's check order. Its `Display` is the `error`
/// text of the answer.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// The body is not a turn payload at all: 400.
    #[error("invalid envelope: {0}")]
    Body(#[from] DecodeError),
    /// The session block failed validation: 400.
    #[error("invalid envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    /// The turn cannot become a chain: 422.
    #[error("unprocessable turn: {0}")]
    Turn(#[from] TurnError),
    /// The chain is outside the bounds that keep storing it safe: 422.
    #[error("unprocessable turn: {0}")]
    Limit(#[from] LimitError),
}

impl Rejection {
    /// A bounded name of what failed, for the quarantine's `reason` and its metric.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Body(_) | Rejection::Envelope(_) => "invalid_envelope",
            Rejection::Turn(TurnError::UnsupportedProvider(_)) => "unsupported_provider",
            Rejection::Turn(TurnError::Parse(_)) => "unparseable_request",
            Rejection::Turn(TurnError::InvalidResponse(_)) => "invalid_response",
            Rejection::Limit(_) => "limit",
        }
    }

    /// The reason a quarantined turn is stored under. A raw-only turn whose bytes could not
    /// be reduced fails on its absent response; the reduction is what a fix would have to
    /// change, so that is its reason.
    pub fn quarantine_reason(&self, reduction_failed: bool) -> &'static str {
        match self {
            Rejection::Turn(TurnError::InvalidResponse(_)) if reduction_failed => {
                "reduction_failed"
            }
            _ => self.reason(),
        }
    }

    /// The HTTP status the API answers.
    pub fn status_code(&self) -> u16 {
        match self {
            Rejection::Body(_) | Rejection::Envelope(_) => 400,
            Rejection::Turn(_) | Rejection::Limit(_) => 422,
        }
    }
}

/// [`prepare_body_under`] the rules reel hashes by until a caller picks others.
pub fn prepare_body(body: &[u8], prices: &PriceBook) -> Result<Prepared, Rejection> {
    prepare_body_under(body, prices, &Rules::default())
}

/// Decodes a single-turn body and prepares it under `rules`.
pub fn prepare_body_under(
    body: &[u8],
    prices: &PriceBook,
    rules: &Rules,
) -> Result<Prepared, Rejection> {
    let (payload, _) = decode_turn_under(body, rules)?;
    prepare_under(payload, prices, rules)
}

/// [`prepare_under`] the rules reel hashes by until a caller picks others.
pub fn prepare(payload: TurnPayload, prices: &PriceBook) -> Result<Prepared, Rejection> {
    prepare_under(payload, prices, &Rules::default())
}

/// Validates the envelope, builds the chain under `rules`, resolves the session and prices
/// the response.
pub fn prepare_under(
    mut payload: TurnPayload,
    prices: &PriceBook,
    rules: &Rules,
) -> Result<Prepared, Rejection> {
    if let Some(envelope) = &payload.session {
        envelope.validate()?;
    }
    let envelope = payload.session.take();
    let chain = build_chain_under(payload, rules)?;
    limits::check(&chain)?;
    let key = SessionKey::resolve(envelope.as_ref(), &chain);
    // The head carries the response's model and usage, and the provider's canonical name
    // (the payload's own, since names match exactly).
    let head = chain.head();
    let provider = head.bucket.provider.clone();
    let usage = head.usage.as_ref();
    let priced = prices.cost(&provider, &head.bucket.model, usage);
    let (input_tokens, output_tokens) =
        usage.map_or((0, 0), |u| (u.prompt_tokens, u.completion_tokens));
    Ok(Prepared {
        provider,
        unknown_model: priced == Priced::UnknownModel,
        turn: Turn {
            key,
            envelope,
            chain,
            input_tokens,
            output_tokens,
            cost_usd: priced.usd(),
            raw: None,
        },
    })
}
