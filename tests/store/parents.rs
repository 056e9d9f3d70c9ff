//! Fork parents: the reference's parent cases (docs/storage.md#fork-parents-and-placeholders)
//! and reel's parent harness (docs/divergences.md#fork-parents).

use crate::fixtures::*;
use crate::support::each_backend;

#[tokio::test]
async fn a_child_links_to_its_existing_parent() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let parent = ingest(
            &db,
            Some(&envelope("claude", "parent-1")),
            &session_fixture("p"),
        )
        .await;
        let mut child_env = envelope("claude", "child-1");
        child_env.parent_harness_session_id = Some("parent-1".into());
        let child = ingest(&db, Some(&child_env), &session_fixture("c")).await;

        let row = session(&db, child.session_id).await;
        assert_eq!(
            row.parent_session_id,
            Some(parent.session_id),
            "{:?}",
            t.backend
        );
        assert_eq!(all_sessions(&db).await.len(), 2);
    })
    .await;
}

#[tokio::test]
async fn a_missing_parent_gets_a_placeholder_row() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let mut child_env = envelope("claude", "child-2");
        child_env.auth_subject = "child-subject".into();
        child_env.parent_harness_session_id = Some("parent-2".into());
        let child = ingest(&db, Some(&child_env), &session_fixture("c2")).await;

        let child_row = session(&db, child.session_id).await;
        let parent_id = child_row
            .parent_session_id
            .expect("child points at a parent");
        let placeholder = session(&db, parent_id).await;
        assert_eq!(placeholder.harness_id, "claude");
        assert_eq!(placeholder.harness_session_id, "parent-2");
        assert_eq!(placeholder.auth_subject, "child-subject");
        assert_eq!(
            (
                placeholder.name,
                placeholder.cwd,
                placeholder.harness_version
            ),
            (None, None, None)
        );
        assert_eq!(
            (placeholder.turn_count, placeholder.total_input_tokens),
            (0, 0)
        );
        assert_eq!(placeholder.parent_session_id, None);
    })
    .await;
}

#[tokio::test]
async fn the_parents_first_real_turn_takes_over_its_placeholder() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let mut child_env = envelope("claude", "child-3");
        child_env.auth_subject = "child-subject".into();
        child_env.parent_harness_session_id = Some("parent-3".into());
        let child = ingest(&db, Some(&child_env), &session_fixture("c3")).await;
        let placeholder_id = session(&db, child.session_id)
            .await
            .parent_session_id
            .unwrap();
        let placeholder = session(&db, placeholder_id).await;

        let mut parent_env = envelope("claude", "parent-3");
        parent_env.auth_subject = "parent-subject".into();
        parent_env.name = "parent name".into();
        parent_env.cwd = "/parent/cwd".into();
        parent_env.harness_version = "1.2.3".into();
        let parent = ingest_with(
            &db,
            Some(&parent_env),
            &session_fixture("p3"),
            Tokens {
                input: 7,
                output: 5,
                cost_usd: 0.0,
            },
        )
        .await;

        assert_eq!(parent.session_id, placeholder_id, "{:?}", t.backend);
        let row = session(&db, placeholder_id).await;
        assert_eq!(row.auth_subject, "parent-subject");
        assert_eq!(row.name.as_deref(), Some("parent name"));
        assert_eq!(row.cwd.as_deref(), Some("/parent/cwd"));
        assert_eq!(row.harness_version.as_deref(), Some("1.2.3"));
        assert_eq!(
            (
                row.turn_count,
                row.total_input_tokens,
                row.total_output_tokens
            ),
            (1, 7, 5)
        );
        assert_eq!(
            row.started_at, placeholder.started_at,
            "the earlier start is kept"
        );
        assert_eq!(
            session(&db, child.session_id).await.parent_session_id,
            Some(placeholder_id)
        );
        assert_eq!(all_sessions(&db).await.len(), 2);
    })
    .await;
}

/// The placeholder is created under the parent's harness, so the parent's real first turn
/// under that harness finds it instead of creating a second row
/// (docs/divergences.md#fork-parents).
#[tokio::test]
async fn a_cross_harness_placeholder_is_taken_over_by_the_parents_real_turn() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let mut child_env = envelope("codex", "child-x");
        child_env.parent_harness_id = Some("claude".into());
        child_env.parent_harness_session_id = Some("parent-x".into());
        let child = ingest(&db, Some(&child_env), &session_fixture("cx")).await;
        let placeholder_id = session(&db, child.session_id)
            .await
            .parent_session_id
            .unwrap();
        let placeholder = session(&db, placeholder_id).await;
        assert_eq!(
            (
                placeholder.harness_id.as_str(),
                placeholder.harness_session_id.as_str()
            ),
            ("claude", "parent-x")
        );

        let mut parent_env = envelope("claude", "parent-x");
        parent_env.auth_subject = "parent-subject".into();
        parent_env.name = "the parent".into();
        let parent = ingest(&db, Some(&parent_env), &session_fixture("px")).await;

        assert_eq!(parent.session_id, placeholder_id, "{:?}", t.backend);
        let rows = all_sessions(&db).await;
        assert_eq!(rows.len(), 2, "no orphan placeholder: {rows:?}");
        let row = session(&db, placeholder_id).await;
        assert_eq!(row.auth_subject, "parent-subject");
        assert_eq!(row.name.as_deref(), Some("the parent"));
        assert_eq!(row.turn_count, 1);
    })
    .await;
}

#[tokio::test]
async fn a_session_is_never_its_own_parent() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let mut env = envelope("claude", "selfish");
        env.parent_harness_session_id = Some("selfish".into());
        let out = ingest(&db, Some(&env), &session_fixture("self")).await;
        assert_eq!(session(&db, out.session_id).await.parent_session_id, None);
        assert_eq!(all_sessions(&db).await.len(), 1);
    })
    .await;
}
