//! The request id that makes an import resumable.
//!
//! A turn that already carries `meta.request_id` keeps it. Any other gets one derived from
//! its payload's bytes, `import-` and their SHA-256 in hex, so the same line imported again
//! (from the same file or another) is the same request, answered from its stored raw turn
//! without writing anything.

use sha2::{Digest, Sha256};

/// The id a payload without a request id is imported under.
pub fn derived(body: &[u8]) -> String {
    format!("import-{}", hex::encode(Sha256::digest(body)))
}

/// The text of a `meta` object with `request_id` set to `id`: `meta` as sent (or `{}`) with
/// the member appended, so that it wins over an empty one (the last duplicate key wins).
/// `id` is plain ASCII and needs no escaping.
pub fn meta_with(meta: Option<&str>, id: &str) -> String {
    let text = meta.map(str::trim).filter(|m| *m != "null").unwrap_or("{}");
    let inner = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or("");
    let comma = if inner.trim().is_empty() { "" } else { "," };
    format!("{{{inner}{comma}\"request_id\":\"{id}\"}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_appended_to_the_meta_as_sent() {
        assert_eq!(meta_with(None, "i"), r#"{"request_id":"i"}"#);
        assert_eq!(meta_with(Some("null"), "i"), r#"{"request_id":"i"}"#);
        assert_eq!(meta_with(Some(" { } "), "i"), r#"{ "request_id":"i"}"#);
        assert_eq!(
            meta_with(Some(r#"{"request_id":"","x":1}"#), "i"),
            r#"{"request_id":"","x":1,"request_id":"i"}"#
        );
    }

    #[test]
    fn the_derived_id_depends_on_the_bytes_only() {
        assert_eq!(derived(b"a"), derived(b"a"));
        assert_ne!(derived(b"a"), derived(b"b"));
        assert_eq!(derived(b"a").len(), "import-".len() + 64);
    }
}
