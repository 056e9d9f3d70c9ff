//! `backfill_session`: the reference's BackfillSession tests (docs/storage.md#backfill).

use reel::store::{self, BackfillOutcome, BackfillRequest, StoreError};
use reel::wire::SessionEnvelope;
use uuid::Uuid;

use crate::fixtures::*;
use crate::identity::insert_raw_node;
use crate::support::TestDb;

fn request<'a>(envelope: &'a SessionEnvelope, hashes: &'a [String]) -> BackfillRequest<'a> {
    BackfillRequest {
        envelope: Some(envelope),
        node_hashes: hashes,
        started_at: None,
        last_seen_at: None,
        input_tokens: 100,
        output_tokens: 50,
        turn_count: 2,
    }
}

fn org_envelope(org_id: &str, session: &str) -> SessionEnvelope {
    let mut env = envelope("claude", session);
    env.org_id = org_id.into();
    env
}

#[tokio::test]
async fn upserts_the_session_and_stamps_the_orgs_unlinked_nodes() {
    for t in TestDb::all().await {
        let db = t.connect().await;
        let hashes = vec!["a1".repeat(32), "b2".repeat(32)];
        for h in &hashes {
            insert_raw_node(&db, org(ORG_A), h).await;
        }
        let env = org_envelope(ORG_A, "transcript-1");

        let out = store::backfill_session(&db, request(&env, &hashes))
            .await
            .unwrap();

        assert_eq!(out.nodes_linked, 2, "{:?}", t.backend);
        let id = out.session_id.expect("session id");
        let row = session(&db, id).await;
        assert_eq!(
            (
                row.turn_count,
                row.total_input_tokens,
                row.total_output_tokens
            ),
            (2, 100, 50)
        );
        assert_eq!(row.org_id, org(ORG_A));
        for h in &hashes {
            assert_eq!(node(&db, org(ORG_A), h).await.session_id, Some(id));
        }
    }
}

#[tokio::test]
async fn only_stamps_nodes_of_the_envelopes_org() {
    for t in TestDb::all().await {
        let db = t.connect().await;
        let hash = vec!["c3".repeat(32)];
        insert_raw_node(&db, org(ORG_A), &hash[0]).await;
        insert_raw_node(&db, org(ORG_B), &hash[0]).await;

        let out = store::backfill_session(&db, request(&org_envelope(ORG_A, "t-a"), &hash))
            .await
            .unwrap();

        assert_eq!(out.nodes_linked, 1, "{:?}", t.backend);
        assert_eq!(node(&db, org(ORG_B), &hash[0]).await.session_id, None);
    }
}

#[tokio::test]
async fn is_idempotent() {
    for t in TestDb::all().await {
        let db = t.connect().await;
        let hash = vec!["d4".repeat(32)];
        insert_raw_node(&db, org(ORG_A), &hash[0]).await;
        let env = org_envelope(ORG_A, "t-idem");
        let first = store::backfill_session(&db, request(&env, &hash))
            .await
            .unwrap();
        let second = store::backfill_session(&db, request(&env, &hash))
            .await
            .unwrap();
        assert_eq!(second.nodes_linked, 0, "{:?}", t.backend);
        assert_eq!(second.session_id, first.session_id);
        assert_eq!(all_sessions(&db).await.len(), 1);
        assert_eq!(
            node(&db, org(ORG_A), &hash[0]).await.session_id,
            first.session_id
        );
    }
}

#[tokio::test]
async fn never_reassigns_a_node_that_has_a_session() {
    for t in TestDb::all().await {
        let db = t.connect().await;
        let hash = vec!["e5".repeat(32)];
        insert_raw_node(&db, org(ORG_A), &hash[0]).await;
        let one = store::backfill_session(&db, request(&org_envelope(ORG_A, "session-one"), &hash))
            .await
            .unwrap();
        let two = store::backfill_session(&db, request(&org_envelope(ORG_A, "session-two"), &hash))
            .await
            .unwrap();
        assert_eq!(two.nodes_linked, 0, "{:?}", t.backend);
        assert_ne!(two.session_id, one.session_id);
        assert_eq!(
            node(&db, org(ORG_A), &hash[0]).await.session_id,
            one.session_id
        );
    }
}

#[tokio::test]
async fn an_existing_session_keeps_the_greater_counters_and_merges_fields() {
    for t in TestDb::all().await {
        let db = t.connect().await;
        let hash = vec!["f6".repeat(32)];
        insert_raw_node(&db, Uuid::nil(), &hash[0]).await;
        let mut env = envelope("claude", "merged");
        env.name = "from ingest".into();
        let ingested = ingest(&db, Some(&env), &session_fixture("live")).await;

        let mut backfill_env = envelope("claude", "merged");
        backfill_env.auth_subject = "claude-projects-backfill".into();
        backfill_env.cwd = "/projects/x".into();
        backfill_env.harness_metadata = raw_json(r#"{"source": "claude-projects-backfill"}"#);
        let mut req = request(&backfill_env, &hash);
        req.input_tokens = 5;
        req.turn_count = 3;
        let later = chrono::Utc::now() + chrono::TimeDelta::hours(1);
        req.started_at = Some(later - chrono::TimeDelta::hours(2));
        req.last_seen_at = Some(later);
        let out = store::backfill_session(&db, req).await.unwrap();

        assert_eq!(out.session_id, Some(ingested.session_id), "{:?}", t.backend);
        let row = session(&db, ingested.session_id).await;
        assert_eq!(
            (
                row.turn_count,
                row.total_input_tokens,
                row.total_output_tokens
            ),
            (3, 12, 50)
        );
        assert_eq!(row.auth_subject, "claude-projects-backfill");
        assert_eq!(row.name.as_deref(), Some("from ingest"));
        assert_eq!(row.cwd.as_deref(), Some("/projects/x"));
        assert_eq!(row.harness_metadata["source"], "claude-projects-backfill");
        assert_eq!(
            row.last_seen_at.timestamp_micros(),
            later.timestamp_micros()
        );
    }
}

#[tokio::test]
async fn refuses_incomplete_requests_and_skips_empty_ones() {
    for t in TestDb::all().await {
        let db = t.connect().await;
        let hashes = vec!["aa".repeat(32)];
        let unused = envelope("claude", "x");
        let mut none = request(&unused, &hashes);
        none.envelope = None;
        let err = store::backfill_session(&db, none).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "backfill session: missing session envelope"
        );

        let no_id = envelope("claude", "");
        let err = store::backfill_session(&db, request(&no_id, &hashes))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "backfill session: missing harness_session_id"
        );

        let bad_org = org_envelope("not-a-uuid", "x");
        let err = store::backfill_session(&db, request(&bad_org, &hashes))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidBackfill(_)), "{err:?}");
        assert!(err.to_string().contains("decode org_id"), "{err}");

        let env = envelope("claude", "empty");
        let out = store::backfill_session(&db, request(&env, &[]))
            .await
            .unwrap();
        assert_eq!(out, BackfillOutcome::default(), "{:?}", t.backend);
        assert!(all_sessions(&db).await.is_empty());
    }
}
