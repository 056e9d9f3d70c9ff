//! What a turn cost, from its usage and a per-model price table (docs/divergences.md#cost).
//!
//! The table is data, not code: `src/pricing.toml` ships list prices for current Anthropic
//! and OpenAI models, and `[pricing]` in `config.toml` adds or overrides entries. A model
//! the table does not know costs 0; the caller counts those lookups in a metric so a
//! missing price shows up on a dashboard instead of as silently wrong totals.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::llm::Usage;

const SHIPPED_PRICES: &str = include_str!("pricing.toml");

/// Prices of one model in USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rates {
    /// Uncached input tokens.
    pub input: f64,
    /// Output (completion) tokens.
    pub output: f64,
    /// Input tokens read from the prompt cache; defaults to `input`.
    #[serde(default)]
    pub cache_read: Option<f64>,
    /// Input tokens written to the prompt cache; defaults to `input`.
    #[serde(default)]
    pub cache_write: Option<f64>,
}

/// The highest rate a price table may hold, in USD per million tokens (one dollar a token).
/// With at most 10^9 tokens in each of the four priced fields, a turn then costs at most
/// 4 × 10^9 USD, which bounds every session's sum (docs/storage.md#counting-a-turn-once).
pub const MAX_RATE: f64 = 1_000_000.0;

impl Rates {
    pub(crate) fn validate(&self) -> Result<(), String> {
        let all = [
            ("input", Some(self.input)),
            ("output", Some(self.output)),
            ("cache_read", self.cache_read),
            ("cache_write", self.cache_write),
        ];
        for (name, rate) in all {
            if let Some(rate) = rate
                && !(0.0..=MAX_RATE).contains(&rate)
            {
                return Err(format!(
                    "{name} must be a number from 0 to {MAX_RATE}, got {rate}"
                ));
            }
        }
        Ok(())
    }
}

/// The outcome of pricing one turn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Priced {
    /// The model has a price (or is free by nature, like a local Ollama model).
    Known(f64),
    /// The model is not in the table; the turn is recorded at 0 USD.
    UnknownModel,
}

impl Priced {
    pub fn usd(self) -> f64 {
        match self {
            Priced::Known(usd) => usd,
            Priced::UnknownModel => 0.0,
        }
    }
}

/// Model name → rates, with family-prefix lookup.
#[derive(Debug, Clone)]
pub struct PriceBook {
    models: BTreeMap<String, Rates>,
}

/// Why the shipped table failed to load; only a broken build can cause it.
#[derive(Debug, thiserror::Error)]
#[error("shipped price table is invalid: {0}")]
pub struct PriceTableError(String);

impl PriceBook {
    /// The shipped prices with `overrides` (from `config.toml`) laid over them.
    pub fn with_overrides(overrides: &BTreeMap<String, Rates>) -> Result<Self, PriceTableError> {
        let mut models: BTreeMap<String, Rates> =
            toml::from_str(SHIPPED_PRICES).map_err(|e| PriceTableError(e.to_string()))?;
        for (name, rates) in &models {
            rates
                .validate()
                .map_err(|e| PriceTableError(format!("{name}: {e}")))?;
        }
        models.extend(
            overrides
                .iter()
                .map(|(name, rates)| (name.to_ascii_lowercase(), *rates)),
        );
        Ok(PriceBook { models })
    }

    /// Only the given prices, without the shipped table.
    pub fn only(models: BTreeMap<String, Rates>) -> Self {
        PriceBook {
            models: models
                .into_iter()
                .map(|(name, rates)| (name.to_ascii_lowercase(), rates))
                .collect(),
        }
    }

    /// The rates for `model`: an exact entry, else the longest entry that prefixes the name
    /// up to a `-`, `@` or `:` separator (dated snapshots, Vertex `@` versions, Ollama tags).
    /// A routing prefix such as `anthropic/` is ignored.
    pub fn rates(&self, model: &str) -> Option<&Rates> {
        let model = model
            .rsplit('/')
            .next()
            .unwrap_or(model)
            .to_ascii_lowercase();
        if let Some(rates) = self.models.get(&model) {
            return Some(rates);
        }
        let mut end = model.len();
        while let Some(cut) = model[..end].rfind(['-', '@', ':']) {
            if let Some(rates) = self.models.get(&model[..cut]) {
                return Some(rates);
            }
            end = cut;
        }
        None
    }

    /// The cost of one response.
    ///
    /// Token semantics follow each provider's API as the capture proxy reduces it: Anthropic
    /// reports cache reads and writes beside the uncached input, OpenAI counts cached tokens
    /// inside `prompt_tokens` (so they are taken out before pricing the rest at the input
    /// rate), and Ollama runs locally at no cost.
    pub fn cost(&self, provider: &str, model: &str, usage: Option<&Usage>) -> Priced {
        if provider == "ollama" {
            return Priced::Known(0.0);
        }
        let Some(rates) = self.rates(model) else {
            return Priced::UnknownModel;
        };
        let Some(usage) = usage else {
            return Priced::Known(0.0);
        };
        let tokens = |n: i64| n.max(0) as f64;
        let cache_read = tokens(usage.cache_read_input_tokens);
        let cache_write = tokens(usage.cache_creation_input_tokens);
        let prompt = tokens(usage.prompt_tokens);
        let uncached = if provider == "openai" {
            (prompt - cache_read).max(0.0)
        } else {
            prompt
        };
        let usd = uncached * rates.input
            + tokens(usage.completion_tokens) * rates.output
            + cache_read * rates.cache_read.unwrap_or(rates.input)
            + cache_write * rates.cache_write.unwrap_or(rates.input);
        Priced::Known(usd / 1_000_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book() -> PriceBook {
        PriceBook::with_overrides(&BTreeMap::new()).expect("shipped table loads")
    }

    fn usage(prompt: i64, completion: i64, read: i64, write: i64) -> Usage {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            cache_read_input_tokens: read,
            cache_creation_input_tokens: write,
            ..Usage::default()
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn rates_must_be_finite_and_at_most_the_bound() {
        let rates = |input| Rates {
            input,
            output: 0.0,
            cache_read: None,
            cache_write: None,
        };
        assert_eq!(rates(MAX_RATE).validate(), Ok(()));
        for bad in [-1.0, MAX_RATE * 2.0, f64::NAN, f64::INFINITY] {
            let err = rates(bad).validate().unwrap_err();
            assert!(
                err.starts_with("input must be a number from 0 to 1000000"),
                "{err}"
            );
        }
    }

    #[test]
    fn shipped_table_covers_current_anthropic_and_openai_models() {
        let book = book();
        for model in [
            "claude-opus-4-5",
            "claude-sonnet-4-5",
            "claude-haiku-4-5",
            "gpt-5",
            "gpt-5-mini",
            "gpt-4.1",
            "gpt-4o",
            "o3",
            "o4-mini",
        ] {
            assert!(book.rates(model).is_some(), "{model} has a price");
        }
    }

    #[test]
    fn dated_and_versioned_names_find_their_family() {
        let book = book();
        let sonnet = *book.rates("claude-sonnet-4-5").expect("sonnet");
        assert_eq!(book.rates("claude-sonnet-4-5-20250929"), Some(&sonnet));
        assert_eq!(book.rates("claude-sonnet-4-5@20250929"), Some(&sonnet));
        assert_eq!(book.rates("anthropic/claude-sonnet-4-5"), Some(&sonnet));
        assert_eq!(book.rates("Claude-Sonnet-4-5"), Some(&sonnet));
        // The longest family wins: gpt-4o-mini is not priced as gpt-4o.
        let mini = *book.rates("gpt-4o-mini").expect("mini");
        assert_eq!(book.rates("gpt-4o-mini-2024-07-18"), Some(&mini));
        assert_ne!(book.rates("gpt-4o-2024-08-06"), Some(&mini));
        // A dot is part of the version, not a separator: gpt-4.1 is not gpt-4.
        assert!(book.rates("gpt-4").is_none());
        assert!(book.rates("claude-sonnet").is_none());
    }

    #[test]
    fn anthropic_cost_prices_each_token_class() {
        // 1M uncached input at 3, 1M output at 15, 1M cache read at 0.30, 1M cache write at 3.75.
        let u = usage(1_000_000, 1_000_000, 1_000_000, 1_000_000);
        let cost = book().cost("anthropic", "claude-sonnet-4-5-20250929", Some(&u));
        assert!(close(cost.usd(), 3.0 + 15.0 + 0.30 + 3.75), "{cost:?}");
    }

    #[test]
    fn openai_cached_tokens_are_inside_prompt_tokens() {
        // 1M prompt of which 400k cached: 600k at 2.50 + 400k at 1.25 + 100k output at 10.
        let u = usage(1_000_000, 100_000, 400_000, 0);
        let cost = book().cost("openai", "gpt-4o", Some(&u));
        assert!(close(cost.usd(), 1.5 + 0.5 + 1.0), "{cost:?}");
    }

    #[test]
    fn unknown_models_cost_zero_and_say_so() {
        let u = usage(10, 10, 0, 0);
        assert_eq!(
            book().cost("anthropic", "claude-from-the-future", Some(&u)),
            Priced::UnknownModel
        );
        assert_eq!(book().cost("openai", "", Some(&u)), Priced::UnknownModel);
        assert_eq!(Priced::UnknownModel.usd(), 0.0);
    }

    #[test]
    fn ollama_is_free_and_missing_usage_is_free() {
        let u = usage(10, 10, 0, 0);
        assert_eq!(
            book().cost("ollama", "llama3:8b", Some(&u)),
            Priced::Known(0.0)
        );
        assert_eq!(
            book().cost("anthropic", "claude-opus-4-5", None),
            Priced::Known(0.0)
        );
    }

    #[test]
    fn overrides_replace_and_extend_the_shipped_table() {
        let mut overrides = BTreeMap::new();
        let custom = Rates {
            input: 1.0,
            output: 2.0,
            cache_read: None,
            cache_write: None,
        };
        overrides.insert("claude-sonnet-4-5".to_owned(), custom);
        overrides.insert("My-Model".to_owned(), custom);
        let book = PriceBook::with_overrides(&overrides).expect("loads");
        assert_eq!(book.rates("claude-sonnet-4-5"), Some(&custom));
        assert_eq!(book.rates("my-model-v2"), Some(&custom));
        // Cache rates default to the input rate.
        let u = usage(0, 0, 1_000_000, 1_000_000);
        assert!(close(
            book.cost("anthropic", "my-model", Some(&u)).usd(),
            2.0
        ));
    }

    #[test]
    fn negative_token_counts_do_not_produce_negative_cost() {
        let u = usage(-5, -5, -5, -5);
        assert_eq!(
            book().cost("anthropic", "claude-opus-4-5", Some(&u)).usd(),
            0.0
        );
    }
}
