//! Values decoded into Go's `any` / `map[string]any`: every number becomes a float64.
//!
//! The reference stores and hashes free-form objects (tool inputs) after a Go decode, so
//! `9007199254740993` is `9007199254740992` and `2.0` is `2`. Numbers are kept as serde_json
//! integers when the double is integral (so stored JSON reads `2`, as Go writes it) and as
//! doubles otherwise; either way `as_f64` returns the exact double Go holds.

use std::fmt;

use serde::Deserializer;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::AnySkip;

/// 2^63: doubles below this magnitude that are integral fit an `i64` exactly.
const I64_LIMIT: f64 = 9_223_372_036_854_775_808.0;

/// The number Go holds after decoding a JSON number into `any`.
pub fn go_number(f: f64) -> Number {
    if f.fract() == 0.0 && f.abs() < I64_LIMIT {
        // Integral and in range: exact conversion (-0.0 becomes 0, as Go renders it).
        Number::from(f as i64)
    } else {
        // serde_json never yields a non-finite double, so this always succeeds; 0 keeps the
        // function total without a panic.
        Number::from_f64(f).unwrap_or_else(|| Number::from(0))
    }
}

/// Deserializes any JSON value with Go `any` semantics.
pub struct AnyValue;

impl<'de> DeserializeSeed<'de> for AnyValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(AnyVisitor)
    }
}

/// Deserializes a JSON object into a `map[string]any`; `None` for any other JSON value,
/// which is skipped. This is the "probe" shape: a wrong type is ignored, never an error.
pub struct ObjectProbe;

impl<'de> DeserializeSeed<'de> for ObjectProbe {
    type Value = Option<Map<String, Value>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        match d.deserialize_any(AnyVisitor)? {
            Value::Object(map) => Ok(Some(map)),
            _ => Ok(None),
        }
    }
}

struct AnyVisitor;

impl<'de> Visitor<'de> for AnyVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(go_number(v as f64)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(go_number(v as f64)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Number(go_number(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element_seed(AnyValue)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        // Duplicate keys: the last one wins, as in a Go map.
        while let Some(key) = map.next_key::<String>()? {
            let v = map.next_value_seed(AnyValue)?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// Skips the rest of an array inside an `any` (see [`AnySkip`]).
pub fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element_seed(AnySkip)?.is_some() {}
    Ok(())
}

/// Skips the rest of an object inside an `any` (see [`AnySkip`]).
pub fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_key::<IgnoredAny>()?.is_some() {
        map.next_value_seed(AnySkip)?;
    }
    Ok(())
}

/// Implements the `visit_*` methods of a probe visitor for JSON kinds it does not look at:
/// each returns `Ok(value)`, consuming arrays and objects. Kinds: `null`, `bool`, `number`,
/// `string`, `array`, `object`.
macro_rules! ignore_kinds {
    ($value:expr; $($kind:ident),* $(,)?) => {
        $( $crate::gojson::ignore_kinds!(@one $value, $kind); )*
    };
    (@one $value:expr, null) => {
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
    (@one $value:expr, bool) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
    (@one $value:expr, number) => {
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
    (@one $value:expr, string) => {
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
    (@one $value:expr, array) => {
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            $crate::gojson::skip_seq(seq)?;
            Ok($value)
        }
    };
    (@one $value:expr, object) => {
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            $crate::gojson::skip_map(map)?;
            Ok($value)
        }
    };
}
pub(crate) use ignore_kinds;

/// Probes an `any` value for a string, as Go's `v.(string)` type assertion does: `None` for
/// every other kind, which is skipped without error.
pub struct StrProbe;

impl<'de> DeserializeSeed<'de> for StrProbe {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(KindProbe::<String>(std::marker::PhantomData))
    }
}

/// Probes an `any` value for a bool (`v.(bool)`).
pub struct BoolProbe;

impl<'de> DeserializeSeed<'de> for BoolProbe {
    type Value = Option<bool>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(KindProbe::<bool>(std::marker::PhantomData))
    }
}

struct KindProbe<T>(std::marker::PhantomData<T>);

/// What a probe keeps from each JSON kind; everything else is `None`. Typed scalar fields
/// ([`super::typed::Str`], [`super::typed::Bool`]) take the same kinds and refuse the rest.
pub(crate) trait Probed: Sized {
    fn from_str(_: &str) -> Option<Self> {
        None
    }
    fn from_string(s: String) -> Option<Self> {
        Self::from_str(&s)
    }
    fn from_bool(_: bool) -> Option<Self> {
        None
    }
}

impl Probed for String {
    fn from_str(s: &str) -> Option<Self> {
        Some(s.to_owned())
    }
    fn from_string(s: String) -> Option<Self> {
        Some(s)
    }
}

impl Probed for bool {
    fn from_bool(b: bool) -> Option<Self> {
        Some(b)
    }
}

impl<'de, T: Probed> Visitor<'de> for KindProbe<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Option<T>, E> {
        Ok(T::from_bool(v))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_str<E>(self, v: &str) -> Result<Option<T>, E> {
        Ok(T::from_str(v))
    }

    fn visit_string<E>(self, v: String) -> Result<Option<T>, E> {
        Ok(T::from_string(v))
    }

    fn visit_unit<E>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Option<T>, A::Error> {
        skip_seq(seq)?;
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<T>, A::Error> {
        skip_map(map)?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(s: &str) -> Value {
        let mut de = serde_json::Deserializer::from_str(s);
        AnyValue.deserialize(&mut de).unwrap()
    }

    #[test]
    fn numbers_are_go_doubles() {
        let v = decode(r#"{"i":9007199254740993,"f":2.0,"n":-0.0,"h":1.5,"big":1e20}"#);
        assert_eq!(v["i"].as_f64(), Some(9007199254740992.0));
        assert_eq!(v["f"].to_string(), "2");
        assert_eq!(v["n"].to_string(), "0");
        assert_eq!(v["h"].as_f64(), Some(1.5));
        assert_eq!(v["big"].as_f64(), Some(1e20));
    }

    #[test]
    fn duplicate_keys_keep_the_last_value() {
        assert_eq!(decode(r#"{"a":1,"a":"x"}"#)["a"], "x");
    }

    #[test]
    fn object_probe_ignores_other_kinds() {
        let mut de = serde_json::Deserializer::from_str("[1,{\"a\":2}]");
        assert_eq!(ObjectProbe.deserialize(&mut de).unwrap(), None);
        let mut de = serde_json::Deserializer::from_str("{\"a\":2}");
        assert!(ObjectProbe.deserialize(&mut de).unwrap().is_some());
    }
}
