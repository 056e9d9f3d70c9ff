//! Reads that only tests need: one node, one session by id or by natural key (org-scoped),
//! and a table's row count.

use entity::{nodes, sessions};
use reel::turn::SessionKey;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

/// One node of the org.
pub async fn node(
    db: &DatabaseConnection,
    org_id: Uuid,
    hash: &str,
) -> Result<Option<nodes::Model>, DbErr> {
    nodes::Entity::find_by_id((org_id, hash.to_owned()))
        .one(db)
        .await
}

/// The session with this id, if it belongs to the org.
pub async fn session_by_id(
    db: &DatabaseConnection,
    org_id: Uuid,
    id: Uuid,
) -> Result<Option<sessions::Model>, DbErr> {
    sessions::Entity::find_by_id(id)
        .filter(sessions::Column::OrgId.eq(org_id))
        .one(db)
        .await
}

/// The session with this natural key. Keys are stored with U+0000 replaced by U+FFFD, so
/// they are looked up the same way.
pub async fn session_by_key(
    db: &DatabaseConnection,
    key: &SessionKey,
) -> Result<Option<sessions::Model>, DbErr> {
    let stored = |s: &str| s.replace('\0', "\u{FFFD}");
    sessions::Entity::find()
        .filter(sessions::Column::OrgId.eq(key.org_id))
        .filter(sessions::Column::HarnessId.eq(stored(&key.harness_id)))
        .filter(sessions::Column::HarnessSessionId.eq(stored(&key.harness_session_id)))
        .one(db)
        .await
}

/// The number of rows of `table`.
pub async fn count(db: &DatabaseConnection, table: &str) -> i64 {
    db.query_one_raw(sea_orm::Statement::from_string(
        db.get_database_backend(),
        format!("SELECT COUNT(*) FROM {table}"),
    ))
    .await
    .expect("count")
    .expect("a row")
    .try_get_by_index(0)
    .expect("a count")
}
