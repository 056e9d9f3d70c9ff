//! The reducers against the reference's own reductions: every raw-only line of
//! `raw-reduce.jsonl` and `chains-v2.jsonl` (docs: `tests/data/conformance/README.md`)
//! whose bytes reach a reducer. A line with `expect.reduced_response` must reduce to exactly
//! that response (JSON equality, stamps applied); a raw-only line without one must fail to
//! reduce.
//!
//! The bytes go through the content-encoding decoder first, as on the server: a coding it
//! refuses is a failed reduction, a cut stream it salvages is reduced as it ends.

#[path = "support/vectors.rs"]
mod vectors;

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde_json::Value;
use serde_json::value::RawValue;

use reel::capture::encoding::{Unlimited, open};
use reel::capture::{CreatedAtSource, ReduceError, Stamps, reduce};
use reel::gojson::repair_body;
use reel::wire::decode_turn_verbatim;

use vectors::same_json;

/// The reducer's clock, which no expected value depends on.
const NOW: &str = "2031-02-03T04:05:06Z";

/// One conformance record: its name, the payload's text and the expectation.
struct Line {
    name: String,
    payload: String,
    expect: Value,
}

fn lines(file: &str) -> Vec<Line> {
    #[derive(serde::Deserialize)]
    struct Record<'a> {
        name: String,
        #[serde(borrow)]
        payload: &'a RawValue,
        expect: Value,
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/conformance")
        .join(file);
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.split(|&b| b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .map(|line| {
            // Lines are read as a body is: some hold lone surrogate escapes.
            let (line, _) = repair_body(line);
            let record: Record = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("{file}: not a conformance record: {e}"));
            Line {
                name: record.name,
                payload: record.payload.get().to_owned(),
                expect: record.expect,
            }
        })
        .collect()
}

#[derive(Default, Debug)]
struct Tally {
    identity: usize,
    decoded: usize,
    failures_expected: usize,
    mismatches: Vec<String>,
}

fn check_file(file: &str, tally: &mut Tally) {
    let now: DateTime<Utc> = NOW.parse().unwrap();
    for line in lines(file) {
        let name = &line.name;
        let expect = &line.expect;
        let status = expect["status"].as_u64().unwrap_or_default();
        // The payload as the server decodes it; a 400 never reaches a reducer.
        let Ok((turn, _)) = decode_turn_verbatim(line.payload.as_bytes()) else {
            assert_eq!(status, 400, "{name}: the payload does not decode");
            continue;
        };
        if !turn.is_raw_only() || turn.validate_session().is_err() {
            continue;
        }
        let encoded = turn.raw_response_encoding.trim() != ""
            && !turn
                .raw_response_encoding
                .trim()
                .eq_ignore_ascii_case("identity");
        let meta = turn.meta.unwrap_or_default();
        let provider = turn.provider.as_str();
        let mut allowance = Unlimited;
        let result = open(
            &turn.raw_response_encoding,
            &turn.raw_response,
            &mut allowance,
        )
        .map_err(ReduceError::Decode)
        .and_then(|mut plaintext| {
            reduce(
                provider,
                &meta.content_type,
                &mut plaintext,
                &Stamps::from(&meta),
                now,
            )
        });
        match (expect.get("reduced_response"), result) {
            (Some(want), Ok(got)) => {
                // Every Anthropic line is stamped: none depends on the reference's clock.
                assert!(
                    provider != "anthropic" || got.created_at_source != CreatedAtSource::Fallback,
                    "{name}: dated by the clock"
                );
                if !same_json(&got.response, want) {
                    tally.mismatches.push(format!(
                        "{file} {name}:\n  expected {want}\n  actual   {}",
                        got.response
                    ));
                }
            }
            (Some(_), Err(e)) => tally
                .mismatches
                .push(format!("{file} {name}: expected a reduction, got {e}")),
            (None, Ok(got)) => tally.mismatches.push(format!(
                "{file} {name}: expected no reduction (status {status}), got {}",
                got.response
            )),
            (None, Err(_)) => {
                assert_eq!(status, 422, "{name}: a failed reduction is a 422");
                tally.failures_expected += 1;
                continue;
            }
        }
        if encoded {
            tally.decoded += 1;
        } else {
            tally.identity += 1;
        }
    }
}

#[test]
fn raw_only_lines_reduce_as_the_reference_reduced_them() {
    let mut tally = Tally::default();
    check_file("raw-reduce.jsonl", &mut tally);
    let raw_reduce = tally.identity + tally.decoded + tally.failures_expected;
    check_file("chains-v2.jsonl", &mut tally);
    println!(
        "reduce conformance: {} reductions equal the reference's ({} identity, {} under a \
         content-coding), {} failed as the reference's did; {raw_reduce} of these lines from \
         raw-reduce.jsonl; {} mismatches",
        tally.identity + tally.decoded,
        tally.identity,
        tally.decoded,
        tally.failures_expected,
        tally.mismatches.len(),
    );
    assert!(
        tally.mismatches.is_empty(),
        "{} lines differ from the reference:\n{}",
        tally.mismatches.len(),
        tally.mismatches.join("\n")
    );
    // raw-reduce.jsonl alone has 105 raw-only lines.
    assert!(raw_reduce == 105, "{tally:?}");
}
