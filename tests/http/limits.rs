//! The documented input bounds (docs/wire.md#limits): a value outside them is refused with
//! its own status and text, stores nothing, and never makes a later turn of the session fail.

use actix_web::http::StatusCode;
use entity::{nodes, sessions};
use reel::cost::{MAX_RATE, Rates};
use sea_orm::ConnectionTrait;
use sea_orm::prelude::Decimal;
use serde_json::{Value, json};

use crate::fixtures::Conversation;
use crate::harness::{TestApp, TestResponse};
use crate::rows;
use crate::support::each_backend;

/// Every row of the server's database.
pub async fn snapshot(app: &TestApp) -> (Vec<sessions::Model>, Vec<nodes::Model>) {
    let conn = app.db().await;
    let snapshot = (
        rows::all_sessions(&conn).await,
        rows::all_nodes(&conn).await,
    );
    conn.close().await.ok();
    snapshot
}

/// Sends `turn`, expects `status` with `error`, and that no row changed.
pub async fn refused(app: &TestApp, turn: &Value, status: StatusCode, error: &str) {
    let before = snapshot(app).await;
    let res = app.ingest(turn).await;
    assert_refused(&res, status, error);
    assert!(before == snapshot(app).await, "a refused turn changed rows");
}

pub fn assert_refused(res: &TestResponse, status: StatusCode, error: &str) {
    assert_eq!(res.status, status, "{}", res.text());
    assert_eq!(res.header("content-type"), Some("application/json"));
    assert_eq!(res.error(), error);
}

fn with_usage(mut turn: Value, usage: Value) -> Value {
    turn["response"]["usage"] = usage;
    turn
}

/// A stored cost as a double: SQLite keeps it as a REAL.
pub fn usd(cost: Decimal) -> f64 {
    cost.to_string().parse().expect("decimal")
}

fn counted(res: &TestResponse) -> uuid::Uuid {
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
    assert_eq!(res.json()["counted"], true, "{}", res.text());
    res.json()["session_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("session_id")
}

const MAX: i64 = 1_000_000_000;

#[actix_rt::test]
async fn token_counts_outside_the_range_are_422_and_never_poison_the_session() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let conv = Conversation::claude("tokens");
        // The largest valid counts (priced: claude-sonnet-4-5), then an ordinary turn.
        let big = json!({
            "prompt_tokens": MAX, "completion_tokens": MAX, "total_tokens": MAX,
            "cache_creation_input_tokens": MAX, "cache_read_input_tokens": MAX,
            "total_duration_ns": i64::MAX, "prompt_duration_ns": 0,
        });
        let session = counted(&app.ingest(&with_usage(conv.turn(0), big)).await);

        let prefix = "unprocessable turn: invalid reduced response: response.usage.";
        for (usage, error) in [
            (
                json!({"prompt_tokens": 9_223_372_036_854_775_802_i64}),
                format!(
                    "{prefix}prompt_tokens must be between 0 and 1000000000, got 9223372036854775802"
                ),
            ),
            (
                json!({"prompt_tokens": -1_000_000}),
                format!("{prefix}prompt_tokens must be between 0 and 1000000000, got -1000000"),
            ),
            (
                json!({"prompt_tokens": 40_000_000_000_000_i64}),
                format!(
                    "{prefix}prompt_tokens must be between 0 and 1000000000, got 40000000000000"
                ),
            ),
            (
                json!({"completion_tokens": MAX + 1}),
                format!(
                    "{prefix}completion_tokens must be between 0 and 1000000000, got 1000000001"
                ),
            ),
            (
                json!({"total_tokens": -1}),
                format!("{prefix}total_tokens must be between 0 and 1000000000, got -1"),
            ),
            (
                json!({"cache_creation_input_tokens": i64::MIN}),
                format!(
                    "{prefix}cache_creation_input_tokens must be between 0 and 1000000000, got {}",
                    i64::MIN
                ),
            ),
            (
                json!({"cache_read_input_tokens": MAX * 2}),
                format!(
                    "{prefix}cache_read_input_tokens must be between 0 and 1000000000, got 2000000000"
                ),
            ),
            (
                json!({"total_duration_ns": -1}),
                format!("{prefix}total_duration_ns must not be negative, got -1"),
            ),
            (
                json!({"prompt_duration_ns": -7}),
                format!("{prefix}prompt_duration_ns must not be negative, got -7"),
            ),
        ] {
            let turn = with_usage(conv.turn(1), usage);
            refused(&app, &turn, StatusCode::UNPROCESSABLE_ENTITY, &error).await;
        }

        // A later valid turn of the same session is accepted and counted.
        assert_eq!(counted(&app.ingest(&conv.turn(1)).await), session);
        let conn = app.db().await;
        let row = rows::session(&conn, session).await;
        assert_eq!(row.turn_count, 2);
        assert_eq!(row.total_input_tokens, MAX + 101);
        assert_eq!(row.total_output_tokens, MAX + 11);
        // 10^9 tokens each at 3 (input), 15 (output), 3.75 (cache write) and 0.30 (cache
        // read) USD per million, plus the small turn's 101 × 3 + 11 × 15 per million.
        assert_eq!(usd(row.total_cost_usd), 22050.0005);
        app.stop().await;
    }).await;
}

#[actix_rt::test]
async fn batch_turns_outside_the_bounds_are_rejected_alone() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let conv = Conversation::claude("batch-bounds");
        let bad = with_usage(conv.turn(1), json!({"prompt_tokens": -1}));
        let res = app.batch(&[conv.turn(0), bad]).await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
        let body = res.json();
        assert_eq!(
            (body["accepted"].clone(), body["rejected"].clone()),
            (json!(1), json!(1))
        );
        assert_eq!(
            body["results"][1]["error"],
            "unprocessable turn: invalid reduced response: response.usage.prompt_tokens must be between 0 and 1000000000, got -1"
        );
        app.stop().await;
    }).await;
}

#[actix_rt::test]
async fn indexed_node_text_is_bounded() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let conv = Conversation::claude("labels");
        let long = |n: usize| "x".repeat(n);

        let mut turn = conv.turn(0);
        turn["agent_name"] = json!(long(513));
        let text = "unprocessable turn: agent_name longer than 512 bytes";
        refused(&app, &turn, StatusCode::UNPROCESSABLE_ENTITY, text).await;

        let mut turn = conv.turn(0);
        turn["response"]["model"] = json!(long(4000));
        let text = "unprocessable turn: model longer than 512 bytes";
        refused(&app, &turn, StatusCode::UNPROCESSABLE_ENTITY, text).await;

        let mut turn = conv.turn(0);
        turn["request"]["model"] = json!(long(513));
        refused(&app, &turn, StatusCode::UNPROCESSABLE_ENTITY, text).await;

        let mut turn = conv.turn(0);
        turn["request"]["messages"][0]["role"] = json!(long(129));
        let text = "unprocessable turn: role longer than 128 bytes";
        refused(&app, &turn, StatusCode::UNPROCESSABLE_ENTITY, text).await;

        // At the bounds, with every byte stored as three (U+0000 becomes U+FFFD), the
        // indexes still hold them on Postgres.
        let mut turn = conv.turn(0);
        turn["agent_name"] = json!("\u{0}".repeat(512));
        turn["request"]["model"] = json!("\u{0}".repeat(512));
        turn["response"]["model"] = json!("\u{0}".repeat(512));
        turn["response"]["message"]["role"] = json!("\u{0}".repeat(128));
        counted(&app.ingest(&turn).await);
        counted(&app.ingest(&conv.turn(1)).await);
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn session_costs_past_the_reference_column_are_stored() {
    each_backend(|db| async move {
        // The most expensive price a table may hold: one dollar a token.
        let app = TestApp::spawn_with(&db, |c| {
            let rates = Rates {
                input: MAX_RATE,
                output: MAX_RATE,
                cache_read: None,
                cache_write: None,
            };
            c.pricing.insert("pricey".to_owned(), rates);
        })
        .await;
        let conv = Conversation::claude("pricey");
        let usage = json!({
            "prompt_tokens": MAX, "completion_tokens": MAX,
            "cache_creation_input_tokens": MAX, "cache_read_input_tokens": MAX,
        });
        let pricey = |n: usize| {
            let mut turn = with_usage(conv.turn(n), usage.clone());
            turn["response"]["model"] = json!("pricey");
            turn
        };
        // 4 × 10^9 USD a turn: the reference's NUMERIC(12,4) held less than 10^8.
        let session = counted(&app.ingest(&pricey(0)).await);
        assert_eq!(counted(&app.ingest(&pricey(1)).await), session);
        assert_eq!(counted(&app.ingest(&conv.turn(2)).await), session);
        let conn = app.db().await;
        let row = rows::session(&conn, session).await;
        assert_eq!(row.turn_count, 3);
        assert_eq!(usd(row.total_cost_usd), 8e9 + 0.0005);
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn counters_stop_at_the_largest_turn_count() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let conv = Conversation::claude("full");
        let session = counted(&app.ingest(&conv.turn(0)).await);
        let conn = app.db().await;
        conn.execute_unprepared("UPDATE sessions SET turn_count = 2147483647")
            .await
            .expect("fill the counter");
        let before = rows::session(&conn, session).await;

        // Stored and counted as a turn (its head is marked), but no counter moves.
        assert_eq!(counted(&app.ingest(&conv.turn(1)).await), session);
        let after = rows::session(&conn, session).await;
        assert_eq!(after.turn_count, i32::MAX);
        assert_eq!(after.total_input_tokens, before.total_input_tokens);
        assert_eq!(after.total_output_tokens, before.total_output_tokens);
        assert_eq!(after.total_cost_usd, before.total_cost_usd);
        assert_eq!(rows::node_count(&conn).await, 4);
        app.stop().await;
    })
    .await;
}

/// `turn` as JSON text with its session's `harness_metadata` an object nested `levels`
/// deep. Built as text: serde_json's values recurse to serialize and drop.
pub fn with_nested_metadata(turn: &Value, levels: usize) -> String {
    let mut turn = turn.clone();
    turn["session"]["harness_metadata"] = json!("@metadata@");
    let nested = format!("{}1{}", r#"{"a":"#.repeat(levels), "}".repeat(levels));
    turn.to_string().replace(r#""@metadata@""#, &nested)
}

/// Posts a JSON text body to `/v1/ingest`.
pub async fn ingest_text(app: &TestApp, body: String) -> TestResponse {
    app.post_raw("/v1/ingest", &[("content-type", "application/json")], body)
        .await
}

#[actix_rt::test]
async fn envelope_fields_have_byte_limits() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let conv = Conversation::claude("envelope-limits");
        counted(&app.ingest(&conv.turn(0)).await);
        let long = |n: usize| json!("x".repeat(n));
        for (field, value, limit) in [
            ("auth_subject", long(513), 512),
            ("harness_id", long(3000), 256),
            ("harness_session_id", long(3000), 512),
            ("harness_version", long(257), 256),
            ("cwd", long(4097), 4096),
            ("name", long(4097), 4096),
            ("parent_harness_session_id", long(3000), 512),
            ("parent_harness_id", long(257), 256),
            ("harness_metadata", json!({"k": "x".repeat(65536)}), 65536),
        ] {
            let mut turn = conv.turn(1);
            turn["session"][field] = value;
            let error = format!("invalid envelope: {field} longer than {limit} bytes");
            refused(&app, &turn, StatusCode::BAD_REQUEST, &error).await;
        }
        // The org id keeps the reference's check, which allows at most 45 bytes.
        let mut turn = conv.turn(1);
        turn["session"]["org_id"] = long(3000);
        let error = "invalid envelope: org_id is not a valid UUID: invalid UUID length: 3000";
        refused(&app, &turn, StatusCode::BAD_REQUEST, error).await;

        // At the limits, every byte a U+0000 stored as three bytes, the session's indexes
        // (natural key, auth subject) and its fork parent's still hold them on Postgres.
        let nul = |n: usize| json!("\u{0}".repeat(n));
        let mut turn = Conversation::new("nul-key", None).turn(0);
        turn["session"] = json!({
            "harness_id": nul(256), "harness_session_id": nul(512), "auth_subject": nul(512),
            "parent_harness_id": nul(255) , "parent_harness_session_id": nul(512),
            "harness_version": nul(256), "cwd": nul(4096), "name": nul(4096),
        });
        counted(&app.ingest(&turn).await);
        counted(&app.ingest(&conv.turn(1)).await);
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn metadata_nested_too_deep_is_400() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let conv = Conversation::claude("deep");
        for levels in [65, 127, 200, 10_000] {
            let before = snapshot(&app).await;
            let res = ingest_text(&app, with_nested_metadata(&conv.turn(0), levels)).await;
            let error = "invalid envelope: harness_metadata nested deeper than 64 levels";
            assert_refused(&res, StatusCode::BAD_REQUEST, error);
            assert!(
                before == snapshot(&app).await,
                "a refused turn changed rows"
            );
        }
        let res = ingest_text(&app, with_nested_metadata(&conv.turn(0), 64)).await;
        counted(&res);
        // Merged into the stored object by the next turn.
        let res = ingest_text(&app, with_nested_metadata(&conv.turn(1), 64)).await;
        counted(&res);
        app.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn metadata_numbers_out_of_range_are_400() {
    each_backend(|db| async move {
        let app = TestApp::spawn(&db).await;
        let mut turn = Conversation::claude("metadata-number").turn(0);
        turn["session"]["harness_metadata"] = json!("@metadata@");
        let body = turn
            .to_string()
            .replace(r#""@metadata@""#, r#"{"x":1e400}"#);
        let before = snapshot(&app).await;
        let res = ingest_text(&app, body).await;
        let error = "invalid envelope: harness_metadata: number out of range at line 1 column 10";
        assert_refused(&res, StatusCode::BAD_REQUEST, error);
        assert!(
            before == snapshot(&app).await,
            "a refused turn changed rows"
        );
        app.stop().await;
    })
    .await;
}
