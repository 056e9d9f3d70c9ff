//! Raw turns: kept verbatim with the turn's nodes, in the same transaction; the first row
//! of a request id wins; quarantine under a byte budget; re-deriving a quarantined turn
//! exactly once; reading back byte for byte.

use std::sync::Arc;

use reel::store::{Quarantined, RawKey, RawOutcome, Rejected};
use reel::turn::{RawStored, RawTurn};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::fixtures::*;
use crate::support::{Backend, each_backend};

pub async fn scalar(db: &DatabaseConnection, sql: &str) -> i64 {
    db.query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("query")
        .expect("a row")
        .try_get_by_index::<i64>(0)
        .expect("an integer")
}

pub async fn raw_rows(db: &DatabaseConnection) -> i64 {
    scalar(db, "SELECT COUNT(*) FROM raw_turns").await
}

pub async fn chunk_rows(db: &DatabaseConnection) -> i64 {
    scalar(db, "SELECT COUNT(*) FROM raw_chunks").await
}

fn rejected(error: &str) -> Rejected {
    Rejected {
        status: 422,
        reason: "reject_parse".into(),
        error: error.into(),
    }
}

fn raw_key(org: Uuid) -> RawKey {
    RawKey {
        org_id: org,
        harness_id: Some("claude".into()),
        harness_session_id: Some("quarantined".into()),
    }
}

fn inserted(committed: &Committed) -> Uuid {
    match committed.raw {
        Some(RawStored::Inserted(id)) => id,
        other => panic!("raw turn not inserted: {other:?}"),
    }
}

#[tokio::test]
async fn an_accepted_turn_keeps_every_raw_value_and_reads_back_byte_for_byte() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let request = claude_request(150_000, 40, 2_000);
        let raw = raw_turn("req-1", &request);
        let chain = session_fixture("raw");
        let turn = with_raw(
            turn(Some(&envelope("claude", "raw")), &chain, TOKENS),
            raw.clone(),
        );

        let committed = try_commit(&db, &turn).await.unwrap();
        let id = inserted(&committed);

        let stored = store(&db)
            .raw_turn(None, id)
            .await
            .unwrap()
            .expect("stored");
        assert_eq!(stored.request, request, "{:?}", t.backend);
        let s = &stored.summary;
        assert_eq!(s.id, id);
        assert_eq!(s.org_id, Uuid::nil());
        assert_eq!(s.request_id.as_deref(), Some("req-1"));
        assert_eq!(s.session_id, Some(committed.session_id));
        assert_eq!(s.head_hash.as_deref(), Some(chain.head().hash.as_str()));
        assert_eq!(s.harness_id.as_deref(), Some("claude"));
        assert_eq!(s.harness_session_id.as_deref(), Some("raw"));
        assert_eq!(
            (s.provider.as_str(), s.agent_name.as_str()),
            ("anthropic", "tester")
        );
        assert_eq!(s.received_at, raw.received_at);
        assert_eq!((s.outcome, s.status), (RawOutcome::Accepted, 202));
        assert_eq!((s.reason.as_deref(), stored.error.as_deref()), (None, None));
        assert_eq!(s.request_size, request.len() as u64);
        assert_eq!(stored.response, raw.response);
        assert_eq!(stored.meta, raw.meta);
        assert_eq!(stored.envelope, raw.envelope);
        assert_eq!(stored.raw_response, raw.raw_response);
        assert_eq!(s.raw_response_encoding, "identity");
        assert!(!s.raw_response_dropped && !s.truncated && !s.response_reduced);
        assert!(s.stored_bytes > 0 && s.stored_bytes < request.len() as u64);

        // Within its org, and not in another one.
        assert!(
            store(&db)
                .raw_turn(Some(Uuid::nil()), id)
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            store(&db)
                .raw_turn(Some(org(ORG_A)), id)
                .await
                .unwrap()
                .is_none()
        );
    })
    .await;
}

#[tokio::test]
async fn empty_and_dropped_values_round_trip() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let mut capture = raw_capture("", b"");
        capture.response = None;
        capture.meta = None;
        capture.envelope = None;
        capture.raw_response = Some(vec![0; reel::turn::MAX_RAW_RESPONSE_BYTES + 1]);
        capture.truncated = true;
        capture.response_reduced = true;
        let (raw, _) = RawTurn::new(capture);
        let turn = with_raw(turn(None, &session_fixture("empty"), TOKENS), raw);
        let id = inserted(&try_commit(&db, &turn).await.unwrap());

        let stored = store(&db).raw_turn(None, id).await.unwrap().unwrap();
        assert!(stored.request.is_empty(), "{:?}", t.backend);
        assert_eq!(stored.summary.request_id, None);
        assert_eq!(stored.meta, "{}");
        assert_eq!(
            (stored.response, stored.envelope, stored.raw_response),
            (None, None, None)
        );
        assert!(stored.summary.raw_response_dropped);
        assert!(stored.summary.truncated && stored.summary.response_reduced);
        assert_eq!(chunk_rows(&db).await, 0);
    })
    .await;
}

#[tokio::test]
async fn text_with_nul_characters_is_stored() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let mut capture = raw_capture("nul\0id", br#"{"a":"b"}"#);
        capture.agent_name = "agent\0name".into();
        let (raw, _) = RawTurn::new(capture);
        let turn = with_raw(turn(None, &session_fixture("nul"), TOKENS), raw);
        let committed = try_commit(&db, &turn).await.unwrap();
        assert_eq!(committed.nul_replacements, 2, "{:?}", t.backend);
        let stored = store(&db)
            .raw_turn(None, inserted(&committed))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.summary.agent_name, "agent\u{FFFD}name");
        // The dedup key is sanitized the same way on every path.
        let answer = store(&db).raw_answer(Uuid::nil(), "nul\0id").await.unwrap();
        assert_eq!(answer.map(|a| a.id), Some(stored.summary.id));
    })
    .await;
}

#[derive(Deserialize)]
struct Line {
    name: String,
    payload: Box<RawValue>,
}

#[derive(Deserialize)]
struct Payload {
    request: Option<Box<RawValue>>,
    meta: Option<Box<RawValue>>,
}

/// `(name, request text, meta text)` of every line of a conformance file that has a request,
/// cut out of the line verbatim.
fn requests(file: &str) -> Vec<(String, String, Option<String>)> {
    let path = format!(
        "{}/tests/data/conformance/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("read conformance file");
    text.lines()
        .filter_map(|line| {
            let line: Line = serde_json::from_str(line).expect("a conformance line");
            let payload: Payload = serde_json::from_str(line.payload.get()).expect("a payload");
            let request = payload.request?;
            Some((
                line.name,
                request.get().to_owned(),
                payload.meta.map(|m| m.get().to_owned()),
            ))
        })
        .collect()
}

#[tokio::test]
async fn every_conformance_request_reads_back_exactly() {
    let mut lines = requests("raw-reduce.jsonl");
    lines.extend(requests("chains-v2.jsonl"));
    assert!(lines.len() > 800, "{} lines", lines.len());
    let lines = Arc::new(lines);
    each_backend(|t| {
        let lines = lines.clone();
        async move {
            let db = t.connect().await;
            let env = envelope("claude", "conformance");
            let chain = session_fixture("conformance");
            let turns: Vec<Turn> = lines
                .iter()
                .map(|(_, request, meta)| {
                    let mut capture = raw_capture("", request.as_bytes());
                    capture.meta = meta.clone();
                    with_raw(turn(Some(&env), &chain, TOKENS), RawTurn::new(capture).0)
                })
                .collect();
            let mut ids = Vec::new();
            for batch in turns.chunks(100) {
                for committed in store(&db)
                    .transaction(batch, &KnownHashes::default())
                    .await
                    .unwrap()
                {
                    ids.push(inserted(&committed));
                }
            }
            for ((name, request, meta), id) in lines.iter().zip(ids) {
                let stored = store(&db).raw_turn(None, id).await.unwrap().unwrap();
                assert!(
                    stored.request == request.as_bytes(),
                    "{}: {name}: request differs",
                    t.backend
                );
                assert_eq!(&stored.meta, meta.as_deref().unwrap_or("{}"), "{name}");
            }
        }
    })
    .await;
}

#[tokio::test]
async fn the_first_row_of_a_request_id_wins() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let env = envelope("claude", "dedup");
        let first = with_raw(
            turn(Some(&env), &session_fixture("first"), TOKENS),
            raw_turn("req-dup", b"{\"first\":true}"),
        );
        let retry = with_raw(
            turn(Some(&env), &session_fixture("second"), TOKENS),
            raw_turn("req-dup", b"{\"first\":false}"),
        );
        let id = inserted(&try_commit(&db, &first).await.unwrap());
        let chunks = chunk_rows(&db).await;

        let again = try_commit(&db, &retry).await.unwrap();
        assert_eq!(again.raw, Some(RawStored::Duplicate), "{:?}", t.backend);
        // The retry's nodes are its own business; its raw row and chunks are not written.
        assert!(again.counted);
        assert_eq!(raw_rows(&db).await, 1);
        assert_eq!(chunk_rows(&db).await, chunks);
        let stored = store(&db).raw_turn(None, id).await.unwrap().unwrap();
        assert_eq!(stored.request, b"{\"first\":true}");

        let answer = store(&db)
            .raw_answer(Uuid::nil(), "req-dup")
            .await
            .unwrap()
            .expect("an answer");
        assert_eq!(answer.id, id);
        assert_eq!((answer.outcome, answer.status), (RawOutcome::Accepted, 202));
        assert_eq!(answer.session_id, Some(stored.summary.session_id.unwrap()));
        assert_eq!(answer.head_hash, stored.summary.head_hash);
        assert_eq!(answer.error, None);

        // Quarantining the same id answers with the stored row and writes nothing.
        let q = store(&db)
            .quarantine(
                &raw_key(Uuid::nil()),
                &raw_turn("req-dup", b"{}"),
                &rejected("x"),
                1 << 20,
            )
            .await
            .unwrap();
        assert_eq!(q, Quarantined::Duplicate(answer));
        assert_eq!(raw_rows(&db).await, 1);

        // Ids are per org, and an empty id never dedups.
        let mut env_a = envelope("claude", "dedup");
        env_a.org_id = ORG_A.into();
        let other_org = with_raw(
            turn(Some(&env_a), &session_fixture("first"), TOKENS),
            raw_turn("req-dup", b"{}"),
        );
        inserted(&try_commit(&db, &other_org).await.unwrap());
        for text in ["a", "b"] {
            let t = with_raw(
                turn(Some(&env), &session_fixture(text), TOKENS),
                raw_turn("", b"{}"),
            );
            inserted(&try_commit(&db, &t).await.unwrap());
        }
        assert_eq!(raw_rows(&db).await, 4);
        assert_eq!(store(&db).raw_answer(Uuid::nil(), "").await.unwrap(), None);
        assert_eq!(
            store(&db).raw_answer(Uuid::nil(), "other").await.unwrap(),
            None
        );
    })
    .await;
}

#[tokio::test]
async fn two_turns_with_one_request_id_in_one_transaction_keep_the_first() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let env = envelope("claude", "batch-dedup");
        let one = session_fixture("one");
        let two = next_turn(&one, "two", "ok: two");
        let turns = [
            with_raw(turn(Some(&env), &one, TOKENS), raw_turn("same", b"[1]")),
            with_raw(turn(Some(&env), &two, TOKENS), raw_turn("same", b"[2]")),
        ];
        let out = store(&db)
            .transaction(&turns, &KnownHashes::default())
            .await
            .unwrap();
        let id = inserted(&out[0]);
        assert_eq!(out[1].raw, Some(RawStored::Duplicate), "{:?}", t.backend);
        let stored = store(&db).raw_turn(None, id).await.unwrap().unwrap();
        assert_eq!(stored.request, b"[1]");
    })
    .await;
}

/// More rows than one statement can bind (27 values a row: 1,213 on SQLite, 2,427 on
/// Postgres) are written in several, and every one reads back.
#[tokio::test]
async fn a_transaction_of_more_raw_rows_than_one_statement_binds_keeps_them_all() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let env = envelope("claude", "many-rows");
        let chain = session_fixture("many-rows");
        let requests: Vec<String> = (0..2_500).map(|i| format!("{{\"turn\":{i}}}")).collect();
        let turns: Vec<Turn> = requests
            .iter()
            .enumerate()
            .map(|(i, request)| {
                with_raw(
                    turn(Some(&env), &chain, TOKENS),
                    raw_turn(&format!("many-{i}"), request.as_bytes()),
                )
            })
            .collect();
        let out = store(&db)
            .transaction(&turns, &KnownHashes::default())
            .await
            .unwrap();
        assert_eq!(out.len(), requests.len(), "{:?}", t.backend);
        assert_eq!(raw_rows(&db).await, 2_500);
        for i in [0, 1_212, 1_213, 2_426, 2_427, 2_499] {
            let stored = store(&db)
                .raw_turn(None, inserted(&out[i]))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                stored.request,
                requests[i].as_bytes(),
                "{:?} row {i}",
                t.backend
            );
            assert_eq!(
                stored.summary.request_id.as_deref(),
                Some(format!("many-{i}").as_str())
            );
        }
    })
    .await;
}

#[tokio::test]
async fn quarantine_stays_within_the_org_budget() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let s = store(&db);
        let request = claude_request(20_000, 4, 2_000);
        let org_a = org(ORG_A);

        let first = raw_turn("q-1", &request);
        let Quarantined::Stored(id) = s
            .quarantine(
                &raw_key(org_a),
                &first,
                &rejected("unprocessable turn: one"),
                100_000,
            )
            .await
            .unwrap()
        else {
            panic!("{}: not stored", t.backend);
        };
        let stored = s.raw_turn(Some(org_a), id).await.unwrap().unwrap();
        assert_eq!(stored.request, request);
        assert_eq!(
            (stored.summary.outcome, stored.summary.status),
            (RawOutcome::Rejected, 422)
        );
        assert_eq!(stored.summary.reason.as_deref(), Some("reject_parse"));
        assert_eq!(stored.error.as_deref(), Some("unprocessable turn: one"));
        assert_eq!(
            (stored.summary.session_id, stored.summary.head_hash.clone()),
            (None, None)
        );
        assert_eq!(
            stored.summary.harness_session_id.as_deref(),
            Some("quarantined")
        );
        let charged = stored.summary.stored_bytes as i64;
        assert_eq!(
            scalar(&db, "SELECT quarantined_bytes FROM raw_quota").await,
            charged
        );
        // No nodes, no session.
        assert!(all_nodes(&db).await.is_empty() && all_sessions(&db).await.is_empty());

        // A different request that does not fit: nothing is written, nothing charged.
        let rows = (raw_rows(&db).await, chunk_rows(&db).await);
        let big = raw_turn("q-2", &claude_request(200_000, 2, 2_000));
        let over = s
            .quarantine(
                &raw_key(org_a),
                &big,
                &rejected("two"),
                charged as u64 + 1_000,
            )
            .await
            .unwrap();
        assert_eq!(over, Quarantined::OverBudget, "{:?}", t.backend);
        assert_eq!((raw_rows(&db).await, chunk_rows(&db).await), rows);
        assert_eq!(
            scalar(&db, "SELECT quarantined_bytes FROM raw_quota").await,
            charged
        );
        assert_eq!(s.raw_answer(org_a, "q-2").await.unwrap(), None);

        // A turn larger than the whole budget on a fresh org is refused too.
        let fresh = s
            .quarantine(&raw_key(org(ORG_B)), &big, &rejected("two"), 10)
            .await
            .unwrap();
        assert_eq!(fresh, Quarantined::OverBudget);

        // A retry of the same request id is answered, not charged again.
        let retry = s
            .quarantine(&raw_key(org_a), &first, &rejected("one"), 100_000)
            .await
            .unwrap();
        let Quarantined::Duplicate(answer) = retry else {
            panic!("{retry:?}");
        };
        assert_eq!(
            (answer.id, answer.outcome, answer.status),
            (id, RawOutcome::Rejected, 422)
        );
        assert_eq!(answer.error.as_deref(), Some("unprocessable turn: one"));
        assert_eq!(
            scalar(&db, "SELECT quarantined_bytes FROM raw_quota").await,
            charged
        );

        // What fits is stored, sharing the first one's chunks.
        let similar = raw_turn("q-3", &claude_request(20_000, 5, 2_000));
        let q = s
            .quarantine(&raw_key(org_a), &similar, &rejected("three"), 100_000)
            .await
            .unwrap();
        assert!(matches!(q, Quarantined::Stored(_)), "{q:?}");
        let total = scalar(&db, "SELECT quarantined_bytes FROM raw_quota").await;
        assert_eq!(
            total,
            scalar(
                &db,
                "SELECT CAST(SUM(stored_bytes) AS BIGINT) FROM raw_turns"
            )
            .await
        );
        assert!(
            total - charged < charged / 2,
            "shared chunks are not charged twice"
        );
    })
    .await;
}

#[tokio::test]
async fn a_quarantined_turn_is_reprocessed_exactly_once() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let s = store(&db);
        let raw = raw_turn("re-1", b"{\"model\":\"later-supported\"}");
        let Quarantined::Stored(id) = s
            .quarantine(
                &raw_key(Uuid::nil()),
                &raw,
                &rejected("unsupported"),
                1 << 20,
            )
            .await
            .unwrap()
        else {
            panic!("not stored");
        };
        let env = envelope("claude", "reprocessed");
        let chain = session_fixture("reprocessed");
        let fixed = with_raw(
            turn(Some(&env), &chain, TOKENS),
            raw.clone().reprocessing(id),
        );

        let committed = try_commit(&db, &fixed).await.unwrap();
        assert_eq!(
            committed.raw,
            Some(RawStored::Reprocessed(id)),
            "{:?}",
            t.backend
        );
        let stored = s.raw_turn(None, id).await.unwrap().unwrap();
        assert_eq!(
            (stored.summary.outcome, stored.summary.status),
            (RawOutcome::Accepted, 202)
        );
        assert_eq!(stored.summary.session_id, Some(committed.session_id));
        assert_eq!(
            stored.summary.head_hash.as_deref(),
            Some(chain.head().hash.as_str())
        );
        assert_eq!((stored.summary.reason, stored.error), (None, None));
        assert_eq!(raw_rows(&db).await, 1);
        assert_eq!(
            scalar(&db, "SELECT quarantined_bytes FROM raw_quota").await,
            0
        );

        // The second attempt is refused and leaves nothing behind: not even its nodes.
        let nodes = all_nodes(&db).await.len();
        let other = session_fixture("second attempt");
        let twice = with_raw(turn(Some(&env), &other, TOKENS), raw.reprocessing(id));
        let err = try_commit(&db, &twice).await.unwrap_err();
        assert!(
            matches!(err, StoreError::AlreadyReprocessed(e) if e == id),
            "{err:?}"
        );
        assert_eq!(all_nodes(&db).await.len(), nodes);
        assert_eq!(session(&db, committed.session_id).await.turn_count, 1);

        // Nor can another org's turn flip it.
        let unknown = with_raw(
            turn(Some(&env), &session_fixture("x"), TOKENS),
            raw_turn("", b"{}").reprocessing(Uuid::now_v7()),
        );
        assert!(matches!(
            try_commit(&db, &unknown).await.unwrap_err(),
            StoreError::AlreadyReprocessed(_)
        ));
    })
    .await;
}

#[tokio::test]
async fn raw_turns_list_by_session_in_order_with_a_cursor() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let s = store(&db);
        let env = envelope("claude", "listed");
        let mut chain = session_fixture("listed");
        let mut ids = Vec::new();
        for i in 0..5 {
            let raw = raw_turn(&format!("l-{i}"), format!("[{i}]").as_bytes());
            ids.push(inserted(
                &try_commit(&db, &with_raw(turn(Some(&env), &chain, TOKENS), raw))
                    .await
                    .unwrap(),
            ));
            chain = next_turn(&chain, &format!("u{i}"), &format!("a{i}"));
        }
        let elsewhere = with_raw(
            turn(
                Some(&envelope("claude", "elsewhere")),
                &session_fixture("e"),
                TOKENS,
            ),
            raw_turn("e", b"[]"),
        );
        let other = inserted(&try_commit(&db, &elsewhere).await.unwrap());
        let session_id = s
            .raw_turn(None, ids[0])
            .await
            .unwrap()
            .unwrap()
            .summary
            .session_id;

        let page = s.raw_turns(Uuid::nil(), session_id, None, 3).await.unwrap();
        assert_eq!(
            page.iter().map(|r| r.id).collect::<Vec<_>>(),
            ids[..3],
            "{:?}",
            t.backend
        );
        assert_eq!(page[1].request_id.as_deref(), Some("l-1"));
        let rest = s
            .raw_turns(Uuid::nil(), session_id, Some(page[2].id), 10)
            .await
            .unwrap();
        assert_eq!(rest.iter().map(|r| r.id).collect::<Vec<_>>(), ids[3..]);

        let all = s.raw_turns(Uuid::nil(), None, None, 100).await.unwrap();
        assert_eq!(all.len(), 6);
        assert_eq!(all.last().map(|r| r.id), Some(other));
        assert!(
            s.raw_turns(org(ORG_A), None, None, 100)
                .await
                .unwrap()
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn a_warm_turn_writes_only_the_chunks_it_adds() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let env = envelope("claude", "warm");
        let mut chain = session_fixture("warm");
        let base = claude_request(120_000, 100, 2_000);
        let first = with_raw(turn(Some(&env), &chain, TOKENS), raw_turn("w-0", &base));
        let cold = s_bytes(&db, &try_commit(&db, &first).await.unwrap()).await;

        chain = next_turn(&chain, "more", "ok: more");
        let longer = claude_request(120_000, 101, 2_000);
        let second = with_raw(turn(Some(&env), &chain, TOKENS), raw_turn("w-1", &longer));
        let warm = s_bytes(&db, &try_commit(&db, &second).await.unwrap()).await;

        assert!(
            cold > 50_000,
            "{}: cold turn stored {cold} bytes",
            t.backend
        );
        // The new message, about one rewritten chunk per level and the top list, compressed.
        assert!(
            warm < 12_000,
            "{}: warm turn stored {warm} bytes",
            t.backend
        );
    })
    .await;
}

/// With the chunks of its first turn remembered (as its actor does), a warm turn writes its
/// new chunks without looking any up, and still reads back byte for byte.
#[tokio::test]
async fn a_warm_turn_with_remembered_chunks_writes_only_its_new_ones() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let env = envelope("claude", "remembered");
        let mut chain = session_fixture("remembered");
        let base = claude_request(120_000, 100, 2_000);
        let first = with_raw(turn(Some(&env), &chain, TOKENS), raw_turn("r-0", &base));
        try_commit(&db, &first).await.unwrap();
        let mut known = KnownHashes::with_capacity(4096);
        known.remember(&first.chain);
        known.remember_chunks(first.raw.as_deref().unwrap());
        let before = chunk_rows(&db).await;

        chain = next_turn(&chain, "more", "ok: more");
        let longer = claude_request(120_000, 101, 2_000);
        let second = with_raw(turn(Some(&env), &chain, TOKENS), raw_turn("r-1", &longer));
        let committed = store(&db)
            .transaction(std::slice::from_ref(&second), &known)
            .await
            .unwrap()
            .pop()
            .unwrap();
        let written = committed.raw_written;
        assert!(written.chunks_written >= 1, "{}: {written:?}", t.backend);
        assert!(written.chunks_written <= 8, "{}: {written:?}", t.backend);
        assert_eq!(
            chunk_rows(&db).await,
            before + written.chunks_written as i64,
            "{}",
            t.backend
        );
        let stored = store(&db)
            .raw_turn(None, inserted(&committed))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.request, longer, "{}", t.backend);
    })
    .await;
}

async fn s_bytes(db: &DatabaseConnection, committed: &Committed) -> u64 {
    store(db)
        .raw_turn(None, inserted(committed))
        .await
        .unwrap()
        .unwrap()
        .summary
        .stored_bytes
}

/// A request id has no length limit (docs/capture.md §10), beyond what an index entry holds.
#[tokio::test]
async fn a_long_request_id_is_its_own_key() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let long = "r".repeat(10_000);
        let turn = with_raw(
            turn(None, &session_fixture("long"), TOKENS),
            raw_turn(&long, b"{}"),
        );
        let id = inserted(&try_commit(&db, &turn).await.unwrap());
        let answer = store(&db).raw_answer(Uuid::nil(), &long).await.unwrap();
        assert_eq!(answer.map(|a| a.id), Some(id), "{:?}", t.backend);
        assert_eq!(
            store(&db)
                .raw_answer(Uuid::nil(), &long[1..])
                .await
                .unwrap(),
            None
        );
    })
    .await;
}

/// The request-id lookup runs before every turn that carries one, as a prepared statement.
/// Its generic plan is made once per connection, typically while `raw_turns` is empty and
/// unanalyzed, and kept: it must read the unique request index, never every raw turn of
/// the org (`raw_turns_org_idx`) or the table.
#[tokio::test]
async fn the_request_id_lookup_reads_the_unique_index_even_planned_on_an_empty_table() {
    each_backend(|t| async move {
        let options = reel::store::StoreOptions {
            max_connections: 1,
            min_connections: 1,
            ..Default::default()
        };
        let db = reel::store::connect(&t.url, &options).await.unwrap();
        reel::store::migrate(&db).await.unwrap();
        let store = store(&db);
        assert_eq!(
            store.raw_answer(Uuid::nil(), "req-plan").await.unwrap(),
            None
        );
        let plan: Vec<String> = match t.backend {
            Backend::Postgres => {
                // The statement as the store prepared it on its one connection.
                let row = db
                    .query_one_raw(Statement::from_string(
                        DbBackend::Postgres,
                        "SELECT statement FROM pg_prepared_statements \
                         WHERE statement LIKE 'SELECT org_id, id, outcome%FROM raw_turns%'",
                    ))
                    .await
                    .unwrap()
                    .expect("the lookup is prepared");
                let text: String = row.try_get("", "statement").unwrap();
                for sql in [
                    format!("PREPARE lookup_plan AS {text}"),
                    "SET plan_cache_mode = force_generic_plan".to_owned(),
                ] {
                    db.execute_unprepared(&sql).await.unwrap();
                }
                let rows = db
                    .query_all_raw(Statement::from_string(
                        DbBackend::Postgres,
                        "EXPLAIN EXECUTE lookup_plan('\\x00', 'req-plan')",
                    ))
                    .await
                    .unwrap();
                db.execute_unprepared("RESET plan_cache_mode")
                    .await
                    .unwrap();
                rows.iter()
                    .map(|r| r.try_get::<String>("", "QUERY PLAN").unwrap())
                    .collect()
            }
            Backend::Sqlite => {
                let rows = db
                    .query_all_raw(Statement::from_string(
                        DbBackend::Sqlite,
                        "EXPLAIN QUERY PLAN SELECT org_id, id FROM raw_turns \
                         WHERE request_key = x'00' AND request_id = 'req-plan'",
                    ))
                    .await
                    .unwrap();
                rows.iter()
                    .map(|r| r.try_get::<String>("", "detail").unwrap())
                    .collect()
            }
        };
        assert!(
            plan.iter().any(|l| l.contains("raw_turns_request_uq")),
            "{:?}: {plan:?}",
            t.backend
        );
        assert!(
            !plan.iter().any(|l| l.contains("raw_turns_org_idx")),
            "{plan:?}"
        );
    })
    .await;
}
