//! The reads the HTTP layer needs, every one scoped to an org
//! (docs/divergences.md#org-scoping).

use entity::{nodes, sessions};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbBackend, EntityTrait, FromQueryResult, JoinType,
    QueryFilter, QueryOrder, QuerySelect, RelationTrait,
};
use uuid::Uuid;

use super::sql::Sql;
use super::{StoreError, sanitize};

/// A value looked up as it is stored: U+0000 becomes U+FFFD
/// (docs/divergences.md#nul-characters). It then matches what was written, and Postgres,
/// whose text cannot hold U+0000, does not refuse the query.
fn stored(text: &str) -> std::borrow::Cow<'_, str> {
    sanitize::text(text, &mut 0)
}

/// How far an ancestry walk goes (the reference's limit).
pub const MAX_ANCESTRY_DEPTH: i32 = 5000;

/// One line of `GET /v1/ingest/nodes`. Absent columns read as `""`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSummary {
    pub hash: String,
    pub role: String,
    pub provider: String,
    pub model: String,
    pub agent_name: String,
}

/// The harness identity of the session a node belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionIdentity {
    pub harness_id: String,
    pub harness_session_id: String,
}

/// The org's first `limit` nodes ordered by `created_at`, then hash; only those of `agent`
/// when given. The limit is applied by the database, so a large org is never read whole.
pub async fn list_nodes(
    db: &DatabaseConnection,
    org_id: Uuid,
    agent: Option<&str>,
    limit: u64,
) -> Result<Vec<NodeSummary>, StoreError> {
    let mut query = nodes::Entity::find()
        .select_only()
        .columns([
            nodes::Column::Hash,
            nodes::Column::Role,
            nodes::Column::Provider,
            nodes::Column::Model,
            nodes::Column::AgentName,
        ])
        .filter(nodes::Column::OrgId.eq(org_id));
    if let Some(agent) = agent {
        query = query.filter(nodes::Column::AgentName.eq(stored(agent)));
    }
    let rows = query
        .order_by_asc(nodes::Column::CreatedAt)
        .order_by_asc(nodes::Column::Hash)
        .limit(limit)
        .into_tuple::<(
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        )>()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(hash, role, provider, model, agent_name)| NodeSummary {
            hash,
            role: role.unwrap_or_default(),
            provider: provider.unwrap_or_default(),
            model: model.unwrap_or_default(),
            agent_name: agent_name.unwrap_or_default(),
        })
        .collect())
}

/// The node and its ancestors within the org, root first; empty when the node is absent.
/// The walk stops after [`MAX_ANCESTRY_DEPTH`] parents, or at a parent the org does not hold.
///
/// Postgres runs the org-scoped `ancestry_chains_rows` function; SQLite runs the same walk as
/// a recursive CTE.
pub async fn ancestry(
    db: &DatabaseConnection,
    org_id: Uuid,
    hash: &str,
) -> Result<Vec<nodes::Model>, StoreError> {
    let hash = stored(hash);
    let hash = hash.as_ref();
    let backend = db.get_database_backend();
    let mut sql = Sql::new(backend);
    match backend {
        DbBackend::Postgres => {
            sql.push("SELECT * FROM ancestry_chains_rows(")
                .bind(org_id)
                .push(", ARRAY[")
                .bind(hash)
                .push("]::text[], ")
                .bind(MAX_ANCESTRY_DEPTH)
                .push(") ORDER BY depth DESC");
        }
        _ => {
            sql.push(
                "WITH RECURSIVE walk(hash, parent_hash, depth) AS ( \
                 SELECT hash, parent_hash, 0 FROM nodes WHERE org_id = ",
            )
            .bind(org_id)
            .push(" AND hash = ")
            .bind(hash)
            .push(
                " UNION ALL SELECT p.hash, p.parent_hash, w.depth + 1 FROM walk w \
                 JOIN nodes p ON p.org_id = ",
            )
            .bind(org_id)
            .push(" AND p.hash = w.parent_hash WHERE w.depth < ")
            .bind(MAX_ANCESTRY_DEPTH)
            .push(") SELECT n.* FROM walk w JOIN nodes n ON n.org_id = ")
            .bind(org_id)
            .push(" AND n.hash = w.hash ORDER BY w.depth DESC");
        }
    }
    Ok(nodes::Model::find_by_statement(sql.build()).all(db).await?)
}

/// The harness identity of the session the org's node `hash` belongs to
/// (docs/storage.md#identity-reads);
/// `None` when the org holds no such node or the node has no session.
pub async fn identity_by_hash(
    db: &DatabaseConnection,
    org_id: Uuid,
    hash: &str,
) -> Result<Option<SessionIdentity>, StoreError> {
    let row = nodes::Entity::find()
        .select_only()
        .join(JoinType::InnerJoin, nodes::Relation::Session.def())
        .column(sessions::Column::HarnessId)
        .column(sessions::Column::HarnessSessionId)
        .filter(nodes::Column::OrgId.eq(org_id))
        .filter(nodes::Column::Hash.eq(stored(hash)))
        .filter(sessions::Column::OrgId.eq(org_id))
        .into_tuple::<(String, String)>()
        .one(db)
        .await?;
    Ok(row.map(|(harness_id, harness_session_id)| SessionIdentity {
        harness_id,
        harness_session_id,
    }))
}
