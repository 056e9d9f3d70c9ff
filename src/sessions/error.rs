//! Why a turn submitted to a session was not committed.

use crate::store::StoreError;
use crate::telemetry::{Failure, OverloadReason};

/// Why a turn was not committed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubmitError {
    #[error("overloaded: session has {limit} turns pending")]
    SessionBusy { limit: usize },
    #[error("overloaded: {limit} turns in flight")]
    InFlight { limit: usize },
    #[error("overloaded: org has {limit} turns in flight")]
    OrgInFlight { limit: usize },
    #[error("overloaded: {limit} live sessions")]
    LiveActors { limit: usize },
    /// The database is unreachable (or was moments ago): retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("unavailable: server is shutting down")]
    ShuttingDown,
    /// The session's actor stopped under the turn twice in a row.
    #[error("unavailable: session actor stopped")]
    ActorGone,
    /// The store refused the chain; a chain from `build_chain` never gets here.
    #[error("{0}")]
    InvalidChain(String),
    /// The turn re-derives a rejected raw turn that another commit re-derived first.
    #[error("raw turn {0} was already reprocessed")]
    AlreadyReprocessed(uuid::Uuid),
    #[error("database error: {0}")]
    Database(String),
}

impl SubmitError {
    /// The limit that was full, for a 429.
    pub fn overload(&self) -> Option<OverloadReason> {
        match self {
            SubmitError::SessionBusy { .. } => Some(OverloadReason::SessionPending),
            SubmitError::InFlight { .. } => Some(OverloadReason::InFlight),
            SubmitError::OrgInFlight { .. } => Some(OverloadReason::OrgInFlight),
            SubmitError::LiveActors { .. } => Some(OverloadReason::LiveActors),
            _ => None,
        }
    }

    /// True for a 503: worth retrying once the database or the server is back.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            SubmitError::Unavailable(_) | SubmitError::ShuttingDown | SubmitError::ActorGone
        )
    }

    /// How the metrics count this failure.
    pub fn failure(&self) -> Failure {
        match self.overload() {
            Some(reason) => Failure::Overloaded(reason),
            None if self.is_unavailable() => Failure::Unavailable,
            None => Failure::Error,
        }
    }
}

impl From<StoreError> for SubmitError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(msg) => SubmitError::Unavailable(msg),
            StoreError::InvalidChain(msg) => SubmitError::InvalidChain(msg),
            // Not reached from a validated turn; reported as the invalid input it is.
            StoreError::InvalidTurn(msg) => SubmitError::InvalidChain(msg),
            StoreError::AlreadyReprocessed(id) => SubmitError::AlreadyReprocessed(id),
            err @ StoreError::Corrupt(_) => SubmitError::Database(err.to_string()),
            StoreError::Db(e) => SubmitError::Database(e.to_string()),
        }
    }
}
