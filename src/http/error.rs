//! Every error the HTTP layer answers, its status, and its `{"error": …}` body.
//!
//! Texts follow the reference (docs/wire.md#errors-and-statuses) where it has an answer: `invalid
//! envelope: …` (400), `unprocessable turn: …` (422), `downstream failure: …` (502). reel adds
//! `overloaded: …` (429) and `unavailable: …` (503), both with `Retry-After`, and JSON
//! bodies for 404, 405 and 413, which the reference answered in plain text.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use uuid::Uuid;

use super::json::JSON;
use super::json::to_go_json;
use crate::sessions::SubmitError;
use crate::store::StoreError;
use crate::turn::Rejection;
use crate::wire::DecodeError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not a turn (400) or cannot become a chain (422); the rejection's text.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// A 422 whose turn was kept as a quarantined raw turn (docs/capture.md §13.2): the
    /// rejection's text, and the raw turn's id beside it in the body.
    #[error("{message}")]
    Quarantined { message: String, raw_turn_id: Uuid },
    /// An ingest body over the limit; the reference's text (the limit is logged, not sent).
    #[error("request body exceeds the ingest size limit")]
    TooLarge { limit: usize },
    #[error("Request Timeout: the body did not arrive within {secs} seconds")]
    BodyTimeout { secs: u64 },
    /// A limit is full: retry after `retry_after` seconds.
    #[error("{message}")]
    Overloaded { message: String, retry_after: u64 },
    /// The database is unreachable or the server is stopping.
    #[error("{message}")]
    Unavailable { message: String, retry_after: u64 },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("Method Not Allowed")]
    MethodNotAllowed,
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// A read from the database failed.
    #[error("downstream failure: {0}")]
    Downstream(String),
    /// Details are logged, not sent.
    #[error("internal error")]
    Internal,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_turn_id: Option<Uuid>,
}

/// The `{"error": …}` body of every error answer.
pub(super) fn error_body(text: &str) -> Vec<u8> {
    to_go_json(&ErrorBody {
        error: text,
        raw_turn_id: None,
    })
}

impl ApiError {
    /// A body that cannot be read or decoded as a payload: 400 `invalid envelope: …`.
    pub fn undecodable(reason: impl Into<String>) -> Self {
        ApiError::Rejected(Rejection::Body(DecodeError::Json(reason.into())))
    }

    /// Maps a failed store read or write outside a session's commit: an outage is a 503 the
    /// client may retry, anything else a 502.
    pub fn from_store(err: &StoreError, retry_after: u64) -> Self {
        if err.is_retryable() {
            return ApiError::Unavailable {
                message: format!("unavailable: {err}"),
                retry_after,
            };
        }
        tracing::error!(error = %err, "store failed");
        ApiError::Downstream(err.to_string())
    }

    /// Maps a failed submission; `retry_after` is the configured `Retry-After` in seconds.
    pub fn from_submit(err: SubmitError, retry_after: u64) -> Self {
        if err.overload().is_some() {
            return ApiError::Overloaded {
                message: err.to_string(),
                retry_after,
            };
        }
        if err.is_unavailable() {
            return ApiError::Unavailable {
                message: err.to_string(),
                retry_after,
            };
        }
        tracing::error!(error = %err, "commit failed");
        ApiError::Internal
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Rejected(rejection) => match rejection.status_code() {
                422 => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::BAD_REQUEST,
            },
            ApiError::Quarantined { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::Overloaded { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Downstream(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = self.to_string();
        let mut response = HttpResponse::build(self.status_code());
        response.content_type(JSON);
        match self {
            ApiError::Overloaded { retry_after, .. }
            | ApiError::Unavailable { retry_after, .. } => {
                response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            ApiError::Unauthorized(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::Quarantined { raw_turn_id, .. } => {
                return response.body(to_go_json(&ErrorBody {
                    error: &message,
                    raw_turn_id: Some(*raw_turn_id),
                }));
            }
            _ => {}
        }
        response.body(error_body(&message))
    }
}
