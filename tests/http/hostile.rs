//! A sweep of hostile input: whatever a client sends, the answer is never a 5xx other than
//! 503, every error is a JSON `{"error": …}`, and the server keeps serving valid turns,
//! the sessions it was attacked through included.

use actix_web::http::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::fixtures::{Conversation, envelope};
use crate::harness::{TestApp, TestResponse};
use crate::limits::{ingest_text, with_nested_metadata};
use crate::raw::Raw;
use crate::support::each_backend;

/// `n` bytes of hex that do not compress: Postgres compresses long index entries, so
/// repeated characters would hide an entry that is too large.
fn noise(n: usize) -> String {
    let mut out = String::with_capacity(n + 64);
    let mut block = Sha256::digest(b"reel");
    while out.len() < n {
        out.push_str(&hex::encode(block));
        block = Sha256::digest(block);
    }
    out.truncate(n);
    out
}

/// The session every turn of the sweep is sent to, so a poisoned session would show.
const SESSION: &str = "hostile";

fn turn(n: usize) -> Value {
    Conversation::claude(SESSION).turn(n)
}

fn set(mut value: Value, path: &[&str], to: Value) -> Value {
    let mut at = &mut value;
    for key in &path[..path.len() - 1] {
        at = &mut at[*key];
    }
    at[path[path.len() - 1]] = to;
    value
}

/// Turns that break one bound or rule each, as JSON values.
fn hostile_turns() -> Vec<(String, Value)> {
    let mut cases = Vec::new();
    for (field, value) in [
        ("prompt_tokens", json!(9_223_372_036_854_775_802_i64)),
        ("prompt_tokens", json!(-1_000_000)),
        ("prompt_tokens", json!(40_000_000_000_000_i64)),
        ("completion_tokens", json!(i64::MIN)),
        ("total_tokens", json!(i64::MAX)),
        ("cache_read_input_tokens", json!(-1)),
        ("cache_creation_input_tokens", json!(2_000_000_000)),
        ("total_duration_ns", json!(-1)),
        ("prompt_tokens", json!(1.5)),
        ("prompt_tokens", json!("12")),
    ] {
        cases.push((
            format!("usage {field}={value}"),
            set(turn(1), &["response", "usage", field], value),
        ));
    }
    for field in [
        "harness_id",
        "harness_session_id",
        "auth_subject",
        "parent_harness_session_id",
        "parent_harness_id",
        "harness_version",
        "cwd",
        "name",
        "org_id",
    ] {
        for len in [2_800, 70_000] {
            cases.push((
                format!("envelope {field} of {len} bytes"),
                set(turn(1), &["session", field], json!(noise(len))),
            ));
        }
    }
    cases.push((
        "metadata of 100 KB".to_owned(),
        set(
            turn(1),
            &["session", "harness_metadata"],
            json!({"k": noise(100_000)}),
        ),
    ));
    cases.push((
        "metadata that is an array".to_owned(),
        set(turn(1), &["session", "harness_metadata"], json!([1, 2])),
    ));
    for (path, len) in [
        (&["agent_name"][..], 3_000),
        (&["response", "model"][..], 3_000),
        (&["request", "model"][..], 3_000),
        (&["response", "message", "role"][..], 3_000),
        (&["response", "stop_reason"][..], 100_000),
    ] {
        cases.push((
            format!("{} of {len} bytes", path.join(".")),
            set(turn(1), path, json!(noise(len))),
        ));
    }
    cases.push((
        "a parent hint naming the session itself".to_owned(),
        set(
            turn(1),
            &["session", "parent_harness_session_id"],
            json!(SESSION),
        ),
    ));
    cases.push((
        "NUL everywhere".to_owned(),
        json!({
            "provider": "anthropic",
            "agent_name": "\u{0}",
            "request": {"model": "\u{0}", "messages": [{"role": "\u{0}", "content": "\u{0}"}]},
            "response": {"model": "\u{0}", "stop_reason": "\u{0}",
                         "message": {"role": "\u{0}", "content": [{"type": "\u{0}", "text": "\u{0}"}]}},
            "session": {"harness_id": "\u{0}", "harness_session_id": "\u{0}", "auth_subject": "\u{0}",
                        "harness_metadata": {"\u{0}": "\u{0}"}},
        }),
    ));
    cases.push((
        "huge numbers in free-form objects".to_owned(),
        set(
            turn(1),
            &["response", "message", "content"],
            json!([{"type": "tool_use", "tool_name": "t", "tool_input": {"x": 1e308, "y": -1e308}}]),
        ),
    ));
    cases.push((
        "a provider that is not one".to_owned(),
        set(turn(1), &["provider"], json!(noise(5_000))),
    ));
    cases
}

/// Bodies that are not turns at all, as text.
fn odd_bodies() -> Vec<(String, Vec<u8>)> {
    let valid = turn(1).to_string();
    let mut cases: Vec<(String, Vec<u8>)> = [
        ("empty", ""),
        ("null", "null"),
        ("an array", "[]"),
        ("a number", "42"),
        ("a string", "\"turn\""),
        ("truncated", "{\"provider\":\"anthropic\",\"request\":{"),
        ("whitespace", "   \n\t "),
        ("a lone surrogate", r#"{"provider":"anthropic","agent_name":"\ud800"}"#),
        ("a number out of range", r#"{"provider":"anthropic","response":{"usage":{"prompt_tokens":1e400}}}"#),
        ("an integer beyond 64 bits", r#"{"provider":"anthropic","response":{"usage":{"prompt_tokens":99999999999999999999999}}}"#),
        ("trailing data", "{} {}"),
    ]
    .into_iter()
    .map(|(name, body)| (name.to_owned(), body.as_bytes().to_vec()))
    .collect();
    cases.push((
        "a byte-order mark".to_owned(),
        [b"\xef\xbb\xbf", valid.as_bytes()].concat(),
    ));
    cases.push((
        "invalid UTF-8".to_owned(),
        [valid.as_bytes(), b"\xff\xfe"].concat(),
    ));
    cases.push((
        "a NUL byte outside strings".to_owned(),
        [b"\0", valid.as_bytes()].concat(),
    ));
    let deep = |open: &str, close: &str, n: usize| format!("{}{}", open.repeat(n), close.repeat(n));
    cases.push((
        "10,000 nested arrays".to_owned(),
        deep("[", "]", 10_000).into_bytes(),
    ));
    let request = format!(
        r#"{{"provider":"anthropic","request":{{"model":"m","messages":[{{"role":"user","content":{}}}]}},"response":{}}}"#,
        deep("[", "]", 10_000),
        turn(1)["response"]
    );
    cases.push((
        "a request nested 10,000 deep".to_owned(),
        request.into_bytes(),
    ));
    let tool_input = format!(
        r#"{{"provider":"anthropic","request":{{}},"response":{{"model":"m","message":{{"role":"assistant","content":[{{"type":"tool_use","tool_input":{}}}]}}}}}}"#,
        deep(r#"{"a":"#, "}", 5_000).replacen("}", "1}", 1)
    );
    cases.push((
        "tool input nested 5,000 deep".to_owned(),
        tool_input.into_bytes(),
    ));
    cases.push((
        "a key of 1 MB".to_owned(),
        format!(r#"{{"{}":1,"provider":"anthropic"}}"#, noise(1 << 20)).into_bytes(),
    ));
    cases
}

fn assert_not_a_server_error(what: &str, res: &TestResponse) {
    let status = res.status;
    assert!(
        !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
        "{what}: {status} {}",
        res.text()
    );
    if !status.is_success() {
        assert_eq!(
            res.header("content-type"),
            Some("application/json"),
            "{what}"
        );
        assert!(res.json()["error"].is_string(), "{what}: {}", res.text());
    }
}

#[actix_rt::test]
async fn no_input_is_answered_with_a_server_error() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let first = app.ingest(&turn(0)).await;
        assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text());
        let json = ("content-type", "application/json");

        for (what, turn) in hostile_turns() {
            assert_not_a_server_error(&what, &app.ingest(&turn).await);
            let res = app.batch(&[turn]).await;
            assert_not_a_server_error(&format!("{what} in a batch"), &res);
        }
        for (what, body) in odd_bodies() {
            let res = app.post_raw("/v1/ingest", &[json], body.clone()).await;
            assert_not_a_server_error(&what, &res);
            let batch = [br#"{"turns":["#.as_slice(), &body, b"]}"].concat();
            let res = app.post_raw("/v1/ingest/batch", &[json], batch).await;
            assert_not_a_server_error(&format!("{what} in a batch"), &res);
        }
        let metadata_number = set(turn(1), &["session", "harness_metadata"], json!("@n@"))
            .to_string()
            .replace(r#""@n@""#, r#"{"x":1e400,"y":-1e999999}"#);
        let res = ingest_text(&app, metadata_number).await;
        assert_not_a_server_error("metadata numbers out of range", &res);
        for levels in [127, 5_000] {
            let res = ingest_text(&app, with_nested_metadata(&turn(1), levels)).await;
            assert_not_a_server_error(&format!("metadata {levels} deep"), &res);
        }
        for (what, headers, body) in [
            ("no content type", vec![], turn(1).to_string().into_bytes()),
            (
                "a corrupt gzip body",
                vec![json, ("content-encoding", "gzip")],
                b"\x1f\x8b\x08garbage".to_vec(),
            ),
            (
                "an unknown coding",
                vec![json, ("content-encoding", "lzma")],
                b"x".to_vec(),
            ),
            (
                "a batch of nulls",
                vec![json],
                br#"{"turns":[null,null]}"#.to_vec(),
            ),
            (
                "a batch that is not an array",
                vec![json],
                br#"{"turns":{"a":1}}"#.to_vec(),
            ),
        ] {
            let path = if what.starts_with("a batch") {
                "/v1/ingest/batch"
            } else {
                "/v1/ingest"
            };
            let res = app.post_raw(path, &headers, body).await;
            assert_not_a_server_error(what, &res);
        }
        let long = noise(10_000);
        for path in [
            format!("/v1/nodes/{long}/conversation"),
            format!("/v1/sessions/{long}"),
            format!("/v1/sessions?cursor={long}"),
            "/v1/sessions/%00".to_owned(),
            "/v1/nodes/%00/conversation".to_owned(),
            "/v1/sessions?auth_subject=%00".to_owned(),
            "/v1/ingest/nodes?agent=%00".to_owned(),
            format!("/v1/ingest/nodes?agent={long}"),
            "/v1/ingest/nodes?limit=-1".to_owned(),
            "/v1/ingest/nodes?limit=99999999999999999999999".to_owned(),
            "/v1/ingest/nodes?org_id=%ff".to_owned(),
            format!("/admin/actors/{long}"),
        ] {
            let res = app.get(&path).await;
            assert_not_a_server_error(&path, &res);
        }
        let res = app
            .get_with("/v1/nodes/abc/conversation", &[("x-tapes-org-id", &long)])
            .await;
        assert_not_a_server_error("a long org header", &res);

        // The session every hostile turn named still takes and counts valid turns.
        let res = app.ingest(&turn(1)).await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
        let res = app.ingest(&turn(2)).await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
        assert_eq!(res.json()["counted"], true);
        let res = app
            .ingest(&set(turn(3), &["session"], envelope("another")))
            .await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn no_request_head_is_answered_with_a_server_error() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        for head in [
            b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n".to_vec(),
            b"POST /v1/ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
            b"POST /v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n".to_vec(),
            b"POST /v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\n\r\nnull".to_vec(),
            b"GET /\x00 HTTP/1.1\r\n\r\n".to_vec(),
            b"GET / HTTP/9.9\r\n\r\n".to_vec(),
            [b"GET /".as_slice(), noise(200_000).as_bytes(), b" HTTP/1.1\r\n\r\n"].concat(),
        ] {
            let res = Raw::connect(&app).await.send_and_read(&head).await;
            assert!(
                res.status < 500 || res.status == 503,
                "{}: {}",
                String::from_utf8_lossy(&head[..head.len().min(80)]),
                res.head
            );
            assert_eq!(res.header("content-type"), Some("application/json"), "{}", res.head);
        }
        app.stop().await;
    }).await;
}
