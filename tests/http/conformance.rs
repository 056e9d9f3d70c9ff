//! Every line of the conformance files through `POST /v1/ingest` of a server hashing by the
//! line's rule set, on both backends: the status, the head the 202 names, and in the rows
//! each node's hash, parent, stored bucket and kind (`tests/conformance.rs` checks the same
//! lines through the library, hash inputs included).
//!
//! Nodes are content-addressed per org, so a node that several lines give is stored once,
//! with the bucket and kind of the first line that gave it (first writer wins, as for every
//! unhashed column): each row is checked against that line.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use entity::nodes;
use reel::merkle::Rules;
use reel::wire::parse_org_id;
use sea_orm::EntityTrait;
use serde_json::Value;
use uuid::Uuid;

use crate::harness::TestApp;
use crate::support::each_backend;
use crate::support::vectors::{ExpectedNode, lines, read_file, rules_of, same_json};

/// The org a line's rows land in: the one its envelope names, else the nil org.
fn org_of(payload: &Value) -> Uuid {
    let named = payload["session"]["org_id"].as_str().unwrap_or("");
    parse_org_id(named).unwrap_or_else(|e| panic!("an accepted line names org {named:?}: {e}"))
}

/// A bucket as the store keeps it: U+0000 becomes U+FFFD in every string
/// (docs/divergences.md#nul-characters).
fn stored_form(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(s.replace('\0', "\u{fffd}")),
        Value::Array(items) => Value::Array(items.iter().map(stored_form).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.replace('\0', "\u{fffd}"), stored_form(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Posts every line of `file` to a server on a fresh database configured for `rules`, and
/// checks the answers and the rows.
async fn check_file(file: &'static str, rules: &'static Rules) {
    each_backend(|db| async move {
        let app = TestApp::spawn_with(&db, |c| c.chain.rules = Some(rules.name.to_owned())).await;
        let text = read_file(file);
        let mut repaired = Vec::new();
        let lines = lines(file, &text, &mut repaired);
        let mut first: HashMap<(Uuid, String), (&str, &ExpectedNode)> = HashMap::new();
        let mut mismatches = Vec::new();
        for line in &lines {
            assert_eq!(&rules_of(&line.expect), rules, "{}: rule set", line.name);
            let res = app
                .post_raw(
                    "/v1/ingest",
                    &[("content-type", "application/json")],
                    line.payload.get().as_bytes().to_vec(),
                )
                .await;
            let want = line.expect.status;
            if res.status.as_u16() != want {
                mismatches.push(format!(
                    "{}: status {}, expected {want}: {}",
                    line.name,
                    res.status,
                    res.text()
                ));
                continue;
            }
            if res.status != StatusCode::ACCEPTED {
                continue;
            }
            let head = &line
                .expect
                .nodes
                .last()
                .expect("an accepted line has nodes")
                .hash;
            if res.json()["head"] != head.as_str() {
                mismatches.push(format!(
                    "{}: head {}, expected {head}",
                    line.name,
                    res.json()["head"]
                ));
            }
            let payload: Value = serde_json::from_str(line.payload.get()).expect("JSON");
            let org = org_of(&payload);
            for node in &line.expect.nodes {
                first
                    .entry((org, node.hash.clone()))
                    .or_insert((&line.name, node));
            }
        }

        let rows: HashMap<(Uuid, String), nodes::Model> = nodes::Entity::find()
            .all(&app.db().await)
            .await
            .expect("read nodes")
            .into_iter()
            .map(|row| ((row.org_id, row.hash.clone()), row))
            .collect();
        for (key, (name, want)) in &first {
            let Some(row) = rows.get(key) else {
                mismatches.push(format!("{name}: node {} not stored", want.hash));
                continue;
            };
            if row.parent_hash != want.parent_hash {
                mismatches.push(format!(
                    "{name}: node {} parent {:?}, expected {:?}",
                    want.hash, row.parent_hash, want.parent_hash
                ));
            }
            let bucket = row.bucket.clone().unwrap_or(Value::Null);
            if !same_json(&bucket, &stored_form(&want.bucket)) {
                mismatches.push(format!(
                    "{name}: node {} bucket\n  expected {}\n  stored   {bucket}",
                    want.hash, want.bucket
                ));
            }
            if row.node_kind != want.kind {
                mismatches.push(format!(
                    "{name}: node {} kind {:?}, expected {:?}",
                    want.hash, row.node_kind, want.kind
                ));
            }
        }
        assert_eq!(
            rows.len(),
            first.len(),
            "{file}: the rows are exactly the nodes of the accepted lines"
        );
        assert!(
            mismatches.is_empty(),
            "{} mismatches in {file} under {} on {}:\n{}",
            mismatches.len(),
            rules.name,
            db.backend,
            mismatches.join("\n")
        );
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn every_line_of_chains_v2_over_http_under_6ea4dfc() {
    check_file("chains-v2.jsonl", &Rules::TAPES_6EA4DFC).await;
}

#[actix_rt::test]
async fn every_line_of_chains_over_http_under_f237b6e() {
    check_file("chains.jsonl", &Rules::TAPES_F237B6E).await;
}

#[actix_rt::test]
async fn every_line_of_raw_reduce_over_http_under_6ea4dfc() {
    check_file("raw-reduce.jsonl", &Rules::TAPES_6EA4DFC).await;
}
