//! Importing through a running server: each turn is `POST /v1/ingest`ed with the key, and
//! its outcome read from the answer.
//!
//! A 202 is accepted, or a duplicate when it added no node and moved no counter (a
//! replayed request id is answered `counted: false`); a 4xx is a rejection, its reason read
//! from its status and `error` text. 429 and 503 are retried after their `Retry-After` (or
//! a growing pause), as is a connection that failed; a server still unavailable after the
//! last attempt ends the import, which a later run resumes.

use std::time::Duration;

use actix_web::http::{StatusCode, Uri, header};
use bytes::Bytes;

use super::{ImportError, Outcome};

/// The first pause without a `Retry-After`; doubled per attempt up to `MAX_PAUSE`.
const FIRST_PAUSE: Duration = Duration::from_millis(200);
const MAX_PAUSE: Duration = Duration::from_secs(10);
/// An answer is a small JSON object; more is not read.
const ANSWER_LIMIT: usize = 64 * 1024;
/// The server answers once the turn is durable, which may wait behind its session's queue.
const TIMEOUT: Duration = Duration::from_secs(120);

/// A server's ingest route and the key to post with.
pub struct Remote {
    client: awc::Client,
    endpoint: Uri,
    key: Option<String>,
    /// Attempts of one turn at most, while the server answers 429 or 503 or cannot be
    /// reached.
    attempts: u32,
}

#[derive(serde::Deserialize)]
struct Accepted {
    #[serde(default)]
    new_nodes: u64,
    #[serde(default)]
    counted: bool,
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: String,
}

/// What one attempt came to.
enum Attempt {
    Settled(Outcome),
    /// Worth another attempt after the pause the server asked for, if any.
    Retry {
        retry_after: Option<Duration>,
        error: String,
        overloaded: bool,
    },
}

impl Remote {
    /// `url` is the server's base (`http://host:port`); its ingest route is `/v1/ingest`.
    pub fn new(url: &str, key: Option<String>, attempts: u32) -> Result<Remote, ImportError> {
        let base = url.trim_end_matches('/');
        let endpoint: Uri = format!("{base}/v1/ingest")
            .parse()
            .map_err(|e| ImportError::Url(format!("{url}: {e}")))?;
        if endpoint.scheme_str() != Some("http") && endpoint.scheme_str() != Some("https") {
            return Err(ImportError::Url(format!("{url}: not an http(s) URL")));
        }
        let client = awc::Client::builder()
            .timeout(TIMEOUT)
            .disable_redirects()
            .finish();
        Ok(Remote {
            client,
            endpoint,
            key,
            attempts: attempts.max(1),
        })
    }

    /// Posts `body` until it is settled. `Err` when the server stayed unavailable or
    /// refused the key: every later turn would fail alike.
    pub async fn post(&self, body: Bytes) -> Result<Outcome, ImportError> {
        let mut pause = FIRST_PAUSE;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (retry_after, error, overloaded) = match self.attempt(body.clone()).await? {
                Attempt::Settled(outcome) => return Ok(outcome),
                Attempt::Retry {
                    retry_after,
                    error,
                    overloaded,
                } => (retry_after, error, overloaded),
            };
            if attempt >= self.attempts {
                return if overloaded {
                    Ok(Outcome::Rejected("overloaded".into()))
                } else {
                    Err(ImportError::Unavailable(error))
                };
            }
            actix_rt::time::sleep(retry_after.unwrap_or(pause)).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }

    async fn attempt(&self, body: Bytes) -> Result<Attempt, ImportError> {
        let mut request = self
            .client
            .post(self.endpoint.clone())
            .insert_header((header::CONTENT_TYPE, "application/json"));
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        let unreachable = |e: &dyn std::fmt::Display| Attempt::Retry {
            retry_after: None,
            error: format!("{}: {e}", self.endpoint),
            overloaded: false,
        };
        let mut response = match request.send_body(body).await {
            Ok(response) => response,
            Err(e) => return Ok(unreachable(&e)),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let answer = match response.body().limit(ANSWER_LIMIT).await {
            Ok(answer) => answer,
            Err(e) => return Ok(unreachable(&e)),
        };
        if status.is_success() {
            let accepted: Accepted = serde_json::from_slice(&answer).map_err(|e| {
                ImportError::Protocol(format!("{}: a {status} answer: {e}", self.endpoint))
            })?;
            return Ok(Attempt::Settled(
                if accepted.new_nodes == 0 && !accepted.counted {
                    Outcome::Duplicate { quarantined: false }
                } else {
                    Outcome::Accepted
                },
            ));
        }
        let error = serde_json::from_slice::<ErrorBody>(&answer)
            .map(|b| b.error)
            .unwrap_or_else(|_| String::from_utf8_lossy(&answer).into_owned());
        match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => Ok(Attempt::Retry {
                retry_after,
                error: format!("{status}: {error}"),
                overloaded: status == StatusCode::TOO_MANY_REQUESTS,
            }),
            StatusCode::UNAUTHORIZED => Err(ImportError::Refused(error)),
            StatusCode::FORBIDDEN if !error.contains("another org") => {
                Err(ImportError::Refused(error))
            }
            _ => Ok(Attempt::Settled(Outcome::Rejected(reason(status, &error)))),
        }
    }
}

/// The summary's reason for a refused turn, as the in-process import names it: the
/// status, and for a 422 the start of the text (`unprocessable turn: …`, docs/wire.md).
fn reason(status: StatusCode, error: &str) -> String {
    let turn = error.strip_prefix("unprocessable turn: ").unwrap_or(error);
    let named = match status.as_u16() {
        400 => "invalid_envelope",
        403 => "org_mismatch",
        413 => "too_large",
        422 if turn.starts_with("unsupported provider") => "unsupported_provider",
        422 if turn.starts_with("cannot parse request") => "unparseable_request",
        422 if turn.contains(" must be between 0 and ")
            || turn.contains(" must not be negative")
            || turn.contains(" longer than ") =>
        {
            "limit"
        }
        422 if turn.starts_with("invalid reduced response") => "invalid_response",
        code => return format!("http_{code}"),
    };
    named.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::turn::LimitError;
    use crate::turn::Rejection;
    use crate::wire::TurnError;

    #[test]
    fn a_refusal_is_named_as_the_in_process_import_names_it() {
        let rejections = [
            Rejection::from(TurnError::UnsupportedProvider("x".into())),
            Rejection::from(LimitError::Tokens {
                field: "input_tokens",
                value: -1,
            }),
            Rejection::from(LimitError::Duration {
                field: "total_duration_ns",
                value: -1,
            }),
            Rejection::from(LimitError::TooLong {
                field: "model",
                limit: 10,
            }),
        ];
        for rejection in rejections {
            let status = StatusCode::from_u16(rejection.status_code()).unwrap();
            assert_eq!(reason(status, &rejection.to_string()), rejection.reason());
        }
        assert_eq!(
            reason(StatusCode::BAD_REQUEST, "invalid envelope: x"),
            "invalid_envelope"
        );
        assert_eq!(
            reason(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unprocessable turn: cannot parse request: x"
            ),
            "unparseable_request"
        );
        assert_eq!(reason(StatusCode::NOT_FOUND, "gone"), "http_404");
    }

    #[actix_rt::test]
    async fn only_http_urls_are_taken() {
        assert!(Remote::new("http://127.0.0.1:1/", None, 1).is_ok());
        assert!(matches!(
            Remote::new("ftp://host", None, 1),
            Err(ImportError::Url(_))
        ));
        assert!(matches!(
            Remote::new("not a url", None, 1),
            Err(ImportError::Url(_))
        ));
    }
}
