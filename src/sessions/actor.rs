//! The actor of one session: commits its turns one at a time, in arrival order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use arc_swap::ArcSwap;
use chrono::Utc;
use sea_orm::DatabaseConnection;
use tokio::sync::Semaphore;

use super::known::KnownHashes;
use super::messages::{Commit, Committed, Drain, Turn};
use super::registry::{IdleRemoval, Shared};
use super::writer::{Job, commit_job};
use super::{SessionKey, SessionSnapshot};
use crate::store::{IngestOutcome, StoreError};
use crate::telemetry::StopReason;

/// How often an actor checks whether it has been idle long enough to stop.
fn idle_check_period(idle_timeout: Duration) -> Duration {
    (idle_timeout / 2).clamp(Duration::from_millis(50), Duration::from_secs(30))
}

pub(crate) struct SessionActor {
    key: SessionKey,
    generation: u64,
    db: DatabaseConnection,
    registry: Arc<Shared>,
    known: KnownHashes,
    snapshot: Arc<ArcSwap<SessionSnapshot>>,
    /// Shared with the registry slot: permits taken by submitters, returned on reply.
    pending: Arc<Semaphore>,
    last_activity: Instant,
    stop_reason: StopReason,
}

impl SessionActor {
    pub(crate) fn new(
        key: SessionKey,
        generation: u64,
        registry: Arc<Shared>,
        snapshot: Arc<ArcSwap<SessionSnapshot>>,
        pending: Arc<Semaphore>,
    ) -> Self {
        SessionActor {
            db: registry.db.clone(),
            known: KnownHashes::with_capacity(registry.settings.known_hashes_per_session),
            key,
            generation,
            registry,
            snapshot,
            pending,
            last_activity: Instant::now(),
            stop_reason: StopReason::Idle,
        }
    }

    fn check_idle(&mut self, ctx: &mut Context<Self>) {
        if self.last_activity.elapsed() < self.registry.settings.idle_timeout {
            return;
        }
        match self
            .registry
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
        result: Result<IngestOutcome, StoreError>,
        turn: &Turn,
        started: Instant,
    ) -> Result<Committed, StoreError> {
        let metrics = &self.registry.metrics;
        metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        self.last_activity = Instant::now();
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(err) => {
                tracing::warn!(session = %self.key, error = %err, "commit failed");
                return Err(err);
            }
        };
        self.known.remember(&turn.chain);
        metrics
            .turns_total
            .with_label_values(&[if outcome.counted {
                "counted"
            } else {
                "duplicate"
            }])
            .inc();
        if outcome.nul_replacements > 0 {
            metrics
                .nul_replacements_total
                .inc_by(outcome.nul_replacements);
        }

        let previous = self.snapshot.load();
        let mut next = SessionSnapshot::clone(&previous);
        next.session_id = Some(outcome.session_id);
        next.turns_committed += 1;
        next.turns_counted += u64::from(outcome.counted);
        next.nodes_written += outcome.new_nodes.len() as u64;
        next.nodes_known = self.known.len();
        next.last_commit_at = Some(Utc::now());
        next.last_activity = self.last_activity;
        self.snapshot.store(Arc::new(next));

        tracing::debug!(
            session = %self.key,
            session_id = %outcome.session_id,
            head = %outcome.head,
            new_nodes = outcome.new_nodes.len(),
            counted = outcome.counted,
            "turn committed"
        );
        Ok(Committed {
            session_id: outcome.session_id,
            head: outcome.head,
            new_nodes: outcome.new_nodes.len(),
            counted: outcome.counted,
        })
    }
}

impl Actor for SessionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Submitters hold a pending permit per queued message, so the mailbox never needs
        // more room than that; the permit, not the mailbox, is what bounds the queue.
        ctx.set_mailbox_capacity(self.registry.settings.pending_per_session);
        let idle_timeout = self.registry.settings.idle_timeout;
        if !idle_timeout.is_zero() {
            ctx.run_interval(idle_check_period(idle_timeout), |act, ctx| {
                act.check_idle(ctx)
            });
        }
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        // Normally already done by whoever decided to stop; this covers an actor whose
        // mailbox closed for another reason, and is a no-op for a successor's slot.
        self.registry.remove_if(&self.key, self.generation);
        let metrics = &self.registry.metrics;
        metrics.live_actors.dec();
        metrics
            .actor_stops_total
            .with_label_values(&[self.stop_reason.label()])
            .inc();
        tracing::debug!(session = %self.key, reason = self.stop_reason.label(), "session actor stopped");
    }
}

impl Handler<Commit> for SessionActor {
    // `AtomicResponse` runs the commit inside `ctx.wait`: the actor handles no other message
    // until it finishes, which is what serialises a session's writes. (`ResponseActFuture`
    // would let the next message start while this one awaits the database.)
    type Result = AtomicResponse<Self, Vec<Result<Committed, StoreError>>>;

    fn handle(&mut self, Commit(turns): Commit, _ctx: &mut Self::Context) -> Self::Result {
        let db = self.db.clone();
        let writer = self.registry.writer.clone();
        let count = turns.len();
        // The known set moves into the job and back: no other message runs meanwhile.
        let job = Job {
            key: self.key.clone(),
            turns: turns.clone(),
            known: std::mem::take(&mut self.known),
            project: self.registry.settings.project.clone(),
        };
        let started = Instant::now();
        let commit = async move {
            match writer {
                Some(writer) => writer.commit(job).await,
                None => Some(commit_job(&db, job).await),
            }
        };
        AtomicResponse::new(Box::pin(commit.into_actor(self).map(
            move |done, act, _ctx| {
                let results = match done {
                    Some((results, job)) => {
                        act.known = job.known;
                        results
                    }
                    None => {
                        act.known = KnownHashes::with_capacity(
                            act.registry.settings.known_hashes_per_session,
                        );
                        let gone = || Err(StoreError::Unavailable("writer stopped".to_owned()));
                        (0..count).map(|_| gone()).collect()
                    }
                };
                results
                    .into_iter()
                    .zip(turns.iter())
                    .map(|(result, turn)| act.after_commit(result, turn, started))
                    .collect()
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
        self.registry.remove_if(&self.key, self.generation);
        ctx.stop();
    }
}
