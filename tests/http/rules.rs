//! One rule set per database, as a server meets it (docs/hashing.md#rule-sets): a new
//! database records the configured rules (by default tapes-6ea4dfc), a server without
//! `chain.rules` adopts what its database records, and one configured otherwise refuses to
//! start, saying what to run.

use actix_web::http::StatusCode;
use reel::app::Application;
use serde_json::{Value, json};

use crate::child::run_cli_with;
use crate::harness::{TestApp, test_config};
use crate::support::each_backend;

/// A Codex turn: an OpenAI Responses request, which only tapes-6ea4dfc parses.
fn codex_turn(session: &str) -> Value {
    json!({
        "provider": "openai",
        "request": {"model": "gpt-5", "instructions": "be brief", "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
        ]},
        "response": {"model": "gpt-5", "message": {"role": "assistant",
            "content": [{"type": "text", "text": "hello"}]}},
        "session": {"harness_id": "codex", "harness_session_id": session}
    })
}

async fn new_nodes(app: &TestApp, turn: &Value) -> u64 {
    let res = app.ingest(turn).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
    res.json()["new_nodes"].as_u64().expect("new_nodes")
}

#[actix_rt::test]
async fn a_new_database_hashes_by_tapes_6ea4dfc_unless_configured() {
    each_backend(|db| async move {
        let app = TestApp::spawn_with(&db, |c| c.chain.rules = None).await;
        // The Responses request gives its message node, then the response's.
        assert_eq!(new_nodes(&app, &codex_turn("new")).await, 2);
        app.stop().await;

        // Restarted without the setting, the server keeps the recorded rules.
        let app = TestApp::spawn_with(&db, |c| c.chain.rules = None).await;
        assert_eq!(new_nodes(&app, &codex_turn("again")).await, 0, "same nodes");
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn a_server_configured_for_other_rules_than_its_database_refuses_to_start() {
    each_backend(|db| async move {
        // The tests' config is tapes-f237b6e: the Responses request gives no node.
        let app = TestApp::spawn(&db).await;
        assert_eq!(new_nodes(&app, &codex_turn("old")).await, 1);
        app.stop().await;

        let mut config = test_config(&db);
        config.chain.rules = Some("tapes-6ea4dfc".to_owned());
        let err = Application::build(config)
            .await
            .err()
            .expect("refused")
            .to_string();
        for part in [
            "tapes-f237b6e",
            "tapes-6ea4dfc",
            "reel rederive --rules tapes-6ea4dfc",
            "chain.rules",
        ] {
            assert!(err.contains(part), "{part} missing from: {err}");
        }

        // Without the setting it adopts the database's rules and its chains continue.
        let app = TestApp::spawn_with(&db, |c| c.chain.rules = None).await;
        assert_eq!(new_nodes(&app, &codex_turn("old")).await, 0);
        app.stop().await;
    })
    .await;
}

/// `reel migrate` records a new database's rules as a server would; `reel chain --rules`
/// hashes by the rules it names.
#[actix_rt::test]
async fn the_cli_records_and_names_rule_sets() {
    each_backend(|db| async move {
        let url = db.url.as_str();
        let (ok, _, err) = run_cli_with(&["migrate", "--database-url", url], &[]);
        assert!(ok, "{err}");
        assert!(err.contains("chain rules: tapes-6ea4dfc"), "{err}");
        let (ok, _, err) = run_cli_with(
            &["migrate", "--database-url", url],
            &[("REEL_CHAIN_RULES", "tapes-f237b6e")],
        );
        assert!(!ok, "a configured mismatch is refused");
        assert!(err.contains("reel rederive --rules tapes-f237b6e"), "{err}");
    })
    .await;

    let mut heads = Vec::new();
    for rules in ["tapes-f237b6e", "tapes-6ea4dfc"] {
        let mut child = std::process::Command::new(crate::child::REEL)
            .args(["chain", "--rules", rules])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("run reel chain");
        let line = format!("{}\n", codex_turn("cli"));
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), line.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("reel chain ends");
        assert!(out.status.success());
        let result: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
        heads.push(result["nodes"].as_array().expect("nodes").len());
    }
    assert_eq!(
        heads,
        [1, 2],
        "no request node under f237b6e, one under 6ea4dfc"
    );
    let (ok, _, err) = run_cli_with(&["chain", "--rules", "tapes-HEAD"], &[]);
    assert!(!ok && err.contains("tapes-6ea4dfc"), "{err}");
}
