//! Session key → live actor: get or spawn, generation-checked removal, drain on shutdown.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_rt::{Arbiter, ArbiterHandle};
use arc_swap::ArcSwap;
use sea_orm::{DatabaseConnection, DbBackend};
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::actor::SessionActor;
use super::handle::{SessionHandle, SubmitError};
use super::messages::Drain;
use super::writer::Writer;
use super::{ActorInfo, SessionKey, SessionSnapshot};
use crate::config::SessionsConfig;
use crate::telemetry::{Metrics, StopReason};

/// The registry's limits and timings (from `[sessions]` in the config).
#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub arbiters: usize,
    pub pending_per_session: usize,
    pub max_in_flight: usize,
    pub max_live_actors: usize,
    pub idle_timeout: Duration,
    pub known_hashes_per_session: usize,
    /// After the database was found unreachable, turns are refused at once for this long.
    pub unavailable_backoff: Duration,
    pub drain_timeout: Duration,
    /// Stamped into every stored node's `project` column (`server.project`).
    pub project: Option<Arc<str>>,
}

impl From<&SessionsConfig> for SessionSettings {
    fn from(c: &SessionsConfig) -> Self {
        SessionSettings {
            arbiters: if c.arbiters == 0 {
                std::thread::available_parallelism().map_or(1, |n| n.get())
            } else {
                c.arbiters
            },
            pending_per_session: c.pending_per_session,
            max_in_flight: c.max_in_flight,
            max_live_actors: c.max_live_actors,
            idle_timeout: c.idle_timeout(),
            known_hashes_per_session: c.known_hashes_per_session,
            unavailable_backoff: Duration::from_secs(c.retry_after_secs),
            drain_timeout: c.drain_timeout(),
            project: None,
        }
    }
}

/// The live session actors of one server. Cheap to clone.
///
/// Build it inside the actix `System` and before `HttpServer::new`: every HTTP worker is its
/// own arbiter, so a registry built per worker would give one session several actors.
#[derive(Clone)]
pub struct Registry {
    shared: Arc<Shared>,
}

/// A registered actor: its address plus what must be reachable without messaging it.
#[derive(Clone)]
pub(crate) struct Slot {
    pub(crate) addr: Addr<SessionActor>,
    pub(crate) generation: u64,
    pub(crate) pending: Arc<Semaphore>,
    pub(crate) snapshot: Arc<ArcSwap<SessionSnapshot>>,
}

/// What an idle actor's request to leave the registry found.
pub(crate) enum IdleRemoval {
    Removed,
    /// A submitter holds a pending permit: stay.
    Busy,
    /// The slot is gone or belongs to a successor.
    NotRegistered,
}

pub(crate) struct Shared {
    actors: Mutex<HashMap<SessionKey, Slot>>,
    /// Actors run here, never on the HTTP workers; a key always maps to the same arbiter.
    arbiter_handles: Vec<ArbiterHandle>,
    arbiters: Mutex<Vec<Arbiter>>,
    next_generation: AtomicU64,
    pub(crate) in_flight: Arc<Semaphore>,
    pub(crate) db: DatabaseConnection,
    /// SQLite has one writer at a time. Commits of different sessions go through one
    /// writer task, which commits the sessions waiting together in one transaction (one
    /// fsync), instead of each polling SQLite's lock in its busy handler (unfair, and a
    /// commit that waits past `busy_timeout` fails). `None` on Postgres, whose row locks
    /// let sessions commit in parallel.
    pub(crate) writer: Option<Writer>,
    pub(crate) settings: SessionSettings,
    pub(crate) metrics: Metrics,
    closing: AtomicBool,
    unavailable_until: Mutex<Option<Instant>>,
}

impl Registry {
    /// Starts the actor arbiters. Must run inside an actix `System`.
    pub fn new(
        db: DatabaseConnection,
        settings: SessionSettings,
        metrics: Metrics,
    ) -> io::Result<Self> {
        let arbiters = (0..settings.arbiters.max(1))
            .map(|_| Arbiter::try_new())
            .collect::<io::Result<Vec<_>>>()?;
        let arbiter_handles: Vec<ArbiterHandle> = arbiters.iter().map(Arbiter::handle).collect();
        let writer = (db.get_database_backend() == DbBackend::Sqlite).then(|| {
            let queued = metrics.writer_queued.clone();
            Writer::spawn(db.clone(), &arbiter_handles[0], queued)
        });
        let shared = Shared {
            actors: Mutex::new(HashMap::new()),
            arbiter_handles,
            arbiters: Mutex::new(arbiters),
            next_generation: AtomicU64::new(1),
            in_flight: Arc::new(Semaphore::new(settings.max_in_flight)),
            writer,
            db,
            settings,
            metrics,
            closing: AtomicBool::new(false),
            unavailable_until: Mutex::new(None),
        };
        Ok(Registry {
            shared: Arc::new(shared),
        })
    }

    /// The handle of `key`'s actor, spawning one when the session has none.
    pub fn handle(&self, key: SessionKey) -> Result<SessionHandle, SubmitError> {
        let slot = self.shared.slot(&key)?;
        Ok(SessionHandle::new(self.shared.clone(), key, slot))
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
        // `Closed` means it stopped on its own meanwhile, which is what was asked.
        let _ = slot.addr.send(Drain(StopReason::Admin)).await;
        Some(ActorInfo {
            snapshot: slot.snapshot.load_full(),
            pending: 0,
        })
    }

    /// Refuses new turns, drains every actor (each finishes what it queued), then stops the
    /// arbiters. Call after the HTTP server stopped, so nothing is submitting any more.
    pub async fn shutdown(&self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        let slots: Vec<Slot> = self.shared.lock().drain().map(|(_, s)| s).collect();
        let count = slots.len();
        let drains = slots
            .into_iter()
            .map(|slot| async move { slot.addr.send(Drain(StopReason::Shutdown)).await });
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

impl Shared {
    fn lock(&self) -> MutexGuard<'_, HashMap<SessionKey, Slot>> {
        // A panic while holding this lock cannot leave the map inconsistent (every critical
        // section is a single insert, remove or read), so a poisoned lock is still usable.
        self.actors.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.settings.max_in_flight - self.in_flight.available_permits()
    }

    /// The current slot of `key`, spawning an actor when there is none.
    pub(crate) fn slot(self: &Arc<Self>, key: &SessionKey) -> Result<Slot, SubmitError> {
        if self.is_closing() {
            return Err(SubmitError::ShuttingDown);
        }
        let mut actors = self.lock();
        if let Some(slot) = actors.get(key) {
            return Ok(slot.clone());
        }
        if actors.len() >= self.settings.max_live_actors {
            return Err(SubmitError::LiveActors {
                limit: self.settings.max_live_actors,
            });
        }
        let slot = self.spawn(key.clone());
        actors.insert(key.clone(), slot.clone());
        Ok(slot)
    }

    fn spawn(self: &Arc<Self>, key: SessionKey) -> Slot {
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let pending = Arc::new(Semaphore::new(self.settings.pending_per_session));
        let snapshot = Arc::new(ArcSwap::from_pointee(SessionSnapshot::new(
            key.clone(),
            generation,
        )));
        let arbiter = &self.arbiter_handles[arbiter_index(&key, self.arbiter_handles.len())];
        let actor = SessionActor::new(
            key,
            generation,
            self.clone(),
            snapshot.clone(),
            pending.clone(),
        );
        let addr = SessionActor::start_in_arbiter(arbiter, move |_ctx| actor);
        self.metrics.live_actors.inc();
        self.metrics.actor_spawns_total.inc();
        Slot {
            addr,
            generation,
            pending,
            snapshot,
        }
    }

    /// Removes `key`'s slot only if it still belongs to `generation`, so a stopping actor
    /// never removes its successor.
    pub(crate) fn remove_if(&self, key: &SessionKey, generation: u64) -> bool {
        let mut actors = self.lock();
        match actors.get(key) {
            Some(slot) if slot.generation == generation => {
                actors.remove(key);
                true
            }
            _ => false,
        }
    }

    /// Removes an idle actor's slot unless a submitter holds one of its pending permits.
    /// Checked under the map lock, so no new submitter can pick the slot meanwhile; one that
    /// picked it earlier and sends after the actor stopped gets `Closed` and retries.
    pub(crate) fn remove_if_idle(
        &self,
        key: &SessionKey,
        generation: u64,
        pending: &Semaphore,
    ) -> IdleRemoval {
        let mut actors = self.lock();
        match actors.get(key) {
            Some(slot) if slot.generation == generation => {
                if pending.available_permits() < self.settings.pending_per_session {
                    IdleRemoval::Busy
                } else {
                    actors.remove(key);
                    IdleRemoval::Removed
                }
            }
            _ => IdleRemoval::NotRegistered,
        }
    }

    fn find_slot(&self, session_id: Uuid) -> Option<Slot> {
        self.lock()
            .values()
            .find(|slot| slot.snapshot.load().session_id == Some(session_id))
            .cloned()
    }

    fn info(&self, slot: &Slot) -> ActorInfo {
        ActorInfo {
            snapshot: slot.snapshot.load_full(),
            pending: self.settings.pending_per_session - slot.pending.available_permits(),
        }
    }

    /// Remembers that the database was unreachable, so the next turns fail fast.
    pub(crate) fn mark_unavailable(&self) {
        let until = Instant::now() + self.settings.unavailable_backoff;
        *self
            .unavailable_until
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(until);
    }

    /// True while the database is considered unreachable.
    pub(crate) fn is_unavailable(&self) -> bool {
        let mut until = self
            .unavailable_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match *until {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                *until = None;
                false
            }
            None => false,
        }
    }
}

/// Which arbiter runs `key`'s actor: a stable hash, so load spreads evenly and a key's
/// successive actors share a thread.
fn arbiter_index(key: &SessionKey, arbiters: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    (hasher.finish() % arbiters as u64) as usize
}
