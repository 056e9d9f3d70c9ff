//! Reading a request body: Content-Encoding decoding, the size limit, the memory budget.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::HttpRequest;
use actix_web::dev::Decompress;
use actix_web::error::PayloadError;
use actix_web::http::header::{self, ContentEncoding};
use actix_web::web::{Bytes, BytesMut, Payload};
use futures_util::{Stream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Compressed input is fed to a decoder in slices this small, so one slice of a
/// decompression bomb can only expand so far before the size limit is checked again.
const DECODE_SLICE: usize = 2 * 1024;
/// The memory budget is counted in units of this many bytes…
const BUDGET_UNIT: usize = 1024;
/// …and reserved this many units at a time.
const BUDGET_STEP: u32 = 64;

/// Limits applied to every ingest body.
#[derive(Clone)]
pub struct BodyLimits {
    /// Largest decoded body.
    pub limit: usize,
    /// Bytes of bodies held at once, across requests, in [`BUDGET_UNIT`]s.
    budget: Arc<Semaphore>,
}

impl BodyLimits {
    pub fn new(limit: usize, budget_bytes: usize) -> Self {
        BodyLimits {
            limit,
            budget: Arc::new(Semaphore::new(
                (budget_bytes / BUDGET_UNIT).min(Semaphore::MAX_PERMITS),
            )),
        }
    }
}

/// A fully read body. Its share of the memory budget is returned when it is dropped.
pub struct Body {
    pub bytes: Bytes,
    _reserved: Option<OwnedSemaphorePermit>,
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the body exceeds {limit} bytes")]
    TooLarge { limit: usize },
    #[error("unsupported Content-Encoding {0:?}")]
    UnsupportedEncoding(String),
    #[error("cannot decode the {encoding} body: {reason}")]
    Corrupt { encoding: String, reason: String },
    #[error("cannot read the body: {0}")]
    Read(String),
    #[error("overloaded: request bodies in memory exceed the budget")]
    OverBudget,
}

/// Reads the whole body, decoding every `Content-Encoding` listed (gzip, deflate, br, zstd,
/// stacked in any order), refusing it as soon as it is known to exceed the limit.
pub async fn read_body(
    req: &HttpRequest,
    payload: Payload,
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
    let encodings = content_encodings(req)?;
    let label = encodings
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(", ");

    let mut stream: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> =
        Box::pin(payload.into_inner());
    // Listed in the order they were applied: undo the last one first.
    for encoding in encodings.into_iter().rev() {
        stream = Box::pin(Decompress::new(Sliced::new(stream), encoding));
    }

    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0).min(limits.limit).max(1024));
    let mut reserved: Option<OwnedSemaphorePermit> = None;
    let mut reserved_bytes = 0usize;
    while let Some(chunk) = stream.next().await {
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
        if buf.len() + chunk.len() > limits.limit {
            return Err(BodyError::TooLarge {
                limit: limits.limit,
            });
        }
        while buf.len() + chunk.len() > reserved_bytes {
            let permit = limits
                .budget
                .clone()
                .try_acquire_many_owned(BUDGET_STEP)
                .map_err(|_| BodyError::OverBudget)?;
            match reserved.as_mut() {
                Some(held) => held.merge(permit),
                None => reserved = Some(permit),
            }
            reserved_bytes += BUDGET_STEP as usize * BUDGET_UNIT;
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Body {
        bytes: buf.freeze(),
        _reserved: reserved,
    })
}

/// The encodings of the `Content-Encoding` header(s), in the order they were applied.
fn content_encodings(req: &HttpRequest) -> Result<Vec<ContentEncoding>, BodyError> {
    let mut encodings = Vec::new();
    for value in req.headers().get_all(header::CONTENT_ENCODING) {
        let text = value.to_str().map_err(|_| {
            BodyError::UnsupportedEncoding(String::from_utf8_lossy(value.as_bytes()).into_owned())
        })?;
        for token in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match token.parse::<ContentEncoding>() {
                Ok(ContentEncoding::Identity) => {}
                Ok(
                    encoding @ (ContentEncoding::Gzip
                    | ContentEncoding::Deflate
                    | ContentEncoding::Brotli
                    | ContentEncoding::Zstd),
                ) => encodings.push(encoding),
                _ => return Err(BodyError::UnsupportedEncoding(token.to_owned())),
            }
        }
    }
    Ok(encodings)
}

/// Re-chunks a stream into slices of at most [`DECODE_SLICE`] bytes (no copies).
struct Sliced<S> {
    inner: S,
    rest: Bytes,
}

impl<S> Sliced<S> {
    fn new(inner: S) -> Self {
        Sliced {
            inner,
            rest: Bytes::new(),
        }
    }
}

impl<S> Stream for Sliced<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if !this.rest.is_empty() {
                let n = this.rest.len().min(DECODE_SLICE);
                return Poll::Ready(Some(Ok(this.rest.split_to(n))));
            }
            match this.inner.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(chunk))) => this.rest = chunk,
                other => return other,
            }
        }
    }
}
