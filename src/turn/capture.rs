//! The capture steps between a decoded payload and its chain (docs/capture.md §2): a
//! raw-only turn's response is reduced from its bytes, then the turn is kept as a
//! [`RawTurn`] whatever its chain's fate.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::prepare::{Prepared, Rejection, prepare_under};
use super::raw::{Capture, Dropped, RawTurn};
use crate::capture::encoding::{self, Allowance, EncodingError};
use crate::capture::reduce::{ReduceError, reduce};
use crate::capture::stamps::{CreatedAtSource, DurationSource, Stamps};
use crate::cost::PriceBook;
use crate::merkle::Rules;
use crate::wire::{Meta, TurnPayload, decode_response};

/// What the server-side reduction of a raw-only turn did (docs/capture.md §7), for metrics and logs.
#[derive(Debug)]
pub enum Reduced {
    /// The reduction replaced the absent response.
    Ok {
        duration_source: DurationSource,
        created_at_source: CreatedAtSource,
        /// Some layer of the encoding was cut short and salvaged.
        truncated: bool,
        /// U+FFFD put in place of bytes that were not UTF-8 in raw values.
        replacements: usize,
    },
    /// No reduction: the turn goes on with its absent response (and is answered 422).
    Failed(ReduceFailure),
}

/// Why a raw-only turn has no reduction.
#[derive(Debug, thiserror::Error)]
pub enum ReduceFailure {
    #[error("{0}")]
    Encoding(EncodingError),
    #[error("{0}")]
    Reduce(ReduceError),
    /// Reading the plaintext failed for another reason than its coding.
    #[error("read raw_response: {0}")]
    Read(String),
    /// The reduction is not a response the body could have carried: a reducer defect.
    #[error("reduction does not decode: {0}")]
    Shape(String),
}

impl ReduceFailure {
    /// A bounded label for metrics.
    pub fn class(&self) -> &'static str {
        match self {
            ReduceFailure::Encoding(e) => e.class(),
            ReduceFailure::Reduce(ReduceError::NoReducer(_)) => "no_reducer",
            ReduceFailure::Reduce(_) => "unparseable",
            ReduceFailure::Read(_) => "read",
            ReduceFailure::Shape(_) => "shape",
        }
    }
}

/// The memory budget refused what decoding the raw response needed: 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("raw_response needs more memory than the server has free")]
pub struct OverBudget;

/// Reduces a raw-only payload's `raw_response` in place of its absent response, as the
/// reference does before any provider check. Returns `None` for a turn that is not raw-only,
/// the reduction's JSON text and report otherwise. `now` dates a reduction no stamp dates.
///
/// Decoding is charged to `allowance` as it goes; a refusal is the only error.
pub fn reduce_raw_only(
    payload: &mut TurnPayload,
    allowance: &mut dyn Allowance,
    now: DateTime<Utc>,
) -> Result<Option<(Reduced, Option<String>)>, OverBudget> {
    if !payload.is_raw_only() {
        return Ok(None);
    }
    let meta = payload.meta.clone().unwrap_or_default();
    match reduction(payload, &meta, allowance, now) {
        Ok((text, report)) => Ok(Some((report, Some(text)))),
        Err(ReduceFailure::Encoding(EncodingError::OverAllowance { .. })) => Err(OverBudget),
        Err(failure) => Ok(Some((Reduced::Failed(failure), None))),
    }
}

fn reduction(
    payload: &mut TurnPayload,
    meta: &Meta,
    allowance: &mut dyn Allowance,
    now: DateTime<Utc>,
) -> Result<(String, Reduced), ReduceFailure> {
    let stamps = Stamps::from(meta);
    let mut plaintext = encoding::open(
        &payload.raw_response_encoding,
        &payload.raw_response,
        allowance,
    )
    .map_err(ReduceFailure::Encoding)?;
    let reduced = reduce(
        &payload.provider,
        &meta.content_type,
        &mut plaintext,
        &stamps,
        now,
    );
    // The reference decodes the whole body before reducing it, so a coding that fails after
    // the part a reducer read (a bad checksum, trailing garbage) still fails the turn.
    if let Err(e) = io::copy(&mut plaintext, &mut io::sink()) {
        return Err(match encoding::error_of(&e) {
            Some(e) => ReduceFailure::Encoding(e.clone()),
            None => ReduceFailure::Read(e.to_string()),
        });
    }
    let truncated = plaintext.truncated();
    let reduction = reduced.map_err(|e| match e {
        ReduceError::Decode(e) => ReduceFailure::Encoding(e),
        e => ReduceFailure::Reduce(e),
    })?;
    let text = reduction.response.to_string();
    payload.response = decode_response(&text).map_err(|e| ReduceFailure::Shape(e.to_string()))?;
    Ok((
        text,
        Reduced::Ok {
            duration_source: reduction.duration_source,
            created_at_source: reduction.created_at_source,
            truncated,
            replacements: reduction.replacements,
        },
    ))
}

/// The raw turn of a payload, taken before its chain consumes it: the request text as it was
/// decoded, the response as sent (or the reduction), `meta` and the envelope as sent, and
/// `raw_response` still encoded (docs/capture.md §9). What only the raw turn
/// needs is moved out of the payload.
///
/// `received` is the request's bytes as received, when the caller has them
/// ([`TurnPayload::request_span`] of a body that needed no UTF-8 repair); otherwise the
/// request's decoded text is stored.
pub fn raw_turn(
    payload: &mut TurnPayload,
    received: Option<Bytes>,
    reduction: Option<String>,
    truncated: bool,
    received_at: DateTime<Utc>,
) -> (RawTurn, Option<Dropped>) {
    let request = received.unwrap_or_else(|| {
        payload.request.raw().map_or_else(Bytes::new, |raw| {
            Bytes::copy_from_slice(raw.get().as_bytes())
        })
    });
    let response_reduced = reduction.is_some();
    let verbatim = std::mem::take(&mut payload.verbatim);
    let response = reduction.or_else(|| verbatim.response.map(|raw| raw.get().to_owned()));
    let raw_response = std::mem::take(&mut payload.raw_response);
    RawTurn::new(Capture {
        request_id: payload
            .meta
            .as_ref()
            .map(|m| m.request_id.clone())
            .unwrap_or_default(),
        provider: payload.provider.clone(),
        agent_name: payload.agent_name.clone(),
        received_at,
        request,
        response,
        response_reduced,
        meta: verbatim.meta.map(|raw| raw.get().to_owned()),
        envelope: verbatim.session.map(|raw| raw.get().to_owned()),
        raw_response: (!raw_response.is_empty()).then_some(raw_response),
        raw_response_encoding: payload.raw_response_encoding.clone(),
        raw_response_withheld: payload.raw_response_withheld,
        truncated,
    })
}

/// A decoded payload after the capture steps and `prepare`: what the API answers, and what
/// is kept of the turn.
#[derive(Debug)]
pub struct Intake {
    /// The turn ready to commit (its `raw` set when capture keeps raw turns), or why not.
    pub prepared: Result<Prepared, Rejection>,
    /// The raw turn of a rejected turn, for the quarantine; `None` when raw turns are off or
    /// the turn was accepted (then it travels in the turn).
    pub rejected_raw: Option<RawTurn>,
    /// What the server-side reduction did, for a raw-only turn.
    pub reduced: Option<Reduced>,
    /// Why the turn's `raw_response` bytes are not kept although it had some.
    pub dropped: Option<Dropped>,
}

/// [`intake_under`] the rules reel hashes by until a caller picks others.
pub fn intake(
    payload: TurnPayload,
    received: Option<Bytes>,
    keep_raw: bool,
    prices: &PriceBook,
    allowance: &mut dyn Allowance,
    now: DateTime<Utc>,
) -> Result<Intake, OverBudget> {
    intake_under(
        payload,
        received,
        keep_raw,
        prices,
        allowance,
        now,
        &Rules::default(),
    )
}

/// Runs a decoded payload (its envelope already valid) through the capture steps and
/// [`prepare_under`]: reduces a raw-only turn, keeps the raw turn when `keep_raw`, builds
/// the chain under `rules`. `received` is the request's bytes as received, when known (see
/// [`raw_turn`]). The only error is the memory budget refusing the decode.
pub fn intake_under(
    mut payload: TurnPayload,
    received: Option<Bytes>,
    keep_raw: bool,
    prices: &PriceBook,
    allowance: &mut dyn Allowance,
    now: DateTime<Utc>,
    rules: &Rules,
) -> Result<Intake, OverBudget> {
    let reduction = reduce_raw_only(&mut payload, allowance, now)?;
    let (reduced, text) = reduction.map_or((None, None), |(report, text)| (Some(report), text));
    let truncated = matches!(
        reduced,
        Some(Reduced::Ok {
            truncated: true,
            ..
        })
    );
    let (raw, dropped) = if keep_raw {
        let (raw, dropped) = raw_turn(&mut payload, received, text, truncated, now);
        (Some(raw), dropped)
    } else {
        (None, None)
    };
    let (prepared, rejected_raw) = match prepare_under(payload, prices, rules) {
        Ok(mut prepared) => {
            prepared.turn.raw = raw.map(Arc::new);
            (Ok(prepared), None)
        }
        Err(rejection) => (Err(rejection), raw),
    };
    Ok(Intake {
        prepared,
        rejected_raw,
        reduced,
        dropped,
    })
}
