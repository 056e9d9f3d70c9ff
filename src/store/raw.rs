//! Raw turns: every captured turn kept verbatim (docs/storage.md#raw-turns).
//!
//! An accepted turn's row is written by the ingest transaction, after its nodes and
//! counters, so all of them commit or none ([`PreparedRaw`], called from `ingest.rs`). A
//! rejected turn is quarantined on its own ([`super::Store::quarantine`]), charged to its
//! org's byte budget. Either way the row's writes are bounded: at most one lookup of which
//! chunks the org stores, then one insert of the row with the missing chunks (compressed
//! only once they are known to be missing). On Postgres the row, its chunks and the turn's
//! session update are one statement; SQLite, which cannot nest writes in `WITH`, runs them
//! one after the other.
//!
//! The first row of an `(org, request_id)` wins: a later one is a no-op
//! (`ON CONFLICT … DO NOTHING`), and writes no chunk either.

use std::borrow::Cow;
use std::collections::HashSet;

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, QueryResult};
use serde::Serialize;
use uuid::Uuid;

use super::connect::{begin_write, retry_conflicts};
use super::raw_chunks::{self, NewChunk};
use super::raw_rows::{RawRows, RowResult};
use super::sql::Sql;
use super::{StoreError, sanitize};
use crate::capture::chunks::{self, ChunkHash, Cut, MAX_LEVELS, Piece};
use crate::turn::{KnownHashes, RawStored, RawTurn, RawWrite};
use crate::wire::{TurnPayload, parse_org_id};

/// The status of an accepted turn's answer.
const ACCEPTED_STATUS: u16 = 202;

/// Whether a raw turn's nodes were derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RawOutcome {
    Accepted,
    /// Quarantined: kept with its error, no nodes, no counters.
    Rejected,
}

impl RawOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RawOutcome::Accepted => "accepted",
            RawOutcome::Rejected => "rejected",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "accepted" => Ok(RawOutcome::Accepted),
            "rejected" => Ok(RawOutcome::Rejected),
            other => Err(StoreError::Corrupt(format!("raw turn outcome {other:?}"))),
        }
    }
}

/// The session key parts a rejected turn had, as far as they were known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawKey {
    pub org_id: Uuid,
    pub harness_id: Option<String>,
    pub harness_session_id: Option<String>,
}

impl RawKey {
    /// Where a payload's raw row belongs: `org` when the caller acts as one (an API key's,
    /// an import's `--org`), else the org the envelope names (none when it names none or
    /// one that does not parse), and the envelope's harness session when it names one.
    pub fn of(payload: &TurnPayload, org: Option<Uuid>) -> RawKey {
        let envelope = payload.session.as_ref();
        let named = || {
            envelope
                .and_then(|e| parse_org_id(&e.org_id).ok())
                .unwrap_or(Uuid::nil())
        };
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        RawKey {
            org_id: org.unwrap_or_else(named),
            harness_id: envelope.and_then(|e| non_empty(&e.harness_id)),
            harness_session_id: envelope.and_then(|e| non_empty(&e.harness_session_id)),
        }
    }
}

/// How a quarantined turn was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The HTTP status (422).
    pub status: u16,
    /// The error class, e.g. a metric's `status` label.
    pub reason: String,
    /// The full error text of the answer.
    pub error: String,
}

/// What a stored raw turn was answered: enough to answer a retry of the same request id
/// without parsing it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAnswer {
    pub id: Uuid,
    pub outcome: RawOutcome,
    pub status: u16,
    pub session_id: Option<Uuid>,
    pub head_hash: Option<String>,
    pub error: Option<String>,
}

/// What [`super::Store::quarantine`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Quarantined {
    /// Stored as this raw turn.
    Stored(Uuid),
    /// The org's quarantine budget has no room for it: nothing was written.
    OverBudget,
    /// A raw turn with the same request id is stored already (the first row wins).
    Duplicate(RawAnswer),
}

/// A raw turn as listed: every column but the bodies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawTurnSummary {
    pub id: Uuid,
    pub org_id: Uuid,
    pub request_id: Option<String>,
    pub session_id: Option<Uuid>,
    pub harness_id: Option<String>,
    pub harness_session_id: Option<String>,
    pub provider: String,
    pub agent_name: String,
    pub received_at: DateTime<Utc>,
    pub outcome: RawOutcome,
    pub status: u16,
    pub reason: Option<String>,
    pub head_hash: Option<String>,
    pub request_size: u64,
    pub response_reduced: bool,
    pub raw_response_encoding: String,
    pub raw_response_dropped: bool,
    pub truncated: bool,
    /// Bytes the row added to storage: its own values and the chunks it inserted.
    pub stored_bytes: u64,
}

/// A raw turn read back whole, its request reassembled byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRawTurn {
    pub summary: RawTurnSummary,
    pub error: Option<String>,
    pub request: Vec<u8>,
    pub response: Option<String>,
    pub meta: String,
    pub envelope: Option<String>,
    pub raw_response: Option<Vec<u8>>,
}

/// The columns of a summary, in [`summary_of`]'s order.
pub(super) const SUMMARY_COLUMNS: &str = "id, org_id, request_id, session_id, harness_id, \
     harness_session_id, provider, agent_name, received_at, outcome, status, reason, head_hash, \
     request_size, response_reduced, raw_response_encoding, raw_response_dropped, truncated, \
     stored_bytes";

pub(super) fn summary_of(row: &QueryResult) -> Result<RawTurnSummary, StoreError> {
    let count = |name: &str, value: i64| {
        u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{name} {value}")))
    };
    Ok(RawTurnSummary {
        id: row.try_get("", "id")?,
        org_id: row.try_get("", "org_id")?,
        request_id: row.try_get("", "request_id")?,
        session_id: row.try_get("", "session_id")?,
        harness_id: row.try_get("", "harness_id")?,
        harness_session_id: row.try_get("", "harness_session_id")?,
        provider: row.try_get("", "provider")?,
        agent_name: row.try_get("", "agent_name")?,
        received_at: row.try_get("", "received_at")?,
        outcome: RawOutcome::parse(&row.try_get::<String>("", "outcome")?)?,
        status: status_of(row.try_get("", "status")?)?,
        reason: row.try_get("", "reason")?,
        head_hash: row.try_get("", "head_hash")?,
        request_size: count("request_size", row.try_get("", "request_size")?)?,
        response_reduced: row.try_get("", "response_reduced")?,
        raw_response_encoding: row.try_get("", "raw_response_encoding")?,
        raw_response_dropped: row.try_get("", "raw_response_dropped")?,
        truncated: row.try_get("", "truncated")?,
        stored_bytes: count("stored_bytes", row.try_get("", "stored_bytes")?)?,
    })
}

fn status_of(status: i32) -> Result<u16, StoreError> {
    u16::try_from(status).map_err(|_| StoreError::Corrupt(format!("status {status}")))
}

/// What a raw row records about the turn's outcome.
#[derive(Debug, Clone, Copy)]
pub(super) enum RowOutcome<'a> {
    Accepted {
        session_id: Uuid,
        head_hash: &'a str,
    },
    Rejected(&'a Rejected),
}

/// A raw turn with every text value sanitized (NUL → U+FFFD, which Postgres cannot store
/// in `TEXT`), built before the write lock is taken.
#[derive(Debug)]
pub(super) struct PreparedRaw<'a> {
    raw: &'a RawTurn,
    /// The chunks the session's actor knows stored: not written again, nor looked up.
    known: Option<&'a KnownHashes>,
    org_id: Uuid,
    /// `None` for `""`: no request id never dedups.
    request_id: Option<String>,
    /// SHA-256 of `request_id`: the unique key.
    request_key: Option<[u8; 32]>,
    harness_id: Option<String>,
    harness_session_id: Option<String>,
    provider: Cow<'a, str>,
    agent_name: Cow<'a, str>,
    /// Borrowed unless a NUL was replaced: a response can be megabytes.
    response: Option<Cow<'a, str>>,
    meta: Cow<'a, str>,
    envelope: Option<Cow<'a, str>>,
    reason: Option<String>,
    error: Option<String>,
}

/// At most this many chunks the session's actor does not know stored are written without
/// first asking which of them the org has.
const DIRECT_CHUNKS: usize = 8;

/// Does what a raw turn's commit needs that need not wait for the database writer, which
/// the turns of every session share, on the caller's thread (the session's actor): cuts
/// the request into chunks after the session's `previous` request and its cuts, and, when
/// [`PreparedRaw::stage`] will write the chunks `known` lacks without a lookup (a warm
/// session, few new chunks), compresses those. A compression failure is left for the
/// commit to meet and report.
pub fn prepare_ahead(raw: &RawTurn, previous: Option<(&[u8], &[Cut])>, known: &KnownHashes) {
    let chunked = raw.chunk_after(previous);
    if raw.reprocess_of.is_some() {
        return;
    }
    let (unknown, look_up) = unknown_pieces(chunked.pieces(), Some(known));
    if !look_up {
        let _ = raw.compress_ahead(unknown);
    }
}

/// The pieces `known` does not hold, and whether the org must be asked which of them it
/// stores. A warm turn's few new chunks are written straight away (`ON CONFLICT DO NOTHING`
/// keeps one copy), which saves the lookup statement; many unknown chunks, as in a
/// session's first turn, are looked up so that only the missing ones are compressed. Only a
/// warm session's actor has remembered chunks; a cold turn, and a quarantined one, look up
/// what the org stores, so what they report stored (and what a quarantine charges) counts
/// only the chunks they add.
fn unknown_pieces<'p>(pieces: &'p [Piece], known: Option<&KnownHashes>) -> (Vec<&'p Piece>, bool) {
    let unknown: Vec<&Piece> = pieces
        .iter()
        .filter(|p| !known.is_some_and(|k| k.contains_chunk(p.hash())))
        .collect();
    let warm = known.is_some_and(|k| !k.is_empty_of_chunks());
    let look_up = !warm || unknown.len() > DIRECT_CHUNKS;
    (unknown, look_up)
}

/// The chunks a raw row needs that its org does not store yet, compressed.
pub(super) struct Staged {
    pub(super) missing: Vec<NewChunk>,
    chunk_bytes: usize,
}

/// The columns of a `raw_turns` insert, in [`PreparedRaw::push_values`]' order.
pub(super) const ROW_COLUMNS: &str = "id, org_id, request_id, request_key, session_id, \
     harness_id, harness_session_id, provider, agent_name, received_at, outcome, status, \
     reason, error, head_hash, request_size, request_levels, request_list, response, \
     response_reduced, meta, envelope, raw_response, raw_response_encoding, \
     raw_response_dropped, truncated, stored_bytes";

/// Values bound per raw row.
pub(super) const BINDS_PER_ROW: usize = 27;

impl<'a> PreparedRaw<'a> {
    pub(super) fn new(
        key: &RawKey,
        raw: &'a RawTurn,
        rejected: Option<&Rejected>,
        nul: &mut u64,
    ) -> Result<PreparedRaw<'a>, StoreError> {
        let chunked = raw.request_chunks();
        if chunked.size() != raw.request.len() {
            return Err(StoreError::InvalidTurn(format!(
                "raw request of {} bytes split as {} bytes",
                raw.request.len(),
                chunked.size()
            )));
        }
        if chunked.levels() > MAX_LEVELS {
            return Err(StoreError::InvalidTurn(format!(
                "raw request list of {} levels",
                chunked.levels()
            )));
        }
        let mut owned = |s: &str| sanitize::text(s, nul).into_owned();
        let request_id = (!raw.request_id.is_empty()).then(|| owned(&raw.request_id));
        let harness_id = key.harness_id.as_deref().map(&mut owned);
        let harness_session_id = key.harness_session_id.as_deref().map(&mut owned);
        let reason = rejected.map(|r| owned(&r.reason));
        let error = rejected.map(|r| owned(&r.error));
        let mut text = |s: &'a str| sanitize::text(s, nul);
        Ok(PreparedRaw {
            org_id: key.org_id,
            request_key: request_id.as_deref().map(request_key),
            request_id,
            harness_id,
            harness_session_id,
            provider: text(&raw.provider),
            agent_name: text(&raw.agent_name),
            response: raw.response.as_deref().map(&mut text),
            meta: text(&raw.meta),
            envelope: raw.envelope.as_deref().map(&mut text),
            reason,
            error,
            raw,
            known: None,
        })
    }

    /// Skips the chunks `known` remembers as stored (see [`KnownHashes::contains_chunk`]).
    pub(super) fn knowing(mut self, known: &'a KnownHashes) -> Self {
        self.known = Some(known);
        self
    }

    pub(super) fn org_id(&self) -> Uuid {
        self.org_id
    }

    pub(super) fn reprocess_of(&self) -> Option<Uuid> {
        self.raw.reprocess_of
    }

    /// True when committing this turn looks up or writes chunks: its transaction must take
    /// the chunk lock first (`raw_chunks.rs`).
    pub(super) fn looks_up_chunks(&self) -> bool {
        self.raw.reprocess_of.is_none() && !self.raw.request_chunks().pieces().is_empty()
    }

    /// Finds which of the request's chunks the org lacks and compresses those. The
    /// transaction holds the chunk lock.
    pub(super) async fn stage<C: ConnectionTrait>(&self, txn: &C) -> Result<Staged, StoreError> {
        let chunked = self.raw.request_chunks();
        let pieces = chunked.pieces();
        if pieces.is_empty() {
            return Ok(Staged {
                missing: Vec::new(),
                chunk_bytes: 0,
            });
        }
        let (unknown, look_up) = unknown_pieces(pieces, self.known);
        let stored = if look_up {
            let hashes: Vec<&ChunkHash> = unknown.iter().map(|p| p.hash()).collect();
            raw_chunks::existing(txn, self.org_id, &hashes).await?
        } else {
            HashSet::new()
        };
        let mut missing = Vec::with_capacity(unknown.len() - stored.len());
        let mut chunk_bytes = 0;
        for piece in unknown.into_iter().filter(|p| !stored.contains(p.hash())) {
            let bytes = chunked
                .bytes(piece, &self.raw.request)
                .ok_or_else(|| StoreError::InvalidTurn("raw request chunk out of range".into()))?;
            let data = match self.raw.compressed(piece.hash()) {
                Some(ahead) => ahead.to_vec(),
                None => {
                    chunks::compress(bytes).map_err(|e| StoreError::InvalidTurn(e.to_string()))?
                }
            };
            chunk_bytes += data.len();
            missing.push(NewChunk {
                hash: *piece.hash(),
                size: piece.len(),
                data,
            });
        }
        Ok(Staged {
            missing,
            chunk_bytes,
        })
    }

    /// Bytes the row adds to storage: the chunks it inserts and its own values.
    pub(super) fn stored_bytes(&self, staged: &Staged) -> i64 {
        let optional = |s: Option<&str>| s.map_or(0, str::len);
        let own = self.raw.request_chunks().top().len()
            + optional(self.response.as_deref())
            + self.meta.len()
            + optional(self.envelope.as_deref())
            + self.raw.raw_response.as_ref().map_or(0, Vec::len)
            + optional(self.reason.as_deref())
            + optional(self.error.as_deref());
        i64::try_from(staged.chunk_bytes + own).unwrap_or(i64::MAX)
    }

    /// What staging found, as counted in the metrics when the row is inserted.
    pub(super) fn written(&self, staged: &Staged) -> RawWrite {
        let pieces = self.raw.request_chunks().pieces().len() as u64;
        RawWrite {
            bytes: u64::try_from(self.stored_bytes(staged)).unwrap_or(0),
            chunks_written: staged.missing.len() as u64,
            chunks_deduplicated: pieces - staged.missing.len() as u64,
        }
    }

    /// Appends the row's values, `(…)` in [`ROW_COLUMNS`]' order.
    pub(super) fn push_values(
        &self,
        sql: &mut Sql,
        id: Uuid,
        stored_bytes: i64,
        outcome: RowOutcome<'_>,
    ) {
        let raw = self.raw;
        let (name, status, session_id, head_hash) = match outcome {
            RowOutcome::Accepted {
                session_id,
                head_hash,
            } => (
                RawOutcome::Accepted,
                ACCEPTED_STATUS,
                Some(session_id),
                Some(head_hash.to_owned()),
            ),
            RowOutcome::Rejected(rejected) => (RawOutcome::Rejected, rejected.status, None, None),
        };
        sql.push("(")
            .bind(id)
            .push(", ")
            .bind(self.org_id)
            .push(", ")
            .bind(self.request_id.clone())
            .push(", ")
            .bind(self.request_key.map(|k| k.to_vec()))
            .push(", ")
            .bind(session_id)
            .push(", ")
            .bind(self.harness_id.clone())
            .push(", ")
            .bind(self.harness_session_id.clone())
            .push(", ")
            .bind(self.provider.as_ref())
            .push(", ")
            .bind(self.agent_name.as_ref())
            .push(", ")
            .bind(raw.received_at)
            .push(", ")
            .bind(name.as_str())
            .push(", ")
            .bind(i32::from(status))
            .push(", ")
            .bind(self.reason.clone())
            .push(", ")
            .bind(self.error.clone())
            .push(", ")
            .bind(head_hash)
            .push(", ")
            .bind(i64::try_from(raw.request.len()).unwrap_or(i64::MAX))
            .push(", ")
            .bind(i32::from(raw.request_chunks().levels()))
            .push(", ")
            .bind(raw.request_chunks().top().to_vec())
            .push(", ")
            .bind(self.response.as_deref().map(str::to_owned))
            .push(", ")
            .bind(raw.response_reduced)
            .push(", ")
            .bind(self.meta.as_ref())
            .push(", ")
            .bind(self.envelope.as_deref().map(str::to_owned))
            .push(", ")
            .bind(raw.raw_response.clone())
            .push(", ")
            .bind(raw.raw_response_encoding.as_str())
            .push(", ")
            .bind(raw.raw_response_dropped)
            .push(", ")
            .bind(raw.truncated)
            .push(", ")
            .bind(stored_bytes)
            .push(")");
    }

    /// The raw write of a turn that re-derives a quarantined one: the flip of that row.
    pub(super) async fn reprocess<C: ConnectionTrait>(
        &self,
        txn: &C,
        session_id: Uuid,
        head_hash: &str,
    ) -> Result<Option<RawStored>, StoreError> {
        let Some(id) = self.reprocess_of() else {
            return Ok(None);
        };
        mark_reprocessed(txn, self.org_id, id, session_id, head_hash).await?;
        Ok(Some(RawStored::Reprocessed(id)))
    }
}

/// Flips the rejected row `id` of `org` to accepted, exactly once, and returns its bytes to
/// the org's quarantine budget. [`StoreError::AlreadyReprocessed`] when no such rejected
/// row exists: the caller's transaction must roll back.
async fn mark_reprocessed<C: ConnectionTrait>(
    txn: &C,
    org: Uuid,
    id: Uuid,
    session_id: Uuid,
    head_hash: &str,
) -> Result<(), StoreError> {
    let backend = txn.get_database_backend();
    let mut sql = Sql::new(backend);
    sql.push("UPDATE raw_turns SET outcome = 'accepted', status = ")
        .bind(i32::from(ACCEPTED_STATUS))
        .push(", session_id = ")
        .bind(session_id)
        .push(", head_hash = ")
        .bind(head_hash)
        .push(", reason = NULL, error = NULL WHERE id = ")
        .bind(id)
        .push(" AND org_id = ")
        .bind(org)
        .push(" AND outcome = 'rejected' RETURNING stored_bytes");
    let Some(row) = txn.query_one_raw(sql.build()).await? else {
        return Err(StoreError::AlreadyReprocessed(id));
    };
    let bytes: i64 = row.try_get_by_index(0)?;
    release_quota(txn, org, bytes).await
}

/// Returns `bytes` to `org`'s quarantine budget (never below zero).
pub(super) async fn release_quota<C: ConnectionTrait>(
    txn: &C,
    org: Uuid,
    bytes: i64,
) -> Result<(), StoreError> {
    let backend = txn.get_database_backend();
    let mut sql = Sql::new(backend);
    sql.push("UPDATE raw_quota SET quarantined_bytes = ")
        .push(greatest(backend))
        .push("0, quarantined_bytes - ")
        .bind(bytes)
        .push(") WHERE org_id = ")
        .bind(org);
    txn.execute_raw(sql.build()).await?;
    Ok(())
}

/// The two-argument maximum, opened: `GREATEST(` on Postgres, `MAX(` on SQLite.
pub(super) fn greatest(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "GREATEST(",
        _ => "MAX(",
    }
}

/// Charges `bytes` to `org`'s quarantine budget when they fit under `budget`. False when
/// they do not: nothing was charged.
pub(super) async fn charge_quota<C: ConnectionTrait>(
    txn: &C,
    org: Uuid,
    bytes: i64,
    budget: i64,
) -> Result<bool, StoreError> {
    let mut sql = Sql::new(txn.get_database_backend());
    // SQLite needs the WHERE of an `INSERT … SELECT` before `ON CONFLICT` to parse it.
    sql.push("INSERT INTO raw_quota (org_id, quarantined_bytes) SELECT ")
        .bind(org)
        .push(", ")
        .bind(bytes)
        .push(" WHERE ")
        .bind(bytes)
        .push(" <= ")
        .bind(budget)
        .push(
            " ON CONFLICT (org_id) DO UPDATE SET quarantined_bytes = \
             raw_quota.quarantined_bytes + excluded.quarantined_bytes \
             WHERE raw_quota.quarantined_bytes + excluded.quarantined_bytes <= ",
        )
        .bind(budget)
        .push(" RETURNING quarantined_bytes");
    Ok(txn.query_one_raw(sql.build()).await?.is_some())
}

/// The unique key of a (sanitized) request id.
fn request_key(request_id: &str) -> [u8; 32] {
    chunks::sha256(request_id.as_bytes())
}

/// The answer stored for `org`'s `request_id`, if any: one indexed read.
///
/// The statement names no org: it reads the rows of the request key through the unique
/// index that leads with it (one per org that sent the request id, normally one), and the
/// org is checked here. With `org_id` in its `WHERE`, a prepared statement's generic plan,
/// made once while `raw_turns` is small, could take `raw_turns_org_idx` (every raw turn of
/// the org) and keep it as the table grows; without it that index does not apply, so the
/// statement can stay prepared and planned once per connection (migration
/// `m20261208_000001_request_key_first`).
pub(super) async fn answer<C: ConnectionTrait>(
    db: &C,
    org: Uuid,
    request_id: &str,
) -> Result<Option<RawAnswer>, StoreError> {
    let mut nul = 0;
    let request_id = sanitize::text(request_id, &mut nul);
    let mut sql = Sql::new(db.get_database_backend());
    sql.push(
        "SELECT org_id, id, outcome, status, session_id, head_hash, error FROM raw_turns \
         WHERE request_key = ",
    )
    .bind(request_key(&request_id).to_vec())
    .push(" AND request_id = ")
    .bind(request_id.as_ref());
    for row in db.query_all_raw(sql.build()).await? {
        if row.try_get::<Uuid>("", "org_id")? != org {
            continue;
        }
        return Ok(Some(RawAnswer {
            id: row.try_get("", "id")?,
            outcome: RawOutcome::parse(&row.try_get::<String>("", "outcome")?)?,
            status: status_of(row.try_get("", "status")?)?,
            session_id: row.try_get("", "session_id")?,
            head_hash: row.try_get("", "head_hash")?,
            error: row.try_get("", "error")?,
        }));
    }
    Ok(None)
}

/// Reads raw turn `id` (within `org` when given), its request reassembled from its chunks:
/// one read of the row, then one of chunks per list level and one of data chunks.
pub(super) async fn read<C: ConnectionTrait>(
    db: &C,
    org: Option<Uuid>,
    id: Uuid,
) -> Result<Option<StoredRawTurn>, StoreError> {
    let mut sql = Sql::new(db.get_database_backend());
    sql.push("SELECT ")
        .push(SUMMARY_COLUMNS)
        .push(
            ", error, request_levels, request_list, response, meta, envelope, raw_response \
             FROM raw_turns WHERE id = ",
        )
        .bind(id);
    if let Some(org) = org {
        sql.push(" AND org_id = ").bind(org);
    }
    let Some(row) = db.query_one_raw(sql.build()).await? else {
        return Ok(None);
    };
    let summary = summary_of(&row)?;
    let levels: i32 = row.try_get("", "request_levels")?;
    let levels = u8::try_from(levels)
        .map_err(|_| StoreError::Corrupt(format!("raw turn {id}: {levels} list levels")))?;
    let top: Vec<u8> = row.try_get("", "request_list")?;
    let request = reassemble(db, summary.org_id, &top, levels, summary.request_size)
        .await
        .map_err(|e| match e {
            StoreError::Corrupt(why) => StoreError::Corrupt(format!("raw turn {id}: {why}")),
            other => other,
        })?;
    Ok(Some(StoredRawTurn {
        error: row.try_get("", "error")?,
        request,
        response: row.try_get("", "response")?,
        meta: row.try_get("", "meta")?,
        envelope: row.try_get("", "envelope")?,
        raw_response: row.try_get("", "raw_response")?,
        summary,
    }))
}

/// A request from its top list: each level's chunks fetched in one read, then expanded.
async fn reassemble<C: ConnectionTrait>(
    db: &C,
    org: Uuid,
    top: &[u8],
    levels: u8,
    size: u64,
) -> Result<Vec<u8>, StoreError> {
    let corrupt = |e: chunks::ChunkError| StoreError::Corrupt(e.to_string());
    if levels > MAX_LEVELS {
        return Err(corrupt(chunks::ChunkError::TooDeep(levels)));
    }
    let mut list = top.to_vec();
    for _ in 0..=levels {
        let hashes: Vec<ChunkHash> = chunks::list_hashes(&list).map_err(corrupt)?.collect();
        let found = raw_chunks::fetch(db, org, &hashes).await?;
        list = chunks::expand(&list, |h: &ChunkHash| found.get(h)).map_err(corrupt)?;
    }
    if list.len() as u64 != size {
        return Err(corrupt(chunks::ChunkError::Size {
            expected: size,
            got: list.len() as u64,
        }));
    }
    Ok(list)
}

/// Lists `org`'s raw turns in id order (the order they were stored), after the cursor
/// `after`, at most `limit`; only those of `session` when given.
pub(super) async fn list<C: ConnectionTrait>(
    db: &C,
    org: Uuid,
    session: Option<Uuid>,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<RawTurnSummary>, StoreError> {
    let mut sql = Sql::new(db.get_database_backend());
    sql.push("SELECT ")
        .push(SUMMARY_COLUMNS)
        .push(" FROM raw_turns WHERE org_id = ")
        .bind(org);
    if let Some(session) = session {
        sql.push(" AND session_id = ").bind(session);
    }
    if let Some(after) = after {
        sql.push(" AND id > ").bind(after);
    }
    sql.push(" ORDER BY id LIMIT ")
        .bind(i64::try_from(limit).unwrap_or(i64::MAX));
    db.query_all_raw(sql.build())
        .await?
        .iter()
        .map(summary_of)
        .collect()
}

impl super::Store {
    /// Quarantines a rejected turn (docs/capture.md §13.2): charges its bytes to the org's
    /// quarantine budget and stores it with its error, in one transaction. Over budget,
    /// nothing is written; a turn whose request id is stored already is answered with the
    /// stored row (the first row wins).
    ///
    /// On SQLite this is a write transaction of its own beside the group writer's; it is
    /// meant for the rare rejected turn, not for the ingest path.
    pub async fn quarantine(
        &self,
        key: &RawKey,
        raw: &RawTurn,
        rejected: &Rejected,
        budget_bytes: u64,
    ) -> Result<Quarantined, StoreError> {
        let mut nul = 0;
        let prepared = PreparedRaw::new(key, raw, Some(rejected), &mut nul)?;
        let budget = i64::try_from(budget_bytes).unwrap_or(i64::MAX);
        retry_conflicts(|| quarantine_once(self.connection(), &prepared, rejected, budget)).await
    }

    /// The stored answer for `org`'s `request_id`: what a retry of it is answered, without
    /// parsing it again. `None` for `""` (no request id never dedups).
    pub async fn raw_answer(
        &self,
        org: Uuid,
        request_id: &str,
    ) -> Result<Option<RawAnswer>, StoreError> {
        if request_id.is_empty() {
            return Ok(None);
        }
        answer(self.connection(), org, request_id).await
    }

    /// Raw turn `id`, within `org` when given, its request reassembled byte for byte.
    pub async fn raw_turn(
        &self,
        org: Option<Uuid>,
        id: Uuid,
    ) -> Result<Option<StoredRawTurn>, StoreError> {
        read(self.connection(), org, id).await
    }

    /// `org`'s raw turns in the order they were stored, after the cursor `after` (an id
    /// this returned), at most `limit`; only `session`'s when given. Without their bodies.
    pub async fn raw_turns(
        &self,
        org: Uuid,
        session: Option<Uuid>,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<RawTurnSummary>, StoreError> {
        list(self.connection(), org, session, after, limit).await
    }

    /// Deletes the raw turns received before `older_than` and every chunk no kept raw turn
    /// reaches; safe while turns are ingested (`raw_prune`) as long as `older_than` is at
    /// least a day old: session actors write a chunk they remember without looking it up
    /// for six hours after a raw turn of theirs referenced it (`KnownHashes`).
    pub async fn prune_raw(
        &self,
        older_than: DateTime<Utc>,
    ) -> Result<super::PruneReport, StoreError> {
        super::raw_prune::prune(self.connection(), older_than.trunc_subsecs(6)).await
    }
}

async fn quarantine_once(
    db: &DatabaseConnection,
    prepared: &PreparedRaw<'_>,
    rejected: &Rejected,
    budget: i64,
) -> Result<Quarantined, StoreError> {
    let org = prepared.org_id;
    if let Some(request_id) = &prepared.request_id
        && let Some(stored) = answer(db, org, request_id).await?
    {
        return Ok(Quarantined::Duplicate(stored));
    }
    let txn = begin_write(db).await?;
    if prepared.looks_up_chunks() {
        raw_chunks::share_lock(&txn).await?;
    }
    let staged = prepared.stage(&txn).await?;
    let bytes = prepared.stored_bytes(&staged);
    if !charge_quota(&txn, org, bytes, budget).await? {
        txn.rollback().await?;
        return Ok(Quarantined::OverBudget);
    }
    let now = Utc::now().trunc_subsecs(6);
    let mut rows = RawRows::default();
    rows.push(0, prepared, RowOutcome::Rejected(rejected), staged);
    match rows
        .flush(&txn, now, Vec::<fn(&mut Sql)>::new())
        .await?
        .pop()
    {
        Some(RowResult {
            stored: RawStored::Inserted(id),
            ..
        }) => {
            txn.commit().await?;
            Ok(Quarantined::Stored(id))
        }
        _ => {
            // Another request with the id committed first: undo the charge, answer with it.
            txn.rollback().await?;
            let request_id = prepared.request_id.as_deref().unwrap_or_default();
            answer(db, org, request_id)
                .await?
                .map(Quarantined::Duplicate)
                .ok_or_else(|| StoreError::Corrupt("a conflicting raw turn vanished".into()))
        }
    }
}
