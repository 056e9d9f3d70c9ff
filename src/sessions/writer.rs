//! How a session's turns reach the store: directly on Postgres, through one group-committing
//! writer on SQLite.
//!
//! SQLite has one writer at a time and an fsync per commit, so sessions committing one
//! transaction each would queue for the disk one by one. The writer task takes every
//! session's turns that are waiting when it becomes free and commits them in one
//! transaction: concurrent sessions share one fsync. Turns stay independent: when the
//! shared transaction fails for another reason than an outage, each session's turns are
//! committed on their own, and within those each turn, so only the turn at fault fails.

use std::sync::Arc;

use actix_rt::ArbiterHandle;
use prometheus::IntGauge;
use sea_orm::DatabaseConnection;
use tokio::sync::{mpsc, oneshot};

use super::SessionKey;
use super::known::KnownHashes;
use super::messages::Turn;
use crate::store::{self, IngestOutcome, StoreError, TurnWrite};

/// Sessions' commits the writer takes into one transaction at most.
const MAX_GROUP: usize = 64;

/// The results of a commit, one per turn, in order.
pub(crate) type Results = Vec<Result<IngestOutcome, StoreError>>;

/// One session's turns to commit, with what their writes borrow.
pub(crate) struct Job {
    pub(crate) key: SessionKey,
    pub(crate) turns: Arc<[Turn]>,
    /// The actor's known hashes, lent for the commit and handed back with the results.
    pub(crate) known: KnownHashes,
    pub(crate) project: Option<Arc<str>>,
}

impl Job {
    fn writes(&self) -> Vec<TurnWrite<'_>> {
        self.turns
            .iter()
            .map(|turn| TurnWrite {
                key: &self.key,
                envelope: turn.envelope.as_ref(),
                chain: &turn.chain,
                input_tokens: turn.input_tokens,
                output_tokens: turn.output_tokens,
                cost_usd: turn.cost_usd,
                known: Some(self.known.set()),
                project: self.project.as_deref(),
            })
            .collect()
    }
}

/// Commits a job directly, in the caller's task (Postgres: sessions commit in parallel).
pub(crate) async fn commit_job(db: &DatabaseConnection, job: Job) -> (Results, Job) {
    let results = commit_writes(db, &job.writes()).await;
    (results, job)
}

/// The SQLite writer: a task on one of the registry's arbiters. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::UnboundedSender<(Job, oneshot::Sender<(Results, Job)>)>,
    /// Jobs sent and not yet taken into a group.
    queued: IntGauge,
}

impl Writer {
    /// Starts the writer task; it ends when the last `Writer` is dropped.
    pub(crate) fn spawn(
        db: DatabaseConnection,
        arbiter: &ArbiterHandle,
        queued: IntGauge,
    ) -> Writer {
        // Unbounded, yet bounded in practice: each session actor waits for its commit, so
        // the queue never holds more than one job per live actor.
        let (jobs, queue) = mpsc::unbounded_channel();
        arbiter.spawn(run(db, queue, queued.clone()));
        Writer { jobs, queued }
    }

    /// Commits `job` in the next group and returns its results, with the job, whose known
    /// hashes the actor takes back. `None` when the writer is gone (it only stops with the
    /// registry, or by a panic): nothing of the job was committed by it.
    pub(crate) async fn commit(&self, job: Job) -> Option<(Results, Job)> {
        let (reply, answer) = oneshot::channel();
        // Counted before sending, so the writer's decrement never comes first.
        self.queued.inc();
        if self.jobs.send((job, reply)).is_err() {
            self.queued.dec();
            return None;
        }
        answer.await.ok()
    }
}

async fn run(
    db: DatabaseConnection,
    mut queue: mpsc::UnboundedReceiver<(Job, oneshot::Sender<(Results, Job)>)>,
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
        let jobs: Vec<&Job> = group.iter().map(|(job, _)| job).collect();
        let results = commit_group(&db, &jobs).await;
        for ((job, reply), results) in group.drain(..).zip(results) {
            // The actor may have stopped meanwhile; its turns are committed either way.
            reply.send((results, job)).ok();
        }
    }
}

/// Commits the jobs' turns in one transaction, in order; each job on its own if that fails
/// for another reason than an outage.
async fn commit_group(db: &DatabaseConnection, jobs: &[&Job]) -> Vec<Results> {
    if let [job] = jobs {
        return vec![commit_writes(db, &job.writes()).await];
    }
    let writes: Vec<TurnWrite> = jobs.iter().flat_map(|job| job.writes()).collect();
    match commit_together(db, &writes).await {
        Some(results) => {
            let mut results = results.into_iter();
            jobs.iter()
                .map(|job| results.by_ref().take(job.turns.len()).collect())
                .collect()
        }
        None => {
            let mut results = Vec::with_capacity(jobs.len());
            for job in jobs {
                results.push(commit_writes(db, &job.writes()).await);
            }
            results
        }
    }
}

/// Commits the turns of one session: several share one transaction. Turns of a batch are
/// independent in the reference's contract, so when the shared transaction fails for
/// another reason than an outage, each turn is committed on its own and only the turn at
/// fault fails.
async fn commit_writes(db: &DatabaseConnection, writes: &[TurnWrite<'_>]) -> Results {
    if let [write] = writes {
        return vec![store::ingest_turn(db, *write).await];
    }
    match commit_together(db, writes).await {
        Some(results) => results,
        None => {
            let mut results = Vec::with_capacity(writes.len());
            for write in writes {
                results.push(store::ingest_turn(db, *write).await);
            }
            results
        }
    }
}

/// One transaction for all `writes`: a result per turn, every one of them the outage when
/// the database is unreachable (smaller transactions would fail alike). `None` when it
/// failed for another reason, which smaller transactions may not share.
async fn commit_together(db: &DatabaseConnection, writes: &[TurnWrite<'_>]) -> Option<Results> {
    match store::ingest_turns(db, writes).await {
        Ok(outcomes) => Some(outcomes.into_iter().map(Ok).collect()),
        Err(StoreError::Unavailable(reason)) => Some(
            writes
                .iter()
                .map(|_| Err(StoreError::Unavailable(reason.clone())))
                .collect(),
        ),
        Err(_) => None,
    }
}
