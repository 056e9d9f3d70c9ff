//! The progress bar of `reel import`: input bytes against the total, their rate and the
//! time left, and the turns settled so far. indicatif draws it on stderr only when stderr
//! is a terminal, so piped and scripted runs print only their summary.

use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::ImportReport;

const BYTES: &str = "{elapsed_precise} [{wide_bar}] {bytes}/{total_bytes} \
                     {bytes_per_sec} ETA {eta} {msg}";
const ROWS: &str = "{elapsed_precise} [{wide_bar}] {human_pos}/{human_len} rows \
                    {per_sec} ETA {eta} {msg}";

pub struct Bar {
    bar: ProgressBar,
    started: Instant,
}

impl Bar {
    /// A bar over `total` input bytes; hidden unless `shown` and stderr is a terminal.
    pub fn new(total: u64, shown: bool) -> Bar {
        Bar::with_template(total, shown, BYTES)
    }

    /// A bar over `total` database rows.
    pub fn rows(total: u64, shown: bool) -> Bar {
        Bar::with_template(total, shown, ROWS)
    }

    fn with_template(total: u64, shown: bool, template: &str) -> Bar {
        let target = if shown {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        Bar {
            bar,
            started: Instant::now(),
        }
    }

    /// `bytes` more of the input were read.
    pub fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    /// Shows the turn counts and their rate.
    pub fn turns(&self, report: &ImportReport) {
        if self.bar.is_hidden() {
            return;
        }
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        self.bar.set_message(format!(
            "{} ({:.0}/s): {} accepted, {} duplicates, {} rejected",
            report.turns,
            report.turns as f64 / secs,
            report.accepted,
            report.duplicates,
            report.rejected_total()
        ));
    }

    /// Runs `write` with the bar cleared, so a printed line does not tear it.
    pub fn suspend<T>(&self, write: impl FnOnce() -> T) -> T {
        self.bar.suspend(write)
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
