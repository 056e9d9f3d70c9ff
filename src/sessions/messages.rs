//! What the registry and the handles send to a session's actor.

use std::sync::Arc;

use actix::Message;

use crate::store::Results;
use crate::telemetry::StopReason;
use crate::turn::Turn;

/// Commit turns of the session, in order: one turn, or several that arrived together (a
/// batch), which share one transaction. Each has its own result. The turns are shared so
/// the handle can resend them to a fresh actor when the first one stopped before reading
/// them.
pub(crate) struct Commit(pub Arc<[Turn]>);

impl Message for Commit {
    type Result = Results;
}

/// Finish everything queued before this message, leave the registry, stop.
pub(crate) struct Drain(pub StopReason);

impl Message for Drain {
    type Result = ();
}
