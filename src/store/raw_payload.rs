//! The payload a stored raw turn was captured from: what `reel raw get` prints, the admin
//! route shows and `reel reprocess` decodes again.
//!
//! Every member is the stored text verbatim, so POSTing the payload again reproduces the
//! turn: the request bytes as received, the client's response, `meta` and the envelope as
//! sent, `raw_response` still under its coding. A response the server reduced from
//! `raw_response` is left out: the client did not send it, and without it the reducer runs
//! again on the bytes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use super::StoreError;
use super::raw::StoredRawTurn;

/// A stored raw turn as the body it was posted in. Serializes to that body.
#[derive(Debug, Serialize)]
pub struct RawPayload<'a> {
    provider: &'a str,
    agent_name: &'a str,
    /// `None` when the turn had no `request` member.
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<RequestMember<'a>>,
    /// The request is not JSON text, so `request` holds its bytes in base64.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    request_base64: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<&'a RawValue>,
    /// Standard base64 with padding, as the wire carries it.
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_response: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_response_encoding: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    raw_response_withheld: bool,
    meta: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<&'a RawValue>,
}

/// The stored request bytes: embedded as they are when they are JSON text (always, for
/// turns stored by reel), else base64.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum RequestMember<'a> {
    Json(&'a RawValue),
    Base64(String),
}

impl RawPayload<'_> {
    /// True when `request` is base64 because the stored bytes are not JSON text.
    pub fn request_is_base64(&self) -> bool {
        self.request_base64
    }
}

impl StoredRawTurn {
    /// The body this turn was posted in (module doc): the server's reduction left out.
    pub fn payload(&self) -> Result<RawPayload<'_>, StoreError> {
        self.build_payload(false)
    }

    /// [`StoredRawTurn::payload`] for deriving the turn again. A reduction whose
    /// `raw_response` bytes were not kept (over the 8 MiB cap) stays in as the response:
    /// it is all that is left of the response, and without it the turn could only fail.
    pub fn reprocessing_payload(&self) -> Result<RawPayload<'_>, StoreError> {
        self.build_payload(true)
    }

    fn build_payload(&self, keep_orphan_reduction: bool) -> Result<RawPayload<'_>, StoreError> {
        let summary = &self.summary;
        let member = |what, text| json_member(summary.id, what, text);
        let request = (!self.request.is_empty()).then(|| {
            std::str::from_utf8(&self.request)
                .ok()
                .and_then(|text| serde_json::from_str::<&RawValue>(text).ok())
                .map_or_else(
                    || RequestMember::Base64(STANDARD.encode(&self.request)),
                    RequestMember::Json,
                )
        });
        let request_base64 = matches!(request, Some(RequestMember::Base64(_)));
        let sent_response =
            !summary.response_reduced || (keep_orphan_reduction && self.raw_response.is_none());
        let response = match &self.response {
            Some(text) if sent_response => Some(member("response", text)?),
            _ => None,
        };
        let raw_response = self.raw_response.as_deref().filter(|b| !b.is_empty());
        Ok(RawPayload {
            provider: &summary.provider,
            agent_name: &summary.agent_name,
            request,
            request_base64,
            response,
            raw_response: raw_response.map(|bytes| STANDARD.encode(bytes)),
            raw_response_encoding: raw_response.map(|_| summary.raw_response_encoding.as_str()),
            raw_response_withheld: summary.raw_response_dropped && raw_response.is_none(),
            meta: member("meta", &self.meta)?,
            session: self
                .envelope
                .as_deref()
                .map(|text| member("session", text))
                .transpose()?,
        })
    }
}

/// A stored JSON member, borrowed as it is; not JSON means the row is damaged.
fn json_member<'a>(id: Uuid, what: &str, text: &'a str) -> Result<&'a RawValue, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("raw turn {id}: stored {what}: {e}")))
}
