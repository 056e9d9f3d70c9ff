//! Backpressure (docs/divergences.md#backpressure): full limits answer 429 with Retry-After at
//! once, an unreachable database answers 503 with Retry-After, and the server recovers from
//! both.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::StatusCode;
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, TransactionTrait};
use tokio::net::{TcpListener, TcpStream};

use crate::fixtures::Conversation;
use crate::harness::{TestApp, eventually, metric};
use crate::support::{Backend, TestDb, each_backend};

/// Holds a lock that makes every session commit wait until it is released.
pub struct WriteLock {
    _conn: DatabaseConnection,
    txn: DatabaseTransaction,
}

impl WriteLock {
    pub async fn take(app: &TestApp) -> WriteLock {
        let conn = app.db().await;
        let txn = conn.begin().await.expect("begin");
        match app.backend {
            // The first write of a transaction takes SQLite's single write lock.
            Backend::Sqlite => {
                txn.execute_unprepared("CREATE TABLE test_write_lock (x INTEGER)")
                    .await
                    .expect("take the write lock");
            }
            Backend::Postgres => {
                txn.execute_unprepared("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")
                    .await
                    .expect("lock sessions");
            }
        }
        WriteLock { _conn: conn, txn }
    }

    pub async fn release(self) {
        self.txn.rollback().await.expect("release the lock");
    }
}

#[actix_rt::test]
async fn a_full_session_answers_429_and_recovers() {
    each_backend(|db| async move {
        let app = TestApp::spawn_with(&db, |c| c.sessions.pending_per_session = 1).await;
        let conv = Conversation::claude("busy");
        // Warm the session so its actor exists, then block its next commit.
        assert_eq!(app.ingest(&conv.turn(0)).await.status, StatusCode::ACCEPTED);
        let lock = WriteLock::take(&app).await;
        let first = app.post_in_background("/v1/ingest", &conv.turn(1));
        app.wait_for_pending("busy", 1).await;

        let res = app.ingest(&conv.turn(2)).await;
        assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.text());
        assert_eq!(res.header("retry-after"), Some("1"));
        assert_eq!(res.error(), "overloaded: session has 1 turns pending");

        // Other sessions are not affected by one busy session's limit (their commits wait
        // for the same database lock, so only check they are not refused).
        let other = app.post_in_background("/v1/ingest", &Conversation::claude("calm").turn(0));

        lock.release().await;
        let first = first.await.expect("first request");
        assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text());
        let other = other.await.expect("other request");
        assert_eq!(other.status, StatusCode::ACCEPTED, "{}", other.text());
        // Recovered: the refused turn goes through on retry.
        let res = app.ingest(&conv.turn(2)).await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());

        let text = app.metrics().await;
        assert_eq!(
            metric(&text, r#"reel_overloaded_total{reason="session_pending"}"#),
            1.0
        );
        assert_eq!(
            metric(
                &text,
                r#"tapes_ingest_writes_total{provider="anthropic",status="queue_full"}"#
            ),
            1.0,
            "{text}"
        );
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn the_global_in_flight_limit_answers_429() {
    each_backend(|db| async move {
        let app = TestApp::spawn_with(&db, |c| c.sessions.max_in_flight = 1).await;
        let lock = WriteLock::take(&app).await;
        let first = app.post_in_background("/v1/ingest", &Conversation::claude("one").turn(0));
        app.wait_for_pending("one", 1).await;

        let res = app.ingest(&Conversation::claude("two").turn(0)).await;
        assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.text());
        assert_eq!(res.header("retry-after"), Some("1"));
        assert_eq!(res.error(), "overloaded: 1 turns in flight");

        lock.release().await;
        assert_eq!(first.await.expect("first").status, StatusCode::ACCEPTED);
        let res = app.ingest(&Conversation::claude("two").turn(0)).await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
        let text = app.metrics().await;
        assert_eq!(
            metric(&text, r#"reel_overloaded_total{reason="in_flight"}"#),
            1.0
        );
        app.stop().await;
    })
    .await;
}

/// A TCP forwarder in front of Postgres that the test can cut and restore, to make the
/// database really unreachable for the server (connections reset, new ones refused).
struct Proxy {
    addr: SocketAddr,
    target: SocketAddr,
    tasks: Arc<Mutex<Vec<actix_rt::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let proxy = Proxy {
            addr,
            target,
            tasks: Arc::new(Mutex::new(Vec::new())),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let tasks = self.tasks.clone();
        let target = self.target;
        let accept = actix_rt::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let conn = actix_rt::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().expect("tasks").push(conn);
            }
        });
        self.tasks.lock().expect("tasks").push(accept);
    }

    /// Closes the listener and every forwarded connection.
    async fn cut(&self) {
        for task in self.tasks.lock().expect("tasks").drain(..) {
            task.abort();
        }
        // Let the aborted tasks drop their sockets.
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }

    async fn restore(&self) {
        let listener = TcpListener::bind(self.addr).await.expect("rebind proxy");
        self.serve(listener);
    }
}

/// Host and port of a `postgres://user@host:port/db` URL, and the URL through `via`.
fn through(url: &str, via: SocketAddr) -> (SocketAddr, String) {
    let (scheme_user, rest) = url.split_once('@').expect("user@host in the URL");
    let (host_port, db) = rest.split_once('/').expect("/db in the URL");
    let target = std::net::ToSocketAddrs::to_socket_addrs(host_port)
        .expect("resolvable host")
        .next()
        .expect("an address");
    (target, format!("{scheme_user}@{via}/{db}"))
}

#[actix_rt::test]
async fn an_unreachable_database_answers_503_and_recovers() {
    // Only Postgres can be unreachable: SQLite is a file inside the process.
    let Some(db) = TestDb::postgres_only().await else {
        return;
    };
    let (target, _) = through(&db.url, "127.0.0.1:1".parse().expect("addr"));
    let proxy = Proxy::start(target).await;
    let (_, proxied_url) = through(&db.url, proxy.addr);
    let app = TestApp::spawn_with(&db, |c| {
        c.database.url = proxied_url;
        c.database.connect_timeout_secs = 1;
        c.database.acquire_timeout_secs = 1;
        c.sessions.retry_after_secs = 1;
    })
    .await;
    let conv = Conversation::claude("outage");
    assert_eq!(app.ingest(&conv.turn(0)).await.status, StatusCode::ACCEPTED);

    proxy.cut().await;
    let res = app.ingest(&conv.turn(1)).await;
    assert_eq!(
        res.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        res.text()
    );
    assert_eq!(res.header("retry-after"), Some("1"));
    assert!(res.error().starts_with("unavailable: "), "{}", res.text());
    // While the outage is fresh, turns are refused at once instead of queuing.
    let started = std::time::Instant::now();
    let res = app.ingest(&conv.turn(1)).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_millis(500));

    proxy.restore().await;
    let recovered = crate::harness::eventually(Duration::from_secs(15), || async {
        app.ingest(&conv.turn(1)).await.status == StatusCode::ACCEPTED
    })
    .await;
    assert!(
        recovered,
        "the server did not recover after the database came back"
    );
    let text = app.metrics().await;
    assert!(metric(&text, "reel_unavailable_total") >= 2.0, "{text}");
    app.stop().await;
}

/// Waits until `count` session commits are queued for the group writer.
async fn wait_for_writer_queue(app: &TestApp, count: usize) {
    let queued = eventually(Duration::from_secs(10), || async {
        metric(&app.metrics().await, "reel_writer_queued") == count as f64
    })
    .await;
    assert!(queued, "{count} commits queued for the writer");
}

/// The sessions whose commits wait for the group writer together are committed in one
/// transaction (one fsync, and on Postgres one WAL flush), each turn stored and counted
/// once.
#[actix_rt::test]
async fn waiting_sessions_commit_together() {
    each_backend(|db| async move {
        // One writer task, so the three that wait behind the first are surely one group.
        let app = TestApp::spawn_with(&db, |c| c.database.group_writers = 1).await;
        let lock = WriteLock::take(&app).await;
        // The first commit waits for the lock; the others queue for the writer.
        let first = app.post_in_background("/v1/ingest", &Conversation::claude("g0").turn(0));
        app.wait_for_pending("g0", 1).await;
        let rest: Vec<_> = (1..4)
            .map(|i| {
                let turn = Conversation::claude(&format!("g{i}")).turn(0);
                app.post_in_background("/v1/ingest", &turn)
            })
            .collect();
        for i in 1..4 {
            app.wait_for_pending(&format!("g{i}"), 1).await;
        }
        wait_for_writer_queue(&app, 3).await;
        lock.release().await;

        let first = first.await.expect("first request");
        assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text());
        for res in rest {
            let res = res.await.expect("request");
            assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
        }
        let conn = app.db().await;
        let sessions = crate::rows::all_sessions(&conn).await;
        assert_eq!(sessions.len(), 4);
        assert!(sessions.iter().all(|s| s.turn_count == 1));
        let mut nodes = crate::rows::all_nodes(&conn).await;
        assert_eq!(nodes.len(), 8);
        // The three sessions that waited together were written by one commit.
        let first_session = sessions.iter().find(|s| s.harness_session_id == "g0");
        let first_id = first_session.map(|s| s.id);
        nodes.retain(|n| n.session_id != first_id);
        crate::rows::assert_written_by_one_commit(nodes);
        app.stop().await;
    })
    .await;
}

/// A turn the store refuses fails alone even when the sessions waiting with it would have
/// shared its transaction.
#[actix_rt::test]
async fn a_refused_turn_does_not_fail_the_sessions_waiting_with_it() {
    each_backend(|db| async move {
        let app = TestApp::spawn_with(&db, |c| c.database.group_writers = 1).await;
        crate::batch::poison_nodes(&app.db().await).await;
        let lock = WriteLock::take(&app).await;
        let first = app.post_in_background("/v1/ingest", &Conversation::claude("h0").turn(0));
        app.wait_for_pending("h0", 1).await;
        let turns = [
            Conversation::claude("h1").turn(0),
            Conversation::new("poison", Some(crate::fixtures::envelope("h2"))).turn(0),
            Conversation::claude("h3").turn(0),
        ];
        let rest: Vec<_> = turns
            .iter()
            .map(|turn| app.post_in_background("/v1/ingest", turn))
            .collect();
        for id in ["h1", "h2", "h3"] {
            app.wait_for_pending(id, 1).await;
        }
        wait_for_writer_queue(&app, 3).await;
        lock.release().await;

        assert_eq!(first.await.expect("h0").status, StatusCode::ACCEPTED);
        let mut statuses = Vec::new();
        for res in rest {
            let res = res.await.expect("request");
            statuses.push(res.status);
        }
        assert_eq!(statuses[0], StatusCode::ACCEPTED);
        assert!(statuses[1].is_server_error(), "{:?}", statuses[1]);
        assert_eq!(statuses[2], StatusCode::ACCEPTED);
        let conn = app.db().await;
        let sessions = crate::rows::all_sessions(&conn).await;
        let mut ids: Vec<_> = sessions
            .iter()
            .map(|s| s.harness_session_id.as_str())
            .collect();
        ids.sort_unstable();
        assert_eq!(ids, ["h0", "h1", "h3"]);
        assert_eq!(crate::rows::node_count(&conn).await, 6);
        app.stop().await;
    })
    .await;
}
