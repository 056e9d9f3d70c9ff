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
