//! Two orgs sharing a hash never see or touch each other's rows
//! (docs/divergences.md#org-scoping).

use reel::store;

use crate::fixtures::*;
use crate::support::each_backend;
use crate::support::reads;

fn org_envelope(org_id: &str, session: &str) -> reel::wire::SessionEnvelope {
    let mut env = envelope("claude", session);
    env.org_id = org_id.into();
    env
}

#[tokio::test]
async fn orgs_sharing_hashes_keep_separate_rows_counters_and_reads() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let (a, b) = (org(ORG_A), org(ORG_B));
        let turn1 = session_fixture("shared");
        let turn2 = next_turn(&turn1, "more", "ok: more");

        // Org B sees turn 1's head only as history; org A ingests it as a head.
        let out_b = ingest(&db, Some(&org_envelope(ORG_B, "same-id")), &turn2).await;
        let out_a = ingest(&db, Some(&org_envelope(ORG_A, "same-id")), &turn1).await;

        assert_ne!(out_a.session_id, out_b.session_id);
        assert_eq!(
            out_a.new_nodes,
            hashes(&turn1),
            "A's rows are A's, whatever B stored"
        );
        assert!(out_a.counted);
        let shared = &turn1.head().hash;
        assert!(node(&db, a, shared).await.is_turn_head);
        let b_copy = node(&db, b, shared).await;
        assert!(
            !b_copy.is_turn_head,
            "{:?}: A's head mark leaked into B",
            t.backend
        );
        assert_eq!(b_copy.prompt_tokens, None);
        assert_eq!(b_copy.session_id, Some(out_b.session_id));
        assert_eq!(session(&db, out_b.session_id).await.turn_count, 1);

        let listed_a = store::list_nodes(&db, a, None, 1000).await.unwrap();
        assert_eq!(
            listed_a.iter().map(|n| n.hash.clone()).collect::<Vec<_>>(),
            hashes(&turn1)
        );
        assert_eq!(
            store::list_nodes(&db, b, None, 1000).await.unwrap().len(),
            4
        );

        let ancestry_b = store::ancestry(&db, b, &turn2.head().hash).await.unwrap();
        assert_eq!(
            ancestry_b
                .iter()
                .map(|n| n.hash.clone())
                .collect::<Vec<_>>(),
            hashes(&turn2)
        );
        assert!(ancestry_b.iter().all(|n| n.org_id == b));
        let ancestry_a = store::ancestry(&db, a, &turn1.head().hash).await.unwrap();
        assert_eq!(ancestry_a.len(), 2);
        assert!(
            store::ancestry(&db, a, &turn2.head().hash)
                .await
                .unwrap()
                .is_empty()
        );

        assert!(
            reads::session_by_id(&db, a, out_b.session_id)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            reads::node(&db, a, &turn2.head().hash)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            store::identity_by_hash(&db, b, shared)
                .await
                .unwrap()
                .unwrap()
                .harness_session_id,
            "same-id"
        );
    })
    .await;
}

#[tokio::test]
async fn a_retry_in_one_org_leaves_the_other_org_untouched() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let chain = session_fixture("twin");
        let out_a = ingest(&db, Some(&org_envelope(ORG_A, "twin")), &chain).await;
        let out_b = ingest(&db, Some(&org_envelope(ORG_B, "twin")), &chain).await;
        assert!(
            out_b.counted,
            "{:?}: B's copy of the turn counts in B",
            t.backend
        );
        assert_eq!(out_b.new_nodes.len(), 2);
        let before_b = session(&db, out_b.session_id).await;

        let retry_a = ingest(&db, Some(&org_envelope(ORG_A, "twin")), &chain).await;
        assert!(!retry_a.counted);
        assert_eq!(session(&db, out_b.session_id).await, before_b);
        assert_eq!(session(&db, out_a.session_id).await.turn_count, 1);
        assert_eq!(all_nodes(&db).await.len(), 4);
    })
    .await;
}

/// Turns committed together treat the nodes of earlier turns as stored only in their own
/// org: another org's turn with the same hashes still writes its own rows.
#[tokio::test]
async fn turns_of_two_orgs_committed_together_each_store_their_nodes() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let chain = session_fixture("together");
        let (env_a, env_b) = (org_envelope(ORG_A, "a"), org_envelope(ORG_B, "b"));
        let turns = [
            turn(Some(&env_a), &chain, TOKENS),
            turn(Some(&env_b), &chain, TOKENS),
        ];
        let outs = store(&db)
            .transaction(&turns, &KnownHashes::default())
            .await
            .unwrap();
        assert!(outs.iter().all(|o| o.counted), "{:?}", t.backend);
        assert_eq!(outs[1].new_nodes, hashes(&chain));
        for org_id in [org(ORG_A), org(ORG_B)] {
            assert!(node(&db, org_id, &chain.head().hash).await.is_turn_head);
        }
    })
    .await;
}
