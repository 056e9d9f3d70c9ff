//! Go's `time.Time` JSON decoding: which JSON values a `time.Time` field takes.
//!
//! `Time.UnmarshalJSON` takes `null` (no change) or a string, which it reads raw, escapes
//! and all (Go does not unescape it first). The string must parse as RFC 3339 by Go's rules:
//! a strict parse first and, when that fails, `time.Parse(time.RFC3339, …)`, whose answer
//! stands (its stricter checks are disabled, golang/go#54580). What Parse accepts is
//!
//! `YYYY-MM-DD` `T` `h[h]:mm:ss` [`.`|`,` digits] `Z` | `±hh:mm`
//!
//! with a one- or two-digit hour below 24, minutes and seconds below 60 (so no leap second),
//! a day that exists in its month, and an offset of at most 24 hours and 60 minutes. Letters
//! are matched exactly: `t`, `z` and a space for `T` are refused. Only the first nine digits
//! of the fraction count (Go truncates the rest).
//!
//! [`parse_rfc3339`] gives the instant such a value names, and [`format_rfc3339_nano`] writes
//! an instant as `Time.MarshalJSON` does.

use chrono::{DateTime, NaiveDate, TimeDelta, Timelike, Utc};
use serde::de::{self, DeserializeSeed};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// Seed that checks a value bound for a Go `time.Time` field and drops it (see the module
/// docs); it needs a deserializer over text, as it reads the value raw.
pub struct TimeCheck;

impl<'de> DeserializeSeed<'de> for TimeCheck {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let raw = <&RawValue>::deserialize(d)?;
        check_time_json(raw.get()).map_err(de::Error::custom)
    }
}

/// Why a JSON value is no `time.Time`; the texts follow Go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("Time.UnmarshalJSON: input is not a JSON string")]
    NotAString,
    #[error(
        "parsing time {value:?} as \"2006-01-02T15:04:05Z07:00\": cannot parse {rest:?} as {element:?}"
    )]
    Syntax {
        value: String,
        rest: String,
        element: &'static str,
    },
    #[error("parsing time {value:?}: {what} out of range")]
    Range { value: String, what: &'static str },
    #[error("parsing time {value:?}: extra text: {rest:?}")]
    ExtraText { value: String, rest: String },
}

/// Checks the raw JSON text of a value bound for a Go `time.Time` field.
pub fn check_time_json(raw: &str) -> Result<(), TimeError> {
    if raw == "null" {
        return Ok(());
    }
    match raw.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(value) => check_rfc3339(value),
        None => Err(TimeError::NotAString),
    }
}

/// Checks `value` as `time.Parse(time.RFC3339, value)` does, element by element.
pub fn check_rfc3339(value: &str) -> Result<(), TimeError> {
    parse_rfc3339(value).map(drop)
}

/// The instant `value` names, parsed as `time.Parse(time.RFC3339Nano, value)` parses it (the
/// same rules as [`check_rfc3339`]): the fraction truncated to nanoseconds, the offset
/// subtracted. An offset may reach 24:60, beyond what a `chrono::FixedOffset` holds, so it
/// is applied as a duration.
pub fn parse_rfc3339(value: &str) -> Result<DateTime<Utc>, TimeError> {
    let mut p = Parser { value, rest: value };
    let year = p.number("2006", 4, 4)?;
    p.literal("-")?;
    let month = p.number("01", 2, 2)?;
    p.in_range(month, 1..=12, "month")?;
    p.literal("-")?;
    let day = p.number("02", 2, 2)?;
    p.literal("T")?;
    let hour = p.number("15", 1, 2)?;
    p.in_range(hour, 0..=23, "hour")?;
    p.literal(":")?;
    let minute = p.number("04", 2, 2)?;
    p.in_range(minute, 0..=59, "minute")?;
    p.literal(":")?;
    let second = p.number("05", 2, 2)?;
    p.in_range(second, 0..=59, "second")?;
    let nanos = p.fraction();
    let offset_seconds = p.zone()?;
    if !p.rest.is_empty() {
        return Err(TimeError::ExtraText {
            value: value.to_owned(),
            rest: p.rest.to_owned(),
        });
    }
    p.in_range(day, 1..=days_in(month, year), "day")?;
    // Every element is in range by now, so these cannot fail; the errors keep it total.
    let wall = i32::try_from(year)
        .ok()
        .and_then(|y| NaiveDate::from_ymd_opt(y, month, day))
        .and_then(|date| date.and_hms_nano_opt(hour, minute, second, nanos))
        .ok_or_else(|| p.out_of_range("day"))?;
    wall.and_utc()
        .checked_sub_signed(TimeDelta::seconds(offset_seconds))
        .ok_or_else(|| p.out_of_range("time zone offset hour"))
}

/// `t` as Go's `Time.MarshalJSON` writes a UTC time (`time.RFC3339Nano`): seconds always,
/// then a fraction only when there is one, without its trailing zeros
/// (`2026-05-07T16:38:18.93Z`).
pub fn format_rfc3339_nano(t: &DateTime<Utc>) -> String {
    let mut out = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.nanosecond() % 1_000_000_000;
    if nanos > 0 {
        let digits = format!("{nanos:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

struct Parser<'a> {
    value: &'a str,
    rest: &'a str,
}

impl<'a> Parser<'a> {
    fn syntax(&self, rest: &str, element: &'static str) -> TimeError {
        TimeError::Syntax {
            value: self.value.to_owned(),
            rest: rest.to_owned(),
            element,
        }
    }

    fn out_of_range(&self, what: &'static str) -> TimeError {
        TimeError::Range {
            value: self.value.to_owned(),
            what,
        }
    }

    fn in_range(
        &self,
        n: u32,
        range: std::ops::RangeInclusive<u32>,
        what: &'static str,
    ) -> Result<(), TimeError> {
        if range.contains(&n) {
            Ok(())
        } else {
            Err(self.out_of_range(what))
        }
    }

    fn literal(&mut self, text: &'static str) -> Result<(), TimeError> {
        match self.rest.strip_prefix(text) {
            Some(rest) => {
                self.rest = rest;
                Ok(())
            }
            None => Err(self.syntax(self.rest, text)),
        }
    }

    /// A number of `min` to `max` digits; Go takes the longest run up to `max`.
    fn number(&mut self, element: &'static str, min: usize, max: usize) -> Result<u32, TimeError> {
        let digits = leading_digits(self.rest).min(max);
        if digits < min {
            return Err(self.syntax(self.rest, element));
        }
        let (number, rest) = self.rest.split_at(digits);
        self.rest = rest;
        Ok(number.bytes().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    }

    /// A fraction of a second after the seconds, which Parse takes even though the layout
    /// has none: `.` or `,` and at least one digit. Its nanoseconds: the first nine digits,
    /// the rest dropped.
    fn fraction(&mut self) -> u32 {
        let mut bytes = self.rest.bytes();
        if !(matches!(bytes.next(), Some(b'.' | b','))
            && bytes.next().is_some_and(|b| b.is_ascii_digit()))
        {
            return 0;
        }
        let digits = leading_digits(&self.rest[1..]);
        let fraction = &self.rest[1..1 + digits];
        self.rest = &self.rest[1 + digits..];
        fraction
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(9)
            .fold(0, |n, d| n * 10 + u32::from(d - b'0'))
    }

    /// `Z`, or `±hh:mm` with `hh` at most 24 and `mm` at most 60 (Go tests the offset with
    /// `>`, as some write 24 hours or 60 minutes). The offset east of UTC, in seconds.
    fn zone(&mut self) -> Result<i64, TimeError> {
        const ELEMENT: &str = "Z07:00";
        if let Some(rest) = self.rest.strip_prefix('Z') {
            self.rest = rest;
            return Ok(0);
        }
        let zone = self.rest.as_bytes();
        if zone.len() < 6 || zone[3] != b':' {
            return Err(self.syntax(self.rest, ELEMENT));
        }
        let two = |at: usize| {
            let pair = &zone[at..at + 2];
            pair.iter()
                .all(u8::is_ascii_digit)
                .then(|| u32::from(pair[0] - b'0') * 10 + u32::from(pair[1] - b'0'))
        };
        // Go reads the minutes only after good hours, and reports a range error before a
        // malformed offset.
        let hours = two(1);
        let minutes = hours.and(two(4));
        if hours.is_some_and(|h| h > 24) {
            return Err(self.out_of_range("time zone offset hour"));
        }
        if minutes.is_some_and(|m| m > 60) {
            return Err(self.out_of_range("time zone offset minute"));
        }
        let (Some(hours), Some(minutes), sign @ (b'+' | b'-')) = (hours, minutes, zone[0]) else {
            return Err(self.syntax(self.rest, ELEMENT));
        };
        self.rest = &self.rest[6..];
        let east = i64::from(hours * 60 + minutes) * 60;
        Ok(if sign == b'-' { -east } else { east })
    }
}

fn leading_digits(s: &str) -> usize {
    s.bytes().take_while(u8::is_ascii_digit).count()
}

fn days_in(month: u32, year: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn created_at_accepts_what_go_time_parse_accepts() {
        for ok in [
            "2024-05-01T10:00:00Z",
            "2024-05-01T10:00:00.123456789Z",
            "2024-05-01T10:00:00.1234567890123Z",
            "2024-05-01T10:00:00,5Z",
            "2024-05-01T1:00:00Z",
            "2024-05-01T10:00:00+02:00",
            "2024-05-01T10:00:00-23:59",
            "2024-05-01T10:00:00+24:00",
            "2024-05-01T10:00:00+24:60",
            "2024-02-29T00:00:00Z",
            "2000-02-29T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
        ] {
            assert_eq!(check_rfc3339(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn created_at_refuses_what_go_time_parse_refuses() {
        for bad in [
            "2024-05-01T23:59:60Z",
            "2024-05-01 10:00:00Z",
            "2024-05-01t10:00:00Z",
            "2024-05-01T10:00:00z",
            "2024-05-01T10:00:00+25:00",
            "2024-05-01T10:00:00+02:61",
            "2024-05-01T10:00:00+0200",
            "2024-05-01T10:00:00+2:00",
            "2024-05-01T10:00:00",
            "2024-05-01T10:00:00.Z",
            "2024-05-01T10:00:00ZZ",
            "2024-05-01T24:00:00Z",
            "2024-05-01T10:0:00Z",
            "2024-5-01T10:00:00Z",
            "2024-13-01T10:00:00Z",
            "2024-00-01T10:00:00Z",
            "2023-02-29T10:00:00Z",
            "1900-02-29T10:00:00Z",
            "2024-04-31T10:00:00Z",
            "2024-05-00T10:00:00Z",
            "24-05-01T10:00:00Z",
            "+2024-05-01T10:00:00Z",
            r"2024-05-01T10:00:00\u005a",
            "",
        ] {
            assert!(check_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn created_at_errors_read_as_go_writes_them() {
        let err = |s: &str| check_rfc3339(s).unwrap_err().to_string();
        assert_eq!(
            err("2024-05-01T23:59:60Z"),
            r#"parsing time "2024-05-01T23:59:60Z": second out of range"#
        );
        assert_eq!(
            err("2024-05-01 10:00:00Z"),
            r#"parsing time "2024-05-01 10:00:00Z" as "2006-01-02T15:04:05Z07:00": cannot parse " 10:00:00Z" as "T""#
        );
        assert_eq!(
            err("2024-05-01T10:00:00Zx"),
            r#"parsing time "2024-05-01T10:00:00Zx": extra text: "x""#
        );
        assert_eq!(
            check_time_json("5").unwrap_err().to_string(),
            "Time.UnmarshalJSON: input is not a JSON string"
        );
        assert_eq!(check_time_json("null"), Ok(()));
    }

    fn instant(s: &str) -> String {
        format_rfc3339_nano(&parse_rfc3339(s).unwrap())
    }

    #[test]
    fn parse_gives_the_instant_in_utc() {
        for (given, utc) in [
            ("2026-01-01T00:00:05Z", "2026-01-01T00:00:05Z"),
            ("2026-05-07T16:38:18.930Z", "2026-05-07T16:38:18.93Z"),
            ("2026-09-24T15:11:05.008+02:00", "2026-09-24T13:11:05.008Z"),
            ("2026-03-01T13:10:10.450+02:00", "2026-03-01T11:10:10.45Z"),
            ("2026-01-01T00:30:00-01:45", "2026-01-01T02:15:00Z"),
            // `,` introduces the fraction as `.` does.
            ("2024-05-01T10:00:00,5Z", "2024-05-01T10:00:00.5Z"),
            // Only nine digits count, truncated, not rounded.
            (
                "2024-05-01T10:00:00.1234567899Z",
                "2024-05-01T10:00:00.123456789Z",
            ),
            ("2024-05-01T10:00:00.000000000Z", "2024-05-01T10:00:00Z"),
            // A one-digit hour.
            ("2024-05-01T1:02:03Z", "2024-05-01T01:02:03Z"),
            // Offsets up to 24:60, which cross the day.
            ("2024-05-01T10:00:00+24:00", "2024-04-30T10:00:00Z"),
            ("2024-05-01T10:00:00-24:60", "2024-05-02T11:00:00Z"),
            ("2024-02-29T23:59:59-00:01", "2024-03-01T00:00:59Z"),
        ] {
            assert_eq!(instant(given), utc, "{given}");
        }
    }

    #[test]
    fn parse_refuses_what_check_refuses() {
        for bad in [
            "2026-05-07 16:38:18Z",
            "2026-05-07T24:00:00Z",
            "2026-05-07T16:38:60Z",
            "2026-02-30T00:00:00Z",
            "2026-05-07T16:38:18+0200",
            "2026-05-07T16:38:18",
            "not a time",
            "",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn format_writes_go_rfc3339_nano() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            format_rfc3339_nano(&at("2026-05-07T16:38:18.930Z")),
            "2026-05-07T16:38:18.93Z"
        );
        assert_eq!(
            format_rfc3339_nano(&at("2026-05-07T16:38:18Z")),
            "2026-05-07T16:38:18Z"
        );
        assert_eq!(
            format_rfc3339_nano(&at("2026-05-07T16:38:18.000000001Z")),
            "2026-05-07T16:38:18.000000001Z"
        );
        assert_eq!(
            format_rfc3339_nano(&at("0001-01-01T00:00:00.5Z")),
            "0001-01-01T00:00:00.5Z"
        );
    }

    proptest! {
        /// Every timestamp Go writes (`time.RFC3339Nano`, offsets within a day) is taken.
        #[test]
        fn created_at_takes_every_timestamp_go_writes(
            year in 0u32..10000, month in 1u32..13, day in 1u32..29, hour in 0u32..24,
            minute in 0u32..60, second in 0u32..60, nanos in prop::option::of(1u32..1_000_000_000),
            zone in prop::option::of((any::<bool>(), 0u32..24, 0u32..60)),
        ) {
            let mut s = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}");
            if let Some(n) = nanos {
                s.push_str(format!(".{n:09}").trim_end_matches('0'));
            }
            match zone {
                None => s.push('Z'),
                Some((west, h, m)) => s.push_str(&format!("{}{h:02}:{m:02}", if west { '-' } else { '+' })),
            }
            prop_assert_eq!(check_rfc3339(&s), Ok(()));
            // And names the instant any RFC 3339 reader finds in it.
            let expected = DateTime::parse_from_rfc3339(&s).unwrap().with_timezone(&Utc);
            prop_assert_eq!(parse_rfc3339(&s), Ok(expected));
        }
    }
}
