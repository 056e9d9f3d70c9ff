//! Values the reference keeps raw (`json.RawMessage`), and the Go-typed decoding the
//! reducers share.

use serde::Deserializer;
use serde::de::{self, Deserialize, DeserializeOwned};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::gojson::typed::{ObjectInto, Path};
use crate::gojson::{DecodeInPlace, decode_whole, message_of, repair_lone_surrogates_counted};

/// A JSON value kept as it came, `null` included, with its text (from which Go decodes it
/// again when it maps it). Its text is free of bad bytes and lone surrogate escapes already:
/// reducers repair what they decode before they decode it.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Raw {
    pub text: String,
    pub value: Value,
}

impl<'de> DecodeInPlace<'de> for Raw {
    fn decode_in_place<D: Deserializer<'de>>(&mut self, d: D) -> Result<(), D::Error> {
        let raw = <&RawValue>::deserialize(d)?;
        // A number beyond float64 has no value to keep: the decode fails, as a Go `any`
        // holding it does.
        self.value = serde_json::from_str(raw.get()).map_err(de::Error::custom)?;
        raw.get().clone_into(&mut self.text);
        Ok(())
    }
}

/// A `json.RawMessage` field: present once the key is, whatever its value.
impl<'de> DecodeInPlace<'de> for Option<Raw> {
    fn decode_in_place<D: Deserializer<'de>>(&mut self, d: D) -> Result<(), D::Error> {
        self.get_or_insert_with(Raw::default).decode_in_place(d)
    }
}

/// `text` decoded as Go's `json.Unmarshal` decodes it into a zero `T` (a type declared with
/// `in_place_struct!`); the error without serde's position suffix.
pub(super) fn decode<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| message_of(&e))
}

/// `text` decoded into a Go `map[string]any`: `None` for `null`, an error for any other kind
/// than an object (Go's text), numbers as float64. Lone surrogate escapes become U+FFFD, as
/// Go's decoder makes them; `replacements` counts them.
pub(super) fn decode_object(
    text: &str,
    replacements: &mut usize,
) -> Result<Option<Map<String, Value>>, String> {
    let (text, lone) = repair_lone_surrogates_counted(text);
    let mut object = None;
    decode_whole(&text, ObjectInto(Path::Root("map"), &mut object)).map_err(|e| message_of(&e))?;
    *replacements += lone;
    Ok(object)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::gojson::in_place_struct;

    #[derive(Debug, Default)]
    struct Holder {
        content: Option<Raw>,
    }

    in_place_struct!(Holder, "a holder" {
        "content" => content,
    });

    #[test]
    fn a_raw_field_keeps_any_value_and_null_counts_as_present() {
        let h: Holder = decode(r#"{"content":[{"n":1.5}]}"#).unwrap();
        let raw = h.content.unwrap();
        assert_eq!(raw.value, json!([{"n": 1.5}]));
        assert_eq!(raw.text, r#"[{"n":1.5}]"#);
        let h: Holder = decode(r#"{"content":null}"#).unwrap();
        assert_eq!(h.content.unwrap().value, Value::Null);
        let h: Holder = decode(r#"{"other":1}"#).unwrap();
        assert!(h.content.is_none());
        // The last duplicate wins.
        let h: Holder = decode(r#"{"content":1,"CONTENT":"x"}"#).unwrap();
        assert_eq!(h.content.unwrap().value, json!("x"));
        assert!(decode::<Holder>(r#"{"content":1e400}"#).is_err());
    }

    #[test]
    fn objects_decode_as_go_maps() {
        let mut n = 0;
        assert_eq!(
            decode_object(r#"{"a":2.0,"b":"\ud800"}"#, &mut n),
            Ok(Some(
                json!({"a": 2, "b": "\u{fffd}"})
                    .as_object()
                    .unwrap()
                    .clone()
            ))
        );
        assert_eq!(n, 1);
        assert_eq!(decode_object("null", &mut n), Ok(None));
        assert_eq!(
            decode_object("[1]", &mut n),
            Err(
                "json: cannot unmarshal array into Go value of type map[string]interface {}".into()
            )
        );
        assert!(decode_object(r#"{"a":"#, &mut n).is_err());
        assert!(decode_object(r#"{"a":1} x"#, &mut n).is_err());
    }
}
