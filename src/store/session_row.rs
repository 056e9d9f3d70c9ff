//! Statements on `sessions` shared by the ingest and backfill transactions.

use chrono::{DateTime, Utc};
use entity::sessions;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, QueryFilter,
};
use serde_json::{Map, Value as Json};
use uuid::Uuid;

use super::sql::{List, Sql};

/// `(org_id, harness_id, harness_session_id)`, with text already sanitized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NaturalKey<'a> {
    pub org_id: Uuid,
    pub harness_id: &'a str,
    pub harness_session_id: &'a str,
}

impl NaturalKey<'_> {
    fn filter<Q: QueryFilter>(&self, query: Q) -> Q {
        query
            .filter(sessions::Column::OrgId.eq(self.org_id))
            .filter(sessions::Column::HarnessId.eq(self.harness_id))
            .filter(sessions::Column::HarnessSessionId.eq(self.harness_session_id))
    }
}

pub(crate) async fn find<C: ConnectionTrait>(
    db: &C,
    key: &NaturalKey<'_>,
) -> Result<Option<sessions::Model>, DbErr> {
    key.filter(sessions::Entity::find()).one(db).await
}

/// A row to insert. Counters start at the given values (zero for ingest).
#[derive(Debug)]
pub(crate) struct NewSession<'a> {
    pub key: NaturalKey<'a>,
    pub auth_subject: &'a str,
    pub name: Option<&'a str>,
    pub cwd: Option<&'a str>,
    pub harness_version: Option<&'a str>,
    pub parent_session_id: Option<Uuid>,
    pub started_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// Serialized JSON object.
    pub harness_metadata: String,
    pub total_input_tokens: i64,
    pub total_output_tokens: i64,
    pub turn_count: i32,
}

/// Inserts the row with a fresh UUIDv7 unless its natural key exists. Returns the new id, or
/// `None` when another transaction owns the key (the caller then reads that row).
///
/// `ON CONFLICT DO NOTHING` rather than `DO UPDATE`: the row is not locked here, so the only
/// row lock a turn takes on `sessions` is its last statement, after its node inserts, and two
/// turns can never wait on each other in opposite orders.
pub(crate) async fn insert<C: ConnectionTrait>(
    db: &C,
    new: &NewSession<'_>,
) -> Result<Option<Uuid>, DbErr> {
    Ok(insert_all(db, std::slice::from_ref(new))
        .await?
        .pop()
        .flatten())
}

/// [`insert`] of several rows of distinct keys in one statement: the new id of each, in
/// order, `None` where another transaction owns the key.
pub(crate) async fn insert_all<C: ConnectionTrait>(
    db: &C,
    news: &[NewSession<'_>],
) -> Result<Vec<Option<Uuid>>, DbErr> {
    let mut sql = Sql::new(db.get_database_backend());
    sql.push(
        "INSERT INTO sessions (id, org_id, auth_subject, harness_id, harness_session_id, name, \
         cwd, harness_version, parent_session_id, started_at, last_seen_at, harness_metadata, \
         total_input_tokens, total_output_tokens, turn_count) VALUES ",
    );
    let ids: Vec<Uuid> = news.iter().map(|_| Uuid::now_v7()).collect();
    let mut list = List::new(&mut sql);
    for (new, id) in news.iter().zip(&ids) {
        list.item()
            .push("(")
            .bind(*id)
            .push(", ")
            .bind(new.key.org_id)
            .push(", ")
            .bind(new.auth_subject)
            .push(", ")
            .bind(new.key.harness_id)
            .push(", ")
            .bind(new.key.harness_session_id)
            .push(", ")
            .bind(new.name.map(str::to_owned))
            .push(", ")
            .bind(new.cwd.map(str::to_owned))
            .push(", ")
            .bind(new.harness_version.map(str::to_owned))
            .push(", ")
            .bind(new.parent_session_id)
            .push(", ")
            .bind(new.started_at)
            .push(", ")
            .bind(new.last_seen_at)
            .push(", ")
            .bind_json(new.harness_metadata.clone())
            .push(", ")
            .bind(new.total_input_tokens)
            .push(", ")
            .bind(new.total_output_tokens)
            .push(", ")
            .bind(new.turn_count)
            .push(")");
    }
    sql.push(
        " ON CONFLICT (org_id, harness_id, harness_session_id) DO NOTHING \
         RETURNING id",
    );
    let mut inserted = Vec::with_capacity(news.len());
    for row in db.query_all_raw(sql.build()).await? {
        inserted.push(row.try_get_by_index::<Uuid>(0)?);
    }
    Ok(ids
        .into_iter()
        .map(|id| inserted.contains(&id).then_some(id))
        .collect())
}

/// The rows of `keys` that exist, in one statement. `lock`: a Postgres advisory lock the
/// statement takes shared until the transaction ends, before it reads anything: the lock's
/// one row is the outer side of the join, so it is taken whether or not a session matches.
pub(crate) async fn find_all<C: ConnectionTrait>(
    db: &C,
    keys: &[NaturalKey<'_>],
    lock: Option<i64>,
) -> Result<Vec<sessions::Model>, DbErr> {
    let sql = find_all_statement(db.get_database_backend(), keys, lock);
    let mut found = Vec::with_capacity(keys.len());
    for row in db.query_all_raw(sql.build()).await? {
        // The advisory lock's row when nothing matched.
        if row.try_get::<Option<Uuid>>("", "id")?.is_some() {
            found.push(sessions::Model::from_query_result(&row, "")?);
        }
    }
    Ok(found)
}

/// [`find_all`]'s statement. Each backend's form reads the natural key's unique index once
/// per key: Postgres joins a `VALUES` list to it, SQLite (which scans the table for a row
/// value `IN (VALUES …)`) searches it once per term of an `OR`.
fn find_all_statement(backend: DbBackend, keys: &[NaturalKey<'_>], lock: Option<i64>) -> Sql {
    let mut sql = Sql::new(backend);
    match lock {
        Some(lock) => sql
            .push("WITH advisory AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared(")
            .bind(lock)
            .push(")) SELECT s.* FROM advisory LEFT JOIN sessions AS s ON "),
        None => sql.push("SELECT s.* FROM sessions AS s WHERE "),
    };
    if backend == DbBackend::Postgres {
        sql.push("(s.org_id, s.harness_id, s.harness_session_id) IN (VALUES ");
        let mut list = List::new(&mut sql);
        for key in keys {
            list.item()
                .push("(")
                .bind(key.org_id)
                .push(", ")
                .bind(key.harness_id)
                .push(", ")
                .bind(key.harness_session_id)
                .push(")");
        }
        sql.push(")");
    } else {
        sql.push("(");
        for (i, key) in keys.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { " OR (" })
                .push("s.org_id = ")
                .bind(key.org_id)
                .push(" AND s.harness_id = ")
                .bind(key.harness_id)
                .push(" AND s.harness_session_id = ")
                .bind(key.harness_session_id)
                .push(")");
        }
        sql.push(")");
    }
    sql
}

impl NaturalKey<'_> {
    /// Whether `row` is the row of this key.
    pub(crate) fn is_of(&self, row: &sessions::Model) -> bool {
        row.org_id == self.org_id
            && row.harness_id == self.harness_id
            && row.harness_session_id == self.harness_session_id
    }
}

/// The id of the row with this natural key, inserting `new` when there is none. `lock`: a
/// Postgres advisory lock to take shared in the first statement (see [`find_all`]).
pub(crate) async fn find_or_insert<C: ConnectionTrait>(
    db: &C,
    new: &NewSession<'_>,
    lock: Option<i64>,
) -> Result<(Uuid, Option<sessions::Model>), DbErr> {
    let found = match lock {
        Some(lock) => find_all(db, &[new.key], Some(lock)).await?.pop(),
        None => find(db, &new.key).await?,
    };
    if let Some(row) = found {
        return Ok((row.id, Some(row)));
    }
    if let Some(id) = insert(db, new).await? {
        return Ok((id, None));
    }
    // Another transaction committed the key between our read and our insert.
    let row = find(db, &new.key)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("session {:?}", new.key)))?;
    Ok((row.id, Some(row)))
}

/// Shallow merge of JSON objects, Postgres `jsonb || jsonb` semantics: the keys of `new`
/// replace those of `old`; a stored value that is not an object is replaced.
pub(crate) fn merge_metadata(old: &Json, new: &Map<String, Json>) -> Map<String, Json> {
    let mut merged = match old {
        Json::Object(map) => map.clone(),
        _ => Map::new(),
    };
    for (k, v) in new {
        merged.insert(k.clone(), v.clone());
    }
    merged
}

/// True when merging `new` into `old` would change nothing.
pub(crate) fn metadata_unchanged(old: &Json, new: &Map<String, Json>) -> bool {
    match old {
        Json::Object(map) => new.iter().all(|(k, v)| map.get(k) == Some(v)),
        _ => new.is_empty(),
    }
}

/// Appends `harness_metadata = <old merged with new>`.
///
/// Postgres merges in SQL (`||`), so concurrent writers compose. SQLite has no shallow-merge
/// operator (`json_patch` is recursive and deletes keys set to null), so the merged object is
/// computed from the row read in this transaction; that read is current because SQLite
/// writers hold the database write lock from `BEGIN IMMEDIATE` to commit.
pub(crate) fn push_metadata_merge(sql: &mut Sql, current: &Json, new: &Map<String, Json>) {
    match sql.backend() {
        sea_orm::DbBackend::Postgres => {
            let new_json = Json::Object(new.clone()).to_string();
            sql.push(
                "harness_metadata = CASE WHEN jsonb_typeof(harness_metadata) = 'object' \
                 THEN harness_metadata || ",
            )
            .bind_json(new_json.clone())
            .push(" ELSE ")
            .bind_json(new_json)
            .push(" END");
        }
        _ => {
            let merged = Json::Object(merge_metadata(current, new)).to_string();
            sql.push("harness_metadata = ").bind_json(merged);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A group's read of its sessions searches the natural key's index on SQLite, never
    /// scans the table (which would grow with the number of sessions stored).
    #[tokio::test]
    async fn reading_a_groups_sessions_uses_the_index_on_sqlite() {
        let db = crate::store::connect("sqlite::memory:", &Default::default())
            .await
            .expect("connect");
        crate::store::migrate(&db).await.expect("migrate");
        let keys = [
            NaturalKey {
                org_id: Uuid::nil(),
                harness_id: "claude",
                harness_session_id: "a",
            },
            NaturalKey {
                org_id: Uuid::nil(),
                harness_id: "claude",
                harness_session_id: "b",
            },
        ];
        let sql = find_all_statement(DbBackend::Sqlite, &keys, None).build();
        let plan = sea_orm::Statement::from_sql_and_values(
            DbBackend::Sqlite,
            format!("EXPLAIN QUERY PLAN {}", sql.sql),
            sql.values.map(|v| v.0).unwrap_or_default(),
        );
        let details: Vec<String> = db
            .query_all_raw(plan)
            .await
            .expect("plan")
            .iter()
            .map(|row| row.try_get::<String>("", "detail").expect("detail"))
            .collect();
        assert!(
            details.iter().any(|d| d.contains("USING INDEX")),
            "{details:?}"
        );
        assert!(
            !details.iter().any(|d| d.starts_with("SCAN s")),
            "{details:?}"
        );
        assert_eq!(find_all(&db, &keys, None).await.expect("read").len(), 0);
    }

    fn obj(v: Json) -> Map<String, Json> {
        match v {
            Json::Object(m) => m,
            _ => unreachable!("test literal is an object"),
        }
    }

    #[test]
    fn merge_is_shallow_and_keeps_nulls() {
        let old = json!({"a": {"x": 1, "y": 2}, "b": 1, "keep": true});
        let new = obj(json!({"a": {"x": 3}, "b": null}));
        assert_eq!(
            Json::Object(merge_metadata(&old, &new)),
            json!({"a": {"x": 3}, "b": null, "keep": true})
        );
    }

    #[test]
    fn merge_replaces_a_stored_value_that_is_not_an_object() {
        let new = obj(json!({"k": 1}));
        assert_eq!(
            Json::Object(merge_metadata(&json!([1]), &new)),
            json!({"k": 1})
        );
        assert!(!metadata_unchanged(&json!([1]), &new));
    }

    #[test]
    fn unchanged_when_every_new_key_already_has_its_value() {
        let old = json!({"a": 1, "b": "x"});
        assert!(metadata_unchanged(&old, &obj(json!({"a": 1}))));
        assert!(metadata_unchanged(&old, &Map::new()));
        assert!(!metadata_unchanged(&old, &obj(json!({"a": 2}))));
        assert!(!metadata_unchanged(&old, &obj(json!({"c": null}))));
    }
}
