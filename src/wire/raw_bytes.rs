//! A Go `[]byte` member (`raw_response`): standard base64 with padding in a JSON string, as
//! Go's decoder reads it (docs/capture.md §1).

use std::borrow::Cow;
use std::fmt;

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Deserializer;
use serde::de::{Error, SeqAccess, Visitor};

use crate::gojson::DecodeInPlace;

/// Go's `base64.StdEncoding`: the standard alphabet, `=` padding required, and (it is not
/// `Strict`) non-zero bits after the last symbol allowed.
const GO_STD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(true),
);

/// Bytes sent as base64; empty when the member is missing, `null` or `""`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawBytes(pub Vec<u8>);

/// Decodes base64 as Go does: CR and LF anywhere are skipped, anything else outside the
/// alphabet (URL-safe `-` and `_` included) or missing padding is an error.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let text: Cow<'_, str> = if text.contains(['\r', '\n']) {
        Cow::Owned(text.chars().filter(|c| !matches!(c, '\r' | '\n')).collect())
    } else {
        Cow::Borrowed(text)
    };
    GO_STD.decode(text.as_bytes())
}

impl<'de> DecodeInPlace<'de> for RawBytes {
    fn decode_in_place<D: Deserializer<'de>>(&mut self, d: D) -> Result<(), D::Error> {
        *self = d.deserialize_any(BytesVisitor)?;
        Ok(())
    }
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = RawBytes;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("base64 bytes")
    }

    fn visit_unit<E>(self) -> Result<RawBytes, E> {
        Ok(RawBytes::default())
    }

    fn visit_none<E>(self) -> Result<RawBytes, E> {
        Ok(RawBytes::default())
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<RawBytes, E> {
        decode_base64(v)
            .map(RawBytes)
            .map_err(|e| E::custom(format_args!("illegal base64 data: {e}")))
    }

    /// Go decodes a JSON array into `[]byte` element by element, each a `uint8`.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawBytes, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(byte) = seq.next_element::<Option<u8>>()? {
            bytes.push(byte.unwrap_or(0));
        }
        Ok(RawBytes(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(json: &str) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = RawBytes(b"old".to_vec());
        crate::gojson::decode_whole(json, crate::gojson::InPlace(&mut out))?;
        Ok(out.0)
    }

    #[test]
    fn standard_base64_with_padding() {
        assert_eq!(bytes(r#""aGk=""#).unwrap(), b"hi");
        assert_eq!(
            bytes(r#""aGk=\r\n""#).unwrap(),
            b"hi",
            "CR and LF are skipped"
        );
        assert_eq!(bytes(r#""aG\nk=""#).unwrap(), b"hi");
        assert_eq!(bytes(r#""+/8=""#).unwrap(), [0xfb, 0xff]);
        assert_eq!(
            bytes(r#""aGl=""#).unwrap(),
            b"hi",
            "trailing bits are allowed"
        );
        assert!(bytes(r#""aGk""#).is_err(), "padding is required");
        assert!(
            bytes(r#""-_8=""#).is_err(),
            "the URL-safe alphabet is refused"
        );
        assert!(bytes(r#""aGk= ""#).is_err());
        assert!(bytes(r#""not base64!""#).is_err());
    }

    #[test]
    fn null_and_empty_are_no_bytes() {
        assert_eq!(bytes("null").unwrap(), b"");
        assert_eq!(bytes(r#""""#).unwrap(), b"");
    }

    #[test]
    fn arrays_of_bytes_are_accepted_as_go_accepts_them() {
        assert_eq!(bytes("[104,105]").unwrap(), b"hi");
        assert_eq!(bytes("[]").unwrap(), b"");
        for bad in ["[256]", "[-1]", "[1.5]", r#"["a"]"#, "5", "true", "{}"] {
            assert!(bytes(bad).is_err(), "{bad} must be refused");
        }
    }
}
