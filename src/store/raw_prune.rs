//! Retention of raw turns: deleting those received before a cutoff, then every chunk no
//! kept raw turn reaches.
//!
//! Chunks are shared (within an org) by every turn whose request holds the same bytes, and
//! a turn that finds a chunk stored does not write it again. So the sweep must never delete
//! a chunk that a turn committing at the same time has just found, even one that no stored
//! turn referenced a moment before. Each backend guarantees it its own way:
//!
//! * **SQLite** serialises writers, and every ingest transaction takes the write lock up
//!   front (`BEGIN IMMEDIATE`), before it looks up which chunks exist. Retention runs as one
//!   write transaction too: it deletes, marks what the kept turns reach and sweeps the rest
//!   while no ingest can look up or commit in between. Ingest waits for the run.
//! * **Postgres** lets ingest run during the mark. An ingest transaction takes the shared
//!   advisory lock [`CHUNK_LOCK_KEY`] before it looks up chunks, held until it ends, so a
//!   turn that has seen a chunk commits the row that uses it before any sweep can start,
//!   and a lookup after a sweep sees what the sweep deleted (its snapshot is taken after
//!   the lock, `raw_chunks.rs`). Retention
//!   1. deletes the old turns;
//!   2. takes the lock exclusively for a moment and reads the highest `raw_turns.seq`, `W`:
//!      every transaction that had looked up chunks has ended by then, so every row numbered
//!      up to `W` is committed (a row is numbered after its lookup) and later rows are
//!      numbered above `W`;
//!   3. without the lock, marks what every stored turn reaches and lists the chunks nothing
//!      reached, the candidates;
//!   4. takes the lock exclusively again, marks what the turns numbered above `W` reach
//!      (they were inserted during step 3, and may reuse a candidate), and deletes the
//!      candidates still unmarked. No lookup can run meanwhile; one that ran before has
//!      committed its row, which step 4 read.
//!
//!   A chunk inserted after step 3 listed the candidates is not one, whoever uses it.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, TransactionTrait};
use uuid::Uuid;

use super::StoreError;
use super::connect::begin_write;
use super::raw::greatest;
use super::raw_chunks::{self, CHUNK_LOCK_KEY, hash_of};
use super::sql::Sql;
use crate::capture::chunks::{self, ChunkHash, MAX_LEVELS};

/// Raw turns read per statement while marking.
const TURN_PAGE: u64 = 500;

/// Chunk keys read per statement while listing candidates.
const CHUNK_PAGE: u64 = 5_000;

/// What a retention run deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub turns: u64,
    pub chunks: u64,
}

/// Deletes the raw turns received before `older_than`, then the chunks no kept turn reaches.
pub(super) async fn prune(
    db: &DatabaseConnection,
    older_than: DateTime<Utc>,
) -> Result<PruneReport, StoreError> {
    match db.get_database_backend() {
        DbBackend::Postgres => prune_concurrently(db, older_than).await,
        _ => prune_serialised(db, older_than).await,
    }
}

/// SQLite: everything under the write lock.
async fn prune_serialised(
    db: &DatabaseConnection,
    older_than: DateTime<Utc>,
) -> Result<PruneReport, StoreError> {
    let txn = begin_write(db).await?;
    let turns = delete_turns(&txn, older_than).await?;
    let mut live = Live::default();
    live.mark(&txn, None).await?;
    let candidates = live.unreached(&txn).await?;
    let chunks = delete_chunks(&txn, &candidates, &live).await?;
    txn.commit().await?;
    Ok(PruneReport { turns, chunks })
}

/// Postgres: mark outside the chunk lock, sweep under it (module doc).
async fn prune_concurrently(
    db: &DatabaseConnection,
    older_than: DateTime<Utc>,
) -> Result<PruneReport, StoreError> {
    let txn = db.begin().await?;
    let turns = delete_turns(&txn, older_than).await?;
    txn.commit().await?;

    let txn = db.begin().await?;
    lock_exclusively(&txn).await?;
    let mut sql = Sql::new(DbBackend::Postgres);
    sql.push("SELECT COALESCE(MAX(seq), 0) FROM raw_turns");
    let row = txn.query_one_raw(sql.build()).await?;
    let watermark: i64 = match row {
        Some(row) => row.try_get_by_index(0)?,
        None => 0,
    };
    txn.commit().await?;

    let mut live = Live::default();
    live.mark(db, None).await?;
    let candidates = live.unreached(db).await?;

    let txn = db.begin().await?;
    lock_exclusively(&txn).await?;
    live.mark(&txn, Some(watermark)).await?;
    let chunks = delete_chunks(&txn, &candidates, &live).await?;
    txn.commit().await?;
    Ok(PruneReport { turns, chunks })
}

async fn lock_exclusively<C: ConnectionTrait>(txn: &C) -> Result<(), StoreError> {
    let mut sql = Sql::new(DbBackend::Postgres);
    sql.push("SELECT pg_advisory_xact_lock(")
        .bind(CHUNK_LOCK_KEY)
        .push(")");
    txn.execute_raw(sql.build()).await?;
    Ok(())
}

/// Deletes the raw turns received before `older_than`, returning the bytes of the
/// quarantined ones to their orgs' budgets first.
async fn delete_turns<C: ConnectionTrait>(
    txn: &C,
    older_than: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let backend = txn.get_database_backend();
    let mut sql = Sql::new(backend);
    sql.push("UPDATE raw_quota SET quarantined_bytes = ")
        .push(greatest(backend))
        .push(
            "0, quarantined_bytes - (SELECT COALESCE(SUM(r.stored_bytes), 0) FROM raw_turns r \
             WHERE r.org_id = raw_quota.org_id AND r.outcome = 'rejected' AND r.received_at < ",
        )
        .bind(older_than)
        .push(
            ")) WHERE org_id IN (SELECT org_id FROM raw_turns WHERE outcome = 'rejected' \
             AND received_at < ",
        )
        .bind(older_than)
        .push(")");
    txn.execute_raw(sql.build()).await?;

    let mut sql = Sql::new(backend);
    // Both outcomes listed, so the (outcome, received_at) index serves the range.
    sql.push("DELETE FROM raw_turns WHERE outcome IN ('accepted', 'rejected') AND received_at < ")
        .bind(older_than);
    Ok(txn.execute_raw(sql.build()).await?.rows_affected())
}

/// Chunks reached from stored raw turns, per org.
#[derive(Default)]
struct Live {
    reached: HashSet<(Uuid, ChunkHash)>,
    /// List chunks whose entries are marked, with their height (levels under them + 1).
    expanded: HashSet<(Uuid, ChunkHash, u8)>,
}

impl Live {
    /// Marks what the stored turns reach: all of them, or those numbered above `after`
    /// (Postgres `seq`).
    async fn mark<C: ConnectionTrait>(
        &mut self,
        db: &C,
        after: Option<i64>,
    ) -> Result<(), StoreError> {
        let backend = db.get_database_backend();
        let mut cursor: Option<Uuid> = None;
        loop {
            let mut sql = Sql::new(backend);
            sql.push("SELECT id, org_id, request_levels, request_list FROM raw_turns WHERE TRUE");
            if let Some(seq) = after {
                sql.push(" AND seq > ").bind(seq);
            }
            if let Some(id) = cursor {
                sql.push(" AND id > ").bind(id);
            }
            sql.push(" ORDER BY id LIMIT ")
                .bind(i64::try_from(TURN_PAGE).unwrap_or(i64::MAX));
            let rows = db.query_all_raw(sql.build()).await?;
            // Hashes still to expand: (org, hash, height), height 0 being a data chunk.
            let mut frontier = Vec::new();
            for row in &rows {
                let id: Uuid = row.try_get("", "id")?;
                let org: Uuid = row.try_get("", "org_id")?;
                let levels: i32 = row.try_get("", "request_levels")?;
                let list: Vec<u8> = row.try_get("", "request_list")?;
                cursor = Some(id);
                let height = u8::try_from(levels)
                    .ok()
                    .filter(|l| *l <= MAX_LEVELS)
                    .ok_or_else(|| {
                        StoreError::Corrupt(format!("raw turn {id}: {levels} levels"))
                    })?;
                self.reach(org, &list, height, &mut frontier)?;
            }
            self.expand(db, frontier).await?;
            if (rows.len() as u64) < TURN_PAGE {
                return Ok(());
            }
        }
    }

    /// Marks the hashes of `list`, entries of height `height`, queuing list chunks.
    fn reach(
        &mut self,
        org: Uuid,
        list: &[u8],
        height: u8,
        frontier: &mut Vec<(Uuid, ChunkHash, u8)>,
    ) -> Result<(), StoreError> {
        let hashes = chunks::list_hashes(list).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        for hash in hashes {
            self.reached.insert((org, hash));
            if height > 0 && !self.expanded.contains(&(org, hash, height)) {
                frontier.push((org, hash, height));
            }
        }
        Ok(())
    }

    /// Reads the queued list chunks level by level (one statement per org and level) and
    /// marks their entries. A list chunk that is gone belonged to a turn deleted meanwhile.
    async fn expand<C: ConnectionTrait>(
        &mut self,
        db: &C,
        mut frontier: Vec<(Uuid, ChunkHash, u8)>,
    ) -> Result<(), StoreError> {
        while !frontier.is_empty() {
            let mut by_org: HashMap<Uuid, Vec<(ChunkHash, u8)>> = HashMap::new();
            for (org, hash, height) in frontier.drain(..) {
                if self.expanded.insert((org, hash, height)) {
                    by_org.entry(org).or_default().push((hash, height));
                }
            }
            for (org, lists) in by_org {
                let hashes: Vec<ChunkHash> = lists.iter().map(|(h, _)| *h).collect();
                let found = raw_chunks::fetch(db, org, &hashes).await?;
                for (hash, height) in lists {
                    if let Some(bytes) = found.get(&hash) {
                        self.reach(org, bytes, height - 1, &mut frontier)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The stored chunks nothing marked reaches, per org.
    async fn unreached<C: ConnectionTrait>(
        &self,
        db: &C,
    ) -> Result<HashMap<Uuid, Vec<ChunkHash>>, StoreError> {
        let backend = db.get_database_backend();
        let mut unreached: HashMap<Uuid, Vec<ChunkHash>> = HashMap::new();
        let mut cursor: Option<(Uuid, Vec<u8>)> = None;
        loop {
            let mut sql = Sql::new(backend);
            sql.push("SELECT org_id, hash FROM raw_chunks");
            if let Some((org, hash)) = cursor.take() {
                sql.push(" WHERE (org_id, hash) > (")
                    .bind(org)
                    .push(", ")
                    .bind(hash)
                    .push(")");
            }
            sql.push(" ORDER BY org_id, hash LIMIT ")
                .bind(i64::try_from(CHUNK_PAGE).unwrap_or(i64::MAX));
            let rows = db.query_all_raw(sql.build()).await?;
            for row in &rows {
                let org: Uuid = row.try_get_by_index(0)?;
                let bytes: Vec<u8> = row.try_get_by_index(1)?;
                let hash = hash_of(bytes.clone())?;
                if !self.reached.contains(&(org, hash)) {
                    unreached.entry(org).or_default().push(hash);
                }
                cursor = Some((org, bytes));
            }
            if (rows.len() as u64) < CHUNK_PAGE {
                return Ok(unreached);
            }
        }
    }
}

/// Deletes the candidates that are still unreached.
async fn delete_chunks<C: ConnectionTrait>(
    txn: &C,
    candidates: &HashMap<Uuid, Vec<ChunkHash>>,
    live: &Live,
) -> Result<u64, StoreError> {
    let mut deleted = 0;
    for (org, hashes) in candidates {
        let gone: Vec<ChunkHash> = hashes
            .iter()
            .filter(|h| !live.reached.contains(&(*org, **h)))
            .copied()
            .collect();
        if !gone.is_empty() {
            deleted += raw_chunks::delete(txn, *org, &gone).await?;
        }
    }
    Ok(deleted)
}
