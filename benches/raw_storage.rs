//! `raw_storage`: the raw bytes a warm turn writes, against the new bytes of its request and
//! its response, over a Claude Code-sized session that grows to a 1,000-message
//! conversation (docs/capture.md §13.3: storage must grow with what each turn adds).
//!
//! The session opens with a 120 KB preamble (system prompt and tools). Each turn re-sends
//! the whole conversation plus the previous reply and a new user message (500 turns, two
//! messages each, 0.5–6 KB, about 2 KB on average), and carries its reply as a reduced
//! response and as the SSE bytes it was reduced from. Two contents are run: text (words,
//! code-like tokens and numbers, which zstd shrinks about as much as real transcripts) and
//! random base64 (which it barely shrinks: the worst case).
//!
//! Per sampled turn it prints the request's size, its new bytes, the response bytes (reduced
//! JSON and raw SSE), what the raw row stored in total (`stored_bytes`: new chunks, top list,
//! response, raw response, meta, envelope), the request's share of it (new chunks and top
//! list), and the ratio of the total to new request plus response bytes.
//!
//! `cargo bench --bench raw_storage` (SQLite in a temp dir; the bytes are the same on
//! Postgres, where the statements are the same).

use std::time::Instant;

use reel::store::{self, Store, StoreOptions};
use reel::turn::{RawStored, RawTurn};
use sea_orm::{ConnectionTrait, Statement};

#[allow(dead_code)]
#[path = "../tests/store/fixtures.rs"]
mod fixtures;

use fixtures::{
    CommitOptions, KnownHashes, TOKENS, envelope, next_turn, prose, raw_capture, session_fixture,
    turn, with_raw,
};

const PREAMBLE: usize = 120 * 1024;
const TURNS: usize = 500;
const SAMPLES: [usize; 9] = [1, 2, 10, 50, 100, 200, 300, 400, 500];

#[derive(Clone, Copy)]
enum Content {
    Text,
    Random,
}

impl Content {
    fn label(self) -> &'static str {
        match self {
            Content::Text => "text",
            Content::Random => "random",
        }
    }

    fn make(self, seed: u64, len: usize) -> String {
        match self {
            Content::Text => prose(seed, len),
            Content::Random => random_base64(seed, len),
        }
    }
}

fn random_base64(seed: u64, len: usize) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut state = seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ALPHABET[(state & 63) as usize] as char
        })
        .collect()
}

/// Size of message `i`: 0.5–6 KB, about 2 KB on average, skewed like chat turns are.
fn message_size(i: usize) -> usize {
    const SIZES: [usize; 8] = [512, 800, 1_000, 1_200, 1_500, 2_000, 3_000, 6_000];
    SIZES[(i * 7 + i / 3) % SIZES.len()]
}

fn message(content: Content, i: usize) -> String {
    let role = if i.is_multiple_of(2) {
        "user"
    } else {
        "assistant"
    };
    format!(
        r#"{{"role":"{role}","content":[{{"type":"text","text":"{}"}}]}}"#,
        content.make(i as u64 + 1, message_size(i))
    )
}

/// The reply of turn `k` (message `2k + 1` of the next request) as a reduced response and
/// as the SSE stream it came from.
fn response(content: Content, k: usize) -> (String, Vec<u8>) {
    let text = content.make(2 * k as u64 + 2, message_size(2 * k + 1));
    let reduced = format!(
        r#"{{"model":"claude-sonnet-4-6","message":{{"role":"assistant","content":[{{"type":"text","text":"{text}"}}]}},"done":true,"stop_reason":"end_turn","usage":{{"prompt_tokens":40000,"completion_tokens":600}}}}"#
    );
    let mut sse = String::from(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-sonnet-4-6\"}}\n\n",
    );
    for piece in text.as_bytes().chunks(40) {
        sse.push_str(&format!(
            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{}\"}}}}\n\n",
            String::from_utf8_lossy(piece)
        ));
    }
    sse.push_str("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    (reduced, sse.into_bytes())
}

async fn stored_bytes(db: &sea_orm::DatabaseConnection, id: uuid::Uuid) -> i64 {
    db.query_one_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT stored_bytes FROM raw_turns WHERE id = ?",
        [id.into()],
    ))
    .await
    .expect("read stored_bytes")
    .expect("the raw turn")
    .try_get_by_index(0)
    .expect("stored_bytes")
}

async fn run(content: Content) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("raw.db").display());
    let db = store::connect(&url, &StoreOptions::default())
        .await
        .expect("connect");
    store::migrate(&db).await.expect("migrate");
    let store = Store::new(db.clone(), CommitOptions::default());

    let head = format!(
        r#"{{"model":"claude-sonnet-4-6","max_tokens":32000,"stream":true,"system":"{}","messages":["#,
        content.make(0, PREAMBLE)
    );
    let messages: Vec<String> = (0..2 * TURNS).map(|i| message(content, i)).collect();
    let env = envelope("claude", content.label());
    let mut chain = session_fixture(content.label());
    let mut body = head.clone();
    let mut previous = 0;

    println!(
        "\n{}: turn | messages | request B | new request B | response B | stored B | request stored B | stored / (new + response) | commit ms",
        content.label()
    );
    let mut sums = (0usize, 0usize, 0i64);
    for k in 0..TURNS {
        for i in [2 * k, 2 * k + 1] {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&messages[i]);
        }
        let request = format!("{body}]}}").into_bytes();
        let new_request = request.len() - previous;
        previous = request.len();
        let (reduced, sse) = response(content, k);
        let mut capture = raw_capture(&format!("{}-{k}", content.label()), &request);
        let response_bytes = reduced.len() + sse.len();
        let own = reduced.len()
            + sse.len()
            + capture.meta.as_ref().map_or(0, String::len)
            + capture.envelope.as_ref().map_or(0, String::len);
        capture.response = Some(reduced);
        capture.raw_response = Some(sse);
        let (raw, _) = RawTurn::new(capture);
        let turn = with_raw(turn(Some(&env), &chain, TOKENS), raw);

        let started = Instant::now();
        let committed = store
            .transaction(std::slice::from_ref(&turn), &KnownHashes::default())
            .await
            .expect("commit")
            .pop()
            .expect("one result");
        let elapsed = started.elapsed();
        let Some(RawStored::Inserted(id)) = committed.raw else {
            panic!("turn {k} stored no raw turn");
        };
        let stored = stored_bytes(&db, id).await;
        let request_stored = stored - own as i64;
        if k > 0 {
            sums.0 += new_request;
            sums.1 += response_bytes;
            sums.2 += stored;
        }
        if SAMPLES.contains(&(k + 1)) {
            println!(
                "{}: {:>4} | {:>5} | {:>9} | {:>7} | {:>6} | {:>7} | {:>7} | {:>5.2} | {:>6.1}",
                content.label(),
                k + 1,
                2 * (k + 1),
                request.len(),
                new_request,
                response_bytes,
                stored,
                request_stored,
                stored as f64 / (new_request + response_bytes) as f64,
                elapsed.as_secs_f64() * 1e3,
            );
        }
        chain = next_turn(&chain, &format!("u{k}"), &format!("a{k}"));
    }
    println!(
        "{}: warm turns 2..{TURNS}: {} new request B + {} response B, {} stored B: {:.2}",
        content.label(),
        sums.0,
        sums.1,
        sums.2,
        sums.2 as f64 / (sums.0 + sums.1) as f64
    );
    db.close().await.ok();
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects one content.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    for content in [Content::Text, Content::Random] {
        if filter
            .as_deref()
            .is_none_or(|f| content.label().contains(f))
        {
            rt.block_on(run(content));
        }
    }
}
