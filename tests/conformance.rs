//! Every line of the conformance files under the rule set it was made with: accepted payloads
//! must give the reference's nodes exactly (hash, hashed bytes, parent hash, stored bucket,
//! and the node kind where the file has one), rejected ones the same status.
//!
//! The files are in `tests/data/conformance/` (their format: its `README.md`):
//! `chains.jsonl` under `tapes-f237b6e`; `chains-v2.jsonl` and `raw-reduce.jsonl` under
//! `tapes-6ea4dfc`, whose raw-only payloads are reduced from their `raw_response` first, as
//! the server does. `tests/http/conformance.rs` posts the same lines to a server.

#[path = "support/vectors.rs"]
mod vectors;

use chrono::{DateTime, Utc};

use reel::capture::encoding::Unlimited;
use reel::cost::PriceBook;
use reel::merkle::{Chain, Rules, build_chain_under, hash_input};
use reel::turn::intake_under;
use reel::wire::{decode_batch, decode_turn_under};

use vectors::{Line, for_each_line, rules_of, same_json};

/// The clock of a reduction no stamp dates; nothing hashed depends on it.
const NOW: &str = "2031-02-03T04:05:06Z";

/// What the ingest endpoint does with a single-turn body, up to the chain: decode it,
/// validate its envelope, reduce a raw-only response, prepare the turn. A rejection is its
/// status.
fn ingest(body: &str, rules: &Rules) -> Result<Chain, u16> {
    let (payload, _) = decode_turn_under(body.as_bytes(), rules).map_err(|_| 400u16)?;
    payload.validate_session().map_err(|_| 400u16)?;
    let prices = PriceBook::only(Default::default());
    let now: DateTime<Utc> = NOW.parse().expect("a timestamp");
    let intake = intake_under(payload, None, false, &prices, &mut Unlimited, now, rules)
        .unwrap_or_else(|over| panic!("an unlimited allowance refused: {over}"));
    intake
        .prepared
        .map(|prepared| prepared.turn.chain)
        .map_err(|rejection| rejection.status_code())
}

/// Where a line differs from the reference, or `None`.
fn mismatch(line: &Line, rules: &Rules) -> Option<String> {
    let name = &line.name;
    let want = &line.expect;
    let chain = match (want.status, ingest(line.payload.get(), rules)) {
        (202, Ok(chain)) => chain,
        (status, Err(got)) if got == status && status != 202 => return None,
        (status, Err(got)) => return Some(format!("{name}: expected {status}, got {got}")),
        (status, Ok(_)) => return Some(format!("{name}: expected {status}, got a chain")),
    };
    if chain.nodes.len() != want.nodes.len() {
        return Some(format!(
            "{name}: {} nodes, expected {}",
            chain.nodes.len(),
            want.nodes.len()
        ));
    }
    for (i, (got, want)) in chain.nodes.iter().zip(&want.nodes).enumerate() {
        let input = hash_input(got.parent_hash.as_deref(), &got.bucket, rules);
        let input = String::from_utf8_lossy(&input);
        if got.hash != want.hash || input != want.hash_input {
            return Some(format!(
                "{name}: node {i} hash\n  expected {} {}\n  actual   {} {input}",
                want.hash, want.hash_input, got.hash
            ));
        }
        if got.parent_hash != want.parent_hash {
            return Some(format!(
                "{name}: node {i} parent {:?}, expected {:?}",
                got.parent_hash, want.parent_hash
            ));
        }
        let bucket = serde_json::to_value(&got.bucket).expect("a bucket serialises");
        if !same_json(&bucket, &want.bucket) {
            return Some(format!(
                "{name}: node {i} stored bucket\n  expected {}\n  actual   {bucket}",
                want.bucket
            ));
        }
        let kind = got.kind.map(|k| k.to_string());
        if kind != want.kind {
            return Some(format!(
                "{name}: node {i} kind {kind:?}, expected {:?}",
                want.kind
            ));
        }
    }
    None
}

/// Checks every line of `file` under `rules`, which every line must name; panics with each
/// line that differs.
fn check_file(file: &str, rules: Rules) {
    let mut mismatches = Vec::new();
    let checked = for_each_line(file, |line| {
        assert_eq!(rules_of(&line.expect), rules, "{}: rule set", line.name);
        mismatches.extend(mismatch(&line, &rules));
    });
    eprintln!(
        "{file} under {}: {} of {checked} lines match the reference",
        rules.name,
        checked - mismatches.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} of {checked} lines of {file} differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn every_line_of_chains_matches_the_reference_under_f237b6e() {
    check_file("chains.jsonl", Rules::TAPES_F237B6E);
}

#[test]
fn every_line_of_chains_v2_matches_the_reference_under_6ea4dfc() {
    check_file("chains-v2.jsonl", Rules::TAPES_6EA4DFC);
}

#[test]
fn every_reduced_line_of_raw_reduce_chains_as_the_reference_under_6ea4dfc() {
    check_file("raw-reduce.jsonl", Rules::TAPES_6EA4DFC);
}

/// The rules matter: the later vectors are not met under the earlier rules (nor the earlier
/// under the later), so neither test above could pass by ignoring its rule set.
#[test]
fn each_file_needs_its_own_rules() {
    for (file, other) in [
        ("chains.jsonl", Rules::TAPES_6EA4DFC),
        ("chains-v2.jsonl", Rules::TAPES_F237B6E),
    ] {
        let mut differ = 0;
        for_each_line(file, |line| {
            differ += usize::from(mismatch(&line, &other).is_some())
        });
        assert!(differ > 0, "{file} also holds under {}", other.name);
    }
}

/// A single-turn body has its request parsed in the same pass as the body; a batch keeps
/// each request verbatim and parses it afterwards. Both must give the same chain, or the
/// same error, on every line, under the line's rules.
#[test]
fn single_pass_decoding_agrees_with_verbatim_decoding() {
    fn outcome(
        decoded: Result<reel::wire::TurnPayload, String>,
        rules: &Rules,
    ) -> Result<Chain, String> {
        build_chain_under(decoded?, rules).map_err(|e| format!("422 {e}"))
    }
    for file in ["chains.jsonl", "chains-v2.jsonl"] {
        let checked = for_each_line(file, |line| {
            let rules = rules_of(&line.expect);
            let body = line.payload.get();
            let single = decode_turn_under(body.as_bytes(), &rules)
                .map(|(turn, _)| turn)
                .map_err(|_| "400".to_owned());
            let batch = format!(r#"{{"turns":[{body}]}}"#);
            let verbatim = decode_batch(batch.as_bytes())
                .map(|mut turns| turns.remove(0))
                .map_err(|_| "400".to_owned());
            assert_eq!(
                outcome(single, &rules),
                outcome(verbatim, &rules),
                "{file} {}",
                line.name
            );
        });
        eprintln!("{checked} lines of {file} decode alike in one pass and verbatim");
    }
}
