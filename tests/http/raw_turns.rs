//! Reading raw turns back: `reel raw get` prints the payload a turn was posted in (its
//! request byte for byte), `reel raw list` lists them; the admin routes show the same.

use actix_web::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use chrono::Utc;
use reel::chain_cli::chain_of;
use reel::cost::PriceBook;
use reel::turn::{Capture, RawTurn};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::captured::*;
use crate::harness::TestApp;
use crate::support::each_backend;

/// A turn whose request is formatted as no serializer would: spacing, key order, escapes
/// and non-ASCII text survive only if the bytes are kept as they came.
const ODD_BODY: &str = r#"{"provider":"anthropic","agent_name":"tester",
 "request" :  {"messages":[ {"content":"caf\u00e9 — naïve \ud83d\ude00","role":"user"} ],
   "model":"claude-sonnet-4-5-20250929" , "max_tokens":1024 ,"metadata":{"b":1,"a":[ ]}},
 "response":{"model":"claude-sonnet-4-5-20250929","message":{"role":"assistant","content":[{"type":"text","text":"oui"}]},
   "done":true,"stop_reason":"end_turn","usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}},
 "meta":{"request_id":"odd-1","captured_at":"2026-11-01T10:00:00Z","extra":{"kept":true}},
 "session":{"org_id":"","harness_id":"claude","harness_session_id":"odd","harness_metadata":{"x":1}}}"#;

/// The `request` member of `ODD_BODY`, exactly as it is written there.
fn odd_request() -> &'static str {
    let start = ODD_BODY.find(r#"{"messages""#).expect("request");
    let end = ODD_BODY.find(",\n \"response\"").expect("response");
    &ODD_BODY[start..end]
}

fn hashes(body: &[u8]) -> Vec<String> {
    let prices = PriceBook::only(Default::default());
    let chain = chain_of(body, &prices, &reel::merkle::Rules::TAPES_F237B6E).expect("a chain");
    chain.nodes.iter().map(|n| n.hash.clone()).collect()
}

/// The id of the one raw turn `reel raw list` shows for `request_id`.
fn raw_id(captured: &Captured, request_id: &str) -> String {
    let (ok, out, err) = captured.cli(&["raw", "list"]);
    assert!(ok, "{err}");
    let lines = json_lines(&out);
    let line = lines
        .iter()
        .find(|l| l["request_id"] == request_id)
        .unwrap_or_else(|| panic!("no raw turn for {request_id} in {out}"));
    line["id"].as_str().expect("id").to_owned()
}

/// Posts `body` as it is; the response.
async fn post(app: &TestApp, body: impl Into<Bytes>) -> crate::harness::TestResponse {
    app.post_raw(
        "/v1/ingest",
        &[("content-type", "application/json")],
        body.into(),
    )
    .await
}

#[actix_rt::test]
async fn raw_get_prints_the_request_as_posted_and_a_payload_that_reposts_to_the_same_turn() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let res = post(&app, ODD_BODY).await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
        let first = res.json();
        let captured = Captured::open(&db).await;
        let id = raw_id(&captured, "odd-1");

        let (ok, request, err) = captured.cli(&["raw", "get", &id, "--request"]);
        assert!(ok, "{err}");
        assert_eq!(request, odd_request());

        let (ok, out, err) = captured.cli(&["raw", "get", &id]);
        assert!(ok, "{err}");
        // The request is embedded verbatim, not re-serialized, line breaks included.
        assert!(out.contains(odd_request()), "{out}");
        let payload: Value = serde_json::from_str(&out).expect("one JSON object");
        let sent: Value = serde_json::from_str(ODD_BODY).expect("JSON");
        for member in [
            "provider",
            "agent_name",
            "request",
            "response",
            "meta",
            "session",
        ] {
            assert_eq!(payload[member], sent[member], "{member}");
        }
        for absent in [
            "raw_response",
            "raw_response_encoding",
            "raw_response_withheld",
        ] {
            assert!(payload.get(absent).is_none(), "{absent}: {out}");
        }
        assert_eq!(hashes(out.as_bytes()), hashes(ODD_BODY.as_bytes()));

        // Posted again it is the same turn; on a fresh database too, where nothing answers
        // it from a stored request id, and it is stored byte for byte again.
        let res = post(&app, out.clone()).await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
        assert_eq!(res.json()["session_id"], first["session_id"]);
        assert_eq!(res.json()["head"], first["head"]);
        assert_eq!(res.json()["new_nodes"], 0);
        app.stop().await;

        let fresh = crate::support::TestDb::sqlite();
        let app = TestApp::spawn(&fresh).await;
        let res = post(&app, out).await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
        assert_eq!(res.json()["head"], first["head"]);
        assert_eq!(res.json()["new_nodes"], first["new_nodes"]);
        assert_eq!(res.json()["counted"], true);
        app.stop().await;
        let again = Captured::open(&fresh).await;
        let (ok, request, err) = again.cli(&["raw", "get", &raw_id(&again, "odd-1"), "--request"]);
        assert!(ok, "{err}");
        assert_eq!(request, odd_request());
    })
    .await;
}

#[actix_rt::test]
async fn a_raw_only_turn_posted_again_from_raw_get_is_reduced_to_the_same_turn() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let (sent, _) = raw_only_turn("", "http-raw", "reduced twice");
        let res = app.ingest(&sent).await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
        let head = res.json()["head"].clone();
        app.stop().await;
        let captured = Captured::open(&db).await;
        let (ok, out, err) = captured.cli(&["raw", "get", &raw_id(&captured, "http-raw-raw")]);
        assert!(ok, "{err}");
        assert!(
            serde_json::from_str::<Value>(&out)
                .unwrap()
                .get("response")
                .is_none()
        );

        let fresh = crate::support::TestDb::sqlite();
        let app = TestApp::spawn(&fresh).await;
        let res = post(&app, out).await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
        assert_eq!(res.json()["head"], head);
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn a_turn_answered_422_is_read_back_from_its_raw_turn_id() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let mut gemini = turn("", "http-422", 0);
        gemini["provider"] = json!("gemini");
        let res = app.ingest(&gemini).await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            res.text()
        );
        let id = res.json()["raw_turn_id"]
            .as_str()
            .expect("raw_turn_id")
            .to_owned();
        app.stop().await;
        let captured = Captured::open(&db).await;

        let (ok, out, err) = captured.cli(&["raw", "get", &id]);
        assert!(ok, "{err}");
        let payload: Value = serde_json::from_str(&out).expect("JSON");
        for member in [
            "provider",
            "agent_name",
            "request",
            "response",
            "meta",
            "session",
        ] {
            assert_eq!(payload[member], gemini[member], "{member}");
        }
        let (ok, out, err) = captured.cli(&["raw", "list", "--outcome", "rejected"]);
        assert!(ok, "{err}");
        let lines = json_lines(&out);
        assert_eq!(lines.len(), 1, "{out}");
        assert_eq!(lines[0]["id"], id);
        assert_eq!(lines[0]["reason"], "unsupported_provider");
        assert_eq!(lines[0]["status"], 422);
    })
    .await;
}

#[actix_rt::test]
async fn raw_get_of_a_raw_only_turn_keeps_the_bytes_and_leaves_the_reduction_out() {
    each_backend(|db| async move {
        let captured = Captured::open(&db).await;
        let (turn, gzipped) = raw_only_turn("", "raw-only", "forty-two");
        let (committed, id) = captured.accept(&body(&turn), Utc::now()).await;

        let (ok, out, err) = captured.cli(&["raw", "get", &id.to_string()]);
        assert!(ok, "{err}");
        let payload: Value = serde_json::from_str(&out).expect("JSON");
        assert!(payload.get("response").is_none(), "{out}");
        assert_eq!(payload["raw_response"], STANDARD.encode(&gzipped));
        assert_eq!(payload["raw_response_encoding"], "gzip");
        assert_eq!(payload["meta"], turn["meta"]);
        assert_eq!(payload["request"], turn["request"]);

        // The listing says the stored response is the server's reduction.
        let (ok, out, err) = captured.cli(&["raw", "list"]);
        assert!(ok, "{err}");
        let lines = json_lines(&out);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["response_reduced"], true);

        // Reduced again from the bytes, the payload gives the committed chain.
        let again = captured.intake(&serde_json::to_vec(&payload).expect("JSON"), Utc::now());
        let chain = again.prepared.expect("passes").turn.chain;
        assert_eq!(chain.head().hash, committed.head);
    })
    .await;
}

#[actix_rt::test]
async fn raw_get_marks_withheld_bytes_and_refuses_unknown_ids() {
    each_backend(|db| async move {
        let captured = Captured::open(&db).await;
        let mut withheld = turn(ORG_A, "withheld", 0);
        withheld["raw_response_withheld"] = json!(true);
        let (_, id) = captured.accept(&body(&withheld), Utc::now()).await;
        let id = id.to_string();

        let (ok, out, err) = captured.cli(&["raw", "get", &id]);
        assert!(ok, "{err}");
        let payload: Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(payload["raw_response_withheld"], true);
        assert!(payload.get("raw_response").is_none(), "{out}");
        assert_eq!(payload["response"], withheld["response"]);

        // Within its org, and not in another.
        let (ok, _, err) = captured.cli(&["raw", "get", &id, "--org", ORG_A]);
        assert!(ok, "{err}");
        let (ok, out, err) = captured.cli(&["raw", "get", &id, "--org", ORG_B]);
        assert!(!ok);
        assert!(out.is_empty(), "{out}");
        assert!(
            err.contains(&format!("no raw turn {id} in org {ORG_B}")),
            "{err}"
        );

        let unknown = Uuid::now_v7().to_string();
        let (ok, out, err) = captured.cli(&["raw", "get", &unknown, "--request"]);
        assert!(!ok);
        assert!(out.is_empty(), "{out}");
        assert!(err.contains(&format!("no raw turn {unknown}")), "{err}");
    })
    .await;
}

#[actix_rt::test]
async fn raw_list_filters_by_org_session_and_outcome_and_pages() {
    each_backend(|db| async move {
        let captured = Captured::open(&db).await;
        let (first, a0) = captured
            .accept(&body(&turn(ORG_A, "s1", 0)), Utc::now())
            .await;
        let (_, a1) = captured
            .accept(&body(&turn(ORG_A, "s1", 1)), Utc::now())
            .await;
        let (_, b0) = captured
            .accept(&body(&turn(ORG_B, "s2", 0)), Utc::now())
            .await;
        let mut gemini = turn(ORG_A, "s3", 0);
        gemini["provider"] = json!("gemini");
        let rejected = captured
            .quarantine(
                &body(&gemini),
                Utc::now(),
                org(ORG_A),
                "unsupported_provider",
            )
            .await;

        let ids = |args: &[&str]| -> Vec<String> {
            let mut all = vec!["raw", "list"];
            all.extend(args);
            let (ok, out, err) = captured.cli(&all);
            assert!(ok, "{err}");
            json_lines(&out)
                .iter()
                .map(|l| l["id"].as_str().expect("id").to_owned())
                .collect()
        };
        let s = |id: Uuid| id.to_string();
        assert_eq!(ids(&[]), [s(a0), s(a1), s(b0), s(rejected)]);
        assert_eq!(ids(&["--org", ORG_A]), [s(a0), s(a1), s(rejected)]);
        assert_eq!(ids(&["--org", ORG_B]), [s(b0)]);
        let session = first.session_id.to_string();
        assert_eq!(ids(&["--session", &session]), [s(a0), s(a1)]);
        assert_eq!(ids(&["--outcome", "rejected"]), [s(rejected)]);
        assert_eq!(
            ids(&["--outcome", "accepted", "--org", ORG_A]),
            [s(a0), s(a1)]
        );
        assert_eq!(ids(&["--limit", "2"]), [s(a0), s(a1)]);
        assert_eq!(
            ids(&["--limit", "2", "--after", &s(a1)]),
            [s(b0), s(rejected)]
        );

        let (ok, out, _) = captured.cli(&["raw", "list", "--outcome", "rejected"]);
        assert!(ok);
        let line = &json_lines(&out)[0];
        assert_eq!(line["outcome"], "rejected");
        assert_eq!(line["status"], 422);
        assert_eq!(line["reason"], "unsupported_provider");
        assert_eq!(line["org_id"], ORG_A);
        assert_eq!(line["session_id"], Value::Null);
        assert_eq!(line["request_id"], "s3-0");
        let request = serde_json::to_vec(&gemini["request"]).expect("JSON");
        assert_eq!(line["request_size"], request.len());

        let (ok, out, _) = captured.cli(&["raw", "list", "--session", &session, "--limit", "1"]);
        assert!(ok);
        let line = &json_lines(&out)[0];
        assert_eq!(line["outcome"], "accepted");
        assert_eq!(line["status"], 202);
        assert_eq!(line["session_id"], session);
        assert_eq!(line["head_hash"], first.head);
        assert_eq!(line["reason"], Value::Null);
    })
    .await;
}

#[actix_rt::test]
async fn admin_lists_a_sessions_raw_turns_and_shows_one() {
    each_backend(|db| async move {
        let captured = Captured::open(&db).await;
        let mut ids = Vec::new();
        let mut session = Uuid::nil();
        for n in 0..3 {
            let (committed, id) = captured
                .accept(&body(&turn(ORG_A, "admin", n)), Utc::now())
                .await;
            session = committed.session_id;
            ids.push(id.to_string());
        }
        captured
            .accept(&body(&turn(ORG_A, "other", 0)), Utc::now())
            .await;
        let app = TestApp::spawn(&db).await;

        let res = app.get(&format!("/admin/sessions/{session}/raw")).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        let listed = res.json();
        assert_eq!(listed["count"], 3);
        let listed_ids: Vec<&str> = listed["raw_turns"]
            .as_array()
            .expect("raw_turns")
            .iter()
            .map(|r| r["id"].as_str().expect("id"))
            .collect();
        assert_eq!(listed_ids, ids);
        assert!(listed.get("next_after").is_none());
        assert_eq!(listed["raw_turns"][0]["session_id"], session.to_string());

        let res = app
            .get(&format!("/admin/sessions/{session}/raw?limit=2"))
            .await;
        let page = res.json();
        assert_eq!(page["count"], 2);
        assert_eq!(page["next_after"], ids[1]);
        let res = app
            .get(&format!(
                "/admin/sessions/{session}/raw?limit=2&after={}",
                ids[1]
            ))
            .await;
        let page = res.json();
        assert_eq!(page["count"], 1);
        assert_eq!(page["raw_turns"][0]["id"], ids[2]);

        let res = app.get(&format!("/admin/raw/{}", ids[2])).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        let shown = res.json();
        let sent = turn(ORG_A, "admin", 2);
        assert_eq!(shown["summary"]["id"], ids[2]);
        assert_eq!(shown["summary"]["outcome"], "accepted");
        assert_eq!(shown["error"], Value::Null);
        assert_eq!(shown["payload"]["request"], sent["request"]);
        assert_eq!(shown["payload"]["response"], sent["response"]);
        assert_eq!(shown["payload"]["session"], sent["session"]);
        assert!(shown["payload"].get("request_base64").is_none());

        // A session with no raw turns lists none; unknown ids are 404, bad ones 400.
        let res = app
            .get(&format!("/admin/sessions/{}/raw", Uuid::now_v7()))
            .await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(res.json()["count"], 0);
        let unknown = Uuid::now_v7();
        let res = app.get(&format!("/admin/raw/{unknown}")).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND);
        assert_eq!(res.error(), format!("no raw turn {unknown}"));
        for bad in [
            "/admin/raw/nope".to_owned(),
            "/admin/sessions/nope/raw".to_owned(),
            format!("/admin/sessions/{session}/raw?limit=0"),
            format!("/admin/sessions/{session}/raw?after=nope"),
        ] {
            let res = app.get(&bad).await;
            assert_eq!(res.status, StatusCode::BAD_REQUEST, "{bad}");
            assert!(!res.error().is_empty());
        }
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn admin_shows_a_quarantined_turn_with_its_error_and_a_request_that_is_not_json() {
    each_backend(|db| async move {
        let captured = Captured::open(&db).await;
        let mut gemini = turn("", "q", 0);
        gemini["provider"] = json!("gemini");
        let rejected = captured
            .quarantine(&body(&gemini), Utc::now(), Uuid::nil(), "unsupported_provider")
            .await;
        let (odd, _) = RawTurn::new(Capture {
            provider: "anthropic".into(),
            received_at: Utc::now(),
            request: Bytes::from_static(b"\x00not json\xff"),
            ..Capture::default()
        });
        let not_json = captured
            .quarantine_raw(&odd, Uuid::nil(), "unparseable_request", "unprocessable turn: x")
            .await;
        let app = TestApp::spawn_with(&db, |c| c.admin.token = Some("s3cret".to_owned())).await;
        let auth = [("authorization", "Bearer s3cret")];

        for path in [
            format!("/admin/raw/{rejected}"),
            format!("/admin/sessions/{}/raw", Uuid::now_v7()),
        ] {
            let res = app.get(&path).await;
            assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{path}");
            let res = app
                .get_with(&path, &[("authorization", "Bearer wrong")])
                .await;
            assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{path}");
        }

        let res = app.get_with(&format!("/admin/raw/{rejected}"), &auth).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        let shown = res.json();
        assert_eq!(shown["summary"]["outcome"], "rejected");
        assert_eq!(shown["summary"]["reason"], "unsupported_provider");
        assert_eq!(
            shown["error"],
            "unprocessable turn: unsupported provider \"gemini\" (supported: [anthropic openai ollama])"
        );
        assert_eq!(shown["payload"]["provider"], "gemini");
        assert_eq!(shown["payload"]["request"], gemini["request"]);

        let res = app.get_with(&format!("/admin/raw/{not_json}"), &auth).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        let payload = &res.json()["payload"];
        assert_eq!(payload["request_base64"], true);
        assert_eq!(payload["request"], STANDARD.encode(b"\x00not json\xff"));
        app.stop().await;
    })
    .await;
}

/// A Claude Code-like request: `turn` exchanges of messages, then a long system prompt and
/// tools after them, as Anthropic bodies are laid out, so each turn's new bytes are in the
/// middle of a request much longer than a chunk.
fn growing_request(turn: usize) -> String {
    let filler = |seed: usize, len: usize| -> String {
        let words = [
            "store",
            "chunk",
            "turn",
            "fn",
            "let",
            "index",
            "héllo",
            "\\\"q\\\"",
        ];
        let mut out = String::new();
        let mut i = seed;
        while out.len() < len {
            i = i.wrapping_mul(2_654_435_761).wrapping_add(12_345) % 1_000_003;
            out.push_str(words[i % words.len()]);
            out.push_str(if i.is_multiple_of(7) { "\\n" } else { " " });
        }
        out
    };
    let mut messages = Vec::new();
    for i in 0..turn {
        messages.push(format!(
            r#"{{"role":"user","content":"{}"}}"#,
            filler(i * 2, 3_000)
        ));
        if i + 1 < turn {
            messages.push(format!(
                r#"{{"role":"assistant","content":"{}"}}"#,
                filler(i * 2 + 1, 2_000)
            ));
        }
    }
    format!(
        r#"{{"max_tokens":32000,"messages":[{}],"model":"claude-sonnet-4-5","system":"{}","tools":[{{"name":"Edit","description":"{}"}}]}}"#,
        messages.join(","),
        filler(1_000_001, 60_000),
        filler(1_000_002, 30_000)
    )
}

#[actix_rt::test]
async fn a_session_of_requests_growing_in_the_middle_reads_back_byte_for_byte() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let requests: Vec<String> = (1..=6).map(growing_request).collect();
        for (i, request) in requests.iter().enumerate() {
            let body = format!(
                r#"{{"provider":"anthropic","request":{request},"response":{{"model":"claude-sonnet-4-5","message":{{"role":"assistant","content":[{{"type":"text","text":"answer {i}"}}]}},"done":true,"stop_reason":"end_turn","usage":{{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}}},"meta":{{"request_id":"grow-{i}"}},"session":{{"org_id":"","harness_id":"claude","harness_session_id":"grow"}}}}"#
            );
            let res = post(&app, body).await;
            assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
        }
        let captured = Captured::open(&db).await;
        for (i, request) in requests.iter().enumerate() {
            let id = raw_id(&captured, &format!("grow-{i}"));
            let (ok, back, err) = captured.cli(&["raw", "get", &id, "--request"]);
            assert!(ok, "{err}");
            assert!(back == *request, "turn {i}: the request read back differs");
        }
    })
    .await;
}
