//! `reel import`: loading existing captures through the ingest path.
//!
//! The input is JSON Lines of ingest payloads (bare, or `{"name","payload"}` lines as in
//! the conformance files) or a directory of wire recordings (`recording.rs`). Each turn goes
//! through the server's steps, in-process against the configured database (`local.rs`), or
//! is posted to a running server with an API key (`--url`, `remote.rs`).
//!
//! `--from-tapes` copies a database of the reference instead (`tapes.rs`): its nodes keep
//! their hashes and are linked to their sessions.
//!
//! Resumable: every turn carries a request id (its own `meta.request_id`, or one derived
//! from its bytes, `request_id.rs`), so a turn imported before is answered from its stored
//! raw turn and writes nothing; a second run over the same input imports nothing.
//!
//! Memory stays bounded on an input of any size: the input is read a line at a time, and at
//! most `concurrency` turns wait for their commit. A session's turns reach its actor in
//! input order, so its head and counters end as if a capture proxy had posted them: posted
//! to a server, a session's next turn waits for the answer to its last.

mod local;
mod progress;
mod recording;
mod remote;
mod request_id;
mod source;
mod tapes;

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::PathBuf;

use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};

use crate::store::StoreError;
use crate::turn::Rejection;

pub use local::Local;
pub use remote::Remote;
pub use source::{Item, Source, Unreadable};
pub use tapes::{TapesReport, run as run_tapes};

/// What a `reel import` invocation asks for.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// JSON Lines files and recording directories, imported in order.
    pub inputs: Vec<PathBuf>,
    /// Turns waiting for their commit at most.
    pub concurrency: usize,
    /// The server's `body_limit_bytes`: a larger turn is refused as a server would.
    pub body_limit: usize,
    /// Show the progress bar (it is drawn only on a terminal in any case).
    pub progress: bool,
    /// One line per turn that was not accepted.
    pub verbose: bool,
}

/// What became of one turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    /// Stored before (a second run, or the same turn twice): nothing was written.
    /// `quarantined` when what is stored is its rejection.
    Duplicate {
        quarantined: bool,
    },
    /// Refused, with its reason (`Rejection::reason`, or the importer's own).
    Rejected(String),
}

impl Outcome {
    fn rejected(rejection: &Rejection) -> Self {
        Outcome::Rejected(rejection.reason().to_owned())
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub turns: u64,
    pub accepted: u64,
    pub duplicates: u64,
    /// Of the duplicates, those whose stored raw turn is quarantined.
    pub duplicates_quarantined: u64,
    /// Rejected turns by reason.
    pub rejected: BTreeMap<String, u64>,
    /// Input bytes read.
    pub bytes: u64,
}

impl ImportReport {
    fn add(&mut self, outcome: &Outcome) {
        self.turns += 1;
        match outcome {
            Outcome::Accepted => self.accepted += 1,
            Outcome::Duplicate { quarantined } => {
                self.duplicates += 1;
                self.duplicates_quarantined += u64::from(*quarantined);
            }
            Outcome::Rejected(reason) => *self.rejected.entry(reason.clone()).or_default() += 1,
        }
    }

    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// `turns 10: accepted 7, duplicates 2 (1 quarantined), rejected 1 (unsupported_provider 1)`
    pub fn summary(&self) -> String {
        let reasons: Vec<String> = self
            .rejected
            .iter()
            .map(|(reason, n)| format!("{reason} {n}"))
            .collect();
        let mut line = format!(
            "turns {}: accepted {}, duplicates {} ({} quarantined), rejected {}",
            self.turns,
            self.accepted,
            self.duplicates,
            self.duplicates_quarantined,
            self.rejected_total()
        );
        if !reasons.is_empty() {
            line.push_str(&format!(" ({})", reasons.join(", ")));
        }
        line
    }
}

/// Why an import stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {error}")]
    Input {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The database (or server) is unreachable: a later run resumes.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(String),
    /// The server refused the key (401, or a 403 other than another org's turn).
    #[error("the server refused the key: {0}")]
    Refused(String),
    #[error("not a server URL: {0}")]
    Url(String),
    /// The server answered something that is not its API.
    #[error("unexpected answer: {0}")]
    Protocol(String),
    #[error("cannot write the report: {0}")]
    Output(std::io::Error),
}

impl ImportError {
    fn store(e: StoreError) -> Self {
        if e.is_retryable() {
            ImportError::Unavailable(e.to_string())
        } else {
            ImportError::Database(e.to_string())
        }
    }
}

/// Imports `options.inputs` in-process, writing the summary line (and with `verbose` a line
/// per turn not accepted) to `out`. The registry is shut down at the end, so every
/// committed turn is durable when this returns.
pub async fn run_local(
    local: Local,
    options: &ImportOptions,
    out: &mut impl Write,
) -> Result<ImportReport, ImportError> {
    let result = import_local(&local, options, out).await;
    local.registry.shutdown().await;
    write_summary(out, result?)
}

/// Imports `options.inputs` by posting every turn to the server `remote` names, writing
/// what [`run_local`] writes.
pub async fn run_remote(
    remote: &Remote,
    options: &ImportOptions,
    out: &mut impl Write,
) -> Result<ImportReport, ImportError> {
    let result = import_remote(remote, options, out).await;
    write_summary(out, result?)
}

fn write_summary(out: &mut impl Write, report: ImportReport) -> Result<ImportReport, ImportError> {
    writeln!(out, "{}", report.summary()).map_err(ImportError::Output)?;
    out.flush().map_err(ImportError::Output)?;
    Ok(report)
}

async fn import_local(
    local: &Local,
    options: &ImportOptions,
    out: &mut impl Write,
) -> Result<ImportReport, ImportError> {
    let (mut run, mut inputs) = Run::start(options, out)?;
    let mut in_flight = FuturesUnordered::new();
    'inputs: while let Some(Item { label, body, .. }) = run.next(&mut inputs) {
        let step = match body {
            Ok(body) => local.step(body).await,
            Err(unreadable) => Ok(local::Step::Done(Outcome::Rejected(
                unreadable.reason().to_owned(),
            ))),
        };
        match step {
            Ok(local::Step::Done(outcome)) => run.settle(&label, Ok(outcome)),
            Ok(local::Step::Commit(turn)) => {
                let registry = local.registry.clone();
                in_flight.push(Local::commit(registry, *turn).map(move |r| (label, r)));
            }
            Err(e) => run.fail(e),
        }
        // Every commit pushed is polled once before the next line is read: that first
        // poll hands the turn to its actor's mailbox, so a session's turns are queued
        // in input order while earlier ones still commit.
        while let Some(Some((label, result))) = in_flight.next().now_or_never() {
            run.settle(&label, result);
        }
        while in_flight.len() >= run.concurrency && !run.failed() {
            let Some((label, result)) = in_flight.next().await else {
                break 'inputs;
            };
            run.settle(&label, result);
        }
    }
    // What was handed to actors is waited for even after a failure: it may commit.
    while let Some((label, result)) = in_flight.next().await {
        run.settle(&label, result);
    }
    run.finish()
}

async fn import_remote(
    remote: &Remote,
    options: &ImportOptions,
    out: &mut impl Write,
) -> Result<ImportReport, ImportError> {
    let (mut run, mut inputs) = Run::start(options, out)?;
    let mut in_flight = FuturesUnordered::new();
    // The sessions with a turn in flight; `None` stands for every turn whose envelope names
    // no session (the server derives one from its chain), which are posted one at a time.
    let mut busy: HashSet<Option<request_id::Harness>> = HashSet::new();
    'inputs: while let Some(Item { label, body, .. }) = run.next(&mut inputs) {
        let (body, lane) = match body {
            Ok(body) => request_id::stamped(body),
            Err(unreadable) => {
                run.settle(
                    &label,
                    Ok(Outcome::Rejected(unreadable.reason().to_owned())),
                );
                continue;
            }
        };
        while in_flight.len() >= run.concurrency || busy.contains(&lane) {
            let next: Option<(_, String, _)> = in_flight.next().await;
            let Some((done, settled, result)) = next else {
                break;
            };
            busy.remove(&done);
            run.settle(&settled, result);
            if run.failed() {
                break 'inputs;
            }
        }
        busy.insert(lane.clone());
        let post = remote.post(bytes::Bytes::from(body));
        in_flight.push(post.map(move |r| (lane, label, r)));
    }
    // What was sent is waited for even after a failure: it may commit.
    while let Some((_, label, result)) = in_flight.next().await {
        run.settle(&label, result);
    }
    run.finish()
}

/// One import under way: its report, its bar, and the first error that ends it.
struct Run<'a, W> {
    report: ImportReport,
    bar: progress::Bar,
    options: &'a ImportOptions,
    out: &'a mut W,
    concurrency: usize,
    failure: Option<ImportError>,
}

impl<'a, W: Write> Run<'a, W> {
    /// Opens every input up front, so that a missing one fails before anything is imported.
    fn start(options: &'a ImportOptions, out: &'a mut W) -> Result<(Self, Inputs), ImportError> {
        let (inputs, total) = Inputs::open(options)?;
        let run = Run {
            report: ImportReport::default(),
            bar: progress::Bar::new(total, options.progress),
            options,
            out,
            concurrency: options.concurrency.max(1),
            failure: None,
        };
        Ok((run, inputs))
    }

    /// The next item, counted on the bar; `None` at the end of the inputs or once the
    /// import failed.
    fn next(&mut self, inputs: &mut Inputs) -> Option<Item> {
        if self.failed() {
            return None;
        }
        match inputs.next() {
            Ok(Some(item)) => {
                self.bar.advance(item.consumed);
                self.report.bytes += item.consumed;
                Some(item)
            }
            Ok(None) => None,
            Err(e) => {
                self.fail(e);
                None
            }
        }
    }

    fn failed(&self) -> bool {
        self.failure.is_some()
    }

    /// Keeps the first error: it is the one that ended the import.
    fn fail(&mut self, error: ImportError) {
        self.failure.get_or_insert(error);
    }

    /// Counts what became of a turn (and with `verbose` prints a rejection).
    fn settle(&mut self, label: &str, result: Result<Outcome, ImportError>) {
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(e) => return self.fail(e),
        };
        self.report.add(&outcome);
        self.bar.turns(&self.report);
        if self.options.verbose
            && let Outcome::Rejected(reason) = &outcome
        {
            let out = &mut *self.out;
            if let Err(e) = self
                .bar
                .suspend(|| writeln!(out, "{label}: rejected: {reason}"))
            {
                self.fail(ImportError::Output(e));
            }
        }
    }

    fn finish(self) -> Result<ImportReport, ImportError> {
        self.bar.finish();
        match self.failure {
            Some(e) => Err(e),
            None => Ok(self.report),
        }
    }
}

/// The items of every input in turn.
struct Inputs {
    current: Option<(PathBuf, Source)>,
    rest: std::vec::IntoIter<(PathBuf, Source)>,
}

impl Inputs {
    /// Opens every input; also returns their bytes in all, for the bar.
    fn open(options: &ImportOptions) -> Result<(Inputs, u64), ImportError> {
        let mut total = 0;
        let mut sources = Vec::with_capacity(options.inputs.len());
        for path in &options.inputs {
            let source =
                Source::open(path, options.body_limit).map_err(|error| ImportError::Input {
                    path: path.clone(),
                    error,
                })?;
            total += Source::total_bytes(path, &source);
            sources.push((path.clone(), source));
        }
        let mut rest = sources.into_iter();
        let current = rest.next();
        Ok((Inputs { current, rest }, total))
    }

    fn next(&mut self) -> Result<Option<Item>, ImportError> {
        while let Some((path, source)) = &mut self.current {
            match source.next_item() {
                Ok(Some(item)) => return Ok(Some(item)),
                Ok(None) => self.current = self.rest.next(),
                Err(error) => {
                    return Err(ImportError::Input {
                        path: path.clone(),
                        error,
                    });
                }
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_every_count() {
        let mut report = ImportReport::default();
        for outcome in [
            Outcome::Accepted,
            Outcome::Duplicate { quarantined: true },
            Outcome::Rejected("limit".into()),
            Outcome::Rejected("limit".into()),
            Outcome::Rejected("invalid_envelope".into()),
        ] {
            report.add(&outcome);
        }
        assert_eq!(
            report.summary(),
            "turns 5: accepted 1, duplicates 1 (1 quarantined), rejected 3 (invalid_envelope 1, limit 2)"
        );
    }
}
