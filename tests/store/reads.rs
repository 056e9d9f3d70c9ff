//! The reads the HTTP layer uses.

use reel::store;
use reel::turn::SessionKey;
use uuid::Uuid;

use crate::fixtures::*;
use crate::support::each_backend;
use crate::support::reads;

#[tokio::test]
async fn nodes_list_in_creation_order_and_filter_by_agent() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let turn1 = session_fixture("list");
        let turn2 = next_turn(&turn1, "again", "ok: again");
        ingest(&db, Some(&envelope("claude", "list")), &turn1).await;
        ingest(&db, Some(&envelope("claude", "list")), &turn2).await;
        let mut other = session_fixture("other agent");
        for n in &mut other.nodes {
            n.bucket.agent_name = "someone".into();
        }
        ingest(&db, None, &other).await;

        let all = store::list_nodes(&db, Uuid::nil(), None, 1000)
            .await
            .unwrap();
        let listed: Vec<String> = all.iter().map(|n| n.hash.clone()).collect();
        let mut expected = hashes(&turn2);
        expected.extend(hashes(&other));
        assert_eq!(listed, expected, "{:?}", t.backend);
        assert_eq!(all[0].role, "user");
        assert_eq!(all[0].provider, "anthropic");
        assert_eq!(all[0].model, "claude-test");
        assert_eq!(all[0].agent_name, "tester");

        let someone = store::list_nodes(&db, Uuid::nil(), Some("someone"), 1000)
            .await
            .unwrap();
        assert_eq!(
            someone.iter().map(|n| n.hash.clone()).collect::<Vec<_>>(),
            hashes(&other)
        );
        assert!(
            store::list_nodes(&db, Uuid::nil(), Some("nobody"), 1000)
                .await
                .unwrap()
                .is_empty()
        );

        // The limit keeps the first nodes in listing order.
        let first = store::list_nodes(&db, Uuid::nil(), None, 3).await.unwrap();
        assert_eq!(
            first.iter().map(|n| n.hash.clone()).collect::<Vec<_>>(),
            listed[..3],
            "{:?}",
            t.backend
        );
    })
    .await;
}

#[tokio::test]
async fn sessions_read_by_id_and_by_natural_key() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let env = envelope("claude", "readable");
        let chain = session_fixture("read me");
        let out = ingest(&db, Some(&env), &chain).await;

        let by_id = reads::session_by_id(&db, Uuid::nil(), out.session_id)
            .await
            .unwrap();
        let key = SessionKey::resolve(Some(&env), &chain);
        let by_key = reads::session_by_key(&db, &key).await.unwrap();
        assert_eq!(by_id, by_key, "{:?}", t.backend);
        assert_eq!(
            by_id.map(|s| s.harness_session_id),
            Some("readable".to_owned())
        );
        let missing = SessionKey {
            harness_session_id: "nope".into(),
            ..key
        };
        assert_eq!(reads::session_by_key(&db, &missing).await.unwrap(), None);
        assert_eq!(
            reads::session_by_id(&db, Uuid::nil(), Uuid::now_v7())
                .await
                .unwrap(),
            None
        );
    })
    .await;
}

#[tokio::test]
async fn ancestry_is_root_first_and_stops_at_the_root() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let chain = long_conversation("ancestry", 9);
        ingest(&db, Some(&envelope("claude", "ancestry")), &chain).await;

        let walk = store::ancestry(&db, Uuid::nil(), &chain.head().hash)
            .await
            .unwrap();
        assert_eq!(
            walk.iter().map(|n| n.hash.clone()).collect::<Vec<_>>(),
            hashes(&chain),
            "{:?}",
            t.backend
        );
        assert!(walk.last().unwrap().is_turn_head);
        let middle = &chain.nodes[4].hash;
        let partial = store::ancestry(&db, Uuid::nil(), middle).await.unwrap();
        assert_eq!(partial.len(), 5);
        assert!(
            store::ancestry(&db, Uuid::nil(), &"0".repeat(64))
                .await
                .unwrap()
                .is_empty()
        );
    })
    .await;
}
