//! A JSON value kept as the text it came in (Go's `json.RawMessage`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::gojson::DecodeInPlace;

/// A JSON value as it was sent: its whitespace, key order and number spellings kept. Stored
/// as it is; hashed in canonical form, so only its values reach the hash. Two raw values
/// are equal when their texts are.
#[derive(Clone)]
pub struct RawJson(Box<RawValue>);

impl RawJson {
    /// The value of a JSON text; `None` when the text is not one JSON value.
    pub fn from_text(text: &str) -> Option<Self> {
        RawValue::from_string(text.to_owned()).ok().map(RawJson)
    }

    /// A raw value borrowed from a larger document, copied out.
    pub fn from_raw(raw: &RawValue) -> Self {
        RawJson(raw.to_owned())
    }

    /// A decoded value written back as JSON, as Go re-encodes an `any` it decoded.
    pub fn from_value(value: &Value) -> Self {
        // A `Value` always serialises: its keys are strings and its numbers finite.
        RawJson(serde_json::value::to_raw_value(value).unwrap_or_default())
    }

    pub fn get(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl Serialize for RawJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// A raw field decodes whatever value is there, `null` included (Go calls the field's
/// `UnmarshalJSON` with `null`); a repeated key replaces it.
impl<'de> DecodeInPlace<'de> for Option<RawJson> {
    fn decode_in_place<D: Deserializer<'de>>(&mut self, d: D) -> Result<(), D::Error> {
        *self = Some(RawJson(Box::<RawValue>::deserialize(d)?));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_text_as_sent() {
        let raw = RawJson::from_text(r#"{"b": 2, "a": [1, 2.50]}"#).unwrap();
        assert_eq!(raw.get(), r#"{"b": 2, "a": [1, 2.50]}"#);
        assert_eq!(
            serde_json::to_string(&raw).unwrap(),
            r#"{"b": 2, "a": [1, 2.50]}"#
        );
        assert!(RawJson::from_text("{").is_none());
        assert!(RawJson::from_text("1 2").is_none());
    }

    #[test]
    fn null_is_a_value_and_a_repeated_key_replaces() {
        let mut slot: Option<RawJson> = None;
        let mut de = serde_json::Deserializer::from_str("null");
        slot.decode_in_place(&mut de).unwrap();
        assert_eq!(slot.as_ref().map(RawJson::get), Some("null"));
        let mut de = serde_json::Deserializer::from_str("[1]");
        slot.decode_in_place(&mut de).unwrap();
        assert_eq!(slot.as_ref().map(RawJson::get), Some("[1]"));
    }
}
