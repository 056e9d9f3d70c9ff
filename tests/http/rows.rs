//! Reading what the server stored, through the schema's entities.
#![allow(dead_code)]

use entity::{nodes, sessions};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

pub async fn all_sessions(db: &DatabaseConnection) -> Vec<sessions::Model> {
    sessions::Entity::find()
        .order_by_asc(sessions::Column::Id)
        .all(db)
        .await
        .expect("read sessions")
}

pub async fn session(db: &DatabaseConnection, id: Uuid) -> sessions::Model {
    sessions::Entity::find_by_id(id)
        .one(db)
        .await
        .expect("read session")
        .unwrap_or_else(|| panic!("no sessions row {id}"))
}

pub async fn session_by_harness_id(
    db: &DatabaseConnection,
    harness_id: &str,
    harness_session_id: &str,
) -> Option<sessions::Model> {
    sessions::Entity::find()
        .filter(sessions::Column::HarnessId.eq(harness_id))
        .filter(sessions::Column::HarnessSessionId.eq(harness_session_id))
        .one(db)
        .await
        .expect("read session")
}

pub async fn all_nodes(db: &DatabaseConnection) -> Vec<nodes::Model> {
    nodes::Entity::find()
        .order_by_asc(nodes::Column::CreatedAt)
        .order_by_asc(nodes::Column::Hash)
        .all(db)
        .await
        .expect("read nodes")
}

pub async fn node(db: &DatabaseConnection, org_id: Uuid, hash: &str) -> Option<nodes::Model> {
    nodes::Entity::find_by_id((org_id, hash.to_owned()))
        .one(db)
        .await
        .expect("read node")
}

pub async fn node_count(db: &DatabaseConnection) -> usize {
    all_nodes(db).await.len()
}
