//! `GET /v1/nodes/{hash}/conversation`: a conversation with its session's harness identity
//! (the reference's identity tests, docs/wire.md#reading-a-conversation), read per org.

use actix_web::http::StatusCode;
use sea_orm::{ActiveModelTrait, Set};
use serde_json::json;
use uuid::Uuid;

use crate::fixtures::{Conversation, SAMPLE_HASHES, envelope, sample_turn};
use crate::harness::TestApp;
use crate::support::each_backend;

const ORG: &str = "11111111-1111-1111-1111-111111111111";

/// Reference case 1: the identity is carried, and without a header the nil org is read.
#[actix_rt::test]
async fn carries_the_harness_identity_of_the_nodes_session() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let conv = Conversation::claude("identity");
        assert_eq!(app.ingest(&conv.turn(0)).await.status, StatusCode::ACCEPTED);
        let res = app.ingest(&conv.turn(1)).await;
        let head = res.json()["head"].as_str().expect("head").to_owned();

        let res = app.get(&format!("/v1/nodes/{head}/conversation")).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        let body = res.json();
        assert_eq!(body["hash"], head.as_str());
        assert_eq!(body["harness_id"], "claude");
        assert_eq!(body["harness_session_id"], "identity");
        let turns = body["turns"].as_array().expect("turns");
        assert_eq!(turns.len(), 4);
        assert_eq!(turns[0]["role"], "user");
        assert!(turns[0].get("parent_hash").is_none());
        assert_eq!(turns[3]["hash"], head.as_str());
        assert_eq!(turns[3]["content"][0]["text"], conv.answer(1));
        app.stop().await;
    })
    .await;
}

/// Reference case 2: the client-asserted org header selects the org that is read.
#[actix_rt::test]
async fn reads_the_org_named_by_the_header() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let mut session = envelope("org-identity");
        session["org_id"] = json!(ORG);
        let res = app.ingest(&sample_turn(Some(session))).await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
        let path = format!("/v1/nodes/{}/conversation", SAMPLE_HASHES[2]);

        let res = app.get_with(&path, &[("x-tapes-org-id", ORG)]).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        assert_eq!(res.json()["harness_session_id"], "org-identity");
        assert_eq!(res.json()["turns"].as_array().map(Vec::len), Some(3));
        // The nil org holds no such node.
        assert_eq!(app.get(&path).await.status, StatusCode::NOT_FOUND);
        let res = app.get_with(&path, &[("x-tapes-org-id", "garbage")]).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        app.stop().await;
    })
    .await;
}

/// Reference case 3: a node without a session (stored before sessions existed) still reads,
/// without the identity fields.
#[actix_rt::test]
async fn omits_the_identity_of_a_node_without_a_session() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let hash = "a".repeat(64);
        let legacy = entity::nodes::ActiveModel {
            org_id: Set(Uuid::nil()),
            hash: Set(hash.clone()),
            parent_hash: Set(None),
            bucket: Set(Some(
                json!({"type": "message", "role": "user", "content": null}),
            )),
            kind: Set(Some("message".to_owned())),
            role: Set(Some("user".to_owned())),
            content: Set(None),
            model: Set(None),
            provider: Set(None),
            agent_name: Set(None),
            stop_reason: Set(None),
            prompt_tokens: Set(None),
            completion_tokens: Set(None),
            total_tokens: Set(None),
            cache_creation_input_tokens: Set(None),
            cache_read_input_tokens: Set(None),
            total_duration_ns: Set(None),
            prompt_duration_ns: Set(None),
            project: Set(None),
            created_at: Set(chrono::Utc::now()),
            session_id: Set(None),
            is_turn_head: Set(false),
            node_kind: Set(None),
            thread_id: Set(None),
        };
        legacy
            .insert(&app.db().await)
            .await
            .expect("insert a legacy node");

        let res = app.get(&format!("/v1/nodes/{hash}/conversation")).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        let body = res.json();
        assert_eq!(body["hash"], hash.as_str());
        assert!(body.get("harness_id").is_none(), "{body}");
        assert!(body.get("harness_session_id").is_none(), "{body}");
        assert_eq!(body["turns"].as_array().map(Vec::len), Some(1));

        let missing = "0".repeat(64);
        let res = app.get(&format!("/v1/nodes/{missing}/conversation")).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND);
        app.stop().await;
    })
    .await;
}
