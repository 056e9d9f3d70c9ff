//! Connection setup and the classification of outages.

use std::time::Duration;

use reel::store::{self, StoreError, StoreOptions};
use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::fixtures::*;
use crate::support::{TestDb, each_backend};

async fn pragma<T: sea_orm::TryGetable>(db: &sea_orm::DatabaseConnection, name: &str) -> T {
    db.query_one_raw(Statement::from_string(
        DbBackend::Sqlite,
        format!("PRAGMA {name}"),
    ))
    .await
    .expect("run pragma")
    .expect("pragma row")
    .try_get_by_index(0)
    .expect("pragma value")
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode_with_foreign_keys_and_a_busy_timeout() {
    let t = TestDb::sqlite();
    let db = t.connect().await;
    assert_eq!(pragma::<String>(&db, "journal_mode").await, "wal");
    assert_eq!(pragma::<i32>(&db, "foreign_keys").await, 1);
    assert_eq!(pragma::<i32>(&db, "busy_timeout").await, 5000);
    assert_eq!(pragma::<i32>(&db, "synchronous").await, 2, "FULL");
}

#[tokio::test]
async fn an_in_memory_sqlite_database_works_with_one_connection() {
    let db = store::connect("sqlite::memory:", &StoreOptions::default())
        .await
        .unwrap();
    store::migrate(&db).await.unwrap();
    let out = ingest(&db, None, &session_fixture("memory")).await;
    assert!(out.counted);
    assert_eq!(all_nodes(&db).await.len(), 2);
}

#[tokio::test]
async fn an_unreachable_postgres_is_unavailable() {
    let options = StoreOptions {
        connect_timeout: Duration::from_secs(2),
        acquire_timeout: Duration::from_secs(2),
        ..StoreOptions::default()
    };
    // Port 1 on loopback: nothing listens, the connection is refused.
    let err = store::connect("postgres://postgres@127.0.0.1:1/none", &options)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn a_closed_pool_is_unavailable() {
    each_backend(|t| async move {
        let db = t.connect().await;
        db.clone().close().await.unwrap();
        let err = try_ingest(&db, None, &session_fixture("closed"), TOKENS, None)
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{:?}: {err:?}", t.backend);
    })
    .await;
}

#[tokio::test]
async fn concurrent_startup_migrations_do_not_race() {
    each_backend(|t| async move {
        let options = StoreOptions::default();
        let first = store::connect(&t.url, &options).await.unwrap();
        let second = store::connect(&t.url, &options).await.unwrap();
        let (a, b) = tokio::join!(store::migrate(&first), store::migrate(&second));
        a.unwrap_or_else(|e| panic!("{:?}: {e}", t.backend));
        b.unwrap_or_else(|e| panic!("{:?}: {e}", t.backend));
        store::migrate(&first).await.unwrap();
        assert!(
            ingest(&second, None, &session_fixture("after"))
                .await
                .counted
        );
    })
    .await;
}
