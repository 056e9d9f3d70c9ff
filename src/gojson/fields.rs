//! Go structs of provider requests, decoded key by key into typed fields, and Go slices of
//! them; every error is Go's text with the path of the field ([`super::typed`]).

use std::fmt;

use serde::Deserializer;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::typed::{Path, Str, reject_kinds};
use super::{GoSlice, Key};

/// A Go struct of a provider request, decoded key by key: each of its fields through the
/// seed of its Go type, whose errors are Go's texts naming the field's path (a request that
/// fails is a 422 quoting them); unknown keys skipped, the last duplicate winning. The body's
/// own types decode through [`super::DecodeInPlace`] instead. Implemented with
/// `typed_fields!`.
pub trait TypedFields {
    /// Go's type name, as its type errors print it (`ollama.ollamaToolCall`).
    const TARGET: &'static str;
    /// What serde reports it expected.
    const EXPECTING: &'static str;

    /// Decodes the value of `key`, a field of the struct at `path`. `Ok(false)` when `key`
    /// is no field of the struct: the value is then skipped.
    fn field<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        path: &Path<'_>,
        map: &mut A,
    ) -> Result<bool, A::Error>;
}

/// Implements [`TypedFields`] for a struct: its Go type name (for type errors), what serde
/// reports it expected, and one arm per Go field, `"key" => expression`, each decoding the
/// key's value from the map (an arm may carry a guard, and may `return Ok(false)` to have the
/// value skipped). The closure-like head names the struct, the struct's path and the map as
/// the arms use them. Keys are matched as Go matches them (`match_field!`); keys
/// of no arm are skipped.
macro_rules! typed_fields {
    ($ty:ty, $target:literal, $expecting:literal, |$this:ident, $path:ident, $map:ident| {
        $($key:literal $(if $guard:expr)? => $arm:expr),* $(,)?
    }) => {
        impl $crate::gojson::TypedFields for $ty {
            const TARGET: &'static str = $target;
            const EXPECTING: &'static str = $expecting;

            fn field<'de, A: serde::de::MapAccess<'de>>(
                &mut self,
                key: &str,
                $path: &$crate::gojson::Path<'_>,
                $map: &mut A,
            ) -> Result<bool, A::Error> {
                let $this = self;
                $crate::gojson::match_field!(key, {
                    $($key $(if $guard)? => {
                        $arm;
                    },)*
                    _ => return Ok(false),
                });
                Ok(true)
            }
        }
    };
}
pub(crate) use typed_fields;

/// A [`TypedFields`] struct that becomes something else once decoded: a whole request
/// ([`Document`]), or the elements of a list, finished together once the list is complete
/// ([`finished`]), since a repeated key may still decode into them until then.
pub trait TypedStruct: TypedFields + Default {
    type Output;

    fn finish(self) -> Self::Output;
}

/// Decodes a Go struct into an existing value, as Go decodes into a struct field: keys
/// overwrite what they name and leave the rest. `null` changes nothing; any other kind
/// than an object is Go's type error. The seed's value says whether an object was read.
pub struct Fields<'p, 'v, T>(pub Path<'p>, pub &'v mut T);

impl<'de, T: TypedFields> DeserializeSeed<'de> for Fields<'_, '_, T> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(FieldsVisitor {
            path: self.0,
            target: T::TARGET,
            value: self.1,
        })
    }
}

struct FieldsVisitor<'p, 'v, T> {
    path: Path<'p>,
    target: &'static str,
    value: &'v mut T,
}

impl<'de, T: TypedFields> Visitor<'de> for FieldsVisitor<'_, '_, T> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while let Some(key) = map.next_key::<Key>()? {
            if !self.value.field(key.as_str(), &self.path, &mut map)? {
                map.next_value::<de::IgnoredAny>()?;
            }
        }
        Ok(true)
    }

    reject_kinds!(bool, number, string, array);
}

/// A Go type that is an element of a typed slice: decoded into the element already at its
/// place (see [`GoSlice`]), knowing where it sits (for error messages).
pub trait Element: Default {
    fn decode_into<'de, D: Deserializer<'de>>(
        &mut self,
        at: Path<'_>,
        d: D,
    ) -> Result<(), D::Error>;
}

/// A Go struct element keeps the fields the new element does not name; it is finished with
/// the rest of the slice (see [`finished`]).
impl<T: TypedFields + Default> Element for T {
    fn decode_into<'de, D: Deserializer<'de>>(
        &mut self,
        at: Path<'_>,
        d: D,
    ) -> Result<(), D::Error> {
        Fields(at, self).deserialize(d).map(drop)
    }
}

/// A `string` element: a `null` element leaves the string already at its place (`""` in a
/// new one).
impl Element for String {
    fn decode_into<'de, D: Deserializer<'de>>(
        &mut self,
        at: Path<'_>,
        d: D,
    ) -> Result<(), D::Error> {
        if let Some(v) = Str(at).deserialize(d)? {
            *self = v;
        }
        Ok(())
    }
}

/// A Go slice field (`[]T`, named `target` in type errors) decoded into `slice`: `null`
/// makes it nil, another JSON kind than an array is a type error, and element `i` is
/// decoded at `<path>.<i>` into the slice's element `i`, as Go refills a slice.
pub struct List<'p, 's, T, F = fn(&mut T)> {
    path: Path<'p>,
    target: &'static str,
    slice: &'s mut GoSlice<T>,
    setup: F,
}

impl<'p, 's, T> List<'p, 's, T> {
    pub fn new(path: Path<'p>, target: &'static str, slice: &'s mut GoSlice<T>) -> Self {
        List {
            path,
            target,
            slice,
            setup: |_| {},
        }
    }
}

impl<'p, 's, T, F> List<'p, 's, T, F> {
    /// Runs `setup` on each element before it is decoded into: for elements that need what
    /// the enclosing value knows (the rules a request is parsed under).
    pub fn setup<G: FnMut(&mut T)>(self, setup: G) -> List<'p, 's, T, G> {
        List {
            path: self.path,
            target: self.target,
            slice: self.slice,
            setup,
        }
    }
}

impl<'de, T: Element, F: FnMut(&mut T)> DeserializeSeed<'de> for List<'_, '_, T, F> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T: Element, F: FnMut(&mut T)> Visitor<'de> for List<'_, '_, T, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        *self.slice = GoSlice::default();
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        let path = self.path;
        let mut setup = self.setup;
        self.slice.refill(seq, |i, slot, seq| {
            setup(slot);
            let at = At {
                path: path.index(i),
                slot,
            };
            Ok(seq.next_element_seed(at)?.is_some())
        })
    }

    reject_kinds!(bool, number, string, object);
}

/// One element of a [`List`] with its path and the element it decodes into.
struct At<'q, 's, T> {
    path: Path<'q>,
    slot: &'s mut T,
}

impl<'de, T: Element> DeserializeSeed<'de> for At<'_, '_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.slot.decode_into(self.path, d)
    }
}

/// The elements of a decoded slice of Go structs, each finished.
pub fn finished<T: TypedStruct>(slice: GoSlice<T>) -> Vec<T::Output> {
    slice.into_vec().into_iter().map(T::finish).collect()
}

/// A Go struct decoded from `value` (its zero value, or one carrying settings) and then
/// finished. At [`Path::Root`] it is a whole document: `null` gives the finished zero
/// value, another kind than an object is Go's top-level type error.
pub struct Document<'p, T>(pub Path<'p>, pub T);

impl<'de, T: TypedStruct> DeserializeSeed<'de> for Document<'_, T> {
    type Value = T::Output;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T::Output, D::Error> {
        let Document(path, mut value) = self;
        Fields(path, &mut value).deserialize(d)?;
        Ok(value.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static ROOT: Path<'static> = Path::Root("anthropicRequest");

    /// The strings of a `[]string` field after decoding each of `values` into it, as a
    /// repeated key does.
    fn strings(path: Path<'_>, values: &[&str]) -> Result<Vec<String>, String> {
        let mut slice = GoSlice::default();
        for json in values {
            let mut de = serde_json::Deserializer::from_str(json);
            List::new(path, "[]string", &mut slice)
                .deserialize(&mut de)
                .map_err(|e| crate::gojson::message_of(&e))?;
        }
        Ok(slice.into_vec())
    }

    #[test]
    fn string_list_reports_the_element_index() {
        let path = ROOT.field("stop_sequences");
        assert_eq!(
            strings(path, &[r#"["a",null,"b"]"#]),
            Ok(vec!["a".to_owned(), String::new(), "b".to_owned()])
        );
        assert_eq!(strings(path, &["null"]), Ok(vec![]));
        assert_eq!(
            strings(path, &[r#"["a",1]"#]),
            Err("json: cannot unmarshal number into Go struct field anthropicRequest.stop_sequences.1 of type string".into())
        );
        assert_eq!(
            strings(path, &[r#""a""#]),
            Err("json: cannot unmarshal string into Go struct field anthropicRequest.stop_sequences of type []string".into())
        );
    }

    #[test]
    fn a_repeated_slice_key_decodes_into_the_elements_already_there() {
        let path = ROOT.field("stop_sequences");
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // `null` elements leave what the earlier array put at their place.
        assert_eq!(
            strings(path, &[r#"["a","b"]"#, "[null]"]),
            Ok(owned(&["a"]))
        );
        // Past the new length, Go's backing array keeps the first array's elements, and a
        // later, longer array decodes into them.
        assert_eq!(
            strings(
                path,
                &[r#"["a","b","c"]"#, r#"["x"]"#, "[null,null,null,null]"]
            ),
            Ok(owned(&["x", "b", "c", ""]))
        );
        // An empty array or `null` drops the backing array.
        assert_eq!(
            strings(path, &[r#"["a","b"]"#, "[]", "[null,null]"]),
            Ok(owned(&["", ""]))
        );
        assert_eq!(
            strings(path, &[r#"["a"]"#, "null", "[null]"]),
            Ok(owned(&[""]))
        );
    }
}
