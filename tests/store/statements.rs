//! Statements per turn do not grow with the conversation (counted with sea-orm's metric
//! callback; BEGIN and COMMIT are not included).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use reel::merkle::Chain;
use reel::turn::KnownHashes;
use sea_orm::DatabaseConnection;

use crate::fixtures::*;
use crate::support::{TestDb, each_backend};

/// A connection to `t` that counts the statements it runs.
async fn counting(t: &TestDb) -> (DatabaseConnection, Arc<AtomicU64>) {
    let mut db = t.connect().await;
    let counter = Arc::new(AtomicU64::new(0));
    let c = counter.clone();
    db.set_metric_callback(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    (db, counter)
}

async fn statements(
    db: &DatabaseConnection,
    counter: &AtomicU64,
    session: &str,
    chain: &Chain,
    known: Option<&KnownHashes>,
) -> u64 {
    let before = counter.load(Ordering::SeqCst);
    try_ingest(db, Some(&envelope("claude", session)), chain, TOKENS, known)
        .await
        .expect("ingest");
    counter.load(Ordering::SeqCst) - before
}

#[tokio::test]
async fn statements_per_turn_are_flat_in_conversation_length() {
    each_backend(|t| async move {
        let (db, counter) = counting(&t).await;

        let mut seen = Vec::new();
        for len in [20, 1000] {
            let session = format!("flat-{len}");
            let base = long_conversation(&session, len);
            let cold = statements(&db, &counter, &session, &base, None).await;
            let mut known = KnownHashes::with_capacity(usize::MAX);
            known.remember(&base);
            let turn = next_turn(&base, "more", "ok: more");
            let warm = statements(&db, &counter, &session, &turn, Some(&known)).await;
            let retry = statements(&db, &counter, &session, &turn, None).await;
            seen.push((cold, warm, retry));
        }

        // Cold: read session, insert session, insert nodes, update counters.
        // Warm: read session, insert the new nodes, update counters.
        // Retry: read session, insert (nothing new), conditional head update; no write.
        assert_eq!(seen, vec![(4, 3, 3), (4, 3, 3)], "{:?}", t.backend);
    })
    .await;
}

#[tokio::test]
async fn a_raw_turn_adds_a_bounded_number_of_statements() {
    each_backend(|t| async move {
        let (db, counter) = counting(&t).await;
        let count = |turn: Turn, known: KnownHashes| {
            let (db, counter) = (db.clone(), counter.clone());
            async move {
                let before = counter.load(Ordering::SeqCst);
                let committed = store(&db)
                    .transaction(std::slice::from_ref(&turn), &known)
                    .await
                    .expect("commit");
                assert_eq!(committed.len(), 1);
                counter.load(Ordering::SeqCst) - before
            }
        };

        let mut seen = Vec::new();
        for len in [20, 1000] {
            let session = format!("raw-flat-{len}");
            let env = envelope("claude", &session);
            let base = long_conversation(&session, len);
            let next = next_turn(&base, "more", "ok: more");
            let third = next_turn(&next, "again", "ok: again");
            let request = claude_request(100_000, len, 2_000);
            let longer = claude_request(100_000, len + 1, 2_000);
            let longest = claude_request(100_000, len + 2, 2_000);
            let cold_raw = raw_turn(&format!("{session}-0"), &request);
            let cold = count(
                with_raw(turn(Some(&env), &base, TOKENS), cold_raw.clone()),
                KnownHashes::default(),
            )
            .await;
            let warm_raw = raw_turn(&format!("{session}-1"), &longer);
            let warm = count(
                with_raw(turn(Some(&env), &next, TOKENS), warm_raw.clone()),
                KnownHashes::default(),
            )
            .await;
            let retry = count(
                with_raw(turn(Some(&env), &next, TOKENS), warm_raw.clone()),
                KnownHashes::default(),
            )
            .await;
            // As a live actor commits: it knows the session's nodes and chunks.
            let mut known = KnownHashes::with_capacity(usize::MAX);
            known.remember(&next);
            known.remember_chunks(&cold_raw);
            known.remember_chunks(&warm_raw);
            let actor = count(
                with_raw(
                    turn(Some(&env), &third, TOKENS),
                    raw_turn(&format!("{session}-2"), &longest),
                ),
                known,
            )
            .await;
            seen.push((cold, warm, retry, actor));
        }

        // The turn's own statements are 4 cold, 3 warm, 3 for a retry (see above). A raw
        // turn adds the chunk lookup (not when its actor knows all but a few chunks), the
        // row and the missing chunks; a retried request id writes no chunk. On Postgres the
        // read of the session also takes the chunk lock, and the row, its chunks and the
        // session update are one statement.
        let expected = match t.backend {
            crate::support::Backend::Postgres => (4 + 1, 3 + 1, 3 + 2, 3),
            _ => (4 + 3, 3 + 3, 3 + 2, 3 + 2),
        };
        assert_eq!(seen, vec![expected, expected], "{:?}", t.backend);
    })
    .await;
}

/// Turns of distinct sessions committed in one transaction (as the group writer commits the
/// sessions waiting together) share their statements: a group of warm turns costs the same
/// whether it holds two sessions or eight, and every turn is stored and counted.
#[tokio::test]
async fn a_group_of_sessions_shares_its_statements() {
    each_backend(|t| async move {
        let (db, counter) = counting(&t).await;
        let store = store(&db);

        let mut seen = Vec::new();
        for sessions in [2, 8] {
            let names: Vec<String> = (0..sessions)
                .map(|i| format!("group-{sessions}-{i}"))
                .collect();
            let bases: Vec<Chain> = names.iter().map(|n| long_conversation(n, 30)).collect();
            let cold: Vec<Turn> = names
                .iter()
                .zip(&bases)
                .map(|(n, chain)| turn(Some(&envelope("claude", n)), chain, TOKENS))
                .collect();
            let before = counter.load(Ordering::SeqCst);
            let committed = store
                .transaction(&cold, &KnownHashes::default())
                .await
                .expect("cold group");
            let cold_statements = counter.load(Ordering::SeqCst) - before;
            assert!(committed.iter().all(|c| c.counted), "{committed:?}");

            let mut known = KnownHashes::with_capacity(usize::MAX);
            let nexts: Vec<Chain> = bases
                .iter()
                .map(|chain| {
                    known.remember(chain);
                    next_turn(chain, "more", "ok: more")
                })
                .collect();
            let warm: Vec<Turn> = names
                .iter()
                .zip(&nexts)
                .map(|(n, chain)| turn(Some(&envelope("claude", n)), chain, TOKENS))
                .collect();
            let before = counter.load(Ordering::SeqCst);
            let committed = store.transaction(&warm, &known).await.expect("warm group");
            let warm_statements = counter.load(Ordering::SeqCst) - before;
            assert!(
                committed
                    .iter()
                    .all(|c| c.counted && c.new_nodes.len() == 2)
            );
            seen.push((sessions, cold_statements, warm_statements));
        }

        let rows = all_sessions(&db).await;
        assert_eq!(rows.len(), 10);
        assert!(rows.iter().all(|s| s.turn_count == 2), "{rows:?}");
        // Cold: one read of every row, one insert of the new sessions, one node insert,
        // then the session updates. Warm: one read, one node insert, the updates: on
        // Postgres one statement for all of them, on SQLite (no writes inside WITH) one each.
        let expected = match t.backend {
            crate::support::Backend::Postgres => vec![(2, 4, 3), (8, 4, 3)],
            _ => vec![(2, 3 + 2, 2 + 2), (8, 3 + 8, 2 + 8)],
        };
        assert_eq!(seen, expected, "{:?}", t.backend);
    })
    .await;
}
