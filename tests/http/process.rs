//! The `reel` binary itself: CLI, graceful shutdown under load, two processes on one Postgres.

use std::process::Command;
use std::time::Duration;

use actix_web::http::StatusCode;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::Value;
use uuid::Uuid;

use crate::child::{REEL, ReelProcess};
use crate::fixtures::Conversation;
use crate::harness::{TestResponse, client, read};
use crate::rows;
use crate::support::{TestDb, each_backend};

async fn post(client: &awc::Client, url: &str, turn: &Value) -> Option<TestResponse> {
    let body = serde_json::to_vec(turn).expect("json");
    let res = client
        .post(url)
        .insert_header(("content-type", "application/json"))
        .send_body(body)
        .await
        .ok()?;
    let mut res = res;
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.body().limit(1 << 20).await.ok()?;
    Some(TestResponse {
        status,
        headers,
        body,
    })
}

#[test]
fn help_explains_each_command() {
    let out = Command::new(REEL)
        .arg("--help")
        .output()
        .expect("reel --help");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["serve", "migrate", "chain", "REEL_DATABASE_URL"] {
        assert!(text.contains(word), "{word} missing from:\n{text}");
    }
    let out = Command::new(REEL)
        .args(["serve", "--help"])
        .output()
        .expect("reel serve --help");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("--config") && text.contains("SIGTERM"),
        "{text}"
    );
}

#[actix_rt::test]
async fn migrate_applies_the_schema() {
    each_backend(|db| async move {
        let out = Command::new(REEL)
            .args(["migrate", "--database-url", &db.url])
            .output()
            .expect("reel migrate");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The schema is there: the entities can be read.
        let conn = db.connect_raw().await;
        assert!(rows::all_sessions(&conn).await.is_empty());
        let out = Command::new(REEL)
            .args(["migrate", "--database-url", &db.url, "status"])
            .output()
            .expect("reel migrate status");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    })
    .await;
}

/// SIGTERM while 200 turns are in flight: the process exits cleanly and every turn that was
/// answered 202 is in the database.
#[actix_rt::test]
async fn sigterm_under_load_loses_no_acknowledged_turn() {
    each_backend(|db| async move {
        let mut reel = ReelProcess::start(&db.url);
        let url = reel.url("/v1/ingest");
        let turns: Vec<Value> = (0..40)
            .flat_map(|s| {
                let conv = Conversation::claude(&format!("term-{s}"));
                (0..5).map(move |n| conv.turn(n))
            })
            .collect();
        assert_eq!(turns.len(), 200);

        let mut in_flight: FuturesUnordered<_> = turns
            .iter()
            .map(|turn| {
                let url = url.clone();
                async move {
                    // A client each: 200 concurrent connections.
                    let client = client();
                    post(&client, &url, turn).await
                }
            })
            .collect();
        let mut acknowledged: Vec<(Uuid, String)> = Vec::new();
        let mut terminated = false;
        while let Some(res) = in_flight.next().await {
            match res {
                Some(res) if res.status == StatusCode::ACCEPTED => {
                    let body = res.json();
                    acknowledged.push((
                        Uuid::try_parse(body["session_id"].as_str().expect("id")).expect("uuid"),
                        body["head"].as_str().expect("head").to_owned(),
                    ));
                }
                Some(res) => assert!(
                    res.status == StatusCode::SERVICE_UNAVAILABLE
                        || res.status == StatusCode::TOO_MANY_REQUESTS,
                    "unexpected {}: {}",
                    res.status,
                    res.text()
                ),
                // Cut or refused before an answer: not acknowledged, nothing to check.
                None => {}
            }
            if !terminated {
                // The first answer proves the server is busy: stop it now.
                reel.terminate();
                terminated = true;
            }
        }
        let status = reel.wait(Duration::from_secs(60));
        assert!(status.success(), "reel exited with {status}");
        assert!(!acknowledged.is_empty());
        eprintln!(
            "{:?}: {} acknowledged, {} refused or cut",
            db.backend,
            acknowledged.len(),
            200 - acknowledged.len()
        );

        let conn = db.connect_raw().await;
        for (session_id, head) in &acknowledged {
            let node = rows::node(&conn, Uuid::nil(), head)
                .await
                .unwrap_or_else(|| panic!("acknowledged head {head} is not stored"));
            assert!(node.is_turn_head, "{head} not marked as a head");
            rows::session(&conn, *session_id).await;
        }
    })
    .await;
}

/// Two reel processes on one Postgres ingest the same 500 turns concurrently: every turn is
/// counted once and each session has one row.
#[actix_rt::test]
async fn two_processes_share_one_postgres() {
    let Some(db) = TestDb::postgres_only().await else {
        return;
    };
    // Started together: both run the startup migration at once.
    let (mut a, mut b) = std::thread::scope(|s| {
        let a = s.spawn(|| ReelProcess::start(&db.url));
        let b = s.spawn(|| ReelProcess::start(&db.url));
        (a.join().expect("start a"), b.join().expect("start b"))
    });
    const SESSIONS: usize = 50;
    const TURNS: usize = 10;
    let turns: Vec<Value> = (0..SESSIONS)
        .flat_map(|s| {
            let conv = Conversation::claude(&format!("shared-{s}"));
            (0..TURNS).map(move |n| conv.turn(n))
        })
        .collect();

    let send_all = |base: String, order_seed: usize| {
        let mut order: Vec<usize> = (0..turns.len()).collect();
        // Each process sees the turns in a different order.
        order.rotate_left(order_seed % turns.len());
        let turns = &turns;
        async move {
            let client = client();
            let url = format!("{base}/v1/ingest");
            futures_util::stream::iter(order)
                .map(|i| {
                    let client = client.clone();
                    let url = url.clone();
                    async move {
                        // 429/503 are answers to retry, not failures.
                        for _ in 0..100 {
                            let body = serde_json::to_vec(&turns[i]).expect("json");
                            let res = client
                                .post(&url)
                                .insert_header(("content-type", "application/json"))
                                .send_body(body)
                                .await
                                .expect("POST");
                            let res = read(res).await;
                            match res.status {
                                StatusCode::ACCEPTED => return,
                                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                                    actix_rt::time::sleep(Duration::from_millis(50)).await
                                }
                                other => panic!("turn {i}: {other}: {}", res.text()),
                            }
                        }
                        panic!("turn {i} never accepted");
                    }
                })
                .buffer_unordered(16)
                .collect::<Vec<()>>()
                .await
        }
    };
    futures_util::future::join(send_all(a.url(""), 0), send_all(b.url(""), 250)).await;

    let conn = db.connect_raw().await;
    let sessions = rows::all_sessions(&conn).await;
    assert_eq!(sessions.len(), SESSIONS);
    assert!(sessions.iter().all(|s| s.turn_count == TURNS as i32));
    let nodes = rows::all_nodes(&conn).await;
    assert_eq!(nodes.len(), SESSIONS * TURNS * 2);
    assert_eq!(
        nodes.iter().filter(|n| n.is_turn_head).count(),
        SESSIONS * TURNS
    );
    a.terminate();
    b.terminate();
    assert!(a.wait(Duration::from_secs(60)).success());
    assert!(b.wait(Duration::from_secs(60)).success());
}
