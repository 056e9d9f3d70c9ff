//! Opening the database and migrating it at startup.

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

use super::StoreError;

/// Pool and backend settings; `Default` suits a single reel process.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Pool size. SQLite uses it for concurrent readers; writers are serialised by SQLite's
    /// write lock either way. An in-memory SQLite database always gets one connection (each
    /// connection would otherwise open its own empty database).
    pub max_connections: u32,
    pub min_connections: u32,
    /// How long a caller waits for a pooled connection before the store reports
    /// [`StoreError::Unavailable`].
    pub acquire_timeout: Duration,
    pub connect_timeout: Duration,
    /// How long a SQLite writer waits for another writer's transaction before giving up.
    pub sqlite_busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 8,
            min_connections: 1,
            acquire_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            sqlite_busy_timeout: Duration::from_secs(5),
        }
    }
}

/// Connects to `url` (`sqlite://…` or `postgres://…`).
///
/// SQLite: WAL journal (readers never block the writer), `synchronous=FULL` (an acknowledged
/// turn survives power loss), foreign keys on, `busy_timeout`; writers open their
/// transactions with `BEGIN IMMEDIATE` (see [`begin_write`]). Both backends: sea-orm's
/// per-statement logging is off.
pub async fn connect(url: &str, options: &StoreOptions) -> Result<DatabaseConnection, StoreError> {
    let mut connect = ConnectOptions::new(url.to_owned());
    connect
        .max_connections(options.max_connections.max(1))
        .min_connections(options.min_connections.min(options.max_connections))
        .acquire_timeout(options.acquire_timeout)
        .connect_timeout(options.connect_timeout)
        .sqlx_logging(false);
    if url.starts_with("sqlite:") {
        let busy_timeout = options.sqlite_busy_timeout;
        connect.map_sqlx_sqlite_opts(move |o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(busy_timeout)
        });
        if is_sqlite_memory(url) {
            // The database lives exactly as long as its one connection.
            connect
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        }
    } else {
        connect.set_application_name("reel");
    }
    Ok(Database::connect(connect).await?)
}

fn is_sqlite_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// Applies pending migrations; safe when several processes start at once (Postgres advisory
/// lock, SQLite write lock).
pub async fn migrate(db: &DatabaseConnection) -> Result<(), StoreError> {
    Ok(migration::up_locked(db).await?)
}

/// Opens a write transaction. On SQLite it starts with `BEGIN IMMEDIATE`: the write lock is
/// taken up front (waiting up to `busy_timeout`), so a transaction never fails half-way
/// because another writer upgraded first, and what it reads stays current until it commits.
/// Postgres runs at READ COMMITTED; every statement of the write path is safe there.
pub(crate) async fn begin_write(
    db: &DatabaseConnection,
) -> Result<DatabaseTransaction, StoreError> {
    let options = match db.get_database_backend() {
        DbBackend::Sqlite => TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        },
        _ => TransactionOptions::default(),
    };
    Ok(db.begin_with_options(options).await?)
}

/// How often a transaction aborted by [`StoreError::is_transaction_conflict`] is run again.
const CONFLICT_ATTEMPTS: u32 = 3;

/// Runs `transaction` (which opens, fills and commits one write transaction) again when
/// Postgres aborted it for a deadlock or serialization conflict. A single turn's statements
/// take their locks in one order (session key, node keys in chain order, head row, session
/// row), but a transaction holding several chains can meet another one in the opposite
/// order; Postgres then aborts one of them, and running it again resolves the conflict.
pub(crate) async fn retry_conflicts<T, F, Fut>(mut transaction: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut attempt = 1;
    loop {
        match transaction().await {
            Err(err) if err.is_transaction_conflict() && attempt < CONFLICT_ATTEMPTS => {
                tracing::debug!(attempt, error = %err, "transaction conflict, running it again");
                attempt += 1;
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::sync::Arc;

    use sea_orm::sqlx::error::{DatabaseError, ErrorKind};
    use sea_orm::{DbErr, RuntimeErr, sqlx};

    use super::*;

    #[derive(Debug)]
    struct Coded(&'static str);

    impl std::fmt::Display for Coded {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "SQLSTATE {}", self.0)
        }
    }

    impl std::error::Error for Coded {}

    impl DatabaseError for Coded {
        fn message(&self) -> &str {
            self.0
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> ErrorKind {
            ErrorKind::Other
        }
    }

    fn db_error(code: &'static str) -> StoreError {
        let err = sqlx::Error::Database(Box::new(Coded(code)));
        DbErr::Exec(RuntimeErr::SqlxError(Arc::new(err))).into()
    }

    #[test]
    fn deadlocks_and_serialization_failures_are_conflicts() {
        assert!(db_error("40P01").is_transaction_conflict());
        assert!(db_error("40001").is_transaction_conflict());
        assert!(!db_error("23505").is_transaction_conflict());
        assert!(!StoreError::Unavailable("down".into()).is_transaction_conflict());
    }

    #[tokio::test]
    async fn a_conflicted_transaction_runs_again() {
        let mut calls = 0;
        let result = retry_conflicts(|| {
            calls += 1;
            let outcome = if calls < 3 {
                Err(db_error("40P01"))
            } else {
                Ok(calls)
            };
            async move { outcome }
        })
        .await;
        assert_eq!(result.unwrap(), 3);
    }

    #[tokio::test]
    async fn conflicts_are_retried_a_bounded_number_of_times() {
        let mut calls = 0;
        let result: Result<(), _> = retry_conflicts(|| {
            calls += 1;
            async { Err(db_error("40001")) }
        })
        .await;
        assert!(result.unwrap_err().is_transaction_conflict());
        assert_eq!(calls, CONFLICT_ATTEMPTS);
    }

    #[tokio::test]
    async fn other_errors_are_not_retried() {
        let mut calls = 0;
        let result: Result<(), _> = retry_conflicts(|| {
            calls += 1;
            async { Err(db_error("23505")) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls, 1);
    }
}
