//! The payload path: the body's own types (turn, response, session, content blocks) decoded
//! in place, as Go decodes into the value a field already holds. Errors here are serde's; a
//! body that fails is answered 400 whatever the text.

use serde::Deserializer;
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::GoSlice;
use super::typed::{Int, ObjectInto, Path};

/// How a field takes a decoded JSON value, in place, as Go decodes into a struct field:
/// `null` leaves a value field (string, bool, int, struct) as it is and makes a pointer,
/// slice or map nil; an object is decoded into the struct or map already there, so a
/// repeated key merges into what the earlier one left; an array refills a slice
/// ([`GoSlice`]). Provider requests, whose errors must read as Go's, decode through
/// [`super::TypedFields`] instead.
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

/// Value fields (`string`, `bool`, `float64`): `null` leaves the current value, another value replaces
/// it.
macro_rules! null_keeps {
    ($($t:ty),* $(,)?) => {$(
        impl<'de> $crate::gojson::DecodeInPlace<'de> for $t {
            fn decode_in_place<D: serde::Deserializer<'de>>(
                &mut self,
                d: D,
            ) -> Result<(), D::Error> {
                if let Some(v) = <Option<$t> as serde::Deserialize>::deserialize(d)? {
                    *self = v;
                }
                Ok(())
            }
        }
    )*};
}

/// Pointer fields to a struct, modelled as `Option`: `null` makes them nil; an object is
/// decoded into the struct they point to (allocated when nil), so a repeated key merges.
macro_rules! pointer_fields {
    ($($t:ty),* $(,)?) => {$(
        impl<'de> $crate::gojson::DecodeInPlace<'de> for Option<$t> {
            fn decode_in_place<D: serde::Deserializer<'de>>(
                &mut self,
                d: D,
            ) -> Result<(), D::Error> {
                d.deserialize_option($crate::gojson::Pointee(self))
            }
        }
    )*};
}
pub(crate) use pointer_fields;

// `f64` is Go's `float64`: any JSON number.
null_keeps!(String, bool, f64);

/// A Go `int` field: the literal must be an integer, read as Go's `strconv.ParseInt` reads it
/// (so `-0` is 0, while `1.0` and `1e2` are errors); `null` leaves the current value.
impl<'de> DecodeInPlace<'de> for i64 {
    fn decode_in_place<D: Deserializer<'de>>(&mut self, d: D) -> Result<(), D::Error> {
        if let Some(v) = Int(Path::Root("int")).deserialize(d)? {
            *self = v;
        }
        Ok(())
    }
}

/// The visitor of a pointer field (see `pointer_fields!`).
pub struct Pointee<'a, T>(pub &'a mut Option<T>);

impl<'de, T: DecodeInPlace<'de> + Default> Visitor<'de> for Pointee<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a value or null")
    }

    fn visit_none<E>(self) -> Result<(), E> {
        *self.0 = None;
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        *self.0 = None;
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.0.get_or_insert_with(T::default).decode_in_place(d)
    }
}

/// A `map[string]any` field: numbers are float64, `null` makes it nil, an object adds its
/// entries to the map already there, and any other JSON kind is a decode error.
impl<'de> DecodeInPlace<'de> for Option<Map<String, Value>> {
    fn decode_in_place<D: Deserializer<'de>>(&mut self, d: D) -> Result<(), D::Error> {
        // At the root, Go's text names the map type alone, as the payload's errors may.
        ObjectInto(Path::Root("map"), self).deserialize(d)
    }
}

/// A slice field: `null` makes it nil (see [`Pointee`]), an array refills it (see
/// [`GoSlice`]).
impl<'de, T: DecodeInPlace<'de> + Default> DecodeInPlace<'de> for Option<GoSlice<T>> {
    fn decode_in_place<D: Deserializer<'de>>(&mut self, d: D) -> Result<(), D::Error> {
        d.deserialize_option(Pointee(self))
    }
}

impl<'de, T: DecodeInPlace<'de> + Default> DecodeInPlace<'de> for GoSlice<T> {
    fn decode_in_place<D: Deserializer<'de>>(&mut self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(Refill(self))
    }
}

struct Refill<'a, T>(&'a mut GoSlice<T>);

impl<'de, T: DecodeInPlace<'de> + Default> Visitor<'de> for Refill<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        self.0.refill(seq, |_, slot, seq| {
            Ok(seq.next_element_seed(InPlace(slot))?.is_some())
        })
    }
}

/// Implements [`DecodeInPlace`] and `Deserialize` for one of the body's own structs with Go
/// v1 semantics: keys matched to fields as Go matches them (`match_field!`), unknown keys
/// skipped, the last duplicate winning, an object decoded into the struct as it is (`null`
/// leaves it, and a top-level `null` gives the default value). Each arm is
/// `"key" => field`, decoded through the field's [`DecodeInPlace`], or `"key" => (seed)`
/// for a Go field reel does not keep but whose type must still hold: the value goes
/// through `seed` and is dropped.
macro_rules! in_place_struct {
    ($ty:ident, $expecting:literal { $($key:literal => $slot:tt),* $(,)? }) => {
        impl<'de> $crate::gojson::DecodeInPlace<'de> for $ty {
            fn decode_in_place<D: serde::Deserializer<'de>>(
                &mut self,
                d: D,
            ) -> Result<(), D::Error> {
                struct Fields<'s>(&'s mut $ty);

                impl<'de> serde::de::Visitor<'de> for Fields<'_> {
                    type Value = ();

                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str($expecting)
                    }

                    fn visit_unit<E>(self) -> Result<(), E> {
                        Ok(())
                    }

                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<(), A::Error> {
                        let out = self.0;
                        while let Some(key) = map.next_key::<$crate::gojson::Key<'de>>()? {
                            $crate::gojson::match_field!(key.as_str(), {
                                $($key => {
                                    $crate::gojson::in_place_struct!(@field map, out, $slot)
                                },)*
                                _ => {
                                    map.next_value::<serde::de::IgnoredAny>()?;
                                },
                            });
                        }
                        Ok(())
                    }
                }

                d.deserialize_any(Fields(self))
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let mut out = <$ty>::default();
                $crate::gojson::DecodeInPlace::decode_in_place(&mut out, d)?;
                Ok(out)
            }
        }
    };
    (@field $map:ident, $out:ident, ($seed:expr)) => {
        $map.next_value_seed($seed)?
    };
    (@field $map:ident, $out:ident, $field:ident) => {
        $map.next_value_seed($crate::gojson::InPlace(&mut $out.$field))?
    };
}
pub(crate) use in_place_struct;
