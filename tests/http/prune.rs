//! `reel prune`: raw turns received before the retention period go, with the chunks only
//! they used; recent ones stay whole; 0 days keeps everything.

use chrono::Utc;

use crate::captured::*;
use crate::support::each_backend;

#[actix_rt::test]
async fn prune_deletes_old_raw_turns_and_keeps_recent_ones() {
    each_backend(|db| async move {
        let captured = Captured::open(&db).await;
        let (_, old) = captured
            .accept(&body(&turn(ORG_A, "old", 0)), days_ago(40))
            .await;
        let mut gemini = turn(ORG_A, "old-q", 0);
        gemini["provider"] = serde_json::json!("gemini");
        let old_rejected = captured
            .quarantine(
                &body(&gemini),
                days_ago(31),
                org(ORG_A),
                "unsupported_provider",
            )
            .await;
        let (_, recent) = captured
            .accept(&body(&turn(ORG_A, "new", 0)), days_ago(2))
            .await;
        let chunks_before = captured.scalar("SELECT COUNT(*) FROM raw_chunks").await;

        // 0 days, given or configured (the default), keeps everything.
        for args in [&["prune", "--older-than-days", "0"][..], &["prune"][..]] {
            let (ok, out, err) = captured.cli(args);
            assert!(ok, "{err}");
            assert!(out.contains("nothing pruned"), "{out}");
        }
        assert_eq!(captured.scalar("SELECT COUNT(*) FROM raw_turns").await, 3);

        let (ok, out, err) = captured.cli(&["prune", "--older-than-days", "30"]);
        assert!(ok, "{err}");
        assert!(out.starts_with("pruned 2 raw turns and "), "{out}");
        for gone in [old, old_rejected] {
            assert!(captured.store.raw_turn(None, gone).await.unwrap().is_none());
        }
        let kept = captured
            .store
            .raw_turn(None, recent)
            .await
            .unwrap()
            .expect("a recent raw turn stays");
        let sent = turn(ORG_A, "new", 0);
        assert_eq!(kept.request, serde_json::to_vec(&sent["request"]).unwrap());
        let chunks_after = captured.scalar("SELECT COUNT(*) FROM raw_chunks").await;
        assert!(
            chunks_after < chunks_before,
            "{chunks_before} → {chunks_after}"
        );
        let pruned: i64 = out
            .split_whitespace()
            .nth(5)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no chunk count in {out}"));
        assert_eq!(pruned, chunks_before - chunks_after);
        // The quarantined bytes went back to the org's budget.
        assert_eq!(captured.quarantined_bytes().await, 0);
        assert_eq!(captured.scalar("SELECT COUNT(*) FROM nodes").await, 4);
    })
    .await;
}

#[actix_rt::test]
async fn prune_defaults_to_the_configured_retention() {
    each_backend(|db| async move {
        let captured = Captured::open(&db).await;
        let (_, old) = captured
            .accept(&body(&turn("", "old", 0)), days_ago(8))
            .await;
        let (_, recent) = captured
            .accept(&body(&turn("", "new", 0)), Utc::now())
            .await;
        let config = tempfile::NamedTempFile::new().expect("config file");
        std::fs::write(config.path(), "[capture]\nretention_days = 7\n").expect("write config");
        let path = config.path().to_str().expect("utf-8 path");

        let (ok, out, err) = captured.cli(&["prune", "--config", path]);
        assert!(ok, "{err}");
        assert!(out.starts_with("pruned 1 raw turns"), "{out}");
        assert!(captured.store.raw_turn(None, old).await.unwrap().is_none());
        assert!(
            captured
                .store
                .raw_turn(None, recent)
                .await
                .unwrap()
                .is_some()
        );

        // The flag wins over the file.
        let (ok, out, err) = captured.cli(&["prune", "--config", path, "--older-than-days", "0"]);
        assert!(ok, "{err}");
        assert!(out.contains("nothing pruned"), "{out}");
        assert!(
            captured
                .store
                .raw_turn(None, recent)
                .await
                .unwrap()
                .is_some()
        );
    })
    .await;
}
