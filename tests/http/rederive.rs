//! `reel rederive` (docs/storage.md#rederive): a database filled under tapes-f237b6e with
//! the conformance payloads as sessions, rebuilt under tapes-6ea4dfc, holds what a fresh
//! ingest of the same turns under tapes-6ea4dfc holds: the same sessions with the same
//! counters (those they had), the same nodes, the same heads in the raw turns. A run stopped
//! halfway and run again gives the same; a finished one has nothing to do; a session whose
//! history predates raw capture is left as it was.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use actix_web::http::StatusCode;
use entity::{nodes, raw_turns, sessions};
use reel::cost::PriceBook;
use reel::merkle::Rules;
use reel::rederive_cli::{LeftAlone, RederiveOptions, RederiveReport};
use reel::store::{CommitOptions, Store, recorded_rules};
use reel::turn::prepare_body_under;
use sea_orm::{DatabaseConnection, EntityTrait};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::TestApp;
use crate::support::vectors::{lines, read_file};
use crate::support::{Backend, TestDb, each_backend};

const OLD: &Rules = &Rules::TAPES_F237B6E;
const NEW: &Rules = &Rules::TAPES_6EA4DFC;
/// The org of the session ingested before raw capture.
const LEGACY_ORG: &str = "0b0b0b0b-0000-4000-8000-000000000001";

/// The synthetic session id and the head a body gets under `rules`, when it is accepted.
fn chain_ids(body: &[u8], rules: &Rules) -> Option<(String, String)> {
    let prices = PriceBook::only(Default::default());
    prepare_body_under(body, &prices, rules).ok().map(|p| {
        let chain = &p.turn.chain;
        (
            chain.synthetic_session_id().to_owned(),
            chain.head().hash.clone(),
        )
    })
}

/// The turns: the lines of chains-v2.jsonl accepted under both rule sets that are distinct
/// turns under both (a head no other line has: lines that are one turn under f237b6e, such
/// as two Responses requests with the same answer, are counted once there and twice under
/// 6ea4dfc, and rederive leaves such a session alone). Most are put three by three into
/// sessions of their own envelope; every fifth goes without an envelope, as a synthetic
/// session, when its synthetic id is its own under both rules.
fn turns() -> Vec<Value> {
    let text = read_file("chains-v2.jsonl");
    let mut repaired = Vec::new();
    let mut seen: [HashSet<String>; 2] = Default::default();
    let mut heads: [HashSet<String>; 2] = Default::default();
    let mut turns = Vec::new();
    for line in lines("chains-v2.jsonl", &text, &mut repaired) {
        if line.expect.status != 202 {
            continue;
        }
        let body = line.payload.get().as_bytes();
        let (Some(old), Some(new)) = (chain_ids(body, OLD), chain_ids(body, NEW)) else {
            continue;
        };
        if heads[0].contains(&old.1) || heads[1].contains(&new.1) {
            continue;
        }
        heads[0].insert(old.1);
        heads[1].insert(new.1);
        let mut payload: Value = serde_json::from_str(line.payload.get()).expect("JSON");
        let org = payload["session"]["org_id"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let index = turns.len();
        if index % 5 == 4 {
            payload
                .as_object_mut()
                .expect("an object")
                .remove("session");
            let bare = serde_json::to_vec(&payload).expect("JSON");
            let ids = [OLD, NEW].map(|rules| chain_ids(&bare, rules).expect("accepted").0);
            if ids.iter().zip(&seen).any(|(id, seen)| seen.contains(id)) {
                continue;
            }
            for (id, seen) in ids.into_iter().zip(&mut seen) {
                seen.insert(id);
            }
        } else {
            payload["session"] = json!({
                "org_id": org,
                "harness_id": "conformance",
                "harness_session_id": format!("session-{}", index / 3),
            });
        }
        turns.push(payload);
    }
    turns
}

/// The session ingested while raw capture was off.
fn legacy_turn() -> Value {
    json!({
        "provider": "openai",
        "request": {"model": "m", "messages": [{"role": "user", "content": "before capture"}]},
        "response": {"model": "m", "message": {"role": "assistant",
            "content": [{"type": "text", "text": "kept"}]}},
        "session": {"org_id": LEGACY_ORG, "harness_id": "old", "harness_session_id": "legacy"}
    })
}

async fn ingest_all(db: &TestDb, rules: &Rules, turns: &[Value]) {
    let app = TestApp::spawn_with(db, |c| c.chain.rules = Some(rules.name.to_owned())).await;
    for turn in turns {
        let res = app.ingest(turn).await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
    }
    app.stop().await;
}

/// Another fresh database on the same backend.
async fn another(db: &TestDb) -> TestDb {
    match db.backend {
        Backend::Sqlite => TestDb::sqlite(),
        Backend::Postgres => TestDb::postgres().await.expect("Postgres is configured"),
    }
}

async fn rederive(db: &DatabaseConnection, stop_after: Option<u64>) -> (RederiveReport, String) {
    let store = Store::new(
        db.clone(),
        CommitOptions {
            project: Some(Arc::from("")),
            ..CommitOptions::default()
        },
    );
    let options = RederiveOptions {
        rules: NEW,
        stop_after,
        progress: false,
    };
    let mut out = Vec::new();
    // Today's price table, which need not be the one the turns were charged by.
    let prices = PriceBook::only(Default::default());
    let report = reel::rederive_cli::run(&store, &prices, &options, &mut out)
        .await
        .expect("rederive runs");
    (report, String::from_utf8(out).expect("UTF-8"))
}

type Key = (Uuid, String, String);

/// Every session's counters, by natural key.
async fn counters(db: &DatabaseConnection) -> BTreeMap<Key, (i32, i64, i64, String)> {
    sessions::Entity::find()
        .all(db)
        .await
        .expect("sessions")
        .into_iter()
        .map(|s| {
            (
                (s.org_id, s.harness_id, s.harness_session_id),
                (
                    s.turn_count,
                    s.total_input_tokens,
                    s.total_output_tokens,
                    s.total_cost_usd.normalize().to_string(),
                ),
            )
        })
        .collect()
}

/// Every node: org, hash, parent, kind.
async fn node_set(
    db: &DatabaseConnection,
) -> BTreeSet<(Uuid, String, Option<String>, Option<String>)> {
    nodes::Entity::find()
        .all(db)
        .await
        .expect("nodes")
        .into_iter()
        .map(|n| (n.org_id, n.hash, n.parent_hash, n.node_kind))
        .collect()
}

/// The head every raw turn names, by its session's key and its request id.
async fn raw_heads(db: &DatabaseConnection) -> BTreeSet<(Key, Option<String>, Option<String>)> {
    let sessions: BTreeMap<Uuid, Key> = sessions::Entity::find()
        .all(db)
        .await
        .expect("sessions")
        .into_iter()
        .map(|s| (s.id, (s.org_id, s.harness_id, s.harness_session_id)))
        .collect();
    raw_turns::Entity::find()
        .all(db)
        .await
        .expect("raw turns")
        .into_iter()
        .map(|r| {
            let key = r
                .session_id
                .map(|id| sessions[&id].clone())
                .expect("a session");
            (key, r.request_id, r.head_hash)
        })
        .collect()
}

#[actix_rt::test]
async fn rederive_rebuilds_every_session_as_a_fresh_ingest_would() {
    let turns = turns();
    assert!(turns.len() > 400, "{} turns", turns.len());
    each_backend(|db| {
        let turns = turns.clone();
        async move {
            // The legacy session first, without raw capture, then every turn with it.
            let app = TestApp::spawn_with(&db, |c| c.capture.raw = false).await;
            assert_eq!(
                app.ingest(&legacy_turn()).await.status,
                StatusCode::ACCEPTED
            );
            app.stop().await;
            ingest_all(&db, OLD, &turns).await;
            let fresh = another(&db).await;
            ingest_all(&fresh, NEW, &turns).await;

            let conn = sea_orm::Database::connect(&db.url).await.expect("connect");
            let fresh = sea_orm::Database::connect(&fresh.url)
                .await
                .expect("connect");
            let legacy_org = Uuid::parse_str(LEGACY_ORG).unwrap();
            let before = counters(&conn).await;
            let legacy_nodes: BTreeSet<_> = node_set(&conn)
                .await
                .into_iter()
                .filter(|n| n.0 == legacy_org)
                .collect();
            assert_eq!(legacy_nodes.len(), 2);

            // Stopped after half the sessions, as if killed, then run again.
            let half = (before.len() / 2) as u64;
            let (stopped, _) = rederive(&conn, Some(half)).await;
            assert_eq!(stopped.rebuilt, half, "{:?}", stopped.left_alone);
            assert!(!stopped.finished);
            assert_eq!(recorded_rules(&conn).await.unwrap(), Some(OLD));
            let (report, summary) = rederive(&conn, None).await;
            assert!(report.finished, "{summary}");
            assert_eq!(report.already, half, "{summary}");
            assert_eq!(recorded_rules(&conn).await.unwrap(), Some(NEW));
            // Only the legacy session is left alone, for its missing raw history.
            assert_eq!(report.left_alone.len(), 1, "{summary}");
            assert!(
                matches!(
                    report.left_alone[0].1,
                    LeftAlone::Incomplete {
                        raw_heads: 0,
                        turns: 1
                    }
                ),
                "{summary}"
            );
            assert!(summary.contains("predates raw capture"), "{summary}");

            // Counters are those the sessions had; synthetic sessions carry their new ids,
            // which are the fresh ingest's.
            let after = counters(&conn).await;
            let rederived: BTreeMap<_, _> = after
                .iter()
                .filter(|(k, _)| k.0 != legacy_org)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            assert_eq!(rederived, counters(&fresh).await);
            for (key, value) in &before {
                if key.1 == "conformance" || key.0 == legacy_org {
                    assert_eq!(after.get(key), Some(value), "{key:?}");
                }
            }
            let total = |c: &BTreeMap<Key, (i32, i64, i64, String)>| {
                c.values()
                    .fold((0, 0, 0), |s, c| (s.0 + c.0, s.1 + c.1, s.2 + c.2))
            };
            assert_eq!(total(&after), total(&before));

            let nodes = node_set(&conn).await;
            let (legacy, rest): (BTreeSet<_>, BTreeSet<_>) =
                nodes.into_iter().partition(|n| n.0 == legacy_org);
            assert_eq!(legacy, legacy_nodes, "the legacy session's nodes are kept");
            assert_eq!(rest, node_set(&fresh).await, "the nodes of a fresh ingest");
            let heads: BTreeSet<_> = raw_heads(&conn).await;
            assert_eq!(heads, raw_heads(&fresh).await);

            // Run again: nothing to do, nothing changes.
            let (again, summary) = rederive(&conn, None).await;
            assert!(summary.contains("nothing to do"), "{summary}");
            assert_eq!(again.rebuilt, 0);
            assert_eq!(counters(&conn).await, after);
        }
    })
    .await;
}
