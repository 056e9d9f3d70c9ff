//! Reading the conformance files of `tests/data/conformance/` (their format: its
//! `README.md`): each line a `POST /v1/ingest` body with the reference's outcome. Lines are
//! read with reel's own tolerant decoding, since some carry lone surrogate escapes.
#![allow(dead_code)]

use std::path::PathBuf;

use reel::gojson::repair_body;
use reel::merkle::Rules;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

#[derive(Deserialize)]
pub struct Line<'a> {
    pub name: String,
    #[serde(borrow)]
    pub payload: &'a RawValue,
    pub expect: Expect,
}

#[derive(Deserialize)]
pub struct Expect {
    pub status: u16,
    #[serde(default)]
    pub nodes: Vec<ExpectedNode>,
    /// Absent in `chains.jsonl`, whose lines are all `tapes-f237b6e`.
    pub rules: Option<String>,
}

#[derive(Deserialize)]
pub struct ExpectedNode {
    pub hash: String,
    pub parent_hash: Option<String>,
    pub bucket: Value,
    pub hash_input: String,
    pub kind: Option<String>,
}

/// The rule set a line names: `+org-check` marks the lines whose 400 comes from reel
/// validating `org_id` (the rules themselves are the same).
pub fn rules_of(expect: &Expect) -> Rules {
    let name = expect.rules.as_deref().unwrap_or("tapes-f237b6e");
    let name = name.strip_suffix("+org-check").unwrap_or(name);
    Rules::from_name(name).unwrap_or_else(|| panic!("unknown rule set {name}"))
}

/// JSON equality with numbers compared as doubles (the reference stores tool-input numbers
/// as float64, so `2` and `2.0` are the same value).
pub fn same_json(a: &Value, b: &Value) -> bool {
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

/// The bytes of a conformance file.
pub fn read_file(file: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/conformance")
        .join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Every record of a conformance file's bytes (see [`read_file`]), in order.
pub fn lines<'a>(file: &str, text: &'a [u8], repaired: &'a mut Vec<String>) -> Vec<Line<'a>> {
    for raw_line in text.split(|&b| b == b'\n') {
        if !raw_line.iter().all(u8::is_ascii_whitespace) {
            repaired.push(repair_body(raw_line).0.into_owned());
        }
    }
    let repaired: &'a Vec<String> = repaired;
    let lines: Vec<Line> = repaired
        .iter()
        .enumerate()
        .map(|(index, line)| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{file}:{}: not a conformance record: {e}", index + 1))
        })
        .collect();
    assert!(!lines.is_empty(), "no conformance lines in {file}");
    lines
}

/// Calls `check` with every record of a conformance file; returns how many there were.
pub fn for_each_line(file: &str, mut check: impl FnMut(Line)) -> usize {
    let text = read_file(file);
    let mut repaired = Vec::new();
    let lines = lines(file, &text, &mut repaired);
    let checked = lines.len();
    lines.into_iter().for_each(&mut check);
    checked
}
