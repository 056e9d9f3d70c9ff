//! Typed fields of a Go struct: a JSON value of the wrong kind is a decode error whose text
//! is the one Go's `encoding/json` prints (`json: cannot unmarshal number 64.5 into Go struct
//! field anthropicRequest.max_tokens of type int`). JSON `null` leaves the field unset.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::Deserializer;
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::value::Probed;

/// Where a value sits in the Go struct being decoded, for error messages.
#[derive(Clone, Copy)]
pub enum Path<'a> {
    /// The top-level struct, by its Go name (`anthropicRequest`).
    Root(&'static str),
    Field(&'a Path<'a>, &'static str),
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    pub fn field(&'a self, name: &'static str) -> Path<'a> {
        Path::Field(self, name)
    }

    pub fn index(&'a self, i: usize) -> Path<'a> {
        Path::Index(self, i)
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root(name) => f.write_str(name),
            Path::Field(parent, name) => write!(f, "{parent}.{name}"),
            Path::Index(parent, i) => write!(f, "{parent}.{i}"),
        }
    }
}

/// `json: cannot unmarshal <found> into Go struct field <path> of type <target>`, or `… into
/// Go value of type <target>` at the root.
pub fn mismatch<E: de::Error>(found: impl fmt::Display, path: &Path, target: &str) -> E {
    match path {
        // The root is the whole document, which Go reports as a value, not a field.
        Path::Root(_) => E::custom(format_args!(
            "json: cannot unmarshal {found} into Go value of type {target}"
        )),
        _ => E::custom(format_args!(
            "json: cannot unmarshal {found} into Go struct field {path} of type {target}"
        )),
    }
}

/// Go's name for the kind of a JSON value, from its first byte.
fn kind_of(raw: &str) -> &'static str {
    match raw.as_bytes().first() {
        Some(b'"') => "string",
        Some(b'[') => "array",
        Some(b'{') => "object",
        Some(b't' | b'f') => "bool",
        Some(b'n') => "null",
        _ => "number",
    }
}

/// Implements the `visit_*` methods of a visitor for every JSON kind its target does not
/// accept, each returning Go's type-mismatch error. The visitor has `path` and `target`
/// fields. List the kinds to reject: `bool`, `number`, `string`, `array`, `object`.
macro_rules! reject_kinds {
    ($($kind:ident),* $(,)?) => { $( reject_kinds!(@one $kind); )* };
    (@one bool) => {
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Err($crate::gojson::mismatch("bool", &self.path, self.target))
        }
    };
    (@one number) => {
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Err($crate::gojson::mismatch("number", &self.path, self.target))
        }
        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Err($crate::gojson::mismatch("number", &self.path, self.target))
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Err($crate::gojson::mismatch("number", &self.path, self.target))
        }
    };
    (@one string) => {
        fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Err($crate::gojson::mismatch("string", &self.path, self.target))
        }
    };
    (@one array) => {
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err($crate::gojson::mismatch("array", &self.path, self.target))
        }
    };
    (@one object) => {
        fn visit_map<A: serde::de::MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err($crate::gojson::mismatch("object", &self.path, self.target))
        }
    };
}
pub(crate) use reject_kinds;

/// Implements a seed per Go scalar type (`Seed: Rust type = "Go type"`): the field takes the
/// JSON kind its [`Probed`] type keeps, `null` gives `None`, any other kind is Go's type error.
macro_rules! scalar_seeds {
    ($($(#[$doc:meta])* $seed:ident: $t:ty = $target:literal),* $(,)?) => {$(
        $(#[$doc])*
        pub struct $seed<'p>(pub Path<'p>);

        impl<'de> DeserializeSeed<'de> for $seed<'_> {
            type Value = Option<$t>;

            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(ScalarVisitor::<$t> {
                    path: self.0,
                    target: $target,
                    kind: PhantomData,
                })
            }
        }
    )*};
}

scalar_seeds! {
    /// A Go `string` field. `None` for `null`.
    Str: String = "string",
    /// A Go `bool` field. `None` for `null`.
    Bool: bool = "bool",
}

struct ScalarVisitor<'p, T> {
    path: Path<'p>,
    target: &'static str,
    kind: PhantomData<fn() -> T>,
}

impl<T> ScalarVisitor<'_, T> {
    /// The value of a kind the field takes, or Go's type error naming the `found` kind.
    fn kept<E: de::Error>(&self, value: Option<T>, found: &str) -> Result<Option<T>, E> {
        match value {
            Some(v) => Ok(Some(v)),
            None => Err(mismatch(found, &self.path, self.target)),
        }
    }
}

impl<'de, T: Probed> Visitor<'de> for ScalarVisitor<'_, T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a {}", self.target)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.kept(T::from_str(v), "string")
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        self.kept(T::from_string(v), "string")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        self.kept(T::from_bool(v), "bool")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    reject_kinds!(number, array, object);
}

/// Decodes the value of a Go `string` field into `slot`, where `null` leaves it as it is.
pub fn set_str<'de, A: MapAccess<'de>>(
    map: &mut A,
    path: Path<'_>,
    slot: &mut String,
) -> Result<(), A::Error> {
    if let Some(v) = map.next_value_seed(Str(path))? {
        *slot = v;
    }
    Ok(())
}

/// A Go `int` field (64-bit): the literal must be an integer (`64.5` and `1e2` are errors,
/// reported with the literal as Go does). `None` for `null`.
pub struct Int<'p>(pub Path<'p>);

impl<'de> DeserializeSeed<'de> for Int<'_> {
    type Value = Option<i64>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let raw = <&RawValue>::deserialize(d)?;
        let text = raw.get();
        match kind_of(text) {
            "null" => Ok(None),
            "number" => text
                .parse::<i64>()
                .map(Some)
                .map_err(|_| mismatch(format_args!("number {text}"), &self.0, "int")),
            kind => Err(mismatch(kind, &self.0, "int")),
        }
    }
}

/// A Go `float64` field: any number that fits a double. `None` for `null`.
pub struct Float<'p>(pub Path<'p>);

impl<'de> DeserializeSeed<'de> for Float<'_> {
    type Value = Option<f64>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let raw = <&RawValue>::deserialize(d)?;
        let text = raw.get();
        match kind_of(text) {
            "null" => Ok(None),
            "number" => match text.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(Some(v)),
                _ => Err(mismatch(format_args!("number {text}"), &self.0, "float64")),
            },
            kind => Err(mismatch(kind, &self.0, "float64")),
        }
    }
}

/// A Go `map[string]any` field decoded into `slot`: `null` makes it nil; an object adds its
/// entries (numbers as float64) to the map already there, as Go decodes into a non-nil map,
/// so a repeated key merges; any other kind is Go's type error.
pub struct ObjectInto<'p, 's>(pub Path<'p>, pub &'s mut Option<Map<String, Value>>);

impl<'de> DeserializeSeed<'de> for ObjectInto<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(ObjectVisitor {
            path: self.0,
            target: "map[string]interface {}",
            slot: self.1,
        })
    }
}

/// A Go `map[string]any` field whose value is not kept, only checked.
pub struct ObjectCheck<'p>(pub Path<'p>);

impl<'de> DeserializeSeed<'de> for ObjectCheck<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        ObjectInto(self.0, &mut None).deserialize(d)
    }
}

struct ObjectVisitor<'p, 's> {
    path: Path<'p>,
    target: &'static str,
    slot: &'s mut Option<Map<String, Value>>,
}

impl<'de> Visitor<'de> for ObjectVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        *self.slot = None;
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let out = self.slot.get_or_insert_with(Map::new);
        // An entry's value is an `any`, replaced whole by a repeated key.
        while let Some(key) = map.next_key::<String>()? {
            let v = map.next_value_seed(super::AnyValue)?;
            out.insert(key, v);
        }
        Ok(())
    }

    reject_kinds!(bool, number, string, array);
}

/// A Go `[]json.RawMessage` field of which only the length is kept: `null` gives `None`, an
/// array the number of its elements (each skipped unbuilt, whatever it holds), any other
/// kind is Go's type error.
pub struct RawList<'p>(pub Path<'p>);

impl<'de> DeserializeSeed<'de> for RawList<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(RawListVisitor {
            path: self.0,
            target: "[]json.RawMessage",
        })
    }
}

struct RawListVisitor<'p> {
    path: Path<'p>,
    target: &'static str,
}

impl<'de> Visitor<'de> for RawListVisitor<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut len = 0;
        while seq.next_element::<de::IgnoredAny>()?.is_some() {
            len += 1;
        }
        Ok(Some(len))
    }

    reject_kinds!(bool, number, string, object);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<'de, S: DeserializeSeed<'de>>(seed: S, json: &'de str) -> Result<S::Value, String> {
        let mut de = serde_json::Deserializer::from_str(json);
        seed.deserialize(&mut de)
            .map_err(|e| crate::gojson::message_of(&e))
    }

    static ROOT: Path<'static> = Path::Root("anthropicRequest");

    #[test]
    fn int_rejects_fractions_with_the_literal() {
        let path = ROOT.field("max_tokens");
        assert_eq!(run(Int(path), "1024"), Ok(Some(1024)));
        assert_eq!(run(Int(path), "-0"), Ok(Some(0)));
        assert_eq!(run(Int(path), "-9223372036854775808"), Ok(Some(i64::MIN)));
        assert!(run(Int(path), "9223372036854775808").is_err());
        assert!(run(Int(path), "-0.0").is_err());
        assert_eq!(run(Int(path), "null"), Ok(None));
        assert_eq!(
            run(Int(path), "64.5"),
            Err("json: cannot unmarshal number 64.5 into Go struct field anthropicRequest.max_tokens of type int".into())
        );
        assert_eq!(
            run(Int(path), "1e2"),
            Err("json: cannot unmarshal number 1e2 into Go struct field anthropicRequest.max_tokens of type int".into())
        );
        assert_eq!(
            run(Int(path), "\"5\""),
            Err("json: cannot unmarshal string into Go struct field anthropicRequest.max_tokens of type int".into())
        );
    }

    #[test]
    fn float_accepts_any_number() {
        let path = ROOT.field("temperature");
        assert_eq!(run(Float(path), "1"), Ok(Some(1.0)));
        assert_eq!(run(Float(path), "0.5"), Ok(Some(0.5)));
        assert!(run(Float(path), "1e400").is_err());
        assert!(run(Float(path), "true").is_err());
    }

    #[test]
    fn a_repeated_map_key_merges_entries() {
        let mut slot = None;
        let path = ROOT.field("response_format");
        run(ObjectInto(path, &mut slot), r#"{"a":1,"b":{"x":1}}"#).unwrap();
        run(ObjectInto(path, &mut slot), r#"{"b":{"y":2},"c":3}"#).unwrap();
        let merged = slot.unwrap();
        assert_eq!(merged.len(), 3);
        // The entry's value is an `any`: replaced, not merged.
        assert_eq!(merged["b"], serde_json::json!({"y": 2}));
    }

    #[test]
    fn bool_and_object_kinds() {
        assert_eq!(run(Bool(ROOT.field("stream")), "true"), Ok(Some(true)));
        assert!(run(Bool(ROOT.field("stream")), "1").is_err());
        let object = |json| {
            let mut slot = Some(Map::new());
            run(ObjectInto(ROOT.field("response_format"), &mut slot), json).map(|()| slot)
        };
        assert!(object("\"json\"").is_err());
        assert_eq!(object("null"), Ok(None));
        assert_eq!(
            object(r#"{"a":1,"b":{"c":2}}"#).unwrap().unwrap()["b"]["c"],
            2
        );
    }

    #[test]
    fn a_raw_list_counts_anything_and_refuses_other_kinds() {
        let path = ROOT.field("tools");
        assert_eq!(
            run(RawList(path), r#"[1, "a", {"n": 1e400}, null]"#),
            Ok(Some(4))
        );
        assert_eq!(run(RawList(path), "null"), Ok(None));
        assert_eq!(
            run(RawList(path), r#""Bash""#),
            Err("json: cannot unmarshal string into Go struct field anthropicRequest.tools of type []json.RawMessage".into())
        );
        assert!(run(RawList(path), r#"{"a":1}"#).is_err());
    }
}
