//! The raw rows of one ingest transaction, written together at its end.
//!
//! Each turn of a transaction (one turn, a batch's turns of a session, or on SQLite the
//! waiting turns of several sessions) stages its raw row after its nodes and counters;
//! [`RawRows::flush`] then writes every row, and the missing chunks of the rows that won
//! their request id, in as few statements as the bind limit allows, however many turns
//! there are: on Postgres one statement, which also carries the session updates still due
//! (the last turn's, or every session's of a group) as data-modifying CTEs; on SQLite (which cannot nest writes in `WITH`) one insert of
//! the rows and one of their chunks.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend};
use uuid::Uuid;

use super::StoreError;
use super::raw::{BINDS_PER_ROW, PreparedRaw, ROW_COLUMNS, RowOutcome, Staged};
use super::raw_chunks::{self, BINDS_PER_GUARDED_CHUNK, NewChunk};
use super::sql::{List, Sql, bind_limit};
use crate::turn::{RawStored, RawWrite};

/// Binds left for each statement `beside` renders (a session update binds about twenty).
const BESIDE_BINDS: usize = 64;

/// The staged rows of a transaction, in turn order.
#[derive(Default)]
pub(super) struct RawRows<'a> {
    rows: Vec<Row<'a>>,
}

struct Row<'a> {
    /// The index of its turn in the transaction.
    turn: usize,
    prepared: &'a PreparedRaw<'a>,
    id: Uuid,
    outcome: RowOutcome<'a>,
    stored_bytes: i64,
    written: RawWrite,
    missing: Vec<NewChunk>,
}

/// What became of a staged row.
pub(super) struct RowResult {
    /// The index of its turn in the transaction.
    pub(super) turn: usize,
    pub(super) stored: RawStored,
    pub(super) written: RawWrite,
}

impl<'a> RawRows<'a> {
    /// Stages the row of turn `turn`, with the chunks staging found missing.
    pub(super) fn push(
        &mut self,
        turn: usize,
        prepared: &'a PreparedRaw<'a>,
        outcome: RowOutcome<'a>,
        staged: Staged,
    ) {
        self.rows.push(Row {
            turn,
            prepared,
            id: Uuid::now_v7(),
            outcome,
            stored_bytes: prepared.stored_bytes(&staged),
            written: prepared.written(&staged),
            missing: staged.missing,
        });
    }

    /// Writes the staged rows, then the missing chunks of those that won their request id
    /// (`ON CONFLICT … DO NOTHING`: the first row of an `(org, request_id)` wins, and a row
    /// that lost writes no chunk). Each of `beside` renders one more statement of the
    /// transaction (on distinct rows), which runs whatever the rows' fate. Returns each
    /// row's result, in order.
    pub(super) async fn flush<C, B>(
        self,
        txn: &C,
        now: DateTime<Utc>,
        beside: Vec<B>,
    ) -> Result<Vec<RowResult>, StoreError>
    where
        C: ConnectionTrait,
        B: FnOnce(&mut Sql),
    {
        let backend = txn.get_database_backend();
        let rows = self.rows;
        let chunks: usize = rows.iter().map(|r| r.missing.len()).sum();
        let binds = rows.len() * BINDS_PER_ROW
            + chunks * BINDS_PER_GUARDED_CHUNK
            + beside.len() * BESIDE_BINDS;
        let (inserted, rows) = if rows.is_empty() {
            run_alone(txn, beside).await?;
            (HashSet::new(), rows)
        } else if backend == DbBackend::Postgres && binds <= bind_limit(backend) {
            one_statement(txn, rows, now, beside).await?
        } else {
            run_alone(txn, beside).await?;
            in_steps(txn, rows, now).await?
        };
        Ok(rows
            .into_iter()
            .map(|row| {
                let won = inserted.contains(&row.id);
                RowResult {
                    turn: row.turn,
                    stored: if won {
                        RawStored::Inserted(row.id)
                    } else {
                        RawStored::Duplicate
                    },
                    written: if won {
                        row.written
                    } else {
                        RawWrite::default()
                    },
                }
            })
            .collect())
    }
}

/// Postgres: the rows, their chunks and every `beside` in one statement. Returns the ids
/// inserted, and the rows without their chunks.
async fn one_statement<'a, C, B>(
    txn: &C,
    mut rows: Vec<Row<'a>>,
    now: DateTime<Utc>,
    beside: Vec<B>,
) -> Result<(HashSet<Uuid>, Vec<Row<'a>>), StoreError>
where
    C: ConnectionTrait,
    B: FnOnce(&mut Sql),
{
    let mut sql = Sql::new(DbBackend::Postgres);
    sql.push("WITH raw_row AS (");
    push_insert(&mut sql, &rows);
    sql.push(")");
    let chunks: Vec<(Uuid, Uuid, NewChunk)> = rows
        .iter_mut()
        .flat_map(|row| {
            let (id, org) = (row.id, row.prepared.org_id());
            std::mem::take(&mut row.missing)
                .into_iter()
                .map(move |chunk| (id, org, chunk))
        })
        .collect();
    if !chunks.is_empty() {
        sql.push(", raw_chunk AS (");
        raw_chunks::push_guarded_insert(&mut sql, chunks, now, "raw_row")?;
        sql.push(")");
    }
    push_ctes(&mut sql, ", ", beside);
    sql.push(" SELECT id FROM raw_row");
    let inserted = txn
        .query_all_raw(sql.build())
        .await?
        .iter()
        .map(|row| row.try_get_by_index::<Uuid>(0))
        .collect::<Result<_, _>>()?;
    Ok((inserted, rows))
}

/// The rows in as many multi-row inserts as the bind limit needs, then the missing chunks
/// of those inserted, once each.
async fn in_steps<'a, C: ConnectionTrait>(
    txn: &C,
    mut rows: Vec<Row<'a>>,
    now: DateTime<Utc>,
) -> Result<(HashSet<Uuid>, Vec<Row<'a>>), StoreError> {
    let backend = txn.get_database_backend();
    let mut inserted = HashSet::with_capacity(rows.len());
    for group in rows.chunks(bind_limit(backend) / BINDS_PER_ROW) {
        let mut sql = Sql::new(backend);
        push_insert(&mut sql, group);
        for row in txn.query_all_raw(sql.build()).await? {
            inserted.insert(row.try_get_by_index::<Uuid>(0)?);
        }
    }
    // Chunks by org, each once: the turns of one conversation share most of them.
    let mut chunks: HashMap<Uuid, HashMap<_, NewChunk>> = HashMap::new();
    for row in rows.iter_mut().filter(|r| inserted.contains(&r.id)) {
        let of_org = chunks.entry(row.prepared.org_id()).or_default();
        for chunk in std::mem::take(&mut row.missing) {
            of_org.entry(chunk.hash).or_insert(chunk);
        }
    }
    for (org, of_org) in chunks {
        raw_chunks::insert(txn, org, of_org.into_values().collect(), now).await?;
    }
    Ok((inserted, rows))
}

/// `INSERT INTO raw_turns … VALUES (…), … ON CONFLICT … DO NOTHING RETURNING id`.
fn push_insert(sql: &mut Sql, rows: &[Row<'_>]) {
    sql.push("INSERT INTO raw_turns (")
        .push(ROW_COLUMNS)
        .push(") VALUES ");
    let mut list = List::new(sql);
    for row in rows {
        row.prepared
            .push_values(list.item(), row.id, row.stored_bytes, row.outcome);
    }
    sql.push(
        " ON CONFLICT (org_id, request_key) WHERE request_key IS NOT NULL DO NOTHING RETURNING id",
    );
}

/// Runs the statements `beside` renders: on Postgres several as one statement of
/// data-modifying CTEs, otherwise each on its own.
pub(super) async fn run_alone<C, B>(txn: &C, beside: Vec<B>) -> Result<(), StoreError>
where
    C: ConnectionTrait,
    B: FnOnce(&mut Sql),
{
    if txn.get_database_backend() == DbBackend::Postgres
        && beside.len() > 1
        && beside.len() * BESIDE_BINDS <= bind_limit(DbBackend::Postgres)
    {
        let mut sql = Sql::new(DbBackend::Postgres);
        push_ctes(&mut sql, "WITH ", beside);
        sql.push(" SELECT 1");
        txn.execute_raw(sql.build()).await?;
        return Ok(());
    }
    for beside in beside {
        let mut sql = Sql::new(txn.get_database_backend());
        beside(&mut sql);
        txn.execute_raw(sql.build()).await?;
    }
    Ok(())
}

/// Appends each statement `beside` renders as a CTE `beside_N AS (…)`, the first after
/// `lead` (`"WITH "`, or `", "` after CTEs already written), the others after `", "`.
fn push_ctes<B: FnOnce(&mut Sql)>(sql: &mut Sql, lead: &str, beside: Vec<B>) {
    for (i, beside) in beside.into_iter().enumerate() {
        sql.push(if i == 0 { lead } else { ", " })
            .push("beside_")
            .push(&i.to_string())
            .push(" AS (");
        beside(sql);
        sql.push(")");
    }
}
