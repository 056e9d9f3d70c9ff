//! What capture clients send today (docs/capture.md): raw-only turns reduced by the server,
//! the raw turn kept in the turn's transaction, request-id retries, and the quarantine.

use actix_web::http::StatusCode;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};
use serde_json::{Value, json};
use uuid::Uuid;

use reel::store::{CommitOptions, RawOutcome, Store, StoredRawTurn};

use crate::harness::{TestApp, TestResponse, metric};
use crate::rows;
use crate::support::each_backend;
use crate::support::reads::count;

/// Every line of `raw-reduce.jsonl`: the name, the payload and the expectation.
fn raw_reduce_lines() -> Vec<(String, Value, Value)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/conformance/raw-reduce.jsonl"
    );
    let text = std::fs::read_to_string(path).expect("tests/data/conformance/raw-reduce.jsonl");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut v: Value = serde_json::from_str(line).expect("a conformance line");
            let name = v["name"].as_str().unwrap_or_default().to_owned();
            (name, v["payload"].take(), v["expect"].take())
        })
        .collect()
}

fn line(name: &str) -> Value {
    raw_reduce_lines()
        .into_iter()
        .find(|(n, ..)| n == name)
        .map(|(_, payload, _)| payload)
        .unwrap_or_else(|| panic!("no line {name}"))
}

async fn store(app: &TestApp) -> Store {
    Store::new(app.db().await, CommitOptions::default())
}

/// The raw turn stored under `request_id` in the nil org.
async fn raw_by_request_id(app: &TestApp, request_id: &str) -> StoredRawTurn {
    let store = store(app).await;
    let answer = store
        .raw_answer(Uuid::nil(), request_id)
        .await
        .expect("raw answer")
        .unwrap_or_else(|| panic!("no raw turn for {request_id}"));
    store
        .raw_turn(None, answer.id)
        .await
        .expect("raw turn")
        .expect("the raw turn exists")
}

async fn raw_by_id(app: &TestApp, id: &str) -> StoredRawTurn {
    let id = Uuid::parse_str(id).expect("a raw_turn_id");
    store(app)
        .await
        .raw_turn(None, id)
        .await
        .expect("raw turn")
        .expect("the raw turn exists")
}

fn raw_turn_id(res: &TestResponse) -> String {
    res.json()["raw_turn_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no raw_turn_id in {}", res.text()))
        .to_owned()
}

#[actix_rt::test]
async fn every_raw_reduce_vector_is_answered_reduced_and_kept_as_the_reference_does() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let (mut accepted, mut rejected) = (0, 0);
        for (name, payload, expect) in raw_reduce_lines() {
            let res = app.ingest(&payload).await;
            let status = expect["status"].as_u64().expect("status") as u16;
            assert_eq!(res.status.as_u16(), status, "{name}: {}", res.text());
            let raw = if status == 202 {
                accepted += 1;
                let request_id = payload["meta"]["request_id"].as_str().expect("request id");
                let raw = raw_by_request_id(&app, request_id).await;
                assert_eq!(raw.summary.outcome, RawOutcome::Accepted, "{name}");
                assert_eq!(
                    raw.summary.head_hash.as_deref(),
                    res.json()["head"].as_str(),
                    "{name}"
                );
                raw
            } else {
                rejected += 1;
                let raw = raw_by_id(&app, &raw_turn_id(&res)).await;
                assert_eq!(raw.summary.outcome, RawOutcome::Rejected, "{name}");
                assert_eq!(raw.error.as_deref(), Some(res.error().as_str()), "{name}");
                raw
            };
            // The request exactly as posted, the reduction exactly as the reference's.
            let sent = serde_json::to_vec(&payload["request"]).expect("request");
            assert_eq!(raw.request, sent, "{name}: request bytes");
            match expect.get("reduced_response") {
                Some(reduced) => {
                    let stored: Value = serde_json::from_str(
                        raw.response.as_deref().expect("a reduction is kept"),
                    )
                    .expect("the reduction is JSON");
                    assert_eq!(&stored, reduced, "{name}: reduced response");
                    assert!(raw.summary.response_reduced, "{name}");
                }
                None => assert_eq!(raw.response, None, "{name}"),
            }
            assert_eq!(
                raw.summary.truncated,
                expect["truncated"].as_bool().unwrap_or(false),
                "{name}"
            );
            // `raw_response` is kept still encoded.
            let sent = payload["raw_response"].as_str().expect("raw_response");
            let kept = raw.raw_response.as_deref().expect("bytes are kept");
            assert_eq!(reel::wire::decode_base64(sent).expect("base64"), kept);
        }
        assert_eq!((accepted, rejected), (91, 14));
        let text = app.metrics().await;
        assert_eq!(
            metric(&text, r#"reel_quarantined_total{reason="reduction_failed"}"#)
                + metric(&text, r#"reel_quarantined_total{reason="invalid_response"}"#),
            14.0,
            "{text}"
        );
        assert!(
            metric(
                &text,
                r#"tapes_ingest_rawonly_stamp_total{field="created_at",provider="anthropic",source="captured_at"}"#
            ) > 0.0,
            "{text}"
        );
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn a_raw_only_turn_commits_with_its_raw_turn_and_a_retry_writes_nothing() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let mut turn = line("raw-anthropic/messages_stream.sse-gzip");
        turn["session"] = json!({"harness_id": "claude-code", "harness_session_id": "cap-1"});
        turn["meta"]["request_id"] = json!("req-retry-1");
        let first = app.ingest(&turn).await;
        assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text());
        let body = first.json();
        assert_eq!(
            (body["new_nodes"].as_u64(), body["counted"].as_bool()),
            (Some(2), Some(true))
        );

        let conn = app.db().await;
        let session_id = Uuid::parse_str(body["session_id"].as_str().unwrap()).unwrap();
        let raw = raw_by_request_id(&app, "req-retry-1").await;
        assert_eq!(raw.summary.session_id, Some(session_id));
        assert_eq!(raw.summary.harness_session_id.as_deref(), Some("cap-1"));
        assert_eq!(
            serde_json::from_str::<Value>(raw.envelope.as_deref().unwrap()).unwrap(),
            turn["session"]
        );
        let (nodes, raws, chunks) = (
            rows::node_count(&conn).await,
            count(&conn, "raw_turns").await,
            count(&conn, "raw_chunks").await,
        );

        // The retry (even with another body) is answered as the first attempt was.
        let mut retry = turn.clone();
        retry["agent_name"] = json!("changed");
        let again = app.ingest(&retry).await;
        assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.text());
        let body2 = again.json();
        assert_eq!(body2["session_id"], body["session_id"]);
        assert_eq!(body2["head"], body["head"]);
        assert_eq!(
            (body2["new_nodes"].as_u64(), body2["counted"].as_bool()),
            (Some(0), Some(false))
        );
        assert_eq!(rows::node_count(&conn).await, nodes);
        assert_eq!(count(&conn, "raw_turns").await, raws);
        assert_eq!(count(&conn, "raw_chunks").await, chunks);
        let session = rows::session(&conn, session_id).await;
        assert_eq!(session.turn_count, 1);
        let text = app.metrics().await;
        assert_eq!(metric(&text, "reel_raw_replayed_total"), 1.0);
        assert_eq!(
            metric(&text, "reel_raw_chunks_written_total"),
            chunks as f64
        );
        assert!(metric(&text, "reel_raw_bytes_stored_total") > 0.0, "{text}");
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn a_turn_without_a_reducer_is_quarantined_and_moves_nothing() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let mut turn = line("raw-anthropic/messages_stream.sse-identity");
        turn["provider"] = json!("gemini");
        turn["meta"]["request_id"] = json!("req-gemini");
        turn["session"] = json!({"harness_id": "gemini-cli", "harness_session_id": "g-1"});
        let res = app.ingest(&turn).await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            res.text()
        );
        assert!(
            res.error()
                .starts_with("unprocessable turn: unsupported provider"),
            "{}",
            res.text()
        );
        let id = raw_turn_id(&res);
        let raw = raw_by_id(&app, &id).await;
        assert_eq!(raw.summary.outcome, RawOutcome::Rejected);
        assert_eq!(raw.summary.reason.as_deref(), Some("unsupported_provider"));
        assert_eq!(raw.summary.harness_session_id.as_deref(), Some("g-1"));
        let conn = app.db().await;
        assert_eq!(rows::node_count(&conn).await, 0);
        assert!(rows::all_sessions(&conn).await.is_empty());

        // Its retry gets the same answer and stores nothing more.
        let again = app.ingest(&turn).await;
        assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(raw_turn_id(&again), id);
        assert_eq!(again.error(), res.error());
        assert_eq!(count(&conn, "raw_turns").await, 1);
        let text = app.metrics().await;
        assert_eq!(
            metric(
                &text,
                r#"reel_quarantined_total{reason="unsupported_provider"}"#
            ),
            1.0,
            "{text}"
        );
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn the_quarantine_budget_bounds_what_an_org_keeps() {
    each_backend(|db| async move {
        let app = TestApp::spawn_with(&db, |c| c.capture.quarantine_bytes_per_org = 64).await;
        let mut turn = line("raw-anthropic/messages_stream.sse-identity");
        turn["provider"] = json!("gemini");
        let res = app.ingest(&turn).await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            res.text()
        );
        assert!(res.json().get("raw_turn_id").is_none(), "{}", res.text());
        let conn = app.db().await;
        assert_eq!(count(&conn, "raw_turns").await, 0);
        let text = app.metrics().await;
        assert_eq!(
            metric(
                &text,
                r#"reel_quarantine_skipped_total{reason="over_budget"}"#
            ),
            1.0,
            "{text}"
        );
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn without_raw_capture_turns_are_still_reduced_but_nothing_raw_is_kept() {
    each_backend(|db| async move {
        let app = TestApp::spawn_with(&db, |c| c.capture.raw = false).await;
        let res = app
            .ingest(&line("raw-openai_responses/stream.sse-gzip"))
            .await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
        let mut bad = line("raw-anthropic/messages_stream.sse-identity");
        bad["provider"] = json!("gemini");
        let res = app.ingest(&bad).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(res.json().get("raw_turn_id").is_none());
        let conn = app.db().await;
        // A Responses request has no `messages` under these rules: the head alone.
        assert_eq!(rows::node_count(&conn).await, 1);
        assert_eq!(count(&conn, "raw_turns").await, 0);
        app.stop().await;
    })
    .await;
}

/// Makes every insert into `raw_chunks`, the last statement of a turn with a raw turn, fail.
async fn break_chunk_inserts(db: &DatabaseConnection) {
    let statements = match db.get_database_backend() {
        DbBackend::Postgres => vec![
            "CREATE OR REPLACE FUNCTION reject_insert() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'injected failure' USING ERRCODE = 'check_violation'; END $$",
            "CREATE TRIGGER reject_chunks BEFORE INSERT ON raw_chunks
             FOR EACH ROW EXECUTE FUNCTION reject_insert()",
        ],
        _ => vec![
            "CREATE TRIGGER reject_chunks BEFORE INSERT ON raw_chunks
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        ],
    };
    for s in statements {
        db.execute_unprepared(s)
            .await
            .expect("install failing trigger");
    }
}

#[actix_rt::test]
async fn a_failure_after_the_raw_row_leaves_nothing_of_the_turn() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let conn = app.db().await;
        break_chunk_inserts(&conn).await;
        let mut turn = line("raw-anthropic/messages_tool_use.sse-identity");
        turn["session"] = json!({"harness_id": "claude-code", "harness_session_id": "fault-1"});
        let res = app.ingest(&turn).await;
        assert!(res.status.is_server_error(), "{}", res.text());
        assert_eq!(rows::node_count(&conn).await, 0);
        assert!(rows::all_sessions(&conn).await.is_empty());
        assert_eq!(count(&conn, "raw_turns").await, 0);
        assert_eq!(count(&conn, "raw_chunks").await, 0);
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn a_batch_captures_each_turn_and_its_retry_is_answered_from_the_raw_turns() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let mut good = line("raw-openai_responses/oneshot.json-gzip");
        good["meta"]["request_id"] = json!("batch-good");
        let mut bad = line("raw-anthropic/messages_stream.sse-identity");
        bad["provider"] = json!("gemini");
        bad["meta"]["request_id"] = json!("batch-bad");
        let mut invalid = line("raw-anthropic/messages_stream.sse-identity");
        invalid["session"] = json!({"org_id": "not-a-uuid"});
        let res = app.batch(&[good.clone(), bad.clone(), invalid]).await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
        let body = res.json();
        assert_eq!(
            (body["accepted"].as_u64(), body["rejected"].as_u64()),
            (Some(1), Some(2))
        );
        let results = body["results"].as_array().expect("results").clone();
        assert_eq!(results[0]["status"], "accepted");
        let raw_id = results[1]["raw_turn_id"]
            .as_str()
            .expect("quarantined")
            .to_owned();
        assert!(
            results[2].get("raw_turn_id").is_none(),
            "a 400 is not captured: {body}"
        );

        let conn = app.db().await;
        let (nodes, raws) = (
            rows::node_count(&conn).await,
            count(&conn, "raw_turns").await,
        );
        assert_eq!(raws, 2);
        let again = app.batch(&[good, bad]).await.json();
        assert_eq!(again["results"][0]["status"], "accepted");
        assert_eq!(again["results"][0]["head"], results[0]["head"]);
        assert_eq!(
            again["results"][1]["raw_turn_id"].as_str(),
            Some(raw_id.as_str())
        );
        assert_eq!(again["results"][1]["error"], results[1]["error"]);
        assert_eq!(rows::node_count(&conn).await, nodes);
        assert_eq!(count(&conn, "raw_turns").await, raws);
        assert_eq!(metric(&app.metrics().await, "reel_raw_replayed_total"), 2.0);
        app.stop().await;
    })
    .await;
}

/// The exact text of a payload's `request` member, found by serde_json itself. Lone
/// surrogate escapes (which serde_json refuses) are repaired first; the repair keeps every
/// length, so the place found is the place in the original text.
fn request_text(payload: &str) -> Option<&str> {
    struct Members<'a>(Vec<(String, &'a serde_json::value::RawValue)>);
    impl<'de> serde::Deserialize<'de> for Members<'de> {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Visit;
            impl<'de> serde::de::Visitor<'de> for Visit {
                type Value = Members<'de>;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<Members<'de>, A::Error> {
                    let mut members = Vec::new();
                    while let Some(entry) = map.next_entry()? {
                        members.push(entry);
                    }
                    Ok(Members(members))
                }
            }
            d.deserialize_map(Visit)
        }
    }
    let repaired = reel::gojson::repair_lone_surrogates_str(payload);
    let members: Members = serde_json::from_str(&repaired).ok()?;
    // The last key naming `request`, matched as Go matches field names (ASCII case folding
    // covers every key of the files).
    let raw = members
        .0
        .iter()
        .rev()
        .find(|(key, _)| key.eq_ignore_ascii_case("request"))?
        .1
        .get();
    let start = raw.as_ptr() as usize - repaired.as_ptr() as usize;
    Some(&payload[start..start + raw.len()])
}

/// The payload texts of every line of a conformance file, as written in it.
fn payload_texts(file: &str) -> Vec<String> {
    let path = format!(
        "{}/tests/data/conformance/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("a conformance file");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let start = line.find(r#""payload": "#).expect("payload key") + 11;
            let end = line.rfind(r#", "expect": "#).expect("expect key");
            line[start..end].to_owned()
        })
        .collect()
}

#[actix_rt::test]
async fn every_conformance_request_reads_back_byte_for_byte() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let store = store(&app).await;
        let mut checked = 0;
        for file in ["chains.jsonl", "chains-v2.jsonl", "raw-reduce.jsonl"] {
            for payload in payload_texts(file) {
                let res = app
                    .post_raw(
                        "/v1/ingest",
                        &[("content-type", "application/json")],
                        payload.clone(),
                    )
                    .await;
                let id = match res.status.as_u16() {
                    400 => continue,
                    422 => Uuid::parse_str(&raw_turn_id(&res)).expect("raw turn id"),
                    202 => {
                        let body = res.json();
                        let session = Uuid::parse_str(body["session_id"].as_str().unwrap()).ok();
                        let org = res_org(&payload);
                        let turns = store.raw_turns(org, session, None, 10_000).await.unwrap();
                        turns
                            .iter()
                            .rev()
                            .find(|t| t.head_hash.as_deref() == body["head"].as_str())
                            .map(|t| t.id)
                            .unwrap_or_else(|| panic!("no raw turn for {body}"))
                    }
                    status => panic!("{status}: {}", res.text()),
                };
                let raw = store.raw_turn(None, id).await.unwrap().expect("raw turn");
                let sent = request_text(&payload).unwrap_or_default();
                assert_eq!(
                    String::from_utf8_lossy(&raw.request),
                    sent,
                    "{file}: {payload}"
                );
                checked += 1;
            }
        }
        assert!(checked > 1400, "{checked} requests checked");
        app.stop().await;
    })
    .await;
}

/// The org a payload's envelope names (the nil UUID when none).
fn res_org(payload: &str) -> Uuid {
    let repaired = reel::gojson::repair_lone_surrogates_str(payload);
    serde_json::from_str::<Value>(&repaired)
        .ok()
        .and_then(|v| v["session"]["org_id"].as_str().map(str::to_owned))
        .and_then(|org| Uuid::parse_str(org.trim()).ok())
        .unwrap_or(Uuid::nil())
}
