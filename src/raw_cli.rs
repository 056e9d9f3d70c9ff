//! `reel raw get|list` and `reel prune`: reading raw turns back, and their retention.
//!
//! `raw get` prints the body a turn was posted in (`StoredRawTurn::payload`), so that
//! POSTing it again reproduces the turn; `--request` prints the request bytes exactly as
//! received. `raw list` prints one JSON line per raw turn, without bodies.

use std::io::Write;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use uuid::Uuid;

use crate::store::{RawFilter, Store};

/// Summaries read per statement while listing.
const LIST_PAGE: u64 = 1_000;

/// What a `reel raw` invocation asks for.
#[derive(Debug, Clone)]
pub enum RawAction {
    Get {
        id: Uuid,
        /// Only within this org.
        org: Option<Uuid>,
        /// Print the request bytes alone.
        request_only: bool,
    },
    List {
        filter: RawFilter,
        /// Start after this raw turn id (the last one a previous listing printed).
        after: Option<Uuid>,
        limit: u64,
    },
}

/// Runs `action` against `store`, writing what it prints to `out`.
pub async fn run(store: &Store, action: RawAction, out: &mut impl Write) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    match action {
        RawAction::Get {
            id,
            org,
            request_only,
        } => {
            let stored = store
                .raw_turn(org, id)
                .await
                .map_err(|e| format!("cannot read raw turn {id}: {e}"))?
                .ok_or_else(|| match org {
                    Some(org) => format!("no raw turn {id} in org {org}"),
                    None => format!("no raw turn {id}"),
                })?;
            if request_only {
                out.write_all(&stored.request).map_err(io)?;
            } else {
                let payload = stored.payload().map_err(|e| e.to_string())?;
                serde_json::to_writer(&mut *out, &payload).map_err(|e| e.to_string())?;
                out.write_all(b"\n").map_err(io)?;
            }
        }
        RawAction::List {
            filter,
            mut after,
            limit,
        } => {
            let mut left = limit;
            while left > 0 {
                let want = left.min(LIST_PAGE);
                let page = store
                    .list_raw(&filter, after, want)
                    .await
                    .map_err(|e| format!("cannot list raw turns: {e}"))?;
                for summary in &page {
                    serde_json::to_writer(&mut *out, summary).map_err(|e| e.to_string())?;
                    out.write_all(b"\n").map_err(io)?;
                }
                match page.last() {
                    Some(last) if page.len() as u64 == want => {
                        after = Some(last.id);
                        left -= want;
                    }
                    _ => break,
                }
            }
        }
    }
    out.flush().map_err(io)
}

/// `reel prune`: deletes the raw turns received more than `older_than_days` days before
/// `now`, and the chunks only they reached. 0 keeps everything.
pub async fn prune(
    store: &Store,
    older_than_days: u32,
    now: DateTime<Utc>,
    out: &mut impl Write,
) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    if older_than_days == 0 {
        writeln!(out, "retention is 0 days (keep for ever): nothing pruned").map_err(io)?;
        return Ok(());
    }
    let cutoff = Duration::try_days(i64::from(older_than_days))
        .and_then(|age| now.checked_sub_signed(age))
        .ok_or_else(|| format!("{older_than_days} days before now is out of range"))?;
    let report = store
        .prune_raw(cutoff)
        .await
        .map_err(|e| format!("cannot prune raw turns: {e}"))?;
    writeln!(
        out,
        "pruned {} raw turns and {} chunks received before {}",
        report.turns,
        report.chunks,
        cutoff.to_rfc3339_opts(SecondsFormat::Secs, true)
    )
    .map_err(io)
}
