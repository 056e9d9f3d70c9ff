//! The capture adapter's `meta` block (docs/capture.md §1): the members reel interprets,
//! and the type of every member the reference declares, which must hold even where reel
//! does not use the value.

use serde::Deserializer;
use serde::de::DeserializeSeed;

use crate::gojson::{DecodeInPlace, in_place_struct, pointer_fields};

/// `meta`, as decoded. The block itself is also kept verbatim with the raw turn, unknown
/// members included.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Meta {
    /// The raw-turn dedup key; `""` never dedups.
    pub request_id: String,
    pub upstream_request_id: String,
    /// The upstream response's Content-Type: picks stream or one-shot reduction.
    pub content_type: String,
    /// The harness sub-thread; `""` is the main thread.
    pub thread_id: String,
    /// Call duration in seconds; only finite values in (0, 7 days] are used.
    pub elapsed_seconds: f64,
    /// When the request went upstream (RFC 3339; unparseable values are skipped, not refused).
    pub ts_request: String,
    /// When the turn completed upstream (RFC 3339, as `ts_request`).
    pub captured_at: String,
}

impl Meta {
    pub fn is_empty(&self) -> bool {
        *self == Meta::default()
    }
}

/// Seeds for the members reel does not interpret: each checks its member's type as the
/// reference's typed struct does (`"upstream_status":"200"` is a 400) and drops the value.
struct TextCheck;
struct IntCheck;

impl<'de> DeserializeSeed<'de> for TextCheck {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        String::new().decode_in_place(d)
    }
}

impl<'de> DeserializeSeed<'de> for IntCheck {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        0i64.decode_in_place(d)
    }
}

in_place_struct!(Meta, "a meta object" {
    "request_id" => request_id,
    "upstream_request_id" => upstream_request_id,
    "content_type" => content_type,
    "thread_id" => thread_id,
    "elapsed_seconds" => elapsed_seconds,
    "ts_request" => ts_request,
    "captured_at" => captured_at,
    "method" => (TextCheck),
    "path" => (TextCheck),
    "endpoint" => (TextCheck),
    "model" => (TextCheck),
    "model_family" => (TextCheck),
    "stream" => (TextCheck),
    "content_encoding" => (TextCheck),
    "upstream_status_class" => (TextCheck),
    "upstream_status" => (IntCheck),
    "request_bytes" => (IntCheck),
    "response_bytes" => (IntCheck),
});

pointer_fields!(Meta);

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(json: &str) -> Result<Option<Meta>, serde_json::Error> {
        let mut out = None;
        crate::gojson::decode_whole(json, crate::gojson::InPlace(&mut out))?;
        Ok(out)
    }

    #[test]
    fn interpreted_members_are_kept() {
        let m = meta(
            r#"{"request_id":"req_01","content_type":"text/event-stream","ts_request":"x",
                "elapsed_seconds":3.25,"captured_at":"2026-01-01T00:00:05Z","thread_id":"t",
                "extra_field":{"any":[1]},"Request_ID":"req_02"}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(m.request_id, "req_02", "keys fold, the last one wins");
        assert_eq!(m.content_type, "text/event-stream");
        assert_eq!(m.elapsed_seconds, 3.25);
        assert_eq!(m.captured_at, "2026-01-01T00:00:05Z");
        assert_eq!(m.thread_id, "t");
    }

    #[test]
    fn every_declared_member_is_typed() {
        for bad in [
            r#"{"upstream_status":"200"}"#,
            r#"{"upstream_status":200.5}"#,
            r#"{"request_bytes":true}"#,
            r#"{"stream":true}"#,
            r#"{"method":1}"#,
            r#"{"elapsed_seconds":"3"}"#,
            r#"{"request_id":5}"#,
            r#""meta""#,
            r#"[]"#,
        ] {
            assert!(meta(bad).is_err(), "{bad} must be refused");
        }
        for good in [
            r#"{"upstream_status":200,"stream":"true","request_bytes":null}"#,
            r#"null"#,
            r#"{}"#,
        ] {
            assert!(meta(good).is_ok(), "{good} must decode");
        }
        assert_eq!(meta("null").unwrap(), None);
        assert_eq!(meta("{}").unwrap(), Some(Meta::default()));
    }
}
