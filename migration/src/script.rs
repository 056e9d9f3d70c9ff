//! Migrations are written as SQL, one script per backend: the schema has to match the
//! reference's Postgres DDL exactly (JSONB, NUMERIC(12,4), a SQL function), and SQLite needs
//! table rebuilds where Postgres alters in place.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// A list of statements, run in order.
pub(crate) type Script = &'static [&'static str];

/// Runs the script of the connection's backend, statement by statement.
pub(crate) async fn run(
    manager: &SchemaManager<'_>,
    postgres: Script,
    sqlite: Script,
) -> Result<(), DbErr> {
    let script = match manager.get_database_backend() {
        DbBackend::Postgres => postgres,
        DbBackend::Sqlite => sqlite,
        other => {
            return Err(DbErr::Migration(format!(
                "unsupported database backend {other:?}"
            )));
        }
    };
    let db = manager.get_connection();
    for statement in script {
        db.execute_unprepared(statement).await?;
    }
    Ok(())
}

/// The `MigrationTrait` of a migration that is exactly its scripts, run in one transaction:
/// `up` runs the first pair (Postgres, SQLite), `down` the second.
macro_rules! scripted_migration {
    (
        up: ($up_postgres:expr, $up_sqlite:expr),
        down: ($down_postgres:expr, $down_sqlite:expr) $(,)?
    ) => {
        #[async_trait::async_trait]
        impl MigrationTrait for Migration {
            async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                $crate::script::run(manager, $up_postgres, $up_sqlite).await
            }

            async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                $crate::script::run(manager, $down_postgres, $down_sqlite).await
            }

            fn use_transaction(&self) -> Option<bool> {
                Some(true)
            }
        }
    };
}
pub(crate) use scripted_migration;
