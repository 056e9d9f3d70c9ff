//! Importing a database of the reference (tapes f237b6e, Postgres): its `sessions` and
//! `nodes` rows copied as they are, every node under its own hash, then linked to its
//! session by the backfill statement (docs/storage.md#backfill).
//!
//! The source is read in keyset pages (`sessions` by id, `nodes` by `(org_id, hash)`), so
//! memory stays bounded at any size. Each page is one transaction on the target (a page of
//! sessions one statement, a page of nodes an insert and one update per session). Rows the
//! target holds already are left as they are (`ON CONFLICT DO NOTHING`), and a node is
//! linked only while it has no session, so running the import again writes nothing.

use std::collections::BTreeMap;

use entity::{nodes, sessions};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, FromQueryResult, QueryResult, Statement,
    TransactionTrait,
};
use uuid::Uuid;

use super::StoreError;
use super::commit::Store;
use super::connect::{StoreOptions, connect};
use super::sql::Sql;

/// Rows read and written per page.
pub const TAPES_PAGE: u64 = 500;

/// The natural key of a session: what links a row of one database to the other's, whose
/// ids may differ when the target held the session before.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NaturalKey {
    pub org_id: Uuid,
    pub harness_id: String,
    pub harness_session_id: String,
}

/// A row of the source with the natural key of the session it points at: a session's fork
/// parent, a node's session.
#[derive(Debug, Clone)]
pub struct Linked<M> {
    pub row: M,
    pub link: Option<NaturalKey>,
}

/// A session row of the source, linked to its fork parent.
pub type TapesSession = Linked<sessions::Model>;
/// A node row of the source, linked to its session.
pub type TapesNode = Linked<nodes::Model>;

/// What a page wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageWritten {
    /// Rows inserted; the others were stored already.
    pub inserted: u64,
    /// Nodes given their session, or sessions given their fork parent.
    pub linked: u64,
}

/// A reference database opened for reading.
pub struct TapesDb {
    db: DatabaseConnection,
}

const SESSION_COLUMNS: &str = "s.id, s.org_id, s.auth_subject, s.harness_id, \
     s.harness_session_id, s.name, s.cwd, s.harness_version, s.parent_session_id, \
     s.started_at, s.last_seen_at, s.ended_at, s.harness_metadata, s.total_input_tokens, \
     s.total_output_tokens, s.total_cost_usd, s.turn_count";

const NODE_COLUMNS: &str = "n.org_id, n.hash, n.parent_hash, n.bucket, n.type, n.role, \
     n.content, n.model, n.provider, n.agent_name, n.stop_reason, n.prompt_tokens, \
     n.completion_tokens, n.total_tokens, n.cache_creation_input_tokens, \
     n.cache_read_input_tokens, n.total_duration_ns, n.prompt_duration_ns, n.project, \
     n.created_at, n.session_id, false AS is_turn_head";

impl TapesDb {
    /// Opens the reference database at `url` (Postgres only: the reference's production
    /// backend, whose schema docs/storage.md describes).
    pub async fn open(url: &str) -> Result<TapesDb, StoreError> {
        let db = connect(url, &StoreOptions::default()).await?;
        if db.get_database_backend() != DbBackend::Postgres {
            return Err(StoreError::InvalidTurn(
                "--from-tapes reads a Postgres database".into(),
            ));
        }
        Ok(TapesDb { db })
    }

    /// How many sessions and nodes it holds, for the progress bar.
    pub async fn counts(&self) -> Result<(u64, u64), StoreError> {
        let count = |table: &str| {
            Statement::from_string(
                DbBackend::Postgres,
                format!("SELECT COUNT(*) AS n FROM {table}"),
            )
        };
        let mut counts = [0u64; 2];
        for (slot, table) in counts.iter_mut().zip(["sessions", "nodes"]) {
            let row = self.db.query_one_raw(count(table)).await?;
            let n: i64 = row.map_or(Ok(0), |r| r.try_get("", "n"))?;
            *slot = n.max(0) as u64;
        }
        Ok((counts[0], counts[1]))
    }

    /// The sessions after `after` in id order, at most `limit`.
    pub async fn sessions(
        &self,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<TapesSession>, StoreError> {
        let mut sql = Sql::new(DbBackend::Postgres);
        sql.push(&format!(
            "SELECT {SESSION_COLUMNS}, p.org_id AS p_org_id, p.harness_id AS p_harness_id, \
             p.harness_session_id AS p_harness_session_id \
             FROM sessions s LEFT JOIN sessions p ON p.id = s.parent_session_id"
        ));
        if let Some(after) = after {
            sql.push(" WHERE s.id > ").bind(after);
        }
        sql.push(" ORDER BY s.id LIMIT ").bind(limit as i64);
        self.page(sql, "p_").await
    }

    /// The nodes after `after` in `(org_id, hash)` order, at most `limit`.
    pub async fn nodes(
        &self,
        after: Option<(Uuid, String)>,
        limit: u64,
    ) -> Result<Vec<TapesNode>, StoreError> {
        let mut sql = Sql::new(DbBackend::Postgres);
        sql.push(&format!(
            "SELECT {NODE_COLUMNS}, s.org_id AS s_org_id, s.harness_id AS s_harness_id, \
             s.harness_session_id AS s_harness_session_id \
             FROM nodes n LEFT JOIN sessions s ON s.id = n.session_id"
        ));
        if let Some((org, hash)) = after {
            sql.push(" WHERE (n.org_id, n.hash) > (")
                .bind(org)
                .push(", ")
                .bind(hash)
                .push(")");
        }
        sql.push(" ORDER BY n.org_id, n.hash LIMIT ")
            .bind(limit as i64);
        self.page(sql, "s_").await
    }

    /// The rows `sql` selects, each with the natural key its `prefix`ed columns hold.
    async fn page<M: FromQueryResult>(
        &self,
        sql: Sql,
        prefix: &str,
    ) -> Result<Vec<Linked<M>>, StoreError> {
        let rows = self.db.query_all_raw(sql.build()).await?;
        rows.iter()
            .map(|r| {
                Ok(Linked {
                    row: M::from_query_result(r, "")?,
                    link: natural_key(r, prefix)?,
                })
            })
            .collect()
    }

    pub async fn close(self) {
        self.db.close().await.ok();
    }
}

fn natural_key(row: &QueryResult, prefix: &str) -> Result<Option<NaturalKey>, StoreError> {
    let org: Option<Uuid> = row.try_get("", &format!("{prefix}org_id"))?;
    let harness_id: Option<String> = row.try_get("", &format!("{prefix}harness_id"))?;
    let harness_session_id: Option<String> =
        row.try_get("", &format!("{prefix}harness_session_id"))?;
    Ok(match (org, harness_id, harness_session_id) {
        (Some(org_id), Some(harness_id), Some(harness_session_id)) => Some(NaturalKey {
            org_id,
            harness_id,
            harness_session_id,
        }),
        _ => None,
    })
}

/// `(SELECT id FROM sessions WHERE <natural key>)`.
fn session_id_of(sql: &mut Sql, key: &NaturalKey) {
    sql.push("(SELECT id FROM sessions WHERE org_id = ")
        .bind(key.org_id)
        .push(" AND harness_id = ")
        .bind(key.harness_id.as_str())
        .push(" AND harness_session_id = ")
        .bind(key.harness_session_id.as_str())
        .push(")");
}

fn json_text(value: &serde_json::Value) -> String {
    value.to_string()
}

impl Store {
    /// Inserts a page of the source's sessions in one statement, ids, counters and times as
    /// they are, without their fork parents (`link_tapes_parents` sets them once every
    /// session is in). A session the target holds under its natural key or id is left as it
    /// is.
    pub async fn import_tapes_sessions(
        &self,
        page: &[TapesSession],
    ) -> Result<PageWritten, StoreError> {
        if page.is_empty() {
            return Ok(PageWritten::default());
        }
        let db = self.connection();
        let mut sql = Sql::new(db.get_database_backend());
        sql.push(
            "INSERT INTO sessions (id, org_id, auth_subject, harness_id, harness_session_id, \
             name, cwd, harness_version, started_at, last_seen_at, ended_at, \
             harness_metadata, total_input_tokens, total_output_tokens, total_cost_usd, \
             turn_count) VALUES ",
        );
        for (i, session) in page.iter().enumerate() {
            let s = &session.row;
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(").bind(s.id).push(", ").bind(s.org_id);
            for text in [&s.auth_subject, &s.harness_id, &s.harness_session_id] {
                sql.push(", ").bind(text.as_str());
            }
            for text in [&s.name, &s.cwd, &s.harness_version] {
                sql.push(", ").bind(text.clone());
            }
            sql.push(", ").bind(s.started_at);
            sql.push(", ").bind(s.last_seen_at);
            sql.push(", ").bind(s.ended_at).push(", ");
            sql.bind_json(json_text(&s.harness_metadata));
            sql.push(", ").bind(s.total_input_tokens);
            sql.push(", ").bind(s.total_output_tokens);
            sql.push(", ").bind(s.total_cost_usd);
            sql.push(", ").bind(s.turn_count).push(")");
        }
        // Without a conflict target: a row that collides on its id or on its natural key is
        // skipped alike.
        sql.push(" ON CONFLICT DO NOTHING");
        let inserted = db.execute_raw(sql.build()).await?.rows_affected();
        Ok(PageWritten {
            inserted,
            linked: 0,
        })
    }

    /// Points each session of the page that has none at its fork parent, found by the
    /// parent's natural key.
    pub async fn link_tapes_parents(
        &self,
        page: &[TapesSession],
    ) -> Result<PageWritten, StoreError> {
        let db = self.connection();
        let txn = db.begin().await?;
        let mut written = PageWritten::default();
        for session in page {
            let Some(parent) = &session.link else {
                continue;
            };
            let s = &session.row;
            let mut sql = Sql::new(db.get_database_backend());
            sql.push("UPDATE sessions SET parent_session_id = ");
            session_id_of(&mut sql, parent);
            sql.push(" WHERE org_id = ")
                .bind(s.org_id)
                .push(" AND harness_id = ")
                .bind(s.harness_id.as_str())
                .push(" AND harness_session_id = ")
                .bind(s.harness_session_id.as_str())
                .push(" AND parent_session_id IS NULL");
            written.linked += txn.execute_raw(sql.build()).await?.rows_affected();
        }
        txn.commit().await?;
        Ok(written)
    }

    /// Inserts a page of the source's nodes under their own hashes (a node the org holds
    /// already is kept as it is), then links each to its session by the backfill
    /// statement: only nodes that have no session are linked, never reassigned.
    pub async fn import_tapes_nodes(&self, page: &[TapesNode]) -> Result<PageWritten, StoreError> {
        let db = self.connection();
        let backend = db.get_database_backend();
        let txn = db.begin().await?;
        let mut written = PageWritten::default();
        if !page.is_empty() {
            let mut sql = Sql::new(backend);
            sql.push(
                "INSERT INTO nodes (org_id, hash, parent_hash, bucket, type, role, content, \
                 model, provider, agent_name, stop_reason, prompt_tokens, completion_tokens, \
                 total_tokens, cache_creation_input_tokens, cache_read_input_tokens, \
                 total_duration_ns, prompt_duration_ns, project, created_at, is_turn_head) \
                 VALUES ",
            );
            for (i, node) in page.iter().enumerate() {
                let n = &node.row;
                if i > 0 {
                    sql.push(", ");
                }
                sql.push("(")
                    .bind(n.org_id)
                    .push(", ")
                    .bind(n.hash.as_str());
                sql.push(", ").bind(n.parent_hash.clone()).push(", ");
                match &n.bucket {
                    Some(bucket) => sql.bind_json(json_text(bucket)),
                    None => sql.push("NULL"),
                };
                sql.push(", ").bind(n.kind.clone());
                sql.push(", ").bind(n.role.clone()).push(", ");
                match &n.content {
                    Some(content) => sql.bind_json(json_text(content)),
                    None => sql.push("NULL"),
                };
                for text in [&n.model, &n.provider, &n.agent_name, &n.stop_reason] {
                    sql.push(", ").bind(text.clone());
                }
                for tokens in [
                    n.prompt_tokens,
                    n.completion_tokens,
                    n.total_tokens,
                    n.cache_creation_input_tokens,
                    n.cache_read_input_tokens,
                ] {
                    sql.push(", ").bind(tokens);
                }
                sql.push(", ").bind(n.total_duration_ns);
                sql.push(", ").bind(n.prompt_duration_ns);
                sql.push(", ").bind(n.project.clone());
                sql.push(", ")
                    .bind(n.created_at)
                    .push(", ")
                    .bind(false)
                    .push(")");
            }
            sql.push(" ON CONFLICT (org_id, hash) DO NOTHING");
            written.inserted = txn.execute_raw(sql.build()).await?.rows_affected();
        }
        let mut by_session: BTreeMap<&NaturalKey, Vec<&str>> = BTreeMap::new();
        for node in page {
            if let Some(key) = &node.link {
                by_session.entry(key).or_default().push(&node.row.hash);
            }
        }
        for (key, hashes) in by_session {
            let mut sql = Sql::new(backend);
            sql.push("UPDATE nodes SET session_id = ");
            session_id_of(&mut sql, key);
            sql.push(" WHERE org_id = ")
                .bind(key.org_id)
                .push(" AND session_id IS NULL AND hash IN (");
            for (i, hash) in hashes.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.bind(*hash);
            }
            sql.push(")");
            written.linked += txn.execute_raw(sql.build()).await?.rows_affected();
        }
        txn.commit().await?;
        Ok(written)
    }
}
