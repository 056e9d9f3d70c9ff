//! Go `encoding/json` (v1) decoding semantics that the reference's wire contract relies on.
//!
//! The reference decodes every body with Go's decoder; reel decodes with serde_json and
//! reproduces the observable differences here, in one place:
//! - `null` for a string, number, bool or struct field leaves its zero value; for a pointer,
//!   slice or map field it gives "absent" ([`DecodeInPlace`], `in_place_struct!`).
//! - a key names the struct field it spells exactly, or else the one it spells under case
//!   folding (`match_field!`); keys of Go maps, and of `any` values probed as maps, are data
//!   and stay exact.
//! - duplicate keys: the last one wins, without an error.
//! - unknown keys are ignored.
//! - numbers decoded into `any` are float64 ([`AnyValue`]).
//! - typed fields of the provider requests fail with Go's error texts ([`typed`]).
//! - lone UTF-16 surrogate escapes become U+FFFD ([`repair_lone_surrogates`]), and so does
//!   each byte that is not UTF-8 ([`repair_invalid_utf8`]); [`repair_body`] does both.
//!
//! Keys are matched case-sensitively (README.md 10, a documented divergence).
//!
//! Two decoding paths share these rules and differ in their errors:
//! - the body's own types (turn, response, session, content blocks) decode through
//!   [`DecodeInPlace`]: a body that fails is a 400 whose text may stay serde's;
//! - provider requests decode through [`TypedFields`] ([`typed`]): a request that fails is a
//!   422 whose text must be Go's, naming the field's path.

mod fold;
mod surrogates;
mod time;
pub mod typed;
mod utf8;
mod value;

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer;
use serde::de::{self, Deserialize, DeserializeSeed, Visitor};

pub use fold::fold_match;
pub(crate) use fold::match_field;
pub use surrogates::{repair_lone_surrogates, repair_lone_surrogates_str};
pub use time::{TimeCheck, TimeError, check_rfc3339, check_time_json};
pub(crate) use typed::typed_fields;
pub use typed::{
    Document, Element, Fields, List, Path, StructElement, TypedFields, TypedStruct, mismatch,
};
pub use utf8::repair_invalid_utf8;
pub(crate) use value::ignore_kinds;
pub use value::{AnyValue, BoolProbe, ObjectProbe, StrProbe, go_number, skip_map, skip_seq};

/// An object key, borrowed from the input unless it contained escapes.
pub struct Key<'de>(pub Cow<'de, str>);

impl<'de> Key<'de> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// A body as Go's decoder reads it: text in which every byte that is not UTF-8 is U+FFFD and
/// every lone surrogate escape is `\ufffd`, with the number of bytes that were not UTF-8.
/// A body that needs neither repair is borrowed.
pub fn repair_body(body: &[u8]) -> (Cow<'_, str>, usize) {
    let (text, invalid_utf8) = repair_invalid_utf8(body);
    let repaired = match repair_lone_surrogates_str(&text) {
        Cow::Owned(repaired) => Some(repaired),
        Cow::Borrowed(_) => None,
    };
    (repaired.map_or(text, Cow::Owned), invalid_utf8)
}

/// Runs `seed` over the whole of `text`, refusing trailing data, as Go's `json.Unmarshal`
/// refuses anything after the value.
pub fn decode_whole<'de, S: DeserializeSeed<'de>>(
    text: &'de str,
    seed: S,
) -> Result<S::Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = seed.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// The text of a serde_json error without serde_json's ` at line L column C` suffix, so that
/// errors raised by our visitors read exactly as Go's.
pub fn message_of(e: &serde_json::Error) -> String {
    let full = e.to_string();
    if e.line() == 0 {
        return full;
    }
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match full.strip_suffix(&suffix) {
        Some(bare) => bare.to_owned(),
        None => full,
    }
}

/// How a field of the body's own types takes a decoded JSON value, in place, as Go decodes
/// into a struct field (see the module docs for `null`). This is the payload path: its
/// errors are serde's, answered as 400. Provider requests, whose errors must read as Go's,
/// decode through [`TypedFields`] instead.
pub trait DecodeInPlace<'de> {
    fn decode_in_place<D: Deserializer<'de>>(&mut self, d: D) -> Result<(), D::Error>;
}

/// Seed that decodes a value into an existing field (see [`DecodeInPlace`]).
pub struct InPlace<'a, T>(pub &'a mut T);

impl<'de, T: DecodeInPlace<'de>> DeserializeSeed<'de> for InPlace<'_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.0.decode_in_place(d)
    }
}

/// Value fields (`string`, `bool`, `int`, structs): `null` leaves the current value.
macro_rules! null_keeps {
    ($($t:ty),* $(,)?) => {$(
        impl<'de> $crate::gojson::DecodeInPlace<'de> for $t {
            fn decode_in_place<D: serde::Deserializer<'de>>(&mut self, d: D) -> Result<(), D::Error> {
                if let Some(v) = <Option<$t> as serde::Deserialize>::deserialize(d)? {
                    *self = v;
                }
                Ok(())
            }
        }
    )*};
}
pub(crate) use null_keeps;

/// Pointer, slice and map fields (modelled as `Option`): `null` makes them absent.
macro_rules! null_clears {
    ($($t:ty),* $(,)?) => {$(
        impl<'de> $crate::gojson::DecodeInPlace<'de> for Option<$t> {
            fn decode_in_place<D: serde::Deserializer<'de>>(&mut self, d: D) -> Result<(), D::Error> {
                *self = <Option<$t> as serde::Deserialize>::deserialize(d)?;
                Ok(())
            }
        }
    )*};
}
pub(crate) use null_clears;

null_keeps!(String, bool, i64);

/// A `map[string]any` field: numbers are float64, `null` makes it absent, and any other JSON
/// kind is a decode error.
impl<'de> DecodeInPlace<'de> for Option<serde_json::Map<String, serde_json::Value>> {
    fn decode_in_place<D: Deserializer<'de>>(&mut self, d: D) -> Result<(), D::Error> {
        match AnyValue.deserialize(d)? {
            serde_json::Value::Object(map) => *self = Some(map),
            serde_json::Value::Null => *self = None,
            other => {
                return Err(de::Error::custom(format_args!(
                    "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                    json_kind(&other)
                )));
            }
        }
        Ok(())
    }
}

/// Go's name for the kind of a decoded value.
pub fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// Implements `Deserialize` for one of the body's own structs with Go v1 semantics: keys
/// matched to fields as Go matches them (`match_field!`), unknown keys skipped, duplicates resolved last-wins, each field decoded
/// through [`DecodeInPlace`] (or through a custom seed given as `key => field with seed_fn`),
/// a top-level `null` giving the default value.
macro_rules! in_place_struct {
    ($ty:ident, $expecting:literal {
        $($key:literal => $field:ident $(with $seed:expr)?),* $(,)?
    }) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct StructVisitor;
                impl<'de> serde::de::Visitor<'de> for StructVisitor {
                    type Value = $ty;

                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str($expecting)
                    }

                    fn visit_unit<E>(self) -> Result<$ty, E> {
                        Ok(<$ty>::default())
                    }

                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$ty, A::Error> {
                        let mut out = <$ty>::default();
                        while let Some(key) = map.next_key::<$crate::gojson::Key<'de>>()? {
                            $crate::gojson::match_field!(key.as_str(), {
                                $($key => in_place_struct!(@assign map, out.$field $(, $seed)?),)*
                                _ => {
                                    map.next_value::<serde::de::IgnoredAny>()?;
                                },
                            });
                        }
                        Ok(out)
                    }
                }
                d.deserialize_any(StructVisitor)
            }
        }
    };
    (@assign $map:ident, $slot:expr) => {
        $map.next_value_seed($crate::gojson::InPlace(&mut $slot))?
    };
    (@assign $map:ident, $slot:expr, $seed:expr) => {
        $map.next_value_seed($seed(&mut $slot))?
    };
}
pub(crate) use in_place_struct;
