//! JSON bodies for the answers actix's HTTP/1 dispatcher writes by itself.
//!
//! A request head that does not parse (400), is too large (431: more than 96 headers, or
//! 128 KiB without its end) or does not arrive within `client_request_timeout_secs` (408)
//! never reaches a service: the dispatcher answers it with an empty body and closes the
//! connection, and actix offers no hook to change that answer. This wrapper of the
//! connection's byte stream recognises such an answer as it is written (a 4xx or 5xx head
//! with `content-length: 0`, which no answer of reel's own has) and writes it with a JSON
//! body instead (docs/wire.md#errors-and-statuses). Every other byte passes through as is.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use actix_web::http::StatusCode;
use memchr::memmem;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::error::error_body;

/// What follows the status line of an answer without a body, as actix's encoder writes it.
const EMPTY_BODY: &[u8] = b"\r\ncontent-length: 0\r\n";

/// A connection whose dispatcher-made error answers carry JSON bodies.
pub struct JsonErrorBodies<T> {
    io: T,
    /// A rewritten answer not yet fully written to `io`, and how much of it was.
    pending: Vec<u8>,
    written: usize,
    head_timeout_secs: u64,
}

impl<T> JsonErrorBodies<T> {
    pub fn new(io: T, head_timeout_secs: u64) -> Self {
        JsonErrorBodies {
            io,
            pending: Vec::new(),
            written: 0,
            head_timeout_secs,
        }
    }
}

/// An answer without a body found in the bytes being written.
#[derive(Debug, PartialEq, Eq)]
struct EmptyAnswer {
    /// Where its status line starts.
    start: usize,
    /// Its head's length, blank line included.
    head_len: usize,
    /// Where its status line ends, from `start`.
    line_len: usize,
    status: u16,
}

/// The first 4xx or 5xx answer head with `content-length: 0` in `buf`. Only heads contain a
/// raw CRLF: reel's bodies are JSON or Prometheus text.
fn find_empty_answer(buf: &[u8]) -> Option<EmptyAnswer> {
    let mut from = 0;
    while let Some(at) = memmem::find(&buf[from..], b"HTTP/1.") {
        let start = from + at;
        if let Some(answer) = empty_answer_at(buf, start) {
            return Some(answer);
        }
        from = start + 1;
    }
    None
}

fn empty_answer_at(buf: &[u8], start: usize) -> Option<EmptyAnswer> {
    let head = &buf[start..];
    // "HTTP/1.1 431 …": the version's last digit, a space, three digits.
    if head.len() < 12 || !matches!(head[7], b'0' | b'1') || head[8] != b' ' {
        return None;
    }
    let status = std::str::from_utf8(&head[9..12])
        .ok()?
        .parse::<u16>()
        .ok()?;
    if !(400..600).contains(&status) {
        return None;
    }
    let line_len = memmem::find(head, b"\r\n")?;
    if !head[line_len..].starts_with(EMPTY_BODY) {
        return None;
    }
    let head_len = memmem::find(head, b"\r\n\r\n")? + 4;
    Some(EmptyAnswer {
        start,
        head_len,
        line_len,
        status,
    })
}

/// The `error` text of a dispatcher-made answer.
fn error_text(status: u16, head_timeout_secs: u64) -> String {
    match status {
        400 => "Bad Request: the request line or headers are malformed".to_owned(),
        408 => format!(
            "Request Timeout: the request head did not arrive within {head_timeout_secs} seconds"
        ),
        431 => "Request Header Fields Too Large: a request head holds at most 96 headers \
                and 128 KiB"
            .to_owned(),
        other => StatusCode::from_u16(other)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("error")
            .to_owned(),
    }
}

/// `head` (an [`EmptyAnswer`]'s) with a JSON error body.
fn with_json_body(head: &[u8], answer: &EmptyAnswer, head_timeout_secs: u64) -> Vec<u8> {
    let body = error_body(&error_text(answer.status, head_timeout_secs));
    let mut out = Vec::with_capacity(head.len() + body.len() + 64);
    out.extend_from_slice(&head[..answer.line_len]);
    out.extend_from_slice(b"\r\ncontent-type: application/json\r\ncontent-length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&head[answer.line_len + EMPTY_BODY.len()..answer.head_len]);
    out.extend_from_slice(&body);
    out
}

impl<T: AsyncWrite + Unpin> JsonErrorBodies<T> {
    /// Writes what is left of a rewritten answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending = Vec::new();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonErrorBodies<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonErrorBodies<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        match find_empty_answer(buf) {
            None => Pin::new(&mut this.io).poll_write(cx, buf),
            // Earlier answers first, so the empty one starts the next write.
            Some(answer) if answer.start > 0 => {
                Pin::new(&mut this.io).poll_write(cx, &buf[..answer.start])
            }
            Some(answer) => {
                this.pending = with_json_body(buf, &answer, this.head_timeout_secs);
                // The head counts as written: the rest of the answer goes out before any
                // later byte, and before a flush or shutdown completes.
                if let Poll::Ready(Err(err)) = this.poll_pending(cx) {
                    return Poll::Ready(Err(err));
                }
                Poll::Ready(Ok(answer.head_len))
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &str = "date: Tue, 01 Dec 2026 11:57:49 GMT\r\n\r\n";

    fn empty(status: &str) -> String {
        format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n{DATE}")
    }

    #[test]
    fn finds_only_empty_error_answers() {
        let head = empty("431 Request Header Fields Too Large");
        let found = find_empty_answer(head.as_bytes()).expect("found");
        assert_eq!(
            (found.start, found.status, found.head_len),
            (0, 431, head.len())
        );
        for other in [
            format!("HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n{DATE}"),
            format!("HTTP/1.1 400 Bad Request\r\ncontent-length: 23\r\n{DATE}"),
            "HTTP/1.1 100 Continue\r\n\r\n".to_owned(),
            // A head not written whole is left alone.
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n".to_owned(),
        ] {
            assert_eq!(find_empty_answer(other.as_bytes()), None, "{other}");
        }
        // After an earlier answer on the same connection.
        let two = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\n{{\"status\":\"ok\"}}{}",
            empty("400 Bad Request")
        );
        let found = find_empty_answer(two.as_bytes()).expect("found");
        assert_eq!(found.start, two.find("HTTP/1.1 400").expect("second"));
    }

    #[test]
    fn the_answer_gets_a_json_body() {
        let head = empty("408 Request Timeout");
        let answer = find_empty_answer(head.as_bytes()).expect("found");
        let out = String::from_utf8(with_json_body(head.as_bytes(), &answer, 5)).expect("utf8");
        let body =
            r#"{"error":"Request Timeout: the request head did not arrive within 5 seconds"}"#;
        assert_eq!(
            out,
            format!(
                "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\nconnection: close\r\n{DATE}{body}",
                body.len()
            )
        );
    }

    #[actix_rt::test]
    async fn writes_pass_through_or_are_rewritten_whole() {
        use tokio::io::AsyncWriteExt;
        let mut conn = JsonErrorBodies::new(Vec::new(), 5);
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        conn.write_all(ok).await.expect("write");
        conn.write_all(empty("400 Bad Request").as_bytes())
            .await
            .expect("write");
        conn.flush().await.expect("flush");
        let text = String::from_utf8(conn.io).expect("utf8");
        assert!(text.starts_with(std::str::from_utf8(ok).expect("utf8")));
        assert!(
            text.ends_with(r#"{"error":"Bad Request: the request line or headers are malformed"}"#),
            "{text}"
        );
    }
}
