//! The optional `session` block of a turn: which org, harness and harness session it belongs to.

use serde_json::value::RawValue;
use uuid::Uuid;

use crate::gojson::{go_struct, null_clears};

/// Harness id used when the envelope has none.
pub const UNKNOWN_HARNESS: &str = "unknown";

/// The session envelope (wire.md §5.1, plus reel's `parent_harness_id`).
///
/// Decoded with Go's rules (`null` strings are `""`, unknown keys ignored); `null` for the
/// optional members is the same as their absence.
#[derive(Debug, Clone, Default)]
pub struct SessionEnvelope {
    pub org_id: String,
    pub auth_subject: String,
    pub harness_id: String,
    pub harness_session_id: String,
    pub harness_version: String,
    pub cwd: String,
    pub name: String,
    /// Fork-parent hint; `None` when absent or `null`.
    pub parent_harness_session_id: Option<String>,
    /// Harness of the fork parent; defaults to this envelope's harness.
    pub parent_harness_id: Option<String>,
    /// Raw JSON object merged into `sessions.harness_metadata`; `null` is treated as absent.
    pub harness_metadata: Option<Box<RawValue>>,
}

go_struct!(SessionEnvelope, "a session envelope object" {
    "org_id" => org_id,
    "auth_subject" => auth_subject,
    "harness_id" => harness_id,
    "harness_session_id" => harness_session_id,
    "harness_version" => harness_version,
    "cwd" => cwd,
    "name" => name,
    "parent_harness_session_id" => parent_harness_session_id,
    "parent_harness_id" => parent_harness_id,
    "harness_metadata" => harness_metadata,
});

null_clears!(String, Box<RawValue>);

/// Why an envelope was refused (wire.md §5.2). The texts match the reference's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("org_id is not a valid UUID: {0}")]
    OrgId(String),
    #[error("parent_harness_session_id is present but empty; omit the field instead")]
    EmptyParent,
    #[error("parent_harness_id is present but empty; omit the field instead")]
    EmptyParentHarness,
    #[error("harness_metadata is not a JSON object: {0}")]
    Metadata(String),
}

/// Parses an org id the way the reference's `uuid.Parse` does; `""` is the nil-UUID sentinel.
///
/// Accepted forms: 36-character hyphenated, 32 hex digits, `urn:uuid:` + 36, and 38 characters
/// whose first and last characters are ignored (`{…}`). Hex is case-insensitive.
pub fn parse_org_id(s: &str) -> Result<Uuid, String> {
    if s.is_empty() {
        return Ok(Uuid::nil());
    }
    let body = match s.len() {
        36 | 32 => s,
        45 => {
            let prefix = &s.as_bytes()[..9];
            if !prefix.eq_ignore_ascii_case(b"urn:uuid:") {
                return Err(format!(
                    "invalid urn prefix: {:?}",
                    String::from_utf8_lossy(prefix)
                ));
            }
            &s[9..]
        }
        38 => s.get(1..37).ok_or("invalid UUID format")?,
        n => return Err(format!("invalid UUID length: {n}")),
    };
    Uuid::try_parse(body).map_err(|_| "invalid UUID format".to_owned())
}

impl SessionEnvelope {
    /// The reference's checks at the HTTP boundary (wire.md §5.2), in its order, plus reel's
    /// `parent_harness_id`, which may not be present but empty either.
    pub fn validate(&self) -> Result<(), EnvelopeError> {
        parse_org_id(&self.org_id).map_err(EnvelopeError::OrgId)?;
        if self.parent_harness_session_id.as_deref() == Some("") {
            return Err(EnvelopeError::EmptyParent);
        }
        if self.parent_harness_id.as_deref() == Some("") {
            return Err(EnvelopeError::EmptyParentHarness);
        }
        if let Some(raw) = &self.harness_metadata {
            // `raw` is valid JSON (it was decoded or built through `RawValue`), so its first
            // byte names its kind. `null` is accepted and means "no metadata" (README.md 8).
            let kind = match raw.get().trim_start().as_bytes().first() {
                Some(b'{') | Some(b'n') => None,
                Some(b'[') => Some("array"),
                Some(b'"') => Some("string"),
                Some(b't' | b'f') => Some("bool"),
                _ => Some("number"),
            };
            if let Some(kind) = kind {
                return Err(EnvelopeError::Metadata(format!(
                    "json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
                )));
            }
        }
        Ok(())
    }

    /// The metadata object, with `null` treated as absent.
    pub fn harness_metadata_object(&self) -> Option<&RawValue> {
        self.harness_metadata
            .as_deref()
            .filter(|raw| raw.get().trim() != "null")
    }

    /// `"unknown"` when the harness id is empty, else the id verbatim.
    pub fn harness_id_or_unknown(&self) -> &str {
        if self.harness_id.is_empty() {
            UNKNOWN_HARNESS
        } else {
            &self.harness_id
        }
    }

    /// True when the session id must be derived from the root hash: no harness, the
    /// `unknown` harness (which discards a supplied id), or no harness session id.
    pub fn needs_synthetic_harness_session_id(&self) -> bool {
        self.harness_id_or_unknown() == UNKNOWN_HARNESS || self.harness_session_id.is_empty()
    }

    /// The harness under which the fork parent is looked up.
    pub fn parent_harness_id_or_own(&self) -> &str {
        match self.parent_harness_id.as_deref() {
            Some(h) if !h.is_empty() => h,
            _ => self.harness_id_or_unknown(),
        }
    }
}
