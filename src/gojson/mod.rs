//! Go `encoding/json` (v1) decoding semantics that the reference's wire contract relies on.
//!
//! The reference decodes every body with Go's decoder; reel decodes with serde_json and
//! reproduces the observable differences here, in one place:
//! - `null` for a string, number, bool or struct field leaves its zero value; for a pointer,
//!   slice or map field it gives "absent" ([`GoField`], [`go_struct!`]).
//! - duplicate keys: the last one wins, without an error.
//! - unknown keys are ignored.
//! - numbers decoded into `any` are float64 ([`AnyValue`]).
//! - typed fields of the provider requests fail with Go's error texts ([`typed`]).
//! - lone UTF-16 surrogate escapes become U+FFFD ([`repair_lone_surrogates`]).
//!
//! Keys are matched case-sensitively (README.md 10, a documented divergence).

mod surrogates;
pub mod typed;
mod value;

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer;
use serde::de::{self, Deserialize, DeserializeSeed, Visitor};

pub use surrogates::{repair_lone_surrogates, repair_lone_surrogates_str};
pub use typed::{
    Document, Element, Fields, GoFields, GoStruct, List, Path, StructElement, mismatch,
};
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

/// How a Go struct field takes a decoded JSON value (see the module docs for `null`).
pub trait GoField<'de>: Sized {
    fn assign<D: Deserializer<'de>>(slot: &mut Self, d: D) -> Result<(), D::Error>;
}

/// Seed that decodes a value into an existing field with Go's rules.
pub struct Assign<'a, T>(pub &'a mut T);

impl<'de, T: GoField<'de>> DeserializeSeed<'de> for Assign<'_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        T::assign(self.0, d)
    }
}

/// Value fields (`string`, `bool`, `int`, structs): `null` leaves the current value.
macro_rules! null_keeps {
    ($($t:ty),* $(,)?) => {$(
        impl<'de> $crate::gojson::GoField<'de> for $t {
            fn assign<D: serde::Deserializer<'de>>(slot: &mut Self, d: D) -> Result<(), D::Error> {
                if let Some(v) = <Option<$t> as serde::Deserialize>::deserialize(d)? {
                    *slot = v;
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
        impl<'de> $crate::gojson::GoField<'de> for Option<$t> {
            fn assign<D: serde::Deserializer<'de>>(slot: &mut Self, d: D) -> Result<(), D::Error> {
                *slot = <Option<$t> as serde::Deserialize>::deserialize(d)?;
                Ok(())
            }
        }
    )*};
}
pub(crate) use null_clears;

null_keeps!(String, bool, i64);

/// A `map[string]any` field: numbers are float64, `null` makes it absent, and any other JSON
/// kind is a decode error.
impl<'de> GoField<'de> for Option<serde_json::Map<String, serde_json::Value>> {
    fn assign<D: Deserializer<'de>>(slot: &mut Self, d: D) -> Result<(), D::Error> {
        match AnyValue.deserialize(d)? {
            serde_json::Value::Object(map) => *slot = Some(map),
            serde_json::Value::Null => *slot = None,
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

/// Implements `Deserialize` for a struct with Go v1 semantics: keys matched exactly, unknown
/// keys skipped, duplicates resolved last-wins, each field assigned through [`GoField`]
/// (or through a custom seed given as `key => field with seed_fn`), a top-level `null`
/// giving the default value.
macro_rules! go_struct {
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
                            match key.as_str() {
                                $($key => go_struct!(@assign map, out.$field $(, $seed)?),)*
                                _ => {
                                    map.next_value::<serde::de::IgnoredAny>()?;
                                }
                            }
                        }
                        Ok(out)
                    }
                }
                d.deserialize_any(StructVisitor)
            }
        }
    };
    (@assign $map:ident, $slot:expr) => {
        $map.next_value_seed($crate::gojson::Assign(&mut $slot))?
    };
    (@assign $map:ident, $slot:expr, $seed:expr) => {
        $map.next_value_seed($seed(&mut $slot))?
    };
}
pub(crate) use go_struct;
