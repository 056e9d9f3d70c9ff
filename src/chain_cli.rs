//! `reel chain`: turns ingest payloads into their chains, for people debugging a capture.
//!
//! Reads one JSON document per line (a turn payload, or `{"name":…,"payload":{…}}` as in the
//! conformance file) and writes one JSON line per input:
//! `{"status":202,"nodes":[{"hash","parent_hash","role"}…]}` or
//! `{"status":400|422,"error":"…"}`, with the error texts the HTTP API would answer.
//! Blank lines are skipped. Nothing touches a database. Chains are built under the rule set
//! the caller names (`reel chain --rules`, a new database's by default).

use std::io::{self, BufRead, BufWriter, Write};

use serde::Serialize;
use serde_json::value::RawValue;

use crate::cost::PriceBook;
use crate::gojson::repair_body;
use crate::merkle::{Chain, Rules};
use crate::turn::{Rejection, prepare_body_under};

/// Decodes one payload body and builds its chain under `rules`, or says why the ingest
/// endpoint would refuse it (its status and `error` text).
pub fn chain_of(body: &[u8], prices: &PriceBook, rules: &Rules) -> Result<Chain, Rejection> {
    prepare_body_under(body, prices, rules).map(|prepared| prepared.turn.chain)
}

/// Processes every line of `input` under `rules`, writing one result line each to `output`.
pub fn run(mut input: impl BufRead, output: impl Write, rules: &Rules) -> io::Result<()> {
    // Cost does not show in the output, so no price table is read.
    let prices = PriceBook::only(Default::default());
    let mut out = BufWriter::with_capacity(64 * 1024, output);
    let mut line = Vec::with_capacity(64 * 1024);
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let result = chain_of(
            payload_of(&line).as_deref().unwrap_or(&line),
            &prices,
            rules,
        );
        serde_json::to_writer(&mut out, &Outcome::from(&result))?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// The `payload` member of a `{"name":…,"payload":…}` line, if the line is one.
fn payload_of(line: &[u8]) -> Option<Vec<u8>> {
    #[derive(serde::Deserialize)]
    struct Wrapper<'a> {
        #[serde(borrow, default)]
        payload: Option<&'a RawValue>,
    }
    // The wrapper is read as Go reads a body (bytes that are not UTF-8 and lone surrogate
    // escapes become U+FFFD), or serde would refuse the lines the payload decoder accepts.
    let (line, _) = repair_body(line);
    let wrapper: Wrapper = serde_json::from_str(&line).ok()?;
    wrapper.payload.map(|raw| raw.get().as_bytes().to_vec())
}

#[derive(Serialize)]
#[serde(untagged)]
enum Outcome<'a> {
    Accepted {
        status: u16,
        nodes: Vec<NodeLine<'a>>,
    },
    Rejected {
        status: u16,
        error: String,
    },
}

#[derive(Serialize)]
struct NodeLine<'a> {
    hash: &'a str,
    parent_hash: Option<&'a str>,
    role: &'a str,
}

impl<'a> From<&'a Result<Chain, Rejection>> for Outcome<'a> {
    fn from(result: &'a Result<Chain, Rejection>) -> Self {
        match result {
            Ok(chain) => Outcome::Accepted {
                status: 202,
                nodes: chain
                    .nodes
                    .iter()
                    .map(|n| NodeLine {
                        hash: &n.hash,
                        parent_hash: n.parent_hash.as_deref(),
                        role: &n.bucket.role,
                    })
                    .collect(),
            },
            Err(rejection) => Outcome::Rejected {
                status: rejection.status_code(),
                error: rejection.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn run_lines(input: &str) -> Vec<Value> {
        run_lines_under(input, &Rules::TAPES_F237B6E)
    }

    fn run_lines_under(input: &str, rules: &Rules) -> Vec<Value> {
        let mut out = Vec::new();
        run(input.as_bytes(), &mut out, rules).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    const TURN: &str = r#"{"provider":"openai","request":{"model":"m","messages":[{"role":"user","content":"What is 2+2?"}]},"response":{"model":"m","message":{"role":"assistant","content":[{"type":"text","text":"4"}]}}}"#;

    #[test]
    fn accepted_payloads_list_their_nodes() {
        let out = run_lines(&format!("{TURN}\n"));
        assert_eq!(out.len(), 1);
        let nodes = out[0]["nodes"].as_array().unwrap();
        assert_eq!(out[0]["status"], 202);
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0]["parent_hash"], Value::Null);
        assert_eq!(nodes[0]["role"], "user");
        assert_eq!(nodes[1]["parent_hash"], nodes[0]["hash"]);
        assert_eq!(nodes[1]["role"], "assistant");
        assert_eq!(nodes[1]["hash"].as_str().unwrap().len(), 64);
    }

    #[test]
    fn wrapped_lines_blank_lines_and_rejections() {
        let wrapped = json!({"name": "x", "payload": serde_json::from_str::<Value>(TURN).unwrap()});
        let input = format!(
            "{wrapped}\n\n   \n{{\"provider\":\"gemini\"}}\nnot json\n{{\"provider\":\"openai\",\"request\":{{}},\"response\":{{}}}}\n{{\"session\":{{\"org_id\":\"nope\"}}}}"
        );
        let out = run_lines(&input);
        assert_eq!(out.len(), 5);
        assert_eq!(out[0]["status"], 202);
        assert_eq!(out[0]["nodes"], run_lines(TURN)[0]["nodes"]);
        assert_eq!(
            out[1],
            json!({"status": 422, "error": "unprocessable turn: unsupported provider \"gemini\" (supported: [anthropic openai ollama])"})
        );
        assert_eq!(out[2]["status"], 400);
        assert!(
            out[2]["error"]
                .as_str()
                .unwrap()
                .starts_with("invalid envelope: ")
        );
        assert_eq!(
            out[3],
            json!({"status": 422, "error": "unprocessable turn: invalid reduced response: missing response.message.role"})
        );
        assert_eq!(
            out[4],
            json!({"status": 400, "error": "invalid envelope: org_id is not a valid UUID: invalid UUID length: 4"})
        );
    }

    /// An OpenAI Responses request gives no request nodes under f237b6e and one per item
    /// under 6ea4dfc.
    #[test]
    fn the_rules_decide_the_chain() {
        let responses = r#"{"provider":"openai","request":{"model":"m","input":"hi"},"response":{"model":"m","message":{"role":"assistant","content":[{"type":"text","text":"4"}]}}}"#;
        let old = run_lines_under(responses, &Rules::TAPES_F237B6E);
        let new = run_lines_under(responses, &Rules::TAPES_6EA4DFC);
        assert_eq!(old[0]["nodes"].as_array().unwrap().len(), 1);
        let nodes = new[0]["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0]["role"], "user");
        assert_ne!(old[0]["nodes"][0]["hash"], nodes[1]["hash"]);
    }

    #[test]
    fn missing_request_is_a_parse_error() {
        let out = run_lines(
            r#"{"provider":"anthropic","response":{"message":{"role":"assistant","content":[{"type":"text","text":"x"}]}}}"#,
        );
        assert_eq!(
            out[0],
            json!({"status": 422, "error": "unprocessable turn: cannot parse request: unexpected end of JSON input"})
        );
    }
}
