//! Turn payloads.
#![allow(dead_code)]

use serde_json::{Value, json};

pub const MODEL: &str = "claude-sonnet-4-5-20250929";

/// A session block for harness `claude`.
pub fn envelope(harness_session_id: &str) -> Value {
    json!({
        "org_id": "",
        "auth_subject": "alice@example.com",
        "harness_id": "claude",
        "harness_session_id": harness_session_id,
    })
}

/// The reference worker test's sample job: system "you are helpful", user "ping", assistant
/// "pong", usage 11/7/18. The system prompt is a message here (an
/// OpenAI-style request), so the chain has three nodes.
pub fn sample_turn(session: Option<Value>) -> Value {
    let mut turn = json!({
        "provider": "openai",
        "agent_name": "tester",
        "request": {
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "you are helpful"},
                {"role": "user", "content": "ping"},
            ],
        },
        "response": {
            "model": "gpt-4o",
            "message": {"role": "assistant", "content": [{"type": "text", "text": "pong"}]},
            "done": true,
            "stop_reason": "stop",
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
        },
    });
    if let Some(session) = session {
        turn["session"] = session;
    }
    turn
}

/// The reference's hashes of the sample job's nodes (docs/hashing.md#reference-vectors): system,
/// user, head.
pub const SAMPLE_HASHES: [&str; 3] = [
    "b58e4092e93948e37df9ef8b34611079f8e6b9b9634c918e26a9ca7c4f717805",
    "0709995c4a700f05d8b9bdb8db9fc3e9704821365ae12094f16e498fbd4e1cef",
    "796f111ff082fc70e52dc1f8879a9f3bb4d2cf62f23e2ed21b65711e30de77db",
];

/// A reduced assistant response.
pub fn response(text: &str, input: i64, output: i64) -> Value {
    json!({
        "model": MODEL,
        "message": {"role": "assistant", "content": [{"type": "text", "text": text}]},
        "done": true,
        "stop_reason": "end_turn",
        "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output},
    })
}

/// One conversation of a session: turn `n` (0-based) re-sends turns `0..n` as history, the
/// way a harness does, so each turn's chain extends the previous one by two nodes.
#[derive(Clone)]
pub struct Conversation {
    pub topic: String,
    pub session: Option<Value>,
}

impl Conversation {
    pub fn new(topic: &str, session: Option<Value>) -> Self {
        Conversation {
            topic: topic.to_owned(),
            session,
        }
    }

    /// A conversation of harness `claude` with its own harness session id.
    pub fn claude(harness_session_id: &str) -> Self {
        Conversation::new(harness_session_id, Some(envelope(harness_session_id)))
    }

    pub fn question(&self, n: usize) -> String {
        format!("{}: question {n}", self.topic)
    }

    pub fn answer(&self, n: usize) -> String {
        format!("{}: answer {n}", self.topic)
    }

    pub fn turn(&self, n: usize) -> Value {
        let mut messages = Vec::with_capacity(2 * n + 1);
        for i in 0..n {
            messages.push(json!({"role": "user", "content": self.question(i)}));
            messages.push(
                json!({"role": "assistant", "content": [{"type": "text", "text": self.answer(i)}]}),
            );
        }
        messages.push(json!({"role": "user", "content": self.question(n)}));
        let mut turn = json!({
            "provider": "anthropic",
            "request": {"model": MODEL, "max_tokens": 1024, "messages": messages},
            "response": response(&self.answer(n), 100 + n as i64, 10 + n as i64),
        });
        if let Some(session) = &self.session {
            turn["session"] = session.clone();
        }
        turn
    }
}

/// An ollama turn (the reference's HTTP tests use ollama and openai).
pub fn ollama_turn(agent: &str, text: &str) -> Value {
    json!({
        "provider": "ollama",
        "agent_name": agent,
        "request": {"model": "llama3", "messages": [{"role": "user", "content": text}]},
        "response": {
            "model": "llama3",
            "message": {"role": "assistant", "content": [{"type": "text", "text": format!("re: {text}")}]},
            "done": true,
        },
    })
}

pub fn openai_turn(text: &str) -> Value {
    json!({
        "provider": "openai",
        "request": {"model": "gpt-4o", "messages": [{"role": "user", "content": text}]},
        "response": {
            "model": "gpt-4o",
            "message": {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
            "done": true,
            "stop_reason": "stop",
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        },
    })
}

/// One line of the conformance file: the raw payload (kept as text: some payloads hold lone
/// surrogate escapes a strict JSON parser refuses), the reference's status and node hashes.
pub struct ConformanceCase {
    pub name: String,
    pub payload: String,
    pub status: u16,
    pub hashes: Vec<String>,
}

/// Every case of the conformance file.
pub fn conformance_cases() -> Vec<ConformanceCase> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/conformance/chains.jsonl"
    );
    let text = std::fs::read_to_string(path).expect("tests/data/conformance/chains.jsonl");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            // Lines are `{"name": …, "payload": …, "expect": …}` in this key order.
            let payload_at = line.find(r#""payload": "#).expect("payload key") + 11;
            let expect_at = line.rfind(r#", "expect": "#).expect("expect key");
            let payload = line[payload_at..expect_at].to_owned();
            let head: Value = serde_json::from_str(&format!("{}}}", &line[..payload_at - 13]))
                .expect("name is JSON");
            let tail: Value = serde_json::from_str(&format!("{{{}", &line[expect_at + 2..]))
                .expect("expect is JSON");
            let expect = &tail["expect"];
            ConformanceCase {
                name: head["name"].as_str().unwrap_or_default().to_owned(),
                payload,
                status: expect["status"].as_u64().unwrap_or(0) as u16,
                hashes: expect["nodes"]
                    .as_array()
                    .map(|nodes| {
                        nodes
                            .iter()
                            .map(|n| n["hash"].as_str().unwrap_or_default().to_owned())
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect()
}
