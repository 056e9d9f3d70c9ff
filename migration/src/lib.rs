//! reel's schema history, runnable as a library (startup migration) and as a CLI
//! (`cargo run -p migration -- up|down|status|fresh|refresh`).
//!
//! The first three migrations are equivalent to the reference's (baseline nodes, ancestry
//! helper, session tracking); the later ones hold reel's additions (turn heads, API keys,
//! the cost column's range, raw turns, the recorded chain rules, node kinds, rederive's
//! progress, the indexes of the sessions read API). Each has a working `down`.

pub use sea_orm_migration::prelude::*;

use sea_orm_migration::sea_orm::{
    DatabaseConnection, DbBackend, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

mod m20260421_121449_baseline_nodes;
mod m20260421_155913_ancestry_helper;
mod m20260521_020542_session_tracking;
mod m20261125_000001_turn_heads;
mod m20261201_000001_api_keys;
mod m20261202_000001_session_cost_range;
mod m20261203_000001_raw_turns;
mod m20261204_000001_chain_rules;
mod m20261204_000001_session_reads;
mod m20261205_000001_node_kinds;
mod m20261206_000001_rederive;
mod m20261207_000001_toast_compression;
mod m20261208_000001_request_key_first;
mod script;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20260421_121449_baseline_nodes::Migration),
            Box::new(m20260421_155913_ancestry_helper::Migration),
            Box::new(m20260521_020542_session_tracking::Migration),
            Box::new(m20261125_000001_turn_heads::Migration),
            Box::new(m20261201_000001_api_keys::Migration),
            Box::new(m20261202_000001_session_cost_range::Migration),
            Box::new(m20261203_000001_raw_turns::Migration),
            Box::new(m20261204_000001_chain_rules::Migration),
            Box::new(m20261205_000001_node_kinds::Migration),
            Box::new(m20261206_000001_rederive::Migration),
            Box::new(m20261204_000001_session_reads::Migration),
            Box::new(m20261207_000001_toast_compression::Migration),
            Box::new(m20261208_000001_request_key_first::Migration),
        ]
    }
}

/// Key of the Postgres advisory lock that serialises migrations of one database across
/// processes ("reel" in ASCII, plus a version byte).
pub const MIGRATION_LOCK_KEY: i64 = 0x7265_656c_0001;

/// Applies every pending migration, safely when several processes start at once.
///
/// On Postgres the whole run is one transaction holding
/// `pg_advisory_xact_lock(MIGRATION_LOCK_KEY)`: a second process waits for the first to
/// commit, then finds nothing pending. On SQLite the run is one `BEGIN IMMEDIATE`
/// transaction, which takes the database's write lock up front. Either way a failure leaves
/// the schema as it was.
pub async fn up_locked(db: &DatabaseConnection) -> Result<(), DbErr> {
    let options = match db.get_database_backend() {
        DbBackend::Sqlite => TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        },
        _ => TransactionOptions::default(),
    };
    let txn = db.begin_with_options(options).await?;
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared(&format!(
            "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
        ))
        .await?;
    }
    Migrator::up(&txn, None).await?;
    txn.commit().await
}
