//! Typed fields of a Go struct: a JSON value of the wrong kind is a decode error whose text
//! is the one Go's `encoding/json` prints (`json: cannot unmarshal number 64.5 into Go struct
//! field anthropicRequest.max_tokens of type int`). JSON `null` leaves the field unset.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::Deserializer;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::Key;
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

/// Decodes one element of a typed slice, knowing where it sits (for error messages).
pub trait Element<'de> {
    type Value;

    fn decode<D: Deserializer<'de>>(&self, path: Path<'_>, d: D) -> Result<Self::Value, D::Error>;
}

/// A Go slice field (`[]T`): `null` gives no elements, another JSON kind is a type error
/// naming `target`, and element `i` is decoded by `element` at `<path>.<i>`.
pub struct List<'p, T> {
    pub path: Path<'p>,
    pub target: &'static str,
    pub element: T,
}

impl<'de, T: Element<'de>> DeserializeSeed<'de> for List<'_, T> {
    type Value = Vec<T::Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T: Element<'de>> Visitor<'de> for List<'_, T> {
    type Value = Vec<T::Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        loop {
            let at = At {
                element: &self.element,
                path: self.path.index(out.len()),
            };
            match seq.next_element_seed(at)? {
                Some(v) => out.push(v),
                None => return Ok(out),
            }
        }
    }

    reject_kinds!(bool, number, string, object);
}

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

/// A [`TypedFields`] struct that is a whole request or an element of a [`List`]: decoded
/// from its zero value, then turned into what the parser keeps.
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

/// The [`Element`] of a list of Go structs `T`.
pub struct StructElement<T>(PhantomData<fn() -> T>);

impl<T> StructElement<T> {
    pub const fn new() -> Self {
        StructElement(PhantomData)
    }
}

impl<T> Default for StructElement<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'de, T: TypedStruct> Element<'de> for StructElement<T> {
    type Value = T::Output;

    fn decode<D: Deserializer<'de>>(&self, path: Path<'_>, d: D) -> Result<T::Output, D::Error> {
        Document(path, T::default()).deserialize(d)
    }
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

/// One element of a [`List`] with its path.
struct At<'a, 'q, E> {
    element: &'a E,
    path: Path<'q>,
}

impl<'de, E: Element<'de>> DeserializeSeed<'de> for At<'_, '_, E> {
    type Value = E::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<E::Value, D::Error> {
        self.element.decode(self.path, d)
    }
}

/// A Go `[]string` field; `null` gives no elements, a `null` element is `""`.
pub struct StrList<'p>(pub Path<'p>);

impl<'de> DeserializeSeed<'de> for StrList<'_> {
    type Value = Vec<String>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<String>, D::Error> {
        List {
            path: self.0,
            target: "[]string",
            element: StrElement,
        }
        .deserialize(d)
    }
}

struct StrElement;

impl<'de> Element<'de> for StrElement {
    type Value = String;

    fn decode<D: Deserializer<'de>>(&self, path: Path<'_>, d: D) -> Result<String, D::Error> {
        Ok(Str(path).deserialize(d)?.unwrap_or_default())
    }
}

/// A Go `map[string]any` field: an object (numbers as float64) or `null`.
pub struct Object<'p>(pub Path<'p>);

impl<'de> DeserializeSeed<'de> for Object<'_> {
    type Value = Option<serde_json::Map<String, serde_json::Value>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(ObjectVisitor {
            path: self.0,
            target: "map[string]interface {}",
        })
    }
}

struct ObjectVisitor<'p> {
    path: Path<'p>,
    target: &'static str,
}

impl<'de> Visitor<'de> for ObjectVisitor<'_> {
    type Value = Option<serde_json::Map<String, serde_json::Value>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let v = map.next_value_seed(super::AnyValue)?;
            out.insert(key, v);
        }
        Ok(Some(out))
    }

    reject_kinds!(bool, number, string, array);
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
    fn string_list_reports_the_element_index() {
        let path = ROOT.field("stop_sequences");
        assert_eq!(
            run(StrList(path), r#"["a",null,"b"]"#),
            Ok(vec!["a".to_owned(), String::new(), "b".to_owned()])
        );
        assert_eq!(run(StrList(path), "null"), Ok(vec![]));
        assert_eq!(
            run(StrList(path), r#"["a",1]"#),
            Err("json: cannot unmarshal number into Go struct field anthropicRequest.stop_sequences.1 of type string".into())
        );
        assert_eq!(
            run(StrList(path), r#""a""#),
            Err("json: cannot unmarshal string into Go struct field anthropicRequest.stop_sequences of type []string".into())
        );
    }

    #[test]
    fn bool_and_object_kinds() {
        assert_eq!(run(Bool(ROOT.field("stream")), "true"), Ok(Some(true)));
        assert!(run(Bool(ROOT.field("stream")), "1").is_err());
        assert!(run(Object(ROOT.field("response_format")), "\"json\"").is_err());
        assert_eq!(run(Object(ROOT.field("response_format")), "null"), Ok(None));
    }
}
