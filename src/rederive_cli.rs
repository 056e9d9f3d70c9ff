//! `reel rederive --rules R`: rebuilding every session whose raw history is complete under
//! rule set R (docs/storage.md#rederive).
//!
//! A session's raw history is complete when its accepted raw turns hold every turn it
//! counted: at least as many distinct heads as its `turn_count`. Its raw turns are derived
//! again in the order they were stored, under R (`turn::intake_under`, dated by their
//! arrival, without keeping new raw turns), and the session is rebuilt from them in one
//! transaction (`Store::rebuild_session`). Sessions rebuilt by an earlier, interrupted run
//! are skipped, so a run killed at any point resumes; when every session has been
//! examined, `Store::finish_rederive` deletes what only the old chains held and records R.
//!
//! Sessions left alone keep their chains: those whose history predates raw capture, those
//! a raw turn of which R rejects, those whose turns would belong to another session under R,
//! and those whose counters would change. Each is listed with its reason.
//!
//! Servers must be stopped meanwhile: they hash by the rule set the database records until
//! the last transaction, and a turn committed into a session being rebuilt would mix both.

use std::collections::HashSet;
use std::io::Write;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use uuid::Uuid;

use crate::capture::encoding::Unlimited;
use crate::cost::PriceBook;
use crate::merkle::Rules;
use crate::store::{
    Counters, RawFilter, RawOutcome, Rebuild, SessionBefore, Store, StoreError, recorded_rules,
};
use crate::turn::{Rejection, Turn, intake_under};
use crate::wire::decode_turn_verbatim;

/// Raw turns listed per statement.
const PAGE: u64 = 500;

/// What a `reel rederive` invocation asks for.
#[derive(Debug, Clone)]
pub struct RederiveOptions {
    pub rules: &'static Rules,
    /// Stop after rebuilding this many sessions, as if killed (before the last
    /// transaction); for testing that a run resumes.
    pub stop_after: Option<u64>,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

/// Why a session was left as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeftAlone {
    /// Fewer accepted raw turns than counted turns: its history predates raw capture.
    Incomplete { raw_heads: usize, turns: i32 },
    /// R rejects one of its raw turns.
    Rejected { raw_turn: Uuid, error: String },
    /// Under R its turns belong to another session id.
    WouldMove { harness_session_id: String },
    /// Replayed, its turns or tokens would change.
    CountersDiffer { before: Counters, after: Counters },
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RederiveReport {
    pub examined: u64,
    pub rebuilt: u64,
    /// Rebuilt by an earlier run.
    pub already: u64,
    pub left_alone: Vec<(Uuid, LeftAlone)>,
    /// The database records R now.
    pub finished: bool,
    /// Nodes only the old chains held, deleted by the last transaction.
    pub deleted_nodes: u64,
}

/// Rebuilds the database's sessions under `options.rules`, writing the summary (and the
/// sessions left alone) to `out`. An unreachable database ends the run with an error; it
/// resumes when run again.
pub async fn run(
    store: &Store,
    prices: &PriceBook,
    options: &RederiveOptions,
    out: &mut impl Write,
) -> Result<RederiveReport, String> {
    let rules = options.rules;
    let io = |e: std::io::Error| e.to_string();
    let db_error = |e: StoreError| e.to_string();
    let mut report = RederiveReport::default();

    let done = store.rederived().await.map_err(db_error)?;
    if let Some((_, other)) = done.iter().find(|(_, r)| r != rules.name) {
        return Err(format!(
            "a rederive to {other} is unfinished: run `reel rederive --rules {other}` first"
        ));
    }
    let recorded = recorded_rules(store.connection())
        .await
        .map_err(|e| e.to_string())?;
    if recorded == Some(rules) && done.is_empty() {
        writeln!(
            out,
            "the database's chains are hashed by {} already; nothing to do",
            rules.name
        )
        .map_err(io)?;
        report.finished = true;
        return Ok(report);
    }
    let done: HashSet<Uuid> = done.into_iter().map(|(id, _)| id).collect();

    let bar = progress_bar(
        options.progress,
        store.session_count().await.map_err(db_error)?,
    );
    let mut after = None;
    loop {
        let page = store.sessions_to_rederive(after).await.map_err(db_error)?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for session in &page {
            bar.inc(1);
            report.examined += 1;
            if done.contains(&session.id) {
                report.already += 1;
                continue;
            }
            match rebuild(store, prices, rules, session)
                .await
                .map_err(db_error)?
            {
                None => report.rebuilt += 1,
                Some(why) => report.left_alone.push((session.id, why)),
            }
            if options.stop_after.is_some_and(|n| report.rebuilt >= n) {
                bar.abandon();
                return Ok(report);
            }
        }
    }
    bar.finish_and_clear();
    report.deleted_nodes = store.finish_rederive(rules).await.map_err(db_error)?;
    report.finished = true;
    summarise(&report, rules, recorded, out).map_err(io)?;
    Ok(report)
}

fn progress_bar(visible: bool, sessions: u64) -> ProgressBar {
    let target = if visible {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(sessions), target);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} sessions {elapsed}") {
        bar.set_style(style);
    }
    bar
}

/// Derives `session`'s raw turns under `rules` and rebuilds it; `Some` with the reason when
/// it is left as it was. `Err` only for the database's errors.
async fn rebuild(
    store: &Store,
    prices: &PriceBook,
    rules: &'static Rules,
    session: &SessionBefore,
) -> Result<Option<LeftAlone>, StoreError> {
    let filter = RawFilter {
        org: Some(session.org_id),
        session: Some(session.id),
        outcome: Some(RawOutcome::Accepted),
    };
    let mut raw = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_raw(&filter, after, PAGE).await?;
        let full = page.len() as u64 == PAGE;
        after = page.last().map(|r| r.id);
        raw.extend(page);
        if !full {
            break;
        }
    }
    let heads: HashSet<&str> = raw.iter().filter_map(|r| r.head_hash.as_deref()).collect();
    if heads.len() < usize::try_from(session.counters.turns).unwrap_or(usize::MAX) {
        return Ok(Some(LeftAlone::Incomplete {
            raw_heads: heads.len(),
            turns: session.counters.turns,
        }));
    }

    let mut turns = Vec::with_capacity(raw.len());
    for summary in &raw {
        match derive(store, prices, rules, summary.id, summary.received_at).await? {
            Ok(mut turn) => {
                // The raw turn's org is the one the server decided (the key's, in keys mode).
                turn.key.org_id = session.org_id;
                turns.push((summary.id, turn));
            }
            Err(error) => {
                return Ok(Some(LeftAlone::Rejected {
                    raw_turn: summary.id,
                    error,
                }));
            }
        }
    }
    Ok(match store.rebuild_session(session, &turns, rules).await? {
        Rebuild::Rebuilt => None,
        Rebuild::WouldMove { harness_session_id } => {
            Some(LeftAlone::WouldMove { harness_session_id })
        }
        Rebuild::CountersDiffer { after } => Some(LeftAlone::CountersDiffer {
            before: session.counters,
            after,
        }),
    })
}

/// Raw turn `id` derived again under `rules`: the turn, or why it is rejected now.
async fn derive(
    store: &Store,
    prices: &PriceBook,
    rules: &Rules,
    id: Uuid,
    received_at: chrono::DateTime<chrono::Utc>,
) -> Result<Result<Turn, String>, StoreError> {
    let Some(stored) = store.raw_turn(None, id).await? else {
        return Ok(Err("pruned meanwhile".to_owned()));
    };
    let body = match stored
        .reprocessing_payload()
        .map_err(|e| e.to_string())
        .and_then(|payload| serde_json::to_vec(&payload).map_err(|e| e.to_string()))
    {
        Ok(body) => body,
        Err(why) => return Ok(Err(why)),
    };
    let payload = match decode_turn_verbatim(&body) {
        Ok((payload, _)) => payload,
        Err(e) => return Ok(Err(Rejection::from(e).to_string())),
    };
    if let Err(e) = payload.validate_session() {
        return Ok(Err(Rejection::from(e).to_string()));
    }
    let Ok(intake) = intake_under(
        payload,
        None,
        false,
        prices,
        &mut Unlimited,
        received_at,
        rules,
    ) else {
        return Ok(Err("the raw response needs more memory than allowed".into()));
    };
    Ok(intake
        .prepared
        .map(|prepared| prepared.turn)
        .map_err(|rejection| rejection.to_string()))
}

fn summarise(
    report: &RederiveReport,
    rules: &Rules,
    before: Option<&Rules>,
    out: &mut impl Write,
) -> std::io::Result<()> {
    for (id, why) in &report.left_alone {
        let why = match why {
            LeftAlone::Incomplete { raw_heads, turns } => {
                format!("predates raw capture: {raw_heads} of its {turns} turns have raw turns")
            }
            LeftAlone::Rejected { raw_turn, error } => {
                format!(
                    "raw turn {raw_turn} is rejected under {}: {error}",
                    rules.name
                )
            }
            LeftAlone::WouldMove { harness_session_id } => format!(
                "under {} its turns belong to session id {harness_session_id:?}",
                rules.name
            ),
            LeftAlone::CountersDiffer { before, after } => format!(
                "replayed, it would count {} turns and {}/{} tokens, not {} and {}/{} (a turn \
                 another session counted first)",
                after.turns,
                after.input_tokens,
                after.output_tokens,
                before.turns,
                before.input_tokens,
                before.output_tokens
            ),
        };
        writeln!(out, "left alone {id}: {why}")?;
    }
    writeln!(
        out,
        "examined {} sessions: rebuilt {} ({} by an earlier run), left alone {}; deleted {} \
         nodes only the old chains held; the database records {}",
        report.examined,
        report.rebuilt + report.already,
        report.already,
        report.left_alone.len(),
        report.deleted_nodes,
        rules.name
    )?;
    if !report.left_alone.is_empty() {
        let old = before.map_or("their old rules", |r| r.name);
        writeln!(
            out,
            "the sessions left alone keep their chains ({old}); their next turns are hashed by \
             {}. To rebuild one, send its whole conversation again (its harness transcript), \
             or delete it.",
            rules.name
        )?;
    }
    out.flush()
}
