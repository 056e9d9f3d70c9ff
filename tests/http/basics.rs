//! Health, metrics, routing errors, body limits and Content-Encoding.

use std::io::Write;

use actix_web::http::StatusCode;

use crate::fixtures::{Conversation, sample_turn};
use crate::harness::{TestApp, metric};
use crate::support::each_backend;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("deflate");
    enc.finish().expect("deflate")
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).expect("zstd")
}

#[actix_rt::test]
async fn ping_returns_ok() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let res = app.get("/ping").await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(res.header("content-type"), Some("application/json"));
        assert_eq!(res.text(), r#"{"status":"ok"}"#);
        assert!(res.header("x-request-id").is_some_and(|id| !id.is_empty()));
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn metrics_are_scrapeable_before_any_write() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let res = app.get("/metrics").await;
        assert_eq!(res.status, StatusCode::OK);
        assert!(
            res.header("content-type")
                .is_some_and(|ct| ct.starts_with("text/plain")),
            "{:?}",
            res.headers
        );
        let text = res.text();
        assert!(
            text.contains("# TYPE tapes_ingest_worker_queue_depth gauge"),
            "{text}"
        );
        assert!(text.contains("tapes_ingest_worker_queue_depth 0"), "{text}");
        assert!(text.contains("reel_session_actors 0"), "{text}");
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn unknown_paths_and_wrong_methods_answer_json() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let res = app.get("/nope").await;
        assert_eq!(res.status, StatusCode::NOT_FOUND);
        assert_eq!(res.header("content-type"), Some("application/json"));
        assert_eq!(res.error(), "Cannot GET /nope");

        let res = app.get("/v1/ingest").await;
        assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(res.error(), "Method Not Allowed");

        let res = app.post_raw("/ping", &[], "").await;
        assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED);
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn malformed_and_empty_bodies_are_invalid_envelopes() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let json = [("content-type", "application/json")];
        let res = app.post_raw("/v1/ingest", &json, "{not json").await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        assert!(
            res.error().starts_with("invalid envelope: "),
            "{}",
            res.text()
        );

        let res = app.post_raw("/v1/ingest", &json, "").await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        assert!(
            res.error().starts_with("invalid envelope: "),
            "{}",
            res.text()
        );

        let text = app.metrics().await;
        assert_eq!(
            metric(
                &text,
                r#"tapes_ingest_writes_total{provider="unknown",status="reject_envelope"}"#
            ),
            2.0,
            "{text}"
        );
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn bodies_that_are_not_json_typed_are_refused_like_the_reference() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let body = serde_json::to_vec(&sample_turn(None)).expect("json");
        let res = app.post_raw("/v1/ingest", &[], body.clone()).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        assert_eq!(res.error(), "invalid envelope: Unprocessable Entity");

        let res = app
            .post_raw("/v1/ingest", &[("content-type", "text/plain")], body)
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        assert_eq!(res.error(), "invalid envelope: Unprocessable Entity");
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn bodies_over_the_limit_answer_413_json() {
    each_backend(|db| async move {
        let app = TestApp::spawn_with(&db, |c| c.server.body_limit_bytes = 4096).await;
        let big = serde_json::to_vec(&Conversation::claude("big").turn(60)).expect("json");
        assert!(big.len() > 4096);
        let json = ("content-type", "application/json");

        // Refused from Content-Length, before reading.
        let res = app.post_raw("/v1/ingest", &[json], big.clone()).await;
        assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(res.header("content-type"), Some("application/json"));
        assert_eq!(res.error(), "request body exceeds the ingest size limit");

        // A small compressed body that decodes to more than the limit.
        let res = app
            .post_raw(
                "/v1/ingest/batch",
                &[json, ("content-encoding", "gzip")],
                gzip(&big),
            )
            .await;
        assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", res.text());

        let text = app.metrics().await;
        assert_eq!(metric(&text, "reel_body_too_large_total"), 2.0, "{text}");
        // The server is still fine.
        assert_eq!(app.get("/ping").await.status, StatusCode::OK);
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn content_encodings_are_decoded_before_parsing() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let json = ("content-type", "application/json");
        // Malformed JSON inside each encoding: the error is the JSON decoder's, which proves
        // the body was decompressed first.
        let bad = b"{\"provider\": nope}";
        for (name, body) in [
            ("gzip", gzip(bad)),
            ("deflate", deflate(bad)),
            ("zstd", zstd(bad)),
        ] {
            let res = app
                .post_raw("/v1/ingest", &[json, ("content-encoding", name)], body)
                .await;
            assert_eq!(res.status, StatusCode::BAD_REQUEST, "{name}");
            let error = res.error();
            assert!(error.starts_with("invalid envelope: "), "{name}: {error}");
            assert!(!error.contains("decode the"), "{name}: {error}");
        }

        // A body that is not what its header says.
        let res = app
            .post_raw("/v1/ingest", &[json, ("content-encoding", "gzip")], "plain")
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        assert!(
            res.error().contains("cannot decode the gzip body"),
            "{}",
            res.text()
        );

        let res = app
            .post_raw("/v1/ingest", &[json, ("content-encoding", "compress")], "x")
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        assert!(
            res.error().contains("unsupported Content-Encoding"),
            "{}",
            res.text()
        );
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn request_ids_are_echoed() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let res = app.get_with("/ping", &[("x-request-id", "abc-123")]).await;
        assert_eq!(res.header("x-request-id"), Some("abc-123"));
        app.stop().await;
    })
    .await;
}
