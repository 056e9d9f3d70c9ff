//! NUL characters (U+0000) become U+FFFD in everything stored (docs/divergences.md#nul-characters):
//! Postgres rejects
//! NUL in `TEXT` and `JSONB`, and both backends must store the same values. Hashes are
//! computed before this, over the text as received.

use std::borrow::Cow;

/// Replaces every U+0000 in `text` by U+FFFD, adding the number replaced to `count`.
pub(crate) fn text<'a>(text: &'a str, count: &mut u64) -> Cow<'a, str> {
    if !text.contains('\0') {
        return Cow::Borrowed(text);
    }
    let replaced = text.matches('\0').count() as u64;
    *count += replaced;
    Cow::Owned(text.replace('\0', "\u{FFFD}"))
}

/// Owned variant of [`text`].
pub(crate) fn owned(text: String, count: &mut u64) -> String {
    match self::text(&text, count) {
        Cow::Borrowed(_) => text,
        Cow::Owned(replaced) => replaced,
    }
}

/// Replaces every `\u0000` escape of a serialized JSON document by `\ufffd`, adding the number
/// replaced to `count`.
///
/// JSON encoders (serde_json included) write U+0000 as the escape `\u0000`, never raw. The scan
/// walks escapes pairwise, so the text `\\u0000` (an escaped backslash followed by `u0000`) is
/// left alone.
pub(crate) fn json(json: String, count: &mut u64) -> String {
    const NUL: &[u8] = b"\\u0000";
    if !json.contains("\\u0000") {
        return json;
    }
    let bytes = json.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(offset) = memchr::memchr(b'\\', &bytes[i..]) {
        let at = i + offset;
        out.extend_from_slice(&bytes[i..at]);
        if bytes[at..].starts_with(NUL) {
            out.extend_from_slice(b"\\ufffd");
            *count += 1;
            i = at + NUL.len();
        } else {
            // Any other escape: copy the backslash and the escaped byte as they are.
            let end = (at + 2).min(bytes.len());
            out.extend_from_slice(&bytes[at..end]);
            i = end;
        }
    }
    out.extend_from_slice(&bytes[i..]);
    // Only ASCII escape sequences were rewritten into ASCII, so the bytes stay UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Replaces U+0000 in every string and key of a JSON value.
pub(crate) fn json_value(value: &mut serde_json::Value, count: &mut u64) {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            if s.contains('\0') {
                *s = owned(std::mem::take(s), count);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| json_value(v, count)),
        Value::Object(map) => {
            if map.keys().any(|k| k.contains('\0')) {
                let entries = std::mem::take(map);
                for (k, v) in entries {
                    map.insert(owned(k, count), v);
                }
            }
            map.values_mut().for_each(|v| json_value(v, count));
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_without_nul_is_borrowed() {
        let mut n = 0;
        assert!(matches!(text("plain", &mut n), Cow::Borrowed("plain")));
        assert_eq!(n, 0);
    }

    #[test]
    fn text_replaces_each_nul() {
        let mut n = 0;
        assert_eq!(text("a\0b\0", &mut n), "a\u{FFFD}b\u{FFFD}");
        assert_eq!(n, 2);
    }

    #[test]
    fn json_keeps_an_escaped_backslash_before_u0000() {
        let mut n = 0;
        let doc = serde_json::to_string(&serde_json::json!({"t": "\\u0000 and \0"})).unwrap();
        let out = json(doc, &mut n);
        assert_eq!(n, 1);
        let back: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back["t"], "\\u0000 and \u{FFFD}");
    }

    #[test]
    fn json_value_replaces_in_keys_and_nested_strings() {
        let mut n = 0;
        let mut v = serde_json::json!({"k\0": ["x\0", {"y": "\0\0"}], "n": 1});
        json_value(&mut v, &mut n);
        assert_eq!(n, 4);
        assert_eq!(
            v,
            serde_json::json!({"k\u{FFFD}": ["x\u{FFFD}", {"y": "\u{FFFD}\u{FFFD}"}], "n": 1})
        );
    }

    proptest! {
        /// Sanitizing the serialized form equals serializing the sanitized value.
        #[test]
        fn json_scan_matches_replacing_in_the_value(s in "[a-z\\\\\"\u{0}\u{1}u0]{0,40}") {
            let mut n = 0;
            let out = json(serde_json::to_string(&s).unwrap(), &mut n);
            let back: String = serde_json::from_str(&out).unwrap();
            prop_assert_eq!(back, s.replace('\0', "\u{FFFD}"));
            prop_assert_eq!(n, s.matches('\0').count() as u64);
        }
    }
}
