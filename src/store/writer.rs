//! The SQLite group writer: one tokio task that commits the sessions waiting together.
//!
//! SQLite has one writer at a time and an fsync per commit, so sessions committing one
//! transaction each would queue for the disk one by one. The writer takes every session's
//! turns that are waiting when it becomes free and commits them in one transaction:
//! concurrent sessions share one fsync. Turns stay independent: when the shared
//! transaction fails for another reason than an outage, each session's turns are committed
//! on their own, and within those each turn, so only the turn at fault fails
//! ([`super::commit::commit_sessions`]).

use std::sync::Arc;

use prometheus::IntGauge;
use sea_orm::DatabaseConnection;
use tokio::sync::{mpsc, oneshot};

use super::commit::{Results, commit_sessions, writes};
use crate::turn::{KnownHashes, Turn};

/// Sessions' commits the writer takes into one transaction at most.
const MAX_GROUP: usize = 64;

/// One session's turns, with the hashes its actor knows are stored.
struct Job {
    turns: Arc<[Turn]>,
    known: Arc<KnownHashes>,
    reply: oneshot::Sender<Results>,
}

/// The handle of the writer task. Cheap to clone.
#[derive(Clone)]
pub(super) struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
    /// Jobs sent and not yet taken into a group.
    queued: IntGauge,
}

impl Writer {
    /// Starts the writer task on the current tokio runtime; it ends when the last `Writer`
    /// is dropped.
    pub(super) fn spawn(
        db: DatabaseConnection,
        project: Option<Arc<str>>,
        queued: IntGauge,
    ) -> Writer {
        // Unbounded, yet bounded in practice: each session actor waits for its commit, so
        // the queue never holds more than one job per live actor.
        let (jobs, queue) = mpsc::unbounded_channel();
        tokio::spawn(run(db, project, queue, queued.clone()));
        Writer { jobs, queued }
    }

    /// Commits the turns in the next group and returns their results. `None` when the
    /// writer is gone (it only stops with the store, or by a panic): nothing was committed
    /// by it.
    pub(super) async fn commit(
        &self,
        turns: Arc<[Turn]>,
        known: Arc<KnownHashes>,
    ) -> Option<Results> {
        let (reply, answer) = oneshot::channel();
        // Counted before sending, so the writer's decrement never comes first.
        self.queued.inc();
        if self
            .jobs
            .send(Job {
                turns,
                known,
                reply,
            })
            .is_err()
        {
            self.queued.dec();
            return None;
        }
        answer.await.ok()
    }
}

async fn run(
    db: DatabaseConnection,
    project: Option<Arc<str>>,
    mut queue: mpsc::UnboundedReceiver<Job>,
    queued: IntGauge,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = queue.recv().await {
        group.push(first);
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        queued.sub(group.len() as i64);
        let sessions: Vec<_> = group
            .iter()
            .map(|job| writes(&job.turns, &job.known))
            .collect();
        let results = commit_sessions(&db, &sessions, project.as_deref()).await;
        drop(sessions);
        for (job, results) in group.drain(..).zip(results) {
            // The job's share of the known set goes before the reply, so the actor finds
            // its set unshared and updates it in place. The actor may have stopped
            // meanwhile; its turns are committed either way.
            let Job {
                turns,
                known,
                reply,
            } = job;
            drop((turns, known));
            reply.send(results).ok();
        }
    }
}
