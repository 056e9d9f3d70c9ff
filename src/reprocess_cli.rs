//! `reel reprocess`: re-deriving quarantined raw turns with today's parsers.
//!
//! Each rejected row is derived again under the database's rules (`store::reprocess`, the step the server's
//! `POST /admin/raw/{id}/reprocess` shares). A turn that passes now commits
//! as the re-derivation of its row (`RawTurn::reprocessing`): its nodes, its counters and
//! the flip of the row to accepted share one transaction, and the flip happens once, so
//! when a concurrent run or a server re-derived the row first the commit rolls back
//! (`StoreError::AlreadyReprocessed`, counted as skipped). Rows go oldest first, so a
//! session's turns commit in the order they were sent. A row that still fails stays as it
//! is; running again commits nothing twice.

use std::io::Write;

use uuid::Uuid;

use crate::cost::PriceBook;
use crate::merkle::Rules;
use crate::store::{
    QuarantineCursor, QuarantineFilter, RawTurnSummary, Reprocessed, Store, StoreError,
    reprocess as derive_again,
};
use crate::turn::Committed;

/// Rows listed per statement.
const PAGE: u64 = 100;

/// What a `reel reprocess` invocation asks for.
#[derive(Debug, Clone)]
pub struct ReprocessOptions {
    pub filter: QuarantineFilter,
    /// Examine at most this many rows.
    pub limit: Option<u64>,
    /// Derive, but commit nothing.
    pub dry_run: bool,
    /// One line per row.
    pub verbose: bool,
    /// The server's `body_limit_bytes`: a request larger than a server would read is not
    /// decoded here either.
    pub body_limit: usize,
}

/// What a run did, row by row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReprocessReport {
    pub examined: u64,
    /// Committed, or with `dry_run` would have been.
    pub committed: u64,
    /// Still rejected by today's parsers; left as they were.
    pub still_failing: u64,
    /// Reprocessed by someone else meanwhile, pruned, or too large.
    pub skipped: u64,
    /// Could not be read back or committed.
    pub errors: u64,
}

/// What became of one row.
enum Verdict {
    Committed(Committed),
    WouldCommit,
    StillFailing(String),
    Skipped(String),
    Error(String),
}

/// Reprocesses the quarantined rows `options` selects, writing the summary line (and with
/// `verbose` a line per row) to `out`. An unreachable database ends the run with an error;
/// any other failure is the row's.
pub async fn run(
    store: &Store,
    prices: &PriceBook,
    rules: &Rules,
    options: &ReprocessOptions,
    out: &mut impl Write,
) -> Result<ReprocessReport, String> {
    let io = |e: std::io::Error| e.to_string();
    let mut report = ReprocessReport::default();
    let mut cursor: Option<QuarantineCursor> = None;
    let mut left = options.limit.unwrap_or(u64::MAX);
    while left > 0 {
        let want = left.min(PAGE);
        let page = store
            .quarantined(&options.filter, cursor, want)
            .await
            .map_err(|e| format!("cannot list quarantined raw turns: {e}"))?;
        for summary in &page {
            let verdict = reprocess(store, prices, rules, options, summary)
                .await
                .map_err(|e| format!("raw turn {}: {e}", summary.id))?;
            report.examined += 1;
            match &verdict {
                Verdict::Committed(_) | Verdict::WouldCommit => report.committed += 1,
                Verdict::StillFailing(_) => report.still_failing += 1,
                Verdict::Skipped(_) => report.skipped += 1,
                Verdict::Error(_) => report.errors += 1,
            }
            if options.verbose {
                writeln!(out, "{}", row_line(summary.id, &verdict)).map_err(io)?;
            }
        }
        match page.last() {
            Some(last) if page.len() as u64 == want => {
                cursor = Some(last.into());
                left -= want;
            }
            _ => break,
        }
    }
    let committed = if options.dry_run {
        "would commit"
    } else {
        "committed"
    };
    writeln!(
        out,
        "examined {}, {committed} {}, still failing {}, skipped {}, errors {}",
        report.examined, report.committed, report.still_failing, report.skipped, report.errors
    )
    .map_err(io)?;
    out.flush().map_err(io)?;
    Ok(report)
}

fn row_line(id: Uuid, verdict: &Verdict) -> String {
    match verdict {
        Verdict::Committed(c) => format!(
            "{id} committed: session {}, head {}, {} new nodes",
            c.session_id,
            c.head,
            c.new_nodes.len()
        ),
        Verdict::WouldCommit => format!("{id} would commit"),
        Verdict::StillFailing(why) => format!("{id} still failing: {why}"),
        Verdict::Skipped(why) => format!("{id} skipped: {why}"),
        Verdict::Error(why) => format!("{id} error: {why}"),
    }
}

/// Derives one row again and commits it when it passes. `Err` only for an outage, which
/// would fail every later row alike.
async fn reprocess(
    store: &Store,
    prices: &PriceBook,
    rules: &Rules,
    options: &ReprocessOptions,
    summary: &RawTurnSummary,
) -> Result<Verdict, StoreError> {
    let id = summary.id;
    let stored = match store.raw_turn(None, id).await {
        Ok(Some(stored)) => stored,
        Ok(None) => return Ok(Verdict::Skipped("pruned meanwhile".to_owned())),
        Err(e) if e.is_retryable() => return Err(e),
        Err(e) => return Ok(Verdict::Error(e.to_string())),
    };
    let turn = match derive_again(&stored, prices, rules, options.body_limit) {
        Reprocessed::Turn(turn) => turn,
        Reprocessed::StillFailing(why) => return Ok(Verdict::StillFailing(why)),
        Reprocessed::Skipped(why) => return Ok(Verdict::Skipped(why)),
        Reprocessed::Error(why) => return Ok(Verdict::Error(why)),
    };
    if options.dry_run {
        return Ok(Verdict::WouldCommit);
    }
    match store.commit_turn(&turn).await {
        Ok(committed) => Ok(Verdict::Committed(committed)),
        Err(StoreError::AlreadyReprocessed(_)) => {
            Ok(Verdict::Skipped("reprocessed meanwhile".to_owned()))
        }
        Err(e) if e.is_retryable() => Err(e),
        Err(e @ (StoreError::InvalidChain(_) | StoreError::InvalidTurn(_))) => {
            Ok(Verdict::StillFailing(e.to_string()))
        }
        Err(e) => Ok(Verdict::Error(e.to_string())),
    }
}
