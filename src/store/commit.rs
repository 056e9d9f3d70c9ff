//! The [`Store`]: how a session's turns become durable.
//!
//! Commits go through the group writer ([`super::writer`]): the sessions waiting when a
//! writer task becomes free share one transaction. SQLite has one such task (one writer at a
//! time, an fsync per commit), Postgres several; a Postgres store built without writer tasks
//! commits each session's turns directly in the caller's task. Either way, a commit of
//! several turns tries one transaction first and falls back to smaller ones, so only the
//! turn at fault fails (`commit_together`).

use std::sync::Arc;

use prometheus::IntGauge;
use sea_orm::{DatabaseConnection, DbBackend};

use super::StoreError;
use super::ingest::{Write, transaction};
use super::writer::Writer;
use crate::turn::{Committed, KnownHashes, Turn};

/// The results of a commit, one per turn, in order.
pub type Results = Vec<Result<Committed, StoreError>>;

/// What a store stamps on what it writes.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// Stamped into the `project` column of every inserted node (not hashed); `None`,
    /// empty or blank stores NULL.
    pub project: Option<Arc<str>>,
    /// Set to the number of sessions' commits waiting for the group writer.
    pub writer_queued: Option<IntGauge>,
    /// Postgres: group-writer tasks, each committing the sessions waiting together in one
    /// transaction; 0 commits each session's turns directly in its caller's task. SQLite
    /// always has one writer.
    pub group_writers: usize,
}

/// A database and the way turns are committed to it. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    project: Option<Arc<str>>,
    /// The group writer ([`super::writer`]). On SQLite one task commits the sessions
    /// waiting together in one transaction (one fsync), instead of each polling SQLite's
    /// lock in its busy handler (unfair, and a commit that waits past `busy_timeout`
    /// fails); on Postgres `group_writers` tasks do, sharing commits and statements.
    writer: Option<Writer>,
}

impl Store {
    /// Wraps a connected (and migrated) database. On SQLite, and on Postgres with
    /// `group_writers`, this starts the writer tasks, so it must run inside a tokio runtime;
    /// they end when the last clone is dropped.
    pub fn new(db: DatabaseConnection, options: CommitOptions) -> Store {
        let project = options.project;
        let tasks = match db.get_database_backend() {
            DbBackend::Sqlite => 1,
            _ => options.group_writers,
        };
        let writer = (tasks > 0).then(|| {
            let queued = options.writer_queued.unwrap_or_else(unregistered_gauge);
            Writer::spawn(db.clone(), project.clone(), queued, tasks)
        });
        Store {
            db,
            project,
            writer,
        }
    }

    /// The connection pool, for reads.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Commits one session's turns, in order, and returns a result per turn once they are
    /// durable. They share one transaction when they can; when it fails for another reason
    /// than an outage, each turn is committed on its own, so only the turn at fault fails.
    /// `known` holds hashes the session's actor knows are stored.
    ///
    /// The caller must not commit the same session concurrently (its actor serialises
    /// that); the statements stay correct across processes either way.
    pub async fn commit(&self, turns: &Arc<[Turn]>, known: &Arc<KnownHashes>) -> Results {
        match &self.writer {
            Some(writer) => match writer.commit(turns.clone(), known.clone()).await {
                Some(results) => results,
                None => turns
                    .iter()
                    .map(|_| Err(StoreError::Unavailable("writer stopped".to_owned())))
                    .collect(),
            },
            None => commit_session(&self.db, &writes(turns, known), self.project()).await,
        }
    }

    /// Commits `turns` in one transaction, all of them or none, without the writer and
    /// without fallback.
    pub async fn transaction(
        &self,
        turns: &[Turn],
        known: &KnownHashes,
    ) -> Result<Vec<Committed>, StoreError> {
        transaction(&self.db, &writes(turns, known), self.project()).await
    }

    /// Commits one turn in its own transaction.
    pub async fn commit_turn(&self, turn: &Turn) -> Result<Committed, StoreError> {
        let write = Write {
            turn,
            known: &KnownHashes::default(),
        };
        commit_one(&self.db, write, self.project()).await
    }

    pub(super) fn project(&self) -> Option<&str> {
        self.project.as_deref()
    }
}

/// A gauge for a store whose caller does not export the writer's backlog.
fn unregistered_gauge() -> IntGauge {
    IntGauge::new("reel_writer_queued", "unregistered").expect("valid gauge name")
}

pub(super) fn writes<'a>(turns: &'a [Turn], known: &'a KnownHashes) -> Vec<Write<'a>> {
    turns.iter().map(|turn| Write { turn, known }).collect()
}

/// Commits the turns of several sessions in one transaction, in order; each session on its
/// own if that fails for another reason than an outage.
pub(super) async fn commit_sessions(
    db: &DatabaseConnection,
    sessions: &[Vec<Write<'_>>],
    project: Option<&str>,
) -> Vec<Results> {
    if let [only] = sessions {
        return vec![commit_session(db, only, project).await];
    }
    let all: Vec<Write> = sessions.iter().flatten().copied().collect();
    match commit_together(db, &all, project).await {
        Some(results) => {
            let mut results = results.into_iter();
            sessions
                .iter()
                .map(|writes| results.by_ref().take(writes.len()).collect())
                .collect()
        }
        None => {
            let mut results = Vec::with_capacity(sessions.len());
            for writes in sessions {
                results.push(commit_session(db, writes, project).await);
            }
            results
        }
    }
}

/// Commits the turns of one session: several share one transaction. Turns of a batch are
/// independent in the reference's contract, so when the shared transaction fails for
/// another reason than an outage, each turn is committed on its own and only the turn at
/// fault fails.
async fn commit_session(
    db: &DatabaseConnection,
    writes: &[Write<'_>],
    project: Option<&str>,
) -> Results {
    if writes.len() > 1
        && let Some(results) = commit_together(db, writes, project).await
    {
        return results;
    }
    let mut results = Vec::with_capacity(writes.len());
    for write in writes {
        results.push(commit_one(db, *write, project).await);
    }
    results
}

/// One turn in its own transaction.
async fn commit_one(
    db: &DatabaseConnection,
    write: Write<'_>,
    project: Option<&str>,
) -> Result<Committed, StoreError> {
    let mut committed = transaction(db, &[write], project).await?;
    committed
        .pop()
        .ok_or_else(|| StoreError::InvalidChain("ingest produced no outcome".into()))
}

/// One transaction for all `writes`: a result per turn, every one of them the outage when
/// the database is unreachable (smaller transactions would fail alike). `None` when it
/// failed for another reason, which smaller transactions may not share.
async fn commit_together(
    db: &DatabaseConnection,
    writes: &[Write<'_>],
    project: Option<&str>,
) -> Option<Results> {
    match transaction(db, writes, project).await {
        Ok(committed) => Some(committed.into_iter().map(Ok).collect()),
        Err(StoreError::Unavailable(reason)) => Some(
            writes
                .iter()
                .map(|_| Err(StoreError::Unavailable(reason.clone())))
                .collect(),
        ),
        Err(_) => None,
    }
}
