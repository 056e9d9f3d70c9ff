//! Retention of raw turns: old turns go, and with them exactly the chunks no kept turn
//! reaches, also while turns that share those chunks are being ingested.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use reel::capture::chunks::Chunked;
use reel::store::{PruneReport, Quarantined, RawKey, Rejected};
use reel::turn::{RawStored, RawTurn};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::fixtures::*;
use crate::raw::{chunk_rows, raw_rows, scalar};
use crate::support::each_backend;

fn aged(request_id: &str, request: &[u8], received_at: DateTime<Utc>) -> RawTurn {
    let mut capture = raw_capture(request_id, request);
    capture.received_at = received_at;
    RawTurn::new(capture).0
}

/// Distinct chunks the given requests need.
fn pieces<'a>(requests: impl IntoIterator<Item = &'a [u8]>) -> usize {
    let mut all = HashSet::new();
    for request in requests {
        all.extend(Chunked::split(request).pieces().iter().map(|p| *p.hash()));
    }
    all.len()
}

#[tokio::test]
async fn pruning_deletes_old_turns_and_only_the_chunks_nothing_kept_reaches() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let s = store(&db);
        let now = Utc::now();
        let old = now - TimeDelta::days(2);
        let env = envelope("claude", "retained");
        let chain1 = session_fixture("retained");
        let chain2 = next_turn(&chain1, "u", "a");
        let chain3 = next_turn(&chain2, "u2", "a2");

        let r1 = claude_request(60_000, 10, 2_000);
        let kept = claude_request(60_000, 12, 2_000);
        let unique = prose(999, 100_000).into_bytes();
        for (chain, raw) in [
            (&chain1, aged("p-1", &r1, old)),
            (&chain2, aged("p-2", &unique, old)),
            (&chain3, aged("p-3", &kept, now)),
        ] {
            try_commit(&db, &with_raw(turn(Some(&env), chain, TOKENS), raw))
                .await
                .unwrap();
        }
        let key = RawKey {
            org_id: Uuid::nil(),
            ..RawKey::default()
        };
        let rejected = Rejected {
            status: 422,
            reason: "reject_parse".into(),
            error: "unprocessable turn".into(),
        };
        let q = s
            .quarantine(
                &key,
                &aged("p-4", &prose(5, 30_000).into_bytes(), old),
                &rejected,
                1 << 20,
            )
            .await
            .unwrap();
        assert!(matches!(q, Quarantined::Stored(_)));
        assert!(scalar(&db, "SELECT quarantined_bytes FROM raw_quota").await > 0);

        let report = s.prune_raw(now - TimeDelta::days(1)).await.unwrap();
        assert_eq!(report.turns, 3, "{:?}", t.backend);
        assert!(report.chunks > 0);
        assert_eq!(raw_rows(&db).await, 1);
        assert_eq!(chunk_rows(&db).await as usize, pieces([kept.as_slice()]));
        let left = s.raw_turns(Uuid::nil(), None, None, 10).await.unwrap();
        let stored = s.raw_turn(None, left[0].id).await.unwrap().unwrap();
        assert_eq!(stored.request, kept);
        assert_eq!(
            scalar(&db, "SELECT quarantined_bytes FROM raw_quota").await,
            0
        );
        // Nodes are not raw storage: all three turns' nodes stay.
        assert_eq!(all_nodes(&db).await.len(), chain3.nodes.len());

        assert_eq!(
            s.prune_raw(now - TimeDelta::days(1)).await.unwrap(),
            PruneReport::default()
        );
    })
    .await;
}

const WRITERS: usize = 2;
const TURNS_PER_WRITER: usize = 24;

/// Ingests, per round, an old turn and then a new turn sending the same request: retention
/// may delete the old one and leave its chunks unreferenced just as the new one finds them
/// stored and reuses them without inserting.
async fn writer(
    db: DatabaseConnection,
    writer: usize,
    old: DateTime<Utc>,
) -> Vec<(String, Vec<u8>)> {
    let env = envelope("claude", &format!("writer-{writer}"));
    let mut chain = session_fixture(&format!("writer {writer}"));
    let mut kept = Vec::new();
    for i in 0..TURNS_PER_WRITER {
        // Sessions share the preamble, and each round adds a message to the last.
        let request = claude_request(30_000, i + 1, 1_500 + writer * 100);
        for (tag, received_at) in [("old", old), ("new", Utc::now())] {
            let id = format!("w{writer}-{i}-{tag}");
            let raw = aged(&id, &request, received_at);
            let committed = try_commit(&db, &with_raw(turn(Some(&env), &chain, TOKENS), raw))
                .await
                .unwrap_or_else(|e| panic!("{id}: {e}"));
            assert!(matches!(committed.raw, Some(RawStored::Inserted(_))));
            chain = next_turn(&chain, &format!("{id} u"), &format!("{id} a"));
            if tag == "new" {
                kept.push((id, request.clone()));
            }
        }
    }
    kept
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pruning_while_ingesting_never_loses_a_kept_chunk() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let old = Utc::now() - TimeDelta::days(2);
        let cutoff = Utc::now() - TimeDelta::days(1);
        let done = Arc::new(AtomicBool::new(false));
        let pruner = {
            let (db, done) = (db.clone(), done.clone());
            tokio::spawn(async move {
                let mut runs = 0;
                let mut total = PruneReport::default();
                while !done.load(Ordering::SeqCst) {
                    let report = store(&db).prune_raw(cutoff).await.expect("prune");
                    total.turns += report.turns;
                    total.chunks += report.chunks;
                    runs += 1;
                    tokio::task::yield_now().await;
                }
                (runs, total)
            })
        };
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| tokio::spawn(writer(db.clone(), w, old)))
            .collect();
        let mut expected: HashMap<String, Vec<u8>> = HashMap::new();
        for w in writers {
            expected.extend(w.await.expect("writer"));
        }
        done.store(true, Ordering::SeqCst);
        let (runs, during) = pruner.await.expect("pruner");
        assert!(runs > 1, "{}: prune ran {runs} times", t.backend);
        assert!(
            during.turns > 0,
            "{}: prune ran but deleted no turn",
            t.backend
        );

        // Every kept turn reads back whole.
        let s = store(&db);
        let mut seen = 0;
        let mut after = None;
        loop {
            let page = s.raw_turns(Uuid::nil(), None, after, 50).await.unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            for summary in &page {
                let stored = s
                    .raw_turn(None, summary.id)
                    .await
                    .unwrap_or_else(|e| panic!("{}: {:?}: {e}", t.backend, summary.request_id))
                    .unwrap();
                let id = summary.request_id.clone().unwrap();
                if let Some(request) = expected.get(&id) {
                    assert!(stored.request == *request, "{}: {id} differs", t.backend);
                    seen += 1;
                } else {
                    assert!(id.ends_with("-old"), "{id}");
                }
            }
        }
        assert_eq!(seen, expected.len(), "{}", t.backend);

        // Once ingest is quiet, one more run leaves exactly what the kept turns need.
        s.prune_raw(cutoff).await.unwrap();
        assert_eq!(raw_rows(&db).await as usize, expected.len());
        let needed = pieces(expected.values().map(Vec::as_slice));
        assert_eq!(chunk_rows(&db).await as usize, needed, "{}", t.backend);
    })
    .await;
}
