//! `GET /v1/ingest/nodes` (docs/wire.md#listing-nodes): the reference's agent filter, org
//! scoping and bounds.

use actix_web::http::StatusCode;
use serde_json::json;

use crate::fixtures::{ollama_turn, sample_turn};
use crate::harness::TestApp;
use crate::support::each_backend;

const ORG: &str = "11111111-1111-1111-1111-111111111111";

#[actix_rt::test]
async fn returns_only_nodes_of_the_requested_agent() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        for (agent, text) in [("agent-a", "one"), ("agent-b", "two"), ("agent-a", "three")] {
            let res = app.ingest(&ollama_turn(agent, text)).await;
            assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
        }
        let res = app.get("/v1/ingest/nodes?agent=agent-a").await;
        assert_eq!(res.status, StatusCode::OK);
        let body = res.json();
        assert_eq!(body["count"], 4, "{body}");
        let nodes = body["nodes"].as_array().expect("nodes");
        assert!(nodes.iter().all(|n| n["agent_name"] == "agent-a"), "{body}");
        for node in nodes {
            assert_eq!(node["provider"], "ollama");
            assert_eq!(node["model"], "llama3");
            assert!(node["role"] == "user" || node["role"] == "assistant");
            assert_eq!(node["hash"].as_str().map(str::len), Some(64));
        }

        let all = app.get("/v1/ingest/nodes").await.json();
        assert_eq!(all["count"], 6);
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn returns_an_empty_list_for_an_agent_without_nodes() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let res = app.ingest(&ollama_turn("agent-a", "one")).await;
        assert_eq!(res.status, StatusCode::ACCEPTED);
        let res = app.get("/v1/ingest/nodes?agent=nobody").await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(res.text(), r#"{"count":0,"nodes":[]}"#);
        app.stop().await;
    })
    .await;
}

/// Reads are scoped by org, from the query or the reference's org header
/// (docs/divergences.md#org-scoping).
#[actix_rt::test]
async fn listing_is_scoped_to_one_org() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let mut session = crate::fixtures::envelope("org-session");
        session["org_id"] = json!(ORG);
        assert_eq!(
            app.ingest(&sample_turn(Some(session))).await.status,
            StatusCode::ACCEPTED
        );
        assert_eq!(
            app.ingest(&ollama_turn("x", "nil org")).await.status,
            StatusCode::ACCEPTED
        );

        let nil = app.get("/v1/ingest/nodes").await.json();
        assert_eq!(nil["count"], 2, "{nil}");
        let by_query = app
            .get(&format!("/v1/ingest/nodes?org_id={ORG}"))
            .await
            .json();
        assert_eq!(by_query["count"], 3, "{by_query}");
        let by_header = app
            .get_with("/v1/ingest/nodes", &[("x-tapes-org-id", ORG)])
            .await
            .json();
        assert_eq!(by_header, by_query);

        let res = app.get("/v1/ingest/nodes?org_id=bogus").await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        assert!(res.error().starts_with("invalid org_id"), "{}", res.text());
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn listing_is_bounded_by_limit() {
    each_backend(|db| async move {
        let app = TestApp::spawn_with(&db, |c| {
            c.server.nodes_default_limit = 4;
            c.server.nodes_max_limit = 5;
        })
        .await;
        for text in ["one", "two", "three"] {
            assert_eq!(
                app.ingest(&ollama_turn("a", text)).await.status,
                StatusCode::ACCEPTED
            );
        }
        let body = app.get("/v1/ingest/nodes?limit=2").await.json();
        assert_eq!(body["count"], 2);
        let body = app.get("/v1/ingest/nodes").await.json();
        assert_eq!(body["count"], 4);
        let body = app.get("/v1/ingest/nodes?limit=5").await.json();
        assert_eq!(body["count"], 5);
        for bad in ["limit=0", "limit=6", "limit=x"] {
            let res = app.get(&format!("/v1/ingest/nodes?{bad}")).await;
            assert_eq!(res.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        app.stop().await;
    })
    .await;
}
