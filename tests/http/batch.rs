//! `POST /v1/ingest/batch` (docs/wire.md#ingesting-a-batch, docs/divergences.md#batch-results).

use actix_web::http::StatusCode;
use serde_json::json;

use crate::fixtures::{Conversation, ollama_turn, openai_turn, sample_turn};
use crate::harness::{TestApp, metric};
use crate::rows;
use crate::support::each_backend;

#[actix_rt::test]
async fn accepts_multiple_valid_turns() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let res = app
            .batch(&[ollama_turn("a", "one"), openai_turn("two")])
            .await;
        assert_eq!(res.status, StatusCode::ACCEPTED);
        let body = res.json();
        assert_eq!(body["accepted"], 2);
        assert_eq!(body["rejected"], 0);
        assert!(body.get("errors").is_none(), "{body}");
        let results = body["results"].as_array().expect("results");
        for (i, result) in results.iter().enumerate() {
            assert_eq!(result["index"], i);
            assert_eq!(result["status"], "accepted");
            assert!(result["session_id"].is_string() && result["head"].is_string());
        }
        assert_eq!(rows::node_count(&app.db().await).await, 4);
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn reports_partial_failures_with_202() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let mut bad = sample_turn(None);
        bad["provider"] = json!("bad-provider");
        let res = app.batch(&[ollama_turn("a", "one"), bad]).await;
        assert_eq!(res.status, StatusCode::ACCEPTED);
        let body = res.json();
        assert_eq!(body["accepted"], 1);
        assert_eq!(body["rejected"], 1);
        assert_eq!(
            body["errors"],
            json!([
                r#"turn[1]: unprocessable turn: unsupported provider "bad-provider" (supported: [anthropic openai ollama])"#
            ])
        );
        assert_eq!(body["results"][1]["status"], "rejected");
        assert!(body["results"][1].get("session_id").is_none());
        assert!(
            body["results"][1]["error"]
                .as_str()
                .is_some_and(|e| e.contains("unsupported provider"))
        );

        let text = app.metrics().await;
        assert_eq!(
            metric(
                &text,
                r#"tapes_ingest_writes_total{provider="ollama",status="accepted"}"#
            ),
            1.0,
            "{text}"
        );
        assert_eq!(
            metric(
                &text,
                r#"tapes_ingest_writes_total{provider="unknown",status="unknown_provider"}"#
            ),
            1.0,
            "{text}"
        );
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn rejects_empty_and_undecodable_batches() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        for body in [json!({"turns": []}), json!({"turns": null}), json!({})] {
            let res = app.post("/v1/ingest/batch", &body).await;
            assert_eq!(res.status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(res.error(), "invalid envelope: empty batch");
        }
        // A type error inside any turn fails the whole batch.
        let mut broken = ollama_turn("a", "two");
        broken["response"]["usage"] = json!({"prompt_tokens": "many"});
        let res = app.batch(&[ollama_turn("a", "one"), broken]).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        assert!(
            res.error().starts_with("invalid envelope: "),
            "{}",
            res.text()
        );
        assert_eq!(rows::node_count(&app.db().await).await, 0);
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn an_invalid_session_block_rejects_only_its_turn() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let mut session = crate::fixtures::envelope("s");
        session["org_id"] = json!("nope");
        let res = app
            .batch(&[sample_turn(Some(session)), ollama_turn("a", "fine")])
            .await;
        let body = res.json();
        assert_eq!(
            (body["accepted"].clone(), body["rejected"].clone()),
            (json!(1), json!(1))
        );
        assert_eq!(
            body["errors"][0],
            "turn[0]: invalid envelope: org_id is not a valid UUID: invalid UUID length: 4"
        );
        let text = app.metrics().await;
        // In a batch the reference labels envelope rejections with the turn's provider.
        assert_eq!(
            metric(
                &text,
                r#"tapes_ingest_writes_total{provider="openai",status="reject_envelope"}"#
            ),
            1.0,
            "{text}"
        );
        app.stop().await;
    })
    .await;
}

/// The turns of one session apply in array order, even interleaved with other sessions;
/// results come back one per turn, in order (docs/divergences.md#batch-results).
#[actix_rt::test]
async fn a_sessions_turns_apply_in_array_order() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let a = Conversation::claude("batch-a");
        let b = Conversation::claude("batch-b");
        let turns: Vec<_> = (0..6).flat_map(|n| [a.turn(n), b.turn(n)]).collect();
        let res = app.batch(&turns).await;
        let body = res.json();
        assert_eq!(body["accepted"], 12, "{body}");
        let results = body["results"].as_array().expect("results");
        let conn = app.db().await;
        let row_a = rows::session_by_harness_id(&conn, "claude", "batch-a")
            .await
            .expect("session a");
        for (i, result) in results.iter().enumerate() {
            assert_eq!(result["index"], i);
            if i % 2 == 0 {
                assert_eq!(result["session_id"], row_a.id.to_string());
            }
        }
        assert_eq!(row_a.turn_count, 6);
        // Applied in order: turn n's commit inserted turn n's head, so the heads of session
        // a were created one after another in array order (turn 5 first would have created
        // them all at once).
        let mut previous = None;
        for result in results.iter().step_by(2) {
            let head = result["head"].as_str().expect("head");
            let node = rows::node(&conn, uuid::Uuid::nil(), head)
                .await
                .expect("head row");
            assert!(node.is_turn_head);
            if let Some(previous) = previous {
                assert!(
                    node.created_at > previous,
                    "{head} not after its predecessor"
                );
            }
            previous = Some(node.created_at);
        }
        app.stop().await;
    })
    .await;
}

/// A session's turns in one batch commit in one transaction, each writing only what it adds
/// to the conversation: the nodes carry one commit's clock, which ticks a microsecond per
/// node row written or skipped, so they are a microsecond apart. Separate commits, each with
/// its own clock, would be far apart; turns that wrote their history again, further.
#[actix_rt::test]
async fn a_sessions_turns_in_a_batch_share_one_transaction() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let a = Conversation::claude("one-commit");
        let res = app.batch(&[a.turn(0), a.turn(1), a.turn(2)]).await;
        assert_eq!(res.json()["accepted"], 3, "{}", res.text());
        let nodes = rows::all_nodes(&app.db().await).await;
        assert_eq!(nodes.len(), 6, "three turns extend one conversation");
        rows::assert_written_by_one_commit(nodes);
        app.stop().await;
    })
    .await;
}

/// Makes the insert of any node whose content mentions `poison` fail.
pub async fn poison_nodes(conn: &sea_orm::DatabaseConnection) {
    use sea_orm::{ConnectionTrait, DbBackend};
    let statements: &[&str] = match conn.get_database_backend() {
        DbBackend::Postgres => &[
            "CREATE FUNCTION reject_poison() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN IF NEW.content::text LIKE '%poison%' THEN
               RAISE EXCEPTION 'injected failure' USING ERRCODE = 'check_violation';
             END IF; RETURN NEW; END $$",
            "CREATE TRIGGER reject_poison BEFORE INSERT ON nodes
             FOR EACH ROW EXECUTE FUNCTION reject_poison()",
        ],
        _ => &["CREATE TRIGGER reject_poison BEFORE INSERT ON nodes
                WHEN NEW.content LIKE '%poison%'
                BEGIN SELECT RAISE(ABORT, 'injected failure'); END"],
    };
    for s in statements {
        conn.execute_unprepared(s).await.expect("install trigger");
    }
}

/// Turns of a batch stay independent (docs/wire.md#ingesting-a-batch) even when a session's turns
/// share a transaction: the turn the store refuses fails alone, the others are stored.
#[actix_rt::test]
async fn a_turn_the_store_refuses_fails_alone_within_its_session() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let conn = app.db().await;
        poison_nodes(&conn).await;
        let session = Some(crate::fixtures::envelope("poisoned"));
        let good = Conversation::new("good", session.clone());
        let bad = Conversation::new("poison", session);
        let res = app.batch(&[good.turn(0), bad.turn(0), good.turn(1)]).await;
        assert_eq!(res.status, StatusCode::ACCEPTED);
        let body = res.json();
        let statuses: Vec<_> = body["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| r["status"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(statuses, ["accepted", "rejected", "accepted"], "{body}");
        assert!(
            body["errors"][0]
                .as_str()
                .is_some_and(|e| e.starts_with("turn[1]:") && e.contains("injected failure")),
            "{body}"
        );
        let row = rows::session_by_harness_id(&conn, "claude", "poisoned")
            .await
            .expect("session");
        assert_eq!(row.turn_count, 2);
        assert_eq!(
            rows::node_count(&conn).await,
            4,
            "only the good turns' nodes"
        );
        app.stop().await;
    })
    .await;
}

/// When the in-flight limit has no room for all of a session's turns at once, they commit
/// one by one, as separate requests would, rather than being refused.
#[actix_rt::test]
async fn turns_beyond_the_in_flight_limit_commit_one_by_one() {
    each_backend(|db| async move {
        let app = TestApp::spawn_with(&db, |c| c.sessions.max_in_flight = 2).await;
        let a = Conversation::claude("narrow");
        let res = app.batch(&[a.turn(0), a.turn(1), a.turn(2)]).await;
        let body = res.json();
        assert_eq!(
            (body["accepted"].as_u64(), body["rejected"].as_u64()),
            (Some(3), Some(0)),
            "{body}"
        );
        let conn = app.db().await;
        let row = rows::session_by_harness_id(&conn, "claude", "narrow")
            .await
            .expect("session");
        assert_eq!(row.turn_count, 3);
        app.stop().await;
    })
    .await;
}
