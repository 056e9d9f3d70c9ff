//! The session ingest transaction (storage.md §6.5 with reel's corrections).

use sea_orm::DatabaseConnection;

use super::{IngestOutcome, StoreError, TurnWrite};

/// Commits one turn: session upsert, new nodes, head mark and counters, in one transaction.
pub async fn ingest_turn(
    _db: &DatabaseConnection,
    _write: TurnWrite<'_>,
) -> Result<IngestOutcome, StoreError> {
    unimplemented!("implemented by the storage work")
}
