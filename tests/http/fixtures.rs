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
/// "pong", usage 11/7/18 (reference-tests.md §8.4).
pub fn sample_turn(session: Option<Value>) -> Value {
    let mut turn = json!({
        "provider": "anthropic",
        "agent_name": "tester",
        "request": {
            "model": MODEL,
            "system": "you are helpful",
            "messages": [{"role": "user", "content": "ping"}],
        },
        "response": response("pong", 11, 7),
    });
    if let Some(session) = session {
        turn["session"] = session;
    }
    turn
}

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

/// Payloads of the conformance file with the hashes the reference computed for them.
pub fn conformance_cases(limit: usize) -> Vec<(String, Value, u16, Vec<String>)> {
    // In CI the repository is cloned next to a copy of `shared/`.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/conformance/chains.jsonl"
    );
    let text = std::fs::read_to_string(path).expect("conformance file next to the repository");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .take(limit)
        .map(|line| {
            let case: Value = serde_json::from_str(line).expect("conformance line is JSON");
            let hashes = case["expect"]["nodes"]
                .as_array()
                .map(|nodes| {
                    nodes
                        .iter()
                        .map(|n| n["hash"].as_str().unwrap_or_default().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            (
                case["name"].as_str().unwrap_or_default().to_owned(),
                case["payload"].clone(),
                case["expect"]["status"].as_u64().unwrap_or(0) as u16,
                hashes,
            )
        })
        .collect()
}
