//! Session key → live actor: get or spawn, inspection, stop, drain on shutdown.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use actix_rt::Arbiter;
use uuid::Uuid;

use super::error::SubmitError;
use super::handle::SessionHandle;
use super::messages::Drain;
use super::shared::{SessionSettings, Shared, Slot};
use super::snapshot::ActorInfo;
use crate::store::Store;
use crate::telemetry::{Metrics, StopReason};
use crate::turn::SessionKey;

/// The live session actors of one server. Cheap to clone.
///
/// Build it inside the actix `System` and before `HttpServer::new`: every HTTP worker is its
/// own arbiter, so a registry built per worker would give one session several actors.
#[derive(Clone)]
pub struct Registry {
    shared: Arc<Shared>,
}

impl Registry {
    /// Starts the actor arbiters. Must run inside an actix `System`.
    pub fn new(store: Store, settings: SessionSettings, metrics: Metrics) -> io::Result<Self> {
        let arbiters = (0..settings.arbiters.max(1))
            .map(|_| Arbiter::try_new())
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Registry {
            shared: Arc::new(Shared::new(store, settings, metrics, arbiters)),
        })
    }

    /// Runs `task()` on every actor arbiter, for as long as the arbiter lives.
    pub fn spawn_on_arbiters<F>(&self, task: impl Fn() -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        for arbiter in self.shared.arbiter_handles() {
            arbiter.spawn(task());
        }
    }

    /// The handle of `key`'s actor, spawning one when the session has none.
    pub fn handle(&self, key: SessionKey) -> Result<SessionHandle, SubmitError> {
        SessionHandle::new(self.shared.clone(), key)
    }

    pub fn settings(&self) -> &SessionSettings {
        &self.shared.settings
    }

    /// Number of live actors.
    pub fn live_actors(&self) -> usize {
        self.shared.lock().len()
    }

    /// Turns submitted and not yet answered, across all sessions.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight()
    }

    /// Every live actor, ordered by key. Reads published snapshots only.
    pub fn list(&self) -> Vec<ActorInfo> {
        let actors = self.shared.lock();
        let mut infos: Vec<ActorInfo> = actors.values().map(|s| self.shared.info(s)).collect();
        drop(actors);
        infos.sort_by(|a, b| a.snapshot.key.cmp(&b.snapshot.key));
        infos
    }

    /// The live actor of the session with this `sessions.id`, if any.
    pub fn find(&self, session_id: Uuid) -> Option<ActorInfo> {
        self.shared
            .find_slot(session_id)
            .map(|slot| self.shared.info(&slot))
    }

    /// Drains and stops the actor of `session_id`: turns queued before the request commit
    /// first. Returns its last snapshot, or `None` when no live actor has that session.
    pub async fn stop(&self, session_id: Uuid) -> Option<ActorInfo> {
        let slot = self.shared.find_slot(session_id)?;
        // `send` queues the message at once; `stopping` then tells observers it is queued.
        let drained = slot.drain.send(Drain(StopReason::Admin));
        slot.stopping.store(true, Ordering::SeqCst);
        // `Closed` means it stopped on its own meanwhile, which is what was asked.
        let _ = drained.await;
        Some(ActorInfo {
            snapshot: slot.snapshot.load_full(),
            pending: 0,
            stopping: true,
        })
    }

    /// Refuses new turns, drains every actor (each finishes what it queued), then stops the
    /// arbiters. Call after the HTTP server stopped, so nothing is submitting any more.
    pub async fn shutdown(&self) {
        self.shared.close();
        let slots: Vec<Slot> = self.shared.lock().drain().map(|(_, s)| s).collect();
        let count = slots.len();
        let drains = slots.into_iter().map(|slot| async move {
            slot.stopping.store(true, Ordering::SeqCst);
            slot.drain.send(Drain(StopReason::Shutdown)).await
        });
        let drained = tokio::time::timeout(
            self.shared.settings.drain_timeout,
            futures_util::future::join_all(drains),
        )
        .await;
        if drained.is_err() {
            tracing::warn!(actors = count, "session actors did not drain in time");
        }
        let arbiters: Vec<Arbiter> = std::mem::take(
            &mut *self
                .shared
                .arbiters
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for arbiter in &arbiters {
            arbiter.stop();
        }
        // Joining blocks until each arbiter's last actor finished `stopped()`.
        let joined = tokio::task::spawn_blocking(move || {
            for arbiter in arbiters {
                let _ = arbiter.join();
            }
        })
        .await;
        if joined.is_err() {
            tracing::warn!("an actor arbiter panicked while stopping");
        }
        tracing::info!(actors = count, "session actors drained");
    }
}
