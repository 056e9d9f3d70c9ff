//! HTTP/1.1 by hand over TCP, for what a well-behaved client cannot send: slow bodies,
//! oversized heads, half-sent requests held open.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::TestApp;

/// One connection to the server.
pub struct Raw {
    stream: TcpStream,
}

/// A response as read off the wire.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}\n{}",
                self.head,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The `error` text of a JSON error body, checking it is typed as JSON.
    pub fn error(&self) -> String {
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{}",
            self.head
        );
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error text in {}", String::from_utf8_lossy(&self.body)))
            .to_owned()
    }
}

impl Raw {
    pub async fn connect(app: &TestApp) -> Raw {
        let addr = app.base.trim_start_matches("http://").to_owned();
        let stream = TcpStream::connect(addr).await.expect("connect");
        Raw { stream }
    }

    /// Writes `bytes`; false when the server already closed the connection.
    pub async fn send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok() && self.stream.flush().await.is_ok()
    }

    /// Writes `bytes` one at a time, `gap` apart, stopping when the server closes.
    pub async fn trickle(&mut self, bytes: &[u8], gap: Duration) {
        for byte in bytes {
            if !self.send(std::slice::from_ref(byte)).await {
                return;
            }
            actix_rt::time::sleep(gap).await;
        }
    }

    /// True when the server sent something (or closed) within `wait`.
    pub async fn readable_within(&self, wait: Duration) -> bool {
        actix_rt::time::timeout(wait, self.stream.readable())
            .await
            .is_ok()
    }

    /// Reads one response: its head, then `Content-Length` bytes of body, or the rest of
    /// the stream without one.
    pub async fn response(&mut self) -> RawResponse {
        actix_rt::time::timeout(Duration::from_secs(60), read_response(&mut self.stream))
            .await
            .expect("a response within 60 s")
    }

    /// Writes `bytes` while reading the response, for a server that answers (and closes)
    /// before it read everything sent; write errors are ignored.
    pub async fn send_and_read(&mut self, bytes: &[u8]) -> RawResponse {
        let (mut read, mut write) = self.stream.split();
        let (_, res) = tokio::join!(
            async { write.write_all(bytes).await },
            actix_rt::time::timeout(Duration::from_secs(60), read_response(&mut read)),
        );
        res.expect("a response within 60 s")
    }
}

async fn read_response<R: AsyncRead + Unpin>(stream: &mut R) -> RawResponse {
    let mut data = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut chunk).await.expect("read the response");
        assert!(n > 0, "connection closed before a response: {data:?}");
        data.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut body = data[head_end + 4..].to_vec();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head}"));
    let mut response = RawResponse {
        status,
        head,
        body: Vec::new(),
    };
    match response.header("content-length").map(str::parse::<usize>) {
        Some(Ok(len)) => {
            while body.len() < len {
                let n = stream.read(&mut chunk).await.expect("read the body");
                assert!(n > 0, "connection closed inside the body");
                body.extend_from_slice(&chunk[..n]);
            }
            body.truncate(len);
        }
        _ => {
            let _ = stream.read_to_end(&mut body).await;
        }
    }
    response.body = body;
    response
}

/// The head of a `POST /v1/ingest` with a JSON body of `len` bytes and extra header lines.
pub fn post_head(len: usize, extra: &str) -> Vec<u8> {
    format!(
        "POST /v1/ingest HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {len}\r\n{extra}\r\n"
    )
    .into_bytes()
}
