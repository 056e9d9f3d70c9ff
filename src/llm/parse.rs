//! What every provider parser shares: how much of a request to fill in, and running a
//! request seed over a whole text.

use serde::de::DeserializeSeed;

use super::ParseError;
use crate::gojson::decode_whole;

/// How much of a request a parser fills in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Scope {
    #[default]
    Full,
    Chain,
}

/// Runs a request seed over the whole text, refusing trailing data as Go does.
pub(super) fn run<'de, S>(raw: &'de str, seed: S) -> Result<S::Value, ParseError>
where
    S: DeserializeSeed<'de>,
{
    decode_whole(raw, seed).map_err(|e| ParseError::from_json(&e))
}
