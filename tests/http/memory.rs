//! The body memory budget (docs/wire.md#content-encodings-and-limits): decoded bytes and
//! decoders are charged as they grow, so bodies held at once beyond the budget answer 429,
//! whatever their size on the wire, and the server recovers.

use std::time::Duration;

use actix_web::http::StatusCode;

use crate::fixtures::Conversation;
use crate::harness::{TestApp, eventually, metric};
use crate::raw::{Raw, post_head};
use crate::support::each_backend;

const MIB: usize = 1024 * 1024;
const LIMIT: usize = 16 * MIB;

/// All but the last bytes of a zstd frame of `decoded` zeros: the server decodes almost all
/// of it and then waits for the rest.
fn held_bomb(decoded: usize) -> (usize, Vec<u8>) {
    let wire = zstd::encode_all(&vec![0u8; decoded][..], 3).expect("zstd");
    let len = wire.len();
    (len, wire[..len - 8].to_vec())
}

#[actix_rt::test]
async fn decoded_bytes_held_at_once_are_bounded_by_the_budget() {
    each_backend(|db| async move {
        // The smallest budget that admits one body of the limit: 16 + 1 + 68 MiB.
        let budget = reel::http::min_body_budget(LIMIT);
        let app = TestApp::spawn_with(&db, |c| {
            c.server.body_limit_bytes = LIMIT;
            c.server.body_budget_bytes = budget;
        })
        .await;
        // Each held body is under 800 bytes on the wire and charges its decoder (9 MiB)
        // and 15 MiB of decoded zeros.
        let (len, prefix) = held_bomb(15 * MIB);
        assert!(len < 1000, "{len}");
        let mut held = Vec::new();
        for _ in 0..3 {
            let mut conn = Raw::connect(&app).await;
            conn.send(&post_head(len, "Content-Encoding: zstd\r\n"))
                .await;
            conn.send(&prefix).await;
            held.push(conn);
        }
        // Once the three are charged (their bytes read and decoded), a fourth is refused.
        let mut refused = None;
        for _ in 0..20 {
            let mut conn = Raw::connect(&app).await;
            conn.send(&post_head(len, "Content-Encoding: zstd\r\n"))
                .await;
            conn.send(&prefix).await;
            match tokio::time::timeout(Duration::from_millis(500), conn.response()).await {
                Ok(res) => {
                    refused = Some(res);
                    break;
                }
                // Admitted: some held body was not charged yet. Keep this one held too.
                Err(_) => held.push(conn),
            }
        }
        let res = refused.expect("a held body beyond the budget is refused");
        assert_eq!(res.status, 429, "{}", res.head);
        assert_eq!(
            res.error(),
            "overloaded: request bodies in memory exceed the budget"
        );
        assert_eq!(res.header("retry-after"), Some("1"));
        // A body admitted before an earlier one was charged is refused while it decodes:
        // however they race, at most three stay held.
        let mut still_held = 0;
        for conn in &mut held {
            match tokio::time::timeout(Duration::from_millis(500), conn.response()).await {
                Ok(res) => assert_eq!(res.status, 429, "{}", res.head),
                Err(_) => still_held += 1,
            }
        }
        assert!(still_held <= 3, "{still_held} bodies held at once");
        let text = app.metrics().await;
        assert!(metric(&text, r#"reel_overloaded_total{reason="body_budget"}"#) >= 1.0);

        // Closing the held connections returns their share: turns go through again.
        drop(held);
        let conv = Conversation::claude("after-bombs");
        let accepted = eventually(Duration::from_secs(10), || async {
            app.ingest(&conv.turn(0)).await.status == StatusCode::ACCEPTED
        })
        .await;
        assert!(accepted);
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn a_bomb_is_413_and_too_many_codings_400() {
    each_backend(|db| async move {
        let app = TestApp::spawn_with(&db, |c| c.server.body_limit_bytes = LIMIT).await;
        let bomb = zstd::encode_all(&vec![0u8; 256 * MIB][..], 3).expect("zstd");
        let json = ("content-type", "application/json");
        let res = app
            .post_raw("/v1/ingest", &[json, ("content-encoding", "zstd")], bomb)
            .await;
        assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", res.text());
        assert_eq!(res.error(), "request body exceeds the ingest size limit");
        assert_eq!(
            metric(
                &app.metrics().await,
                r#"tapes_ingest_writes_total{provider="unknown",status="reject_oversize"}"#
            ),
            1.0
        );

        let res = app
            .post_raw(
                "/v1/ingest",
                &[json, ("content-encoding", "gzip, gzip, gzip, gzip, gzip")],
                "x",
            )
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            res.error(),
            "invalid envelope: more than 4 Content-Encodings"
        );

        let res = app.ingest(&Conversation::claude("ok").turn(0)).await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
        app.stop().await;
    })
    .await;
}
