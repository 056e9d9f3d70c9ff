//! The raw turn: a captured turn as it is kept verbatim beside the nodes derived from it
//! (docs/capture.md §9, §10, §13).
//!
//! Built once on the HTTP worker, where the body is. The request is cut into chunks when
//! first needed: the session's actor does it before the commit
//! ([`RawTurn::chunk_after`]), after the previous request of the session when it still
//! holds it, so that only the new end of a re-sent conversation is cut and hashed, and it
//! compresses the chunks the commit will surely write ([`RawTurn::compress_ahead`]); the
//! commit then only looks up and writes what is missing.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use bytes::Bytes;
use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

use crate::capture::chunks::{self, ChunkError, ChunkHash, Chunked, Cut, Piece};

/// The most `raw_response` bytes a raw turn keeps (8 MiB, decoded from base64); longer ones
/// are dropped and marked (docs/capture.md §9).
pub const MAX_RAW_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// A captured turn as it is kept verbatim.
#[derive(Clone)]
pub struct RawTurn {
    /// `meta.request_id`; `""` is none and never dedups.
    pub request_id: String,
    pub provider: String,
    pub agent_name: String,
    /// Microsecond precision, so both backends store the same instant.
    pub received_at: DateTime<Utc>,
    /// The `request` JSON value exactly as received.
    pub request: Bytes,
    /// `request` cut into chunks, once ([`RawTurn::request_chunks`]).
    request_chunks: OnceLock<Chunked>,
    /// Compressed bytes of chunks the commit is expected to write, by hash.
    compressed: OnceLock<HashMap<ChunkHash, Vec<u8>>>,
    /// JSON text: the client's response, or the server's reduction.
    pub response: Option<String>,
    /// The response is the server's reduction of `raw_response`.
    pub response_reduced: bool,
    /// JSON text of `meta`, `{}` when absent.
    pub meta: String,
    /// The session envelope as sent, JSON text.
    pub envelope: Option<String>,
    /// Still under its encoding; `None` when not sent or dropped by the cap.
    pub raw_response: Option<Vec<u8>>,
    pub raw_response_encoding: String,
    /// Bytes existed for this turn and are gone (docs/capture.md §9).
    pub raw_response_dropped: bool,
    /// The decode salvaged a cut stream.
    pub truncated: bool,
    /// The rejected raw turn this turn re-derives: its commit flips that row to accepted
    /// instead of inserting a new one.
    pub reprocess_of: Option<Uuid>,
}

/// What storing a raw turn wrote, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RawWrite {
    /// Bytes the row added: its values and the chunks it inserted (compressed).
    pub bytes: u64,
    /// Request chunks inserted because the org did not store them yet.
    pub chunks_written: u64,
    /// Request chunks the org stored already.
    pub chunks_deduplicated: u64,
}

/// What the commit of an accepted turn did with its raw turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawStored {
    /// Stored as this new raw turn.
    Inserted(Uuid),
    /// A raw turn with the same request id was stored first; this one wrote nothing.
    Duplicate,
    /// The rejected raw turn with this id is now accepted.
    Reprocessed(Uuid),
}

/// What a capture client sent, before the §9 rules are applied.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    pub request_id: String,
    pub provider: String,
    pub agent_name: String,
    pub received_at: DateTime<Utc>,
    pub request: Bytes,
    pub response: Option<String>,
    pub response_reduced: bool,
    /// JSON text of `meta`; `None` when absent.
    pub meta: Option<String>,
    pub envelope: Option<String>,
    /// Decoded from base64, still under its encoding; empty is none.
    pub raw_response: Option<Vec<u8>>,
    pub raw_response_encoding: String,
    pub raw_response_withheld: bool,
    pub truncated: bool,
}

/// Why a turn keeps no `raw_response` bytes although it had some; told apart only in logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// Longer than [`MAX_RAW_RESPONSE_BYTES`].
    OverCap,
    /// The client withheld them (`raw_response_withheld`).
    Withheld,
}

/// The `raw_response` bytes a raw turn keeps, and why none are kept when they existed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptResponse {
    pub bytes: Option<Vec<u8>>,
    pub dropped: Option<Dropped>,
}

/// The §9 rules: bytes over the cap are not kept; a turn whose bytes were withheld or
/// dropped is marked; bytes that were sent and kept win over the withheld marker.
pub fn keep_raw_response(bytes: Option<Vec<u8>>, withheld: bool) -> KeptResponse {
    let bytes = bytes.filter(|b| !b.is_empty());
    match bytes {
        Some(b) if b.len() > MAX_RAW_RESPONSE_BYTES => KeptResponse {
            bytes: None,
            dropped: Some(Dropped::OverCap),
        },
        Some(b) => KeptResponse {
            bytes: Some(b),
            dropped: None,
        },
        None => KeptResponse {
            bytes: None,
            dropped: withheld.then_some(Dropped::Withheld),
        },
    }
}

impl RawTurn {
    /// Applies the §9 rules and cuts the request into chunks. Also returns why bytes were
    /// dropped, for the log line that tells the two causes apart.
    pub fn new(capture: Capture) -> (RawTurn, Option<Dropped>) {
        let kept = keep_raw_response(capture.raw_response, capture.raw_response_withheld);
        let raw = RawTurn {
            request_id: capture.request_id,
            provider: capture.provider,
            agent_name: capture.agent_name,
            received_at: capture.received_at.trunc_subsecs(6),
            request: capture.request,
            request_chunks: OnceLock::new(),
            compressed: OnceLock::new(),
            response: capture.response,
            response_reduced: capture.response_reduced,
            meta: capture.meta.unwrap_or_else(|| "{}".to_owned()),
            envelope: capture.envelope,
            raw_response: kept.bytes,
            raw_response_encoding: capture.raw_response_encoding,
            raw_response_dropped: kept.dropped.is_some(),
            truncated: capture.truncated,
            reprocess_of: None,
        };
        (raw, kept.dropped)
    }

    /// `request` cut into chunks ([`Chunked::split`] the first time).
    pub fn request_chunks(&self) -> &Chunked {
        self.request_chunks
            .get_or_init(|| Chunked::split(&self.request))
    }

    /// Cuts `request` into chunks after `previous` (an earlier request of the session and
    /// its cuts, [`Chunked::split_after`]), unless it was cut already.
    pub fn chunk_after(&self, previous: Option<(&[u8], &[Cut])>) -> &Chunked {
        self.request_chunks
            .get_or_init(|| Chunked::split_after(&self.request, previous))
    }

    /// Compresses `pieces` (pieces of [`RawTurn::request_chunks`]) now, once, for the
    /// commit to take with [`RawTurn::compressed`]: work moved off the database writer,
    /// which the turns of every session share, to the caller's thread.
    pub fn compress_ahead<'a>(
        &self,
        pieces: impl IntoIterator<Item = &'a Piece>,
    ) -> Result<(), ChunkError> {
        if self.compressed.get().is_some() {
            return Ok(());
        }
        let chunked = self.request_chunks();
        let mut compressed = HashMap::new();
        for piece in pieces {
            if let Some(bytes) = chunked.bytes(piece, &self.request) {
                compressed.insert(*piece.hash(), chunks::compress(bytes)?);
            }
        }
        // Set at most once: a concurrent second call computed the same bytes.
        let _ = self.compressed.set(compressed);
        Ok(())
    }

    /// The compressed bytes of chunk `hash` made by [`RawTurn::compress_ahead`], if any.
    pub fn compressed(&self, hash: &ChunkHash) -> Option<&[u8]> {
        self.compressed.get()?.get(hash).map(Vec::as_slice)
    }

    /// The same turn, committed as the re-derivation of the rejected raw turn `id`.
    pub fn reprocessing(mut self, id: Uuid) -> RawTurn {
        self.reprocess_of = Some(id);
        self
    }
}

/// Sizes only: a raw turn's bodies are prompt content, which logs never carry.
impl fmt::Debug for RawTurn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawTurn")
            .field("request_id", &self.request_id)
            .field("provider", &self.provider)
            .field("agent_name", &self.agent_name)
            .field("received_at", &self.received_at)
            .field("request_bytes", &self.request.len())
            .field(
                "request_chunks",
                &self.request_chunks.get().map(|c| c.pieces().len()),
            )
            .field("response_bytes", &self.response.as_ref().map(String::len))
            .field("response_reduced", &self.response_reduced)
            .field(
                "raw_response_bytes",
                &self.raw_response.as_ref().map(Vec::len),
            )
            .field("raw_response_encoding", &self.raw_response_encoding)
            .field("raw_response_dropped", &self.raw_response_dropped)
            .field("truncated", &self.truncated)
            .field("reprocess_of", &self.reprocess_of)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(raw: Option<Vec<u8>>, withheld: bool) -> Capture {
        Capture {
            request: Bytes::from_static(br#"{"model":"m","messages":[]}"#),
            raw_response: raw,
            raw_response_withheld: withheld,
            ..Capture::default()
        }
    }

    #[test]
    fn bytes_up_to_the_cap_are_kept() {
        let bytes = vec![7; MAX_RAW_RESPONSE_BYTES];
        let (raw, dropped) = RawTurn::new(capture(Some(bytes.clone()), false));
        assert_eq!(raw.raw_response, Some(bytes));
        assert!(!raw.raw_response_dropped);
        assert_eq!(dropped, None);
    }

    #[test]
    fn bytes_over_the_cap_are_dropped_and_marked() {
        let (raw, dropped) =
            RawTurn::new(capture(Some(vec![7; MAX_RAW_RESPONSE_BYTES + 1]), false));
        assert_eq!(raw.raw_response, None);
        assert!(raw.raw_response_dropped);
        assert_eq!(dropped, Some(Dropped::OverCap));
    }

    #[test]
    fn withheld_without_bytes_is_marked() {
        for none in [None, Some(Vec::new())] {
            let (raw, dropped) = RawTurn::new(capture(none, true));
            assert_eq!(raw.raw_response, None);
            assert!(raw.raw_response_dropped);
            assert_eq!(dropped, Some(Dropped::Withheld));
        }
    }

    #[test]
    fn withheld_with_bytes_over_the_cap_is_marked_once() {
        let kept = keep_raw_response(Some(vec![1; MAX_RAW_RESPONSE_BYTES + 1]), true);
        assert_eq!(kept.bytes, None);
        assert_eq!(kept.dropped, Some(Dropped::OverCap));
    }

    #[test]
    fn sent_bytes_win_over_the_withheld_marker() {
        let (raw, dropped) = RawTurn::new(capture(Some(b"hi".to_vec()), true));
        assert_eq!(raw.raw_response.as_deref(), Some(&b"hi"[..]));
        assert!(!raw.raw_response_dropped);
        assert_eq!(dropped, None);
    }

    #[test]
    fn no_bytes_and_no_marker_is_not_dropped() {
        for none in [None, Some(Vec::new())] {
            let (raw, _) = RawTurn::new(capture(none, false));
            assert_eq!(raw.raw_response, None);
            assert!(!raw.raw_response_dropped);
        }
    }

    #[test]
    fn absent_meta_is_an_empty_object_and_the_request_is_chunked() {
        let (raw, _) = RawTurn::new(capture(None, false));
        assert_eq!(raw.meta, "{}");
        assert_eq!(raw.request_chunks(), &Chunked::split(&raw.request));
        assert_eq!(raw.request_chunks().size(), raw.request.len());
    }

    #[test]
    fn debug_shows_sizes_not_content() {
        let mut c = capture(Some(b"secret response".to_vec()), false);
        c.response = Some(r#"{"text":"secret"}"#.into());
        let (raw, _) = RawTurn::new(c);
        let shown = format!("{raw:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("request_bytes: 27"), "{shown}");
    }
}
