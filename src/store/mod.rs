//! Persistence: the only module that writes SQL. Plain `async fn`s over a sea-orm connection.

mod ingest;

pub use ingest::ingest_turn;

use uuid::Uuid;

use crate::merkle::Chain;
use crate::sessions::SessionKey;
use crate::wire::SessionEnvelope;

/// One turn to commit for one session.
#[derive(Debug, Clone, Copy)]
pub struct TurnWrite<'a> {
    /// The session's natural key, resolved by `SessionKey::resolve`.
    pub key: &'a SessionKey,
    /// The envelope the turn carried, for the session's mutable fields and fork parent.
    pub envelope: Option<&'a SessionEnvelope>,
    /// The turn's chain, root first, head last.
    pub chain: &'a Chain,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
    /// Hashes the caller knows are already stored under this org (e.g. what the session's
    /// actor committed before). They are not inserted again, so a warm session writes only
    /// the new suffix of its conversation. Whether the head is counted never depends on it.
    pub known: Option<&'a std::collections::HashSet<String>>,
}

/// What a committed turn did.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestOutcome {
    pub session_id: Uuid,
    /// Hash of the head (response) node.
    pub head: String,
    /// Hashes inserted by this commit, root first.
    pub new_nodes: Vec<String>,
    /// True when this commit was the first time the head was ingested as a head, i.e. the
    /// session's `turn_count` and token/cost counters moved.
    pub counted: bool,
    /// How many U+0000 characters were replaced by U+FFFD in the stored JSON.
    pub nul_replacements: u64,
}

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached (connection refused, pool timed out): retryable, 503.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The chain handed to the store is not a well-ordered root→leaf chain.
    #[error("ingest turn: {0}")]
    InvalidChain(String),
    /// Any other database error: 500.
    #[error("database error: {0}")]
    Db(#[from] sea_orm::DbErr),
}
