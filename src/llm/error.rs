//! Why a provider request could not be parsed.

use serde_json::error::Category;

use crate::gojson::message_of;

/// A request that Go's `json.Unmarshal` would refuse; its text is the reference's. The HTTP
/// layer answers 422 `unprocessable turn: cannot parse request: <text>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// No request at all: Go's decoder was handed zero bytes.
    #[error("unexpected end of JSON input")]
    UnexpectedEnd,
    /// A JSON value of the wrong kind for a typed field, e.g.
    /// `json: cannot unmarshal number 64.5 into Go struct field anthropicRequest.max_tokens of type int`.
    #[error("{0}")]
    Type(String),
    /// Text that is not JSON. Unreachable over HTTP (the request was already parsed as part
    /// of the body) but kept for callers that hand raw bytes in.
    #[error("{0}")]
    Syntax(String),
}

impl ParseError {
    pub(crate) fn from_json(e: &serde_json::Error) -> Self {
        match e.classify() {
            Category::Eof => ParseError::UnexpectedEnd,
            Category::Data => ParseError::Type(message_of(e)),
            Category::Syntax | Category::Io => ParseError::Syntax(e.to_string()),
        }
    }
}
