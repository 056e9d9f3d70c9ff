//! Every line of the conformance file: accepted payloads must give the reference's nodes
//! exactly (hash, parent hash, stored bucket), rejected ones the same status.
//!
//! The file is `tests/data/conformance/chains.jsonl` (its format:
//! `tests/data/conformance/README.md`); lines are read with reel's own tolerant decoding,
//! since some carry lone surrogate escapes.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use reel::cost::PriceBook;
use reel::gojson::repair_body;
use reel::merkle::{Chain, build_chain, hash_input};
use reel::turn::prepare_body;
use reel::wire::{decode_batch, decode_turn};

#[derive(Deserialize)]
struct Line<'a> {
    name: String,
    #[serde(borrow)]
    payload: &'a RawValue,
    expect: Expect,
}

#[derive(Deserialize)]
struct Expect {
    status: u16,
    #[serde(default)]
    nodes: Vec<ExpectedNode>,
}

#[derive(Deserialize)]
struct ExpectedNode {
    hash: String,
    parent_hash: Option<String>,
    bucket: Value,
    hash_input: String,
}

fn conformance_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/conformance/chains.jsonl")
}

/// JSON equality with numbers compared as doubles (the reference stores tool-input numbers
/// as float64, so `2` and `2.0` are the same value).
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_json(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// Calls `check` with every record of the conformance file; returns how many there were.
fn for_each_line(mut check: impl FnMut(Line)) -> usize {
    let path = conformance_file();
    let text =
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut checked = 0;
    for (index, raw_line) in text.split(|&b| b == b'\n').enumerate() {
        if raw_line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let (repaired, _) = repair_body(raw_line);
        let line: Line = serde_json::from_str(&repaired)
            .unwrap_or_else(|e| panic!("line {}: not a conformance record: {e}", index + 1));
        check(line);
        checked += 1;
    }
    assert!(checked > 0, "no conformance lines in {}", path.display());
    checked
}

#[test]
fn every_conformance_line_matches_the_reference() {
    let prices = PriceBook::only(Default::default());
    let checked = for_each_line(|line| {
        let name = &line.name;
        // The whole preparation the ingest endpoint runs, not only the chain builder.
        let result = prepare_body(line.payload.get().as_bytes(), &prices).map(|p| p.turn.chain);
        match (line.expect.status, result) {
            (202, Ok(chain)) => {
                assert_eq!(
                    chain.nodes.len(),
                    line.expect.nodes.len(),
                    "{name}: node count"
                );
                for (i, (got, want)) in chain.nodes.iter().zip(&line.expect.nodes).enumerate() {
                    let input = hash_input(got.parent_hash.as_deref(), &got.bucket);
                    let input = String::from_utf8_lossy(&input);
                    assert!(
                        got.hash == want.hash && input == want.hash_input,
                        "{name}: node {i} hash mismatch\n  expected {}\n  actual   {}\n  expected hash_input {}\n  actual   hash_input {}",
                        want.hash,
                        got.hash,
                        want.hash_input,
                        input
                    );
                    assert_eq!(got.parent_hash, want.parent_hash, "{name}: node {i} parent");
                    let bucket = serde_json::to_value(&got.bucket).unwrap();
                    assert!(
                        same_json(&bucket, &want.bucket),
                        "{name}: node {i} stored bucket\n  expected {}\n  actual   {}",
                        want.bucket,
                        bucket
                    );
                }
            }
            (202, Err(rejection)) => panic!("{name}: expected 202, got {rejection:?}"),
            (status, Ok(_)) => panic!("{name}: expected {status}, got a chain"),
            (status, Err(rejection)) => {
                assert_eq!(rejection.status_code(), status, "{name}: {rejection}");
            }
        }
    });
    eprintln!("{checked} conformance lines match");
}

/// A single-turn body has its request parsed in the same pass as the body; a batch keeps
/// each request verbatim and parses it afterwards. Both must give the same chain, or the
/// same error, on every line.
#[test]
fn single_pass_decoding_agrees_with_verbatim_decoding() {
    fn outcome(decoded: Result<reel::wire::TurnPayload, String>) -> Result<Chain, String> {
        build_chain(decoded?).map_err(|e| format!("422 {e}"))
    }
    let checked = for_each_line(|line| {
        let body = line.payload.get();
        let single = outcome(decode_turn(body.as_bytes()).map_err(|_| "400".to_owned()));
        let batch = format!(r#"{{"turns":[{body}]}}"#);
        let verbatim = outcome(
            decode_batch(batch.as_bytes())
                .map(|mut turns| turns.remove(0))
                .map_err(|_| "400".to_owned()),
        );
        assert_eq!(single, verbatim, "{}", line.name);
    });
    eprintln!("{checked} conformance lines decode alike in one pass and verbatim");
}
