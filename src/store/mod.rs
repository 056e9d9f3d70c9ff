//! Persistence: the only module that writes SQL. Plain `async fn`s over a sea-orm connection.
//!
//! * [`connect`] and [`migrate`] open and prepare a database (SQLite or Postgres).
//! * [`ingest_turn`] / [`ingest_turns`] commit turns: one transaction each call.
//! * [`backfill_session`] links legacy nodes to a session.
//! * [`list_nodes`], [`node`], [`session_by_id`], [`session_by_key`], [`ancestry`] and
//!   [`identity_by_hash`] read, always within one org.

mod backfill;
mod connect;
mod error;
mod ingest;
mod node_row;
mod reads;
mod sanitize;
mod session_row;
mod sql;

pub use backfill::{BackfillOutcome, BackfillRequest, backfill_session};
pub use connect::{StoreOptions, connect, migrate};
pub use error::StoreError;
pub use ingest::{ingest_turn, ingest_turns};
pub use reads::{
    MAX_ANCESTRY_DEPTH, NodeSummary, SessionIdentity, ancestry, identity_by_hash, list_nodes, node,
    session_by_id, session_by_key,
};

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
    /// actor committed before). The chain up to its last known node is not inserted again (a
    /// stored node's ancestors are always stored), so a warm session writes only the new
    /// suffix of its conversation. Whether the head is counted never depends on it.
    pub known: Option<&'a std::collections::HashSet<String>>,
    /// Stamped into the `project` column of the nodes this turn inserts (not hashed);
    /// `None`, empty or blank stores NULL.
    pub project: Option<&'a str>,
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
    /// How many U+0000 characters were replaced by U+FFFD in the values this commit wrote.
    pub nul_replacements: u64,
}
