//! Raw turns written the way the ingest path writes them: a body decoded with its request
//! kept verbatim, run through the capture steps (`turn::intake`), then committed with its
//! nodes or quarantined with its error.
#![allow(dead_code)]

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, Utc};
use reel::capture::encoding::Unlimited;
use reel::cost::PriceBook;
use reel::store::{CommitOptions, Quarantined, RawKey, Rejected, Store};
use reel::turn::{Committed, Intake, RawStored, RawTurn, intake};
use reel::wire::decode_turn_verbatim;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::child::run_cli;
use crate::fixtures::MODEL;
use crate::support::TestDb;

pub const ORG_A: &str = "0192c6a4-0000-7000-8000-00000000000a";
pub const ORG_B: &str = "0192c6a4-0000-7000-8000-00000000000b";

pub fn org(text: &str) -> Uuid {
    Uuid::parse_str(text).expect("org uuid")
}

/// `days` days before now, at microsecond precision as raw turns keep it.
pub fn days_ago(days: i64) -> DateTime<Utc> {
    let at = Utc::now() - Duration::days(days);
    DateTime::from_timestamp_micros(at.timestamp_micros()).expect("in range")
}

/// A store over a migrated test database, and the shipped prices.
pub struct Captured {
    pub store: Store,
    pub db: DatabaseConnection,
    pub url: String,
    prices: PriceBook,
}

impl Captured {
    pub async fn open(test_db: &TestDb) -> Captured {
        let db = test_db.connect().await;
        Captured {
            store: Store::new(db.clone(), CommitOptions::default()),
            db,
            url: test_db.url.clone(),
            prices: PriceBook::with_overrides(&Default::default()).expect("prices"),
        }
    }

    /// Runs `reel args… --database-url <this database>`.
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let mut all = args.to_vec();
        all.extend(["--database-url", &self.url]);
        run_cli(&all)
    }

    /// The capture steps of `body`, received at `received_at`.
    pub fn intake(&self, body: &[u8], received_at: DateTime<Utc>) -> Intake {
        let (payload, _) = decode_turn_verbatim(body).expect("body decodes");
        payload.validate_session().expect("valid envelope");
        intake(
            payload,
            None,
            true,
            &self.prices,
            &mut Unlimited,
            received_at,
        )
        .expect("within budget")
    }

    /// Commits `body` as an accepted turn with its raw turn; returns the commit and the raw
    /// turn's id.
    pub async fn accept(&self, body: &[u8], received_at: DateTime<Utc>) -> (Committed, Uuid) {
        let intake = self.intake(body, received_at);
        let turn = intake.prepared.expect("the turn passes").turn;
        let committed = self.store.commit_turn(&turn).await.expect("commits");
        match committed.raw {
            Some(RawStored::Inserted(id)) => (committed, id),
            other => panic!("raw turn not inserted: {other:?}"),
        }
    }

    /// Quarantines `body` as a 422 of class `reason` in `org`, whether or not it passes
    /// today: one that passes stands for a turn a fixed parser now reads.
    pub async fn quarantine(
        &self,
        body: &[u8],
        received_at: DateTime<Utc>,
        org: Uuid,
        reason: &str,
    ) -> Uuid {
        let intake = self.intake(body, received_at);
        let (raw, error) = match intake.prepared {
            Ok(prepared) => {
                let raw = prepared.turn.raw.expect("raw kept");
                (
                    Arc::unwrap_or_clone(raw),
                    "unprocessable turn: cannot parse request: an old parser's defect".to_owned(),
                )
            }
            Err(rejection) => (
                intake.rejected_raw.expect("raw kept"),
                rejection.to_string(),
            ),
        };
        self.quarantine_raw(&raw, org, reason, &error).await
    }

    pub async fn quarantine_raw(
        &self,
        raw: &RawTurn,
        org: Uuid,
        reason: &str,
        error: &str,
    ) -> Uuid {
        let envelope: Option<Value> = raw
            .envelope
            .as_deref()
            .map(|e| serde_json::from_str(e).expect("envelope JSON"));
        let text = |key: &str| {
            envelope
                .as_ref()
                .and_then(|e| e[key].as_str())
                .map(str::to_owned)
        };
        let key = RawKey {
            org_id: org,
            harness_id: text("harness_id"),
            harness_session_id: text("harness_session_id"),
        };
        let rejected = Rejected {
            status: 422,
            reason: reason.to_owned(),
            error: error.to_owned(),
        };
        match self
            .store
            .quarantine(&key, raw, &rejected, 1 << 30)
            .await
            .expect("quarantine")
        {
            Quarantined::Stored(id) => id,
            other => panic!("not quarantined: {other:?}"),
        }
    }

    /// The bytes every org's quarantined raw turns hold.
    pub async fn quarantined_bytes(&self) -> i64 {
        // A Postgres SUM of BIGINT is NUMERIC.
        self.scalar("SELECT CAST(COALESCE(SUM(quarantined_bytes), 0) AS BIGINT) FROM raw_quota")
            .await
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        self.db
            .query_one_raw(Statement::from_string(self.db.get_database_backend(), sql))
            .await
            .expect("query")
            .expect("a row")
            .try_get_by_index::<i64>(0)
            .expect("an integer")
    }
}

/// A session envelope of harness `claude` in `org`.
pub fn envelope(org: &str, harness_session_id: &str) -> Value {
    json!({
        "org_id": org,
        "auth_subject": "alice@example.com",
        "harness_id": "claude",
        "harness_session_id": harness_session_id,
        "harness_metadata": {"branch": "main"},
    })
}

/// Turn `n` of a conversation of session `session` in `org`: `n` earlier exchanges as
/// history, a new question, a reduced response and `meta`.
pub fn turn(org: &str, session: &str, n: usize) -> Value {
    let mut messages = Vec::new();
    for i in 0..n {
        messages.push(json!({"role": "user", "content": format!("{session}: question {i}")}));
        messages.push(json!({"role": "assistant", "content": [{"type": "text", "text": format!("{session}: answer {i}")}]}));
    }
    messages.push(json!({"role": "user", "content": format!("{session}: question {n}")}));
    json!({
        "provider": "anthropic",
        "agent_name": "tester",
        "request": {"model": MODEL, "max_tokens": 1024, "messages": messages},
        "response": {
            "model": MODEL,
            "message": {"role": "assistant", "content": [{"type": "text", "text": format!("{session}: answer {n}")}]},
            "done": true,
            "stop_reason": "end_turn",
            "usage": {"prompt_tokens": 100 + n, "completion_tokens": 10 + n, "total_tokens": 110 + 2 * n},
        },
        "meta": {"request_id": format!("{session}-{n}")},
        "session": envelope(org, session),
    })
}

pub fn body(turn: &Value) -> Vec<u8> {
    serde_json::to_vec(turn).expect("JSON")
}

/// The one-shot Anthropic Messages response a raw-only turn of `session` carries.
pub fn upstream_response(text: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 12, "output_tokens": 3},
    }))
    .expect("JSON")
}

/// A raw-only turn: no response, the upstream body gzipped in `raw_response`.
pub fn raw_only_turn(org: &str, session: &str, text: &str) -> (Value, Vec<u8>) {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&upstream_response(text)).expect("gzip");
    let bytes = gz.finish().expect("gzip");
    let turn = json!({
        "provider": "anthropic",
        "agent_name": "tester",
        "request": {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": format!("{session}: say {text}")}]},
        "raw_response": STANDARD.encode(&bytes),
        "raw_response_encoding": "gzip",
        "meta": {"request_id": format!("{session}-raw"), "content_type": "application/json"},
        "session": envelope(org, session),
    });
    (turn, bytes)
}

/// The JSON lines of a command's output.
pub fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}
