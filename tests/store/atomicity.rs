//! A turn is all or nothing: a failure injected after the node insert, on the counter
//! update, leaves no session row, no node and no counter change.

use reel::store::StoreError;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};

use crate::fixtures::*;
use crate::support::each_backend;
use crate::support::reads::count;

/// Makes every update of `sessions.turn_count` fail, as a constraint violation would.
async fn break_counter_updates(db: &DatabaseConnection) {
    let statements: &[&str] = match db.get_database_backend() {
        DbBackend::Postgres => &[
            "CREATE FUNCTION reject_counter_update() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'injected failure' USING ERRCODE = 'check_violation'; END $$",
            "CREATE TRIGGER reject_counter_update BEFORE UPDATE OF turn_count ON sessions
             FOR EACH ROW EXECUTE FUNCTION reject_counter_update()",
        ],
        _ => &[
            "CREATE TRIGGER reject_counter_update BEFORE UPDATE OF turn_count ON sessions
                BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        ],
    };
    for s in statements {
        db.execute_unprepared(s)
            .await
            .expect("install failing trigger");
    }
}

async fn repair_counter_updates(db: &DatabaseConnection) {
    let drop = match db.get_database_backend() {
        DbBackend::Postgres => "DROP TRIGGER reject_counter_update ON sessions",
        _ => "DROP TRIGGER reject_counter_update",
    };
    db.execute_unprepared(drop)
        .await
        .expect("drop failing trigger");
}

#[tokio::test]
async fn a_failed_first_turn_leaves_no_session_and_no_node() {
    each_backend(|t| async move {
        let db = t.connect().await;
        break_counter_updates(&db).await;
        let mut env = envelope("claude", "doomed");
        env.parent_harness_session_id = Some("doomed-parent".into());

        let err = try_ingest(&db, Some(&env), &session_fixture("doomed"), TOKENS, None)
            .await
            .unwrap_err();

        assert!(matches!(err, StoreError::Db(_)), "{:?}: {err:?}", t.backend);
        assert!(err.to_string().contains("injected failure"), "{err}");
        assert!(
            all_sessions(&db).await.is_empty(),
            "no session, no placeholder"
        );
        assert!(all_nodes(&db).await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_failed_later_turn_changes_nothing_and_can_be_retried() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let env = envelope("claude", "survivor");
        let turn1 = session_fixture("kept");
        let turn2 = next_turn(&turn1, "lost", "ok: lost");
        let out1 = ingest(&db, Some(&env), &turn1).await;
        let before = session(&db, out1.session_id).await;

        break_counter_updates(&db).await;
        try_ingest(&db, Some(&env), &turn2, TOKENS, None)
            .await
            .unwrap_err();

        assert_eq!(
            session(&db, out1.session_id).await,
            before,
            "{:?}",
            t.backend
        );
        assert_eq!(
            all_nodes(&db).await.len(),
            2,
            "turn 2's nodes were rolled back"
        );

        repair_counter_updates(&db).await;
        let out2 = ingest(&db, Some(&env), &turn2).await;
        assert!(out2.counted);
        assert_eq!(out2.new_nodes.len(), 2);
        assert_eq!(session(&db, out1.session_id).await.turn_count, 2);
    })
    .await;
}

#[tokio::test]
async fn a_batch_fails_as_a_whole() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let good = envelope("claude", "batch-good");
        let turn_good = session_fixture("good");
        ingest(&db, Some(&good), &turn_good).await;
        let before = session(&db, all_sessions(&db).await[0].id).await;
        break_counter_updates(&db).await;

        let next = next_turn(&turn_good, "next", "ok: next");
        let fresh = session_fixture("fresh");
        let fresh_env = envelope("claude", "batch-fresh");
        let one = Tokens {
            input: 1,
            output: 1,
            cost_usd: 0.0,
        };
        let turns = [
            turn(Some(&fresh_env), &fresh, one),
            turn(Some(&good), &next, one),
        ];
        store(&db)
            .transaction(&turns, &KnownHashes::default())
            .await
            .unwrap_err();

        assert_eq!(all_sessions(&db).await, vec![before], "{:?}", t.backend);
        assert_eq!(all_nodes(&db).await.len(), 2);
    })
    .await;
}

/// Makes every insert into `table` fail.
async fn break_inserts(db: &DatabaseConnection, table: &str) {
    let statements = match db.get_database_backend() {
        DbBackend::Postgres => vec![
            "CREATE OR REPLACE FUNCTION reject_insert() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'injected failure' USING ERRCODE = 'check_violation'; END $$"
                .to_owned(),
            format!(
                "CREATE TRIGGER reject_insert_{table} BEFORE INSERT ON {table}
                 FOR EACH ROW EXECUTE FUNCTION reject_insert()"
            ),
        ],
        _ => vec![format!(
            "CREATE TRIGGER reject_insert_{table} BEFORE INSERT ON {table}
                BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        )],
    };
    for s in statements {
        db.execute_unprepared(&s)
            .await
            .expect("install failing trigger");
    }
}

/// A failure after the raw row is inserted (on its chunks, the turn's last statement) or on
/// the raw row itself rolls back the nodes, the session and its counters with it.
#[tokio::test]
async fn a_failed_raw_write_leaves_no_node_no_counter_no_raw_row_and_no_chunk() {
    for table in ["raw_chunks", "raw_turns"] {
        each_backend(|t| async move {
            let db = t.connect().await;
            let env = envelope("claude", "raw-doomed");
            let turn1 = session_fixture("raw kept");
            let kept = ingest(&db, Some(&env), &turn1).await;
            let before = session(&db, kept.session_id).await;
            break_inserts(&db, table).await;

            // A later turn of a stored session, and the first turn of a new one.
            let later = next_turn(&turn1, "raw lost", "ok: raw lost");
            let fresh = session_fixture("raw fresh");
            let request = claude_request(50_000, 4, 2_000);
            for (env, chain) in [
                (env.clone(), later),
                (envelope("claude", "raw-fresh"), fresh),
            ] {
                let turn = with_raw(
                    turn(Some(&env), &chain, TOKENS),
                    raw_turn("doomed", &request),
                );
                let err = try_commit(&db, &turn).await.unwrap_err();
                assert!(
                    err.to_string().contains("injected failure"),
                    "{table}: {err}"
                );
            }

            assert_eq!(
                session(&db, kept.session_id).await,
                before,
                "{table} on {:?}",
                t.backend
            );
            assert_eq!(all_sessions(&db).await.len(), 1, "{table}");
            assert_eq!(all_nodes(&db).await.len(), 2, "{table}");
            assert_eq!(count(&db, "raw_turns").await, 0, "{table}");
            assert_eq!(count(&db, "raw_chunks").await, 0, "{table}");
        })
        .await;
    }
}
