//! What `reel import` reads: JSON Lines of ingest payloads, or directories of wire
//! recordings, as one stream of turn bodies.
//!
//! Lines are read one at a time and a line longer than the body limit is skipped without
//! being held, so a file of any size is read in bounded memory.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde_json::value::RawValue;

use super::recording;
use crate::gojson::repair_body;

/// One turn body to ingest, with where it came from.
#[derive(Debug)]
pub struct Item {
    /// `line 12` or `line 12 (s1-0-openai)`, or a recording's directory.
    pub label: String,
    /// The ingest payload, or why there is none.
    pub body: Result<Vec<u8>, Unreadable>,
    /// The input bytes this item consumed, for the progress bar.
    pub consumed: u64,
}

/// An input item that is no payload at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    /// Longer than `server.body_limit_bytes`: a server would answer 413.
    #[error("request body exceeds the ingest size limit ({limit} bytes)")]
    TooLarge { limit: usize },
    /// A recording whose files cannot be read or combined.
    #[error("{0}")]
    Recording(String),
}

impl Unreadable {
    /// The summary's label for it.
    pub fn reason(&self) -> &'static str {
        match self {
            Unreadable::TooLarge { .. } => "too_large",
            Unreadable::Recording(_) => "unreadable_recording",
        }
    }
}

/// Where the items come from.
pub enum Source {
    Lines(Lines<BufReader<File>>),
    Recordings(recording::Recordings),
}

impl Source {
    /// A file is read as JSON Lines, a directory as wire recordings.
    pub fn open(path: &Path, limit: usize) -> io::Result<Source> {
        if path.is_dir() {
            return recording::Recordings::find(path, limit).map(Source::Recordings);
        }
        let file = File::open(path)?;
        Ok(Source::Lines(Lines::new(
            BufReader::with_capacity(256 * 1024, file),
            limit,
        )))
    }

    /// The bytes the whole input holds, for the progress bar's length.
    pub fn total_bytes(path: &Path, source: &Source) -> u64 {
        match source {
            Source::Lines(_) => std::fs::metadata(path).map_or(0, |m| m.len()),
            Source::Recordings(recordings) => recordings.total_bytes(),
        }
    }

    pub fn next_item(&mut self) -> io::Result<Option<Item>> {
        match self {
            Source::Lines(lines) => lines.next_item(),
            Source::Recordings(recordings) => Ok(recordings.next_item()),
        }
    }
}

/// JSON Lines: each non-blank line is a payload, bare or as `{"name":…,"payload":{…}}`.
pub struct Lines<R> {
    input: R,
    limit: usize,
    number: u64,
}

impl<R: BufRead> Lines<R> {
    pub fn new(input: R, limit: usize) -> Self {
        Lines {
            input,
            limit,
            number: 0,
        }
    }

    /// The next non-blank line's item; `None` at the end of the input.
    pub fn next_item(&mut self) -> io::Result<Option<Item>> {
        loop {
            let Some((line, consumed)) = self.read_line()? else {
                return Ok(None);
            };
            self.number += 1;
            let label = format!("line {}", self.number);
            let body = match line {
                Some(line) if line.iter().all(u8::is_ascii_whitespace) => continue,
                Some(line) => line,
                None => {
                    return Ok(Some(Item {
                        label,
                        body: Err(Unreadable::TooLarge { limit: self.limit }),
                        consumed,
                    }));
                }
            };
            let (name, body) = unwrap_named(body);
            let label = match name {
                Some(name) => format!("{label} ({name})"),
                None => label,
            };
            return Ok(Some(Item {
                label,
                body: Ok(body),
                consumed,
            }));
        }
    }

    /// Reads up to the next newline: the line without its end (`None` when it was longer
    /// than the limit, whose bytes are skipped, not kept) and the bytes consumed.
    #[allow(clippy::type_complexity)]
    fn read_line(&mut self) -> io::Result<Option<(Option<Vec<u8>>, u64)>> {
        let mut line = Some(Vec::new());
        let mut consumed = 0u64;
        loop {
            let buffer = match self.input.fill_buf() {
                Ok(buffer) => buffer,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buffer.is_empty() {
                return Ok((consumed > 0).then_some((line, consumed)));
            }
            let (part, end) = match memchr::memchr(b'\n', buffer) {
                Some(at) => (&buffer[..at], at + 1),
                None => (buffer, buffer.len()),
            };
            let done = end > part.len();
            if let Some(kept) = &mut line {
                if kept.len() + part.len() > self.limit {
                    line = None;
                } else {
                    kept.extend_from_slice(part);
                }
            }
            self.input.consume(end);
            consumed += end as u64;
            if done {
                if let Some(kept) = &mut line
                    && kept.last() == Some(&b'\r')
                {
                    kept.pop();
                }
                return Ok(Some((line, consumed)));
            }
        }
    }
}

/// A `{"name":…,"payload":…}` line's name and payload; any other line is the payload itself.
fn unwrap_named(line: Vec<u8>) -> (Option<String>, Vec<u8>) {
    #[derive(serde::Deserialize)]
    struct Named<'a> {
        #[serde(default)]
        name: Option<String>,
        #[serde(borrow, default)]
        payload: Option<&'a RawValue>,
    }
    // A payload has no `payload` member: most lines are told apart without parsing.
    if memchr::memmem::find(&line, b"\"payload\"").is_none() {
        return (None, line);
    }
    let cut = |text: &str| {
        let named: Named = serde_json::from_str(text).ok()?;
        Some((named.name, named.payload?.get().as_bytes().to_vec()))
    };
    // As Go reads a body (bytes that are not UTF-8 and lone surrogate escapes become
    // U+FFFD), or serde would refuse lines the payload decoder accepts; only such lines pay
    // for the repair.
    let found = match std::str::from_utf8(&line).ok().and_then(cut) {
        Some(found) => Some(found),
        None => cut(&repair_body(&line).0),
    };
    match found {
        Some((name, payload)) => (name, payload),
        None => (None, line),
    }
}

/// Reads a whole file, refusing one over `limit` bytes.
pub(super) fn read_capped(path: &PathBuf, limit: usize) -> Result<Vec<u8>, Unreadable> {
    let file =
        File::open(path).map_err(|e| Unreadable::Recording(format!("{}: {e}", path.display())))?;
    let mut bytes = Vec::new();
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Unreadable::Recording(format!("{}: {e}", path.display())))?;
    if bytes.len() > limit {
        return Err(Unreadable::TooLarge { limit });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(input: &str, limit: usize) -> Vec<Item> {
        let mut lines = Lines::new(input.as_bytes(), limit);
        std::iter::from_fn(|| lines.next_item().unwrap()).collect()
    }

    #[test]
    fn bare_and_named_lines_give_their_payloads() {
        let input =
            "{\"provider\":\"x\"}\n\n{\"name\":\"n1\",\"payload\":{\"a\":1},\"expect\":{}}\r\n";
        let got = items(input, 1024);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].label, "line 1");
        assert_eq!(got[0].body.as_deref().unwrap(), b"{\"provider\":\"x\"}");
        assert_eq!(got[1].label, "line 3 (n1)");
        assert_eq!(got[1].body.as_deref().unwrap(), b"{\"a\":1}");
        let consumed: u64 = got.iter().map(|i| i.consumed).sum();
        // The blank line's byte is consumed but belongs to no item.
        assert_eq!(consumed + 1, input.len() as u64);
    }

    #[test]
    fn a_line_over_the_limit_is_skipped_whole() {
        let long = "x".repeat(100);
        let got = items(&format!("{long}\n{{}}\n"), 10);
        assert_eq!(got[0].body, Err(Unreadable::TooLarge { limit: 10 }));
        assert_eq!(got[0].consumed, 101);
        assert_eq!(got[1].body.as_deref().unwrap(), b"{}");
    }

    #[test]
    fn a_named_line_keeps_its_payload_bytes_as_they_are() {
        let got = items(r#"{"name":"s","payload":{"t":"\ud800"}}"#, 1024);
        assert_eq!(got[0].label, "line 1 (s)");
        assert_eq!(got[0].body.as_deref().unwrap(), br#"{"t":"\ud800"}"#);
        // Bytes that are not UTF-8 are read as Go reads them, then cut.
        let mut line = br#"{"name":"b","payload":{"t":""#.to_vec();
        line.extend_from_slice(b"\xff\"}}");
        let mut lines = Lines::new(&line[..], 1024);
        let item = lines.next_item().unwrap().unwrap();
        assert_eq!(item.label, "line 1 (b)");
        assert_eq!(item.body.unwrap(), "{\"t\":\"\u{fffd}\"}".as_bytes());
    }

    #[test]
    fn the_last_line_needs_no_newline() {
        let got = items("{}", 1024);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].consumed, 2);
    }
}
