//! The actor of one session: commits its turns one at a time, in arrival order.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_rt::ArbiterHandle;
use arc_swap::ArcSwap;
use chrono::Utc;
use tokio::sync::Semaphore;

use super::error::SubmitError;
use super::messages::{Commit, Drain};
use super::remembered::RememberedRequest;
use super::shared::{IdleRemoval, Shared, Slot};
use super::snapshot::SessionSnapshot;
use crate::store::{Results, StoreError, prepare_ahead};
use crate::telemetry::StopReason;
use crate::turn::{Committed, KnownHashes, RawStored, SessionKey, Turn};

/// How long the request chunks an actor remembers are trusted (see
/// [`KnownHashes::forget_chunks`]): well within the shortest retention `reel prune`
/// applies (a day), so a remembered chunk is always one a kept raw turn references.
const CHUNK_MEMORY: Duration = Duration::from_secs(6 * 3600);

/// How often an actor checks whether it has been idle long enough to stop.
fn idle_check_period(idle_timeout: Duration) -> Duration {
    (idle_timeout / 2).clamp(Duration::from_millis(50), Duration::from_secs(30))
}

/// The slot of `key`'s actor, starting one when the session has none.
pub(super) fn slot(shared: &Arc<Shared>, key: &SessionKey) -> Result<Slot, SubmitError> {
    shared.get_or_spawn(key, |generation, arbiter| {
        SessionActor::start(shared, key.clone(), generation, arbiter)
    })
}

pub(super) struct SessionActor {
    key: SessionKey,
    generation: u64,
    shared: Arc<Shared>,
    /// Shared with the store while a commit runs (it only reads it); updated in place after.
    known: Arc<KnownHashes>,
    snapshot: Arc<ArcSwap<SessionSnapshot>>,
    /// Shared with the registry slot: permits taken by submitters, returned on reply.
    pending: Arc<Semaphore>,
    last_activity: Instant,
    /// When the oldest remembered request chunk was stored.
    chunks_since: Instant,
    /// The request of the last raw turn committed, while the budget has room for it.
    last_request: Option<RememberedRequest>,
    stop_reason: StopReason,
}

impl SessionActor {
    fn start(
        shared: &Arc<Shared>,
        key: SessionKey,
        generation: u64,
        arbiter: &ArbiterHandle,
    ) -> Slot {
        let pending = Arc::new(Semaphore::new(shared.settings.pending_per_session));
        let snapshot = Arc::new(ArcSwap::from_pointee(SessionSnapshot::new(
            key.clone(),
            generation,
        )));
        let actor = SessionActor {
            known: Arc::new(KnownHashes::with_capacity(
                shared.settings.known_hashes_per_session,
            )),
            key,
            generation,
            shared: shared.clone(),
            snapshot: snapshot.clone(),
            pending: pending.clone(),
            last_activity: Instant::now(),
            chunks_since: Instant::now(),
            last_request: None,
            stop_reason: StopReason::Idle,
        };
        let addr = SessionActor::start_in_arbiter(arbiter, move |_ctx| actor);
        shared.metrics.actor_started();
        Slot {
            commit: addr.clone().recipient(),
            drain: addr.recipient(),
            generation,
            pending,
            snapshot,
            stopping: Arc::new(AtomicBool::new(false)),
        }
    }

    fn check_idle(&mut self, ctx: &mut Context<Self>) {
        if self.last_activity.elapsed() < self.shared.settings.idle_timeout {
            return;
        }
        match self
            .shared
            .remove_if_idle(&self.key, self.generation, &self.pending)
        {
            IdleRemoval::Busy => {}
            IdleRemoval::Removed | IdleRemoval::NotRegistered => {
                self.stop_reason = StopReason::Idle;
                ctx.stop();
            }
        }
    }

    /// Folds a finished commit into the actor's state and publishes a new snapshot.
    fn after_commit(
        &mut self,
        result: &Result<Committed, StoreError>,
        turn: &Turn,
        started: Instant,
    ) {
        self.shared.metrics.commit_finished(started.elapsed());
        self.last_activity = Instant::now();
        let committed = match result {
            Ok(committed) => committed,
            Err(err) => {
                tracing::warn!(session = %self.key, error = %err, "commit failed");
                return;
            }
        };
        self.shared.metrics.turn_committed(committed);
        // Unshared once the commit returned (the store drops its share before replying),
        // so this updates the set in place.
        let known = Arc::make_mut(&mut self.known);
        known.remember(&turn.chain);
        if let (Some(raw), Some(RawStored::Inserted(_))) = (&turn.raw, committed.raw) {
            if known.is_empty_of_chunks() {
                self.chunks_since = Instant::now();
            }
            known.remember_chunks(raw);
            // The old one is given back to the budget before the new one is charged.
            self.last_request = None;
            self.last_request = RememberedRequest::keep(raw, &self.shared.requests);
        }

        let previous = self.snapshot.load();
        let mut next = SessionSnapshot::clone(&previous);
        next.session_id = Some(committed.session_id);
        next.turns_committed += 1;
        next.turns_counted += u64::from(committed.counted);
        next.nodes_written += committed.new_nodes.len() as u64;
        next.nodes_known = self.known.len();
        next.last_commit_at = Some(Utc::now());
        next.last_activity = self.last_activity;
        self.snapshot.store(Arc::new(next));

        tracing::debug!(
            session = %self.key,
            session_id = %committed.session_id,
            head = %committed.head,
            new_nodes = committed.new_nodes.len(),
            counted = committed.counted,
            "turn committed"
        );
    }
}

impl Actor for SessionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Submitters hold a pending permit per queued message, so the mailbox never needs
        // more room than that; the permit, not the mailbox, is what bounds the queue.
        ctx.set_mailbox_capacity(self.shared.settings.pending_per_session);
        let idle_timeout = self.shared.settings.idle_timeout;
        if !idle_timeout.is_zero() {
            ctx.run_interval(idle_check_period(idle_timeout), |act, ctx| {
                act.check_idle(ctx)
            });
        }
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        // Normally already done by whoever decided to stop; this covers an actor whose
        // mailbox closed for another reason, and is a no-op for a successor's slot.
        self.shared.remove_if(&self.key, self.generation);
        self.shared.metrics.actor_stopped(self.stop_reason);
        tracing::debug!(session = %self.key, reason = self.stop_reason.label(), "session actor stopped");
    }
}

impl Handler<Commit> for SessionActor {
    // `AtomicResponse` runs the commit inside `ctx.wait`: the actor handles no other message
    // until it finishes, which is what serialises a session's writes. (`ResponseActFuture`
    // would let the next message start while this one awaits the database.)
    type Result = AtomicResponse<Self, Results>;

    fn handle(&mut self, Commit(turns): Commit, _ctx: &mut Self::Context) -> Self::Result {
        let store = self.shared.store.clone();
        // Remembered chunks are trusted only while their raw turns are surely kept.
        if self.chunks_since.elapsed() > CHUNK_MEMORY {
            Arc::make_mut(&mut self.known).forget_chunks();
            self.chunks_since = Instant::now();
        }
        let known = self.known.clone();
        // Cutting, hashing and compressing the raw requests here, on this session's
        // arbiter, keeps them off the writer; each turn of a batch is cut after the one
        // before it.
        let mut previous = self.last_request.as_ref().map(RememberedRequest::previous);
        for raw in turns.iter().filter_map(|t| t.raw.as_ref()) {
            prepare_ahead(raw, previous, &known);
            previous = Some((&raw.request, raw.request_chunks().cuts()));
        }
        let started = Instant::now();
        let commit = async move {
            let results = store.commit(&turns, &known).await;
            (results, turns)
        };
        AtomicResponse::new(Box::pin(commit.into_actor(self).map(
            move |(results, turns), act, _ctx| {
                for (result, turn) in results.iter().zip(turns.iter()) {
                    act.after_commit(result, turn, started);
                }
                results
            },
        )))
    }
}

impl Handler<Drain> for SessionActor {
    type Result = ();

    /// Runs only after every commit queued before it finished (commits hold the actor with
    /// `ctx.wait`). Messages queued after it are answered `Closed`, and their senders retry
    /// on a fresh actor, which the registry spawns because this one has left it.
    fn handle(&mut self, Drain(reason): Drain, ctx: &mut Self::Context) {
        self.stop_reason = reason;
        self.shared.remove_if(&self.key, self.generation);
        ctx.stop();
    }
}
