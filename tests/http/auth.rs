//! Tenancy from credentials (docs/divergences.md#org-from-the-credential): in `keys` mode
//! every ingest and read route needs an API key, the org is the key's, another org named in
//! a body, query or header is refused, and one org's flood does not refuse another's turns.

use std::time::Duration;

use actix_web::http::StatusCode;
use entity::api_keys;
use reel::app::Application;
use reel::config::{AuthMode, Config};
use reel::store::{self, CreatedKey};
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::backpressure::WriteLock;
use crate::child::{ReelProcess, run_cli};
use crate::fixtures::Conversation;
use crate::harness::{TestApp, TestResponse, metric, read, test_config};
use crate::rows;
use crate::support::{TestDb, each_backend};

const ORG_A: Uuid = Uuid::from_u128(0xaaaa);
const ORG_B: Uuid = Uuid::from_u128(0xbbbb);

async fn keyed(db: &TestDb, tweak: impl FnOnce(&mut Config)) -> TestApp {
    TestApp::spawn_with(db, |c| {
        c.auth.mode = AuthMode::Keys;
        tweak(c);
    })
    .await
}

async fn key(app: &TestApp, org: Uuid) -> CreatedKey {
    store::create_key(&app.db().await, org, None, None)
        .await
        .expect("create key")
}

fn bearer(key: &CreatedKey) -> String {
    format!("Bearer {}", key.secret.expose())
}

async fn post_as(app: &TestApp, key: &CreatedKey, path: &str, body: &Value) -> TestResponse {
    let auth = bearer(key);
    app.post_raw(
        path,
        &[
            ("content-type", "application/json"),
            ("authorization", &auth),
        ],
        serde_json::to_vec(body).expect("serialisable"),
    )
    .await
}

fn post_as_in_background(
    app: &TestApp,
    key: &CreatedKey,
    body: &Value,
) -> actix_rt::task::JoinHandle<TestResponse> {
    let req = app
        .client
        .post(app.url("/v1/ingest"))
        .insert_header(("content-type", "application/json"))
        .insert_header(("authorization", bearer(key)));
    let body = serde_json::to_vec(body).expect("serialisable");
    actix_rt::spawn(async move { read(req.send_body(body).await.expect("POST succeeds")).await })
}

async fn get_as(
    app: &TestApp,
    key: &CreatedKey,
    path: &str,
    extra: &[(&str, &str)],
) -> TestResponse {
    let auth = bearer(key);
    let mut headers = vec![("authorization", auth.as_str())];
    headers.extend_from_slice(extra);
    app.get_with(path, &headers).await
}

fn naming(conv: &Conversation, n: usize, org: Uuid) -> Value {
    let mut turn = conv.turn(n);
    turn["session"]["org_id"] = json!(org.to_string());
    turn
}

fn assert_unauthorized(res: &TestResponse, why: &str) {
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
    assert_eq!(res.header("www-authenticate"), Some("Bearer"));
    assert_eq!(res.error(), format!("unauthorized: {why}"));
}

/// Every stored row, as text, for checking that no secret reached the database.
async fn dump(app: &TestApp) -> String {
    let db = app.db().await;
    let keys = api_keys::Entity::find().all(&db).await.expect("read keys");
    format!(
        "{:?}{:?}{keys:?}",
        rows::all_nodes(&db).await,
        rows::all_sessions(&db).await
    )
}

#[actix_rt::test]
async fn without_a_valid_key_every_tenant_route_answers_401() {
    each_backend(|db| async move {
        let app = keyed(&db, |_| {}).await;
        let turn = Conversation::claude("nokey").turn(0);
        assert_unauthorized(&app.ingest(&turn).await, "missing API key");
        assert_unauthorized(
            &app.batch(std::slice::from_ref(&turn)).await,
            "missing API key",
        );
        assert_unauthorized(&app.get("/v1/ingest/nodes").await, "missing API key");
        assert_unauthorized(
            &app.get("/v1/nodes/abc/conversation").await,
            "missing API key",
        );
        let made_up = "reel_00000000_".to_owned() + &"0".repeat(64);
        let res = app
            .get_with("/v1/ingest/nodes", &[("x-api-key", &made_up)])
            .await;
        assert_unauthorized(&res, "unknown API key");
        let res = app
            .get_with(
                "/v1/ingest/nodes",
                &[("authorization", "Basic Zm9vOmJhcg==")],
            )
            .await;
        assert_unauthorized(&res, "missing API key");
        // Health and metrics stay open.
        assert_eq!(app.get("/ping").await.status, StatusCode::OK);
        let metrics = app.metrics().await;
        assert!(!metrics.contains(&made_up));
        assert!(rows::all_nodes(&app.db().await).await.is_empty());
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn a_key_writes_only_as_its_own_org() {
    each_backend(|db| async move {
        let app = keyed(&db, |_| {}).await;
        let a = key(&app, ORG_A).await;
        let b = key(&app, ORG_B).await;
        let conv = Conversation::claude("tenant");

        // B's key naming org A: refused, nothing written.
        let res = post_as(&app, &b, "/v1/ingest", &naming(&conv, 0, ORG_A)).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
        assert!(res.error().starts_with("forbidden: "), "{}", res.text());
        let batch = json!({"turns": [conv.turn(0), naming(&conv, 1, ORG_A)]});
        let res = post_as(&app, &b, "/v1/ingest/batch", &batch).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
        let db_conn = app.db().await;
        assert!(
            rows::all_nodes(&db_conn).await.is_empty(),
            "{:?}",
            db.backend
        );
        assert!(rows::all_sessions(&db_conn).await.is_empty());

        // No org, or the key's own: stored as the key's org.
        let res = post_as(&app, &a, "/v1/ingest", &conv.turn(0)).await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
        let res = post_as(&app, &a, "/v1/ingest", &naming(&conv, 1, ORG_A)).await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
        // X-Api-Key works as well as Authorization.
        let res = app
            .post_raw(
                "/v1/ingest/batch",
                &[
                    ("content-type", "application/json"),
                    ("x-api-key", b.secret.expose()),
                ],
                serde_json::to_vec(&json!({"turns": [conv.turn(0)]})).unwrap(),
            )
            .await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
        assert_eq!(res.json()["accepted"], 1);

        let sessions = rows::all_sessions(&db_conn).await;
        let mut orgs: Vec<Uuid> = sessions.iter().map(|s| s.org_id).collect();
        orgs.sort();
        assert_eq!(orgs, [ORG_A, ORG_B], "{:?}", db.backend);
        assert!(
            rows::all_nodes(&db_conn)
                .await
                .iter()
                .all(|n| n.org_id == ORG_A || n.org_id == ORG_B)
        );

        let stored = dump(&app).await;
        for k in [&a, &b] {
            let secret = k.secret.expose();
            assert!(!stored.contains(secret), "{:?}: secret stored", db.backend);
            assert!(!stored.contains(&secret[14..]));
        }
        assert!(!app.metrics().await.contains(a.secret.expose()));
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn another_orgs_data_cannot_be_read() {
    each_backend(|db| async move {
        let app = keyed(&db, |_| {}).await;
        let a = key(&app, ORG_A).await;
        let b = key(&app, ORG_B).await;
        let res = post_as(
            &app,
            &a,
            "/v1/ingest",
            &Conversation::claude("secret").turn(0),
        )
        .await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
        let head = res.json()["head"].as_str().unwrap().to_owned();

        let res = get_as(&app, &a, "/v1/ingest/nodes", &[]).await;
        assert_eq!(res.json()["count"], 2, "{}", res.text());
        let res = get_as(&app, &b, "/v1/ingest/nodes", &[]).await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(res.json()["count"], 0, "{:?}: {}", db.backend, res.text());
        let named = format!("/v1/ingest/nodes?org_id={ORG_A}");
        let res = get_as(&app, &b, &named, &[]).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
        let org_a = ORG_A.to_string();
        let res = get_as(&app, &b, "/v1/ingest/nodes", &[("x-tapes-org-id", &org_a)]).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());

        let path = format!("/v1/nodes/{head}/conversation");
        let res = get_as(&app, &a, &path, &[]).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        let res = get_as(&app, &b, &path, &[]).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.text());
        assert!(!res.text().contains("secret: question"));
        let res = get_as(&app, &b, &path, &[("x-tapes-org-id", &org_a)]).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
        assert!(!res.text().contains("secret: question"));
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn revoked_and_expired_keys_answer_401() {
    each_backend(|db| async move {
        let app = keyed(&db, |c| c.auth.cache_ttl_secs = 1).await;
        let a = key(&app, ORG_A).await;
        let conv = Conversation::claude("revoked");
        let res = post_as(&app, &a, "/v1/ingest", &conv.turn(0)).await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());

        assert!(
            store::revoke_key(&app.db().await, &a.key.prefix)
                .await
                .unwrap()
        );
        actix_rt::time::sleep(Duration::from_millis(1200)).await;
        let res = post_as(&app, &a, "/v1/ingest", &conv.turn(1)).await;
        assert_unauthorized(&res, "API key revoked");
        assert!(!res.text().contains(a.secret.expose()));

        let past = chrono::Utc::now() - chrono::Duration::seconds(1);
        let old = store::create_key(&app.db().await, ORG_A, None, Some(past))
            .await
            .unwrap();
        let res = post_as(&app, &old, "/v1/ingest", &conv.turn(1)).await;
        assert_unauthorized(&res, "API key expired");

        // The use before the revocation was recorded (off the request path).
        let stored = store::find_key(&app.db().await, a.secret.hash())
            .await
            .unwrap()
            .unwrap();
        assert!(stored.last_used_at.is_some(), "{:?}", db.backend);
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn without_keys_a_non_loopback_server_refuses_to_start() {
    let db = TestDb::sqlite();
    let mut config = test_config(&db);
    config.server.listen = "0.0.0.0:0".to_owned();
    let err = Application::build(config.clone())
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("auth.mode"), "{err}");

    let mut allowed = config.clone();
    allowed.auth.allow_anonymous = true;
    assert!(Application::build(allowed).await.is_ok());
    let mut keys = config;
    keys.auth.mode = AuthMode::Keys;
    assert!(Application::build(keys).await.is_ok());
}

#[actix_rt::test]
async fn one_org_at_its_in_flight_limit_does_not_refuse_another() {
    each_backend(|db| async move {
        let app = keyed(&db, |c| c.auth.org_max_in_flight = 1).await;
        let a = key(&app, ORG_A).await;
        let b = key(&app, ORG_B).await;
        let lock = WriteLock::take(&app).await;
        let held = post_as_in_background(&app, &a, &Conversation::claude("a1").turn(0));
        app.wait_for_pending("a1", 1).await;

        let res = post_as(&app, &a, "/v1/ingest", &Conversation::claude("a2").turn(0)).await;
        assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.text());
        assert_eq!(res.error(), "overloaded: org has 1 turns in flight");
        // B is admitted: its commit waits for the same lock, but it is not refused.
        let other = post_as_in_background(&app, &b, &Conversation::claude("b1").turn(0));
        app.wait_for_pending("b1", 1).await;

        lock.release().await;
        assert_eq!(held.await.unwrap().status, StatusCode::ACCEPTED);
        let other = other.await.unwrap();
        assert_eq!(other.status, StatusCode::ACCEPTED, "{}", other.text());
        let text = app.metrics().await;
        assert_eq!(
            metric(&text, r#"reel_overloaded_total{reason="org_in_flight"}"#),
            1.0
        );
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn the_keys_cli_creates_lists_and_revokes() {
    each_backend(|db| async move {
        let url = db.url.as_str();
        let (ok, _, err) = run_cli(&["migrate", "--database-url", url]);
        assert!(ok, "{err}");
        let org = ORG_A.to_string();
        let (ok, out, err) = run_cli(&[
            "keys",
            "create",
            "--org",
            &org,
            "--label",
            "ci",
            "--expires",
            "30d",
            "--database-url",
            url,
        ]);
        assert!(ok, "{err}");
        let secret = out.lines().next().unwrap_or_default().to_owned();
        assert!(secret.starts_with("reel_"), "{out}");
        let prefix = secret.split('_').nth(1).unwrap_or_default().to_owned();
        assert_eq!(prefix.len(), 8);

        let (ok, out, err) = run_cli(&["keys", "list", "--database-url", url]);
        assert!(ok, "{err}");
        assert!(
            out.contains(&prefix) && out.contains("ci") && out.contains(&org),
            "{out}"
        );
        assert!(!out.contains(&secret), "list shows the secret");
        let (ok, out, _) = run_cli(&[
            "keys",
            "list",
            "--org",
            &ORG_B.to_string(),
            "--database-url",
            url,
        ]);
        assert!(ok && !out.contains(&prefix), "{out}");

        let (ok, _, err) = run_cli(&["keys", "revoke", &prefix, "--database-url", url]);
        assert!(ok, "{err}");
        let (ok, _, err) = run_cli(&["keys", "revoke", &prefix, "--database-url", url]);
        assert!(!ok && err.contains("no active key"), "{err}");
        let (_, out, _) = run_cli(&["keys", "list", "--database-url", url]);
        let line = out
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_default();
        assert!(!line.ends_with("\t-"), "revocation time listed: {line}");
        let (ok, _, err) = run_cli(&[
            "keys",
            "create",
            "--org",
            &org,
            "--expires",
            "soon",
            "--database-url",
            url,
        ]);
        assert!(!ok && err.contains("invalid expiry"), "{err}");
    })
    .await;
}

#[actix_rt::test]
async fn secrets_never_reach_the_server_log() {
    each_backend(|db| async move {
        let (ok, _, err) = run_cli(&["migrate", "--database-url", &db.url]);
        assert!(ok, "{err}");
        let conn = db.connect_raw().await;
        let good = store::create_key(&conn, ORG_A, None, None).await.unwrap();
        let revoked = store::create_key(&conn, ORG_A, None, None).await.unwrap();
        store::revoke_key(&conn, &revoked.key.prefix).await.unwrap();
        let unknown = format!("reel_12345678_{}", "ab".repeat(32));

        let mut reel = ReelProcess::start_with(
            &db.url,
            &[("REEL_AUTH_MODE", "keys"), ("REEL_LOG", "debug")],
        );
        let base = reel.url("");

        let client = crate::harness::client();
        let turn = serde_json::to_vec(&Conversation::claude("logged").turn(0)).unwrap();
        for (secret, want) in [
            (good.secret.expose(), StatusCode::ACCEPTED),
            (revoked.secret.expose(), StatusCode::UNAUTHORIZED),
            (unknown.as_str(), StatusCode::UNAUTHORIZED),
        ] {
            let res = client
                .post(format!("{base}/v1/ingest"))
                .insert_header(("content-type", "application/json"))
                .insert_header(("authorization", format!("Bearer {secret}")))
                .send_body(turn.clone())
                .await
                .expect("POST");
            let res = read(res).await;
            assert_eq!(res.status, want, "{}", res.text());
            assert!(!res.text().contains(secret));
        }
        reel.terminate();
        assert!(reel.wait(Duration::from_secs(60)).success());

        let log = reel.log();
        assert!(log.contains("request"), "the log was captured: {log}");
        for secret in [good.secret.expose(), revoked.secret.expose(), &unknown] {
            assert!(
                !log.contains(&secret[14..]),
                "{:?}: secret logged",
                db.backend
            );
        }
    })
    .await;
}
