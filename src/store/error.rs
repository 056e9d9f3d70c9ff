//! Why a store call failed, classified for the HTTP layer (503 vs 4xx vs 500).

use sea_orm::{DbErr, RuntimeErr, sqlx};

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached (connection refused or lost, pool timed out, SQLite
    /// busy past its timeout): retryable, 503.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The chain handed to the store is not a well-ordered root→leaf chain.
    #[error("ingest turn: {0}")]
    InvalidChain(String),
    /// A turn's other inputs cannot be stored (non-finite cost, metadata that is not an object).
    #[error("invalid turn: {0}")]
    InvalidTurn(String),
    /// A rejected raw turn was already re-derived (or is not a rejected turn of the org):
    /// the transaction that tried again is rolled back.
    #[error("raw turn {0} was already reprocessed")]
    AlreadyReprocessed(uuid::Uuid),
    /// Stored raw bytes cannot be read back: a chunk is missing or damaged.
    #[error("raw storage is damaged: {0}")]
    Corrupt(String),
    /// Any other database error: 500.
    #[error("database error: {0}")]
    Db(#[source] DbErr),
}

/// `?` on a [`DbErr`] classifies it, so no call site can forget to tell an outage from a bug.
impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        if is_unavailable(&err) {
            StoreError::Unavailable(err.to_string())
        } else {
            StoreError::Db(err)
        }
    }
}

impl StoreError {
    /// True when retrying later may succeed without any change to the request.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    /// Postgres aborted the transaction to break a deadlock or a serialization conflict with
    /// another writer: running the whole transaction again is safe and expected to succeed.
    pub(crate) fn is_transaction_conflict(&self) -> bool {
        match self {
            StoreError::Db(DbErr::Exec(RuntimeErr::SqlxError(e)))
            | StoreError::Db(DbErr::Query(RuntimeErr::SqlxError(e))) => match e.as_ref() {
                sqlx::Error::Database(db) => db
                    .code()
                    .is_some_and(|code| matches!(&*code, "40P01" | "40001")),
                _ => false,
            },
            _ => false,
        }
    }
}

fn is_unavailable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            sqlx_unavailable(e)
        }
        _ => false,
    }
}

fn sqlx_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| unavailable_code(&code)),
        _ => false,
    }
}

/// Postgres SQLSTATEs and SQLite result codes that mean "not now" rather than "never".
fn unavailable_code(code: &str) -> bool {
    // Postgres: class 08 connection exception; 53300 too_many_connections;
    // 57P01..57P03 admin/crash shutdown, cannot_connect_now.
    code.starts_with("08")
        || matches!(code, "53300" | "57P01" | "57P02" | "57P03")
        // SQLite: SQLITE_BUSY (5) and SQLITE_LOCKED (6) with their extended codes
        // (BUSY_RECOVERY 261, BUSY_SNAPSHOT 517, BUSY_TIMEOUT 773, LOCKED_SHAREDCACHE 262).
        || matches!(code, "5" | "6" | "261" | "262" | "517" | "773")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_timeouts_and_closed_connections_are_unavailable() {
        use sea_orm::error::ConnAcquireErr;
        let err: StoreError = DbErr::ConnectionAcquire(ConnAcquireErr::Timeout).into();
        assert!(err.is_retryable(), "{err:?}");
        let err: StoreError = DbErr::Exec(RuntimeErr::SqlxError(std::sync::Arc::new(
            sqlx::Error::PoolClosed,
        )))
        .into();
        assert!(err.is_retryable(), "{err:?}");
    }

    #[test]
    fn other_database_errors_are_not_retryable() {
        let err: StoreError = DbErr::Custom("constraint".into()).into();
        assert!(matches!(err, StoreError::Db(_)), "{err:?}");
    }

    #[test]
    fn busy_and_connection_codes_are_unavailable() {
        for code in ["08006", "08001", "57P01", "53300", "5", "517"] {
            assert!(unavailable_code(code), "{code}");
        }
        for code in ["23505", "22P05", "19", "2067", "40P01"] {
            assert!(!unavailable_code(code), "{code}");
        }
    }
}
