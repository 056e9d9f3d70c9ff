//! The schema history: up, down to zero, up again, on both backends; and the reference's
//! destructive down keeping one row per hash (docs/divergences.md#destructive-down-migration).

use migration::{Migrator, MigratorTrait, SchemaManager};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use uuid::Uuid;

use crate::fixtures::*;
use crate::support::each_backend;

async fn has_table(db: &DatabaseConnection, table: &str) -> bool {
    SchemaManager::new(db)
        .has_table(table)
        .await
        .expect("inspect schema")
}

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    db.query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("count")
        .expect("count row")
        .try_get_by_index::<i64>(0)
        .expect("count value")
}

async fn ancestry_functions(db: &DatabaseConnection) -> i64 {
    count(
        db,
        "SELECT COUNT(*) FROM pg_proc WHERE proname = 'ancestry_chains_rows'",
    )
    .await
}

#[tokio::test]
async fn migrations_go_up_down_to_zero_and_up_again() {
    each_backend(|t| async move {
        let db = t.connect_raw().await;
        let pg = db.get_database_backend() == DbBackend::Postgres;
        let total = Migrator::migrations().len();

        Migrator::up(&db, None).await.unwrap();
        assert_eq!(
            Migrator::get_applied_migrations(&db).await.unwrap().len(),
            total
        );
        assert!(has_table(&db, "nodes").await && has_table(&db, "sessions").await);
        assert!(has_table(&db, "settings").await);
        for raw in ["raw_turns", "raw_chunks", "raw_quota"] {
            assert!(has_table(&db, raw).await, "{raw}");
        }
        if pg {
            assert_eq!(ancestry_functions(&db).await, 1, "only the org-scoped walk");
        }

        Migrator::down(&db, None).await.unwrap();
        assert!(
            Migrator::get_applied_migrations(&db)
                .await
                .unwrap()
                .is_empty(),
            "{:?}",
            t.backend
        );
        assert!(!has_table(&db, "nodes").await);
        assert!(!has_table(&db, "sessions").await);
        for raw in ["raw_turns", "raw_chunks", "raw_quota"] {
            assert!(!has_table(&db, raw).await, "{raw}");
        }
        if pg {
            assert_eq!(ancestry_functions(&db).await, 0);
        }

        Migrator::up(&db, None).await.unwrap();
        assert_eq!(
            Migrator::get_pending_migrations(&db).await.unwrap().len(),
            0
        );
        let db = t.connect().await;
        let out = ingest(
            &db,
            Some(&envelope("claude", "after-redo")),
            &session_fixture("redo"),
        )
        .await;
        assert!(out.counted);
    })
    .await;
}

#[tokio::test]
async fn stepping_down_keeps_one_row_per_hash_and_stepping_up_restores_the_schema() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let chain = session_fixture("downgrade");
        let mut env_a = envelope("claude", "org-a");
        env_a.org_id = ORG_A.into();
        ingest(&db, Some(&env_a), &chain).await;
        ingest(&db, Some(&envelope("claude", "nil-org")), &chain).await;
        assert_eq!(count(&db, "SELECT COUNT(*) FROM nodes").await, 4);

        // Down past the request-key index, the TOAST compression, the session read indexes, rederive's tables, the
        // node kinds, the chain rules, the raw turns, the cost range, the API keys, reel's
        // additions and the session tracking migration.
        Migrator::down(&db, Some(11)).await.unwrap();
        assert!(!has_table(&db, "sessions").await, "{:?}", t.backend);
        assert_eq!(count(&db, "SELECT COUNT(*) FROM nodes").await, 2);

        Migrator::up(&db, None).await.unwrap();
        // The surviving rows are the nil-org ones; their session link is gone.
        let kept = all_nodes(&db).await;
        assert_eq!(kept.len(), 2);
        assert!(
            kept.iter()
                .all(|n| n.org_id == Uuid::nil() && n.session_id.is_none())
        );
        // The head still carries its usage, so the turn-heads migration marks it again.
        assert!(
            node(&db, Uuid::nil(), &chain.head().hash)
                .await
                .is_turn_head
        );
        assert!(
            !node(&db, Uuid::nil(), &chain.root().hash)
                .await
                .is_turn_head
        );
    })
    .await;
}

/// On Postgres with lz4, node and raw-turn values are compressed with lz4, and raw chunks
/// (zstd already) are stored without a second compression; a `down` restores the defaults.
#[tokio::test]
async fn toast_compression_is_lz4_and_chunks_are_stored_as_they_are() {
    each_backend(|t| async move {
        if t.backend != crate::support::Backend::Postgres {
            return;
        }
        let db = t.connect().await;
        let lz4 = count(
            &db,
            "SELECT COUNT(*) FROM pg_settings WHERE name = 'default_toast_compression' \
             AND 'lz4' = ANY (enumvals)",
        )
        .await;
        let lz4_columns = "SELECT COUNT(*) FROM pg_attribute WHERE attcompression = 'l' AND \
             ((attrelid = 'nodes'::regclass AND attname IN ('bucket', 'content')) OR \
              (attrelid = 'raw_turns'::regclass AND attname IN \
               ('response', 'meta', 'envelope', 'request_list', 'raw_response')))";
        let external = "SELECT COUNT(*) FROM pg_attribute WHERE attstorage = 'e' AND \
             attrelid = 'raw_chunks'::regclass AND attname = 'data'";
        assert_eq!(count(&db, lz4_columns).await, 7 * lz4);
        assert_eq!(count(&db, external).await, 1);

        // Down past the request-key index and the compression.
        Migrator::down(&db, Some(2)).await.unwrap();
        assert_eq!(count(&db, lz4_columns).await, 0);
        assert_eq!(count(&db, external).await, 0);
    })
    .await;
}

#[tokio::test]
async fn the_request_index_leads_with_the_key_and_steps_down_to_the_org() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let definition = |db: DatabaseConnection| async move {
            let sql = match t.backend {
                crate::support::Backend::Postgres => {
                    "SELECT indexdef AS d FROM pg_indexes WHERE indexname = 'raw_turns_request_uq'"
                }
                crate::support::Backend::Sqlite => {
                    "SELECT sql AS d FROM sqlite_master WHERE name = 'raw_turns_request_uq'"
                }
            };
            let row = db
                .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
                .await
                .unwrap()
                .expect("the index exists");
            row.try_get::<String>("", "d").unwrap()
        };
        let up = definition(db.clone()).await;
        assert!(up.contains("(request_key, org_id)"), "{up}");
        Migrator::down(&db, Some(1)).await.unwrap();
        let down = definition(db.clone()).await;
        assert!(down.contains("(org_id, request_key)"), "{down}");
    })
    .await;
}
