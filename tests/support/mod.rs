//! Test databases: every behaviour runs on SQLite and, when `TEST_DATABASE_URL` is set, on
//! Postgres, each test in a freshly created database.
//!
//! `TEST_DATABASE_URL` points at any database of a Postgres server the tests may create
//! databases on (e.g. `postgres://postgres@127.0.0.1:5432/postgres`). When
//! `REEL_PG_MARKER` names a file, the first Postgres database created writes it, so CI can
//! prove the Postgres suite ran.
#![allow(dead_code)]

pub mod reads;
pub mod vectors;

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "Postgres",
        })
    }
}

/// Runs `test` once per available backend, each time on a fresh database (`TestDb::all`). A
/// failure first says which backend it happened on (`test failed on Postgres`), then goes on
/// unwinding.
pub async fn each_backend<F, Fut>(mut test: F)
where
    F: FnMut(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    for db in TestDb::all().await {
        let backend = db.backend;
        // Pinned out here so the failed body, and the `TestDb` it may still own, lives until
        // the unwind resumes: it is dropped while panicking and keeps its Postgres database.
        let run = std::pin::pin!(AssertUnwindSafe(test(db)).catch_unwind());
        if let Err(panic) = run.await {
            eprintln!("test failed on {backend}");
            std::panic::resume_unwind(panic);
        }
    }
}

/// A fresh, empty database (no migrations applied) and the URL that reaches it.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    /// Keeps the SQLite file alive for the test's duration.
    _dir: Option<tempfile::TempDir>,
    /// Postgres: the admin URL and database name, to drop the database afterwards.
    pg_admin: Option<(String, String)>,
}

impl TestDb {
    /// One fresh database per available backend: SQLite always, Postgres when configured.
    pub async fn all() -> Vec<TestDb> {
        let mut dbs = vec![TestDb::sqlite()];
        if let Some(pg) = TestDb::postgres().await {
            dbs.push(pg);
        }
        dbs
    }

    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("reel.db").display());
        TestDb {
            backend: Backend::Sqlite,
            url,
            _dir: Some(dir),
            pg_admin: None,
        }
    }

    /// A freshly created Postgres database, or `None` when `TEST_DATABASE_URL` is unset.
    pub async fn postgres() -> Option<TestDb> {
        let admin_url = std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())?;
        let admin = Database::connect(&admin_url)
            .await
            .expect("connect TEST_DATABASE_URL");
        let name = format!("reel_t_{}", Uuid::now_v7().simple());
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        admin.close().await.ok();
        if let Ok(marker) = std::env::var("REEL_PG_MARKER") {
            std::fs::write(marker, b"postgres suite ran\n").ok();
        }
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(&admin_url);
        Some(TestDb {
            backend: Backend::Postgres,
            url: format!("{base}/{name}"),
            _dir: None,
            pg_admin: Some((admin_url, name)),
        })
    }

    /// A freshly created Postgres database for a test that only means something on Postgres.
    /// Without `TEST_DATABASE_URL` it returns `None` after saying so (`skipped_without_postgres`).
    pub async fn postgres_only() -> Option<TestDb> {
        let db = TestDb::postgres().await;
        if db.is_none() {
            skipped_without_postgres();
        }
        db
    }

    /// Connects through `store::connect` and applies every migration: what the server does at
    /// startup.
    pub async fn connect(&self) -> DatabaseConnection {
        let db = reel::store::connect(&self.url, &reel::store::StoreOptions::default())
            .await
            .expect("connect test database");
        reel::store::migrate(&db)
            .await
            .expect("migrate test database");
        db
    }

    /// Connects without any reel-specific setup.
    pub async fn connect_raw(&self) -> DatabaseConnection {
        Database::connect(&self.url)
            .await
            .expect("connect test database")
    }
}

/// Drops the Postgres database of a test that passed, so runs do not pile up databases on the
/// shared server; a failed test keeps its database for inspection.
impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.pg_admin.take() else {
            return;
        };
        if std::thread::panicking() {
            eprintln!("keeping test database {name} of a failed test");
            return;
        }
        // Drop runs inside the test's runtime, which cannot be blocked on: use a thread with
        // its own small runtime.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let admin = Database::connect(&admin_url).await.ok()?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()?;
                admin.close().await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop a test database");
        }
    }
}

/// The one line a Postgres-only test prints to stderr when it skips. The test is named by its
/// thread, which the test harness names after the test. It writes to the process's stderr
/// rather than through `eprintln!`, which the harness captures and shows only for a failure.
pub fn skipped_without_postgres() {
    use std::io::Write;
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let line = format!("skipped: {test} needs TEST_DATABASE_URL (Postgres)\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}
