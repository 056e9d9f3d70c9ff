//! Lone UTF-16 surrogate escapes (`"\ud800"`) become U+FFFD, as Go's decoder does.
//!
//! serde_json refuses lone surrogates; the reference accepts them and substitutes U+FFFD
//! (docs/divergences.md#lone-surrogates).
//! Rewriting the six-byte escape `\uD8xx` to the six-byte escape `\ufffd`
//! before parsing keeps every offset intact, so positions in later error messages still point
//! into the caller's bytes. Only bodies that actually contain a lone surrogate are copied.

use std::borrow::Cow;

use memchr::memmem;

const REPLACEMENT: &[u8; 6] = b"\\ufffd";

/// Returns `input` with every lone surrogate escape replaced by `\ufffd`.
///
/// A high surrogate followed by a low surrogate escape is a valid pair and is kept; any other
/// surrogate escape is lone. As in Go, the escape following a rejected high surrogate is
/// examined on its own (`\ud800\ud83d\ude00` keeps the emoji).
pub fn repair_lone_surrogates(input: &[u8]) -> Cow<'_, [u8]> {
    repair_counted(input).0
}

/// Same as [`repair_lone_surrogates_str`], with the number of escapes replaced.
pub fn repair_lone_surrogates_counted(input: &str) -> (Cow<'_, str>, usize) {
    match repair_counted(input.as_bytes()) {
        (Cow::Borrowed(_), _) => (Cow::Borrowed(input), 0),
        (Cow::Owned(bytes), replaced) => (Cow::Owned(into_text(bytes)), replaced),
    }
}

fn repair_counted(input: &[u8]) -> (Cow<'_, [u8]>, usize) {
    let mut replaced = 0;
    let mut repaired: Option<Vec<u8>> = None;
    let mut at = 0;
    let finder = memmem::Finder::new(b"\\u");
    while let Some(found) = finder.find(&input[at..]) {
        let pos = at + found;
        at = pos + 2;
        // Only `\u` escapes whose backslash is itself not escaped (`\\u…` is text).
        if !is_escape_start(input, pos) {
            continue;
        }
        let Some(unit) = hex4(input, pos + 2) else {
            continue;
        };
        at = pos + 6;
        let lone = match unit {
            0xD800..=0xDBFF => {
                let pairs = input.get(pos + 6..pos + 8) == Some(b"\\u")
                    && matches!(hex4(input, pos + 8), Some(0xDC00..=0xDFFF));
                if pairs {
                    at = pos + 12;
                }
                !pairs
            }
            0xDC00..=0xDFFF => true,
            _ => false,
        };
        if lone {
            let out = repaired.get_or_insert_with(|| input.to_vec());
            out[pos..pos + 6].copy_from_slice(REPLACEMENT);
            replaced += 1;
        }
    }
    match repaired {
        Some(out) => (Cow::Owned(out), replaced),
        None => (Cow::Borrowed(input), 0),
    }
}

/// Same as [`repair_lone_surrogates`] for text.
pub fn repair_lone_surrogates_str(input: &str) -> Cow<'_, str> {
    repair_lone_surrogates_counted(input).0
}

/// Text whose only change was ASCII bytes of an escape replaced by ASCII bytes.
fn into_text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// True when the backslash at `pos` starts an escape: it is preceded by an even number of
/// backslashes (which pair up among themselves).
fn is_escape_start(input: &[u8], pos: usize) -> bool {
    let preceding = input[..pos]
        .iter()
        .rev()
        .take_while(|&&b| b == b'\\')
        .count();
    preceding % 2 == 0
}

fn hex4(input: &[u8], at: usize) -> Option<u16> {
    let digits = input.get(at..at + 4)?;
    let mut unit = 0u16;
    for &d in digits {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return None,
        };
        unit = unit << 4 | u16::from(v);
    }
    Some(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repair(s: &str) -> String {
        String::from_utf8(repair_lone_surrogates(s.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn lone_high_and_low_surrogates_become_replacement_escapes() {
        assert_eq!(repair(r#""\ud800 \udc00""#), r#""\ufffd \ufffd""#);
        assert_eq!(repair(r#""\uDBFF""#), r#""\ufffd""#);
    }

    #[test]
    fn valid_pairs_and_other_escapes_are_untouched() {
        let s = r#""\ud83d\ude00 \u00e9 \n \"""#;
        assert!(matches!(
            repair_lone_surrogates(s.as_bytes()),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn escaped_backslash_before_u_is_text() {
        let s = r#""C:\\ud800\\\ud800""#;
        assert_eq!(repair(s), r#""C:\\ud800\\\ufffd""#);
    }

    #[test]
    fn high_followed_by_high_then_pair() {
        assert_eq!(repair(r#""\ud800\ud83d\ude00""#), r#""\ufffd\ud83d\ude00""#);
        assert_eq!(repair(r#""\ud800\u0041""#), r#""\ufffd\u0041""#);
    }

    #[test]
    fn truncated_escape_at_end_is_left_for_the_parser() {
        assert_eq!(repair(r#""\ud8"#), r#""\ud8"#);
        assert_eq!(repair(r#""\ud800"#), r#""\ufffd"#);
    }

    #[test]
    fn counted_repair_counts_each_lone_escape() {
        assert_eq!(
            repair_lone_surrogates_counted(r#""\ud800 \ud83d\ude00 \udfff\ud800""#),
            (
                Cow::Owned(r#""\ufffd \ud83d\ude00 \ufffd\ufffd""#.to_owned()),
                3
            )
        );
        assert_eq!(
            repair_lone_surrogates_counted(r#""\u00e9""#),
            (Cow::Borrowed(r#""\u00e9""#), 0)
        );
    }

    #[test]
    fn repaired_text_decodes_to_replacement_characters() {
        let fixed = repair(r#""a\ud800b\udfffc""#);
        let s: String = serde_json::from_str(&fixed).unwrap();
        assert_eq!(s, "a\u{fffd}b\u{fffd}c");
    }
}
