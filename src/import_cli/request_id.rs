//! The request id that makes an import resumable.
//!
//! A turn that already carries `meta.request_id` keeps it. Any other gets one derived from
//! its payload's bytes, `import-` and their SHA-256 in hex, so the same line imported again
//! (from the same file or another) is the same request, answered from its stored raw turn
//! without writing anything.

use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::gojson::repair_body;

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

/// A body to post to a server, with the derived id set in its `meta` when it carries no
/// request id of its own, and its session's harness ids (for the order of posting).
///
/// The top-level object is rewritten member by member with every value's text as it was
/// (the `request` bytes the server keeps are untouched); a body that is no JSON object is
/// posted as it is, for the server to refuse. Member names are matched as Go matches them
/// for ASCII (case-insensitively); a body that is not UTF-8 is read as Go reads it.
pub fn stamped(body: Vec<u8>) -> (Vec<u8>, Option<Harness>) {
    let derived = derived(&body);
    let text = match std::str::from_utf8(&body) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => repair_body(&body).0,
    };
    let Ok(Members(members)) = serde_json::from_str::<Members>(&text) else {
        return (body, None);
    };
    let last = |name: &str| {
        members
            .iter()
            .rposition(|(key, _)| key.eq_ignore_ascii_case(name))
    };
    let harness = last("session")
        .and_then(|at| serde_json::from_str::<Harness>(members[at].1.get()).ok())
        .filter(Harness::names_a_session);
    let meta = last("meta");
    let has_id = meta
        .and_then(|at| serde_json::from_str::<MetaId>(members[at].1.get()).ok())
        .is_some_and(|m| m.request_id.is_some_and(|id| !id.is_empty()));
    if has_id {
        return (body, harness);
    }
    let stamped_meta = meta_with(meta.map(|at| members[at].1.get()), &derived);
    let mut out = Vec::with_capacity(text.len() + stamped_meta.len() + 16);
    out.push(b'{');
    for (i, (key, value)) in members.iter().enumerate() {
        if Some(i) == meta {
            continue;
        }
        push_member(&mut out, key, value.get());
    }
    push_member(&mut out, "meta", &stamped_meta);
    out.push(b'}');
    (out, harness)
}

fn push_member(out: &mut Vec<u8>, key: &str, value: &str) {
    if out.len() > 1 {
        out.push(b',');
    }
    // A string always serializes.
    out.extend_from_slice(serde_json::to_string(key).unwrap_or_default().as_bytes());
    out.push(b':');
    out.extend_from_slice(value.as_bytes());
}

/// A session's harness ids as its envelope names them: the turns of one are posted one at
/// a time, in input order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Deserialize)]
pub struct Harness {
    #[serde(default)]
    org_id: String,
    #[serde(default)]
    harness_id: String,
    #[serde(default)]
    harness_session_id: String,
}

impl Harness {
    /// Without both ids (or with the `unknown` harness) the server derives the session
    /// from the chain's root: such turns are not told apart here.
    fn names_a_session(&self) -> bool {
        !self.harness_id.is_empty()
            && self.harness_id != "unknown"
            && !self.harness_session_id.is_empty()
    }
}

#[derive(serde::Deserialize)]
struct MetaId {
    #[serde(default)]
    request_id: Option<String>,
}

/// A JSON object's members in order, duplicates kept, values as their text.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for Members<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, &'de RawValue>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_without_a_request_id_is_stamped_with_the_derived_one() {
        let body = br#"{"provider":"openai","meta":{"x":1},"request":{"a" : 1}}"#.to_vec();
        let id = derived(&body);
        let (out, harness) = stamped(body);
        assert_eq!(harness, None);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(
                r#"{{"provider":"openai","request":{{"a" : 1}},"meta":{{"x":1,"request_id":"{id}"}}}}"#
            )
        );
        let body = br#"{"request":{}}"#.to_vec();
        let id = derived(&body);
        let (out, _) = stamped(body);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(r#"{{"request":{{}},"meta":{{"request_id":"{id}"}}}}"#)
        );
    }

    #[test]
    fn a_request_id_of_its_own_and_a_body_that_is_no_object_are_left_as_they_are() {
        let own = br#"{"meta":{"request_id":"r1"},"session":{"harness_id":"claude","harness_session_id":"s"}}"#;
        let (out, harness) = stamped(own.to_vec());
        assert_eq!(out, own);
        let harness = harness.expect("the session's ids");
        assert_eq!(
            (
                harness.harness_id.as_str(),
                harness.harness_session_id.as_str()
            ),
            ("claude", "s")
        );
        assert_eq!(stamped(b"[1]".to_vec()).0, b"[1]");
        assert_eq!(stamped(b"{".to_vec()).0, b"{");
        let unknown = br#"{"session":{"harness_id":"unknown","harness_session_id":"s"}}"#;
        assert_eq!(stamped(unknown.to_vec()).1, None);
    }

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
