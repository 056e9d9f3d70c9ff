//! Request heads refused before they reach a route (docs/wire.md#errors-and-statuses):
//! actix's dispatcher answers them itself, and reel gives those answers JSON bodies too.

use crate::harness::TestApp;
use crate::limits::snapshot;
use crate::raw::{Raw, RawResponse};
use crate::support::each_backend;

const TOO_LARGE: &str =
    "Request Header Fields Too Large: a request head holds at most 96 headers and 128 KiB";

fn assert_json_error(res: &RawResponse, status: u16, error: &str) {
    assert_eq!(res.status, status, "{}", res.head);
    assert_eq!(res.error(), error);
    assert_eq!(res.header("connection"), Some("close"), "{}", res.head);
}

#[actix_rt::test]
async fn too_many_or_too_large_headers_are_431_json() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let before = snapshot(&app).await;

        let mut many = b"POST /v1/ingest HTTP/1.1\r\nHost: test\r\n".to_vec();
        for i in 0..500 {
            many.extend_from_slice(format!("X-Header-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"Content-Length: 2\r\n\r\n{}");
        let res = Raw::connect(&app).await.send_and_read(&many).await;
        assert_json_error(&res, 431, TOO_LARGE);

        let mut huge = b"GET /ping HTTP/1.1\r\nHost: test\r\nX-Huge: ".to_vec();
        huge.resize(huge.len() + (1 << 20), b'a');
        huge.extend_from_slice(b"\r\n\r\n");
        let res = Raw::connect(&app).await.send_and_read(&huge).await;
        assert_json_error(&res, 431, TOO_LARGE);

        assert!(
            before == snapshot(&app).await,
            "a refused head changed rows"
        );
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn a_malformed_head_is_400_json() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        for head in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET /ping HTTP/1.1\r\nHost: test\r\nBad Header\r\n\r\n",
            b"POST /v1/ingest HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        ] {
            let res = Raw::connect(&app).await.send_and_read(head).await;
            assert_json_error(
                &res,
                400,
                "Bad Request: the request line or headers are malformed",
            );
        }
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn a_head_that_stops_arriving_is_408_json() {
    each_backend(|db| async move {
        let app = TestApp::spawn_with(&db, |c| c.server.client_request_timeout_secs = 1).await;
        let mut conn = Raw::connect(&app).await;
        conn.send(b"POST /v1/ingest HTTP/1.1\r\nHost: test\r\n")
            .await;
        let res = conn.response().await;
        assert_json_error(
            &res,
            408,
            "Request Timeout: the request head did not arrive within 1 seconds",
        );
        app.stop().await;
    })
    .await;
}
