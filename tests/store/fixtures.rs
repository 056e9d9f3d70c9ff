//! Chains and envelopes for store tests. Hashes are made up (SHA-256 of parent, role and
//! text): the store never recomputes them, so any stable, distinct hex strings will do.

use reel::llm::{ContentBlock, Usage};
use reel::merkle::{Bucket, Chain, ChainNode};
pub use reel::store::{CommitOptions, Store, StoreError};
pub use reel::turn::{Committed, KnownHashes, SessionKey, Turn};
use reel::wire::SessionEnvelope;
use sea_orm::{DatabaseConnection, EntityTrait};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub use entity::{nodes, sessions};

pub const ORG_A: &str = "11111111-1111-1111-1111-111111111111";
pub const ORG_B: &str = "22222222-2222-2222-2222-222222222222";

pub fn org(id: &str) -> Uuid {
    Uuid::parse_str(id).expect("test org id")
}

pub fn message_node(parent: Option<&str>, role: &str, text: &str) -> ChainNode {
    let mut hasher = Sha256::new();
    hasher.update(parent.unwrap_or("").as_bytes());
    hasher.update([0]);
    hasher.update(role.as_bytes());
    hasher.update([0]);
    hasher.update(text.as_bytes());
    ChainNode {
        hash: hex::encode(hasher.finalize()),
        parent_hash: parent.map(str::to_owned),
        bucket: Bucket {
            kind: "message".into(),
            role: role.into(),
            content: Some(vec![ContentBlock {
                kind: "text".into(),
                text: text.into(),
                ..Default::default()
            }]),
            model: "claude-test".into(),
            provider: "anthropic".into(),
            agent_name: "tester".into(),
        },
        kind: None,
        thread_id: String::new(),
        stop_reason: String::new(),
        usage: None,
    }
}

/// The usage of every fixture reply: 12 in, 8 out, 20 total.
pub fn usage() -> Usage {
    Usage {
        prompt_tokens: 12,
        completion_tokens: 8,
        total_tokens: 20,
        ..Default::default()
    }
}

/// A conversation: `messages` (role, text) in order, then the assistant's `reply` as head.
pub fn conversation(messages: &[(&str, &str)], reply: &str) -> Chain {
    let mut nodes: Vec<ChainNode> = Vec::new();
    for (role, text) in messages {
        let parent = nodes.last().map(|n| n.hash.clone());
        nodes.push(message_node(parent.as_deref(), role, text));
    }
    let parent = nodes.last().map(|n| n.hash.clone());
    let mut head = message_node(parent.as_deref(), "assistant", reply);
    head.stop_reason = "stop".into();
    head.usage = Some(usage());
    nodes.push(head);
    Chain { nodes }
}

/// The reference's `sessionFixture(text)`: user `text` answered by `ok: text`.
pub fn session_fixture(text: &str) -> Chain {
    conversation(&[("user", text)], &format!("ok: {text}"))
}

/// The next turn of `chain`: its whole history (head included, without its turn-only
/// metadata), a new user message, and a new reply.
pub fn next_turn(chain: &Chain, user: &str, reply: &str) -> Chain {
    let mut nodes = chain.nodes.clone();
    if let Some(last) = nodes.last_mut() {
        last.stop_reason.clear();
        last.usage = None;
    }
    let user_node = message_node(nodes.last().map(|n| n.hash.as_str()), "user", user);
    let mut head = message_node(Some(&user_node.hash), "assistant", reply);
    head.stop_reason = "stop".into();
    head.usage = Some(usage());
    nodes.push(user_node);
    nodes.push(head);
    Chain { nodes }
}

/// A conversation of `len` messages (alternating user/assistant) plus its reply.
pub fn long_conversation(tag: &str, len: usize) -> Chain {
    let texts: Vec<(String, String)> = (0..len)
        .map(|i| {
            let role = if i % 2 == 0 { "user" } else { "assistant" };
            (
                role.to_owned(),
                format!("{tag} message {i}: {}", "lorem ipsum ".repeat(8)),
            )
        })
        .collect();
    let messages: Vec<(&str, &str)> = texts
        .iter()
        .map(|(r, t)| (r.as_str(), t.as_str()))
        .collect();
    conversation(&messages, &format!("{tag} reply"))
}

pub fn envelope(harness_id: &str, harness_session_id: &str) -> SessionEnvelope {
    SessionEnvelope {
        harness_id: harness_id.into(),
        harness_session_id: harness_session_id.into(),
        auth_subject: "tester@example.com".into(),
        ..Default::default()
    }
}

pub fn raw_json(json: &str) -> Option<Box<RawValue>> {
    Some(RawValue::from_string(json.to_owned()).expect("valid test JSON"))
}

/// Tokens and cost of one ingest call.
#[derive(Debug, Clone, Copy)]
pub struct Tokens {
    pub input: i64,
    pub output: i64,
    pub cost_usd: f64,
}

pub const TOKENS: Tokens = Tokens {
    input: 12,
    output: 8,
    cost_usd: 0.0,
};

/// The turn the HTTP layer would hand to the store for `chain` under `envelope`.
pub fn turn(envelope: Option<&SessionEnvelope>, chain: &Chain, tokens: Tokens) -> Turn {
    Turn {
        key: SessionKey::resolve(envelope, chain),
        envelope: envelope.cloned(),
        chain: chain.clone(),
        input_tokens: tokens.input,
        output_tokens: tokens.output,
        cost_usd: tokens.cost_usd,
        raw: None,
    }
}

/// A store over `db` that stamps no project; on Postgres its commits go through two
/// group-writer tasks, as a server's do.
pub fn store(db: &DatabaseConnection) -> Store {
    Store::new(
        db.clone(),
        CommitOptions {
            group_writers: 2,
            ..CommitOptions::default()
        },
    )
}

/// Commits one turn in its own transaction; `known` as a session actor would pass it.
pub async fn try_ingest(
    db: &DatabaseConnection,
    envelope: Option<&SessionEnvelope>,
    chain: &Chain,
    tokens: Tokens,
    known: Option<&KnownHashes>,
) -> Result<Committed, StoreError> {
    let turn = turn(envelope, chain, tokens);
    let none = KnownHashes::default();
    let mut committed = store(db)
        .transaction(std::slice::from_ref(&turn), known.unwrap_or(&none))
        .await?;
    Ok(committed.pop().expect("one result per turn"))
}

pub async fn ingest(
    db: &DatabaseConnection,
    envelope: Option<&SessionEnvelope>,
    chain: &Chain,
) -> Committed {
    ingest_with(db, envelope, chain, TOKENS).await
}

pub async fn ingest_with(
    db: &DatabaseConnection,
    envelope: Option<&SessionEnvelope>,
    chain: &Chain,
    tokens: Tokens,
) -> Committed {
    try_ingest(db, envelope, chain, tokens, None)
        .await
        .expect("ingest turn")
}

pub async fn all_sessions(db: &DatabaseConnection) -> Vec<sessions::Model> {
    sessions::Entity::find()
        .all(db)
        .await
        .expect("read sessions")
}

pub async fn all_nodes(db: &DatabaseConnection) -> Vec<nodes::Model> {
    nodes::Entity::find().all(db).await.expect("read nodes")
}

pub async fn session(db: &DatabaseConnection, id: Uuid) -> sessions::Model {
    sessions::Entity::find_by_id(id)
        .one(db)
        .await
        .expect("read session")
        .expect("session row exists")
}

pub async fn node(db: &DatabaseConnection, org_id: Uuid, hash: &str) -> nodes::Model {
    nodes::Entity::find_by_id((org_id, hash.to_owned()))
        .one(db)
        .await
        .expect("read node")
        .expect("node row exists")
}

pub fn hashes(chain: &Chain) -> Vec<String> {
    chain.nodes.iter().map(|n| n.hash.clone()).collect()
}

/// A captured turn with every raw value set: `request` as the request, a response, meta
/// naming `request_id`, an envelope and identity-encoded response bytes.
pub fn raw_capture(request_id: &str, request: &[u8]) -> reel::turn::Capture {
    reel::turn::Capture {
        request_id: request_id.to_owned(),
        provider: "anthropic".into(),
        agent_name: "tester".into(),
        received_at: chrono::Utc::now(),
        request: bytes::Bytes::copy_from_slice(request),
        response: Some(
            r#"{"model":"claude-test","message":{"role":"assistant","content":[{"type":"text","text":"ok"}]},"done":true}"#
                .into(),
        ),
        response_reduced: false,
        meta: Some(format!(
            r#"{{"request_id":{},"content_type":"text/event-stream"}}"#,
            serde_json::Value::from(request_id)
        )),
        envelope: Some(r#"{"harness_id":"claude","harness_session_id":"raw"}"#.into()),
        raw_response: Some(b"event: message_start\ndata: {}\n\n".to_vec()),
        raw_response_encoding: "identity".into(),
        raw_response_withheld: false,
        truncated: false,
    }
}

pub fn raw_turn(request_id: &str, request: &[u8]) -> reel::turn::RawTurn {
    reel::turn::RawTurn::new(raw_capture(request_id, request)).0
}

/// `turn` carrying `raw`.
pub fn with_raw(mut turn: Turn, raw: reel::turn::RawTurn) -> Turn {
    turn.raw = Some(std::sync::Arc::new(raw));
    turn
}

/// Commits one turn in its own transaction.
pub async fn try_commit(db: &DatabaseConnection, turn: &Turn) -> Result<Committed, StoreError> {
    let mut committed = store(db)
        .transaction(std::slice::from_ref(turn), &KnownHashes::default())
        .await?;
    Ok(committed.pop().expect("one result per turn"))
}

/// Deterministic text-like bytes, as conversations are: words, identifiers and numbers
/// drawn from `seed`. zstd shrinks them about as much as it shrinks real transcripts.
pub fn prose(seed: u64, len: usize) -> String {
    const WORDS: [&str; 32] = [
        "the",
        "request",
        "fn",
        "let",
        "chunk",
        "store",
        "index",
        "turn",
        "session",
        "error",
        "result",
        "value",
        "match",
        "Some(",
        "None",
        "=>",
        "self",
        "async",
        "await",
        "impl",
        "tool_use",
        "read_file",
        "src/main.rs",
        "line",
        "return",
        "Ok(())",
        "{",
        "}",
        "if",
        "else",
        "for",
        "in",
    ];
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut out = String::with_capacity(len + 32);
    while out.len() < len {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        out.push_str(WORDS[(state >> 59) as usize]);
        match (state >> 52) & 15 {
            0 => out.push_str(&format!(" {}", (state >> 20) % 100_000)),
            1 => out.push_str("\\n"),
            _ => {}
        }
        out.push(' ');
    }
    out.truncate(len);
    out
}

/// A Claude Code-shaped request: a fixed system preamble of `preamble` bytes, then
/// `messages` messages of `message` bytes each.
pub fn claude_request(preamble: usize, messages: usize, message: usize) -> Vec<u8> {
    let mut out = format!(
        r#"{{"model":"claude-sonnet-4-6","max_tokens":32000,"stream":true,"system":"{}","messages":["#,
        prose(0, preamble)
    );
    for i in 0..messages {
        if i > 0 {
            out.push(',');
        }
        let role = if i % 2 == 0 { "user" } else { "assistant" };
        out.push_str(&format!(
            r#"{{"role":"{role}","content":[{{"type":"text","text":"{}"}}]}}"#,
            prose(i as u64 + 1, message)
        ));
    }
    out.push_str("]}");
    out.into_bytes()
}
