//! The sessions read API (docs/wire.md#reading-sessions): listing with every parameter,
//! keyset pages that stay stable while sessions arrive, one session with its fork family,
//! its turns and its transcript, org isolation, and the 400s of bad parameters.

use std::collections::HashSet;

use actix_web::http::StatusCode;
use reel::config::AuthMode;
use reel::store::{self, CreatedKey};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::fixtures::{Conversation, MODEL, envelope};
use crate::harness::{TestApp, TestResponse};
use crate::support::each_backend;

/// Posts `turns` turns of a `claude` conversation `id` (subject `subject`); returns its
/// session as the natural-key lookup lists it.
async fn session_with(app: &TestApp, id: &str, subject: &str, turns: usize) -> Value {
    let mut session = envelope(id);
    session["auth_subject"] = json!(subject);
    let conv = Conversation::new(id, Some(session));
    for n in 0..turns {
        let res = app.ingest(&conv.turn(n)).await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
    }
    lookup(app, id).await
}

async fn lookup(app: &TestApp, id: &str) -> Value {
    let res = app
        .get(&format!(
            "/v1/sessions?harness_id=claude&harness_session_id={id}"
        ))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let items = res.json()["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{}", res.text());
    items[0].clone()
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Follows `next_cursor` from `query` with pages of `limit`; returns every id in order.
async fn walk(app: &TestApp, query: &str, limit: usize) -> Vec<String> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/sessions?limit={limit}{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let res = app.get(&path).await;
        assert_eq!(res.status, StatusCode::OK, "{path}: {}", res.text());
        let page = res.json();
        let got = ids(&page);
        assert!(got.len() <= limit);
        all.extend(got);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return all,
        }
    }
}

fn assert_bad(res: &TestResponse, text: &str) {
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    assert_eq!(res.header("content-type"), Some("application/json"));
    assert!(
        res.error().contains(text),
        "{:?} lacks {text:?}",
        res.error()
    );
}

#[actix_rt::test]
async fn a_listed_session_carries_its_row_and_counters() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let item = session_with(&app, "shape", "alice@example.com", 3).await;
        assert_eq!(item["harness_id"], "claude");
        assert_eq!(item["harness_session_id"], "shape");
        assert_eq!(item["auth_subject"], "alice@example.com");
        assert_eq!(item["turn_count"], 3);
        // Fixture turns use 100 + n input and 10 + n output tokens.
        assert_eq!(item["total_input_tokens"], 303);
        assert_eq!(item["total_output_tokens"], 33);
        assert_eq!(item["total_tokens"], 336);
        assert!(item["total_cost_usd"].as_f64().expect("cost") > 0.0);
        assert!(item["harness_metadata"].is_object());
        assert!(Uuid::try_parse(item["id"].as_str().unwrap()).is_ok());
        assert!(item["started_at"].as_str().unwrap() <= item["last_seen_at"].as_str().unwrap());
        assert!(item.get("parent_session_id").is_none());

        let res = app.get("/v1/sessions").await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        let page = res.json();
        assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
        assert_eq!(page["items"][0], item);
        assert!(page.get("next_cursor").is_none(), "{page}");
        app.stop().await;
    })
    .await;
}

/// Every sort and direction, paged two at a time, gives the order of the whole list, which
/// is the order of the sort key then the id.
#[actix_rt::test]
async fn every_sort_pages_in_key_order() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        // Turn counts 1, 2, 2, 3, 1: ties in every counter.
        for (i, turns) in [1, 2, 2, 3, 1].into_iter().enumerate() {
            session_with(&app, &format!("sort-{i}"), "alice@example.com", turns).await;
        }
        let res = app.get("/v1/sessions?limit=200").await;
        let all = res.json()["items"].as_array().cloned().expect("items");
        assert_eq!(all.len(), 5);
        for sort in [
            "last_seen_at",
            "started_at",
            "turn_count",
            "total_cost_usd",
            "total_tokens",
        ] {
            for direction in ["asc", "desc"] {
                let mut expected = all.clone();
                expected.sort_by(|a, b| {
                    let key = |s: &Value| match &s[sort] {
                        Value::String(t) => chrono::DateTime::parse_from_rfc3339(t)
                            .unwrap()
                            .timestamp_micros() as f64,
                        n => n.as_f64().unwrap(),
                    };
                    let id = |s: &Value| Uuid::parse_str(s["id"].as_str().unwrap()).unwrap();
                    key(a).partial_cmp(&key(b)).unwrap().then(id(a).cmp(&id(b)))
                });
                if direction == "desc" {
                    expected.reverse();
                }
                let expected: Vec<String> = expected
                    .iter()
                    .map(|s| s["id"].as_str().unwrap().to_owned())
                    .collect();
                let got = walk(&app, &format!("&sort={sort}&direction={direction}"), 2).await;
                assert_eq!(got, expected, "sort={sort} direction={direction}");
            }
        }
        // The default is the most recently active first.
        let default = walk(&app, "", 2).await;
        assert_eq!(
            default,
            walk(&app, "&sort=last_seen_at&direction=desc", 2).await
        );
        app.stop().await;
    })
    .await;
}

/// Sessions created while a client pages through the list never make it see a session twice
/// or miss one that existed when it started.
#[actix_rt::test]
async fn pages_stay_stable_while_sessions_arrive() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let mut before = HashSet::new();
        for i in 0..9 {
            let s = session_with(&app, &format!("stable-{i}"), "alice@example.com", 1).await;
            before.insert(s["id"].as_str().unwrap().to_owned());
        }
        for query in ["", "&sort=started_at&direction=asc", "&sort=turn_count"] {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            let mut n = 0;
            loop {
                // While the first pages are read, two new sessions land between every two
                // pages, one of them while the page is being read. (Arrivals stop later so
                // that an ascending walk, which they extend, ends.)
                let arriving = n < 5;
                let inflight = arriving.then(|| {
                    let conv = Conversation::claude(&format!("arrival{query}-{n}"));
                    app.post_in_background("/v1/ingest", &conv.turn(0))
                });
                let mut path = format!("/v1/sessions?limit=2{query}");
                if let Some(c) = &cursor {
                    path.push_str(&format!("&cursor={c}"));
                }
                let res = app.get(&path).await;
                assert_eq!(res.status, StatusCode::OK, "{}", res.text());
                let page = res.json();
                seen.extend(ids(&page));
                if let Some(inflight) = inflight {
                    assert_eq!(inflight.await.expect("joins").status, StatusCode::ACCEPTED);
                    let res = app
                        .ingest(&Conversation::claude(&format!("arrival{query}-{n}b")).turn(0))
                        .await;
                    assert_eq!(res.status, StatusCode::ACCEPTED);
                }
                n += 1;
                match page["next_cursor"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => break,
                }
                assert!(n < 100, "the walk never ends");
            }
            let unique: HashSet<_> = seen.iter().cloned().collect();
            assert_eq!(
                unique.len(),
                seen.len(),
                "{query}: a session was listed twice"
            );
            assert!(
                before.is_subset(&unique),
                "{query}: a session that existed before was skipped"
            );
        }
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn filters_by_harness_ids_subject_and_activity() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let a = session_with(&app, "filter-a", "alice@example.com", 1).await;
        let start = chrono::Utc::now();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let b = session_with(&app, "filter-b", "bob@example.com", 2).await;
        let c = session_with(&app, "filter-c", "bob@example.com", 1).await;

        let res = app
            .get("/v1/sessions?harness_id=claude&harness_session_id=filter-b")
            .await;
        assert_eq!(ids(&res.json()), vec![b["id"].as_str().unwrap()]);
        assert!(res.json().get("next_cursor").is_none());
        let res = app
            .get("/v1/sessions?harness_id=codex&harness_session_id=filter-b")
            .await;
        assert_eq!(res.status, StatusCode::OK);
        assert!(ids(&res.json()).is_empty());
        let res = app
            .get("/v1/sessions?harness_id=claude&harness_session_id=filter-b&auth_subject=alice@example.com")
            .await;
        assert!(ids(&res.json()).is_empty(), "{}", res.text());

        let res = app.get("/v1/sessions?auth_subject=bob@example.com").await;
        let got: HashSet<String> = ids(&res.json()).into_iter().collect();
        let want: HashSet<String> = [&b, &c]
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(got, want);
        let res = app.get("/v1/sessions?auth_subject=nobody").await;
        assert!(ids(&res.json()).is_empty());

        let since = start.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let res = app
            .get(&format!("/v1/sessions?since={}", since.replace('+', "%2B")))
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        let got: HashSet<String> = ids(&res.json()).into_iter().collect();
        assert_eq!(got, want, "since keeps the sessions active from then on");
        let res = app.get(&format!("/v1/sessions?until={since}")).await;
        assert_eq!(ids(&res.json()), vec![a["id"].as_str().unwrap()]);
        // until is exclusive, since inclusive: a session's own last activity bounds it.
        let last = a["last_seen_at"].as_str().unwrap();
        let res = app.get(&format!("/v1/sessions?until={last}")).await;
        assert!(!ids(&res.json()).contains(&a["id"].as_str().unwrap().to_owned()));
        let res = app
            .get(&format!("/v1/sessions?since={last}&until={since}"))
            .await;
        assert_eq!(ids(&res.json()), vec![a["id"].as_str().unwrap()]);
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn bad_parameters_answer_400_with_the_reason() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let s = session_with(&app, "bad", "alice@example.com", 1).await;
        session_with(&app, "bad-2", "alice@example.com", 1).await;
        let id = s["id"].as_str().unwrap();
        let res = app.get("/v1/sessions?limit=1&sort=turn_count").await;
        let cursor = res.json()["next_cursor"].as_str().expect("a cursor").to_owned();
        for (path, text) in [
            ("/v1/sessions?limit=0".to_owned(), "invalid limit: must be an integer from 1 to 200"),
            ("/v1/sessions?limit=201".to_owned(), "invalid limit"),
            ("/v1/sessions?limit=ten".to_owned(), "invalid limit"),
            ("/v1/sessions?sort=name".to_owned(), "invalid sort: must be one of last_seen_at, started_at, turn_count, total_cost_usd, total_tokens"),
            ("/v1/sessions?direction=up".to_owned(), "invalid direction: must be asc or desc"),
            ("/v1/sessions?since=yesterday".to_owned(), "invalid since: must be an RFC 3339 timestamp"),
            ("/v1/sessions?until=2026-13-01T00:00:00Z".to_owned(), "invalid until"),
            ("/v1/sessions?cursor=%21%21".to_owned(), "invalid cursor: not a cursor this server issued"),
            ("/v1/sessions?cursor=e30".to_owned(), "invalid cursor"),
            (format!("/v1/sessions?cursor={cursor}"), "invalid cursor: issued for sort=turn_count direction=desc, not sort=last_seen_at direction=desc"),
            (format!("/v1/sessions?sort=turn_count&direction=asc&cursor={cursor}"), "invalid cursor: issued for"),
            ("/v1/sessions?harness_id=claude".to_owned(), "harness_id and harness_session_id must be given together"),
            ("/v1/sessions?harness_session_id=bad".to_owned(), "must be given together"),
            ("/v1/sessions?harness_id=claude&harness_session_id=bad&sort=turn_count&since=2026-01-01T00:00:00Z".to_owned(), "sort, since cannot be combined with harness_id and harness_session_id"),
            ("/v1/sessions?limit=1&limit=2".to_owned(), "invalid query"),
            ("/v1/sessions/not-a-uuid".to_owned(), "invalid session id \"not-a-uuid\""),
            ("/v1/sessions/not-a-uuid/turns".to_owned(), "invalid session id"),
            (format!("/v1/sessions/{id}/turns?limit=0"), "invalid limit"),
            (format!("/v1/sessions/{id}/turns?cursor=xyz"), "invalid cursor"),
            (format!("/v1/sessions/{id}/transcript?head=abc"), "invalid head: must be a node hash (64 lowercase hex characters)"),
            (format!("/v1/sessions/{id}/transcript?head={}", "A".repeat(64)), "invalid head"),
        ] {
            assert_bad(&app.get(&path).await, text);
        }
        // A forged cursor of the right order but a key of the wrong type.
        let forged = base64_url(&json!({"sort": "turn_count", "dir": "desc", "key": "x", "id": id}));
        assert_bad(
            &app.get(&format!("/v1/sessions?sort=turn_count&cursor={forged}")).await,
            "invalid cursor: malformed position",
        );
        // A turns cursor naming a hash no column can hold is only a position: no turn after.
        let forged = base64_url(&json!({"at": "2020-01-01T00:00:00Z", "hash": "\u{0}"}));
        let res = app.get(&format!("/v1/sessions/{id}/turns?cursor={forged}")).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        assert_eq!(res.json()["items"].as_array().map(Vec::len), Some(1));
        let forged = base64_url(&json!({"sort": "total_cost_usd", "dir": "desc", "key": "1e999", "id": id}));
        assert_bad(
            &app.get(&format!("/v1/sessions?sort=total_cost_usd&cursor={forged}")).await,
            "invalid cursor: malformed position",
        );
        app.stop().await;
    })
    .await;
}

fn base64_url(value: &Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

#[actix_rt::test]
async fn one_session_shows_its_fork_parent_and_children() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let parent = session_with(&app, "family-parent", "alice@example.com", 1).await;
        let mut children = Vec::new();
        for name in ["family-child-1", "family-child-2"] {
            let mut session = envelope(name);
            session["parent_harness_session_id"] = json!("family-parent");
            let res = app
                .ingest(&Conversation::new(name, Some(session)).turn(0))
                .await;
            assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
            children.push(lookup(&app, name).await);
        }
        let parent_id = parent["id"].as_str().unwrap();

        let res = app.get(&format!("/v1/sessions/{parent_id}")).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        let body = res.json();
        assert_eq!(body["session"]["id"], parent_id);
        assert_eq!(body["session"]["turn_count"], 1);
        assert!(body.get("parent").is_none());
        assert_eq!(body["children"].as_array().map(Vec::len), Some(2));
        assert_eq!(body["children"][0], children[0]);
        assert_eq!(body["children"][1], children[1]);

        let child_id = children[0]["id"].as_str().unwrap();
        let res = app.get(&format!("/v1/sessions/{child_id}")).await;
        let body = res.json();
        assert_eq!(body["session"]["parent_session_id"], parent_id);
        assert_eq!(body["parent"]["id"], parent_id);
        assert_eq!(body["children"], json!([]));

        let missing = Uuid::now_v7();
        let res = app.get(&format!("/v1/sessions/{missing}")).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND);
        assert_eq!(res.error(), format!("no session {missing}"));
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn turns_list_each_head_in_order_with_usage_and_cost() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let conv = Conversation::claude("turns");
        let mut heads = Vec::new();
        for n in 0..3 {
            let res = app.ingest(&conv.turn(n)).await;
            assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
            heads.push(res.json()["head"].as_str().unwrap().to_owned());
        }
        // A duplicate turn is not a new turn.
        assert_eq!(app.ingest(&conv.turn(2)).await.status, StatusCode::ACCEPTED);
        let id = lookup(&app, "turns").await["id"]
            .as_str()
            .unwrap()
            .to_owned();

        let res = app.get(&format!("/v1/sessions/{id}/turns")).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        let body = res.json();
        let items = body["items"].as_array().expect("items");
        assert_eq!(items.len(), 3);
        assert!(body.get("next_cursor").is_none());
        for (n, turn) in items.iter().enumerate() {
            assert_eq!(turn["hash"], heads[n].as_str());
            assert_eq!(turn["model"], MODEL);
            assert_eq!(turn["provider"], "anthropic");
            assert_eq!(turn["stop_reason"], "end_turn");
            assert_eq!(turn["prompt_tokens"], 100 + n as i64);
            assert_eq!(turn["completion_tokens"], 10 + n as i64);
            assert_eq!(turn["total_tokens"], 110 + 2 * n as i64);
            assert!(turn["cost_usd"].as_f64().unwrap() > 0.0, "{turn}");
            assert!(turn["created_at"].is_string());
        }
        let cost: f64 = items.iter().map(|t| t["cost_usd"].as_f64().unwrap()).sum();
        let session = lookup(&app, "turns").await;
        let total = session["total_cost_usd"].as_f64().unwrap();
        assert!((cost - total).abs() < 1e-4, "{cost} vs {total}");

        let res = app.get(&format!("/v1/sessions/{id}/turns?limit=2")).await;
        let page = res.json();
        assert_eq!(page["items"].as_array().map(Vec::len), Some(2));
        let cursor = page["next_cursor"].as_str().expect("more turns");
        let res = app
            .get(&format!("/v1/sessions/{id}/turns?limit=2&cursor={cursor}"))
            .await;
        let page = res.json();
        assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
        assert_eq!(page["items"][0]["hash"], heads[2].as_str());
        assert!(page.get("next_cursor").is_none());
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn a_transcript_runs_from_the_root_to_the_latest_head_or_the_named_one() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let conv = Conversation::claude("transcript");
        let mut heads = Vec::new();
        for n in 0..3 {
            let res = app.ingest(&conv.turn(n)).await;
            assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
            heads.push(res.json()["head"].as_str().unwrap().to_owned());
        }
        let id = lookup(&app, "transcript").await["id"]
            .as_str()
            .unwrap()
            .to_owned();

        let res = app.get(&format!("/v1/sessions/{id}/transcript")).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        let body = res.json();
        assert_eq!(body["session_id"], id.as_str());
        assert_eq!(body["head"], heads[2].as_str());
        let messages = body["messages"].as_array().expect("messages");
        assert_eq!(
            messages.len(),
            6,
            "three request messages and three responses"
        );
        for (i, m) in messages.iter().enumerate() {
            let (role, text) = if i % 2 == 0 {
                ("user", conv.question(i / 2))
            } else {
                ("assistant", conv.answer(i / 2))
            };
            assert_eq!(m["role"], role);
            assert_eq!(m["content"][0]["text"], text.as_str(), "{m}");
            assert_eq!(m["hash"].as_str().map(str::len), Some(64));
        }
        assert_eq!(messages[5]["hash"], heads[2].as_str());
        assert_eq!(messages[5]["model"], MODEL);

        // Another branch: turn 1 asked again with a different answer, stored later.
        let mut branch = conv.turn(1);
        branch["response"]["message"]["content"][0]["text"] = json!("a different answer");
        let res = app.ingest(&branch).await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
        let branch_head = res.json()["head"].as_str().unwrap().to_owned();
        let res = app.get(&format!("/v1/sessions/{id}/transcript")).await;
        let body = res.json();
        assert_eq!(body["head"], branch_head.as_str(), "the latest head");
        assert_eq!(body["messages"].as_array().map(Vec::len), Some(4));
        let res = app
            .get(&format!("/v1/sessions/{id}/transcript?head={}", heads[2]))
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        assert_eq!(res.json()["messages"].as_array().map(Vec::len), Some(6));
        let res = app
            .get(&format!("/v1/sessions/{id}/transcript?head={}", heads[0]))
            .await;
        assert_eq!(res.json()["messages"].as_array().map(Vec::len), Some(2));

        // A node of another session, or none, is not this session's.
        let other = Conversation::claude("transcript-other");
        let res = app.ingest(&other.turn(0)).await;
        let foreign = res.json()["head"].as_str().unwrap().to_owned();
        let res = app
            .get(&format!("/v1/sessions/{id}/transcript?head={foreign}"))
            .await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.text());
        assert_eq!(res.error(), format!("no node {foreign} in session {id}"));
        app.stop().await;
    })
    .await;
}

async fn key(app: &TestApp, org: Uuid) -> CreatedKey {
    store::create_key(&app.db().await, org, None, None)
        .await
        .expect("create key")
}

async fn get_as(app: &TestApp, key: &CreatedKey, path: &str) -> TestResponse {
    let auth = format!("Bearer {}", key.secret.expose());
    app.get_with(path, &[("authorization", &auth)]).await
}

/// With keys, B's key never sees A's sessions: not listed, not by natural key, and by id a
/// 404 on every route, exactly as for an id that does not exist.
#[actix_rt::test]
async fn one_orgs_key_never_reads_anothers_sessions() {
    each_backend(|db| async move {
        let app = TestApp::spawn_with(&db, |c| c.auth.mode = AuthMode::Keys).await;
        let (org_a, org_b) = (Uuid::from_u128(0xa), Uuid::from_u128(0xb));
        let a = key(&app, org_a).await;
        let b = key(&app, org_b).await;
        let conv = Conversation::claude("isolated");
        let auth = format!("Bearer {}", a.secret.expose());
        let res = app
            .post_raw(
                "/v1/ingest",
                &[
                    ("content-type", "application/json"),
                    ("authorization", &auth),
                ],
                serde_json::to_vec(&conv.turn(0)).unwrap(),
            )
            .await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
        let head = res.json()["head"].as_str().unwrap().to_owned();

        let res = get_as(&app, &a, "/v1/sessions").await;
        let listed = ids(&res.json());
        assert_eq!(listed.len(), 1, "{}", res.text());
        let id = listed[0].clone();
        let res = get_as(&app, &b, "/v1/sessions").await;
        assert_eq!(res.status, StatusCode::OK);
        assert!(ids(&res.json()).is_empty(), "{}", res.text());
        let lookup = "/v1/sessions?harness_id=claude&harness_session_id=isolated";
        assert_eq!(
            ids(&get_as(&app, &a, lookup).await.json()),
            vec![id.clone()]
        );
        assert!(ids(&get_as(&app, &b, lookup).await.json()).is_empty());

        for path in [
            format!("/v1/sessions/{id}"),
            format!("/v1/sessions/{id}/turns"),
            format!("/v1/sessions/{id}/transcript"),
            format!("/v1/sessions/{id}/transcript?head={head}"),
        ] {
            assert_eq!(
                get_as(&app, &a, &path).await.status,
                StatusCode::OK,
                "{path}"
            );
            let res = get_as(&app, &b, &path).await;
            assert_eq!(res.status, StatusCode::NOT_FOUND, "{path}: {}", res.text());
            assert_eq!(res.error(), format!("no session {id}"));
            assert!(!res.text().contains("question"));
        }
        // Naming A's org with B's key is refused; no key at all is 401.
        let auth_b = format!("Bearer {}", b.secret.expose());
        let res = app
            .get_with(
                "/v1/sessions",
                &[
                    ("authorization", &auth_b),
                    ("x-tapes-org-id", &org_a.to_string()),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
        assert_eq!(
            app.get("/v1/sessions").await.status,
            StatusCode::UNAUTHORIZED
        );
        app.stop().await;
    })
    .await;
}

/// Without keys the org is the one `X-Tapes-Org-Id` names, the "no org" sentinel without it.
#[actix_rt::test]
async fn without_keys_the_header_names_the_org() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let org = "22222222-2222-2222-2222-222222222222";
        let mut session = envelope("header-org");
        session["org_id"] = json!(org);
        let res = app
            .ingest(&Conversation::new("header-org", Some(session)).turn(0))
            .await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
        session_with(&app, "sentinel-org", "alice@example.com", 1).await;

        let res = app
            .get_with("/v1/sessions", &[("x-tapes-org-id", org)])
            .await;
        let items = res.json()["items"].as_array().cloned().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["harness_session_id"], "header-org");
        let id = items[0]["id"].as_str().unwrap().to_owned();
        let res = app.get("/v1/sessions").await;
        let items = res.json()["items"].as_array().cloned().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["harness_session_id"], "sentinel-org");
        assert_eq!(
            app.get(&format!("/v1/sessions/{id}")).await.status,
            StatusCode::NOT_FOUND
        );
        let res = app
            .get_with("/v1/sessions", &[("x-tapes-org-id", "nope")])
            .await;
        assert_bad(&res, "invalid X-Tapes-Org-Id");
        app.stop().await;
    })
    .await;
}
