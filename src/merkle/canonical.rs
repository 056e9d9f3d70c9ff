//! RFC 8785 (JCS) canonical bytes, written directly from reel's types.
//!
//! The hash input has a fixed shape whose keys are known, so it is emitted in its sorted
//! order without building a `Value` tree; only free-form tool inputs need their keys sorted
//! at run time. Rules (docs/hashing.md#canonical-bytes): object members sorted by UTF-16 code
//! units; numbers as IEEE-754 doubles in ECMAScript `Number.prototype.toString` form (via
//! `ryu-js`); minimal string escaping with lowercase `\u00xx`; no whitespace. The output is
//! checked against `serde_json_canonicalizer`, the RFC's Rust implementation, in tests.

use std::cmp::Ordering;

use serde_json::{Map, Value};

/// Appends `s` as a canonical JSON string.
pub fn write_str(buf: &mut Vec<u8>, s: &str) {
    buf.reserve(s.len() + 2);
    buf.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut at = 0;
    while let Some(i) = next_escape(bytes, at) {
        buf.extend_from_slice(&bytes[start..i]);
        let b = bytes[i];
        match ESCAPES[usize::from(b)] {
            b'u' => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                buf.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 0xf)],
                ]);
            }
            short => buf.extend_from_slice(&[b'\\', short]),
        }
        start = i + 1;
        at = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
    buf.push(b'"');
}

/// The index of the first byte at or after `from` that must be escaped: a control
/// character, `"` or `\`. Eight bytes are tested at a time (the bit trick serde_json uses
/// for the same search), since most of a text needs no escape.
fn next_escape(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;
    // Exact chunks rather than `bytes.get(i..i + 8)`: the loop then tests one bound, where
    // the range had LLVM test two (or not) as inlining went, some 20% of the search.
    let rest = bytes.get(from..).unwrap_or_default();
    let mut chunks = rest.chunks_exact(8);
    let mut i = from;
    for chunk in chunks.by_ref() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let control = x.wrapping_sub(ONES * 0x20) & !x;
        let quote =
            (x ^ (ONES * u64::from(b'"'))).wrapping_sub(ONES) & !(x ^ (ONES * u64::from(b'"')));
        let backslash =
            (x ^ (ONES * u64::from(b'\\'))).wrapping_sub(ONES) & !(x ^ (ONES * u64::from(b'\\')));
        let found = (control | quote | backslash) & HIGH;
        if found != 0 {
            // The lowest flagged byte is exact; bytes after it may be false positives,
            // which does not matter since the search stops here.
            return Some(i + found.trailing_zeros() as usize / 8);
        }
        i += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| ESCAPES[usize::from(b)] != 0)
        .map(|p| i + p)
}

/// For each byte: 0 when it is written as is, else the letter of its escape
/// (`u` for the `\u00xx` form).
static ESCAPES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// Appends a number in ECMAScript form (`1e+21`, `1e-7`, `0.000001`, `-0` as `0`).
pub fn write_number(buf: &mut Vec<u8>, f: f64) {
    let mut fmt = ryu_js::Buffer::new();
    // Every double reel holds came from JSON, so it is finite; `format` would spell a
    // non-finite value out rather than fail, which keeps this total.
    buf.extend_from_slice(fmt.format(f).as_bytes());
}

/// Appends any JSON value canonically (no pruning).
pub fn write_value(buf: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => buf.extend_from_slice(b"null"),
        Value::Bool(true) => buf.extend_from_slice(b"true"),
        Value::Bool(false) => buf.extend_from_slice(b"false"),
        Value::Number(n) => write_number(buf, n.as_f64().unwrap_or(0.0)),
        Value::String(s) => write_str(buf, s),
        Value::Array(items) => {
            buf.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                write_value(buf, item);
            }
            buf.push(b']');
        }
        Value::Object(map) => write_object(buf, map, false),
    }
}

/// Appends an object with its members in UTF-16 order. With `prune`, zero values are left
/// out and nested objects are pruned in turn, dropped when nothing is left of them
/// (docs/hashing.md#zero-value-pruning; arrays are not entered).
pub fn write_object(buf: &mut Vec<u8>, map: &Map<String, Value>, prune: bool) {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| utf16_cmp(a.0, b.0));
    buf.push(b'{');
    let mut first = true;
    for (key, value) in entries {
        if prune {
            let dropped = match value {
                Value::Object(inner) => super::projection::prunes_to_empty(inner),
                other => super::projection::is_zero_value(other),
            };
            if dropped {
                continue;
            }
        }
        if !first {
            buf.push(b',');
        }
        first = false;
        write_str(buf, key);
        buf.push(b':');
        match value {
            Value::Object(inner) => write_object(buf, inner, prune),
            other => write_value(buf, other),
        }
    }
    buf.push(b'}');
}

/// Orders strings by their UTF-16 code units, as RFC 8785 sorts member names. This differs
/// from byte order only between supplementary characters and U+E000..U+FFFF.
pub fn utf16_cmp(a: &str, b: &str) -> Ordering {
    // Fast path: the common prefix in bytes decides nothing, and the first differing
    // bytes decide unless one of them starts a 4-byte sequence.
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    match ab.iter().zip(bb).position(|(x, y)| x != y) {
        None => ab.len().cmp(&bb.len()),
        Some(i) if ab[i] < 0xEE && bb[i] < 0xEE => ab[i].cmp(&bb[i]),
        Some(_) => a.encode_utf16().cmp(b.encode_utf16()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn canonical(v: &Value) -> String {
        let mut buf = Vec::new();
        write_value(&mut buf, v);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn numbers_follow_ecmascript() {
        let cases = [
            (1.0, "1"),
            (1.5, "1.5"),
            (-3.0, "-3"),
            (0.1, "0.1"),
            (1e-7, "1e-7"),
            (5e-324, "5e-324"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.2345678901234568e29, "1.2345678901234568e+29"),
            (9007199254740993.0, "9007199254740992"),
            (1e-6, "0.000001"),
            (4.5e-5, "0.000045"),
            (-0.0, "0"),
            (1e300, "1e+300"),
            (123456789012345680000.0, "123456789012345680000"),
        ];
        for (f, want) in cases {
            let mut buf = Vec::new();
            write_number(&mut buf, f);
            assert_eq!(String::from_utf8(buf).unwrap(), want, "{f:e}");
        }
    }

    #[test]
    fn strings_use_minimal_escapes() {
        let s = "q\" b\\ \u{8}\u{c}\n\r\t \u{1}\u{1f} \u{7f} / < > & \u{2028}\u{2029} é 😀";
        assert_eq!(
            canonical(&json!(s)),
            "\"q\\\" b\\\\ \\b\\f\\n\\r\\t \\u0001\\u001f \u{7f} / < > & \u{2028}\u{2029} é 😀\""
        );
    }

    #[test]
    fn escape_search_matches_a_byte_by_byte_scan() {
        // Every ASCII byte and a two-byte character, at every alignment.
        let mut text = String::new();
        for c in (0u8..=0x80).cycle().take(700) {
            text.push(if c == 0x80 { 'é' } else { char::from(c) });
            let bytes = text.as_bytes();
            for from in [0, 1, 7, 8, 13].into_iter().filter(|&f| f <= bytes.len()) {
                let want = bytes[from..]
                    .iter()
                    .position(|&b| ESCAPES[usize::from(b)] != 0)
                    .map(|p| p + from);
                assert_eq!(next_escape(bytes, from), want);
            }
        }
    }

    #[test]
    fn keys_sort_by_utf16_code_units() {
        let v = json!({"b":1,"a":2,"A":3,"é":4,"😀":5,"｡":6,"aa":7,"_":8,"1":9});
        assert_eq!(
            canonical(&v),
            r#"{"1":9,"A":3,"_":8,"a":2,"aa":7,"b":1,"é":4,"😀":5,"｡":6}"#
        );
    }

    #[test]
    fn agrees_with_serde_json_canonicalizer() {
        let v = json!({
            "z": [1, 2.5, -0.0, 1e21, 1e-7, {"y": null, "x": true}],
            "\u{ff61}": "s\u{1}", "\u{1f600}a": "e", "\u{1f600}": [], "a": {}
        });
        let ours = canonical(&v);
        let theirs = serde_json_canonicalizer::to_string(&v).unwrap();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn pruned_objects_drop_zero_members() {
        let v = json!({"a": 0, "b": {"c": false, "d": {"e": ""}}, "f": [0], "g": "x"});
        let mut buf = Vec::new();
        let Value::Object(map) = &v else {
            unreachable!()
        };
        write_object(&mut buf, map, true);
        assert_eq!(String::from_utf8(buf).unwrap(), r#"{"f":[0],"g":"x"}"#);
    }
}
