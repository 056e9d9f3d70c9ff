//! Rebuilding a database's chains under another rule set (docs/storage.md#rederive), one
//! session per transaction, then one last transaction that deletes what no chain needs
//! any more and records the new rules.
//!
//! Old nodes stay while sessions are rebuilt: nodes are content-addressed per org and shared
//! by sessions, so a node one session no longer needs may still be another's. Each rebuilt
//! session's new nodes are listed in `rederive_nodes` and the session in
//! `rederive_sessions`, in the transaction that rebuilds it, so a run killed at any point
//! resumes where it stopped. The last transaction deletes every node stamped by a rebuilt
//! session that no new chain lists and that no session left alone reaches (its nodes'
//! ancestors), records the rules and empties both tables.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use entity::sessions;
use sea_orm::prelude::Decimal;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use uuid::Uuid;

use super::chain_rules::record_rules;
use super::connect::begin_write;
use super::ingest::{self, Write};
use super::session_row::{self, NaturalKey};
use super::sql::{Sql, bind_limit};
use super::{Store, StoreError, sanitize};
use crate::merkle::{ChainNode, Rules};
use crate::turn::{KnownHashes, Turn};

/// The counters of a session, which a rebuild must leave as they were. Turns and tokens
/// come out of the raw turns again; the cost is kept as it was charged, since the price
/// table may have changed since the turns arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    pub turns: i32,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: Decimal,
}

impl Counters {
    /// The same turns and tokens.
    fn same_turns(&self, other: &Counters) -> bool {
        (self.turns, self.input_tokens, self.output_tokens)
            == (other.turns, other.input_tokens, other.output_tokens)
    }

    fn of(row: &sessions::Model) -> Self {
        Counters {
            turns: row.turn_count,
            input_tokens: row.total_input_tokens,
            output_tokens: row.total_output_tokens,
            cost_usd: row.total_cost_usd.normalize(),
        }
    }
}

/// A session to rebuild, as it was before.
#[derive(Debug, Clone)]
pub struct SessionBefore {
    pub id: Uuid,
    pub org_id: Uuid,
    pub harness_id: String,
    pub harness_session_id: String,
    pub counters: Counters,
    pub last_seen_at: DateTime<Utc>,
}

/// What became of a session handed to [`Store::rebuild_session`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rebuild {
    Rebuilt,
    /// Under the new rules its turns belong to another session (synthetic session ids are
    /// the root's hash, which the rules change): left as it was.
    WouldMove {
        harness_session_id: String,
    },
    /// Replayed, its turns or tokens would not be those it had (a turn that another session
    /// counted first): left as it was.
    CountersDiffer {
        after: Counters,
    },
}

/// Rows listed per statement.
const PAGE: u64 = 500;

impl Store {
    /// Every session, by id, after `after`: at most [`PAGE`].
    pub async fn sessions_to_rederive(
        &self,
        after: Option<Uuid>,
    ) -> Result<Vec<SessionBefore>, StoreError> {
        let mut query = sessions::Entity::find()
            .order_by_asc(sessions::Column::Id)
            .limit(PAGE);
        if let Some(after) = after {
            query = query.filter(sessions::Column::Id.gt(after));
        }
        Ok(query
            .all(self.connection())
            .await?
            .into_iter()
            .map(|row| SessionBefore {
                counters: Counters::of(&row),
                id: row.id,
                org_id: row.org_id,
                harness_id: row.harness_id,
                harness_session_id: row.harness_session_id,
                last_seen_at: row.last_seen_at,
            })
            .collect())
    }

    /// How many sessions there are.
    pub async fn session_count(&self) -> Result<u64, StoreError> {
        Ok(sessions::Entity::find().count(self.connection()).await?)
    }

    /// The sessions an unfinished rederive rebuilt, with the rule set it rebuilt them under.
    pub async fn rederived(&self) -> Result<Vec<(Uuid, String)>, StoreError> {
        let mut sql = Sql::new(self.backend());
        sql.push("SELECT session_id, rules FROM rederive_sessions");
        let rows = self.connection().query_all_raw(sql.build()).await?;
        rows.into_iter()
            .map(|row| Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?)))
            .collect()
    }

    /// Rebuilds `session` from `turns` (its raw turns' ids, each with the turn derived under
    /// `rules`, in the order they were stored), in one transaction: its head marks and
    /// counters start again from zero, the turns commit as a fresh ingest would commit them
    /// (new nodes, heads, counters, envelope), each raw turn names its new head, and the
    /// session is listed as rebuilt. Rolled back, and answered so, when the turns belong to
    /// another session or the counters come out different.
    pub async fn rebuild_session(
        &self,
        session: &SessionBefore,
        turns: &[(Uuid, Turn)],
        rules: &Rules,
    ) -> Result<Rebuild, StoreError> {
        let txn = begin_write(self.connection()).await?;
        let outcome = rebuild(&txn, session, turns, rules, self.project()).await;
        match outcome {
            Ok(Rebuild::Rebuilt) => {
                txn.commit().await?;
                Ok(Rebuild::Rebuilt)
            }
            other => {
                txn.rollback().await.ok();
                other
            }
        }
    }

    /// Ends a rederive whose every rebuildable session is rebuilt: deletes the nodes only
    /// the old chains of rebuilt sessions held, records `rules` and empties the progress
    /// tables, in one transaction. Returns how many nodes were deleted.
    pub async fn finish_rederive(&self, rules: &Rules) -> Result<u64, StoreError> {
        let txn = self.connection().begin().await?;
        let mut sweep = Sql::new(self.backend());
        sweep.push(SWEEP);
        let deleted = txn.execute_raw(sweep.build()).await?.rows_affected();
        record_rules(&txn, rules).await?;
        for table in ["rederive_nodes", "rederive_sessions"] {
            let mut clear = Sql::new(self.backend());
            clear.push("DELETE FROM ").push(table);
            txn.execute_raw(clear.build()).await?;
        }
        txn.commit().await?;
        Ok(deleted)
    }
}

/// The nodes stamped by a rebuilt session that no new chain lists and that no session left
/// alone reaches: `keep` walks up from every node of a session not rebuilt (or of none).
const SWEEP: &str = "WITH RECURSIVE keep(org_id, hash) AS (
        SELECT n.org_id, n.parent_hash FROM nodes n
        WHERE n.parent_hash IS NOT NULL
          AND (n.session_id IS NULL
               OR n.session_id NOT IN (SELECT session_id FROM rederive_sessions))
        UNION
        SELECT p.org_id, p.parent_hash FROM keep k
        JOIN nodes p ON p.org_id = k.org_id AND p.hash = k.hash
        WHERE p.parent_hash IS NOT NULL
    )
    DELETE FROM nodes
    WHERE session_id IN (SELECT session_id FROM rederive_sessions)
      AND NOT EXISTS (SELECT 1 FROM rederive_nodes r
                      WHERE r.org_id = nodes.org_id AND r.hash = nodes.hash)
      AND NOT EXISTS (SELECT 1 FROM keep k
                      WHERE k.org_id = nodes.org_id AND k.hash = nodes.hash)";

async fn rebuild<C: ConnectionTrait>(
    txn: &C,
    session: &SessionBefore,
    turns: &[(Uuid, Turn)],
    rules: &Rules,
    project: Option<&str>,
) -> Result<Rebuild, StoreError> {
    let backend = txn.get_database_backend();
    let mut nul = 0;
    // Every turn must land in one session: this one, or this one under its new synthetic id
    // when nothing else holds that id.
    let mut keys = turns.iter().map(|(_, turn)| {
        (
            sanitize::text(&turn.key.harness_id, &mut nul).into_owned(),
            sanitize::text(&turn.key.harness_session_id, &mut nul).into_owned(),
        )
    });
    if let Some((harness_id, harness_session_id)) = keys.next() {
        if let Some(other) = keys.find(|k| k.0 != harness_id || k.1 != harness_session_id) {
            return Ok(Rebuild::WouldMove {
                harness_session_id: other.1,
            });
        }
        if harness_id != session.harness_id || harness_session_id != session.harness_session_id {
            let key = NaturalKey {
                org_id: session.org_id,
                harness_id: &harness_id,
                harness_session_id: &harness_session_id,
            };
            if session_row::find(txn, &key).await?.is_some() {
                return Ok(Rebuild::WouldMove { harness_session_id });
            }
            let mut rename = Sql::new(backend);
            rename
                .push("UPDATE sessions SET harness_id = ")
                .bind(harness_id.as_str())
                .push(", harness_session_id = ")
                .bind(harness_session_id.as_str())
                .push(" WHERE id = ")
                .bind(session.id);
            txn.execute_raw(rename.build()).await?;
        }
    }

    // The session's own heads count again, unless a rebuilt chain already counted them.
    let mut unmark = Sql::new(backend);
    unmark
        .push("UPDATE nodes SET is_turn_head = FALSE WHERE org_id = ")
        .bind(session.org_id)
        .push(" AND session_id = ")
        .bind(session.id)
        .push(
            " AND is_turn_head AND NOT EXISTS (SELECT 1 FROM rederive_nodes r \
             WHERE r.org_id = nodes.org_id AND r.hash = nodes.hash)",
        );
    txn.execute_raw(unmark.build()).await?;
    let mut reset = Sql::new(backend);
    reset
        .push(
            "UPDATE sessions SET turn_count = 0, total_input_tokens = 0, \
             total_output_tokens = 0, total_cost_usd = 0 WHERE id = ",
        )
        .bind(session.id);
    txn.execute_raw(reset.build()).await?;

    let known = KnownHashes::default();
    let writes: Vec<Write> = turns
        .iter()
        .map(|(_, turn)| Write {
            turn,
            known: &known,
        })
        .collect();
    let committed = ingest::within(txn, &writes, project).await?;

    for ((raw_id, _), committed) in turns.iter().zip(&committed) {
        let mut head = Sql::new(backend);
        head.push("UPDATE raw_turns SET head_hash = ")
            .bind(committed.head.as_str())
            .push(", session_id = ")
            .bind(committed.session_id)
            .push(" WHERE id = ")
            .bind(*raw_id);
        txn.execute_raw(head.build()).await?;
    }
    // Each node once, as its first occurrence gives it.
    let mut seen = HashSet::new();
    let nodes: Vec<&ChainNode> = turns
        .iter()
        .flat_map(|(_, turn)| turn.chain.nodes.iter())
        .filter(|n| seen.insert(n.hash.as_str()))
        .collect();
    restamp(txn, session.org_id, &nodes).await?;
    list_nodes(txn, session.org_id, nodes.iter().map(|n| n.hash.as_str())).await?;

    let mut touch = Sql::new(backend);
    touch
        .push("UPDATE sessions SET last_seen_at = ")
        .bind(session.last_seen_at)
        .push(", total_cost_usd = ")
        .bind(session.counters.cost_usd)
        .push(" WHERE id = ")
        .bind(session.id);
    txn.execute_raw(touch.build()).await?;
    let after = sessions::Entity::find_by_id(session.id)
        .one(txn)
        .await?
        .map(|row| Counters::of(&row))
        .ok_or_else(|| StoreError::InvalidTurn(format!("session {} vanished", session.id)))?;
    if !after.same_turns(&session.counters) {
        return Ok(Rebuild::CountersDiffer { after });
    }

    let mut done = Sql::new(backend);
    done.push("INSERT INTO rederive_sessions (session_id, rules) VALUES (")
        .bind(session.id)
        .push(", ")
        .bind(rules.name)
        .push(")");
    txn.execute_raw(done.build()).await?;
    Ok(Rebuild::Rebuilt)
}

/// Gives the nodes of `org` that no rebuilt chain holds yet the kind and thread id the new
/// rules give them: a node the old rules hashed alike kept the old rules' (none, under
/// `tapes-f237b6e`), and a fresh ingest would store the new.
async fn restamp<C: ConnectionTrait>(
    txn: &C,
    org: Uuid,
    nodes: &[&ChainNode],
) -> Result<(), StoreError> {
    let backend = txn.get_database_backend();
    let mut nul = 0;
    for chunk in nodes.chunks(bind_limit(backend) / 3 - 1) {
        let mut sql = Sql::new(backend);
        sql.push(
            "UPDATE nodes SET node_kind = v.column2, thread_id = v.column3 \
             FROM (SELECT * FROM (VALUES ",
        );
        for (i, node) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            let thread = (!node.thread_id.is_empty())
                .then(|| sanitize::text(&node.thread_id, &mut nul).into_owned());
            sql.push("(")
                .bind(node.hash.as_str())
                .push(", ")
                .bind(node.kind.map(|k| k.stored().into_owned()))
                .push(", ")
                .bind(thread)
                .push(")");
        }
        sql.push(") AS t) AS v WHERE nodes.org_id = ")
            .bind(org)
            .push(
                " AND nodes.hash = v.column1 AND NOT EXISTS (SELECT 1 FROM rederive_nodes r \
                 WHERE r.org_id = nodes.org_id AND r.hash = nodes.hash)",
            );
        txn.execute_raw(sql.build()).await?;
    }
    Ok(())
}

/// Lists `hashes` as nodes of a rebuilt chain of `org`.
async fn list_nodes<'a, C: ConnectionTrait>(
    txn: &C,
    org: Uuid,
    hashes: impl Iterator<Item = &'a str>,
) -> Result<(), StoreError> {
    let backend: DbBackend = txn.get_database_backend();
    let hashes: Vec<&str> = hashes.collect();
    for chunk in hashes.chunks(bind_limit(backend) / 2) {
        let mut sql = Sql::new(backend);
        sql.push("INSERT INTO rederive_nodes (org_id, hash) VALUES ");
        for (i, hash) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(").bind(org).push(", ").bind(*hash).push(")");
        }
        sql.push(" ON CONFLICT (org_id, hash) DO NOTHING");
        txn.execute_raw(sql.build()).await?;
    }
    Ok(())
}
