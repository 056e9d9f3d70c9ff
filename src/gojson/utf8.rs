//! Bytes that are not UTF-8 become U+FFFD, one per byte, as in Go's decoder.
//!
//! Go's `encoding/json` takes any byte from 0x20 up inside a string, and when it unquotes the
//! string it replaces every byte that does not start a valid UTF-8 sequence with U+FFFD
//! (`utf8.DecodeRune` answers `RuneError` of width 1): `E2 82 41` gives two U+FFFD and `A`,
//! where Rust's lossy conversion gives one. Outside strings such a byte is a syntax error,
//! and stays one after the replacement (U+FFFD is no more JSON there than the byte was), so
//! replacing before the parse decodes exactly what Go decodes.

use std::borrow::Cow;

/// `body` as text, every byte of every invalid UTF-8 sequence replaced by U+FFFD, and the
/// number of bytes replaced. A valid body, the common case, is only validated (with SIMD:
/// bodies are mostly text, and this is the one pass over every byte).
pub fn repair_invalid_utf8(body: &[u8]) -> (Cow<'_, str>, usize) {
    if let Ok(text) = simdutf8::basic::from_utf8(body) {
        return (Cow::Borrowed(text), 0);
    }
    let mut text = String::with_capacity(body.len() + 64);
    let mut replaced = 0;
    for chunk in body.utf8_chunks() {
        text.push_str(chunk.valid());
        // `invalid()` is the longest prefix of a sequence that cannot be completed; Go
        // rejects each of its bytes on its own.
        let bad = chunk.invalid().len();
        text.extend(std::iter::repeat_n(char::REPLACEMENT_CHARACTER, bad));
        replaced += bad;
    }
    (Cow::Owned(text), replaced)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Go's replacement, byte by byte: a valid sequence is kept, anything else is one U+FFFD.
    fn go_replace(bytes: &[u8]) -> (String, usize) {
        let (mut out, mut replaced, mut at) = (String::new(), 0, 0);
        while at < bytes.len() {
            let valid = (1..=4).rev().find_map(|n| {
                let s = std::str::from_utf8(bytes.get(at..at + n)?).ok()?;
                (s.chars().count() == 1).then_some(s)
            });
            match valid {
                Some(s) => {
                    out.push_str(s);
                    at += s.len();
                }
                None => {
                    out.push('\u{FFFD}');
                    replaced += 1;
                    at += 1;
                }
            }
        }
        (out, replaced)
    }

    #[test]
    fn invalid_utf8_becomes_one_replacement_per_byte() {
        for (bytes, want, count) in [
            (&b"ok"[..], "ok", 0),
            (b"a\xffb", "a\u{FFFD}b", 1),
            (b"\xe2\x82A", "\u{FFFD}\u{FFFD}A", 2),
            (b"\xed\xa0\x80", "\u{FFFD}\u{FFFD}\u{FFFD}", 3),
            (b"\xf0\x9f\x98", "\u{FFFD}\u{FFFD}\u{FFFD}", 3),
            (b"\xc0\xaf", "\u{FFFD}\u{FFFD}", 2),
            (b"\xef\xbf\xbd", "\u{FFFD}", 0),
            ("é\u{1F600}".as_bytes(), "é\u{1F600}", 0),
        ] {
            let (text, replaced) = repair_invalid_utf8(bytes);
            assert_eq!((&*text, replaced), (want, count), "{bytes:x?}");
        }
        assert!(matches!(repair_invalid_utf8(b"{}").0, Cow::Borrowed(_)));
    }

    proptest! {
        #[test]
        fn invalid_utf8_is_replaced_as_go_decode_rune_does(
            bytes in prop::collection::vec(
                prop::sample::select(vec![
                    b'a', b'"', 0x80, 0xbf, 0xc2, 0xc0, 0xe0, 0xe2, 0xed, 0xa0, 0x9f, 0xf0,
                    0xf4, 0x90, 0x8f, 0xf5, 0xff, 0x82, 0xac,
                ]),
                0..24,
            ),
        ) {
            let (text, replaced) = repair_invalid_utf8(&bytes);
            prop_assert_eq!((text.into_owned(), replaced), go_replace(&bytes));
        }
    }
}
