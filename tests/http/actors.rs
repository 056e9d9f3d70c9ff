//! Session actor lifecycle seen from outside: idle stop, admin inspection and stop, and the
//! fresh actor that takes over a session afterwards.

use std::time::Duration;

use actix_web::http::StatusCode;

use crate::fixtures::Conversation;
use crate::harness::{TestApp, eventually, metric};
use crate::support::each_backend;

/// An idle actor stops and leaves the registry; the session's next turn starts a new one
/// and counts as usual.
#[actix_rt::test]
async fn idle_actors_stop_and_come_back() {
    each_backend(|db| async move {
        let app = TestApp::spawn_with(&db, |c| c.sessions.idle_timeout_secs = 1).await;
        let conv = Conversation::claude("idle");
        assert_eq!(app.ingest(&conv.turn(0)).await.status, StatusCode::ACCEPTED);
        assert_eq!(app.actors().await.len(), 1);
        let stopped = eventually(Duration::from_secs(5), || async {
            metric(&app.metrics().await, "reel_session_actors") == 0.0
        })
        .await;
        assert!(stopped, "the idle actor did not stop");
        assert!(app.actors().await.is_empty());

        let res = app.ingest(&conv.turn(1)).await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
        assert_eq!(res.json()["counted"], true);
        let text = app.metrics().await;
        assert_eq!(
            metric(&text, "reel_session_actor_spawns_total"),
            2.0,
            "{text}"
        );
        assert_eq!(
            metric(&text, r#"reel_session_actor_stops_total{reason="idle"}"#),
            1.0,
            "{text}"
        );
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn admin_lists_inspects_and_stops_live_actors() {
    each_backend(|db| async move {
        let token = ("authorization", "Bearer s3cret");
        let app = TestApp::spawn_with(&db, |c| c.admin.token = Some("s3cret".to_owned())).await;
        let conv = Conversation::claude("admin");
        let mut session_id = String::new();
        for n in 0..3 {
            let res = app.ingest(&conv.turn(n)).await;
            assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
            session_id = res.json()["session_id"].as_str().expect("id").to_owned();
        }

        let list = app.get_with("/admin/actors", &[token]).await.json();
        assert_eq!(list["count"], 1, "{list}");
        let actor = &list["actors"][0];
        assert_eq!(actor["session_id"], session_id.as_str());
        assert_eq!(actor["harness_id"], "claude");
        assert_eq!(actor["harness_session_id"], "admin");
        assert_eq!(actor["org_id"], uuid::Uuid::nil().to_string());
        assert_eq!(actor["turns_committed"], 3);
        assert_eq!(actor["turns_counted"], 3);
        assert_eq!(actor["nodes_known"], 6);
        assert_eq!(actor["pending"], 0);
        assert!(actor["last_commit_at"].is_string());
        assert!(actor["idle_for_ms"].is_u64());

        let path = format!("/admin/actors/{session_id}");
        assert_eq!(app.get(&path).await.status, StatusCode::UNAUTHORIZED);
        let one = app.get_with(&path, &[token]).await;
        assert_eq!(one.status, StatusCode::OK);
        assert_eq!(one.json()["turns_committed"], 3);

        let stop_path = format!("{path}/stop");
        assert_eq!(
            app.post_raw(&stop_path, &[], "").await.status,
            StatusCode::UNAUTHORIZED
        );
        let stopped = app.post_raw(&stop_path, &[token], "").await;
        assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.text());
        assert_eq!(stopped.json()["status"], "stopped");
        assert_eq!(stopped.json()["actor"]["turns_committed"], 3);
        assert_eq!(
            app.get_with("/admin/actors", &[token]).await.json()["count"],
            0
        );
        assert_eq!(
            app.get_with(&path, &[token]).await.status,
            StatusCode::NOT_FOUND
        );

        // The session goes on with a fresh actor, which still writes only new nodes.
        let res = app.ingest(&conv.turn(3)).await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
        assert_eq!(res.json()["counted"], true);
        assert_eq!(res.json()["new_nodes"], 2);
        let actor = app.get_with(&path, &[token]).await.json();
        assert_eq!(actor["turns_committed"], 1);
        let text = app.metrics().await;
        assert_eq!(
            metric(&text, r#"reel_session_actor_stops_total{reason="admin"}"#),
            1.0,
            "{text}"
        );
        app.stop().await;
    })
    .await;
}

/// A turn queued behind an admin stop finds its actor gone (`Closed`) and is resent, once,
/// to a fresh actor: it commits, nothing is lost or counted twice.
#[actix_rt::test]
async fn a_turn_queued_behind_a_stop_goes_to_a_fresh_actor() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let conv = Conversation::claude("handover");
        let first = app.ingest(&conv.turn(0)).await;
        assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text());
        let session_id = first.json()["session_id"].as_str().expect("id").to_owned();

        // Hold the actor inside a commit, queue a stop behind it, then a turn behind the stop.
        let lock = crate::backpressure::WriteLock::take(&app).await;
        let busy = app.post_in_background("/v1/ingest", &conv.turn(1));
        app.wait_for_pending("handover", 1).await;
        let stop = app.post_in_background(
            &format!("/admin/actors/{session_id}/stop"),
            &serde_json::json!({}),
        );
        app.wait_for_actor("handover", "had a stop queued", |a| a["stopping"] == true)
            .await;
        let queued = app.post_in_background("/v1/ingest", &conv.turn(2));
        app.wait_for_pending("handover", 2).await;
        lock.release().await;

        for res in [busy.await.expect("busy"), queued.await.expect("queued")] {
            assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
            assert_eq!(res.json()["counted"], true);
        }
        assert_eq!(stop.await.expect("stop").status, StatusCode::OK);
        let text = app.metrics().await;
        assert_eq!(
            metric(&text, "reel_session_actor_spawns_total"),
            2.0,
            "{text}"
        );
        assert_eq!(
            metric(&text, r#"reel_turns_total{outcome="counted"}"#),
            3.0,
            "{text}"
        );
        let conn = app.db().await;
        let row = crate::rows::session(&conn, session_id.parse().expect("uuid")).await;
        assert_eq!(row.turn_count, 3);
        app.stop().await;
    })
    .await;
}
