//! The bounds a turn's chain must keep so that storing it can never fail, nor make a later
//! turn of its session fail (docs/wire.md#limits).
//!
//! * Token counts are summed into the session's `BIGINT` counters and priced into its cost.
//!   Bounding each one per turn bounds every sum: a session counts at most 2^31 - 1 turns
//!   (`turn_count` is an `INT`; the store stops counting there), and
//!   (2^31 - 1) × 10^9 < 2^63.
//! * Durations are stored per node in `BIGINT` columns and never summed: any non-negative
//!   64-bit value fits, so only negative ones are refused.
//! * `model`, `role` and `agent_name` are indexed columns of `nodes`. A Postgres btree entry
//!   holds at most 2704 bytes, and a stored U+0000 becomes U+FFFD (three bytes), so each
//!   bound stays under that even tripled, `role` and `model` together included
//!   (`node_role_model`).

use crate::llm::Usage;
use crate::merkle::Chain;

/// The largest count of each usage token field of one turn.
pub const MAX_TOKENS: i64 = 1_000_000_000;
/// The longest `model` of a node (request or response), in bytes.
pub const MAX_MODEL_BYTES: usize = 512;
/// The longest `role` of a node, in bytes.
pub const MAX_ROLE_BYTES: usize = 128;
/// The longest `agent_name` of a turn, in bytes.
pub const MAX_AGENT_NAME_BYTES: usize = 512;

/// Why a chain is outside the bounds. The `Display` text follows `unprocessable turn: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error(
        "invalid reduced response: response.usage.{field} must be between 0 and {MAX_TOKENS}, got {value}"
    )]
    Tokens { field: &'static str, value: i64 },
    #[error("invalid reduced response: response.usage.{field} must not be negative, got {value}")]
    Duration { field: &'static str, value: i64 },
    #[error("{field} longer than {limit} bytes")]
    TooLong { field: &'static str, limit: usize },
}

/// Checks the head's usage and every node's indexed text. No allocation: it runs on every
/// turn.
pub fn check(chain: &Chain) -> Result<(), LimitError> {
    let head = chain.head();
    if let Some(usage) = &head.usage {
        check_usage(usage)?;
    }
    let too_long = |field, limit| Err(LimitError::TooLong { field, limit });
    // Every node carries the turn's agent name.
    if head.bucket.agent_name.len() > MAX_AGENT_NAME_BYTES {
        return too_long("agent_name", MAX_AGENT_NAME_BYTES);
    }
    for node in &chain.nodes {
        if node.bucket.model.len() > MAX_MODEL_BYTES {
            return too_long("model", MAX_MODEL_BYTES);
        }
        if node.bucket.role.len() > MAX_ROLE_BYTES {
            return too_long("role", MAX_ROLE_BYTES);
        }
    }
    Ok(())
}

fn check_usage(usage: &Usage) -> Result<(), LimitError> {
    let tokens = [
        ("prompt_tokens", usage.prompt_tokens),
        ("completion_tokens", usage.completion_tokens),
        ("total_tokens", usage.total_tokens),
        (
            "cache_creation_input_tokens",
            usage.cache_creation_input_tokens,
        ),
        ("cache_read_input_tokens", usage.cache_read_input_tokens),
    ];
    for (field, value) in tokens {
        if !(0..=MAX_TOKENS).contains(&value) {
            return Err(LimitError::Tokens { field, value });
        }
    }
    let durations = [
        ("total_duration_ns", usage.total_duration_ns),
        ("prompt_duration_ns", usage.prompt_duration_ns),
    ];
    for (field, value) in durations {
        if value < 0 {
            return Err(LimitError::Duration { field, value });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{Bucket, ChainNode};

    fn chain(usage: Usage, model: &str) -> Chain {
        Chain {
            nodes: vec![ChainNode {
                hash: "h".into(),
                parent_hash: None,
                bucket: Bucket {
                    role: "assistant".into(),
                    model: model.into(),
                    ..Bucket::default()
                },
                kind: None,
                thread_id: String::new(),
                stop_reason: String::new(),
                usage: Some(usage),
            }],
        }
    }

    #[test]
    fn token_counts_must_be_between_zero_and_the_bound() {
        let at_bound = Usage {
            prompt_tokens: MAX_TOKENS,
            cache_read_input_tokens: MAX_TOKENS,
            total_duration_ns: i64::MAX,
            ..Usage::default()
        };
        assert_eq!(check(&chain(at_bound, "m")), Ok(()));
        let negative = Usage {
            completion_tokens: -1,
            ..Usage::default()
        };
        assert_eq!(
            check(&chain(negative, "m")).unwrap_err().to_string(),
            "invalid reduced response: response.usage.completion_tokens must be between 0 and 1000000000, got -1"
        );
        let huge = Usage {
            cache_creation_input_tokens: MAX_TOKENS + 1,
            ..Usage::default()
        };
        assert!(matches!(
            check(&chain(huge, "m")),
            Err(LimitError::Tokens {
                field: "cache_creation_input_tokens",
                ..
            })
        ));
    }

    #[test]
    fn durations_must_not_be_negative() {
        let usage = Usage {
            prompt_duration_ns: -5,
            ..Usage::default()
        };
        assert_eq!(
            check(&chain(usage, "m")),
            Err(LimitError::Duration {
                field: "prompt_duration_ns",
                value: -5
            })
        );
    }

    #[test]
    fn indexed_text_is_bounded() {
        let long = "m".repeat(MAX_MODEL_BYTES + 1);
        assert_eq!(
            check(&chain(Usage::default(), &long))
                .unwrap_err()
                .to_string(),
            "model longer than 512 bytes"
        );
        // The worst case, every byte a U+0000 stored as U+FFFD, fits a btree entry.
        const { assert!(3 * (MAX_ROLE_BYTES + MAX_MODEL_BYTES) < 2704) };
        const { assert!(3 * MAX_AGENT_NAME_BYTES < 2704) };
    }
}
