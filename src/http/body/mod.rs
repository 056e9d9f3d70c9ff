//! Reading a request body: Content-Encoding decoding, the size limit, the memory budget.
//!
//! Every byte a body makes the process hold is charged to one budget before it is taken:
//! the decoded bytes with the capacity they grow into ([`buffer`]) and the state of each
//! decoder ([`inflate`]). A body that would exceed the budget answers 429, one that would
//! exceed the limit 413, and neither ever held more than its charge.

mod budget;
mod buffer;
mod inflate;

use std::cell::Cell;
use std::io::{self, Write as _};
use std::rc::Rc;
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::http::header::{self, ContentEncoding};
use actix_web::web::{Bytes, Payload};
use futures_util::StreamExt;

use crate::capture::encoding::{Allowance, OverAllowance};
use crate::memory::Releaser;

use budget::{Budget, Charge};
use buffer::{BodyBuffer, EAGER, Refusal};
use inflate::{Coding, Decoder, MAX_DECODER_STATE, Sink, StartError};

/// The most codings one body may stack (`Content-Encoding: gzip, zstd, …`). Each decoder is
/// charged its state, so the bound keeps one body's largest charge within
/// [`min_budget`].
pub const MAX_CODINGS: usize = 4;

/// The smallest budget that still admits one body of `limit` bytes in the worst case: the
/// limit, the small allocation it moved out of, and [`MAX_CODINGS`] decoders of the most
/// expensive coding.
pub const fn min_budget(limit: usize) -> usize {
    limit + EAGER + MAX_CODINGS * MAX_DECODER_STATE
}

/// A compressed body's first allocation holds this many times its wire size (up to
/// [`EAGER`]): JSON rarely compresses better.
const FIRST_GUESS_RATIO: usize = 8;

/// Limits applied to every ingest body.
#[derive(Clone)]
pub struct BodyLimits {
    /// Largest decoded body.
    pub limit: usize,
    /// Time a client has to send the whole body: a slow client would otherwise hold its
    /// connection and its budget share for as long as it likes.
    pub timeout: Duration,
    budget: Budget,
}

impl BodyLimits {
    /// `releaser` is asked to purge whenever a large body's share is returned.
    pub fn new(limit: usize, budget_bytes: usize, timeout: Duration, releaser: Releaser) -> Self {
        BodyLimits {
            limit,
            timeout,
            budget: Budget::new(budget_bytes, releaser),
        }
    }
}

/// A fully read body. Its share of the memory budget is returned when it is dropped.
pub struct Body {
    pub bytes: Bytes,
    reserved: Reservation,
}

/// A share of the body memory budget, returned when dropped.
pub struct Reservation {
    charge: Charge,
    /// What the body itself holds; what a decode of its `raw_response` holds comes on top.
    body: usize,
}

/// Decoding a turn's `raw_response` takes from the body's share, so the bytes it holds count
/// against the same budget as every body (a decompression bomb is refused at the budget,
/// answered 429, before its memory is taken).
impl Allowance for Reservation {
    fn grow_to(&mut self, bytes: usize) -> Result<(), OverAllowance> {
        self.charge
            .grow_to(self.body.saturating_add(bytes))
            .map_err(|_| OverAllowance)
    }
}

impl Body {
    /// Separates the bytes from their budget share, so a handler can free the bytes once
    /// parsed and keep the share while the parsed turn (of about the same size) is alive.
    pub fn into_parts(self) -> (Bytes, Reservation) {
        (self.bytes, self.reserved)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the body exceeds {limit} bytes")]
    TooLarge { limit: usize },
    #[error("unsupported Content-Encoding {0:?}")]
    UnsupportedEncoding(String),
    #[error("more than {MAX_CODINGS} Content-Encodings")]
    TooManyEncodings,
    #[error("cannot decode the {encoding} body: {reason}")]
    Corrupt { encoding: String, reason: String },
    #[error("cannot read the body: {0}")]
    Read(String),
    #[error("overloaded: request bodies in memory exceed the budget")]
    OverBudget,
    #[error("the body did not arrive within {} seconds", .0.as_secs())]
    Timeout(Duration),
}

impl From<Refusal> for BodyError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::TooLarge { limit } => BodyError::TooLarge { limit },
            Refusal::OverBudget => BodyError::OverBudget,
        }
    }
}

/// Reads the whole body, decoding every `Content-Encoding` listed (gzip, deflate, br, zstd,
/// stacked in any order) as it arrives, refusing it as soon as it is known to exceed the
/// limit or the budget, or once it took longer than the limits allow.
pub async fn read_body(
    req: &HttpRequest,
    payload: Payload,
    limits: &BodyLimits,
) -> Result<Body, BodyError> {
    tokio::time::timeout(limits.timeout, read(req, payload, limits))
        .await
        .map_err(|_| BodyError::Timeout(limits.timeout))?
}

async fn read(
    req: &HttpRequest,
    mut payload: Payload,
    limits: &BodyLimits,
) -> Result<Body, BodyError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limits.limit) {
        return Err(BodyError::TooLarge {
            limit: limits.limit,
        });
    }
    let codings = content_codings(req)?;
    let label = codings
        .iter()
        .map(|c| c.name())
        .collect::<Vec<_>>()
        .join(", ");

    // An identity body's length is known; a coded one's is guessed, and a wrong guess costs
    // one move of at most EAGER bytes.
    let first_guess = match (declared, codings.is_empty()) {
        (Some(len), true) => len,
        (Some(len), false) => len.saturating_mul(FIRST_GUESS_RATIO).min(EAGER),
        (None, _) => 0,
    };
    let refused = Rc::new(Cell::new(None));
    let buffer = BodyBuffer::new(
        limits.limit,
        first_guess,
        limits.budget.share(),
        Rc::clone(&refused),
    )?;
    // Listed in the order they were applied: the last one listed sees the wire bytes first.
    let mut sink: Box<dyn Sink> = Box::new(buffer);
    for coding in codings {
        sink = Decoder::wrap(coding, sink, &limits.budget).map_err(|err| match err {
            StartError::OverBudget => BodyError::OverBudget,
            StartError::Codec(err) => corrupt(&label, &err),
        })?;
    }
    // Decoders turn the buffer's refusal into errors of their own: the cell says what it was.
    let failed = |err: io::Error| match refused.get() {
        Some(refusal) => BodyError::from(refusal),
        None => corrupt(&label, &err),
    };
    while let Some(chunk) = payload.next().await {
        // With an encoding, a truncated or corrupt stream surfaces as any payload error.
        let chunk = chunk.map_err(|err| {
            if label.is_empty() {
                BodyError::Read(err.to_string())
            } else {
                BodyError::Corrupt {
                    encoding: label.clone(),
                    reason: err.to_string(),
                }
            }
        })?;
        sink.write_all(&chunk).map_err(failed)?;
    }
    let (bytes, charge) = sink.finish().map_err(failed)?.into_parts();
    Ok(Body {
        reserved: Reservation {
            charge,
            body: bytes.len(),
        },
        bytes: Bytes::from(bytes),
    })
}

fn corrupt(label: &str, err: &io::Error) -> BodyError {
    BodyError::Corrupt {
        encoding: label.to_owned(),
        reason: err.to_string(),
    }
}

/// The codings of the `Content-Encoding` header(s), in the order they were applied.
fn content_codings(req: &HttpRequest) -> Result<Vec<Coding>, BodyError> {
    let mut codings = Vec::new();
    for value in req.headers().get_all(header::CONTENT_ENCODING) {
        let text = value.to_str().map_err(|_| {
            BodyError::UnsupportedEncoding(String::from_utf8_lossy(value.as_bytes()).into_owned())
        })?;
        for token in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match token.parse::<ContentEncoding>() {
                Ok(ContentEncoding::Identity) => {}
                Ok(encoding) => match Coding::of(encoding) {
                    Some(coding) => codings.push(coding),
                    None => return Err(BodyError::UnsupportedEncoding(token.to_owned())),
                },
                Err(_) => return Err(BodyError::UnsupportedEncoding(token.to_owned())),
            }
            if codings.len() > MAX_CODINGS {
                return Err(BodyError::TooManyEncodings);
            }
        }
    }
    Ok(codings)
}
