//! Go `encoding/json` (v1) decoding semantics that the reference's wire contract relies on.
//!
//! The reference decodes every body with Go's decoder; reel decodes with serde_json and
//! reproduces the observable differences here, in one place:
//! - `null` for a string, number, bool or struct field leaves its zero value; for a pointer,
//!   slice or map field it gives "absent" ([`DecodeInPlace`], `in_place_struct!`).
//! - a repeated key decodes into what the earlier one left: structs and maps merge, a slice
//!   is refilled element by element ([`GoSlice`]).
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
//! Two decoding paths share these rules and differ in their errors:
//! - the body's own types (turn, response, session, content blocks) decode through
//!   [`DecodeInPlace`]: a body that fails is a 400 whose text may stay serde's;
//! - provider requests decode through [`TypedFields`] ([`typed`]): a request that fails is a
//!   422 whose text must be Go's, naming the field's path.

mod any_skip;
mod fields;
mod fold;
mod in_place;
mod slice;
mod surrogates;
mod time;
pub mod typed;
mod utf8;
mod value;

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer;
use serde::de::{Deserialize, DeserializeSeed, Visitor};

pub use any_skip::{AnySkip, walk_may_fail};
pub(crate) use fields::typed_fields;
pub use fields::{Document, Element, Fields, List, TypedFields, TypedStruct, finished};
pub use fold::fold_match;
pub(crate) use fold::match_field;
pub use in_place::{DecodeInPlace, InPlace, Pointee};
pub(crate) use in_place::{in_place_struct, pointer_fields};
pub use slice::GoSlice;
pub use surrogates::{
    repair_lone_surrogates, repair_lone_surrogates_counted, repair_lone_surrogates_str,
};
pub use time::{
    TimeCheck, TimeError, check_rfc3339, check_time_json, format_rfc3339_nano, parse_rfc3339,
};
pub use typed::{Path, mismatch};
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

/// Bytes bound for a value the reference keeps raw (an output item, a block's `content`), as
/// reel keeps them: text in which every byte that is not UTF-8 and every lone surrogate
/// escape is U+FFFD, with the number of both replaced. The reference keeps such bytes as
/// they are and fails later, when it writes them (docs/capture.md §13.5).
pub fn repair_raw(body: &[u8]) -> (Cow<'_, str>, usize) {
    let (text, invalid_utf8) = repair_invalid_utf8(body);
    let (repaired, lone) = match repair_lone_surrogates_counted(&text) {
        (Cow::Owned(repaired), lone) => (Some(repaired), lone),
        (Cow::Borrowed(_), _) => (None, 0),
    };
    (repaired.map_or(text, Cow::Owned), invalid_utf8 + lone)
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
