//! Concurrency within one session: every turn commits exactly once, in any arrival order.

use actix_web::http::StatusCode;
use futures_util::future::join_all;
use uuid::Uuid;

use crate::fixtures::Conversation;
use crate::harness::{TestApp, client, metric, read};
use crate::rows;
use crate::support::each_backend;

/// 50 turns of one session sent concurrently over 16 connections all commit; the counters
/// equal 50 and no request fails.
#[actix_rt::test]
async fn fifty_concurrent_turns_of_one_session_all_count() {
    const TURNS: usize = 50;
    const CONNECTIONS: usize = 16;
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let conv = Conversation::claude("fifty");
        let url = app.url("/v1/ingest");
        let senders = (0..CONNECTIONS).map(|c| {
            let conv = conv.clone();
            let url = url.clone();
            async move {
                // One client per sender: its own connection.
                let client = client();
                let mut statuses = Vec::new();
                for n in (c..TURNS).step_by(CONNECTIONS) {
                    let body = serde_json::to_vec(&conv.turn(n)).expect("json");
                    let res = client
                        .post(&url)
                        .insert_header(("content-type", "application/json"))
                        .send_body(body)
                        .await
                        .expect("POST");
                    let res = read(res).await;
                    statuses.push((n, res.status, res.text()));
                }
                statuses
            }
        });
        let statuses: Vec<_> = join_all(senders).await.into_iter().flatten().collect();
        assert_eq!(statuses.len(), TURNS);
        for (n, status, body) in &statuses {
            assert_eq!(*status, StatusCode::ACCEPTED, "turn {n}: {body}");
        }

        let conn = app.db().await;
        let sessions = rows::all_sessions(&conn).await;
        assert_eq!(sessions.len(), 1);
        let row = &sessions[0];
        assert_eq!(row.turn_count, TURNS as i32);
        let input: i64 = (0..TURNS as i64).map(|n| 100 + n).sum();
        let output: i64 = (0..TURNS as i64).map(|n| 10 + n).sum();
        assert_eq!(
            (row.total_input_tokens, row.total_output_tokens),
            (input, output)
        );
        let nodes = rows::all_nodes(&conn).await;
        assert_eq!(nodes.len(), 2 * TURNS);
        assert_eq!(nodes.iter().filter(|n| n.is_turn_head).count(), TURNS);

        let text = app.metrics().await;
        assert_eq!(
            metric(&text, r#"reel_turns_total{outcome="counted"}"#),
            TURNS as f64
        );
        assert_eq!(
            metric(&text, "reel_session_actor_spawns_total"),
            1.0,
            "{text}"
        );
        app.stop().await;
    })
    .await;
}

/// Turn N+1 (which re-sends N's answer as history) arriving first does not stop N from being
/// counted with its usage (docs/divergences.md#counted-once).
#[actix_rt::test]
async fn a_turn_arriving_after_its_successor_is_still_counted() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let conv = Conversation::claude("reversed");
        let later = app.ingest(&conv.turn(1)).await;
        assert_eq!(later.status, StatusCode::ACCEPTED, "{}", later.text());
        assert_eq!(later.json()["counted"], true);
        assert_eq!(later.json()["new_nodes"], 4);

        let earlier = app.ingest(&conv.turn(0)).await;
        assert_eq!(earlier.status, StatusCode::ACCEPTED, "{}", earlier.text());
        let body = earlier.json();
        assert_eq!(body["counted"], true, "{body}");
        assert_eq!(body["new_nodes"], 0, "{body}");

        let conn = app.db().await;
        let session_id = Uuid::try_parse(body["session_id"].as_str().expect("id")).expect("uuid");
        let row = rows::session(&conn, session_id).await;
        assert_eq!(row.turn_count, 2);
        assert_eq!(row.total_input_tokens, 100 + 101);
        let head = rows::node(&conn, Uuid::nil(), body["head"].as_str().expect("head"))
            .await
            .expect("head row");
        assert!(head.is_turn_head);
        assert_eq!(head.stop_reason.as_deref(), Some("end_turn"));
        assert_eq!(head.prompt_tokens, Some(100));
        app.stop().await;
    })
    .await;
}
