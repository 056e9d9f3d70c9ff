//! The providers the ingest path accepts, and the dispatch from a provider to its parser.
//!
//! The parsers know nothing of this module: they build on the shared types of [`super`],
//! and only this module names them all.

use serde::de::{self, DeserializeSeed};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::parse::{Scope, run};
use super::{ChatRequest, ParseError, Rules, anthropic, ollama, openai, responses};

/// The providers the ingest path accepts, by canonical name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    Anthropic,
    OpenAi,
    Ollama,
}

impl Provider {
    /// Every provider, in the order the reference lists them in its error message.
    pub const ALL: [Provider; 3] = [Provider::Anthropic, Provider::OpenAi, Provider::Ollama];

    /// The provider for a canonical name; names are matched exactly.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "anthropic" => Some(Provider::Anthropic),
            "openai" => Some(Provider::OpenAi),
            "ollama" => Some(Provider::Ollama),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Provider::Anthropic => "anthropic",
            Provider::OpenAi => "openai",
            Provider::Ollama => "ollama",
        }
    }

    /// Parses the provider's raw request under `rules`. `None` (no `request` in the payload)
    /// fails as Go's decoder does on empty input; `null` is an empty request.
    pub fn parse_request(
        self,
        raw: Option<&str>,
        rules: &Rules,
    ) -> Result<ChatRequest, ParseError> {
        self.parse(raw, Scope::Full, rules)
    }

    /// Like [`Provider::parse_request`], but only what a chain needs is filled in (`model`,
    /// `messages`, and what node kinds are told by). Typed fields are still checked, so the
    /// outcome (success or the error) is the same; untyped parts that never fail, such as
    /// Anthropic's system prompt where no kind needs it, are skipped instead of copied.
    pub fn parse_request_for_chain(
        self,
        raw: Option<&str>,
        rules: &Rules,
    ) -> Result<ChatRequest, ParseError> {
        self.parse(raw, Scope::Chain, rules)
    }

    /// A seed that decodes this provider's request for a chain under `rules` (as
    /// [`Provider::parse_request_for_chain`]) straight from a larger document, so a payload
    /// decoder can parse the request in the same pass as the body around it. Its errors are
    /// those of the enclosing deserializer; callers that need the reference's error text
    /// parse the verbatim request instead.
    pub fn chain_seed(self, rules: &Rules) -> ChainSeed {
        ChainSeed {
            provider: self,
            rules: *rules,
        }
    }

    fn parse(
        self,
        raw: Option<&str>,
        scope: Scope,
        rules: &Rules,
    ) -> Result<ChatRequest, ParseError> {
        let raw = raw.ok_or(ParseError::UnexpectedEnd)?;
        match self {
            Provider::Anthropic => anthropic::parse(raw, scope, rules),
            // Only Anthropic has parts a chain can skip.
            Provider::OpenAi if rules.openai_responses && responses::is_responses_request(raw) => {
                run(raw, responses::request_seed())
            }
            Provider::OpenAi => run(raw, openai::request_seed(rules)),
            Provider::Ollama => run(raw, ollama::request_seed(rules)),
        }
    }
}

/// See [`Provider::chain_seed`].
#[derive(Debug, Clone, Copy)]
pub struct ChainSeed {
    provider: Provider,
    rules: Rules,
}

impl<'de> DeserializeSeed<'de> for ChainSeed {
    type Value = ChatRequest;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ChatRequest, D::Error> {
        let rules = &self.rules;
        match self.provider {
            Provider::Anthropic => anthropic::request_seed(Scope::Chain, rules).deserialize(d),
            // Which parser reads an OpenAI request is known only once all of it was seen:
            // it is borrowed whole, then probed and parsed.
            Provider::OpenAi if rules.openai_responses => {
                let raw = <&RawValue>::deserialize(d)?;
                Provider::OpenAi
                    .parse(Some(raw.get()), Scope::Chain, rules)
                    .map_err(de::Error::custom)
            }
            Provider::OpenAi => openai::request_seed(rules).deserialize(d),
            Provider::Ollama => ollama::request_seed(rules).deserialize(d),
        }
    }
}
