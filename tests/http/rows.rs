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

/// Asserts that `nodes` were written by one commit, each written row after the previous:
/// a commit's clock ticks a microsecond per node row it writes or skips, so such nodes are
/// exactly a microsecond apart, while separate commits each start their own clock.
pub fn assert_written_by_one_commit(mut nodes: Vec<nodes::Model>) {
    nodes.sort_by_key(|n| n.created_at);
    for pair in nodes.windows(2) {
        let gap = pair[1].created_at - pair[0].created_at;
        assert_eq!(
            gap.num_microseconds(),
            Some(1),
            "{} then {}",
            pair[0].hash,
            pair[1].hash
        );
    }
}
