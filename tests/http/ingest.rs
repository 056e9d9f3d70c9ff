//! `POST /v1/ingest`: the reference's behaviours (docs/wire.md#ingesting-one-turn) and reel's
//! durable, session-scoped acknowledgement (docs/divergences.md#durable-202).

use actix_web::http::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::fixtures::{
    Conversation, SAMPLE_HASHES, envelope, ollama_turn, openai_turn, response, sample_turn,
};
use crate::harness::{TestApp, metric};
use crate::rows;
use crate::support::each_backend;

fn accepted(res: &crate::harness::TestResponse) -> (Uuid, String, u64, bool) {
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
    let body = res.json();
    assert_eq!(body["status"], "accepted");
    let session_id = body["session_id"]
        .as_str()
        .and_then(|s| Uuid::try_parse(s).ok())
        .unwrap_or_else(|| panic!("session_id in {body}"));
    let head = body["head"].as_str().expect("head").to_owned();
    assert_eq!(head.len(), 64, "{body}");
    let new_nodes = body["new_nodes"].as_u64().expect("new_nodes");
    let counted = body["counted"].as_bool().expect("counted");
    (session_id, head, new_nodes, counted)
}

#[actix_rt::test]
async fn accepts_a_valid_ollama_turn_and_stores_it() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let res = app.ingest(&ollama_turn("agent-a", "hello")).await;
        let (_, head, new_nodes, counted) = accepted(&res);
        // `status` stays first so clients matching on it keep working.
        assert!(
            res.text().starts_with(r#"{"status":"accepted","#),
            "{}",
            res.text()
        );
        assert_eq!(res.header("content-type"), Some("application/json"));
        assert_eq!((new_nodes, counted), (2, true));

        let conn = app.db().await;
        let nodes = rows::all_nodes(&conn).await;
        assert_eq!(nodes.len(), 2);
        assert!(nodes.iter().any(|n| n.hash == head && n.is_turn_head));

        let text = app.metrics().await;
        assert_eq!(
            metric(
                &text,
                r#"tapes_ingest_writes_total{provider="ollama",status="accepted"}"#
            ),
            1.0,
            "{text}"
        );
        assert!(
            metric(&text, r#"tapes_ingest_body_bytes_count{provider="ollama"}"#) >= 1.0,
            "{text}"
        );
        assert!(
            metric(
                &text,
                r#"tapes_ingest_dag_write_seconds_count{provider="ollama"}"#
            ) >= 1.0,
            "{text}"
        );
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn the_configured_project_is_stored_on_every_node() {
    each_backend(|db| async move {
        let app = TestApp::spawn_with(&db, |c| c.server.project = "reel-fleet".to_owned()).await;
        accepted(&app.ingest(&ollama_turn("agent-p", "which project?")).await);
        let nodes = rows::all_nodes(&app.db().await).await;
        assert_eq!(nodes.len(), 2);
        assert!(
            nodes
                .iter()
                .all(|n| n.project.as_deref() == Some("reel-fleet")),
            "{:?}",
            nodes.iter().map(|n| &n.project).collect::<Vec<_>>()
        );
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn accepts_a_valid_openai_turn() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let res = app.ingest(&openai_turn("hi")).await;
        accepted(&res);
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn rejects_an_unsupported_provider_without_storing() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let mut turn = sample_turn(None);
        turn["provider"] = json!("bad-provider");
        let res = app.ingest(&turn).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            res.error(),
            r#"unprocessable turn: unsupported provider "bad-provider" (supported: [anthropic openai ollama])"#
        );

        // A missing provider is the empty provider.
        let mut turn = sample_turn(None);
        turn.as_object_mut().expect("object").remove("provider");
        let res = app.ingest(&turn).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            res.error().contains(r#"unsupported provider """#),
            "{}",
            res.text()
        );

        let text = app.metrics().await;
        // The label stays bounded: a client's provider string is never a label value.
        assert_eq!(
            metric(
                &text,
                r#"tapes_ingest_writes_total{provider="unknown",status="unknown_provider"}"#
            ),
            2.0,
            "{text}"
        );
        assert!(!text.contains("bad-provider"), "{text}");
        assert_eq!(rows::node_count(&app.db().await).await, 0);
        assert!(rows::all_sessions(&app.db().await).await.is_empty());
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn rejects_unparseable_requests_and_invalid_responses() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let mut turn = ollama_turn("a", "x");
        turn["request"] = json!("not-valid-json-object");
        let res = app.ingest(&turn).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            res.error()
                .starts_with("unprocessable turn: cannot parse request"),
            "{}",
            res.text()
        );

        let mut turn = sample_turn(None);
        turn.as_object_mut().expect("object").remove("response");
        let res = app.ingest(&turn).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            res.error(),
            "unprocessable turn: invalid reduced response: missing response.message.role"
        );

        let text = app.metrics().await;
        assert_eq!(
            metric(
                &text,
                r#"tapes_ingest_writes_total{provider="ollama",status="reject_parse"}"#
            ),
            1.0,
            "{text}"
        );
        assert_eq!(
            metric(
                &text,
                r#"tapes_ingest_writes_total{provider="openai",status="reject_parse"}"#
            ),
            1.0,
            "{text}"
        );
        assert_eq!(rows::node_count(&app.db().await).await, 0);
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn invalid_session_blocks_are_invalid_envelopes() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let mut session = envelope("s");
        session["org_id"] = json!("not-a-uuid");
        let res = app.ingest(&sample_turn(Some(session))).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            res.error(),
            "invalid envelope: org_id is not a valid UUID: invalid UUID length: 10"
        );

        let mut session = envelope("s");
        session["parent_harness_session_id"] = json!("");
        let res = app.ingest(&sample_turn(Some(session))).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        assert!(
            res.error().contains("parent_harness_session_id"),
            "{}",
            res.text()
        );

        let mut session = envelope("s");
        session["harness_metadata"] = json!([1, 2]);
        let res = app.ingest(&sample_turn(Some(session))).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        assert!(res.error().contains("harness_metadata"), "{}", res.text());

        let text = app.metrics().await;
        // The reference labels these "unknown" even though the provider is known.
        assert_eq!(
            metric(
                &text,
                r#"tapes_ingest_writes_total{provider="unknown",status="reject_envelope"}"#
            ),
            3.0,
            "{text}"
        );
        assert!(rows::all_sessions(&app.db().await).await.is_empty());
        app.stop().await;
    })
    .await;
}

/// As in the reference's worker tests, the turn goes to the session transaction with its full
/// chain and token deltas; reel also prices it (docs/storage.md#the-ingest-transaction).
#[actix_rt::test]
async fn a_session_block_creates_the_session_with_the_full_chain() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let res = app
            .ingest(&sample_turn(Some(envelope("harness-abc"))))
            .await;
        let (session_id, head, new_nodes, counted) = accepted(&res);
        assert_eq!((new_nodes, counted), (3, true));
        assert_eq!(head, SAMPLE_HASHES[2]);

        let conn = app.db().await;
        let row = rows::session(&conn, session_id).await;
        assert_eq!(row.harness_id, "claude");
        assert_eq!(row.harness_session_id, "harness-abc");
        assert_eq!(row.org_id, Uuid::nil());
        assert_eq!(row.auth_subject, "alice@example.com");
        assert_eq!(row.turn_count, 1);
        assert_eq!(row.total_input_tokens, 11);
        assert_eq!(row.total_output_tokens, 7);

        let nodes = rows::all_nodes(&conn).await;
        for (hash, role) in SAMPLE_HASHES.iter().zip(["system", "user", "assistant"]) {
            let node = nodes.iter().find(|n| n.hash == *hash).expect("sample node");
            assert_eq!(node.role.as_deref(), Some(role));
        }
        assert_eq!(nodes.len(), 3);
        assert!(nodes.iter().all(|n| n.session_id == Some(session_id)));
        let head_row = rows::node(&conn, Uuid::nil(), &head)
            .await
            .expect("head row");
        assert_eq!(head_row.role.as_deref(), Some("assistant"));
        assert!(head_row.is_turn_head);
        assert_eq!(head_row.stop_reason.as_deref(), Some("stop"));
        assert_eq!(head_row.prompt_tokens, Some(11));
        assert_eq!(head_row.completion_tokens, Some(7));
        app.stop().await;
    })
    .await;
}

/// A retried turn answers the same ids and moves nothing (docs/divergences.md#counted-once,
/// docs/divergences.md#idempotent-retries).
#[actix_rt::test]
async fn retrying_a_turn_answers_the_same_ids_uncounted() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let turn = sample_turn(Some(envelope("retry")));
        let (first_id, first_head, _, counted) = accepted(&app.ingest(&turn).await);
        assert!(counted);
        let before = rows::session(&app.db().await, first_id).await;

        let res = app.ingest(&turn).await;
        let (id, head, new_nodes, counted) = accepted(&res);
        assert_eq!((id, head.as_str()), (first_id, first_head.as_str()));
        assert_eq!((new_nodes, counted), (0, false));

        let conn = app.db().await;
        let after = rows::session(&conn, first_id).await;
        assert_eq!(after.turn_count, 1);
        assert_eq!(after.total_input_tokens, 11);
        assert_eq!(after.last_seen_at, before.last_seen_at);
        assert_eq!(rows::all_sessions(&conn).await.len(), 1);
        assert_eq!(rows::node_count(&conn).await, 3);

        let text = app.metrics().await;
        assert_eq!(
            metric(&text, r#"reel_turns_total{outcome="counted"}"#),
            1.0,
            "{text}"
        );
        assert_eq!(
            metric(&text, r#"reel_turns_total{outcome="duplicate"}"#),
            1.0,
            "{text}"
        );
        app.stop().await;
    })
    .await;
}

/// No session block means harness `unknown`, the nil org, and the synthetic id
/// (docs/divergences.md#every-turn-has-a-session).
#[actix_rt::test]
async fn a_turn_without_a_session_block_lands_in_the_synthetic_session() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let (session_id, _, new_nodes, counted) = accepted(&app.ingest(&sample_turn(None)).await);
        assert_eq!((new_nodes, counted), (3, true));

        let conn = app.db().await;
        let row = rows::session(&conn, session_id).await;
        assert_eq!(row.harness_id, "unknown");
        assert_eq!(row.org_id, Uuid::nil());
        // The first 16 hex characters of the root (system) node's hash.
        assert_eq!(row.harness_session_id, "b58e4092e93948e3");
        assert!(
            rows::all_nodes(&conn)
                .await
                .iter()
                .all(|n| n.session_id == Some(session_id))
        );
        assert_eq!(row.turn_count, 1);
        app.stop().await;
    })
    .await;
}

/// Related pool tests of the reference: a second turn re-sends the first as history; only the new
/// suffix is written and the first answer's node is shared.
#[actix_rt::test]
async fn a_follow_up_turn_writes_only_its_new_nodes() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let conv = Conversation::claude("multi");
        let (id0, head0, new0, _) = accepted(&app.ingest(&conv.turn(0)).await);
        let (id1, head1, new1, counted1) = accepted(&app.ingest(&conv.turn(1)).await);
        assert_eq!(id0, id1);
        assert_ne!(head0, head1);
        assert_eq!((new0, new1, counted1), (2, 2, true));

        let conn = app.db().await;
        assert_eq!(rows::node_count(&conn).await, 4);
        let head1_row = rows::node(&conn, Uuid::nil(), &head1)
            .await
            .expect("head 1");
        // Turn 1's chain goes q0 → a0 → q1 → a1: its grandparent is turn 0's head.
        let q1 = head1_row.parent_hash.expect("q1");
        let q1_row = rows::node(&conn, Uuid::nil(), &q1).await.expect("q1 row");
        assert_eq!(q1_row.parent_hash.as_deref(), Some(head0.as_str()));
        let row = rows::session(&conn, id0).await;
        assert_eq!(row.turn_count, 2);
        assert_eq!(row.total_input_tokens, 100 + 101);
        app.stop().await;
    })
    .await;
}

/// The response is priced from the table; unknown models cost 0 and are counted
/// (docs/divergences.md#cost).
#[actix_rt::test]
async fn cost_comes_from_the_price_table() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let mut turn = Conversation::claude("priced").turn(0);
        // 1M input at $3 and 100k output at $15 per million: $4.50.
        turn["response"] = response("priced answer", 1_000_000, 100_000);
        let (session_id, ..) = accepted(&app.ingest(&turn).await);

        let mut unknown = Conversation::claude("unpriced").turn(0);
        unknown["response"]["model"] = json!("mystery-model-1");
        let (unknown_id, ..) = accepted(&app.ingest(&unknown).await);

        let conn = app.db().await;
        let cost = rows::session(&conn, session_id).await.total_cost_usd;
        assert_eq!(cost.to_string().parse::<f64>().expect("decimal"), 4.5);
        let unpriced = rows::session(&conn, unknown_id).await.total_cost_usd;
        assert_eq!(unpriced.to_string().parse::<f64>().expect("decimal"), 0.0);
        let text = app.metrics().await;
        assert_eq!(
            metric(&text, "reel_cost_unknown_model_total"),
            1.0,
            "{text}"
        );
        app.stop().await;
    })
    .await;
}

/// U+0000 is accepted and counted (docs/divergences.md#nul-characters).
#[actix_rt::test]
async fn nul_characters_are_accepted_and_counted() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let turn = ollama_turn("nul", "before\u{0}after");
        accepted(&app.ingest(&turn).await);
        let text = app.metrics().await;
        assert!(
            metric(&text, "reel_nul_replacements_total") >= 1.0,
            "{text}"
        );
        app.stop().await;
    })
    .await;
}

/// Every payload of the conformance file through HTTP: the same status class as the
/// reference, and for accepted turns the reference's head hash.
#[actix_rt::test]
async fn conformance_payloads_get_the_reference_outcome_over_http() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let cases = crate::fixtures::conformance_cases();
        let payloads: Vec<&str> = cases.iter().map(|c| c.payload.as_str()).collect();
        let body = format!(r#"{{"turns":[{}]}}"#, payloads.join(","));
        let res = app
            .post_raw(
                "/v1/ingest/batch",
                &[("content-type", "application/json")],
                body,
            )
            .await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
        let body = res.json();
        let results = body["results"].as_array().expect("results");
        assert_eq!(results.len(), cases.len());
        for (case, result) in cases.iter().zip(results) {
            let name = &case.name;
            if case.status == 202 {
                assert_eq!(result["status"], "accepted", "{name}: {result}");
                assert_eq!(
                    result["head"].as_str(),
                    case.hashes.last().map(String::as_str),
                    "{name}"
                );
            } else {
                assert_eq!(result["status"], "rejected", "{name}: {result}");
                let error = result["error"].as_str().unwrap_or_default();
                assert!(error.starts_with("unprocessable turn: "), "{name}: {error}");
            }
        }
        app.stop().await;
    })
    .await;
}

/// As in the reference's worker tests, a commit that fails answers an error, stores nothing
/// (there is no fallback path), and the server goes on serving.
#[actix_rt::test]
async fn a_failing_commit_answers_500_and_stores_nothing() {
    use sea_orm::{ConnectionTrait, DbBackend};
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let conn = app.db().await;
        // Every counter update fails, as a constraint violation would.
        let (install, remove): (&[&str], &str) = match conn.get_database_backend() {
            DbBackend::Postgres => (
                &[
                    "CREATE FUNCTION reject_counter_update() RETURNS trigger LANGUAGE plpgsql AS $$
                     BEGIN RAISE EXCEPTION 'injected failure'; END $$",
                    "CREATE TRIGGER reject_counter_update BEFORE UPDATE OF turn_count ON sessions
                     FOR EACH ROW EXECUTE FUNCTION reject_counter_update()",
                ],
                "DROP TRIGGER reject_counter_update ON sessions",
            ),
            _ => (
                &[
                    "CREATE TRIGGER reject_counter_update BEFORE UPDATE OF turn_count ON sessions
                   BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
                ],
                "DROP TRIGGER reject_counter_update",
            ),
        };
        for statement in install {
            conn.execute_unprepared(statement)
                .await
                .expect("install trigger");
        }
        let turn = sample_turn(Some(envelope("doomed")));
        let res = app.ingest(&turn).await;
        assert_eq!(
            res.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{}",
            res.text()
        );
        assert_eq!(res.error(), "internal error");
        assert_eq!(rows::node_count(&conn).await, 0);
        assert!(rows::all_sessions(&conn).await.is_empty());
        let text = app.metrics().await;
        assert_eq!(
            metric(
                &text,
                r#"tapes_ingest_writes_total{provider="openai",status="downstream_error"}"#
            ),
            1.0,
            "{text}"
        );

        conn.execute_unprepared(remove)
            .await
            .expect("remove trigger");
        let (_, _, new_nodes, counted) = accepted(&app.ingest(&turn).await);
        assert_eq!((new_nodes, counted), (3, true));
        app.stop().await;
    })
    .await;
}

/// Bytes that are not UTF-8 are decoded as U+FFFD, one per byte, as Go does, and counted;
/// the turn is stored (docs/divergences.md#invalid-utf-8).
#[actix_rt::test]
async fn invalid_utf8_is_replaced_counted_and_stored() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let turn = ollama_turn("utf8", "cut mid-sequence: MARK");
        let body = serde_json::to_vec(&turn).expect("serialisable");
        let text = String::from_utf8(body).expect("utf-8");
        // Two invalid bytes where MARK was: the end of a cut "€" (\xe2\x82) is one
        // sequence Go replaces byte by byte, so the answer counts 2.
        let mut bytes = Vec::new();
        let (before, after) = text.split_once("MARK").expect("marker");
        bytes.extend_from_slice(before.as_bytes());
        bytes.extend_from_slice(b"\xe2\x82");
        bytes.extend_from_slice(after.as_bytes());
        let res = app
            .post_raw("/v1/ingest", &[("content-type", "application/json")], bytes)
            .await;
        accepted(&res);
        let metrics = app.metrics().await;
        assert_eq!(
            metric(&metrics, "reel_invalid_utf8_replacements_total"),
            2.0,
            "{metrics}"
        );
        let conn = app.db().await;
        let nodes = rows::all_nodes(&conn).await;
        assert!(
            nodes.iter().any(|n| n
                .content
                .as_ref()
                .is_some_and(|c| c.to_string().contains("cut mid-sequence: \u{FFFD}\u{FFFD}"))),
            "{nodes:?}"
        );
        app.stop().await;
    })
    .await;
}
