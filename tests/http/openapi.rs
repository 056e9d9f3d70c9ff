//! `GET /openapi`: an OpenAPI 3.1 document that describes every route the App registers
//! (`reel::http::ROUTES`, the table the App is built from), with request and response
//! schemas and its error answers, and nothing the App does not answer.

use std::collections::BTreeSet;

use actix_web::http::StatusCode;
use reel::http::ROUTES;
use serde_json::Value;

use crate::harness::TestApp;
use crate::support::TestDb;

/// Every `$ref` under `value`.
fn references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| references(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

/// Resolves a `$ref` to its schema in `components`.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

#[actix_rt::test]
async fn the_document_describes_every_registered_route_and_no_other() {
    let db = TestDb::sqlite();
    let app = TestApp::spawn(&db).await;
    let res = app.get("/openapi").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.header("content-type"), Some("application/json"));
    let doc = res.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    let mut refs = Vec::new();
    references(&doc, &mut refs);
    for r in &refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .expect("a schema reference");
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling {r}"
        );
    }

    let registered: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    assert!(registered.len() >= 16, "{registered:?}");
    let documented: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("path item")
                .keys()
                .filter(|k| ["get", "post", "put", "patch", "delete"].contains(&k.as_str()))
                .map(|method| (method.clone(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let missing: Vec<_> = registered.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes missing from /openapi: {missing:?}"
    );
    let phantom: Vec<_> = documented.difference(&registered).collect();
    assert!(
        phantom.is_empty(),
        "documented but not registered: {phantom:?}"
    );

    for (method, path) in &registered {
        let op = &paths[path.as_str()][method.as_str()];
        let responses = op["responses"].as_object().expect("responses");
        // Every route has a success answer with a schema, and every error answer is the
        // JSON error body.
        let success: Vec<_> = responses.keys().filter(|s| s.starts_with('2')).collect();
        assert_eq!(success.len(), 1, "{method} {path}: {success:?}");
        assert!(
            responses[success[0].as_str()]["content"]
                .as_object()
                .is_some_and(|c| !c.is_empty()),
            "{method} {path}: the success answer has no schema"
        );
        assert!(responses.contains_key("500"), "{method} {path}");
        for (status, response) in responses.iter().filter(|(s, _)| !s.starts_with('2')) {
            let schema = resolve(&doc, &response["content"]["application/json"]["schema"]);
            assert!(
                schema["properties"]["error"].is_object(),
                "{method} {path} {status}: not the error body"
            );
        }
        if path.starts_with("/v1/") || path.starts_with("/admin/") {
            for status in ["401", "403", "503"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} lacks {status}"
                );
            }
        }
        if path.contains('{') {
            assert!(responses.contains_key("400"), "{method} {path} lacks 400");
        }
        if method == "post" && path.starts_with("/v1/ingest") {
            let body = &op["requestBody"]["content"]["application/json"]["schema"];
            assert!(
                resolve(&doc, body)["properties"].is_object(),
                "{path}: no body schema"
            );
            for status in ["400", "413", "429"] {
                assert!(responses.contains_key(status), "{path} lacks {status}");
            }
        }
    }

    // The sessions list names its parameters with their bounds.
    let params = paths["/v1/sessions"]["get"]["parameters"]
        .as_array()
        .expect("parameters");
    let names: BTreeSet<&str> = params.iter().filter_map(|p| p["name"].as_str()).collect();
    for name in [
        "limit",
        "cursor",
        "sort",
        "direction",
        "harness_id",
        "harness_session_id",
        "auth_subject",
        "since",
        "until",
        "X-Tapes-Org-Id",
    ] {
        assert!(names.contains(name), "{name} not documented");
    }
    let limit = params.iter().find(|p| p["name"] == "limit").unwrap();
    assert_eq!(limit["schema"]["maximum"], 200);
    let sort = resolve(
        &doc,
        &params.iter().find(|p| p["name"] == "sort").unwrap()["schema"],
    );
    assert_eq!(
        sort["enum"],
        serde_json::json!([
            "last_seen_at",
            "started_at",
            "turn_count",
            "total_cost_usd",
            "total_tokens"
        ])
    );
    app.stop().await;
}

/// Every documented path answers as a route: none falls through to the default 404.
#[actix_rt::test]
async fn every_documented_path_is_served() {
    let db = TestDb::sqlite();
    let app = TestApp::spawn(&db).await;
    let doc = app.get("/openapi").await.json();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let concrete = path
            .replace("{hash}", &"0".repeat(64))
            .replace("{id}", "00000000-0000-0000-0000-000000000000")
            .replace("{session_id}", "00000000-0000-0000-0000-000000000000");
        for method in item.as_object().unwrap().keys() {
            let res = match method.as_str() {
                "get" => app.get(&concrete).await,
                "post" => {
                    app.post_raw(&concrete, &[("content-type", "application/json")], "{}")
                        .await
                }
                _ => continue,
            };
            let fell_through = res.status == StatusCode::NOT_FOUND
                && res
                    .text()
                    .contains(&format!("Cannot {} ", method.to_uppercase()));
            assert!(
                !fell_through,
                "{method} {path} is not served: {}",
                res.text()
            );
        }
    }
    app.stop().await;
}
