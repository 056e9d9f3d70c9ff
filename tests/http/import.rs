//! `reel import`: JSON Lines and wire recordings through the ingest path, in-process; a
//! second run over the same input imports nothing.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::captured::Captured;
use crate::fixtures::conformance_cases;
use crate::rows;
use crate::support::each_backend;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/conformance");

/// The counts of a run's summary line: turns, accepted, duplicates, quarantined duplicates,
/// rejected.
fn summary(out: &str) -> [u64; 5] {
    let line = out
        .lines()
        .rfind(|l| l.starts_with("turns ") || l.starts_with("nodes "))
        .unwrap_or_else(|| panic!("no summary in {out:?}"));
    let counts = line.split(" (").take(3).collect::<Vec<_>>().join(" ");
    let numbers: Vec<u64> = counts
        .split([',', ' ', ':', ')'])
        .filter_map(|w| w.parse().ok())
        .collect();
    numbers[..5]
        .try_into()
        .unwrap_or_else(|_| panic!("not a summary line: {line}"))
}

fn lines(file: &str) -> u64 {
    std::fs::read_to_string(Path::new(DATA).join(file))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count() as u64
}

async fn counts(captured: &Captured) -> [i64; 3] {
    [
        captured.scalar("SELECT COUNT(*) FROM nodes").await,
        captured.scalar("SELECT COUNT(*) FROM sessions").await,
        captured.scalar("SELECT COUNT(*) FROM raw_turns").await,
    ]
}

#[actix_rt::test]
async fn the_conformance_files_import_once_and_a_second_run_imports_nothing() {
    each_backend(|db| async move {
        let captured = Captured::open(&db).await;
        let files = ["chains.jsonl", "chains-v2.jsonl", "raw-reduce.jsonl"];
        let paths: Vec<String> = files.iter().map(|f| format!("{DATA}/{f}")).collect();
        let mut args = vec!["import", "-v"];
        args.extend(paths.iter().map(String::as_str));
        let total: u64 = files.iter().map(|f| lines(f)).sum();

        let (ok, out, err) = captured.cli(&args);
        assert!(ok, "{err}\n{out}");
        let [turns, accepted, duplicates, _, rejected] = summary(&out);
        assert_eq!(turns, total, "{out}");
        assert_eq!(accepted + duplicates + rejected, total, "{out}");
        assert!(accepted > 1000, "{out}");
        let first = counts(&captured).await;

        // Every node the reference stored for a line of chains.jsonl is stored, hash for hash.
        let cases = conformance_cases();
        let accepted_cases: Vec<_> = cases.iter().filter(|c| c.status == 202).collect();
        assert_eq!(accepted_cases.len(), 601);
        for case in &accepted_cases {
            for hash in &case.hashes {
                assert!(
                    rows::node(&captured.db, Uuid::nil(), hash).await.is_some(),
                    "{}: node {hash} missing",
                    case.name
                );
            }
        }
        // chains.jsonl's 24 rejections are 422s, each quarantined once.
        assert!(
            captured
                .scalar("SELECT COUNT(*) FROM raw_turns WHERE outcome = 'rejected'")
                .await
                >= 24
        );

        let (ok, out, err) = captured.cli(&args);
        assert!(ok, "{err}\n{out}");
        let [turns, accepted, duplicates, _, rejected] = summary(&out);
        assert_eq!((turns, accepted), (total, 0), "{out}");
        assert_eq!(duplicates + rejected, total, "{out}");
        // Only bodies that are not turns (400) are refused again: nothing of them is kept.
        for line in out.lines().filter(|l| l.contains(": rejected: ")) {
            assert!(line.ends_with(": rejected: invalid_envelope"), "{line}");
        }
        assert_eq!(counts(&captured).await, first, "the second run wrote rows");
    })
    .await;
}

/// A recording of a streamed Anthropic turn, from a raw-only line of raw-reduce.jsonl.
fn record(dir: &Path, session: &str) -> (Vec<u8>, Value) {
    let text = std::fs::read_to_string(Path::new(DATA).join("raw-reduce.jsonl")).unwrap();
    let line: Value = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| {
            l["name"] == "raw-anthropic/messages_stream.sse-identity"
                && l["expect"]["status"] == 202
        })
        .expect("the identity stream line");
    let payload = &line["payload"];
    let request = serde_json::to_vec_pretty(&payload["request"]).unwrap();
    let response = STANDARD
        .decode(payload["raw_response"].as_str().unwrap())
        .unwrap();
    let mut meta = payload["meta"].clone();
    meta["path"] = json!("/v1/messages");
    meta["session"] = json!({"harness_id": "claude", "harness_session_id": session});
    let turn = dir.join("turn-1");
    std::fs::create_dir_all(&turn).unwrap();
    std::fs::write(turn.join("request.json"), &request).unwrap();
    std::fs::write(turn.join("response.sse"), response).unwrap();
    std::fs::write(turn.join("meta.json"), serde_json::to_vec(&meta).unwrap()).unwrap();
    (request, meta)
}

#[actix_rt::test]
async fn a_wire_recording_is_reduced_and_stored_as_sent() {
    each_backend(|db| async move {
        let captured = Captured::open(&db).await;
        let dir = tempfile::tempdir().unwrap();
        let (request, meta) = record(dir.path(), "rec-1");
        let path = dir.path().to_str().unwrap();

        let (ok, out, err) = captured.cli(&["import", path]);
        assert!(ok, "{err}\n{out}");
        assert_eq!(summary(&out), [1, 1, 0, 0, 0], "{out}");
        let session = rows::session_by_harness_id(&captured.db, "claude", "rec-1")
            .await
            .expect("the recording's session");
        assert_eq!(session.turn_count, 1);
        let raw = captured
            .store
            .raw_turns(Uuid::nil(), None, None, 10)
            .await
            .unwrap()
            .pop()
            .expect("a raw turn");
        let stored = captured
            .store
            .raw_turn(None, raw.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.request, request, "the request bytes as recorded");
        assert_eq!(
            stored.summary.request_id.as_deref(),
            meta["request_id"].as_str()
        );
        assert!(
            stored.summary.response_reduced,
            "the server path reduced the stream"
        );

        let (ok, out, err) = captured.cli(&["import", path]);
        assert!(ok, "{err}\n{out}");
        assert_eq!(summary(&out), [1, 0, 1, 0, 0], "{out}");
    })
    .await;
}

#[actix_rt::test]
async fn a_turn_without_a_request_id_gets_one_from_its_bytes() {
    each_backend(|db| async move {
        let captured = Captured::open(&db).await;
        let dir = tempfile::tempdir().unwrap();
        let turn = crate::fixtures::openai_turn("resume me");
        let file = dir.path().join("one.jsonl");
        std::fs::write(&file, format!("{turn}\n{turn}\n")).unwrap();
        let path = file.to_str().unwrap();

        let (ok, out, err) = captured.cli(&["import", path]);
        assert!(ok, "{err}\n{out}");
        // The same bytes twice are the same request: the second line is a duplicate.
        assert_eq!(summary(&out), [2, 1, 1, 0, 0], "{out}");
        let body = serde_json::to_vec(&turn).unwrap();
        let expected = format!(
            "import-{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body))
        );
        let ids: Vec<String> = captured
            .store
            .raw_turns(Uuid::nil(), None, None, 10)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|r| r.request_id)
            .collect();
        assert_eq!(ids, [expected]);
    })
    .await;
}

#[actix_rt::test]
async fn with_an_org_every_turn_lands_in_it() {
    each_backend(|db| async move {
        let captured = Captured::open(&db).await;
        let dir = tempfile::tempdir().unwrap();
        let org = "0192c6a4-0000-7000-8000-0000000000aa";
        let other = "0192c6a4-0000-7000-8000-0000000000bb";
        let mut named = crate::fixtures::openai_turn("other org");
        named["session"] =
            json!({"org_id": other, "harness_id": "claude", "harness_session_id": "x"});
        let file = dir.path().join("orgs.jsonl");
        let plain = crate::fixtures::openai_turn("mine");
        std::fs::write(&file, format!("{plain}\n{named}\n")).unwrap();

        let (ok, out, err) = captured.cli(&["import", "--org", org, file.to_str().unwrap()]);
        assert!(ok, "{err}\n{out}");
        assert_eq!(summary(&out), [2, 1, 0, 0, 1], "{out}");
        assert!(out.contains("org_mismatch 1"), "{out}");
        let sessions = rows::all_sessions(&captured.db).await;
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].org_id, org.parse::<Uuid>().unwrap());
    })
    .await;
}

const TAPES_ORG: &str = "0192c6a4-0000-7000-8000-0000000000cc";
const PARENT: &str = "0192c6a4-0000-7000-8000-000000000101";
const CHILD: &str = "0192c6a4-0000-7000-8000-000000000102";

/// A database of the reference as its three migrations leave it (docs/storage.md, the
/// reference's schema), holding two sessions (one a fork of the other) and 1,250 nodes in
/// two orgs: a chain of 1,200 in `TAPES_ORG`, the last 100 without a session (stored before
/// sessions existed), and 50 of the child session in the nil org.
async fn tapes_database(db: &sea_orm::DatabaseConnection) {
    use sea_orm::ConnectionTrait;
    let statements = [
        "CREATE TABLE sessions (id UUID PRIMARY KEY, org_id UUID NOT NULL, \
         auth_subject TEXT NOT NULL, harness_id TEXT NOT NULL, harness_session_id TEXT NOT NULL, \
         name TEXT, cwd TEXT, harness_version TEXT, parent_session_id UUID REFERENCES sessions(id), \
         started_at TIMESTAMPTZ NOT NULL, last_seen_at TIMESTAMPTZ NOT NULL, ended_at TIMESTAMPTZ, \
         harness_metadata JSONB NOT NULL DEFAULT '{}', total_input_tokens BIGINT NOT NULL DEFAULT 0, \
         total_output_tokens BIGINT NOT NULL DEFAULT 0, total_cost_usd NUMERIC(12,4) NOT NULL DEFAULT 0, \
         turn_count INT NOT NULL DEFAULT 0, \
         CONSTRAINT sessions_harness_uq UNIQUE (org_id, harness_id, harness_session_id))",
        "CREATE TABLE nodes (hash TEXT NOT NULL, bucket JSONB, type TEXT, role TEXT, content JSONB, \
         model TEXT, provider TEXT, agent_name TEXT, stop_reason TEXT, prompt_tokens INTEGER, \
         completion_tokens INTEGER, total_tokens INTEGER, cache_creation_input_tokens INTEGER, \
         cache_read_input_tokens INTEGER, total_duration_ns BIGINT, prompt_duration_ns BIGINT, \
         project TEXT, created_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP, parent_hash TEXT, \
         session_id UUID REFERENCES sessions(id), \
         org_id UUID NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000', \
         CONSTRAINT nodes_pkey PRIMARY KEY (org_id, hash))",
        &format!(
            "INSERT INTO sessions (id, org_id, auth_subject, harness_id, harness_session_id, name, \
             cwd, started_at, last_seen_at, harness_metadata, total_input_tokens, \
             total_output_tokens, total_cost_usd, turn_count) VALUES \
             ('{PARENT}', '{TAPES_ORG}', 'alice', 'claude', 'parent', 'first', '/w', \
              '2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z', '{{\"k\":1}}', 1000, 200, 1.2345, 550)"
        ),
        &format!(
            "INSERT INTO sessions (id, org_id, auth_subject, harness_id, harness_session_id, \
             parent_session_id, started_at, last_seen_at, turn_count) VALUES \
             ('{CHILD}', '00000000-0000-0000-0000-000000000000', 'bob', 'codex', 'child', NULL, \
              '2026-01-03T00:00:00Z', '2026-01-03T00:00:00Z', 25)"
        ),
        &format!(
            "INSERT INTO nodes (hash, bucket, type, role, content, model, provider, \
             prompt_tokens, completion_tokens, total_tokens, created_at, parent_hash, \
             session_id, org_id) \
             SELECT encode(sha256(('t' || g)::bytea), 'hex'), \
                    jsonb_build_object('type', 'message', 'role', \
                        CASE WHEN g % 2 = 0 THEN 'assistant' ELSE 'user' END), \
                    'message', CASE WHEN g % 2 = 0 THEN 'assistant' ELSE 'user' END, \
                    jsonb_build_array(jsonb_build_object('type', 'text', 'text', 'm' || g)), \
                    'claude-sonnet-4-5', 'anthropic', \
                    CASE WHEN g % 2 = 0 THEN g END, CASE WHEN g % 2 = 0 THEN 1 END, \
                    CASE WHEN g % 2 = 0 THEN g + 1 END, \
                    TIMESTAMPTZ '2026-01-01T00:00:00Z' + g * INTERVAL '1 second', \
                    CASE WHEN g > 1 THEN encode(sha256(('t' || (g - 1))::bytea), 'hex') END, \
                    CASE WHEN g <= 1100 THEN '{PARENT}'::uuid END, '{TAPES_ORG}' \
             FROM generate_series(1, 1200) AS g"
        ),
        &format!(
            "INSERT INTO nodes (hash, bucket, type, role, content, created_at, session_id) \
             SELECT encode(sha256(('c' || g)::bytea), 'hex'), '{{\"type\":\"message\"}}', \
                    'message', 'user', '[]', now(), '{CHILD}' \
             FROM generate_series(1, 50) AS g"
        ),
        // The child forks the parent: set after both exist, as the reference's placeholder
        // path leaves it.
        &format!("UPDATE sessions SET parent_session_id = '{PARENT}' WHERE id = '{CHILD}'"),
    ];
    for sql in statements {
        db.execute_unprepared(sql).await.expect(sql);
    }
}

#[actix_rt::test]
async fn a_tapes_database_is_copied_with_every_hash_linked_to_its_session() {
    let Some(source) = crate::support::TestDb::postgres_only().await else {
        return;
    };
    let tapes = source.connect_raw().await;
    tapes_database(&tapes).await;
    each_backend(|db| {
        let source_url = source.url.clone();
        let tapes = tapes.clone();
        async move {
            let captured = Captured::open(&db).await;
            let (ok, out, err) = captured.cli(&["import", "--from-tapes", &source_url]);
            assert!(ok, "{err}\n{out}");
            assert!(
                out.contains(
                    "sessions 2: new 2, fork parents linked 1; nodes linked to sessions 1150"
                ),
                "{out}"
            );
            assert_eq!(summary(&out), [1250, 1250, 0, 0, 0], "{out}");

            // Every node under its own hash, with its parent, bucket and usage as stored.
            use sea_orm::{ConnectionTrait, Statement};
            let rows = tapes
                .query_all_raw(Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    "SELECT org_id, hash, parent_hash, bucket, prompt_tokens, session_id \
                     FROM nodes",
                ))
                .await
                .unwrap();
            assert_eq!(rows.len(), 1250);
            let parent: Uuid = PARENT.parse().unwrap();
            let child: Uuid = CHILD.parse().unwrap();
            for row in rows {
                let org: Uuid = row.try_get("", "org_id").unwrap();
                let hash: String = row.try_get("", "hash").unwrap();
                let node = rows::node(&captured.db, org, &hash)
                    .await
                    .unwrap_or_else(|| panic!("node {hash} missing"));
                let parent_hash: Option<String> = row.try_get("", "parent_hash").unwrap();
                let bucket: Option<Value> = row.try_get("", "bucket").unwrap();
                let tokens: Option<i32> = row.try_get("", "prompt_tokens").unwrap();
                let session: Option<Uuid> = row.try_get("", "session_id").unwrap();
                assert_eq!(node.parent_hash, parent_hash);
                assert_eq!(node.bucket, bucket);
                assert_eq!(node.prompt_tokens, tokens);
                assert_eq!(node.session_id, session, "{hash}");
                assert!(session.is_none() || [parent, child].contains(&session.unwrap()));
            }
            let copied = rows::session(&captured.db, parent).await;
            assert_eq!(
                (
                    copied.turn_count,
                    copied.total_input_tokens,
                    copied.total_output_tokens
                ),
                (550, 1000, 200)
            );
            assert_eq!(copied.total_cost_usd.to_string(), "1.2345");
            assert_eq!(copied.harness_metadata, json!({"k": 1}));
            assert_eq!(copied.name.as_deref(), Some("first"));
            let forked = rows::session(&captured.db, child).await;
            assert_eq!(forked.parent_session_id, Some(parent));

            // Again: nothing new, nothing relinked.
            let before = counts(&captured).await;
            let (ok, out, err) = captured.cli(&["import", "--from-tapes", &source_url]);
            assert!(ok, "{err}\n{out}");
            assert!(
                out.contains(
                    "sessions 2: new 0, fork parents linked 0; nodes linked to sessions 0"
                ),
                "{out}"
            );
            assert_eq!(summary(&out), [1250, 0, 1250, 0, 0], "{out}");
            assert_eq!(counts(&captured).await, before);
        }
    })
    .await;
}

/// Runs `reel import --url` against `app` off the test's thread, which the server shares.
async fn import_to(app: &crate::harness::TestApp, args: &[&str]) -> (bool, String, String) {
    let mut all: Vec<String> = ["import", "--no-progress", "--url", &app.base]
        .iter()
        .chain(args)
        .map(|a| (*a).to_owned())
        .collect();
    // No database: a server is the target.
    all.extend([
        "--database-url".into(),
        "sqlite:///nonexistent/reel.db".into(),
    ]);
    actix_rt::task::spawn_blocking(move || {
        let args: Vec<&str> = all.iter().map(String::as_str).collect();
        crate::child::run_cli(&args)
    })
    .await
    .expect("the import ran")
}

async fn server_counts(db: &sea_orm::DatabaseConnection) -> [i64; 3] {
    [
        crate::support::reads::count(db, "nodes").await,
        crate::support::reads::count(db, "sessions").await,
        crate::support::reads::count(db, "raw_turns").await,
    ]
}

#[actix_rt::test]
async fn posted_to_a_server_the_conformance_files_import_once() {
    each_backend(|db| async move {
        let app = crate::harness::TestApp::spawn(&db).await;
        let files = ["chains.jsonl", "chains-v2.jsonl", "raw-reduce.jsonl"];
        let paths: Vec<String> = files.iter().map(|f| format!("{DATA}/{f}")).collect();
        let mut args = vec!["-v"];
        args.extend(paths.iter().map(String::as_str));
        let total: u64 = files.iter().map(|f| lines(f)).sum();

        let (ok, out, err) = import_to(&app, &args).await;
        assert!(ok, "{err}\n{out}");
        let [turns, accepted, duplicates, _, rejected] = summary(&out);
        assert_eq!(turns, total, "{out}");
        assert_eq!(accepted + duplicates + rejected, total, "{out}");
        assert!(accepted > 1000, "{out}");
        let conn = app.db().await;
        for case in conformance_cases().iter().filter(|c| c.status == 202) {
            for hash in &case.hashes {
                assert!(
                    rows::node(&conn, Uuid::nil(), hash).await.is_some(),
                    "{}: node {hash} missing",
                    case.name
                );
            }
        }
        // Every refusal is named by the answer's status and text, as in-process.
        for line in out.lines().filter(|l| l.contains(": rejected: ")) {
            let reason = line.rsplit(": rejected: ").next().unwrap();
            assert!(!reason.starts_with("http_"), "{line}");
        }
        let first = server_counts(&conn).await;

        // Again: every 202 is a replay (`counted: false`, no new node), nothing is written.
        let (ok, out, err) = import_to(&app, &args).await;
        assert!(ok, "{err}\n{out}");
        let [turns, accepted, duplicates, _, rejected] = summary(&out);
        assert_eq!((turns, accepted), (total, 0), "{out}");
        assert_eq!(duplicates + rejected, total, "{out}");
        assert!(duplicates > 1000, "{out}");
        assert_eq!(
            server_counts(&conn).await,
            first,
            "the second run wrote rows"
        );
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn posted_with_an_org_key_the_turns_land_in_its_org_only() {
    use reel::config::AuthMode;
    each_backend(|db| async move {
        let app = crate::harness::TestApp::spawn_with(&db, |c| c.auth.mode = AuthMode::Keys).await;
        let conn = app.db().await;
        let org: Uuid = "0192c6a4-0000-7000-8000-0000000000aa".parse().unwrap();
        let other = "0192c6a4-0000-7000-8000-0000000000bb";
        let key = reel::store::create_key(&conn, org, None, None)
            .await
            .expect("a key");
        let dir = tempfile::tempdir().unwrap();
        let mut named = crate::fixtures::openai_turn("other org");
        named["session"] =
            json!({"org_id": other, "harness_id": "claude", "harness_session_id": "x"});
        let mut own = crate::fixtures::openai_turn("mine");
        own["session"] = json!({"harness_id": "claude", "harness_session_id": "mine"});
        let file = dir.path().join("orgs.jsonl");
        std::fs::write(&file, format!("{own}\n{named}\n{own}\n")).unwrap();
        let path = file.to_str().unwrap();

        // Without a key, or with one the server does not know: refused, nothing written.
        let (ok, out, err) = import_to(&app, &[path]).await;
        assert!(!ok, "{out}");
        assert!(err.contains("refused the key: unauthorized"), "{err}");
        let (ok, _, err) = import_to(&app, &["--key", "reel_nonsense", path]).await;
        assert!(!ok);
        assert!(err.contains("refused the key"), "{err}");
        assert_eq!(server_counts(&conn).await, [0, 0, 0]);

        let secret = key.secret.expose().to_owned();
        let (ok, out, err) = import_to(&app, &["-v", "--key", &secret, path]).await;
        assert!(ok, "{err}\n{out}");
        // The same line twice is the same request: the second is a replay.
        assert_eq!(summary(&out), [3, 1, 1, 0, 1], "{out}");
        assert!(out.contains("line 2: rejected: org_mismatch"), "{out}");
        let sessions = rows::all_sessions(&conn).await;
        assert_eq!(sessions.len(), 1, "{sessions:?}");
        assert_eq!(sessions[0].org_id, org);
        assert_eq!(sessions[0].harness_session_id, "mine");
        assert!(
            rows::all_nodes(&conn).await.iter().all(|n| n.org_id == org),
            "a node outside the key's org"
        );

        let before = server_counts(&conn).await;
        let (ok, out, err) = import_to(&app, &["--key", &secret, path]).await;
        assert!(ok, "{err}\n{out}");
        assert_eq!(summary(&out), [3, 0, 2, 0, 1], "{out}");
        assert_eq!(server_counts(&conn).await, before);
        app.stop().await;
    })
    .await;
}

#[test]
fn an_unreachable_server_ends_the_import_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("one.jsonl");
    std::fs::write(&file, format!("{}\n", crate::fixtures::openai_turn("x"))).unwrap();
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let (ok, out, err) = crate::child::run_cli(&[
        "import",
        "--url",
        &url,
        "--attempts",
        "2",
        "--database-url",
        "sqlite:///nonexistent/reel.db",
        file.to_str().unwrap(),
    ]);
    assert!(!ok, "{out}");
    assert!(err.contains("unavailable: "), "{err}");
}
