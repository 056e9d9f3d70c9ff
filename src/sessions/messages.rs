//! What flows between the HTTP layer, the registry and a session's actor.

use std::sync::Arc;

use actix::Message;
use uuid::Uuid;

use crate::merkle::Chain;
use crate::store::StoreError;
use crate::telemetry::StopReason;
use crate::wire::SessionEnvelope;

/// One decoded, hashed and priced turn, ready to commit.
#[derive(Debug)]
pub struct Turn {
    /// The envelope the turn carried, if any (already validated).
    pub envelope: Option<SessionEnvelope>,
    /// The turn's chain, root first, head last.
    pub chain: Chain,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
}

/// What the commit of one turn did; the body of the 202.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    pub session_id: Uuid,
    /// Hash of the head (response) node.
    pub head: String,
    /// Nodes this commit inserted.
    pub new_nodes: usize,
    /// True when this commit moved the session's counters (first time as a head).
    pub counted: bool,
}

/// Commit turns of the session, in order: one turn, or several that arrived together (a
/// batch), which share one transaction. Each has its own result. The turns are shared so
/// the registry can resend them to a fresh actor when the first one stopped before reading
/// them.
pub(crate) struct Commit(pub Arc<[Turn]>);

impl Message for Commit {
    type Result = Vec<Result<Committed, StoreError>>;
}

/// Finish everything queued before this message, leave the registry, stop.
pub(crate) struct Drain(pub StopReason);

impl Message for Drain {
    type Result = ();
}
