//! The session ingest transaction (docs/storage.md#the-ingest-transaction, with reel's
//! corrections in docs/divergences.md).
//!
//! Statements per turn, in order (none of them grows with the conversation):
//! 1. fork parent: read its id by natural key; insert a placeholder when absent;
//! 2. session: read by natural key; insert when absent;
//! 3. nodes: one `INSERT … ON CONFLICT DO NOTHING RETURNING org_id, hash` (on Postgres of
//!    a JSON document of every row, `node_document.rs`; on SQLite up to 1,424 nodes of
//!    bound values a statement), skipping the chain up to its last node the caller knows is
//!    stored; the session id is stamped in the same statement;
//! 4. head: when the head was not inserted just now, one conditional `UPDATE` marks it
//!    (`… AND NOT is_turn_head`); whether a turn is counted is decided by the database, so two
//!    processes ingesting the same turn count it once;
//! 5. session: one `UPDATE` for counters, `last_seen_at` and changed envelope fields, only
//!    when something changed.
//!
//! 6. raw turn, when the turn carries one (`raw.rs`): look up which of its request's chunks
//!    the org stores (skipped when the session's actor knows all but a few of them), insert
//!    the row and the missing chunks; or, for a turn that re-derives a quarantined one, flip
//!    that row and release its quota. On Postgres the row, its chunks and the session update
//!    of step 5 are one statement, and a transaction with raw turns takes the shared chunk
//!    lock in its first statement, step 1 or 2's read (`raw_chunks.rs` says why).
//!
//! A cold turn (new session) costs four statements, a warm turn (session known, two new
//! nodes) three: read session, insert nodes, update session. A raw turn adds nothing more
//! on Postgres when its actor knows its chunks (one lookup otherwise), and one or two
//! statements on SQLite. A full-duplicate retry writes nothing.
//!
//! Locks are taken in one order: session key, node keys in chain order (two chains that share
//! nodes share them as a common prefix, in the same order), head row, and the session row
//! last, after which the transaction only commits. Concurrent single turns therefore never
//! deadlock; a transaction of several chains can, and Postgres's abort of it
//! is answered by running it again (`retry_conflicts`).

use std::collections::HashSet;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use entity::sessions;
use sea_orm::prelude::Decimal;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};
use serde_json::{Map, Value as Json};
use uuid::Uuid;

use super::connect::{begin_write, retry_conflicts};
use super::node_document::{self, NodeInsert};
use super::node_row::{NodeRow, UsageColumns, non_blank};
use super::raw::{PreparedRaw, RawKey, RowOutcome};
use super::raw_chunks::CHUNK_LOCK_KEY;
use super::raw_rows::RawRows;
use super::session_row::{self, NaturalKey, NewSession};
use super::sql::{List, Sql, bind_limit};
use super::{StoreError, sanitize};
use crate::merkle::{Chain, ChainNode, NodeKind};
use crate::turn::{Committed, KnownHashes, RawWrite, Turn};

mod group;

/// One turn to write, with the hashes its session's actor knows are stored.
#[derive(Debug, Clone, Copy)]
pub(super) struct Write<'a> {
    pub(super) turn: &'a Turn,
    /// The chain up to its last known node is not inserted again (a stored node's
    /// ancestors are always stored), so a warm session writes only the new suffix of its
    /// conversation. Whether the head is counted never depends on it.
    pub(super) known: &'a KnownHashes,
}

/// Commits several turns, in order, in one transaction: all of them or none.
///
/// Meant for turns arriving together (a batch's turns of one session, or on SQLite the
/// waiting turns of several sessions): one commit, and on SQLite one acquisition of the
/// write lock and one fsync, for all of them. `project` is stamped on every inserted node.
pub(super) async fn transaction(
    db: &DatabaseConnection,
    writes: &[Write<'_>],
    project: Option<&str>,
) -> Result<Vec<Committed>, StoreError> {
    // Validation and JSON encoding happen before the write lock is taken.
    let turns = prepare(writes, project)?;
    if turns.is_empty() {
        return Ok(Vec::new());
    }
    retry_conflicts(|| commit_turns(db, &turns)).await
}

/// Commits `writes`, in order, inside the caller's transaction `txn`, which holds what else
/// must commit with them (`reel rederive` rebuilding a session). Turns carrying raw turns
/// are refused: their chunk lock belongs at the start of a transaction.
pub(super) async fn within<C: ConnectionTrait>(
    txn: &C,
    writes: &[Write<'_>],
    project: Option<&str>,
) -> Result<Vec<Committed>, StoreError> {
    let turns = prepare(writes, project)?;
    if turns.iter().any(|t| t.raw.is_some()) {
        return Err(StoreError::InvalidTurn(
            "a turn committed within another transaction carries no raw turn".into(),
        ));
    }
    write_turns(txn, &turns, None).await
}

/// Validates and encodes every turn. A node of an earlier turn of the call is stored by
/// the time a later turn runs, so a conversation's turns write only what each adds, not
/// their history again.
fn prepare<'a>(
    writes: &[Write<'a>],
    project: Option<&str>,
) -> Result<Vec<PreparedTurn<'a>>, StoreError> {
    let mut earlier: HashSet<(Uuid, &str)> = HashSet::new();
    let mut turns = Vec::with_capacity(writes.len());
    for write in writes {
        turns.push(PreparedTurn::new(write, project, &earlier)?);
        let org = write.turn.key.org_id;
        earlier.extend(
            write
                .turn
                .chain
                .nodes
                .iter()
                .map(|n| (org, n.hash.as_str())),
        );
    }
    Ok(turns)
}

/// One transaction over all `turns`.
async fn commit_turns(
    db: &DatabaseConnection,
    turns: &[PreparedTurn<'_>],
) -> Result<Vec<Committed>, StoreError> {
    let txn = begin_write(db).await?;
    // The chunk lock is taken by the first statement, before any row lock (raw_chunks.rs).
    let chunk_lock = (txn.get_database_backend() == DbBackend::Postgres
        && turns
            .iter()
            .any(|t| t.raw.as_ref().is_some_and(PreparedRaw::looks_up_chunks)))
    .then_some(CHUNK_LOCK_KEY);
    match write_turns(&txn, turns, chunk_lock).await {
        Ok(outcomes) => {
            txn.commit().await?;
            Ok(outcomes)
        }
        Err(err) => {
            // Dropping the transaction would roll it back too, lazily; rolling back now
            // returns the connection (and SQLite's write lock) right away.
            txn.rollback().await.ok();
            Err(err)
        }
    }
}

/// The statements of `turns`, in order, then their raw rows together; turns of distinct
/// sessions phase by phase instead ([`group`]).
async fn write_turns<C: ConnectionTrait>(
    txn: &C,
    turns: &[PreparedTurn<'_>],
    mut chunk_lock: Option<i64>,
) -> Result<Vec<Committed>, StoreError> {
    if group::applies(turns) {
        return group::write(txn, turns, chunk_lock).await;
    }
    let mut clock = Clock::start();
    let mut outcomes = Vec::with_capacity(turns.len());
    let mut raw_rows = RawRows::default();
    let mut pending: Option<SessionUpdate<'_>> = None;
    for (index, turn) in turns.iter().enumerate() {
        // A turn's session update runs before the next turn reads the row; the last one
        // goes with the raw rows (one statement on Postgres).
        if let Some(update) = pending.take() {
            update.apply(txn).await?;
        }
        let (committed, update) =
            commit_turn(txn, turn, index, &mut clock, &mut chunk_lock, &mut raw_rows).await?;
        outcomes.push(committed);
        pending = update;
    }
    let last_update = pending
        .into_iter()
        .map(|update| move |sql: &mut Sql| update.push(sql))
        .collect();
    for row in raw_rows.flush(txn, clock.now, last_update).await? {
        let outcome = &mut outcomes[row.turn];
        outcome.raw = Some(row.stored);
        outcome.raw_written = row.written;
    }
    Ok(outcomes)
}

/// Timestamps of one commit. The session writes share `now` (as in the reference); nodes get
/// `now` plus one microsecond per node, so that listing by `created_at` keeps chain order
/// where the reference read the clock once per node.
struct Clock {
    now: DateTime<Utc>,
    issued: i64,
}

impl Clock {
    fn start() -> Self {
        // Postgres keeps microseconds; truncating here makes both backends store the same.
        Clock {
            now: Utc::now().trunc_subsecs(6),
            issued: 0,
        }
    }

    fn node_time(&mut self) -> DateTime<Utc> {
        let t = self.now + TimeDelta::microseconds(self.issued);
        self.issued += 1;
        t
    }
}

/// What the head's conditional update writes.
struct HeadMark {
    hash: String,
    stop_reason: Option<String>,
    usage: Option<UsageColumns>,
}

/// A validated turn with every stored value encoded and sanitized.
struct PreparedTurn<'a> {
    org_id: Uuid,
    harness_id: String,
    harness_session_id: String,
    auth_subject: String,
    name: Option<String>,
    cwd: Option<String>,
    harness_version: Option<String>,
    /// `None` when the envelope had no metadata or `null` (docs/divergences.md#null-metadata).
    metadata: Option<Map<String, Json>>,
    /// `(harness_id, harness_session_id)` of the fork parent.
    parent: Option<(String, String)>,
    /// Nodes to insert, in chain order: the chain after its last known node.
    rows: Vec<NodeRow>,
    /// The `project` column of every inserted node.
    project: Option<String>,
    head: HeadMark,
    input_tokens: i64,
    output_tokens: i64,
    cost_usd: Decimal,
    /// The turn as captured, kept in the same transaction.
    raw: Option<PreparedRaw<'a>>,
    nul_replacements: u64,
}

impl<'a> PreparedTurn<'a> {
    /// `earlier`: (org, hash) of the nodes stored by turns committed before this one in the
    /// same transaction.
    fn new(
        write: &Write<'a>,
        project: Option<&str>,
        earlier: &HashSet<(Uuid, &str)>,
    ) -> Result<Self, StoreError> {
        let turn = write.turn;
        validate_chain(&turn.chain)?;
        if turn.key.harness_session_id.is_empty() {
            return Err(StoreError::InvalidChain(
                "cannot derive synthetic harness_session_id: missing root node hash".into(),
            ));
        }
        let mut nul = 0;
        let envelope = turn.envelope.as_ref();
        let text = |s: &str, nul: &mut u64| sanitize::text(s, nul).into_owned();
        let optional = |s: &str, nul: &mut u64| non_blank(s).map(|s| text(s, nul));

        let metadata = match envelope.and_then(|e| e.harness_metadata.as_deref()) {
            None => None,
            Some(raw) => match serde_json::from_str::<Json>(raw.get()) {
                Ok(Json::Null) => None,
                Ok(mut value @ Json::Object(_)) => {
                    sanitize::json_value(&mut value, &mut nul);
                    match value {
                        Json::Object(map) => Some(map),
                        _ => None,
                    }
                }
                Ok(_) | Err(_) => {
                    return Err(StoreError::InvalidTurn(
                        "harness_metadata is not a JSON object".into(),
                    ));
                }
            },
        };

        let harness_id = text(&turn.key.harness_id, &mut nul);
        let harness_session_id = text(&turn.key.harness_session_id, &mut nul);
        let parent = envelope.and_then(|e| {
            let session = e.parent_harness_session_id.as_deref()?;
            if session.is_empty() {
                return None;
            }
            let parent = (
                text(e.parent_harness_id_or_own(), &mut nul),
                text(session, &mut nul),
            );
            // A session cannot be its own fork parent (the reference stored a self-reference).
            (parent.0 != harness_id || parent.1 != harness_session_id).then_some(parent)
        });

        // A stored node's ancestors are stored too (inserted with it or before it), so the
        // chain is skipped up to its last known node. Scanning back from the head stops
        // there: the work is proportional to the new suffix, not to the conversation. An
        // injected node says nothing of the nodes before it (its hash does not depend on
        // them), so only a spine node ends the scan, and the injected nodes before it are
        // each written unless they are known themselves.
        let nodes = &turn.chain.nodes;
        let head_index = nodes.len() - 1;
        let org = turn.key.org_id;
        let stored =
            |hash: &String| earlier.contains(&(org, hash.as_str())) || write.known.contains(hash);
        let first_new = nodes
            .iter()
            .rposition(|n| !is_injected(n) && stored(&n.hash))
            .map_or(0, |i| i + 1);
        let mut rows = Vec::with_capacity(nodes.len() - first_new);
        for node in nodes[..first_new].iter() {
            if is_injected(node) && !stored(&node.hash) {
                rows.push(NodeRow::encode(node, false, &mut nul)?);
            }
        }
        for (i, node) in nodes.iter().enumerate().skip(first_new) {
            if !(is_injected(node) && stored(&node.hash)) {
                rows.push(NodeRow::encode(node, i == head_index, &mut nul)?);
            }
        }
        let head_node = turn.chain.head();
        let head = HeadMark {
            hash: head_node.hash.clone(),
            stop_reason: non_blank(&head_node.stop_reason).map(|s| text(s, &mut nul)),
            usage: head_node.usage.as_ref().map(UsageColumns::new),
        };

        let cost_usd = Decimal::from_f64_retain(turn.cost_usd)
            .filter(|_| turn.cost_usd.is_finite())
            .ok_or_else(|| StoreError::InvalidTurn(format!("cost {} USD", turn.cost_usd)))?
            .round_dp(4)
            .normalize();

        let raw = match &turn.raw {
            Some(raw) => {
                let key = RawKey {
                    org_id: turn.key.org_id,
                    harness_id: Some(harness_id.clone()),
                    harness_session_id: Some(harness_session_id.clone()),
                };
                Some(PreparedRaw::new(&key, raw, None, &mut nul)?.knowing(write.known))
            }
            None => None,
        };

        Ok(PreparedTurn {
            org_id: turn.key.org_id,
            auth_subject: envelope.map_or_else(String::new, |e| text(&e.auth_subject, &mut nul)),
            name: envelope.and_then(|e| optional(&e.name, &mut nul)),
            cwd: envelope.and_then(|e| optional(&e.cwd, &mut nul)),
            harness_version: envelope.and_then(|e| optional(&e.harness_version, &mut nul)),
            harness_id,
            harness_session_id,
            metadata,
            parent,
            rows,
            project: project.and_then(|p| optional(p, &mut nul)),
            head,
            input_tokens: turn.input_tokens,
            output_tokens: turn.output_tokens,
            cost_usd,
            raw,
            nul_replacements: nul,
        })
    }

    /// The fork parent's natural key.
    fn parent_key(&self) -> Option<NaturalKey<'_>> {
        self.parent
            .as_ref()
            .map(|(harness_id, harness_session_id)| NaturalKey {
                org_id: self.org_id,
                harness_id,
                harness_session_id,
            })
    }

    fn key(&self) -> NaturalKey<'_> {
        NaturalKey {
            org_id: self.org_id,
            harness_id: &self.harness_id,
            harness_session_id: &self.harness_session_id,
        }
    }

    /// The fork parent's placeholder row, inserted when the parent has none yet. It carries
    /// the child's auth_subject until the parent's own first turn takes the row over
    /// (docs/divergences.md#fork-parents).
    fn placeholder<'s>(
        &'s self,
        parent: &'s (String, String),
        now: DateTime<Utc>,
    ) -> NewSession<'s> {
        NewSession {
            key: NaturalKey {
                org_id: self.org_id,
                harness_id: &parent.0,
                harness_session_id: &parent.1,
            },
            auth_subject: &self.auth_subject,
            name: None,
            cwd: None,
            harness_version: None,
            parent_session_id: None,
            started_at: now,
            last_seen_at: now,
            harness_metadata: "{}".to_owned(),
            total_input_tokens: 0,
            total_output_tokens: 0,
            turn_count: 0,
        }
    }

    /// The session's row, inserted when the session is new.
    fn new_session(&self, parent_id: Option<Uuid>, now: DateTime<Utc>) -> NewSession<'_> {
        NewSession {
            key: self.key(),
            auth_subject: &self.auth_subject,
            name: self.name.as_deref(),
            cwd: self.cwd.as_deref(),
            harness_version: self.harness_version.as_deref(),
            parent_session_id: parent_id,
            started_at: now,
            last_seen_at: now,
            harness_metadata: self.metadata_json(),
            total_input_tokens: 0,
            total_output_tokens: 0,
            turn_count: 0,
        }
    }

    fn metadata_json(&self) -> String {
        match &self.metadata {
            Some(map) => Json::Object(map.clone()).to_string(),
            None => "{}".to_owned(),
        }
    }
}

/// The reference's `validateChainOrdering`, for chains with side branches: the root has no
/// parent, and each later node's parent is the last node before it that is not injected
/// context (none while only injected nodes came before). A chain without injected nodes (all
/// of them under `tapes-f237b6e`) is therefore exactly root → leaf, each node's parent the
/// node before it.
fn validate_chain(chain: &Chain) -> Result<(), StoreError> {
    let invalid = |msg: String| Err(StoreError::InvalidChain(msg));
    let Some(root) = chain.nodes.first() else {
        return invalid("no nodes supplied".into());
    };
    if let Some(p) = root.parent_hash.as_deref().filter(|p| !p.is_empty()) {
        return invalid(format!(
            "nodes[0] must be the conversation root: ParentHash={p:?}"
        ));
    }
    // The index of the last node that advanced the chain.
    let mut spine: Option<usize> = (!is_injected(root)).then_some(0);
    for (i, node) in chain.nodes.iter().enumerate().skip(1) {
        match (node.parent_hash.as_deref(), spine) {
            (None | Some(""), None) => {}
            (None | Some(""), Some(s)) => {
                return invalid(format!(
                    "nodes[{i}] has no ParentHash but expected {:?}",
                    chain.nodes[s].hash
                ));
            }
            (Some(p), Some(s)) if p == chain.nodes[s].hash => {}
            (Some(p), Some(s)) => {
                return invalid(format!(
                    "nodes[{i}].ParentHash={p:?} does not chain to nodes[{s}].Hash={:?}",
                    chain.nodes[s].hash
                ));
            }
            (Some(p), None) => {
                return invalid(format!(
                    "nodes[{i}].ParentHash={p:?} but no node before it advances the chain"
                ));
            }
        }
        if !is_injected(node) {
            spine = Some(i);
        }
    }
    Ok(())
}

fn is_injected(node: &ChainNode) -> bool {
    node.kind.is_some_and(NodeKind::is_injected)
}

/// Writes turn `index` of the transaction up to its session update, which it returns
/// (the caller runs it, or defers the last one into the raw rows' statement), and stages its
/// raw row into `raw_rows`. `chunk_lock`: the advisory lock the transaction's first
/// statement takes, until taken.
async fn commit_turn<'a, C: ConnectionTrait>(
    txn: &C,
    turn: &'a PreparedTurn<'a>,
    index: usize,
    clock: &mut Clock,
    chunk_lock: &mut Option<i64>,
    raw_rows: &mut RawRows<'a>,
) -> Result<(Committed, Option<SessionUpdate<'a>>), StoreError> {
    let now = clock.now;
    let parent_id = match &turn.parent {
        Some(parent) => {
            let placeholder = turn.placeholder(parent, now);
            let (id, _) = session_row::find_or_insert(txn, &placeholder, chunk_lock.take()).await?;
            Some(id)
        }
        None => None,
    };
    let (session_id, existing) =
        session_row::find_or_insert(txn, &turn.new_session(parent_id, now), chunk_lock.take())
            .await?;
    let placed = Placed {
        session_id,
        parent_id,
        existing,
    };
    let inserted = insert_nodes(txn, &[(turn, session_id)], clock).await?;
    finish_turn(txn, turn, index, placed, &inserted, now, raw_rows).await
}

/// Where a turn's session row stands once it was read (or inserted).
struct Placed {
    session_id: Uuid,
    parent_id: Option<Uuid>,
    /// The row as read; `None` when this turn inserted it.
    existing: Option<sessions::Model>,
}

/// The rest of a turn once its nodes are inserted (`inserted`: the (org, hash) of every node
/// the statement stored): its head marked when it was stored before, its raw row staged, its
/// session update returned.
async fn finish_turn<'a, C: ConnectionTrait>(
    txn: &C,
    turn: &'a PreparedTurn<'a>,
    index: usize,
    placed: Placed,
    inserted: &HashSet<(Uuid, String)>,
    now: DateTime<Utc>,
    raw_rows: &mut RawRows<'a>,
) -> Result<(Committed, Option<SessionUpdate<'a>>), StoreError> {
    let Placed {
        session_id,
        parent_id,
        existing,
    } = placed;
    let is_new = |hash: &str| inserted.contains(&(turn.org_id, hash.to_owned()));
    // `inserted` may hold other turns' rows (a group's one insert): only a head this turn
    // inserted itself counts it. A head another turn of the group inserted is marked, or
    // found marked, like any stored head.
    let inserted_head = turn.rows.iter().any(|r| r.is_head) && is_new(&turn.head.hash);
    let counted = inserted_head || mark_head(txn, turn).await?;
    // Rows are in chain order, so this is root first.
    let new_nodes: Vec<String> = turn
        .rows
        .iter()
        .filter(|r| is_new(&r.hash))
        .map(|r| r.hash.clone())
        .collect();

    let update = SessionUpdate {
        turn,
        session_id,
        now,
        touch: counted || !new_nodes.is_empty(),
        counted,
        envelope: existing
            .as_ref()
            .map(|row| EnvelopeChanges::new(turn, row, parent_id)),
    };
    // The raw row is staged and written with the transaction's other raw rows at its end.
    let raw = match &turn.raw {
        Some(raw) => match raw.reprocess(txn, session_id, &turn.head.hash).await? {
            Some(stored) => Some(stored),
            None => {
                let outcome = RowOutcome::Accepted {
                    session_id,
                    head_hash: &turn.head.hash,
                };
                raw_rows.push(index, raw, outcome, raw.stage(txn).await?);
                None
            }
        },
        None => None,
    };

    let committed = Committed {
        session_id,
        head: turn.head.hash.clone(),
        new_nodes,
        counted,
        nul_replacements: turn.nul_replacements,
        raw,
        raw_written: RawWrite::default(),
    };
    Ok((committed, update.is_needed().then_some(update)))
}

/// Values bound per node row (SQLite).
const BINDS_PER_NODE: usize = 23;

/// The head of every node insert, followed by `VALUES …` or the document's `SELECT`.
const NODE_COLUMNS: &str = "INSERT INTO nodes (org_id, session_id, hash, parent_hash, bucket, \
     content, type, role, model, provider, agent_name, stop_reason, prompt_tokens, \
     completion_tokens, total_tokens, cache_creation_input_tokens, cache_read_input_tokens, \
     total_duration_ns, prompt_duration_ns, project, created_at, node_kind, thread_id, \
     is_turn_head) ";

/// Inserts the rows of `turns` (each with its session's id), in order, returning the
/// (org, hash) of those that were not stored yet.
async fn insert_nodes<C: ConnectionTrait>(
    txn: &C,
    turns: &[(&PreparedTurn<'_>, Uuid)],
    clock: &mut Clock,
) -> Result<HashSet<(Uuid, String)>, StoreError> {
    let backend = txn.get_database_backend();
    let per_statement = bind_limit(backend) / BINDS_PER_NODE;
    // Collected first: an iterator of closures held across the awaits below would keep the
    // future from being `Send` for every lifetime.
    let mut rows = Vec::with_capacity(turns.iter().map(|(turn, _)| turn.rows.len()).sum());
    for &(turn, session_id) in turns {
        rows.extend(turn.rows.iter().map(|row| (turn, session_id, row)));
    }
    let mut inserted = HashSet::with_capacity(rows.len());
    if rows.is_empty() {
        return Ok(inserted);
    }
    // Postgres takes every row in one statement of one shape (`node_document.rs`); SQLite
    // binds values, as many rows a statement as its bind limit allows.
    let statements: Vec<Sql> = if backend == DbBackend::Postgres {
        let document =
            node_document::render(rows.iter().map(|&(turn, session_id, row)| NodeInsert {
                org_id: turn.org_id,
                session_id,
                project: turn.project.as_deref(),
                created_at: clock.node_time(),
                row,
            }))?;
        let mut sql = Sql::new(backend);
        sql.push(NODE_COLUMNS)
            .push(node_document::SELECT)
            .bind_json(document)
            .push(node_document::RECORD);
        vec![sql]
    } else {
        rows.chunks(per_statement)
            .map(|chunk| {
                let mut sql = Sql::new(backend);
                sql.push(NODE_COLUMNS).push("VALUES ");
                for (i, &(turn, session_id, row)) in chunk.iter().enumerate() {
                    if i > 0 {
                        sql.push(", ");
                    }
                    push_node(&mut sql, turn, session_id, row, clock.node_time());
                }
                sql
            })
            .collect()
    };
    for mut sql in statements {
        sql.push(" ON CONFLICT (org_id, hash) DO NOTHING RETURNING org_id, hash");
        debug_assert!(sql.binds() <= bind_limit(backend));
        for row in txn.query_all_raw(sql.build()).await? {
            inserted.insert((
                row.try_get_by_index::<Uuid>(0)?,
                row.try_get_by_index::<String>(1)?,
            ));
        }
    }
    Ok(inserted)
}

/// Appends one node's `(…)` of values.
fn push_node(
    sql: &mut Sql,
    turn: &PreparedTurn<'_>,
    session_id: Uuid,
    row: &NodeRow,
    created_at: DateTime<Utc>,
) {
    let usage = row.usage;
    sql.push("(")
        .bind(turn.org_id)
        .push(", ")
        .bind(session_id)
        .push(", ")
        .bind(row.hash.as_str())
        .push(", ")
        .bind(row.parent_hash.clone())
        .push(", ")
        .bind_json(row.bucket.clone())
        .push(", ")
        .bind_json(row.content.clone())
        .push(", ")
        .bind(row.kind.clone())
        .push(", ")
        .bind(row.role.clone())
        .push(", ")
        .bind(row.model.clone())
        .push(", ")
        .bind(row.provider.clone())
        .push(", ")
        .bind(row.agent_name.clone())
        .push(", ")
        .bind(row.stop_reason.clone())
        .push(", ")
        .bind(usage.map(|u| u.prompt_tokens))
        .push(", ")
        .bind(usage.map(|u| u.completion_tokens))
        .push(", ")
        .bind(usage.map(|u| u.total_tokens))
        .push(", ")
        .bind(usage.map(|u| u.cache_creation_input_tokens))
        .push(", ")
        .bind(usage.map(|u| u.cache_read_input_tokens))
        .push(", ")
        .bind(usage.map(|u| u.total_duration_ns))
        .push(", ")
        .bind(usage.map(|u| u.prompt_duration_ns))
        .push(", ")
        .bind(turn.project.clone())
        .push(", ")
        .bind(created_at)
        .push(", ")
        .bind(row.node_kind.as_deref().map(str::to_owned))
        .push(", ")
        .bind(row.thread_id.clone())
        .push(if row.is_head { ", TRUE)" } else { ", FALSE)" });
}

/// Marks an already stored head as a turn head. True when this call did it, i.e. the turn is
/// counted now; false when the node was a head already (or is absent).
async fn mark_head<C: ConnectionTrait>(
    txn: &C,
    turn: &PreparedTurn<'_>,
) -> Result<bool, StoreError> {
    let head = &turn.head;
    let usage = head.usage;
    let mut sql = Sql::new(txn.get_database_backend());
    sql.push("UPDATE nodes SET is_turn_head = TRUE, stop_reason = COALESCE(")
        .bind(head.stop_reason.clone())
        .push(", stop_reason), prompt_tokens = COALESCE(")
        .bind(usage.map(|u| u.prompt_tokens))
        .push(", prompt_tokens), completion_tokens = COALESCE(")
        .bind(usage.map(|u| u.completion_tokens))
        .push(", completion_tokens), total_tokens = COALESCE(")
        .bind(usage.map(|u| u.total_tokens))
        .push(", total_tokens), cache_creation_input_tokens = COALESCE(")
        .bind(usage.map(|u| u.cache_creation_input_tokens))
        .push(", cache_creation_input_tokens), cache_read_input_tokens = COALESCE(")
        .bind(usage.map(|u| u.cache_read_input_tokens))
        .push(", cache_read_input_tokens), total_duration_ns = COALESCE(")
        .bind(usage.map(|u| u.total_duration_ns))
        .push(", total_duration_ns), prompt_duration_ns = COALESCE(")
        .bind(usage.map(|u| u.prompt_duration_ns))
        .push(", prompt_duration_ns) WHERE org_id = ")
        .bind(turn.org_id)
        .push(" AND hash = ")
        .bind(head.hash.as_str())
        .push(" AND NOT is_turn_head");
    Ok(txn.execute_raw(sql.build()).await?.rows_affected() == 1)
}

/// The envelope fields of an existing row that this turn changes.
#[derive(Debug, Default)]
struct EnvelopeChanges {
    auth_subject: bool,
    name: bool,
    cwd: bool,
    harness_version: bool,
    parent_session_id: Option<Uuid>,
    metadata: Option<Json>,
}

impl EnvelopeChanges {
    /// Reference merge rules: auth_subject is overwritten; name, cwd, version and parent are
    /// `COALESCE(new, old)`; metadata is shallow-merged. Only fields whose value would change
    /// are written, so a retried turn leaves the row untouched
    /// (docs/divergences.md#idempotent-retries).
    fn new(turn: &PreparedTurn<'_>, row: &sessions::Model, parent_id: Option<Uuid>) -> Self {
        let differs = |new: &Option<String>, old: &Option<String>| {
            new.is_some() && new.as_deref() != old.as_deref()
        };
        let metadata = turn
            .metadata
            .as_ref()
            .filter(|m| !session_row::metadata_unchanged(&row.harness_metadata, m))
            .map(|_| row.harness_metadata.clone());
        EnvelopeChanges {
            auth_subject: turn.auth_subject != row.auth_subject,
            name: differs(&turn.name, &row.name),
            cwd: differs(&turn.cwd, &row.cwd),
            harness_version: differs(&turn.harness_version, &row.harness_version),
            parent_session_id: parent_id.filter(|p| row.parent_session_id != Some(*p)),
            metadata,
        }
    }

    fn any(&self) -> bool {
        self.auth_subject
            || self.name
            || self.cwd
            || self.harness_version
            || self.parent_session_id.is_some()
            || self.metadata.is_some()
    }
}

/// The last statement of a turn: one `UPDATE sessions`, or nothing.
struct SessionUpdate<'a> {
    turn: &'a PreparedTurn<'a>,
    session_id: Uuid,
    now: DateTime<Utc>,
    /// Something new was stored: `last_seen_at` moves.
    touch: bool,
    /// The turn is counted: counters move.
    counted: bool,
    /// `None` when the row was inserted by this turn.
    envelope: Option<EnvelopeChanges>,
}

impl SessionUpdate<'_> {
    /// Whether the row changes at all.
    fn is_needed(&self) -> bool {
        self.touch || self.counted || self.envelope.as_ref().is_some_and(EnvelopeChanges::any)
    }

    async fn apply<C: ConnectionTrait>(self, txn: &C) -> Result<(), StoreError> {
        let mut sql = Sql::new(txn.get_database_backend());
        self.push(&mut sql);
        txn.execute_raw(sql.build()).await?;
        Ok(())
    }

    /// Appends the `UPDATE sessions` to `sql`. Only when [`Self::is_needed`].
    fn push(self, sql: &mut Sql) {
        let (turn, session_id, now) = (self.turn, self.session_id, self.now);
        let backend = sql.backend();
        let envelope = self.envelope.filter(EnvelopeChanges::any);
        sql.push("UPDATE sessions SET ");
        let mut sets = List::new(sql);
        if self.touch {
            sets.item().push("last_seen_at = ").bind(now);
        }
        if self.counted {
            // `turn_count` is an INT: at its maximum the counters stop, so no sum can
            // overflow and no later turn can fail on one (docs/storage.md#counting-a-turn-once).
            // SET expressions read the row as it was, so all four see the same count.
            sets.item().push(
                "turn_count = turn_count + CASE WHEN turn_count < 2147483647 THEN 1 ELSE 0 END",
            );
            for (column, tokens) in [
                ("total_input_tokens", turn.input_tokens),
                ("total_output_tokens", turn.output_tokens),
            ] {
                sets.item()
                    .push(column)
                    .push(" = ")
                    .push(column)
                    .push(" + CASE WHEN turn_count < 2147483647 THEN ")
                    .bind(tokens)
                    .push(" ELSE 0 END");
            }
            // REAL on SQLite: rounding after each addition keeps NUMERIC(28,4) semantics.
            let (open, close) = match backend {
                DbBackend::Postgres => ("total_cost_usd = total_cost_usd + ", ""),
                _ => ("total_cost_usd = ROUND(total_cost_usd + ", ", 4)"),
            };
            sets.item()
                .push(open)
                .push("CASE WHEN turn_count < 2147483647 THEN ")
                .bind(turn.cost_usd)
                .push(" ELSE 0 END")
                .push(close);
        }
        if let Some(changes) = envelope {
            if changes.auth_subject {
                sets.item()
                    .push("auth_subject = ")
                    .bind(turn.auth_subject.as_str());
            }
            for (changed, column, value) in [
                (changes.name, "name", &turn.name),
                (changes.cwd, "cwd", &turn.cwd),
                (
                    changes.harness_version,
                    "harness_version",
                    &turn.harness_version,
                ),
            ] {
                if changed {
                    sets.item()
                        .push(column)
                        .push(" = COALESCE(")
                        .bind(value.clone())
                        .push(", ")
                        .push(column)
                        .push(")");
                }
            }
            if let Some(parent) = changes.parent_session_id {
                sets.item().push("parent_session_id = ").bind(parent);
            }
            // A placeholder taken over by the parent's real turn keeps the earlier start.
            sets.item()
                .push("started_at = CASE WHEN started_at > ")
                .bind(now)
                .push(" THEN ")
                .bind(now)
                .push(" ELSE started_at END");
            if let (Some(current), Some(new)) = (&changes.metadata, &turn.metadata) {
                session_row::push_metadata_merge(sets.item(), current, new);
            }
        }
        debug_assert!(!sets.is_empty());
        sql.push(" WHERE id = ").bind(session_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{Bucket, ChainNode};

    fn node(hash: &str, parent: Option<&str>) -> ChainNode {
        ChainNode {
            hash: hash.into(),
            parent_hash: parent.map(Into::into),
            bucket: Bucket::default(),
            kind: None,
            thread_id: String::new(),
            stop_reason: String::new(),
            usage: None,
        }
    }

    fn injected(hash: &str, parent: Option<&str>) -> ChainNode {
        ChainNode {
            kind: Some(NodeKind::Injected("mcp-instructions")),
            ..node(hash, parent)
        }
    }

    #[test]
    fn accepts_side_branches_of_injected_nodes() {
        // Leading injected nodes are roots, as is the first spine node after them.
        check(vec![
            injected("i1", None),
            injected("i2", None),
            node("a", None),
            injected("i3", Some("a")),
            node("b", Some("a")),
            node("c", Some("b")),
        ])
        .unwrap();
        check(vec![injected("i1", None), node("r", None)]).unwrap();
    }

    #[test]
    fn rejects_nodes_hung_off_an_injected_node_or_the_wrong_spine_node() {
        let err = check(vec![
            node("a", None),
            injected("i", Some("a")),
            node("b", Some("i")),
        ])
        .unwrap_err();
        assert!(
            err.contains("nodes[2]") && err.contains("nodes[0]"),
            "{err}"
        );
        let err = check(vec![injected("i", None), node("b", Some("i"))]).unwrap_err();
        assert!(err.contains("no node before it advances"), "{err}");
        let err = check(vec![node("a", None), injected("i", None)]).unwrap_err();
        assert!(err.contains("nodes[1] has no ParentHash"), "{err}");
    }

    fn check(nodes: Vec<ChainNode>) -> Result<(), String> {
        validate_chain(&Chain { nodes }).map_err(|e| e.to_string())
    }

    #[test]
    fn accepts_a_single_root_without_parent_hash() {
        assert_eq!(check(vec![node("a", None)]), Ok(()));
    }

    #[test]
    fn accepts_a_single_root_with_an_empty_parent_hash() {
        assert_eq!(check(vec![node("a", Some(""))]), Ok(()));
    }

    #[test]
    fn accepts_a_well_ordered_chain() {
        let chain = vec![node("a", None), node("b", Some("a")), node("c", Some("b"))];
        assert_eq!(check(chain), Ok(()));
    }

    #[test]
    fn rejects_an_empty_chain() {
        assert_eq!(
            check(vec![]),
            Err("ingest turn: no nodes supplied".to_owned())
        );
    }

    #[test]
    fn rejects_a_root_with_a_parent_hash() {
        let err = check(vec![node("a", Some("z"))]).unwrap_err();
        assert_eq!(
            err,
            r#"ingest turn: nodes[0] must be the conversation root: ParentHash="z""#
        );
    }

    #[test]
    fn rejects_a_non_root_node_missing_its_parent_hash() {
        let err = check(vec![node("a", None), node("b", None)]).unwrap_err();
        assert_eq!(
            err,
            r#"ingest turn: nodes[1] has no ParentHash but expected "a""#
        );
    }

    #[test]
    fn rejects_a_non_root_node_with_an_empty_parent_hash() {
        let err = check(vec![node("a", None), node("b", Some(""))]).unwrap_err();
        assert!(err.contains("nodes[1]"), "{err}");
    }

    #[test]
    fn rejects_a_scrambled_chain() {
        let chain = vec![node("a", None), node("b", Some("a")), node("c", Some("a"))];
        let err = check(chain).unwrap_err();
        assert_eq!(
            err,
            r#"ingest turn: nodes[2].ParentHash="a" does not chain to nodes[1].Hash="b""#
        );
    }
}
