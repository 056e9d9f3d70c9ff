//! The optional `session` block of a turn: which org, harness and harness session it belongs to.

use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::gojson::{DecodeInPlace, in_place_struct, pointer_fields};

/// Harness id used when the envelope has none.
pub const UNKNOWN_HARNESS: &str = "unknown";

/// The session envelope (docs/wire.md#session-envelope, plus reel's `parent_harness_id`).
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

in_place_struct!(SessionEnvelope, "a session envelope object" {
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

pointer_fields!(SessionEnvelope, String);

/// `harness_metadata` is a `json.RawMessage`: a value replaces it whole, and `null` is
/// taken as its absence.
impl<'de> DecodeInPlace<'de> for Option<Box<RawValue>> {
    fn decode_in_place<D: serde::Deserializer<'de>>(&mut self, d: D) -> Result<(), D::Error> {
        *self = Option::<Box<RawValue>>::deserialize(d)?;
        Ok(())
    }
}

/// The longest `harness_id` and `parent_harness_id`, in bytes.
pub const MAX_HARNESS_ID_BYTES: usize = 256;
/// The longest `harness_session_id`, `parent_harness_session_id` and `auth_subject`.
pub const MAX_SESSION_ID_BYTES: usize = 512;
/// The longest `harness_version`.
pub const MAX_VERSION_BYTES: usize = 256;
/// The longest `name` and `cwd` (a Linux path is at most 4096 bytes).
pub const MAX_FREE_TEXT_BYTES: usize = 4096;
/// The largest `harness_metadata`, as its JSON text.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;
/// The deepest nesting of `harness_metadata`, the object itself being level 1.
pub const MAX_METADATA_DEPTH: usize = 64;

/// Why an envelope was refused (docs/wire.md#envelope-validation). The texts of the
/// reference's checks match its own.
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
    #[error("{field} longer than {limit} bytes")]
    TooLong { field: &'static str, limit: usize },
    #[error("harness_metadata nested deeper than {MAX_METADATA_DEPTH} levels")]
    MetadataTooDeep,
    #[error("harness_metadata: {0}")]
    MetadataValue(String),
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
    /// The reference's checks at the HTTP boundary
    /// (docs/wire.md#envelope-validation), in its order, plus reel's
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
            // byte names its kind. `null` is accepted and means "no metadata"
            // (docs/divergences.md#null-metadata).
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
        self.validate_sizes()
    }

    /// reel's bounds (docs/wire.md#limits), after the reference's checks: every stored
    /// text fits its indexes on Postgres even when each byte is a U+0000 stored as the
    /// three bytes of U+FFFD (a btree entry holds 2704 bytes; `harness_id` and
    /// `harness_session_id` share one), and metadata stays small and shallow enough for the
    /// store to parse it again.
    fn validate_sizes(&self) -> Result<(), EnvelopeError> {
        let optional = |s: &Option<String>| s.as_deref().map_or(0, str::len);
        let fields = [
            (
                "auth_subject",
                self.auth_subject.len(),
                MAX_SESSION_ID_BYTES,
            ),
            ("harness_id", self.harness_id.len(), MAX_HARNESS_ID_BYTES),
            (
                "harness_session_id",
                self.harness_session_id.len(),
                MAX_SESSION_ID_BYTES,
            ),
            (
                "harness_version",
                self.harness_version.len(),
                MAX_VERSION_BYTES,
            ),
            ("cwd", self.cwd.len(), MAX_FREE_TEXT_BYTES),
            ("name", self.name.len(), MAX_FREE_TEXT_BYTES),
            (
                "parent_harness_session_id",
                optional(&self.parent_harness_session_id),
                MAX_SESSION_ID_BYTES,
            ),
            (
                "parent_harness_id",
                optional(&self.parent_harness_id),
                MAX_HARNESS_ID_BYTES,
            ),
            (
                "harness_metadata",
                self.harness_metadata.as_ref().map_or(0, |m| m.get().len()),
                MAX_METADATA_BYTES,
            ),
        ];
        for (field, len, limit) in fields {
            if len > limit {
                return Err(EnvelopeError::TooLong { field, limit });
            }
        }
        let Some(raw) = &self.harness_metadata else {
            return Ok(());
        };
        if json_depth(raw.get()) > MAX_METADATA_DEPTH {
            return Err(EnvelopeError::MetadataTooDeep);
        }
        // Kept verbatim, the metadata's numbers were scanned but never parsed.
        serde_json::from_str::<Parses>(raw.get())
            .map(drop)
            .map_err(|e| EnvelopeError::MetadataValue(e.to_string()))
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

/// A JSON document visited the way the store will parse it, without building anything:
/// a number outside the range of a double fails here, not at commit.
struct Parses;

impl<'de> serde::Deserialize<'de> for Parses {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Parses)
    }
}

impl<'de> serde::de::Visitor<'de> for Parses {
    type Value = Parses;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Parses, E> {
        Ok(Parses)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Parses, E> {
        Ok(Parses)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Parses, E> {
        Ok(Parses)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Parses, E> {
        Ok(Parses)
    }

    fn visit_str<E>(self, _: &str) -> Result<Parses, E> {
        Ok(Parses)
    }

    fn visit_unit<E>(self) -> Result<Parses, E> {
        Ok(Parses)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Parses, A::Error> {
        while seq.next_element::<Parses>()?.is_some() {}
        Ok(Parses)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Parses, A::Error> {
        while map.next_entry::<serde::de::IgnoredAny, Parses>()?.is_some() {}
        Ok(Parses)
    }
}

/// The deepest nesting of arrays and objects in valid JSON text. Kept verbatim, metadata was
/// never depth-checked by the body decoder, and the store parses it again with a recursion
/// limit, so too deep a value must be refused here.
fn json_depth(json: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut in_string = false;
    let mut escaped = false;
    for byte in json.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    //! The reference's `Validate` tests (docs/wire.md#envelope-validation) and reel's additions.

    use super::*;
    use crate::wire::decode_turn;

    fn raw(json: &str) -> Option<Box<RawValue>> {
        Some(RawValue::from_string(json.to_owned()).unwrap())
    }

    fn envelope(json: &str) -> SessionEnvelope {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn accepts_a_missing_envelope() {
        let turn = decode_turn(br#"{"provider":"openai"}"#).unwrap();
        assert_eq!(turn.validate_session(), Ok(()));
        let turn = decode_turn(br#"{"provider":"openai","session":null}"#).unwrap();
        assert_eq!(turn.validate_session(), Ok(()));
    }

    #[test]
    fn accepts_a_zero_value_envelope() {
        assert_eq!(SessionEnvelope::default().validate(), Ok(()));
    }

    #[test]
    fn accepts_a_fully_populated_envelope() {
        let env = envelope(
            r#"{"org_id":"11111111-1111-1111-1111-111111111111","auth_subject":"user@example.com",
                "harness_id":"claude","harness_session_id":"abc","harness_version":"1.0.0",
                "cwd":"/work","name":"session","parent_harness_session_id":"parent-1",
                "parent_harness_id":"codex","harness_metadata":{"ai_title":"hello"}}"#,
        );
        assert_eq!(env.validate(), Ok(()));
        assert_eq!(env.parent_harness_session_id.as_deref(), Some("parent-1"));
        assert_eq!(env.parent_harness_id_or_own(), "codex");
    }

    #[test]
    fn accepts_an_empty_org_id() {
        let env = SessionEnvelope {
            harness_id: "claude".into(),
            ..SessionEnvelope::default()
        };
        assert_eq!(env.validate(), Ok(()));
    }

    #[test]
    fn rejects_an_org_id_that_is_not_a_uuid() {
        let env = SessionEnvelope {
            org_id: "not-a-uuid".into(),
            ..SessionEnvelope::default()
        };
        let err = env.validate().unwrap_err();
        assert_eq!(err, EnvelopeError::OrgId("invalid UUID length: 10".into()));
        assert!(err.to_string().contains("org_id"));
    }

    #[test]
    fn rejects_a_parent_harness_session_id_that_is_empty() {
        let env = envelope(r#"{"parent_harness_session_id":""}"#);
        let err = env.validate().unwrap_err();
        assert!(err.to_string().contains("parent_harness_session_id"));
        // null is absence, not emptiness.
        let env = envelope(r#"{"parent_harness_session_id":null}"#);
        assert_eq!(env.validate(), Ok(()));
    }

    #[test]
    fn rejects_a_parent_harness_id_that_is_empty() {
        let env = envelope(r#"{"parent_harness_session_id":"p","parent_harness_id":""}"#);
        assert_eq!(env.validate(), Err(EnvelopeError::EmptyParentHarness));
        assert_eq!(
            env.validate().unwrap_err().to_string(),
            "parent_harness_id is present but empty; omit the field instead"
        );
    }

    #[test]
    fn rejects_metadata_that_is_not_an_object() {
        for (json, kind) in [("[1,2]", "array"), ("42", "number"), ("\"x\"", "string")] {
            let env = SessionEnvelope {
                harness_metadata: raw(json),
                ..SessionEnvelope::default()
            };
            let err = env.validate().unwrap_err().to_string();
            assert!(err.contains("harness_metadata"), "{err}");
            assert!(err.contains(kind), "{err}");
        }
    }

    #[test]
    fn malformed_metadata_fails_the_body_decode() {
        let body = br#"{"provider":"openai","session":{"harness_metadata":{"a":}}}"#;
        assert!(decode_turn(body).is_err());
    }

    #[test]
    fn accepts_empty_absent_and_null_metadata() {
        let env = envelope(r#"{"harness_metadata":{}}"#);
        assert_eq!(env.validate(), Ok(()));
        let env = envelope(r#"{"harness_id":"claude"}"#);
        assert_eq!(env.validate(), Ok(()));
        let env = envelope(r#"{"harness_metadata":null}"#);
        assert_eq!(env.validate(), Ok(()));
        assert!(env.harness_metadata_object().is_none());
        let env = SessionEnvelope {
            harness_metadata: raw("null"),
            ..SessionEnvelope::default()
        };
        assert_eq!(env.validate(), Ok(()));
        assert!(env.harness_metadata_object().is_none());
    }

    #[test]
    fn decoding_is_go_lenient() {
        let env = envelope(r#"{"harness_id":null,"harness_id":"claude","cwd":null,"extra":1}"#);
        assert_eq!(env.harness_id, "claude");
        assert_eq!(env.cwd, "");
        assert!(serde_json::from_str::<SessionEnvelope>(r#"{"harness_id":5}"#).is_err());
    }

    #[test]
    fn harness_normalisation() {
        let mut env = SessionEnvelope::default();
        assert_eq!(env.harness_id_or_unknown(), "unknown");
        assert!(env.needs_synthetic_harness_session_id());
        env.harness_id = "claude".into();
        assert!(env.needs_synthetic_harness_session_id());
        env.harness_session_id = "s1".into();
        assert!(!env.needs_synthetic_harness_session_id());
        env.harness_id = "unknown".into();
        assert!(env.needs_synthetic_harness_session_id());
        env.harness_id = " Claude ".into();
        assert_eq!(env.harness_id_or_unknown(), " Claude ");
    }

    #[test]
    fn every_stored_text_has_a_byte_limit() {
        let long = |n| "x".repeat(n);
        for (field, limit) in [
            ("auth_subject", 512),
            ("harness_id", 256),
            ("harness_session_id", 512),
            ("harness_version", 256),
            ("cwd", 4096),
            ("name", 4096),
            ("parent_harness_session_id", 512),
            ("parent_harness_id", 256),
        ] {
            let env = envelope(&format!(r#"{{"{field}":"{}"}}"#, long(limit + 1)));
            let err = env.validate().unwrap_err();
            assert_eq!(err, EnvelopeError::TooLong { field, limit });
            assert_eq!(
                err.to_string(),
                format!("{field} longer than {limit} bytes")
            );
            let env = envelope(&format!(r#"{{"{field}":"{}"}}"#, long(limit)));
            assert_eq!(env.validate(), Ok(()), "{field}");
        }
        // Worst case of the shared index, every byte stored as three.
        const { assert!(3 * (MAX_HARNESS_ID_BYTES + MAX_SESSION_ID_BYTES) + 16 < 2704) };
    }

    #[test]
    fn metadata_is_bounded_in_size_and_depth() {
        let nested = |levels: usize| format!("{}1{}", "{\"a\":".repeat(levels), "}".repeat(levels));
        let env = |json: String| SessionEnvelope {
            harness_metadata: raw(&json),
            ..SessionEnvelope::default()
        };
        assert_eq!(env(nested(64)).validate(), Ok(()));
        assert_eq!(
            env(nested(65)).validate(),
            Err(EnvelopeError::MetadataTooDeep)
        );
        // Brackets inside strings do not nest.
        let text = format!("{{\"a\":\"{}\\\"{}\"}}", "[".repeat(100), "{".repeat(100));
        assert_eq!(env(text).validate(), Ok(()));
        assert_eq!(
            env(r#"{"a":[1,-2.5e10,true,null,{"b":"\u00e9"}]}"#.to_owned()).validate(),
            Ok(())
        );
        assert_eq!(
            env(r#"{"a":[1e400]}"#.to_owned())
                .validate()
                .unwrap_err()
                .to_string(),
            "harness_metadata: number out of range at line 1 column 11"
        );
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_METADATA_BYTES));
        assert_eq!(
            env(big).validate().unwrap_err().to_string(),
            "harness_metadata longer than 65536 bytes"
        );
    }

    #[test]
    fn org_id_forms() {
        let id = "0191b5c4-1e2f-7a3b-8c4d-5e6f7a8b9c0d";
        let want = Uuid::parse_str(id).unwrap();
        assert_eq!(parse_org_id(""), Ok(Uuid::nil()));
        assert_eq!(parse_org_id(id), Ok(want));
        assert_eq!(parse_org_id(&id.to_uppercase()), Ok(want));
        assert_eq!(parse_org_id(&id.replace('-', "")), Ok(want));
        assert_eq!(parse_org_id(&format!("urn:uuid:{id}")), Ok(want));
        assert_eq!(parse_org_id(&format!("{{{id}}}")), Ok(want));
        assert_eq!(parse_org_id(&format!("x{id}y")), Ok(want));
        assert_eq!(
            parse_org_id(&format!("urn:uid:x{id}")),
            Err("invalid urn prefix: \"urn:uid:x\"".into())
        );
        assert_eq!(
            parse_org_id("zzzzzzzz-1e2f-7a3b-8c4d-5e6f7a8b9c0d"),
            Err("invalid UUID format".into())
        );
        assert_eq!(parse_org_id("abc"), Err("invalid UUID length: 3".into()));
    }
}
