//! `reel reprocess`: quarantined raw turns that today's parsers read are committed, exactly
//! once and oldest first; the others stay quarantined; the filters choose the rows.
//!
//! A quarantined turn that passes today stands for one a fixed parser now reads: it is
//! stored with `Store::quarantine` as the ingest path stores a 422.

use actix_web::http::StatusCode;
use bytes::Bytes;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use reel::store::RawOutcome;
use reel::turn::{Capture, RawTurn};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::captured::*;
use crate::fixtures::MODEL;
use crate::harness::TestApp;
use crate::rows;
use crate::support::each_backend;

/// The counts of a run's summary line: examined, committed (or would commit), still
/// failing, skipped, errors.
fn summary(out: &str) -> [u64; 5] {
    let line = out
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no summary in {out:?}"));
    let numbers: Vec<u64> = line
        .split([',', ' '])
        .filter_map(|w| w.parse().ok())
        .collect();
    numbers
        .try_into()
        .unwrap_or_else(|_| panic!("not a summary line: {line}"))
}

fn gemini(org: &str, session: &str) -> Value {
    let mut turn = turn(org, session, 0);
    turn["provider"] = json!("gemini");
    turn
}

#[actix_rt::test]
async fn reprocess_commits_a_turn_that_passes_now_exactly_once() {
    each_backend(|db| async move {
        let captured = Captured::open(&db).await;
        let sent = turn(ORG_A, "fixed", 0);
        let received = days_ago(1);
        let id = captured
            .quarantine(&body(&sent), received, org(ORG_A), "unparseable_request")
            .await;
        assert!(captured.quarantined_bytes().await > 0);
        assert_eq!(captured.scalar("SELECT COUNT(*) FROM nodes").await, 0);

        let (ok, out, err) = captured.cli(&["reprocess", "-v"]);
        assert!(ok, "{err}\n{out}");
        assert_eq!(summary(&out), [1, 1, 0, 0, 0], "{out}");
        let line = out.lines().next().expect("a row line");
        assert!(
            line.starts_with(&format!("{id} committed: session ")),
            "{line}"
        );

        let stored = captured
            .store
            .raw_turn(None, id)
            .await
            .unwrap()
            .expect("the row stays");
        let s = &stored.summary;
        assert_eq!((s.outcome, s.status), (RawOutcome::Accepted, 202));
        assert_eq!((s.reason.as_deref(), stored.error.as_deref()), (None, None));
        assert_eq!(s.received_at, received);
        let session_id = s.session_id.expect("a session");
        let session = rows::session(&captured.db, session_id).await;
        assert_eq!(session.org_id, org(ORG_A));
        assert_eq!(
            (
                session.harness_id.as_str(),
                session.harness_session_id.as_str()
            ),
            ("claude", "fixed")
        );
        assert_eq!(session.turn_count, 1);
        assert_eq!(session.total_input_tokens, 100);
        assert_eq!(session.total_output_tokens, 10);
        let head = s.head_hash.clone().expect("a head");
        let node = rows::node(&captured.db, org(ORG_A), &head)
            .await
            .expect("the head is stored");
        assert!(node.is_turn_head);
        assert_eq!(node.session_id, Some(session_id));
        assert_eq!(captured.scalar("SELECT COUNT(*) FROM nodes").await, 2);
        // Accepted now: its bytes left the quarantine budget.
        assert_eq!(captured.quarantined_bytes().await, 0);
        // The row still reads back as it was posted.
        assert_eq!(
            stored.request,
            serde_json::to_vec(&sent["request"]).unwrap()
        );

        let (ok, out, err) = captured.cli(&["reprocess", "-v"]);
        assert!(ok, "{err}");
        assert_eq!(summary(&out), [0, 0, 0, 0, 0], "{out}");
        let session = rows::session(&captured.db, session_id).await;
        assert_eq!(session.turn_count, 1);
        assert_eq!(captured.scalar("SELECT COUNT(*) FROM nodes").await, 2);
        assert_eq!(captured.scalar("SELECT COUNT(*) FROM raw_turns").await, 1);
    })
    .await;
}

#[actix_rt::test]
async fn a_turn_that_still_fails_stays_quarantined() {
    each_backend(|db| async move {
        let captured = Captured::open(&db).await;
        let id = captured
            .quarantine(
                &body(&gemini("", "q")),
                Utc::now(),
                Uuid::nil(),
                "unsupported_provider",
            )
            .await;
        let before = captured
            .store
            .raw_turn(None, id)
            .await
            .unwrap()
            .expect("row");

        let (ok, out, err) = captured.cli(&["reprocess", "--verbose"]);
        assert!(ok, "{err}");
        assert_eq!(summary(&out), [1, 0, 1, 0, 0], "{out}");
        assert!(
            out.contains(&format!(
                "{id} still failing: unprocessable turn: unsupported provider \"gemini\""
            )),
            "{out}"
        );
        let after = captured
            .store
            .raw_turn(None, id)
            .await
            .unwrap()
            .expect("row");
        assert_eq!(after, before);
        assert_eq!(captured.scalar("SELECT COUNT(*) FROM nodes").await, 0);
        assert_eq!(captured.scalar("SELECT COUNT(*) FROM sessions").await, 0);
    })
    .await;
}

#[actix_rt::test]
async fn a_raw_only_turn_is_reduced_again() {
    each_backend(|db| async move {
        let captured = Captured::open(&db).await;
        let (sent, _) = raw_only_turn(ORG_B, "raw", "reduced again");
        let id = captured
            .quarantine(&body(&sent), Utc::now(), org(ORG_B), "unparseable_request")
            .await;
        let stored = captured
            .store
            .raw_turn(None, id)
            .await
            .unwrap()
            .expect("row");
        assert!(stored.summary.response_reduced);

        let (ok, out, err) = captured.cli(&["reprocess"]);
        assert!(ok, "{err}");
        assert_eq!(summary(&out), [1, 1, 0, 0, 0], "{out}");
        let stored = captured
            .store
            .raw_turn(None, id)
            .await
            .unwrap()
            .expect("row");
        let head = stored.summary.head_hash.expect("accepted");
        let node = rows::node(&captured.db, org(ORG_B), &head)
            .await
            .expect("head");
        assert_eq!(node.role.as_deref(), Some("assistant"));
        let content = node.content.expect("content").to_string();
        assert!(content.contains("reduced again"), "{content}");
        assert_eq!(node.prompt_tokens, Some(12));
    })
    .await;
}

#[actix_rt::test]
async fn a_sessions_turns_commit_in_the_order_they_arrived() {
    each_backend(|db| async move {
        let captured = Captured::open(&db).await;
        let t0 = days_ago(2);
        let t1 = t0 + Duration::seconds(1);
        // Stored in the reverse order of arrival: ids say otherwise than received_at.
        let second = captured
            .quarantine(
                &body(&turn("", "ordered", 1)),
                t1,
                Uuid::nil(),
                "unparseable_request",
            )
            .await;
        let first = captured
            .quarantine(
                &body(&turn("", "ordered", 0)),
                t0,
                Uuid::nil(),
                "unparseable_request",
            )
            .await;

        let (ok, out, err) = captured.cli(&["reprocess", "-v"]);
        assert!(ok, "{err}");
        assert_eq!(summary(&out), [2, 2, 0, 0, 0], "{out}");
        let order: Vec<&str> = out.lines().take(2).map(|l| &l[..36]).collect();
        assert_eq!(order, [first.to_string(), second.to_string()]);

        let session = rows::session_by_harness_id(&captured.db, "claude", "ordered")
            .await
            .expect("session");
        assert_eq!(session.turn_count, 2);
        // Turn 0 wrote its two nodes in a commit of its own, before turn 1 added two more;
        // the other way round one commit would have written all four.
        let nodes = rows::all_nodes(&captured.db).await;
        let roles: Vec<_> = nodes
            .iter()
            .map(|n| n.role.as_deref().unwrap_or(""))
            .collect();
        assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
        rows::assert_written_by_one_commit(nodes[..2].to_vec());
        rows::assert_written_by_one_commit(nodes[2..].to_vec());
        let gap = nodes[2].created_at - nodes[1].created_at;
        assert_ne!(
            gap.num_microseconds(),
            Some(1),
            "one commit wrote both turns"
        );
    })
    .await;
}

#[actix_rt::test]
async fn filters_choose_the_rows_and_a_dry_run_commits_nothing() {
    each_backend(|db| async move {
        let captured = Captured::open(&db).await;
        let old = days_ago(10);
        let recent = days_ago(1);
        let a_old = captured
            .quarantine(
                &body(&turn(ORG_A, "a-old", 0)),
                old,
                org(ORG_A),
                "unparseable_request",
            )
            .await;
        let a_new = captured
            .quarantine(
                &body(&turn(ORG_A, "a-new", 0)),
                recent,
                org(ORG_A),
                "reduction_failed",
            )
            .await;
        let b_old = captured
            .quarantine(
                &body(&turn(ORG_B, "b-old", 0)),
                old,
                org(ORG_B),
                "unparseable_request",
            )
            .await;
        let b_new = captured
            .quarantine(
                &body(&turn(ORG_B, "b-new", 0)),
                recent,
                org(ORG_B),
                "unparseable_request",
            )
            .await;
        let store = &captured.store;
        let outcome = |id: Uuid| async move {
            store
                .raw_turn(None, id)
                .await
                .unwrap()
                .expect("row")
                .summary
                .outcome
        };
        let since = |at: DateTime<Utc>| at.to_rfc3339_opts(SecondsFormat::Micros, true);

        let (ok, out, err) = captured.cli(&["reprocess", "--dry-run", "-v"]);
        assert!(ok, "{err}");
        assert_eq!(summary(&out), [4, 4, 0, 0, 0], "{out}");
        assert!(out.contains(&format!("{a_old} would commit")), "{out}");
        assert!(
            out.lines().last().unwrap().contains("would commit 4"),
            "{out}"
        );
        assert_eq!(captured.scalar("SELECT COUNT(*) FROM nodes").await, 0);
        for id in [a_old, a_new, b_old, b_new] {
            assert_eq!(outcome(id).await, RawOutcome::Rejected);
        }

        let (ok, out, err) =
            captured.cli(&["reprocess", "--org", ORG_A, "--reason", "reduction_failed"]);
        assert!(ok, "{err}");
        assert_eq!(summary(&out), [1, 1, 0, 0, 0], "{out}");
        assert_eq!(outcome(a_new).await, RawOutcome::Accepted);
        assert_eq!(outcome(a_old).await, RawOutcome::Rejected);

        // Received at exactly the bound counts as since it.
        let (ok, out, err) = captured.cli(&["reprocess", "--since", &since(recent)]);
        assert!(ok, "{err}");
        assert_eq!(summary(&out), [1, 1, 0, 0, 0], "{out}");
        assert_eq!(outcome(b_new).await, RawOutcome::Accepted);
        assert_eq!(outcome(b_old).await, RawOutcome::Rejected);

        let (ok, out, err) = captured.cli(&["reprocess", "--limit", "1", "-v"]);
        assert!(ok, "{err}");
        assert_eq!(summary(&out), [1, 1, 0, 0, 0], "{out}");
        assert_eq!(
            outcome(a_old).await,
            RawOutcome::Accepted,
            "oldest first, ties by id"
        );
        assert_eq!(outcome(b_old).await, RawOutcome::Rejected);

        let (ok, out, err) = captured.cli(&["reprocess", "--org", ORG_B]);
        assert!(ok, "{err}");
        assert_eq!(summary(&out), [1, 1, 0, 0, 0], "{out}");
        assert_eq!(outcome(b_old).await, RawOutcome::Accepted);

        let (ok, _, err) = captured.cli(&["reprocess", "--since", "yesterday"]);
        assert!(!ok);
        assert!(
            err.contains("invalid value 'yesterday' for '--since"),
            "{err}"
        );
    })
    .await;
}

#[actix_rt::test]
async fn a_request_over_the_body_limit_is_skipped() {
    each_backend(|db| async move {
        let captured = Captured::open(&db).await;
        let id = captured
            .quarantine(
                &body(&turn("", "big", 3)),
                Utc::now(),
                Uuid::nil(),
                "unparseable_request",
            )
            .await;
        let config = tempfile::NamedTempFile::new().expect("config file");
        std::fs::write(config.path(), "[server]\nbody_limit_bytes = 200\n").expect("write");
        let path = config.path().to_str().expect("utf-8 path");

        let (ok, out, err) = captured.cli(&["reprocess", "-v", "--config", path]);
        assert!(ok, "{err}");
        assert_eq!(summary(&out), [1, 0, 0, 1, 0], "{out}");
        assert!(out.contains("over server.body_limit_bytes (200)"), "{out}");
        let stored = captured
            .store
            .raw_turn(None, id)
            .await
            .unwrap()
            .expect("row");
        assert_eq!(stored.summary.outcome, RawOutcome::Rejected);
    })
    .await;
}

#[actix_rt::test]
async fn concurrent_runs_commit_each_row_once() {
    each_backend(|db| async move {
        let captured = Captured::open(&db).await;
        let sessions = 6;
        for s in 0..sessions {
            for n in 0..2 {
                let session = format!("c{s}");
                let at = days_ago(1) + Duration::seconds(n as i64);
                captured
                    .quarantine(
                        &body(&turn("", &session, n)),
                        at,
                        Uuid::nil(),
                        "unparseable_request",
                    )
                    .await;
            }
        }
        let url = captured.url.clone();
        let runs: Vec<_> = (0..2)
            .map(|_| {
                let url = url.clone();
                std::thread::spawn(move || {
                    crate::child::run_cli(&["reprocess", "--database-url", &url])
                })
            })
            .collect();
        let mut totals = [0u64; 5];
        for run in runs {
            let (ok, out, err) = run.join().expect("run");
            assert!(ok, "{err}\n{out}");
            for (total, n) in totals.iter_mut().zip(summary(&out)) {
                *total += n;
            }
        }
        let expected = 2 * sessions as u64;
        assert_eq!(totals[1], expected, "{totals:?}");
        assert_eq!(totals[2] + totals[4], 0, "{totals:?}");
        assert_eq!(totals[0], totals[1] + totals[3], "{totals:?}");
        assert_eq!(
            captured
                .scalar("SELECT COUNT(*) FROM raw_turns WHERE outcome = 'accepted'")
                .await,
            expected as i64
        );
        for s in 0..sessions {
            let session = rows::session_by_harness_id(&captured.db, "claude", &format!("c{s}"))
                .await
                .expect("session");
            assert_eq!(session.turn_count, 2, "c{s}");
        }
    })
    .await;
}

#[actix_rt::test]
async fn a_row_commits_into_the_org_it_was_quarantined_in() {
    each_backend(|db| async move {
        let captured = Captured::open(&db).await;
        // With API keys the org is the key's, and the envelope need not name it.
        let id = captured
            .quarantine(
                &body(&turn("", "keyed", 0)),
                Utc::now(),
                org(ORG_B),
                "unparseable_request",
            )
            .await;

        let (ok, out, err) = captured.cli(&["reprocess"]);
        assert!(ok, "{err}");
        assert_eq!(summary(&out), [1, 1, 0, 0, 0], "{out}");
        let stored = captured
            .store
            .raw_turn(None, id)
            .await
            .unwrap()
            .expect("row");
        let session =
            rows::session(&captured.db, stored.summary.session_id.expect("session")).await;
        assert_eq!(session.org_id, org(ORG_B));
        let head = stored.summary.head_hash.expect("head");
        assert!(rows::node(&captured.db, org(ORG_B), &head).await.is_some());
        assert!(rows::node(&captured.db, Uuid::nil(), &head).await.is_none());
    })
    .await;
}

/// A raw turn captured as the server keeps a raw-only one, with `reduction` as the stored
/// response and `raw_response` the bytes it came from (none when `None`).
fn reduced_raw(reduction: &str, raw_response: Option<Vec<u8>>) -> RawTurn {
    let (sent, _) = raw_only_turn("", "stale", "fresh reduction");
    let text = |key: &str| Some(sent[key].to_string());
    let withheld = raw_response.is_none();
    let (raw, _) = RawTurn::new(Capture {
        request_id: "stale-1".into(),
        provider: "anthropic".into(),
        agent_name: "tester".into(),
        received_at: days_ago(1),
        request: Bytes::from(sent["request"].to_string()),
        response: Some(reduction.to_owned()),
        response_reduced: true,
        meta: text("meta"),
        envelope: text("session"),
        raw_response,
        raw_response_encoding: "gzip".into(),
        raw_response_withheld: withheld,
        truncated: false,
    });
    raw
}

#[actix_rt::test]
async fn a_stale_reduction_is_reduced_again_from_the_bytes() {
    each_backend(|db| async move {
        let captured = Captured::open(&db).await;
        let (_, gzipped) = raw_only_turn("", "stale", "fresh reduction");
        // The reducer of the day of capture produced a response that does not decode.
        let raw = reduced_raw(r#"{"model":"m"}"#, Some(gzipped));
        let id = captured
            .quarantine_raw(
                &raw,
                Uuid::nil(),
                "reduction_failed",
                "unprocessable turn: x",
            )
            .await;

        let (ok, out, err) = captured.cli(&["reprocess", "-v"]);
        assert!(ok, "{err}");
        assert_eq!(summary(&out), [1, 1, 0, 0, 0], "{out}");
        let stored = captured
            .store
            .raw_turn(None, id)
            .await
            .unwrap()
            .expect("row");
        let head = stored.summary.head_hash.expect("accepted");
        let node = rows::node(&captured.db, Uuid::nil(), &head)
            .await
            .expect("head");
        let content = node.content.expect("content").to_string();
        assert!(content.contains("fresh reduction"), "{content}");
    })
    .await;
}

#[actix_rt::test]
async fn a_reduction_whose_bytes_are_gone_is_parsed_as_it_is() {
    each_backend(|db| async move {
        let captured = Captured::open(&db).await;
        let reduction = serde_json::to_string(&json!({
            "model": MODEL,
            "message": {"role": "assistant", "content": [{"type": "text", "text": "kept reduction"}]},
            "done": true,
            "stop_reason": "end_turn",
        }))
        .unwrap();
        let id = captured
            .quarantine_raw(&reduced_raw(&reduction, None), Uuid::nil(), "unparseable_request", "x")
            .await;
        // `raw get` shows what the client sent: no response, and no bytes.
        let (ok, out, err) = captured.cli(&["raw", "get", &id.to_string()]);
        assert!(ok, "{err}");
        let payload: Value = serde_json::from_str(&out).expect("JSON");
        assert!(payload.get("response").is_none(), "{out}");
        assert_eq!(payload["raw_response_withheld"], true);

        let (ok, out, err) = captured.cli(&["reprocess", "-v"]);
        assert!(ok, "{err}");
        assert_eq!(summary(&out), [1, 1, 0, 0, 0], "{out}");
        let stored = captured.store.raw_turn(None, id).await.unwrap().expect("row");
        let head = stored.summary.head_hash.expect("accepted");
        let node = rows::node(&captured.db, Uuid::nil(), &head).await.expect("head");
        assert!(node.content.expect("content").to_string().contains("kept reduction"));
    })
    .await;
}

#[actix_rt::test]
async fn reprocessing_beside_a_server_ingesting_the_same_session_counts_every_turn_once() {
    each_backend(|db| async move {
        let captured = Captured::open(&db).await;
        let early = 5;
        let total = 10;
        for n in 0..early {
            let at = days_ago(1) + Duration::seconds(n as i64);
            captured
                .quarantine(
                    &body(&turn("", "shared", n)),
                    at,
                    Uuid::nil(),
                    "unparseable_request",
                )
                .await;
        }
        let app = TestApp::spawn(&db).await;
        let url = captured.url.clone();
        let run = actix_rt::task::spawn_blocking(move || {
            crate::child::run_cli(&["reprocess", "--database-url", &url])
        });
        for n in early..total {
            let res = app.ingest(&turn("", "shared", n)).await;
            assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
        }
        let (ok, out, err) = run.await.expect("reprocess runs");
        assert!(ok, "{err}\n{out}");
        assert_eq!(
            summary(&out),
            [early as u64, early as u64, 0, 0, 0],
            "{out}"
        );
        app.stop().await;

        assert_eq!(captured.scalar("SELECT COUNT(*) FROM sessions").await, 1);
        let session = rows::session_by_harness_id(&captured.db, "claude", "shared")
            .await
            .expect("session");
        assert_eq!(session.turn_count, total as i32);
        let input: i64 = (0..total).map(|n| 100 + n as i64).sum();
        assert_eq!(session.total_input_tokens, input);
        assert_eq!(
            captured.scalar("SELECT COUNT(*) FROM nodes").await,
            2 * total as i64
        );
        assert_eq!(
            captured
                .scalar("SELECT COUNT(*) FROM nodes WHERE is_turn_head")
                .await,
            total as i64
        );
    })
    .await;
}
