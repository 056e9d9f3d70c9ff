//! PLACEHOLDERS for functions the chain and storage work provide on their branches.
//!
//! Everything here is deleted when those branches are merged; call sites then use
//! `SessionEnvelope::validate`, `store::connect`, `store::migrate` and `store::list_nodes`.
#![allow(dead_code)]

use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use uuid::Uuid;

use crate::store::StoreError;
use crate::wire::{EnvelopeError, SessionEnvelope};

/// PLACEHOLDER for `SessionEnvelope::validate` (wire.md §5.2).
pub(crate) fn validate_envelope(_envelope: &SessionEnvelope) -> Result<(), EnvelopeError> {
    Ok(())
}

/// PLACEHOLDER for `store::connect`.
pub(crate) async fn connect(
    url: &str,
    max_connections: u32,
    connect_timeout: std::time::Duration,
    acquire_timeout: std::time::Duration,
) -> Result<DatabaseConnection, StoreError> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections)
        .connect_timeout(connect_timeout)
        .acquire_timeout(acquire_timeout)
        .sqlx_logging(false);
    Database::connect(options)
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// PLACEHOLDER for `store::migrate` (advisory-locked on Postgres).
pub(crate) async fn migrate(db: &DatabaseConnection) -> Result<(), StoreError> {
    use migration::MigratorTrait;
    migration::Migrator::up(db, None)
        .await
        .map_err(StoreError::Db)
}

/// One row of `GET /v1/ingest/nodes`.
pub(crate) struct NodeRow {
    pub hash: String,
    pub role: String,
    pub provider: String,
    pub model: String,
    pub agent_name: String,
}

/// PLACEHOLDER for `store::list_nodes`: the org's nodes, `created_at, hash` order, bounded.
pub(crate) async fn list_nodes(
    _db: &DatabaseConnection,
    _org_id: Uuid,
    _agent: Option<&str>,
    _limit: u64,
) -> Result<Vec<NodeRow>, StoreError> {
    Ok(Vec::new())
}
