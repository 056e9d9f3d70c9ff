//! What the HTTP layer holds to submit turns: a session's handle, never an actor address.

use std::sync::Arc;

use actix::MailboxError;
use tokio::sync::OwnedSemaphorePermit;

use super::actor;
use super::error::SubmitError;
use super::messages::Commit;
use super::shared::{Shared, Slot};
use super::snapshot::ActorInfo;
use crate::turn::{Committed, SessionKey, Turn};

/// The in-flight permits of a submission (its org's and the server's), returned on drop.
struct Admitted {
    _org: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
}

/// A session's actor as the HTTP layer sees it. Holding one does not keep the actor alive;
/// a handle whose actor stopped meanwhile resubmits to a fresh one.
pub struct SessionHandle {
    shared: Arc<Shared>,
    key: SessionKey,
    slot: Slot,
}

impl SessionHandle {
    pub(super) fn new(shared: Arc<Shared>, key: SessionKey) -> Result<Self, SubmitError> {
        let slot = actor::slot(&shared, &key)?;
        Ok(SessionHandle { shared, key, slot })
    }

    pub fn key(&self) -> &SessionKey {
        &self.key
    }

    /// The actor's published state, without messaging it.
    pub fn info(&self) -> ActorInfo {
        self.shared.info(&self.slot)
    }

    /// Commits `turn` through the session's actor and returns once it is durable.
    ///
    /// Refuses at once, never queues without bound: when the session already has its
    /// pending limit of turns, when the server has its in-flight limit, or while the
    /// database is known to be unreachable. A turn queued behind a stopping actor is
    /// answered `Closed` without having been touched; it is resent once to a fresh actor.
    pub async fn submit(&mut self, turn: Turn) -> Result<Committed, SubmitError> {
        let in_flight = self.admit(1)?;
        let mut results = self.commit(Arc::from([turn]), in_flight).await?;
        results.pop().unwrap_or(Err(SubmitError::ActorGone))
    }

    /// Commits turns of this session that arrived together (a batch), in order. They share
    /// one message and one transaction when the in-flight limit has room for all of them,
    /// else they go one by one as [`SessionHandle::submit`] sends them. Each turn gets its
    /// own result: a turn the store refuses fails alone.
    pub async fn submit_all(&mut self, turns: Vec<Turn>) -> Vec<Result<Committed, SubmitError>> {
        let count = turns.len();
        if count > 1 {
            let refused = match self.admit(count) {
                Ok(in_flight) => match self.commit(Arc::from(turns), in_flight).await {
                    Ok(results) => return results,
                    Err(err) => err,
                },
                // No room for all at once: one by one, as separate requests would go.
                Err(SubmitError::InFlight { .. } | SubmitError::OrgInFlight { .. }) => {
                    return self.submit_each(turns).await;
                }
                Err(err) => err,
            };
            return vec![Err(refused); count];
        }
        self.submit_each(turns).await
    }

    async fn submit_each(&mut self, turns: Vec<Turn>) -> Vec<Result<Committed, SubmitError>> {
        let mut results = Vec::with_capacity(turns.len());
        for turn in turns {
            results.push(self.submit(turn).await);
        }
        results
    }

    /// Refuses while the database is known to be down; else takes `count` in-flight permits.
    /// The org's share is taken first, so a flooding org is refused before it can take
    /// the global permits another org's turns need.
    fn admit(&self, count: usize) -> Result<Admitted, SubmitError> {
        if self.shared.is_unavailable() {
            return Err(SubmitError::Unavailable(
                "database unreachable; retry later".to_owned(),
            ));
        }
        let n = u32::try_from(count).unwrap_or(u32::MAX);
        let org = self
            .shared
            .admit_org(self.key.org_id, n)
            .ok_or(SubmitError::OrgInFlight {
                limit: self.shared.settings.org_max_in_flight,
            })?;
        let global = self
            .shared
            .in_flight
            .clone()
            .try_acquire_many_owned(n)
            .map_err(|_| SubmitError::InFlight {
                limit: self.shared.settings.max_in_flight,
            })?;
        Ok(Admitted {
            _org: org,
            _global: global,
        })
    }

    /// Sends `turns` as one message and waits for their results. `Err` means none of them
    /// was committed (the session's queue was full, or its actor kept stopping).
    async fn commit(
        &mut self,
        turns: Arc<[Turn]>,
        in_flight: Admitted,
    ) -> Result<Vec<Result<Committed, SubmitError>>, SubmitError> {
        let shared = self.shared.clone();
        shared.publish_in_flight();
        let results = self.send(turns).await;
        let outage =
            |r: &Result<Committed, SubmitError>| matches!(r, Err(SubmitError::Unavailable(_)));
        if results
            .as_ref()
            .is_ok_and(|results| results.iter().any(outage))
        {
            shared.mark_unavailable();
        }
        drop(in_flight);
        shared.publish_in_flight();
        results
    }

    async fn send(
        &mut self,
        turns: Arc<[Turn]>,
    ) -> Result<Vec<Result<Committed, SubmitError>>, SubmitError> {
        let limit = self.shared.settings.pending_per_session;
        for attempt in 0..2 {
            // Held until the reply: this is what the session's pending count counts.
            let pending = self
                .slot
                .pending
                .clone()
                .try_acquire_owned()
                .map_err(|_| SubmitError::SessionBusy { limit })?;
            self.shared
                .metrics
                .session_pending
                .observe((limit - self.slot.pending.available_permits()) as f64);
            match self.slot.commit.send(Commit(turns.clone())).await {
                Ok(results) => {
                    drop(pending);
                    return Ok(results
                        .into_iter()
                        .map(|r| r.map_err(SubmitError::from))
                        .collect());
                }
                Err(MailboxError::Closed) if attempt == 0 => {
                    // The actor stopped before reading the turns: none was committed.
                    drop(pending);
                    self.shared.remove_if(&self.key, self.slot.generation);
                    self.slot = actor::slot(&self.shared, &self.key)?;
                }
                Err(_) => return Err(SubmitError::ActorGone),
            }
        }
        Err(SubmitError::ActorGone)
    }
}
