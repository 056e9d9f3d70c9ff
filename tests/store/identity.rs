//! `identity_by_hash`: the reference's SessionIdentityByHash tests
//! (docs/storage.md#identity-reads).

use reel::store;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, DatabaseConnection};
use serde_json::json;
use uuid::Uuid;

use crate::fixtures::*;
use crate::support::each_backend;

/// A node written the legacy way: no session, straight into the table.
pub async fn insert_raw_node(db: &DatabaseConnection, org_id: Uuid, hash: &str) {
    nodes::ActiveModel {
        org_id: Set(org_id),
        hash: Set(hash.to_owned()),
        parent_hash: Set(None),
        bucket: Set(Some(
            json!({"type": "message", "role": "user", "content": []}),
        )),
        kind: Set(Some("message".into())),
        role: Set(Some("user".into())),
        content: Set(Some(json!([]))),
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
    }
    .insert(db)
    .await
    .expect("insert raw node");
}

#[tokio::test]
async fn returns_the_attached_sessions_harness_identity() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let chain = session_fixture("identity");
        ingest(
            &db,
            Some(&envelope("claude", "session-with-identity")),
            &chain,
        )
        .await;
        let id = store::identity_by_hash(&db, Uuid::nil(), &chain.head().hash)
            .await
            .unwrap()
            .expect("identity");
        assert_eq!(id.harness_id, "claude", "{:?}", t.backend);
        assert_eq!(id.harness_session_id, "session-with-identity");
    })
    .await;
}

#[tokio::test]
async fn returns_none_for_a_node_without_session() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let hash = "ab".repeat(32);
        insert_raw_node(&db, Uuid::nil(), &hash).await;
        assert_eq!(
            store::identity_by_hash(&db, Uuid::nil(), &hash)
                .await
                .unwrap(),
            None
        );
    })
    .await;
}

#[tokio::test]
async fn returns_none_for_an_unknown_hash() {
    each_backend(|t| async move {
        let db = t.connect().await;
        ingest(
            &db,
            Some(&envelope("claude", "other")),
            &session_fixture("x"),
        )
        .await;
        let zeros = "0".repeat(64);
        assert_eq!(
            store::identity_by_hash(&db, Uuid::nil(), &zeros)
                .await
                .unwrap(),
            None
        );
    })
    .await;
}

#[tokio::test]
async fn returns_the_querying_orgs_identity_when_orgs_share_a_hash() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let chain = session_fixture("shared identity");
        let mut env_b = envelope("claude", "org-b-session");
        env_b.org_id = ORG_B.into();
        let mut env_a = envelope("claude", "org-a-session");
        env_a.org_id = ORG_A.into();
        ingest(&db, Some(&env_b), &chain).await;
        ingest(&db, Some(&env_a), &chain).await;

        let leaf = &chain.head().hash;
        let copies = all_nodes(&db)
            .await
            .into_iter()
            .filter(|n| &n.hash == leaf)
            .count();
        assert_eq!(copies, 2, "{:?}", t.backend);
        let a = store::identity_by_hash(&db, org(ORG_A), leaf)
            .await
            .unwrap()
            .unwrap();
        let b = store::identity_by_hash(&db, org(ORG_B), leaf)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.harness_session_id, "org-a-session");
        assert_eq!(b.harness_session_id, "org-b-session");
        assert_eq!(
            store::identity_by_hash(&db, Uuid::nil(), leaf)
                .await
                .unwrap(),
            None
        );
    })
    .await;
}
