//! Server-sent event framing, as the reference reads a provider's stream (docs/capture.md §4).
//!
//! The reference scans lines with Go's `bufio.Scanner`, not with the WHATWG rules most SSE
//! readers follow, and the reductions depend on the differences:
//! - a line ends at LF only; one CR right before it (or right before the end of the input)
//!   is dropped, a CR anywhere else is text;
//! - a line longer than [`MAX_LINE`] bytes is an error that ends the stream;
//! - an event is delivered once any of `data`, `event` or `id` was seen, so a block holding
//!   only an `event:` line is an event with empty data;
//! - field names are case-sensitive, a line without a colon is a field with an empty value.
//!
//! The input is read line by line; only the current line and the current event are held.

use std::io::{self, BufRead};

use memchr::memchr;

/// The longest line, without its LF (a CR before the LF counts), that the reference's
/// scanner takes: its buffer holds 1 MiB, the LF included.
pub const MAX_LINE: usize = 1_048_575;

/// One event: its fields as the stream spelled them, bytes that need not be UTF-8.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// The last `event:` field, empty when there was none.
    pub event: Vec<u8>,
    /// The `data:` fields joined with LF.
    pub data: Vec<u8>,
    /// The last `id:` field.
    pub id: Vec<u8>,
}

/// Why a stream ended before its input did. The texts are the reference's, since a
/// reduction quotes them (`extra.reducer_error`).
#[derive(Debug, thiserror::Error)]
pub enum SseError {
    #[error("bufio.Scanner: token too long")]
    LineTooLong,
    #[error("{0}")]
    Read(#[from] io::Error),
}

/// The events of a stream, in order. After an error the iterator ends; the event being
/// read when it happened is dropped, as the reference drops it.
pub struct Events<R> {
    input: R,
    line: Vec<u8>,
    current: Event,
    /// A field of `current` was seen since the last event.
    seen: bool,
    finished: bool,
}

impl<R: BufRead> Events<R> {
    pub fn new(input: R) -> Self {
        Events {
            input,
            line: Vec::new(),
            current: Event::default(),
            seen: false,
            finished: false,
        }
    }

    /// Reads the next line into `self.line`, without its LF and the CR before it. `false` at
    /// the end of the input.
    fn next_line(&mut self) -> Result<bool, SseError> {
        self.line.clear();
        loop {
            let chunk = match self.input.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            if chunk.is_empty() {
                // The last line needs no LF; an empty rest is no line at all.
                if self.line.is_empty() {
                    return Ok(false);
                }
                drop_cr(&mut self.line);
                return Ok(true);
            }
            let (taken, ended) = match memchr(b'\n', chunk) {
                Some(at) => (at, true),
                None => (chunk.len(), false),
            };
            if self.line.len() + taken > MAX_LINE {
                return Err(SseError::LineTooLong);
            }
            self.line.extend_from_slice(&chunk[..taken]);
            self.input.consume(taken + usize::from(ended));
            if ended {
                drop_cr(&mut self.line);
                return Ok(true);
            }
        }
    }

    /// Adds the field on `self.line` to the current event.
    fn take_field(&mut self) {
        let line = self.line.as_slice();
        let (name, value) = match memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        let event = &mut self.current;
        match name {
            b"data" => {
                if !event.data.is_empty() {
                    event.data.push(b'\n');
                }
                event.data.extend_from_slice(value);
            }
            b"event" => value.clone_into(&mut event.event),
            b"id" => value.clone_into(&mut event.id),
            // `retry` and unknown fields.
            _ => return,
        }
        self.seen = true;
    }

    fn deliver(&mut self) -> Event {
        self.seen = false;
        std::mem::take(&mut self.current)
    }
}

fn drop_cr(line: &mut Vec<u8>) {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
}

impl<R: BufRead> Iterator for Events<R> {
    type Item = Result<Event, SseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        loop {
            match self.next_line() {
                Err(e) => {
                    self.finished = true;
                    return Some(Err(e));
                }
                Ok(false) => {
                    self.finished = true;
                    return self.seen.then(|| Ok(self.deliver()));
                }
                Ok(true) if self.line.is_empty() => {
                    if self.seen {
                        return Some(Ok(self.deliver()));
                    }
                }
                Ok(true) if self.line[0] == b':' => {}
                Ok(true) => self.take_field(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufReader, Cursor, Read};

    use super::*;

    fn event(kind: &str, data: &str) -> Event {
        Event {
            event: kind.into(),
            data: data.into(),
            id: Vec::new(),
        }
    }

    fn events(input: &[u8]) -> Vec<Event> {
        Events::new(input)
            .collect::<Result<_, _>>()
            .expect("no read error")
    }

    #[test]
    fn events_end_at_empty_lines() {
        let got = events(b"event: a\ndata: 1\n\nevent: b\ndata: 2\n\n");
        assert_eq!(got, vec![event("a", "1"), event("b", "2")]);
    }

    #[test]
    fn crlf_framing_drops_the_cr() {
        let got = events(b"event: a\r\ndata: {\"x\":1}\r\n\r\nevent: b\r\ndata: 2\r\n\r\n");
        assert_eq!(got, vec![event("a", r#"{"x":1}"#), event("b", "2")]);
    }

    #[test]
    fn a_lone_cr_is_text_not_a_line_end() {
        assert_eq!(events(b"data: a\rb\n\n"), vec![event("", "a\rb")]);
        // `data: a\r\revent: x` is one `data` line: nothing ends at the CRs.
        assert_eq!(
            events(b"data: a\r\revent: x\n\n"),
            vec![event("", "a\r\revent: x")]
        );
        // Only one CR goes with the LF.
        assert_eq!(events(b"data: a\r\r\n\n"), vec![event("", "a\r")]);
    }

    #[test]
    fn the_last_line_needs_no_lf_and_the_last_event_no_empty_line() {
        assert_eq!(
            events(b"data: a\n\ndata: b"),
            vec![event("", "a"), event("", "b")]
        );
        // A CR before the end of the input goes like the one before an LF.
        assert_eq!(events(b"data: b\r"), vec![event("", "b")]);
        assert_eq!(events(b""), vec![]);
        assert_eq!(events(b"\n\n\n"), vec![]);
    }

    #[test]
    fn data_lines_join_with_lf_and_leading_empty_ones_vanish() {
        // A trailing empty `data` still adds its LF (WHATWG readers drop the last LF).
        assert_eq!(
            events(b"data: a\ndata: b\ndata\n\n"),
            vec![event("", "a\nb\n")]
        );
        assert_eq!(events(b"data:\ndata:\ndata: x\n\n"), vec![event("", "x")]);
        // An event of empty data lines is still an event.
        assert_eq!(events(b"data:\n\n"), vec![event("", "")]);
    }

    #[test]
    fn one_leading_space_of_a_value_is_dropped() {
        assert_eq!(events(b"data:x\n\n"), vec![event("", "x")]);
        assert_eq!(events(b"data:  x \n\n"), vec![event("", " x ")]);
        // The value is split at the first colon only.
        assert_eq!(events(b"data: a: b\n\n"), vec![event("", "a: b")]);
    }

    #[test]
    fn comments_and_unknown_fields_are_skipped() {
        assert_eq!(events(b": keep-alive\n\n"), vec![]);
        assert_eq!(events(b"retry: 10\nfoo: bar\n\n"), vec![]);
        assert_eq!(
            events(b": c\nretry: 10\ndata: x\n: c\n\n"),
            vec![event("", "x")]
        );
        // Field names are case-sensitive.
        assert_eq!(events(b"Data: x\nEVENT: y\n\n"), vec![]);
    }

    #[test]
    fn an_event_or_id_field_alone_makes_an_event() {
        assert_eq!(events(b"event: ping\n\n"), vec![event("ping", "")]);
        let got = events(b"id: 7\n\n");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id, b"7");
        // The last `event:` wins; a line without colon is a field with no value.
        assert_eq!(
            events(b"event: a\nevent: b\ndata: x\n\n"),
            vec![event("b", "x")]
        );
        assert_eq!(events(b"event\ndata: x\n\n"), vec![event("", "x")]);
    }

    #[test]
    fn bytes_that_are_not_utf8_pass_through() {
        assert_eq!(
            events(b"event: \xff\ndata: a\xfeb\n\n"),
            vec![Event {
                event: vec![0xff],
                data: b"a\xfeb".to_vec(),
                id: Vec::new(),
            }]
        );
    }

    #[test]
    fn lines_split_across_reads_are_whole() {
        let input = b"event: message_start\r\ndata: {\"a\":\"bc\"}\r\n\r\ndata: z\n\n";
        // A reader that hands out one byte at a time.
        let got: Vec<Event> = Events::new(BufReader::with_capacity(1, &input[..]))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            got,
            vec![event("message_start", r#"{"a":"bc"}"#), event("", "z")]
        );
    }

    #[test]
    fn a_line_over_the_limit_is_an_error_after_the_events_before_it() {
        let mut input = b"data: first\n\ndata: ".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE));
        input.extend_from_slice(b"\n\ndata: never\n\n");
        let mut it = Events::new(BufReader::with_capacity(4096, input.as_slice()));
        assert_eq!(it.next().unwrap().unwrap(), event("", "first"));
        assert!(matches!(it.next(), Some(Err(SseError::LineTooLong))));
        assert!(it.next().is_none());
        assert_eq!(
            SseError::LineTooLong.to_string(),
            "bufio.Scanner: token too long"
        );
    }

    #[test]
    fn the_limit_counts_the_cr_but_not_the_lf() {
        let line = |len: usize, end: &[u8]| {
            let mut input = vec![b'x'; len];
            input.extend_from_slice(end);
            Events::new(BufReader::new(Cursor::new(input)))
                .collect::<Result<Vec<_>, _>>()
                .map(|events| events.len())
        };
        // `x…` is a field without value: no event, but no error either.
        assert_eq!(line(MAX_LINE, b"\n").unwrap(), 0);
        assert_eq!(line(MAX_LINE, b"").unwrap(), 0);
        assert!(matches!(
            line(MAX_LINE + 1, b"\n"),
            Err(SseError::LineTooLong)
        ));
        assert!(matches!(
            line(MAX_LINE + 1, b""),
            Err(SseError::LineTooLong)
        ));
        assert!(matches!(
            line(MAX_LINE, b"\r\n"),
            Err(SseError::LineTooLong)
        ));
        assert_eq!(line(MAX_LINE - 1, b"\r\n").unwrap(), 0);
    }

    /// Hands out `data`, then fails.
    struct FailsAfter<'a>(&'a [u8]);

    impl Read for FailsAfter<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::other("gzip: unexpected EOF"));
            }
            let n = self.0.read(buf)?;
            Ok(n)
        }
    }

    #[test]
    fn a_read_error_ends_the_stream_and_drops_the_event_in_progress() {
        let reader = BufReader::new(FailsAfter(b"data: done\n\ndata: half"));
        let mut it = Events::new(reader);
        assert_eq!(it.next().unwrap().unwrap(), event("", "done"));
        match it.next() {
            Some(Err(SseError::Read(e))) => assert_eq!(e.to_string(), "gzip: unexpected EOF"),
            other => panic!("expected a read error, got {other:?}"),
        }
        assert!(it.next().is_none());
    }
}
