//! `migration up|down|status|fresh|refresh|reset` against `DATABASE_URL`.
//!
//! On Postgres the CLI holds the session advisory lock `MIGRATION_LOCK_KEY` on its single
//! connection for its whole run, so it never races a reel process migrating at startup.

use migration::{MIGRATION_LOCK_KEY, Migrator};
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend};

async fn connect(mut options: ConnectOptions) -> Result<DatabaseConnection, DbErr> {
    // One connection that lives as long as the process: the advisory lock belongs to it.
    options
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .sqlx_logging(false);
    let db = Database::connect(options).await?;
    if db.get_database_backend() == DbBackend::Postgres {
        db.execute_unprepared(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
            .await?;
    }
    Ok(db)
}

#[tokio::main]
async fn main() {
    cli::run_cli_with_connection(Migrator, connect).await;
}
