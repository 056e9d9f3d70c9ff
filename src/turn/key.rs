//! The natural key of a session, resolved from a turn's envelope and chain.

use std::fmt;

use uuid::Uuid;

use crate::merkle::Chain;
use crate::wire::{SessionEnvelope, UNKNOWN_HARNESS};

/// `(org_id, harness_id, harness_session_id)`: the natural key of a `sessions` row and the
/// identity of its actor.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    pub org_id: Uuid,
    pub harness_id: String,
    pub harness_session_id: String,
}

impl SessionKey {
    /// Resolves the key as the reference does (docs/storage.md#session-resolution):
    /// no envelope, an empty or `unknown` harness, or no harness session id all give the
    /// synthetic id (first 16 hex characters of the root hash); an empty org is the nil UUID.
    ///
    /// The envelope must have passed `SessionEnvelope::validate`, which guarantees the org parses.
    pub fn resolve(envelope: Option<&SessionEnvelope>, chain: &Chain) -> Self {
        let org_id = envelope
            .and_then(|e| crate::wire::parse_org_id(&e.org_id).ok())
            .unwrap_or(Uuid::nil());
        match envelope {
            Some(e) if !e.needs_synthetic_harness_session_id() => SessionKey {
                org_id,
                harness_id: e.harness_id.clone(),
                harness_session_id: e.harness_session_id.clone(),
            },
            Some(e) => SessionKey {
                org_id,
                harness_id: e.harness_id_or_unknown().to_owned(),
                harness_session_id: chain.synthetic_session_id().to_owned(),
            },
            None => SessionKey {
                org_id,
                harness_id: UNKNOWN_HARNESS.to_owned(),
                harness_session_id: chain.synthetic_session_id().to_owned(),
            },
        }
    }
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.org_id, self.harness_id, self.harness_session_id
        )
    }
}
