//! The group writer: tasks that commit the sessions waiting together.
//!
//! SQLite has one writer at a time and an fsync per commit, so sessions committing one
//! transaction each would queue for the disk one by one; on Postgres each transaction costs
//! its BEGIN, COMMIT, WAL flush and statements. A writer task takes every session's turns
//! that are waiting when it becomes free and commits them in one transaction: concurrent
//! sessions share one commit, and turns of distinct sessions share their statements
//! (`ingest/group.rs`). SQLite runs one task; Postgres several, so that a group commits
//! while the next one forms, and a turn arriving at an idle task commits at once. Turns
//! stay independent: when the shared transaction fails for another reason than an outage,
//! each session's turns are committed on their own, and within those each turn, so only
//! the turn at fault fails ([`super::commit::commit_sessions`]).
//!
//! A group's sessions are ordered by natural key, so two groups committing at once take the
//! row locks they share in one order.

use std::sync::Arc;

use prometheus::IntGauge;
use sea_orm::DatabaseConnection;
use tokio::sync::{Mutex, mpsc, oneshot};

use super::commit::{Results, commit_sessions, writes};
use crate::turn::{KnownHashes, SessionKey, Turn};

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
    /// Starts `tasks` writer tasks (at least one) on the current tokio runtime; they end
    /// when the last `Writer` is dropped.
    pub(super) fn spawn(
        db: DatabaseConnection,
        project: Option<Arc<str>>,
        queued: IntGauge,
        tasks: usize,
    ) -> Writer {
        // Unbounded, yet bounded in practice: each session actor waits for its commit, so
        // the queue never holds more than one job per live actor.
        let (jobs, queue) = mpsc::unbounded_channel();
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..tasks.max(1) {
            tokio::spawn(run(
                db.clone(),
                project.clone(),
                queue.clone(),
                queued.clone(),
            ));
        }
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
    queue: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>,
    queued: IntGauge,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    loop {
        {
            // One task at a time waits for the next job and takes what queued behind it;
            // the others wait here, so a group is never split between two tasks.
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else {
                return;
            };
            group.push(first);
            while group.len() < MAX_GROUP {
                match queue.try_recv() {
                    Ok(next) => group.push(next),
                    Err(_) => break,
                }
            }
        }
        group.sort_by(|a, b| first_key(a).cmp(&first_key(b)));
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

/// The session a job commits for (`None` for a job without turns).
fn first_key(job: &Job) -> Option<&SessionKey> {
    job.turns.first().map(|turn| &turn.key)
}
