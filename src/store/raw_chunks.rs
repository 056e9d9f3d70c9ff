//! Statements on `raw_chunks`: which of a turn's chunks an org stores, inserting the missing
//! ones, and reading chunks back.
//!
//! Looking up chunks is where ingest and retention meet (see [`super::raw_prune`]). On
//! Postgres a transaction that will look up chunks first takes the shared advisory lock
//! [`CHUNK_LOCK_KEY`] ([`share_lock`]), held until it ends, so retention's sweep (which takes
//! the lock exclusively) never runs between a turn's finding that a chunk exists and its
//! commit of the row that uses it. The lock must be taken by an earlier statement than the
//! lookup: a READ COMMITTED statement reads the snapshot taken when it started, so a lookup
//! that waited for the lock inside itself would still see the chunks the sweep deleted
//! meanwhile. An ingest transaction takes it in its first statement (the session read,
//! `session_row::find_or_insert`), so it waits for it before holding any row lock and never
//! closes a cycle with the sweep; a quarantine takes it with [`share_lock`]. On SQLite the
//! write transaction holds the database's write lock from `BEGIN IMMEDIATE` on.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend};
use uuid::Uuid;

use super::StoreError;
use super::sql::{List, Sql, bind_limit};
use crate::capture::chunks::{self, ChunkHash, HASH_LEN};

/// Key of the Postgres advisory lock between ingest's chunk lookups (shared) and retention's
/// sweep (exclusive): "reel" in ASCII and 0x0002 (0x0001 is the migration lock).
pub(crate) const CHUNK_LOCK_KEY: i64 = 0x7265_656c_0002;

/// Values bound per inserted chunk.
const BINDS_PER_CHUNK: usize = 5;

/// A chunk to insert: its hash, uncompressed size and compressed bytes.
pub(super) struct NewChunk {
    pub(super) hash: ChunkHash,
    pub(super) size: usize,
    pub(super) data: Vec<u8>,
}

/// Takes the shared chunk lock until the transaction ends (Postgres; SQLite's write
/// transaction already excludes retention). Before any lookup of the transaction.
pub(super) async fn share_lock<C: ConnectionTrait>(txn: &C) -> Result<(), StoreError> {
    if txn.get_database_backend() == DbBackend::Postgres {
        let mut sql = Sql::new(DbBackend::Postgres);
        sql.push("SELECT pg_advisory_xact_lock_shared(")
            .bind(CHUNK_LOCK_KEY)
            .push(")");
        txn.execute_raw(sql.build()).await?;
    }
    Ok(())
}

/// The hashes of `hashes` that `org` already stores. The transaction holds the chunk lock
/// ([`share_lock`]).
pub(super) async fn existing<C: ConnectionTrait>(
    txn: &C,
    org: Uuid,
    hashes: &[&ChunkHash],
) -> Result<HashSet<ChunkHash>, StoreError> {
    let backend = txn.get_database_backend();
    let mut found = HashSet::with_capacity(hashes.len());
    // One bind is the org.
    for group in hashes.chunks(bind_limit(backend) - 1) {
        let sql = by_hashes(backend, "SELECT hash FROM raw_chunks", org, group);
        for row in txn.query_all_raw(sql.build()).await? {
            found.insert(hash_of(row.try_get_by_index::<Vec<u8>>(0)?)?);
        }
    }
    Ok(found)
}

/// Inserts `chunks` for `org`, in hash order (concurrent inserts of shared chunks then wait
/// on each other in one order), skipping any another transaction stored meanwhile.
pub(super) async fn insert<C: ConnectionTrait>(
    txn: &C,
    org: Uuid,
    mut chunks: Vec<NewChunk>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let backend = txn.get_database_backend();
    chunks.sort_unstable_by_key(|c| c.hash);
    let per_statement = bind_limit(backend) / BINDS_PER_CHUNK;
    let mut rest = chunks.into_iter().peekable();
    while rest.peek().is_some() {
        let mut sql = Sql::new(backend);
        sql.push("INSERT INTO raw_chunks (org_id, hash, size, data, created_at) VALUES ");
        let mut list = List::new(&mut sql);
        for chunk in rest.by_ref().take(per_statement) {
            push_values(list.item().push("("), org, chunk, now)?;
        }
        sql.push(" ON CONFLICT (org_id, hash) DO NOTHING");
        txn.execute_raw(sql.build()).await?;
    }
    Ok(())
}

/// Postgres: appends `INSERT INTO raw_chunks …` of `chunks`, each `(raw row id, org,
/// chunk)`, keeping only those whose row id the CTE `rows` of the same statement returned,
/// as the body of a data-modifying CTE. The caller checks the bind limit
/// ([`BINDS_PER_GUARDED_CHUNK`] per chunk).
pub(super) fn push_guarded_insert(
    sql: &mut Sql,
    chunks: impl IntoIterator<Item = (Uuid, Uuid, NewChunk)>,
    now: DateTime<Utc>,
    rows: &str,
) -> Result<(), StoreError> {
    sql.push(
        "INSERT INTO raw_chunks (org_id, hash, size, data, created_at) \
         SELECT v.org_id, v.hash, v.size, v.data, v.created_at FROM (VALUES ",
    );
    let mut list = List::new(sql);
    for (row, org, chunk) in chunks {
        push_values(list.item().push("(").bind(row).push(", "), org, chunk, now)?;
    }
    // Hash order, as in [`insert`]: concurrent inserts of shared chunks wait in one order.
    sql.push(
        ") AS v (row_id, org_id, hash, size, data, created_at) WHERE v.row_id IN (SELECT id FROM ",
    )
    .push(rows)
    .push(") ORDER BY v.org_id, v.hash ON CONFLICT (org_id, hash) DO NOTHING");
    Ok(())
}

/// Values bound per chunk by [`push_guarded_insert`].
pub(super) const BINDS_PER_GUARDED_CHUNK: usize = BINDS_PER_CHUNK + 1;

/// Appends `org, hash, size, data, created_at)`: the rest of a chunk's values.
fn push_values(
    sql: &mut Sql,
    org: Uuid,
    chunk: NewChunk,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sql.bind(org)
        .push(", ")
        .bind(chunk.hash.to_vec())
        .push(", ")
        .bind(size_column(chunk.size)?)
        .push(", ")
        .bind(chunk.data)
        .push(", ")
        .bind(now)
        .push(")");
    Ok(())
}

/// The uncompressed bytes of those of `hashes` that `org` stores.
pub(super) async fn fetch<C: ConnectionTrait>(
    db: &C,
    org: Uuid,
    hashes: &[ChunkHash],
) -> Result<HashMap<ChunkHash, Vec<u8>>, StoreError> {
    let backend = db.get_database_backend();
    let mut found = HashMap::with_capacity(hashes.len());
    for group in hashes.chunks(bind_limit(backend) - 1) {
        let sql = by_hashes(
            backend,
            "SELECT hash, size, data FROM raw_chunks",
            org,
            group,
        );
        for row in db.query_all_raw(sql.build()).await? {
            let hash = hash_of(row.try_get_by_index::<Vec<u8>>(0)?)?;
            let size = row.try_get_by_index::<i32>(1)?;
            let data = row.try_get_by_index::<Vec<u8>>(2)?;
            let size = usize::try_from(size)
                .map_err(|_| StoreError::Corrupt(format!("chunk size {size}")))?;
            let bytes = chunks::decompress(&data, size)
                .map_err(|e| StoreError::Corrupt(format!("chunk {}: {e}", chunks::hex(&hash))))?;
            found.insert(hash, bytes);
        }
    }
    Ok(found)
}

/// Deletes `hashes` of `org`.
pub(super) async fn delete<C: ConnectionTrait>(
    txn: &C,
    org: Uuid,
    hashes: &[ChunkHash],
) -> Result<u64, StoreError> {
    let backend = txn.get_database_backend();
    let mut deleted = 0;
    for group in hashes.chunks(bind_limit(backend) - 1) {
        let sql = by_hashes(backend, "DELETE FROM raw_chunks", org, group);
        deleted += txn.execute_raw(sql.build()).await?.rows_affected();
    }
    Ok(deleted)
}

/// `<statement> WHERE org_id = <org> AND hash IN (<hashes>)`: one org's chunks by hash.
fn by_hashes<H: AsRef<[u8]>>(backend: DbBackend, statement: &str, org: Uuid, hashes: &[H]) -> Sql {
    let mut sql = Sql::new(backend);
    sql.push(statement)
        .push(" WHERE org_id = ")
        .bind(org)
        .push(" AND hash IN (");
    let mut list = List::new(&mut sql);
    for hash in hashes {
        list.item().bind(hash.as_ref().to_vec());
    }
    sql.push(")");
    sql
}

pub(super) fn hash_of(bytes: Vec<u8>) -> Result<ChunkHash, StoreError> {
    <[u8; HASH_LEN]>::try_from(bytes.as_slice())
        .map_err(|_| StoreError::Corrupt(format!("a chunk hash of {} bytes", bytes.len())))
}

/// Chunks are at most a few KiB (list and data chunk maxima), so the size always fits the
/// `INT` column; a failure means the chunker changed without the schema.
fn size_column(size: usize) -> Result<i32, StoreError> {
    i32::try_from(size).map_err(|_| StoreError::InvalidTurn(format!("a chunk of {size} bytes")))
}
