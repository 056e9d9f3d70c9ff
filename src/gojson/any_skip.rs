//! Skipping the parts of a Go `any` value that nothing reads, with Go's one failure.
//!
//! Go builds every `any` value in full, turning each number into a float64, so a number
//! beyond float64 (`1e400`) fails the decode even where no code reads the value. Unknown
//! keys of a typed struct are another matter: Go skips them unbuilt, and they take serde's
//! `IgnoredAny`.

use std::fmt;

use memchr::memchr2;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// Skips an `any` value, failing as Go fails on a number beyond float64.
///
/// The value is first skipped as raw text, which costs what `IgnoredAny` costs. Only when the
/// text holds three digits in a row is it walked again with its numbers parsed: a number
/// overflows float64 only with an exponent of three digits or, with a smaller exponent, more
/// than two hundred digits before the point. Long prose (a system prompt) is thus never
/// unescaped. It needs a deserializer over text, as it reads the value raw.
pub struct AnySkip;

impl<'de> DeserializeSeed<'de> for AnySkip {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let raw = <&RawValue>::deserialize(d)?;
        if !has_three_digits_in_a_row(raw.get().as_bytes()) {
            return Ok(());
        }
        let mut walk = serde_json::Deserializer::from_str(raw.get());
        Walk.deserialize(&mut walk).map_err(de::Error::custom)
    }
}

/// Walks a value, parsing its numbers (serde_json refuses those beyond float64).
struct Walk;

impl<'de> DeserializeSeed<'de> for Walk {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(Walk)
    }
}

impl<'de> Visitor<'de> for Walk {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Walk)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(Walk)?;
        }
        Ok(())
    }

    crate::gojson::ignore_kinds!((); null, bool, number, string);
}

/// Whether `bytes` holds three ASCII digits in a row.
fn has_three_digits_in_a_row(bytes: &[u8]) -> bool {
    let mut run = 0;
    for chunk in bytes.chunks(64) {
        // Prose has chunk after chunk without a digit; that test compiles to vector compares.
        let any_digit = chunk.iter().fold(false, |any, b| any | b.is_ascii_digit());
        if run == 0 && !any_digit {
            continue;
        }
        for b in chunk {
            run = if b.is_ascii_digit() { run + 1 } else { 0 };
            if run == 3 {
                return true;
            }
        }
    }
    false
}

/// How deep [`walk_may_fail`] lets a value nest: serde_json refuses to walk deeper than 128
/// levels, and a walk may start a few levels down.
const SAFE_DEPTH: usize = 100;

/// Whether walking the JSON value `json` with its numbers parsed, as [`AnySkip`] walks a
/// value with three digits in a row, could fail other than on a string: on a number beyond
/// float64, or on nesting deeper than serde_json walks. Strings are passed over unread, so
/// this costs a scan, not a decode. `json` is a value serde_json accepted.
pub fn walk_may_fail(json: &str) -> bool {
    let bytes = json.as_bytes();
    if !has_three_digits_in_a_row(bytes) {
        return false;
    }
    let mut depth = 0;
    let mut at = 0;
    while let Some(&b) = bytes.get(at) {
        at = match b {
            b'"' => string_end(bytes, at + 1),
            b'[' | b'{' => {
                depth += 1;
                if depth > SAFE_DEPTH {
                    return true;
                }
                at + 1
            }
            b']' | b'}' => {
                depth -= 1;
                at + 1
            }
            b'-' | b'0'..=b'9' => {
                let end = bytes[at..]
                    .iter()
                    .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                    .map_or(bytes.len(), |len| at + len);
                // A JSON number is a Rust float literal, and both round it correctly: it
                // is beyond float64 exactly where it parses to infinity.
                if json[at..end].parse::<f64>().is_ok_and(f64::is_finite) {
                    end
                } else {
                    return true;
                }
            }
            _ => at + 1,
        };
    }
    false
}

/// The index after the closing quote of the string whose text starts at `at`.
fn string_end(bytes: &[u8], mut at: usize) -> usize {
    while let Some(found) = bytes.get(at..).and_then(|rest| memchr2(b'"', b'\\', rest)) {
        let found = at + found;
        if bytes[found] == b'"' {
            return found + 1;
        }
        // The escaped byte cannot close the string (`\"`); a `\u`'s hex digits are plain.
        at = found + 2;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn skip(s: &str) -> Result<(), serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(s);
        AnySkip.deserialize(&mut de)
    }

    #[test]
    fn a_number_beyond_float64_in_an_any_fails_even_where_it_is_skipped() {
        for ok in [
            r#"{"a":[1e308,-1e308,1e-400,"1e400"],"b":{"c":null}}"#,
            "2",
            "true",
            r#""no digits at all, but escapes: \" \n \u00e9""#,
        ] {
            assert!(skip(ok).is_ok(), "{ok}");
        }
        let long = "1".repeat(400);
        for bad in [
            "1e400",
            "-1e400",
            "10e308",
            r#"{"a":[1,{"b":1e999}]}"#,
            long.as_str(),
        ] {
            assert!(skip(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_digit_run_across_chunks_counts() {
        for split in 60..68 {
            let mut text = " ".repeat(split);
            text.push_str("123");
            text.push_str(&" ".repeat(70));
            assert!(has_three_digits_in_a_row(text.as_bytes()), "{split}");
            let broken = text.replacen('2', " ", 1);
            assert!(!has_three_digits_in_a_row(broken.as_bytes()), "{split}");
        }
    }

    /// Walks `json` as [`AnySkip`] does once it holds three digits in a row.
    fn walk_fails(json: &str) -> bool {
        let mut de = serde_json::Deserializer::from_str(json);
        Walk.deserialize(&mut de).is_err()
    }

    #[test]
    fn a_walk_may_fail_on_numbers_outside_strings_and_on_deep_nesting() {
        for (json, fails) in [
            (
                r#"{"a":[1e308,-1e308,1e-400,"1e400"],"b":{"c":null}}"#,
                false,
            ),
            (r#"["\"1e400\" and 1e400 in a string", 123]"#, false),
            (r#"{"t":"2025-10-01","u":"\\","n":1e400}"#, true),
            ("-1e400", true),
            ("0e99999999999999999999", false),
            ("1e99999999999999999999", true),
            (r#"[true,false,null,1.5E+300,-0.0e-999]"#, false),
        ] {
            assert_eq!(walk_may_fail(json), fails, "{json}");
            assert_eq!(walk_fails(json), fails, "{json}");
        }
        let long = format!("[{}]", "1".repeat(400));
        assert!(walk_may_fail(&long) && walk_fails(&long));
        // A walk goes only so deep, whether the digits are in strings or not.
        let deep = format!("{}\"123\"{}", "[".repeat(200), "]".repeat(200));
        assert!(walk_may_fail(&deep) && walk_fails(&deep));
        let shallow = format!(
            "{}\"123\"{}",
            "[".repeat(SAFE_DEPTH),
            "]".repeat(SAFE_DEPTH)
        );
        assert!(!walk_may_fail(&shallow) && !walk_fails(&shallow));
        let no_digits = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(!walk_may_fail(&no_digits));
    }

    /// JSON values with numbers of every size, strings with digits and escapes, nested.
    fn json_value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            "-?(0|[1-9][0-9]{0,4})(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,3})?",
            "[1-9][0-9]{300,315}",
            "\"([a-z0-9 ]|\\\\[\"n\\\\/])*\"",
            "true|false|null",
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec(inner, 0..4).prop_map(|v| {
                    let members: Vec<String> = v
                        .iter()
                        .enumerate()
                        .map(|(i, m)| format!("\"k{i}\":{m}"))
                        .collect();
                    format!("{{{}}}", members.join(","))
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn a_number_beyond_float64_has_three_digits_in_a_row(
            bytes in prop::collection::vec(
                prop::sample::select(vec![b'0', b'5', b'9', b'a', b'/', b':', 0xb0, 0xb9, b' ']),
                0..200,
            ),
        ) {
            let naive = bytes.windows(3).any(|w| w.iter().all(u8::is_ascii_digit));
            prop_assert_eq!(has_three_digits_in_a_row(&bytes), naive);
        }

        #[test]
        fn a_walk_may_fail_exactly_where_it_fails(json in json_value()) {
            prop_assert!(serde_json::from_str::<IgnoredAny>(&json).is_ok(), "{}", json);
            prop_assert_eq!(walk_may_fail(&json), walk_fails(&json), "{}", json);
        }
    }
}
