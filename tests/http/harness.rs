//! Starting a server per test and talking to it.
#![allow(dead_code)]

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use actix_web::web::Bytes;
use reel::app::Application;
use reel::config::Config;
use sea_orm::DatabaseConnection;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::support::{Backend, TestDb};

/// A running server on a fresh database.
pub struct TestApp {
    pub base: String,
    pub client: awc::Client,
    pub backend: Backend,
    pub db_url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<actix_rt::task::JoinHandle<std::io::Result<()>>>,
}

/// A response, fully read.
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `error` text of a JSON error body.
    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error text in {}", self.text()))
            .to_owned()
    }
}

/// The configuration every test starts from: port 0, small thread counts.
pub fn test_config(db: &TestDb) -> Config {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".to_owned();
    config.server.workers = 2;
    config.server.shutdown_timeout_secs = 10;
    config.sessions.arbiters = 2;
    config.database.url = db.url.clone();
    config.database.max_connections = 8;
    // The tests written before rule sets expect the chains of tapes-f237b6e; the ones about
    // rule sets choose their own.
    config.chain.rules = Some("tapes-f237b6e".to_owned());
    config
}

/// With `TEST_LOG` set, the servers' log goes to the test's captured output, which the test
/// harness shows for a failing test; `RUST_LOG` filters it (`info` by default). The subscriber
/// is global: the first test to start a server installs it for the whole binary, and each
/// event lands in the output of the test whose server thread logged it.
fn init_test_log() {
    if std::env::var_os("TEST_LOG").is_none_or(|v| v.is_empty()) {
        return;
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_test_writer()
        .try_init();
}

pub fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(120))
        .disable_redirects()
        .finish()
}

impl TestApp {
    pub async fn spawn(db: &TestDb) -> TestApp {
        TestApp::spawn_with(db, |_| {}).await
    }

    pub async fn spawn_with(db: &TestDb, tweak: impl FnOnce(&mut Config)) -> TestApp {
        init_test_log();
        let mut config = test_config(db);
        tweak(&mut config);
        let app = Application::build(config).await.expect("server starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = actix_rt::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        TestApp {
            base,
            client: client(),
            backend: db.backend,
            db_url: db.url.clone(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        self.get_with(path, &[]).await
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> TestResponse {
        let mut req = self.client.get(self.url(path));
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        read(req.send().await.expect("GET succeeds")).await
    }

    /// POSTs `body` as JSON.
    pub async fn post(&self, path: &str, body: &Value) -> TestResponse {
        self.post_raw(
            path,
            &[("content-type", "application/json")],
            serde_json::to_vec(body).expect("serialisable"),
        )
        .await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> TestResponse {
        let mut req = self.client.post(self.url(path));
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        read(req.send_body(body.into()).await.expect("POST succeeds")).await
    }

    /// POSTs `body` as JSON from a task of its own; await the handle for the response.
    pub fn post_in_background(
        &self,
        path: &str,
        body: &Value,
    ) -> actix_rt::task::JoinHandle<TestResponse> {
        let req = self
            .client
            .post(self.url(path))
            .insert_header(("content-type", "application/json"));
        let body = serde_json::to_vec(body).expect("serialisable");
        actix_rt::spawn(
            async move { read(req.send_body(body).await.expect("POST succeeds")).await },
        )
    }

    /// The live actors as `GET /admin/actors` lists them (the server must allow admin).
    pub async fn actors(&self) -> Vec<Value> {
        let res = self.get("/admin/actors").await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        res.json()["actors"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until the actor of `harness_session_id`, as `GET /admin/actors` shows it,
    /// satisfies `check`; `what` says what it never did in the failure.
    pub async fn wait_for_actor(
        &self,
        harness_session_id: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) {
        let reached = eventually(Duration::from_secs(10), || async {
            self.actors()
                .await
                .iter()
                .any(|a| a["harness_session_id"] == harness_session_id && check(a))
        })
        .await;
        assert!(reached, "{harness_session_id} never {what}");
    }

    /// Waits until the actor of `harness_session_id` reports `pending` queued turns.
    pub async fn wait_for_pending(&self, harness_session_id: &str, pending: u64) {
        let what = format!("had {pending} pending turns");
        self.wait_for_actor(harness_session_id, &what, |a| a["pending"] == pending)
            .await;
    }

    pub async fn ingest(&self, turn: &Value) -> TestResponse {
        self.post("/v1/ingest", turn).await
    }

    pub async fn batch(&self, turns: &[Value]) -> TestResponse {
        self.post("/v1/ingest/batch", &serde_json::json!({ "turns": turns }))
            .await
    }

    pub async fn metrics(&self) -> String {
        let res = self.get("/metrics").await;
        assert_eq!(res.status, StatusCode::OK);
        res.text()
    }

    /// A fresh connection to the server's database, for reading rows.
    pub async fn db(&self) -> DatabaseConnection {
        sea_orm::Database::connect(&self.db_url)
            .await
            .expect("connect to the test database")
    }

    /// Graceful shutdown; returns once the server, its actors and its pool stopped.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task joins")
                .expect("server ran cleanly");
        }
    }
}

pub async fn read(
    mut res: awc::ClientResponse<
        impl futures_util::Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin,
    >,
) -> TestResponse {
    let body = res
        .body()
        .limit(256 * 1024 * 1024)
        .await
        .expect("body reads");
    TestResponse {
        status: res.status(),
        headers: res.headers().clone(),
        body,
    }
}

/// The value of a metric series in a Prometheus text exposition (0 when absent).
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            let rest = line.strip_prefix(series)?;
            rest.strip_prefix(' ')?.trim().parse::<f64>().ok()
        })
        .unwrap_or(0.0)
}

/// Polls `check` every 20 ms until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}
