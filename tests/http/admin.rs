//! `/admin/actors`: listing, inspecting and stopping session actors, and who may.

use actix_web::http::StatusCode;

use crate::harness::TestApp;
use crate::support::each_backend;

#[actix_rt::test]
async fn admin_needs_the_configured_token() {
    each_backend(|db| async move {
        let app = TestApp::spawn_with(&db, |c| c.admin.token = Some("s3cret".to_owned())).await;
        let res = app.get("/admin/actors").await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        assert_eq!(res.header("www-authenticate"), Some("Bearer"));

        let res = app
            .get_with("/admin/actors", &[("authorization", "Bearer wrong")])
            .await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);

        let res = app
            .get_with("/admin/actors", &[("authorization", "Bearer s3cret")])
            .await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(res.json(), serde_json::json!({"count": 0, "actors": []}));
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn admin_without_a_token_is_open_on_loopback_only() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        assert_eq!(app.get("/admin/actors").await.status, StatusCode::OK);
        app.stop().await;

        // Listening on every interface without a token: refused (reached via loopback).
        let app = TestApp::spawn_with(&db, |c| {
            c.server.listen = "0.0.0.0:0".to_owned();
            c.auth.allow_anonymous = true;
        })
        .await;
        let res = app.get("/admin/actors").await;
        assert_eq!(res.status, StatusCode::FORBIDDEN);
        assert!(res.error().contains("no admin token"), "{}", res.text());
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn admin_rejects_bad_session_ids_and_unknown_sessions() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let res = app.get("/admin/actors/not-a-uuid").await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        let missing = uuid::Uuid::now_v7();
        let res = app.get(&format!("/admin/actors/{missing}")).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND);
        assert!(res.error().contains("no live actor"), "{}", res.text());
        let res = app
            .post_raw(&format!("/admin/actors/{missing}/stop"), &[], "")
            .await;
        assert_eq!(res.status, StatusCode::NOT_FOUND);
        app.stop().await;
    })
    .await;
}
