//! The sessions read API's queries (`GET /v1/sessions…`), every one scoped to an org and
//! served by one index (migration `m20261204_000001_session_reads`, docs/storage.md#session-reads).
//!
//! Listings page by keyset: a page ends at a [`SessionPosition`] (its last row's sort key and
//! id) and the next one starts strictly after it. Because `(sort key, id)` is unique, pages
//! never overlap or skip a row whose key did not change, however many rows are inserted
//! meanwhile, and no page costs more than its own rows.

use chrono::{DateTime, Utc};
use entity::{nodes, sessions};
use sea_orm::prelude::Decimal;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QueryResult, QuerySelect,
};
use uuid::Uuid;

use super::sql::Sql;
use super::{StoreError, sanitize};

/// How many fork children a session's detail lists at most.
pub const MAX_CHILDREN: u64 = 200;

/// What `GET /v1/sessions` sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionSort {
    LastSeenAt,
    StartedAt,
    TurnCount,
    TotalCostUsd,
    TotalTokens,
}

impl SessionSort {
    pub const ALL: [SessionSort; 5] = [
        SessionSort::LastSeenAt,
        SessionSort::StartedAt,
        SessionSort::TurnCount,
        SessionSort::TotalCostUsd,
        SessionSort::TotalTokens,
    ];

    /// The name the API uses (a query parameter value).
    pub fn name(self) -> &'static str {
        match self {
            SessionSort::LastSeenAt => "last_seen_at",
            SessionSort::StartedAt => "started_at",
            SessionSort::TurnCount => "turn_count",
            SessionSort::TotalCostUsd => "total_cost_usd",
            SessionSort::TotalTokens => "total_tokens",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The sorted expression, written exactly as its index is (the planners match it).
    fn expression(self) -> &'static str {
        match self {
            SessionSort::LastSeenAt => "last_seen_at",
            SessionSort::StartedAt => "started_at",
            SessionSort::TurnCount => "turn_count",
            SessionSort::TotalCostUsd => "total_cost_usd",
            SessionSort::TotalTokens => "(total_input_tokens + total_output_tokens)",
        }
    }

    /// The key of `row` in this sort. On SQLite the cost is a `REAL`: it is read as the
    /// double it is, so that binding it back finds the same row.
    fn key(
        self,
        backend: DbBackend,
        model: &sessions::Model,
        row: &QueryResult,
    ) -> Result<SortKey, StoreError> {
        Ok(match self {
            SessionSort::LastSeenAt => SortKey::Time(model.last_seen_at),
            SessionSort::StartedAt => SortKey::Time(model.started_at),
            SessionSort::TurnCount => SortKey::Int(i64::from(model.turn_count)),
            SessionSort::TotalTokens => {
                SortKey::Int(model.total_input_tokens + model.total_output_tokens)
            }
            SessionSort::TotalCostUsd => match backend {
                DbBackend::Sqlite => {
                    let real: f64 = row.try_get("", "total_cost_usd")?;
                    SortKey::Cost(Decimal::from_f64_retain(real).unwrap_or(model.total_cost_usd))
                }
                _ => SortKey::Cost(model.total_cost_usd),
            },
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Asc => "asc",
            Direction::Desc => "desc",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "asc" => Some(Direction::Asc),
            "desc" => Some(Direction::Desc),
            _ => None,
        }
    }
}

/// A row's value of the sorted expression.
#[derive(Debug, Clone, PartialEq)]
pub enum SortKey {
    Time(DateTime<Utc>),
    Int(i64),
    Cost(Decimal),
}

impl SortKey {
    /// A cost key from its decimal text (as `Display` writes it); `None` when it is not one.
    pub fn cost(text: &str) -> Option<SortKey> {
        text.parse::<Decimal>().ok().map(SortKey::Cost)
    }

    /// True when this key is of the type `sort` orders by.
    pub fn fits(&self, sort: SessionSort) -> bool {
        matches!(
            (self, sort),
            (
                SortKey::Time(_),
                SessionSort::LastSeenAt | SessionSort::StartedAt
            ) | (
                SortKey::Int(_),
                SessionSort::TurnCount | SessionSort::TotalTokens
            ) | (SortKey::Cost(_), SessionSort::TotalCostUsd)
        )
    }

    fn bind(&self, sql: &mut Sql) {
        match self {
            SortKey::Time(at) => sql.bind(*at),
            SortKey::Int(n) => sql.bind(*n),
            SortKey::Cost(usd) => match sql.backend() {
                // The column is a REAL there; a decimal bound beside it would compare as text.
                DbBackend::Sqlite => sql.bind(f64::try_from(*usd).unwrap_or(f64::MAX)),
                _ => sql.bind(*usd),
            },
        };
    }
}

/// Where a page ended: the last row's sort key and id.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionPosition {
    pub key: SortKey,
    pub id: Uuid,
}

/// One page request of `GET /v1/sessions`.
#[derive(Debug, Clone)]
pub struct SessionQuery<'a> {
    pub org_id: Uuid,
    pub sort: SessionSort,
    pub direction: Direction,
    /// Start strictly after this position (a cursor).
    pub after: Option<SessionPosition>,
    pub auth_subject: Option<&'a str>,
    /// `last_seen_at >= since`.
    pub since: Option<DateTime<Utc>>,
    /// `last_seen_at < until`.
    pub until: Option<DateTime<Utc>>,
    pub limit: u64,
}

/// A page of sessions, and where the next one starts when there are more.
#[derive(Debug, Clone)]
pub struct SessionPage {
    pub sessions: Vec<sessions::Model>,
    pub next: Option<SessionPosition>,
}

/// One page of the org's sessions in the query's order.
pub async fn list_sessions(
    db: &DatabaseConnection,
    query: &SessionQuery<'_>,
) -> Result<SessionPage, StoreError> {
    let expression = query.sort.expression();
    let mut sql = Sql::new(db.get_database_backend());
    sql.push("SELECT * FROM sessions WHERE org_id = ")
        .bind(query.org_id);
    if let Some(subject) = query.auth_subject {
        sql.push(" AND auth_subject = ")
            .bind(sanitize::text(subject, &mut 0).into_owned());
    }
    if let Some(since) = query.since {
        sql.push(" AND last_seen_at >= ").bind(since);
    }
    if let Some(until) = query.until {
        sql.push(" AND last_seen_at < ").bind(until);
    }
    let (bound, compare, order) = match query.direction {
        Direction::Asc => (">=", ">", "ASC"),
        Direction::Desc => ("<=", "<", "DESC"),
    };
    if let Some(after) = &query.after {
        // The row value comparison is the position; Postgres reads it as one range of the
        // index. SQLite does not for an expression column (`total_tokens`), so the scalar
        // bound beside it, implied by it, gives that range too.
        sql.push(&format!(" AND {expression} {bound} "));
        after.key.bind(&mut sql);
        sql.push(&format!(" AND ({expression}, id) {compare} ("));
        after.key.bind(&mut sql);
        sql.push(", ").bind(after.id).push(")");
    }
    sql.push(&format!(
        " ORDER BY {expression} {order}, id {order} LIMIT "
    ))
    .bind(query.limit as i64 + 1);
    let rows = db.query_all_raw(sql.build()).await?;
    let mut sessions = Vec::with_capacity(rows.len());
    let mut next = None;
    for (i, row) in rows.iter().enumerate() {
        if i as u64 == query.limit {
            break;
        }
        let model = sessions::Model::from_query_result(row, "")?;
        if i as u64 + 1 == query.limit && rows.len() as u64 > query.limit {
            next = Some(SessionPosition {
                key: query.sort.key(db.get_database_backend(), &model, row)?,
                id: model.id,
            });
        }
        sessions.push(model);
    }
    Ok(SessionPage { sessions, next })
}

/// The org's session with this natural key.
pub async fn session_by_harness(
    db: &DatabaseConnection,
    org_id: Uuid,
    harness_id: &str,
    harness_session_id: &str,
) -> Result<Option<sessions::Model>, StoreError> {
    Ok(sessions::Entity::find()
        .filter(sessions::Column::OrgId.eq(org_id))
        .filter(sessions::Column::HarnessId.eq(sanitize::text(harness_id, &mut 0)))
        .filter(sessions::Column::HarnessSessionId.eq(sanitize::text(harness_session_id, &mut 0)))
        .one(db)
        .await?)
}

/// The org's session with this id; `None` for another org's.
pub async fn session(
    db: &DatabaseConnection,
    org_id: Uuid,
    id: Uuid,
) -> Result<Option<sessions::Model>, StoreError> {
    Ok(sessions::Entity::find_by_id(id)
        .filter(sessions::Column::OrgId.eq(org_id))
        .one(db)
        .await?)
}

/// The session's first [`MAX_CHILDREN`] fork children within the org, oldest first.
pub async fn session_children(
    db: &DatabaseConnection,
    org_id: Uuid,
    id: Uuid,
) -> Result<Vec<sessions::Model>, StoreError> {
    Ok(sessions::Entity::find()
        .filter(sessions::Column::ParentSessionId.eq(id))
        .filter(sessions::Column::OrgId.eq(org_id))
        .order_by_asc(sessions::Column::StartedAt)
        .order_by_asc(sessions::Column::Id)
        .limit(MAX_CHILDREN)
        .all(db)
        .await?)
}

/// One turn of a session: its head node's columns, without content.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct TurnHead {
    pub hash: String,
    pub parent_hash: Option<String>,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub agent_name: Option<String>,
    pub stop_reason: Option<String>,
    pub prompt_tokens: Option<i32>,
    pub completion_tokens: Option<i32>,
    pub total_tokens: Option<i32>,
    pub cache_creation_input_tokens: Option<i32>,
    pub cache_read_input_tokens: Option<i32>,
    pub total_duration_ns: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// Where a page of turns ended: the last head's `created_at` and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnPosition {
    pub created_at: DateTime<Utc>,
    pub hash: String,
}

/// A page of turns, and where the next one starts when there are more.
#[derive(Debug, Clone)]
pub struct TurnPage {
    pub turns: Vec<TurnHead>,
    pub next: Option<TurnPosition>,
}

const TURN_COLUMNS: &str = "hash, parent_hash, model, provider, agent_name, stop_reason, \
    prompt_tokens, completion_tokens, total_tokens, cache_creation_input_tokens, \
    cache_read_input_tokens, total_duration_ns, created_at";

/// The session's turn heads in the order they were stored, `limit` of them after `after`.
/// The bare `is_turn_head` term is the partial index's own predicate, which both planners
/// need to see verbatim.
pub async fn turn_heads(
    db: &DatabaseConnection,
    org_id: Uuid,
    session_id: Uuid,
    after: Option<&TurnPosition>,
    limit: u64,
) -> Result<TurnPage, StoreError> {
    let mut sql = Sql::new(db.get_database_backend());
    sql.push(&format!(
        "SELECT {TURN_COLUMNS} FROM nodes WHERE session_id = "
    ))
    .bind(session_id)
    .push(" AND is_turn_head AND org_id = ")
    .bind(org_id);
    if let Some(after) = after {
        sql.push(" AND (created_at, hash) > (")
            .bind(after.created_at)
            .push(", ")
            .bind(sanitize::text(&after.hash, &mut 0).into_owned())
            .push(")");
    }
    sql.push(" ORDER BY created_at, hash LIMIT ")
        .bind(limit as i64 + 1);
    let mut turns = TurnHead::find_by_statement(sql.build()).all(db).await?;
    let next = if turns.len() as u64 > limit {
        turns.truncate(limit as usize);
        turns.last().map(|t| TurnPosition {
            created_at: t.created_at,
            hash: t.hash.clone(),
        })
    } else {
        None
    };
    Ok(TurnPage { turns, next })
}

/// The hash of the session's most recently stored turn head.
pub async fn latest_head(
    db: &DatabaseConnection,
    org_id: Uuid,
    session_id: Uuid,
) -> Result<Option<String>, StoreError> {
    let mut sql = Sql::new(db.get_database_backend());
    sql.push("SELECT hash FROM nodes WHERE session_id = ")
        .bind(session_id)
        .push(" AND is_turn_head AND org_id = ")
        .bind(org_id)
        .push(" ORDER BY created_at DESC, hash DESC LIMIT 1");
    let row = db.query_one_raw(sql.build()).await?;
    Ok(row.map(|r| r.try_get::<String>("", "hash")).transpose()?)
}

/// True when the org's node `hash` belongs to the session (the session stored it first).
pub async fn node_in_session(
    db: &DatabaseConnection,
    org_id: Uuid,
    session_id: Uuid,
    hash: &str,
) -> Result<bool, StoreError> {
    let row = nodes::Entity::find_by_id((org_id, sanitize::text(hash, &mut 0).into_owned()))
        .select_only()
        .column(nodes::Column::SessionId)
        .into_tuple::<Option<Uuid>>()
        .one(db)
        .await?;
    Ok(row.flatten() == Some(session_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_names_round_trip() {
        for sort in SessionSort::ALL {
            assert_eq!(SessionSort::parse(sort.name()), Some(sort));
        }
        assert_eq!(SessionSort::parse("name"), None);
        assert_eq!(Direction::parse("asc"), Some(Direction::Asc));
        assert_eq!(Direction::parse("DESC"), None);
    }

    #[test]
    fn a_key_fits_only_its_sorts() {
        let time = SortKey::Time(Utc::now());
        assert!(time.fits(SessionSort::StartedAt));
        assert!(!time.fits(SessionSort::TurnCount));
        assert!(SortKey::Int(3).fits(SessionSort::TotalTokens));
        assert!(!SortKey::Int(3).fits(SessionSort::TotalCostUsd));
        assert!(SortKey::Cost(Decimal::ONE).fits(SessionSort::TotalCostUsd));
    }

    #[test]
    fn a_double_survives_the_decimal_it_is_carried_in() {
        for real in [0.1, 1.0 / 3.0, 123_456.789_012_345, 0.000_017_5, 8.5e18] {
            let carried = Decimal::from_f64_retain(real).expect("in range");
            let text = carried.to_string();
            let back: Decimal = text.parse().expect("parses");
            assert_eq!(f64::try_from(back).expect("converts"), real, "{text}");
        }
    }
}
