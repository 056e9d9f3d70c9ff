//! Skipping the parts of a Go `any` value that nothing reads, with Go's one failure.
//!
//! Go builds every `any` value in full, turning each number into a float64, so a number
//! beyond float64 (`1e400`) fails the decode even where no code reads the value. Unknown
//! keys of a typed struct are another matter: Go skips them unbuilt, and they take serde's
//! `IgnoredAny`.

use std::fmt;

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
    }
}
