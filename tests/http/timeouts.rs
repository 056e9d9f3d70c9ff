//! Slow clients (docs/wire.md#timeouts-and-connections): a body must arrive within
//! `server.body_timeout_secs`, else 408 with a JSON error; connections beyond
//! `server.max_connections` wait to be accepted.

use std::time::{Duration, Instant};

use crate::fixtures::Conversation;
use crate::harness::{TestApp, metric};
use crate::limits::snapshot;
use crate::raw::{Raw, post_head};
use crate::support::each_backend;

const TIMEOUT_TEXT: &str = "Request Timeout: the body did not arrive within 1 seconds";

#[actix_rt::test]
async fn a_body_that_stops_arriving_is_408() {
    each_backend(|db| async move {
        let app = TestApp::spawn_with(&db, |c| c.server.body_timeout_secs = 1).await;
        let body = Conversation::claude("stalled").turn(0).to_string();
        let before = snapshot(&app).await;

        let mut conn = Raw::connect(&app).await;
        conn.send(&post_head(body.len(), "")).await;
        conn.send(&body.as_bytes()[..10]).await;
        let started = Instant::now();
        let res = conn.response().await;
        assert_eq!(res.status, 408, "{}", res.head);
        assert_eq!(res.error(), TIMEOUT_TEXT);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            before == snapshot(&app).await,
            "a timed-out turn changed rows"
        );

        let text = app.metrics().await;
        assert_eq!(metric(&text, "reel_body_timeout_total"), 1.0, "{text}");
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn a_body_trickled_a_byte_at_a_time_is_408() {
    each_backend(|db| async move {
        let app = TestApp::spawn_with(&db, |c| c.server.body_timeout_secs = 1).await;
        let body = Conversation::claude("trickled").turn(0).to_string();
        let mut conn = Raw::connect(&app).await;
        conn.send(&post_head(body.len(), "")).await;
        let started = Instant::now();
        // One byte every 200 ms: each byte arrives well within any idle timeout, the whole
        // body would take minutes.
        let mut sent = 0;
        while !conn.readable_within(Duration::from_millis(200)).await {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "never answered"
            );
            conn.send(&body.as_bytes()[sent..=sent]).await;
            sent += 1;
        }
        let res = conn.response().await;
        assert_eq!(res.status, 408, "{}", res.head);
        assert_eq!(res.error(), TIMEOUT_TEXT);
        assert!(sent < body.len());
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn connections_beyond_the_bound_wait_to_be_accepted() {
    each_backend(|db| async move {
        // Two workers, one connection each.
        let app = TestApp::spawn_with(&db, |c| {
            c.server.max_connections = 2;
            c.server.client_request_timeout_secs = 60;
        })
        .await;
        let first = Raw::connect(&app).await;
        let second = Raw::connect(&app).await;
        // Let the workers accept both.
        actix_rt::time::sleep(Duration::from_millis(300)).await;

        let mut third = Raw::connect(&app).await;
        third
            .send(b"GET /ping HTTP/1.1\r\nHost: test\r\n\r\n")
            .await;
        assert!(
            !third.readable_within(Duration::from_millis(700)).await,
            "a third connection was served"
        );
        drop(first);
        drop(second);
        let res = third.response().await;
        assert_eq!(res.status, 200, "{}", res.head);
        app.stop().await;
    })
    .await;
}
