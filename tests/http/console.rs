//! The admin console's routes: the page and its assets, `/admin/ingest/recent`,
//! `/admin/quarantine` and `POST /admin/raw/{id}/reprocess`, and who may call them.
//! The page itself is driven in a browser by `tests/console/` (`.ci/run`).

use actix_web::http::StatusCode;
use reel::store::RawOutcome;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::captured::*;
use crate::harness::TestApp;
use crate::rows;
use crate::support::each_backend;

const TOKEN: &str = "console-s3cret";

fn gemini(session: &str, n: usize) -> Value {
    let mut turn = turn(ORG_A, session, n);
    turn["provider"] = json!("gemini");
    turn
}

fn ids(list: &Value) -> Vec<String> {
    list["raw_turns"]
        .as_array()
        .expect("raw_turns")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect()
}

#[actix_rt::test]
async fn the_page_and_its_assets_are_served_from_the_binary() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let page = app.get("/admin/").await;
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(
            page.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert!(
            page.header("content-security-policy")
                .is_some_and(|csp| csp.contains("script-src 'self'")),
            "{:?}",
            page.headers
        );
        let html = page.text();
        assert!(html.contains(r#"<script src="console.js">"#), "{html}");
        assert!(html.contains(r#"href="console.css""#), "{html}");

        let js = app.get("/admin/console.js").await;
        assert_eq!(js.status, StatusCode::OK);
        assert_eq!(
            js.header("content-type"),
            Some("text/javascript; charset=utf-8")
        );
        assert!(js.text().contains("/admin/actors"));
        let css = app.get("/admin/console.css").await;
        assert_eq!(css.status, StatusCode::OK);
        assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn with_a_token_the_page_loads_and_its_data_needs_the_token() {
    each_backend(|db| async move {
        let app = TestApp::spawn_with(&db, |c| c.admin.token = Some(TOKEN.to_owned())).await;
        // A navigation carries no bearer token: the page holds no data and loads.
        assert_eq!(app.get("/admin/").await.status, StatusCode::OK);
        assert_eq!(app.get("/admin/console.js").await.status, StatusCode::OK);
        let bearer = format!("Bearer {TOKEN}");
        for path in ["/admin/ingest/recent", "/admin/quarantine"] {
            let res = app.get(path).await;
            assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{path}");
            assert_eq!(res.error(), "unauthorized: missing bearer token", "{path}");
            let res = app.get_with(path, &[("authorization", &bearer)]).await;
            assert_eq!(res.status, StatusCode::OK, "{path}: {}", res.text());
        }
        let id = Uuid::now_v7();
        let path = format!("/admin/raw/{id}/reprocess");
        let res = app.post_raw(&path, &[], "").await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        let res = app
            .post_raw(&path, &[("authorization", "Bearer no")], "")
            .await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        assert_eq!(res.error(), "unauthorized: invalid bearer token");
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn without_a_token_off_loopback_even_the_page_is_refused() {
    each_backend(|db| async move {
        let app = TestApp::spawn_with(&db, |c| {
            c.server.listen = "0.0.0.0:0".to_owned();
            c.auth.allow_anonymous = true;
        })
        .await;
        for path in [
            "/admin/",
            "/admin/console.js",
            "/admin/ingest/recent",
            "/admin/quarantine",
        ] {
            let res = app.get(path).await;
            assert_eq!(res.status, StatusCode::FORBIDDEN, "{path}");
            assert!(res.error().contains("no admin token"), "{}", res.text());
        }
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn recent_ingest_counts_what_the_server_answered() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        assert_eq!(
            app.ingest(&turn(ORG_A, "recent", 0)).await.status,
            StatusCode::ACCEPTED
        );
        assert_eq!(
            app.ingest(&turn(ORG_A, "recent", 1)).await.status,
            StatusCode::ACCEPTED
        );
        let res = app.ingest(&gemini("recent-g", 0)).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
        let res = app
            .post_raw("/v1/ingest", &[("content-type", "application/json")], "{")
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);

        let res = app.get("/admin/ingest/recent").await;
        assert_eq!(res.status, StatusCode::OK);
        let body = res.json();
        assert_eq!(body["interval_secs"], 10);
        let intervals = body["intervals"].as_array().expect("intervals");
        assert_eq!(intervals.len(), 60);
        let sum = |key: &str| {
            intervals
                .iter()
                .map(|i| i[key].as_u64().expect("count"))
                .sum::<u64>()
        };
        assert_eq!((sum("accepted"), sum("rejected"), sum("failed")), (2, 2, 0));
        let starts: Vec<u64> = intervals
            .iter()
            .map(|i| i["start"].as_u64().unwrap())
            .collect();
        assert!(starts.windows(2).all(|w| w[1] == w[0] + 10), "{starts:?}");
        let timed: Vec<&Value> = intervals.iter().filter(|i| i["accepted"] != 0).collect();
        assert!(
            timed
                .iter()
                .all(|i| i["latency_mean_ms"].as_f64().unwrap() > 0.0
                    && i["latency_max_ms"].as_f64().unwrap()
                        >= i["latency_mean_ms"].as_f64().unwrap()),
            "{timed:?}"
        );
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn the_quarantine_pages_oldest_first_and_filters_by_reason() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let mut quarantined = Vec::new();
        for n in 0..3 {
            let res = app.ingest(&gemini("q-page", n)).await;
            assert_eq!(
                res.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{}",
                res.text()
            );
            quarantined.push(res.json()["raw_turn_id"].as_str().unwrap().to_owned());
        }
        // An accepted turn is not in the quarantine.
        assert_eq!(
            app.ingest(&turn(ORG_A, "q-ok", 0)).await.status,
            StatusCode::ACCEPTED
        );

        let all = app.get("/admin/quarantine").await;
        assert_eq!(all.status, StatusCode::OK);
        let all = all.json();
        assert_eq!(all["count"], 3);
        assert_eq!(ids(&all), quarantined);
        assert_eq!(all["raw_turns"][0]["reason"], "unsupported_provider");
        assert_eq!(all["raw_turns"][0]["status"], 422);
        assert!(all.get("next_cursor").is_none(), "{all}");

        let first = app.get("/admin/quarantine?limit=2").await.json();
        assert_eq!(ids(&first), quarantined[..2]);
        let cursor = first["next_cursor"].as_str().expect("a next page");
        let second = app
            .get(&format!("/admin/quarantine?limit=2&cursor={cursor}"))
            .await
            .json();
        assert_eq!(ids(&second), quarantined[2..]);
        assert!(second.get("next_cursor").is_none(), "{second}");

        let none = app
            .get("/admin/quarantine?reason=unparseable_request")
            .await
            .json();
        assert_eq!(none["count"], 0);
        let some = app
            .get("/admin/quarantine?reason=unsupported_provider")
            .await
            .json();
        assert_eq!(some["count"], 3);

        for (query, error) in [
            ("limit=0", "invalid limit: must be an integer from 1 to 200"),
            ("limit=x", "invalid limit: must be an integer from 1 to 200"),
            (
                "cursor=!!",
                "invalid cursor: not a cursor this server issued",
            ),
        ] {
            let res = app.get(&format!("/admin/quarantine?{query}")).await;
            assert_eq!(res.status, StatusCode::BAD_REQUEST, "{query}");
            assert_eq!(res.error(), error, "{query}");
        }
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn reprocess_commits_a_row_that_passes_now_through_its_sessions_actor() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let captured = Captured::open(&db).await;
        let received = days_ago(1);
        let id = captured
            .quarantine(&body(&turn(ORG_A, "fixed", 0)), received, org(ORG_A), "unparseable_request")
            .await;
        assert_eq!(ids(&app.get("/admin/quarantine").await.json()), [id.to_string()]);

        let res = app.post_raw(&format!("/admin/raw/{id}/reprocess"), &[], "").await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        let done = res.json();
        assert_eq!(done["raw_turn_id"], id.to_string());
        assert_eq!(done["outcome"], "committed", "{done}");
        assert_eq!(done["new_nodes"], 2);
        let session_id: Uuid = done["session_id"].as_str().unwrap().parse().unwrap();
        let head = done["head"].as_str().unwrap().to_owned();

        // Committed as any turn: the session's counters, its head, the row accepted.
        let session = rows::session(&captured.db, session_id).await;
        assert_eq!(session.org_id, org(ORG_A));
        assert_eq!(session.harness_session_id, "fixed");
        assert_eq!(session.turn_count, 1);
        assert_eq!(session.total_input_tokens, 100);
        let node = rows::node(&captured.db, org(ORG_A), &head).await.expect("the head");
        assert!(node.is_turn_head);
        let stored = captured.store.raw_turn(None, id).await.unwrap().expect("the row");
        assert_eq!(stored.summary.outcome, RawOutcome::Accepted);
        assert_eq!(stored.summary.head_hash.as_deref(), Some(head.as_str()));
        assert_eq!(stored.summary.received_at, received);
        assert_eq!(app.get("/admin/quarantine").await.json()["count"], 0);
        // Through the session's actor: it is live and counted the turn.
        let actors = app.actors().await;
        let actor = actors
            .iter()
            .find(|a| a["harness_session_id"] == "fixed")
            .unwrap_or_else(|| panic!("no actor for the session: {actors:?}"));
        assert_eq!(actor["session_id"], session_id.to_string());
        assert_eq!(actor["turns_committed"], 1);

        // Once only: a second call commits nothing more.
        let again = app.post_raw(&format!("/admin/raw/{id}/reprocess"), &[], "").await;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(
            again.json(),
            json!({"raw_turn_id": id.to_string(), "outcome": "skipped", "detail": "already reprocessed"})
        );
        assert_eq!(rows::session(&captured.db, session_id).await.turn_count, 1);
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn reprocess_leaves_a_row_that_still_fails_and_refuses_bad_ids() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let res = app.ingest(&gemini("still", 0)).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
        let id = res.json()["raw_turn_id"].as_str().unwrap().to_owned();

        let res = app
            .post_raw(&format!("/admin/raw/{id}/reprocess"), &[], "")
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        let body = res.json();
        assert_eq!(body["outcome"], "still_failing");
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("unprocessable turn: unsupported provider")),
            "{body}"
        );
        assert!(body.get("session_id").is_none(), "{body}");
        assert_eq!(
            ids(&app.get("/admin/quarantine").await.json()),
            [id.as_str()]
        );
        let conn = app.db().await;
        assert_eq!(rows::node_count(&conn).await, 0);
        assert!(rows::all_sessions(&conn).await.is_empty());

        let res = app.post_raw("/admin/raw/nope/reprocess", &[], "").await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        assert_eq!(res.error(), "invalid raw turn id \"nope\"");
        let missing = Uuid::now_v7();
        let res = app
            .post_raw(&format!("/admin/raw/{missing}/reprocess"), &[], "")
            .await;
        assert_eq!(res.status, StatusCode::NOT_FOUND);
        assert_eq!(res.error(), format!("no raw turn {missing}"));
        let res = app.get(&format!("/admin/raw/{id}/reprocess")).await;
        assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED);
        app.stop().await;
    })
    .await;
}
