//! The capture stamps of `meta` (docs/capture.md §8): the call's duration and when it
//! happened, laid onto a reduction reel made itself.

use chrono::{DateTime, TimeDelta, Utc};

use crate::gojson::{TimeError, parse_rfc3339};
use crate::wire::Meta;

/// The longest call whose `elapsed_seconds` is believed: seven days.
const MAX_ELAPSED_SECONDS: f64 = 604_800.0;

/// What `meta` says of the call. Strings as sent (they are trimmed here); an empty one is
/// absent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stamps<'a> {
    pub elapsed_seconds: Option<f64>,
    pub ts_request: &'a str,
    pub captured_at: &'a str,
}

/// The stamps a decoded `meta` block holds (an absent `elapsed_seconds` is 0, unusable).
impl<'a> From<&'a Meta> for Stamps<'a> {
    fn from(meta: &'a Meta) -> Self {
        Stamps {
            elapsed_seconds: Some(meta.elapsed_seconds),
            ts_request: &meta.ts_request,
            captured_at: &meta.captured_at,
        }
    }
}

/// Where `usage.total_duration_ns` came from (the `source` label of the stamp metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationSource {
    ElapsedSeconds,
    Fallback,
}

impl DurationSource {
    pub fn as_str(self) -> &'static str {
        match self {
            DurationSource::ElapsedSeconds => "elapsed_seconds",
            DurationSource::Fallback => "fallback",
        }
    }
}

/// Where `created_at` came from (the `source` label of the stamp metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreatedAtSource {
    CapturedAt,
    TsRequest,
    /// The reducer's own value: the body's for OpenAI, the clock for Anthropic.
    Fallback,
}

impl CreatedAtSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CreatedAtSource::CapturedAt => "captured_at",
            CreatedAtSource::TsRequest => "ts_request",
            CreatedAtSource::Fallback => "fallback",
        }
    }
}

/// A stamp that was present but did not parse: skipped, never a rejection. The caller logs
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedStamp {
    /// `captured_at` or `ts_request`.
    pub field: &'static str,
    pub error: TimeError,
}

/// The instant a usable stamp names, and the stamps that were present but skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatedAt {
    pub at: Option<DateTime<Utc>>,
    pub source: CreatedAtSource,
    pub skipped: Vec<SkippedStamp>,
}

impl Stamps<'_> {
    /// The call's duration in nanoseconds, when `elapsed_seconds` is usable: finite, above
    /// zero and at most seven days. Truncated toward zero, as Go converts a float64 product
    /// to a `time.Duration`.
    pub fn duration_ns(&self) -> Option<i64> {
        let elapsed = self.elapsed_seconds?;
        // NaN fails both comparisons; infinities fail the upper one.
        if !(elapsed > 0.0 && elapsed <= MAX_ELAPSED_SECONDS) {
            return None;
        }
        Some((elapsed * 1e9) as i64)
    }

    /// The instant of the turn (§8.2): `captured_at`, else `ts_request` plus the usable
    /// duration, else none (the reducer's value stays).
    pub fn created_at(&self) -> CreatedAt {
        let mut skipped = Vec::new();
        let mut parsed = |field: &'static str, value: &str| {
            let value = value.trim();
            if value.is_empty() {
                return None;
            }
            parse_rfc3339(value)
                .map_err(|error| skipped.push(SkippedStamp { field, error }))
                .ok()
        };
        let (at, source) = if let Some(at) = parsed("captured_at", self.captured_at) {
            (Some(at), CreatedAtSource::CapturedAt)
        } else if let Some(at) = parsed("ts_request", self.ts_request) {
            let elapsed = self
                .duration_ns()
                .map_or(TimeDelta::zero(), TimeDelta::nanoseconds);
            // Within a week of a four-digit year: the sum cannot leave chrono's range.
            (
                Some(at.checked_add_signed(elapsed).unwrap_or(at)),
                CreatedAtSource::TsRequest,
            )
        } else {
            (None, CreatedAtSource::Fallback)
        };
        CreatedAt {
            at,
            source,
            skipped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gojson::format_rfc3339_nano;

    fn elapsed(seconds: f64) -> Stamps<'static> {
        Stamps {
            elapsed_seconds: Some(seconds),
            ..Stamps::default()
        }
    }

    #[test]
    fn usable_elapsed_seconds_become_nanoseconds_truncated() {
        assert_eq!(elapsed(0.75).duration_ns(), Some(750_000_000));
        assert_eq!(elapsed(3600.5).duration_ns(), Some(3_600_500_000_000));
        assert_eq!(elapsed(12.0).duration_ns(), Some(12_000_000_000));
        assert_eq!(elapsed(1.25).duration_ns(), Some(1_250_000_000));
        assert_eq!(elapsed(604_800.0).duration_ns(), Some(604_800_000_000_000));
        // 1e-10 s is usable and truncates to nothing.
        assert_eq!(elapsed(1e-10).duration_ns(), Some(0));
    }

    #[test]
    fn unusable_elapsed_seconds_are_ignored() {
        for bad in [0.0, -1.0, 700_000.0, 604_800.001, f64::NAN, f64::INFINITY] {
            assert_eq!(elapsed(bad).duration_ns(), None, "{bad}");
        }
        assert_eq!(Stamps::default().duration_ns(), None);
    }

    fn created(stamps: Stamps<'_>) -> (Option<String>, CreatedAtSource, Vec<&'static str>) {
        let c = stamps.created_at();
        (
            c.at.map(|t| format_rfc3339_nano(&t)),
            c.source,
            c.skipped.iter().map(|s| s.field).collect(),
        )
    }

    #[test]
    fn captured_at_comes_first() {
        let stamps = Stamps {
            elapsed_seconds: Some(5.0),
            ts_request: "2026-01-01T00:00:00Z",
            captured_at: "2026-09-01T05:58:20.369+02:00",
        };
        assert_eq!(
            created(stamps),
            (
                Some("2026-09-01T03:58:20.369Z".into()),
                CreatedAtSource::CapturedAt,
                vec![]
            )
        );
    }

    #[test]
    fn ts_request_adds_the_usable_elapsed_time() {
        let stamps = Stamps {
            elapsed_seconds: Some(1.25),
            ts_request: "2026-09-24T15:11:05.008+02:00",
            captured_at: "",
        };
        assert_eq!(
            created(stamps),
            (
                Some("2026-09-24T13:11:06.258Z".into()),
                CreatedAtSource::TsRequest,
                vec![]
            )
        );
        // An unusable elapsed time leaves ts_request alone.
        let stamps = Stamps {
            elapsed_seconds: Some(700_000.0),
            ts_request: "2026-03-17T14:38:15.900Z",
            captured_at: "",
        };
        assert_eq!(created(stamps).0.as_deref(), Some("2026-03-17T14:38:15.9Z"));
    }

    #[test]
    fn unparseable_stamps_are_skipped_and_reported() {
        let stamps = Stamps {
            elapsed_seconds: Some(0.5),
            ts_request: "2026-06-24T14:53:16.095Z",
            captured_at: "not a time",
        };
        assert_eq!(
            created(stamps),
            (
                Some("2026-06-24T14:53:16.595Z".into()),
                CreatedAtSource::TsRequest,
                vec!["captured_at"]
            )
        );
        let stamps = Stamps {
            elapsed_seconds: None,
            ts_request: "2026-06-24 14:53:16Z",
            captured_at: "2026-06-24T14:53:16+0200",
        };
        assert_eq!(
            created(stamps),
            (
                None,
                CreatedAtSource::Fallback,
                vec!["captured_at", "ts_request"]
            )
        );
    }

    #[test]
    fn stamps_are_trimmed_and_empty_ones_are_absent() {
        let stamps = Stamps {
            elapsed_seconds: None,
            ts_request: "",
            captured_at: " \t2026-01-01T00:00:05Z\n",
        };
        assert_eq!(created(stamps).0.as_deref(), Some("2026-01-01T00:00:05Z"));
        let blank = Stamps {
            elapsed_seconds: Some(3.0),
            ts_request: "   ",
            captured_at: "\u{a0}",
        };
        assert_eq!(created(blank), (None, CreatedAtSource::Fallback, vec![]));
    }

    #[test]
    fn go_time_forms_are_accepted_and_refused_as_go_does() {
        let at = |value: &'static str| {
            created(Stamps {
                captured_at: value,
                ..Stamps::default()
            })
            .0
        };
        assert_eq!(
            at("2026-01-01T00:00:05,25Z").as_deref(),
            Some("2026-01-01T00:00:05.25Z")
        );
        assert_eq!(
            at("2026-01-01T0:00:05Z").as_deref(),
            Some("2026-01-01T00:00:05Z")
        );
        assert_eq!(
            at("2026-01-01T00:00:05+24:00").as_deref(),
            Some("2025-12-31T00:00:05Z")
        );
        assert_eq!(
            at("2026-01-01T00:00:05-24:00").as_deref(),
            Some("2026-01-02T00:00:05Z")
        );
        for refused in [
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:60Z",
            "2026-02-30T00:00:00Z",
            "2026-01-01T00:00:05+0200",
            "2026-01-01 00:00:05Z",
            "2026-01-01t00:00:05Z",
        ] {
            assert_eq!(at(refused), None, "{refused}");
        }
    }

    #[test]
    fn a_decoded_meta_gives_its_stamps() {
        let absent = Meta::default();
        let stamps = Stamps::from(&absent);
        assert_eq!(stamps.duration_ns(), None);
        assert_eq!(stamps.created_at().source, CreatedAtSource::Fallback);
        let meta = Meta {
            elapsed_seconds: 2.5,
            ts_request: "2026-01-01T00:00:00Z".into(),
            ..Meta::default()
        };
        let stamps = Stamps::from(&meta);
        assert_eq!(stamps.duration_ns(), Some(2_500_000_000));
        assert_eq!(created(stamps).0.as_deref(), Some("2026-01-01T00:00:02.5Z"));
    }

    #[test]
    fn metric_labels() {
        assert_eq!(DurationSource::ElapsedSeconds.as_str(), "elapsed_seconds");
        assert_eq!(DurationSource::Fallback.as_str(), "fallback");
        assert_eq!(CreatedAtSource::CapturedAt.as_str(), "captured_at");
        assert_eq!(CreatedAtSource::TsRequest.as_str(), "ts_request");
        assert_eq!(CreatedAtSource::Fallback.as_str(), "fallback");
    }
}
