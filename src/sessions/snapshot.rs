//! The state an actor publishes after each commit, readable without queuing behind one.

use std::time::Instant;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::turn::SessionKey;

/// A session actor's published state. Replaced as a whole after every commit (`ArcSwap`), so
/// readers never wait for the actor and never see a half-updated record.
#[derive(Debug, Clone)]
pub struct SessionSnapshot {
    pub key: SessionKey,
    /// The `sessions.id` of the session, known after its first commit.
    pub session_id: Option<Uuid>,
    /// Distinguishes this actor from earlier and later actors of the same key.
    pub generation: u64,
    /// Turns this actor committed (retries included).
    pub turns_committed: u64,
    /// Committed turns that moved the session's counters.
    pub turns_counted: u64,
    /// Nodes this actor's commits inserted.
    pub nodes_written: u64,
    /// Hashes the actor remembers as stored.
    pub nodes_known: usize,
    pub started_at: DateTime<Utc>,
    pub last_commit_at: Option<DateTime<Utc>>,
    /// When the actor last started or committed; the base of its idle time.
    pub last_activity: Instant,
}

impl SessionSnapshot {
    pub(crate) fn new(key: SessionKey, generation: u64) -> Self {
        SessionSnapshot {
            key,
            session_id: None,
            generation,
            turns_committed: 0,
            turns_counted: 0,
            nodes_written: 0,
            nodes_known: 0,
            started_at: Utc::now(),
            last_commit_at: None,
            last_activity: Instant::now(),
        }
    }
}

/// A live actor as the admin endpoints show it: its snapshot plus the live pending count.
#[derive(Debug, Clone)]
pub struct ActorInfo {
    pub snapshot: std::sync::Arc<SessionSnapshot>,
    /// Turns submitted to this actor and not yet answered.
    pub pending: usize,
    /// A stop is queued: the actor leaves once the turns queued before it committed.
    pub stopping: bool,
}
