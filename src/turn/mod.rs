//! The accepted turn: what the HTTP layer, the session actors and the store pass between them.
//!
//! Pure data and pure functions, no I/O: [`prepare`] turns a decoded payload into a [`Turn`]
//! (validated envelope, chain, session key, usage and cost) or a [`Rejection`] with the
//! status and text the API answers; [`Committed`] is what the store reports back for it;
//! [`RawTurn`] is the turn as captured, kept verbatim beside its nodes.

mod capture;
mod key;
mod known;
mod limits;
mod prepare;
mod raw;

use std::sync::Arc;

use uuid::Uuid;

pub use capture::{
    Intake, OverBudget, ReduceFailure, Reduced, intake, intake_under, raw_turn, reduce_raw_only,
};
pub use key::SessionKey;
pub use known::KnownHashes;
pub use limits::{LimitError, MAX_AGENT_NAME_BYTES, MAX_MODEL_BYTES, MAX_ROLE_BYTES, MAX_TOKENS};
pub use prepare::{Prepared, Rejection, prepare, prepare_body, prepare_body_under, prepare_under};
pub use raw::{
    Capture, Dropped, KeptResponse, MAX_RAW_RESPONSE_BYTES, RawStored, RawTurn, RawWrite,
    keep_raw_response,
};

use crate::merkle::Chain;
use crate::wire::SessionEnvelope;

/// One decoded, hashed and priced turn, ready to commit.
#[derive(Debug, Clone)]
pub struct Turn {
    /// The session the turn belongs to, resolved from its envelope and chain.
    pub key: SessionKey,
    /// The envelope the turn carried, if any (already validated).
    pub envelope: Option<SessionEnvelope>,
    /// The turn's chain, root first, head last.
    pub chain: Chain,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
    /// The turn as captured, stored verbatim in the same transaction as its nodes; `None`
    /// when only the nodes are kept.
    pub raw: Option<Arc<RawTurn>>,
}

/// What the commit of one turn did; the body of the 202.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
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
    /// What happened to the turn's raw turn; `None` when it had none.
    pub raw: Option<RawStored>,
    /// What storing the raw turn wrote (zero when nothing was).
    pub raw_written: RawWrite,
}
