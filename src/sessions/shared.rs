//! What the registry, the handles and the actors share: the slot map, the limits, the store.
//!
//! Slots hold the actor's mailboxes as `Recipient`s, not as an `Addr<SessionActor>`, so this
//! module knows nothing of the actor type and the layers above it import it one way only.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix::Recipient;
use actix_rt::{Arbiter, ArbiterHandle};
use arc_swap::ArcSwap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use super::error::SubmitError;
use super::messages::{Commit, Drain};
use super::remembered::RequestBudget;
use super::snapshot::{ActorInfo, SessionSnapshot};
use crate::config::SessionsConfig;
use crate::store::Store;
use crate::telemetry::Metrics;
use crate::turn::SessionKey;

/// The registry's limits and timings (from `[sessions]` in the config).
#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub arbiters: usize,
    pub pending_per_session: usize,
    pub max_in_flight: usize,
    /// Turns in flight of one org, so one tenant cannot take all of `max_in_flight`.
    pub org_max_in_flight: usize,
    pub max_live_actors: usize,
    pub idle_timeout: Duration,
    pub known_hashes_per_session: usize,
    /// Bytes of last requests all actors keep together (`remembered.rs`).
    pub remembered_request_bytes: usize,
    /// After the database was found unreachable, turns are refused at once for this long.
    pub unavailable_backoff: Duration,
    pub drain_timeout: Duration,
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
            org_max_in_flight: crate::config::AuthConfig::default().org_max_in_flight,
            max_live_actors: c.max_live_actors,
            idle_timeout: c.idle_timeout(),
            known_hashes_per_session: c.known_hashes_per_session,
            remembered_request_bytes: c.remembered_requests_mib.saturating_mul(1 << 20),
            unavailable_backoff: Duration::from_secs(c.retry_after_secs),
            drain_timeout: c.drain_timeout(),
        }
    }
}

/// A registered actor: its mailboxes plus what must be reachable without messaging it.
#[derive(Clone)]
pub(super) struct Slot {
    pub(super) commit: Recipient<Commit>,
    pub(super) drain: Recipient<Drain>,
    pub(super) generation: u64,
    pub(super) pending: Arc<Semaphore>,
    pub(super) snapshot: Arc<ArcSwap<SessionSnapshot>>,
    /// A `Drain` is queued: the actor stops once the commits queued before it are done.
    pub(super) stopping: Arc<AtomicBool>,
}

/// What an idle actor's request to leave the registry found.
pub(super) enum IdleRemoval {
    Removed,
    /// A submitter holds a pending permit: stay.
    Busy,
    /// The slot is gone or belongs to a successor.
    NotRegistered,
}

pub(super) struct Shared {
    actors: Mutex<HashMap<SessionKey, Slot>>,
    /// Actors run here, never on the HTTP workers; a key always maps to the same arbiter.
    arbiter_handles: Vec<ArbiterHandle>,
    pub(super) arbiters: Mutex<Vec<Arbiter>>,
    next_generation: AtomicU64,
    pub(super) in_flight: Arc<Semaphore>,
    /// One semaphore per org with turns in flight; idle ones are dropped when the map grows.
    org_in_flight: Mutex<HashMap<Uuid, Arc<Semaphore>>>,
    pub(super) store: Store,
    pub(super) settings: SessionSettings,
    pub(super) metrics: Metrics,
    /// What the actors' remembered requests may hold in all.
    pub(super) requests: Arc<RequestBudget>,
    closing: AtomicBool,
    unavailable_until: Mutex<Option<Instant>>,
}

impl Shared {
    pub(super) fn new(
        store: Store,
        settings: SessionSettings,
        metrics: Metrics,
        arbiters: Vec<Arbiter>,
    ) -> Self {
        Shared {
            actors: Mutex::new(HashMap::new()),
            arbiter_handles: arbiters.iter().map(Arbiter::handle).collect(),
            arbiters: Mutex::new(arbiters),
            next_generation: AtomicU64::new(1),
            in_flight: Arc::new(Semaphore::new(settings.max_in_flight)),
            org_in_flight: Mutex::new(HashMap::new()),
            store,
            requests: RequestBudget::new(settings.remembered_request_bytes),
            settings,
            metrics,
            closing: AtomicBool::new(false),
            unavailable_until: Mutex::new(None),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, HashMap<SessionKey, Slot>> {
        // A panic while holding this lock cannot leave the map inconsistent (every critical
        // section is a single insert, remove or read), so a poisoned lock is still usable.
        self.actors.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
    }

    pub(super) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    pub(super) fn in_flight(&self) -> usize {
        self.settings.max_in_flight - self.in_flight.available_permits()
    }

    /// Takes `count` of `org`'s in-flight permits, or `None` when the org has too many turns
    /// in flight.
    pub(super) fn admit_org(&self, org: Uuid, count: u32) -> Option<OwnedSemaphorePermit> {
        let limit = self.settings.org_max_in_flight;
        let semaphore = {
            let mut orgs = self.org_in_flight.lock().unwrap_or_else(|e| e.into_inner());
            // Bounded: an org with nothing in flight holds all its permits and can go; at most
            // `max_in_flight` orgs are busy at once.
            if orgs.len() >= self.settings.max_in_flight && !orgs.contains_key(&org) {
                orgs.retain(|_, s| s.available_permits() < limit);
            }
            orgs.entry(org)
                .or_insert_with(|| Arc::new(Semaphore::new(limit)))
                .clone()
        };
        semaphore.try_acquire_many_owned(count).ok()
    }

    /// The current slot of `key`, or the one `spawn` starts (given its generation) when
    /// there is none. Under the map lock, so a key never gets two actors.
    pub(super) fn get_or_spawn(
        &self,
        key: &SessionKey,
        spawn: impl FnOnce(u64, &ArbiterHandle) -> Slot,
    ) -> Result<Slot, SubmitError> {
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
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let arbiter = &self.arbiter_handles[arbiter_index(key, self.arbiter_handles.len())];
        let slot = spawn(generation, arbiter);
        actors.insert(key.clone(), slot.clone());
        Ok(slot)
    }

    /// Removes `key`'s slot only if it still belongs to `generation`, so a stopping actor
    /// never removes its successor.
    pub(super) fn remove_if(&self, key: &SessionKey, generation: u64) -> bool {
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
    pub(super) fn remove_if_idle(
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

    pub(super) fn find_slot(&self, session_id: Uuid) -> Option<Slot> {
        self.lock()
            .values()
            .find(|slot| slot.snapshot.load().session_id == Some(session_id))
            .cloned()
    }

    pub(super) fn info(&self, slot: &Slot) -> ActorInfo {
        ActorInfo {
            snapshot: slot.snapshot.load_full(),
            pending: self.settings.pending_per_session - slot.pending.available_permits(),
            stopping: slot.stopping.load(Ordering::SeqCst),
        }
    }

    /// Remembers that the database was unreachable, so the next turns fail fast.
    pub(super) fn mark_unavailable(&self) {
        let until = Instant::now() + self.settings.unavailable_backoff;
        *self
            .unavailable_until
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(until);
    }

    /// True while the database is considered unreachable.
    pub(super) fn is_unavailable(&self) -> bool {
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

    /// Publishes the number of turns in flight (both gauges that show it).
    pub(super) fn publish_in_flight(&self) {
        self.metrics.set_in_flight(self.in_flight());
    }
}

/// Which arbiter runs `key`'s actor: a stable hash, so load spreads evenly and a key's
/// successive actors share a thread.
fn arbiter_index(key: &SessionKey, arbiters: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    (hasher.finish() % arbiters as u64) as usize
}

impl Shared {
    /// The actor arbiters, for tasks that must run on each of them.
    pub(super) fn arbiter_handles(&self) -> &[ArbiterHandle] {
        &self.arbiter_handles
    }
}
