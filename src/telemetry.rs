//! Logs and metrics.
//!
//! Metrics live in a registry owned by each server instance (no process-global default
//! registry), as in the reference, so tests can run many servers in one process and read
//! each one's numbers. The reference's four families keep their names, help texts, labels
//! and buckets so existing dashboards keep working; reel's own families are prefixed `reel_`.
//!
//! Label values are bounded: `provider` is one of the three known providers or `unknown`,
//! never a string a client chose.

mod recent;

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};
use crate::turn::{Committed, Rejection};
use crate::wire::{Repairs, TurnError};

pub use recent::{INTERVAL_SECS, INTERVALS, Interval, Recent};

/// The providers the `provider` label may name, besides `unknown`.
pub const KNOWN_PROVIDERS: [&str; 3] = ["anthropic", "openai", "ollama"];

/// The bounded value of the `provider` label for a client-supplied provider string.
pub fn provider_label(provider: &str) -> &'static str {
    KNOWN_PROVIDERS
        .into_iter()
        .find(|p| *p == provider)
        .unwrap_or("unknown")
}

/// Values of the `status` label of `tapes_ingest_writes_total`.
pub mod status {
    pub const ACCEPTED: &str = "accepted";
    pub const REJECT_ENVELOPE: &str = "reject_envelope";
    /// A body over the ingest size limit (413).
    pub const REJECT_OVERSIZE: &str = "reject_oversize";
    pub const REJECT_PARSE: &str = "reject_parse";
    pub const UNKNOWN_PROVIDER: &str = "unknown_provider";
    /// Declared but never emitted by the reference; reel uses it for backpressure (429).
    pub const QUEUE_FULL: &str = "queue_full";
    pub const DOWNSTREAM_ERROR: &str = "downstream_error";
}

/// Why a turn was refused with 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverloadReason {
    SessionPending,
    InFlight,
    OrgInFlight,
    LiveActors,
    BodyBudget,
}

impl OverloadReason {
    pub fn label(self) -> &'static str {
        match self {
            OverloadReason::SessionPending => "session_pending",
            OverloadReason::InFlight => "in_flight",
            OverloadReason::OrgInFlight => "org_in_flight",
            OverloadReason::LiveActors => "live_actors",
            OverloadReason::BodyBudget => "body_budget",
        }
    }
}

/// How a turn that reached its session failed, as the metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// A limit was full: 429.
    Overloaded(OverloadReason),
    /// The database was unreachable or the server stopping: 503.
    Unavailable,
    /// Anything else.
    Error,
}

/// Why an actor stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Idle,
    Admin,
    Shutdown,
}

impl StopReason {
    pub fn label(self) -> &'static str {
        match self {
            StopReason::Idle => "idle",
            StopReason::Admin => "admin",
            StopReason::Shutdown => "shutdown",
        }
    }
}

/// Every metric of one server instance. Cheap to clone (the collectors are shared handles).
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    // The reference's families.
    pub writes_total: IntCounterVec,
    pub dag_write_seconds: HistogramVec,
    pub worker_queue_depth: IntGauge,
    pub body_bytes: HistogramVec,
    // reel's.
    pub live_actors: IntGauge,
    pub actor_spawns_total: IntCounter,
    pub actor_stops_total: IntCounterVec,
    pub session_pending: Histogram,
    pub in_flight: IntGauge,
    pub writer_queued: IntGauge,
    pub commit_seconds: Histogram,
    pub turns_total: IntCounterVec,
    pub overloaded_total: IntCounterVec,
    pub unavailable_total: IntCounter,
    pub body_too_large_total: IntCounter,
    pub body_timeout_total: IntCounter,
    pub nul_replacements_total: IntCounter,
    pub invalid_utf8_total: IntCounter,
    pub unknown_model_cost_total: IntCounter,
    pub capture: CaptureMetrics,
    /// The last minutes of ingest by interval, for the admin console.
    pub recent: Arc<Recent>,
}

/// What capture adds to a turn's path: server-side reductions, raw turns, the quarantine.
#[derive(Clone)]
pub struct CaptureMetrics {
    /// The reference's `tapes_ingest_rawonly_stamp_total{provider,field,source}`.
    pub stamps_total: IntCounterVec,
    pub reductions_total: IntCounterVec,
    pub quarantined_total: IntCounterVec,
    pub quarantine_skipped_total: IntCounterVec,
    pub replayed_total: IntCounter,
    pub request_id_conflicts_total: IntCounterVec,
    pub raw_bytes_total: IntCounter,
    pub chunks_written_total: IntCounter,
    pub chunks_deduplicated_total: IntCounter,
}

impl CaptureMetrics {
    fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        Ok(CaptureMetrics {
            stamps_total: counter_vec(
                "tapes_ingest_rawonly_stamp_total",
                "Capture-side fields restored onto a server-side raw-only reduction, by provider, field, and whether the envelope supplied the value or ingest fell back. A rising fallback rate means raw-only rows are landing without a capture-side duration or with an ingest-clock timestamp.",
                &["provider", "field", "source"],
            )?,
            reductions_total: counter_vec(
                "reel_raw_reductions_total",
                "Raw-only turns reduced by the server, by provider and outcome (reduced, truncated, failed).",
                &["provider", "outcome"],
            )?,
            quarantined_total: counter_vec(
                "reel_quarantined_total",
                "Turns answered 422 and kept as quarantined raw turns, by reason.",
                &["reason"],
            )?,
            quarantine_skipped_total: counter_vec(
                "reel_quarantine_skipped_total",
                "Turns answered 422 without being kept, by why (over_budget, disabled).",
                &["reason"],
            )?,
            replayed_total: counter(
                "reel_raw_replayed_total",
                "Turns whose meta.request_id was already stored, answered as the first time without parsing again.",
            )?,
            request_id_conflicts_total: counter_vec(
                "reel_raw_request_id_conflicts_total",
                "Retries whose content differs from the raw turn stored under the same request id (the first row is kept).",
                &["provider"],
            )?,
            raw_bytes_total: counter(
                "reel_raw_bytes_stored_total",
                "Bytes written for the raw turns of accepted turns: new request chunks (compressed), responses, meta, envelopes and raw response bytes.",
            )?,
            chunks_written_total: counter(
                "reel_raw_chunks_written_total",
                "Request chunks written because their org did not store them yet.",
            )?,
            chunks_deduplicated_total: counter(
                "reel_raw_chunks_deduplicated_total",
                "Request chunks not written because their org already stored them.",
            )?,
        })
    }

    /// One server-side reduction was stamped from `meta` (or fell back).
    pub fn stamped(&self, provider: &str, duration_source: &str, created_at_source: &str) {
        let provider = provider_label(provider);
        self.stamps_total
            .with_label_values(&[provider, "duration", duration_source])
            .inc();
        self.stamps_total
            .with_label_values(&[provider, "created_at", created_at_source])
            .inc();
    }
}

/// Building the registry failed: only a programming error (a duplicate or malformed name).
#[derive(Debug, thiserror::Error)]
#[error("metrics registry: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl Metrics {
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new();

        let writes_total = IntCounterVec::new(
            Opts::new(
                "tapes_ingest_writes_total",
                "Total ingest write attempts by provider and outcome status.",
            ),
            &["provider", "status"],
        )?;
        let dag_write_seconds = HistogramVec::new(
            HistogramOpts::new(
                "tapes_ingest_dag_write_seconds",
                "Latency of ingest writes by provider: from a decoded turn to its committed transaction.",
            ),
            &["provider"],
        )?;
        let worker_queue_depth = IntGauge::new(
            "tapes_ingest_worker_queue_depth",
            "Turns accepted and not yet committed, across all sessions.",
        )?;
        let body_bytes = HistogramVec::new(
            HistogramOpts::new(
                "tapes_ingest_body_bytes",
                "Size of accepted ingest bodies in bytes, by provider.",
            )
            .buckets(exponential_buckets_range(256.0, 16.0 * 1024.0 * 1024.0, 12)),
            &["provider"],
        )?;

        let live_actors = IntGauge::new("reel_session_actors", "Session actors alive now.")?;
        let actor_spawns_total =
            IntCounter::new("reel_session_actor_spawns_total", "Session actors started.")?;
        let actor_stops_total = IntCounterVec::new(
            Opts::new(
                "reel_session_actor_stops_total",
                "Session actors stopped, by reason (idle, admin, shutdown).",
            ),
            &["reason"],
        )?;
        let session_pending = Histogram::with_opts(
            HistogramOpts::new(
                "reel_session_pending_turns",
                "Turns pending in a session, observed as each turn is submitted (itself included).",
            )
            .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
        )?;
        let in_flight = IntGauge::new(
            "reel_turns_in_flight",
            "Turns accepted and not yet committed, across all sessions.",
        )?;
        let writer_queued = IntGauge::new(
            "reel_writer_queued",
            "Session commits waiting for the group writer, which commits them together.",
        )?;
        let commit_seconds = Histogram::with_opts(HistogramOpts::new(
            "reel_commit_seconds",
            "Duration of one session commit (the store transaction), in seconds.",
        ))?;
        let turns_total = IntCounterVec::new(
            Opts::new(
                "reel_turns_total",
                "Committed turns: counted (first time as a head) or duplicate (a retry).",
            ),
            &["outcome"],
        )?;
        let overloaded_total = IntCounterVec::new(
            Opts::new(
                "reel_overloaded_total",
                "Requests answered 429, by the limit that was full.",
            ),
            &["reason"],
        )?;
        let unavailable_total = IntCounter::new(
            "reel_unavailable_total",
            "Requests answered 503 because the database was unreachable or the server was stopping.",
        )?;
        let body_too_large_total = IntCounter::new(
            "reel_body_too_large_total",
            "Requests answered 413 because the body exceeded the limit.",
        )?;
        let body_timeout_total = IntCounter::new(
            "reel_body_timeout_total",
            "Requests answered 408 because the body did not arrive in time.",
        )?;
        let nul_replacements_total = IntCounter::new(
            "reel_nul_replacements_total",
            "U+0000 characters stored as U+FFFD.",
        )?;
        let invalid_utf8_total = IntCounter::new(
            "reel_invalid_utf8_replacements_total",
            "Bytes of request bodies that were not UTF-8 and were decoded as U+FFFD, as Go does.",
        )?;
        let unknown_model_cost_total = IntCounter::new(
            "reel_cost_unknown_model_total",
            "Turns whose model has no price; they were recorded at 0 USD.",
        )?;

        registry.register(Box::new(writes_total.clone()))?;
        registry.register(Box::new(dag_write_seconds.clone()))?;
        registry.register(Box::new(worker_queue_depth.clone()))?;
        registry.register(Box::new(body_bytes.clone()))?;
        registry.register(Box::new(live_actors.clone()))?;
        registry.register(Box::new(actor_spawns_total.clone()))?;
        registry.register(Box::new(actor_stops_total.clone()))?;
        registry.register(Box::new(session_pending.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(writer_queued.clone()))?;
        registry.register(Box::new(commit_seconds.clone()))?;
        registry.register(Box::new(turns_total.clone()))?;
        registry.register(Box::new(overloaded_total.clone()))?;
        registry.register(Box::new(unavailable_total.clone()))?;
        registry.register(Box::new(body_too_large_total.clone()))?;
        registry.register(Box::new(body_timeout_total.clone()))?;
        registry.register(Box::new(nul_replacements_total.clone()))?;
        registry.register(Box::new(invalid_utf8_total.clone()))?;
        registry.register(Box::new(unknown_model_cost_total.clone()))?;

        let capture = CaptureMetrics::new(&registry)?;

        Ok(Metrics {
            capture,
            recent: Arc::default(),
            registry: Arc::new(registry),
            writes_total,
            dag_write_seconds,
            worker_queue_depth,
            body_bytes,
            live_actors,
            actor_spawns_total,
            actor_stops_total,
            session_pending,
            in_flight,
            writer_queued,
            commit_seconds,
            turns_total,
            overloaded_total,
            unavailable_total,
            body_too_large_total,
            body_timeout_total,
            nul_replacements_total,
            invalid_utf8_total,
            unknown_model_cost_total,
        })
    }

    /// Counts one ingest attempt under the reference's `writes_total{provider,status}`.
    pub fn write(&self, provider: &str, status: &str) {
        self.writes_total
            .with_label_values(&[provider_label(provider), status])
            .inc();
        self.recent.write(status);
    }

    // What happens to a turn, from its body to its commit, is counted by the methods below
    // and nowhere else.

    /// A turn was answered 202: the reference's write latency (from the decoded turn to
    /// its commit), outcome and body size.
    pub fn turn_accepted(&self, provider: &str, elapsed: Duration, body_bytes: usize) {
        let label = provider_label(provider);
        self.dag_write_seconds
            .with_label_values(&[label])
            .observe(elapsed.as_secs_f64());
        self.recent.latency(elapsed);
        self.write(provider, status::ACCEPTED);
        // As in the reference, only bodies with bytes are observed.
        if body_bytes > 0 {
            self.body_bytes
                .with_label_values(&[label])
                .observe(body_bytes as f64);
        }
    }

    /// A body was refused before reaching its session (400 or 422), labelled with
    /// `provider` (the reference labels a single turn's envelope rejection `unknown`, a
    /// batch turn's with its provider; the caller decides).
    pub fn turn_rejected(&self, provider: &str, rejection: &Rejection) {
        let status = match rejection {
            Rejection::Body(_) | Rejection::Envelope(_) => status::REJECT_ENVELOPE,
            Rejection::Turn(TurnError::UnsupportedProvider(_)) => status::UNKNOWN_PROVIDER,
            Rejection::Turn(_) | Rejection::Limit(_) => status::REJECT_PARSE,
        };
        self.write(provider, status);
    }

    /// A body was refused before it could be decoded (unreadable, wrong content type).
    pub fn body_rejected(&self) {
        self.write("", status::REJECT_ENVELOPE);
    }

    /// A body decoded with bytes that were not UTF-8, each replaced by U+FFFD.
    pub fn body_repaired(&self, repairs: Repairs) {
        if repairs.invalid_utf8 > 0 {
            self.invalid_utf8_total.inc_by(repairs.invalid_utf8 as u64);
        }
    }

    /// A turn was priced at 0 because its model has no price.
    pub fn turn_priced_unknown(&self) {
        self.unknown_model_cost_total.inc();
    }

    /// A turn reached its session but was not committed (429, 503 or an error).
    pub fn turn_failed(&self, provider: &str, failure: Failure) {
        match failure {
            Failure::Overloaded(reason) => {
                self.write(provider, status::QUEUE_FULL);
                self.overloaded(reason);
            }
            Failure::Unavailable => {
                self.write(provider, status::DOWNSTREAM_ERROR);
                self.unavailable_total.inc();
            }
            Failure::Error => self.write(provider, status::DOWNSTREAM_ERROR),
        }
    }

    /// A session's actor committed a turn (whether or not its client still waits).
    pub fn turn_committed(&self, committed: &Committed) {
        let outcome = if committed.counted {
            "counted"
        } else {
            "duplicate"
        };
        self.turns_total.with_label_values(&[outcome]).inc();
        if committed.nul_replacements > 0 {
            self.nul_replacements_total
                .inc_by(committed.nul_replacements);
        }
    }

    /// A request was answered 429 because `reason`'s limit was full.
    pub fn overloaded(&self, reason: OverloadReason) {
        self.overloaded_total
            .with_label_values(&[reason.label()])
            .inc();
    }

    /// Turns submitted and not yet answered: the reference's queue depth and reel's gauge
    /// show the same number.
    pub fn set_in_flight(&self, turns: usize) {
        let turns = i64::try_from(turns).unwrap_or(i64::MAX);
        self.worker_queue_depth.set(turns);
        self.in_flight.set(turns);
    }

    /// One session commit (a store transaction) took `elapsed`.
    pub fn commit_finished(&self, elapsed: Duration) {
        self.commit_seconds.observe(elapsed.as_secs_f64());
    }

    pub fn actor_started(&self) {
        self.live_actors.inc();
        self.actor_spawns_total.inc();
    }

    pub fn actor_stopped(&self, reason: StopReason) {
        self.live_actors.dec();
        self.actor_stops_total
            .with_label_values(&[reason.label()])
            .inc();
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> Result<Vec<u8>, MetricsError> {
        let mut out = Vec::with_capacity(8 * 1024);
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        Ok(out)
    }
}

/// Content type of [`Metrics::render`].
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// client_golang's `ExponentialBucketsRange`: `count` buckets from `min` to `max` with a
/// constant growth factor.
pub fn exponential_buckets_range(min: f64, max: f64, count: usize) -> Vec<f64> {
    let factor = (max / min).powf(1.0 / (count as f64 - 1.0));
    (0..count).map(|i| min * factor.powi(i as i32)).collect()
}

/// Installs the global `tracing` subscriber. `RUST_LOG`, when set, wins over the configured
/// filter. Calling it twice is harmless (the second call does nothing).
pub fn init_tracing(config: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal, never into a log file or collector.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_bucket_boundaries_match_the_reference() {
        let buckets = exponential_buckets_range(256.0, 16.0 * 1024.0 * 1024.0, 12);
        let reference = [
            256.0,
            701.6197041767034,
            1922.930505035175,
            5270.179422246634,
            14443.991121854817,
            39586.67491424495,
            108495.27790106199,
            297353.22181840753,
            814956.5606571124,
            2233553.0508011985,
            6121503.245180119,
            16777216.00000002,
        ];
        assert_eq!(buckets.len(), reference.len());
        for (got, want) in buckets.iter().zip(reference) {
            assert!((got - want).abs() / want < 1e-12, "{got} vs {want}");
        }
    }

    #[test]
    fn provider_label_is_bounded() {
        assert_eq!(provider_label("anthropic"), "anthropic");
        assert_eq!(provider_label("ollama"), "ollama");
        assert_eq!(provider_label(""), "unknown");
        assert_eq!(provider_label("bad-provider"), "unknown");
        assert_eq!(provider_label("OpenAI"), "unknown");
    }

    #[test]
    fn the_queue_gauge_renders_before_any_write() {
        let metrics = Metrics::new().expect("registry");
        let text = String::from_utf8(metrics.render().expect("render")).expect("utf-8");
        assert!(text.contains("tapes_ingest_worker_queue_depth 0"), "{text}");
        // Vectors render only once a label tuple was observed, as in client_golang.
        assert!(!text.contains("tapes_ingest_writes_total{"), "{text}");
        metrics.write("ollama", status::ACCEPTED);
        let text = String::from_utf8(metrics.render().expect("render")).expect("utf-8");
        assert!(
            text.contains(r#"tapes_ingest_writes_total{provider="ollama",status="accepted"} 1"#),
            "{text}"
        );
    }
}
