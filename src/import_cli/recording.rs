//! Wire recordings: one directory per turn (`turn-*`), holding the request body as sent
//! upstream (`request.json`), the response body as it came back (`response.sse`, still
//! under its content coding) and the capture's `meta.json`.
//!
//! A recording becomes a raw-only payload, as a capture proxy would have posted it: the
//! server path reduces `raw_response` itself. `meta.json` is the payload's `meta` block
//! (docs/capture.md); three more members are taken out of it when present: `provider`,
//! `agent_name` and `session` (the envelope). Without `provider` the provider follows from
//! the upstream `path` (or `endpoint`) the meta records; `content_encoding` becomes
//! `raw_response_encoding`.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::source::{Item, Unreadable, read_capped};

const REQUEST: &str = "request.json";
const RESPONSE: &str = "response.sse";
const META: &str = "meta.json";

/// How deep below the given directory recordings are looked for (a directory of sessions,
/// each a directory of turns).
const MAX_DEPTH: usize = 3;

/// The recordings under a directory, in order: by path, numbers compared as numbers, so
/// `turn-2` comes before `turn-10`.
pub struct Recordings {
    dirs: std::vec::IntoIter<PathBuf>,
    root: PathBuf,
    total: u64,
    limit: usize,
}

impl Recordings {
    pub fn find(root: &Path, limit: usize) -> std::io::Result<Recordings> {
        let mut dirs = Vec::new();
        collect(root, 0, &mut dirs)?;
        dirs.sort_by(|a, b| natural(&a.to_string_lossy(), &b.to_string_lossy()));
        let total = dirs
            .iter()
            .flat_map(|d| [REQUEST, RESPONSE, META].map(|f| d.join(f)))
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum();
        Ok(Recordings {
            dirs: dirs.into_iter(),
            root: root.to_owned(),
            total,
            limit,
        })
    }

    pub fn total_bytes(&self) -> u64 {
        self.total
    }

    pub fn next_item(&mut self) -> Option<Item> {
        let dir = self.dirs.next()?;
        let label = dir
            .strip_prefix(&self.root)
            .ok()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(&dir)
            .display()
            .to_string();
        let mut consumed = 0;
        let body = payload(&dir, self.limit, &mut consumed);
        Some(Item {
            label,
            body,
            consumed,
        })
    }
}

fn collect(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if dir.join(REQUEST).is_file() {
        out.push(dir.to_owned());
        return Ok(());
    }
    if depth == MAX_DEPTH {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, depth + 1, out)?;
        }
    }
    Ok(())
}

/// Compares paths with runs of digits as numbers.
fn natural(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let digits = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
                let (n, m) = (digits(a), digits(b));
                let trim = |s: &[u8]| {
                    let zeros = s.iter().take_while(|c| **c == b'0').count();
                    s[zeros..].to_vec()
                };
                let (x, y) = (trim(&a[..n]), trim(&b[..m]));
                let order = x.len().cmp(&y.len()).then_with(|| x.cmp(&y));
                if order != Ordering::Equal {
                    return order;
                }
                (a, b) = (&a[n..], &b[m..]);
            }
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => (a, b) = (&a[1..], &b[1..]),
        }
    }
}

/// The raw-only payload of the recording in `dir`.
fn payload(dir: &Path, limit: usize, consumed: &mut u64) -> Result<Vec<u8>, Unreadable> {
    let request = read_capped(&dir.join(REQUEST), limit)?;
    let response_path = dir.join(RESPONSE);
    let response = if response_path.exists() {
        read_capped(&response_path, limit)?
    } else {
        Vec::new()
    };
    let meta_path = dir.join(META);
    let meta_bytes = if meta_path.exists() {
        read_capped(&meta_path, limit)?
    } else {
        b"{}".to_vec()
    };
    *consumed = (request.len() + response.len() + meta_bytes.len()) as u64;
    let mut meta: Map<String, Value> = serde_json::from_slice(&meta_bytes).map_err(|e| {
        Unreadable::Recording(format!("{}: not a JSON object: {e}", meta_path.display()))
    })?;
    let text = |v: Option<Value>| match v {
        Some(Value::String(s)) => s,
        _ => String::new(),
    };
    let provider = match text(meta.remove("provider")) {
        p if p.is_empty() => provider_of(&meta).to_owned(),
        p => p,
    };
    let agent_name = text(meta.remove("agent_name"));
    let session = meta.remove("session");
    let encoding = meta
        .get("content_encoding")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();

    // The request goes in as its bytes: it is stored exactly as it was sent upstream.
    let mut body = Vec::with_capacity(request.len() + response.len() * 4 / 3 + 512);
    body.extend_from_slice(b"{\"provider\":");
    push_json(&mut body, &Value::String(provider));
    if !agent_name.is_empty() {
        body.extend_from_slice(b",\"agent_name\":");
        push_json(&mut body, &Value::String(agent_name));
    }
    body.extend_from_slice(b",\"request\":");
    body.extend_from_slice(&request);
    if !response.is_empty() {
        body.extend_from_slice(b",\"raw_response\":\"");
        body.extend_from_slice(STANDARD.encode(&response).as_bytes());
        body.push(b'"');
    }
    if !encoding.is_empty() {
        body.extend_from_slice(b",\"raw_response_encoding\":");
        push_json(&mut body, &Value::String(encoding));
    }
    body.extend_from_slice(b",\"meta\":");
    push_json(&mut body, &Value::Object(meta));
    if let Some(session) = session {
        body.extend_from_slice(b",\"session\":");
        push_json(&mut body, &session);
    }
    body.push(b'}');
    if body.len() > limit {
        return Err(Unreadable::TooLarge { limit });
    }
    Ok(body)
}

fn push_json(out: &mut Vec<u8>, value: &Value) {
    // Writing JSON values into a Vec cannot fail.
    serde_json::to_writer(&mut *out, value).unwrap_or_default();
}

/// The provider a capture's upstream path is an API of; `""` (rejected as an unsupported
/// provider) when it names none reel knows.
fn provider_of(meta: &Map<String, Value>) -> &'static str {
    let path = ["path", "endpoint"]
        .iter()
        .find_map(|k| meta.get(*k).and_then(Value::as_str))
        .unwrap_or("");
    if path.contains("/messages") {
        "anthropic"
    } else if path.contains("/chat/completions") || path.contains("/responses") {
        "openai"
    } else if path.contains("/api/chat") {
        "ollama"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_sort_as_numbers() {
        let mut v = vec!["s/turn-10", "s/turn-2", "s/turn-1", "r/turn-3"];
        v.sort_by(|a, b| natural(a, b));
        assert_eq!(v, ["r/turn-3", "s/turn-1", "s/turn-2", "s/turn-10"]);
    }

    #[test]
    fn a_recording_becomes_a_raw_only_payload() {
        let dir = tempfile::tempdir().unwrap();
        let turn = dir.path().join("turn-1");
        std::fs::create_dir(&turn).unwrap();
        std::fs::write(turn.join(REQUEST), br#"{"model":"m","messages":[]}"#).unwrap();
        std::fs::write(turn.join(RESPONSE), b"event: x\n\n").unwrap();
        std::fs::write(
            turn.join(META),
            br#"{"path":"/v1/messages","request_id":"r1","content_encoding":"gzip","session":{"harness_id":"claude"}}"#,
        )
        .unwrap();
        let mut found = Recordings::find(dir.path(), 1 << 20).unwrap();
        let item = found.next_item().unwrap();
        assert_eq!(item.label, "turn-1");
        let body: Value = serde_json::from_slice(&item.body.unwrap()).unwrap();
        assert_eq!(body["provider"], "anthropic");
        assert_eq!(body["request"]["model"], "m");
        assert_eq!(body["raw_response"], STANDARD.encode(b"event: x\n\n"));
        assert_eq!(body["raw_response_encoding"], "gzip");
        assert_eq!(body["meta"]["request_id"], "r1");
        assert_eq!(body["meta"].get("session"), None);
        assert_eq!(body["session"]["harness_id"], "claude");
        assert!(found.next_item().is_none());
    }
}
