//! Raw request bytes as content-defined chunks, so that a session's raw storage grows with
//! what each turn adds rather than with the whole conversation it re-sends
//! (docs/storage.md#raw-turns).
//!
//! A request is cut into data chunks by FastCDC (the 2020 algorithm): cut points depend only
//! on the bytes around them, so two requests that share a prefix share every chunk of it,
//! and an insertion disturbs only the chunks it touches. Each chunk is addressed by the
//! SHA-256 of its bytes.
//!
//! The ordered list of data-chunk hashes would itself grow with the request (a 2 MB
//! request lists about 16 KB of hashes) and be rewritten by every turn. So the list is cut
//! the same way, with smaller sizes and on hash boundaries, into list chunks stored beside
//! the data chunks; the list of those is cut again while it is longer than
//! [`MAX_TOP_LIST`]. What a turn keeps itself is only that short top list and the number of
//! levels under it. A warm turn rewrites one tail chunk per level and its top list.
//!
//! Pure CPU: splitting, hashing and compressing; the store decides what to write.

use std::cell::RefCell;
use std::collections::HashSet;
use std::ops::Range;

use fastcdc::v2020::FastCDC;
use sha2::{Digest, Sha256};

/// Bytes of a chunk hash (SHA-256).
pub const HASH_LEN: usize = 32;

/// The address of a chunk: the SHA-256 of its uncompressed bytes.
pub type ChunkHash = [u8; HASH_LEN];

/// Data chunk sizes (bytes). A warm turn rewrites about one average chunk of old bytes
/// besides what it adds (the chunk that used to end at the end of the request), and each
/// chunk costs its 32-byte hash in the level-0 list: 4 KiB keeps the first small against a
/// turn's own 2–10 KB of new content, and the second at under 1 % of the request.
const DATA_MIN: usize = 1024;
const DATA_AVG: usize = 4 * 1024;
const DATA_MAX: usize = 16 * 1024;

/// List chunk sizes (bytes), cut on hash boundaries: 16 hashes on average. A level costs a
/// warm turn about one list chunk; smaller ones would need more levels.
const LIST_MIN: usize = 8 * HASH_LEN;
const LIST_AVG: usize = 16 * HASH_LEN;
const LIST_MAX: usize = 64 * HASH_LEN;

/// A list this long or shorter is kept by the turn itself (32 hashes); a longer one is cut
/// into another level of list chunks.
pub const MAX_TOP_LIST: usize = 32 * HASH_LEN;

/// More levels than any request can need: each level divides the list by about 16, so 8
/// levels cover 2^32 hashes of 4 KiB chunks.
pub const MAX_LEVELS: u8 = 8;

/// zstd level of stored chunks: the default, fast enough to run inside a commit.
const ZSTD_LEVEL: i32 = 3;

/// Why chunk bytes could not be compressed, or a request not be reassembled.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChunkError {
    #[error("chunk {0} is missing")]
    Missing(String),
    #[error("chunk {0} does not hold the bytes it is named by")]
    Mismatch(String),
    #[error("a chunk list of {0} bytes is not a list of hashes")]
    BadList(usize),
    #[error("{0} list levels is more than any request has")]
    TooDeep(u8),
    #[error("the reassembled request has {got} bytes, {expected} expected")]
    Size { expected: u64, got: u64 },
    #[error("zstd: {0}")]
    Zstd(String),
}

/// One chunk a request needs stored: a data chunk (a range of the request) or a list chunk
/// (hashes of the level below).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    hash: ChunkHash,
    body: Body,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Body {
    Data(Range<usize>),
    List(Vec<u8>),
}

impl Piece {
    pub fn hash(&self) -> &ChunkHash {
        &self.hash
    }

    /// Uncompressed size in bytes.
    pub fn len(&self) -> usize {
        match &self.body {
            Body::Data(range) => range.len(),
            Body::List(list) => list.len(),
        }
    }

    /// Never true: a chunk holds at least one byte.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_list(&self) -> bool {
        matches!(self.body, Body::List(_))
    }
}

/// One data chunk of a split request, in request order: where it ends and its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    end: usize,
    hash: ChunkHash,
}

/// A request cut into chunks: every distinct chunk it needs (data and list chunks), the top
/// list a turn keeps, and how many list levels lie under that list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chunked {
    size: usize,
    levels: u8,
    top: Vec<u8>,
    /// Each hash once, data chunks first, in order of first appearance.
    pieces: Vec<Piece>,
    /// Every data chunk in request order.
    cuts: Vec<Cut>,
}

impl Chunked {
    /// Cuts `request` into chunks.
    pub fn split(request: &[u8]) -> Chunked {
        Chunked::split_after(request, None)
    }

    /// Cuts `request` into chunks as [`Chunked::split`] does, taking the cuts and hashes of
    /// the data chunks it shares with `previous` (an earlier request and the cuts of its
    /// split) from there instead of finding and hashing them again.
    ///
    /// A warm turn re-sends the whole conversation before its few new messages, so nearly
    /// all of a request is the previous one's prefix: comparing it costs a fraction of
    /// FastCDC and SHA-256 over it. A FastCDC cut depends only on the bytes from the chunk's
    /// start up to and including the byte at the cut (the scan stops there), and on how many
    /// bytes follow the start when fewer than [`DATA_MAX`] do. So a chunk of `previous` is
    /// the same chunk of `request` when it starts where the last reused one ended, the byte
    /// at its end is still within the common prefix, and both requests hold at least
    /// `DATA_MAX` bytes from its start. The result equals `split(request)` (tested).
    pub fn split_after(request: &[u8], previous: Option<(&[u8], &[Cut])>) -> Chunked {
        Chunked::split_counting(request, previous).0
    }

    /// [`Chunked::split_after`], and how many bytes of `request` it cut and hashed.
    fn split_counting(request: &[u8], previous: Option<(&[u8], &[Cut])>) -> (Chunked, usize) {
        let mut hashed = 0;
        let mut cuts: Vec<Cut> = Vec::with_capacity(request.len() / DATA_AVG + 1);
        let mut tail = None;
        if let Some((old, old_cuts)) = previous {
            cuts.extend_from_slice(reusable_cuts(old, old_cuts, request));
            tail = Some(Tail::new(old, old_cuts, request));
        }
        let start = cuts.last().map_or(0, |c| c.end);
        if let Some(rest) = tail.as_ref().and_then(|t| t.from(start)) {
            cuts.extend(rest);
        } else {
            for chunk in FastCDC::new(&request[start..], DATA_MIN, DATA_AVG, DATA_MAX) {
                let end = start + chunk.offset + chunk.length;
                let hash = sha256(&request[start + chunk.offset..end]);
                hashed += chunk.length;
                cuts.push(Cut { end, hash });
                if let Some(rest) = tail.as_ref().and_then(|t| t.from(end)) {
                    cuts.extend(rest);
                    break;
                }
            }
        }
        let mut pieces = Vec::new();
        let mut seen = HashSet::new();
        let mut list = Vec::with_capacity(cuts.len() * HASH_LEN);
        let mut begin = 0;
        for cut in &cuts {
            list.extend_from_slice(&cut.hash);
            if seen.insert(cut.hash) {
                pieces.push(Piece {
                    hash: cut.hash,
                    body: Body::Data(begin..cut.end),
                });
            }
            begin = cut.end;
        }
        let mut levels = 0;
        while list.len() > MAX_TOP_LIST {
            let mut upper = Vec::with_capacity(list.len() / LIST_AVG * HASH_LEN + HASH_LEN);
            for range in list_cuts(&list) {
                let part = &list[range];
                let hash = sha256(part);
                upper.extend_from_slice(&hash);
                if seen.insert(hash) {
                    pieces.push(Piece {
                        hash,
                        body: Body::List(part.to_vec()),
                    });
                }
            }
            list = upper;
            levels += 1;
        }
        let chunked = Chunked {
            size: request.len(),
            levels,
            top: list,
            pieces,
            cuts,
        };
        (chunked, hashed)
    }

    /// The data chunks in request order, for [`Chunked::split_after`] of the next request.
    pub fn cuts(&self) -> &[Cut] {
        &self.cuts
    }

    /// Bytes of the request this was split from.
    pub fn size(&self) -> usize {
        self.size
    }

    /// List levels under [`Chunked::top`]: 0 when the top list names data chunks.
    pub fn levels(&self) -> u8 {
        self.levels
    }

    /// The top list: concatenated hashes, at most [`MAX_TOP_LIST`] bytes.
    pub fn top(&self) -> &[u8] {
        &self.top
    }

    /// Every distinct chunk the request needs, data chunks first.
    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// The uncompressed bytes of `piece`, a piece of this split of `request`. `None` when
    /// `request` is not the request this was split from (its length differs).
    pub fn bytes<'a>(&'a self, piece: &'a Piece, request: &'a [u8]) -> Option<&'a [u8]> {
        match &piece.body {
            Body::Data(range) if request.len() == self.size => request.get(range.clone()),
            Body::Data(_) => None,
            Body::List(list) => Some(list),
        }
    }
}

/// Cut points of a hash list, on hash boundaries: FastCDC's cut, moved up to the end of the
/// hash it falls in. Each cut starts where the last one ended, so boundaries stay content
/// defined.
fn list_cuts(list: &[u8]) -> Vec<Range<usize>> {
    let cdc = FastCDC::new(list, LIST_MIN, LIST_AVG, LIST_MAX);
    let mut cuts = Vec::with_capacity(list.len() / LIST_AVG + 1);
    let mut start = 0;
    while start < list.len() {
        let (_, cut) = cdc.cut(start, list.len() - start);
        let end = cut.next_multiple_of(HASH_LEN).min(list.len());
        cuts.push(start..end);
        start = end;
    }
    cuts
}

/// The leading cuts of `old` (a request and its cuts) that are also cuts of `request`, by
/// the rule of [`Chunked::split_after`].
fn reusable_cuts<'a>(old: &[u8], old_cuts: &'a [Cut], request: &[u8]) -> &'a [Cut] {
    let common = common_prefix(old, request);
    let both = old.len().min(request.len());
    let mut start = 0;
    let mut reused = 0;
    for cut in old_cuts {
        if cut.end >= common || start + DATA_MAX > both {
            break;
        }
        start = cut.end;
        reused += 1;
    }
    &old_cuts[..reused]
}

/// The chunks a request shares with the end of the previous one. A request's new content
/// is rarely at its end (Anthropic bodies carry the system prompt and tools after the
/// messages), so the chunks after it are the previous request's, shifted. Once the cutting
/// of `request` reaches a position in the suffix the two share that is a chunk start of the
/// old one, the rest follows from the same bytes with the same number of bytes left, so it
/// is cut exactly as the old one was.
struct Tail<'a> {
    old_cuts: &'a [Cut],
    old_len: usize,
    new_len: usize,
    /// Where the common suffix starts in the new request.
    shared_from: usize,
}

impl<'a> Tail<'a> {
    fn new(old: &[u8], old_cuts: &'a [Cut], request: &[u8]) -> Self {
        Tail {
            old_cuts,
            old_len: old.len(),
            new_len: request.len(),
            shared_from: request.len() - common_suffix(old, request),
        }
    }

    /// The old cuts after `at`, shifted into the new request, when a chunk of the new one
    /// starting at `at` is in the shared suffix and starts an old chunk too.
    fn from(&self, at: usize) -> Option<impl Iterator<Item = Cut> + 'a> {
        if at == 0 || at >= self.new_len || at < self.shared_from {
            return None;
        }
        // In the shared suffix, so `at` maps into the old request.
        let old_at = at + self.old_len - self.new_len;
        let index = self
            .old_cuts
            .binary_search_by_key(&old_at, |c| c.end)
            .ok()?;
        let (old_len, new_len) = (self.old_len, self.new_len);
        Some(self.old_cuts[index + 1..].iter().map(move |c| Cut {
            end: c.end + new_len - old_len,
            hash: c.hash,
        }))
    }
}

/// Length of the longest common suffix of `a` and `b`, compared as [`common_prefix`] does.
fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    const BLOCK: usize = 256;
    let len = a.len().min(b.len());
    let (a, b) = (&a[a.len() - len..], &b[b.len() - len..]);
    let mut from = len;
    while from >= BLOCK && a[from - BLOCK..from] == b[from - BLOCK..from] {
        from -= BLOCK;
    }
    (len - from)
        + a[..from]
            .iter()
            .rev()
            .zip(b[..from].iter().rev())
            .take_while(|(x, y)| x == y)
            .count()
}

/// Length of the longest common prefix of `a` and `b`: compared a block at a time, which
/// the slice comparison does at memcmp speed, then byte by byte in the first block that
/// differs.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    const BLOCK: usize = 256;
    let len = a.len().min(b.len());
    let mut at = 0;
    while at + BLOCK <= len && a[at..at + BLOCK] == b[at..at + BLOCK] {
        at += BLOCK;
    }
    at + a[at..len]
        .iter()
        .zip(&b[at..len])
        .take_while(|(x, y)| x == y)
        .count()
}

pub fn sha256(bytes: &[u8]) -> ChunkHash {
    Sha256::digest(bytes).into()
}

/// Compresses a chunk for storage (zstd).
pub fn compress(bytes: &[u8]) -> Result<Vec<u8>, ChunkError> {
    thread_local! {
        // One compression context per thread, reused: creating and zeroing a context per
        // chunk cost more than compressing a 4 KiB chunk.
        static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> =
            const { RefCell::new(None) };
    }
    let zstd = |e: std::io::Error| ChunkError::Zstd(e.to_string());
    COMPRESSOR.with_borrow_mut(|slot| {
        let compressor = match slot {
            Some(compressor) => compressor,
            None => slot.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(zstd)?),
        };
        compressor.compress(bytes).map_err(zstd)
    })
}

/// Decompresses a stored chunk of `size` bytes; never allocates more than `size`.
pub fn decompress(stored: &[u8], size: usize) -> Result<Vec<u8>, ChunkError> {
    let bytes =
        zstd::bulk::decompress(stored, size).map_err(|e| ChunkError::Zstd(e.to_string()))?;
    if bytes.len() != size {
        return Err(ChunkError::Size {
            expected: size as u64,
            got: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

/// The hashes of a chunk list, in order.
pub fn list_hashes(list: &[u8]) -> Result<impl Iterator<Item = ChunkHash> + '_, ChunkError> {
    if !list.len().is_multiple_of(HASH_LEN) {
        return Err(ChunkError::BadList(list.len()));
    }
    Ok(list.chunks_exact(HASH_LEN).map(|h| {
        let mut hash = [0; HASH_LEN];
        hash.copy_from_slice(h);
        hash
    }))
}

/// The concatenation of the chunks `list` names, each checked against its hash. `lookup`
/// gives a chunk's uncompressed bytes.
pub fn expand<B, F>(list: &[u8], mut lookup: F) -> Result<Vec<u8>, ChunkError>
where
    B: AsRef<[u8]>,
    F: FnMut(&ChunkHash) -> Option<B>,
{
    let mut out = Vec::new();
    for hash in list_hashes(list)? {
        let bytes = lookup(&hash).ok_or_else(|| ChunkError::Missing(hex(&hash)))?;
        let bytes = bytes.as_ref();
        if sha256(bytes) != hash {
            return Err(ChunkError::Mismatch(hex(&hash)));
        }
        out.extend_from_slice(bytes);
    }
    Ok(out)
}

/// Reassembles a request from its top list: `levels` expansions of list chunks, then one of
/// data chunks. Byte-exact, or an error naming what is missing or damaged.
pub fn assemble<B, F>(
    top: &[u8],
    levels: u8,
    size: u64,
    mut lookup: F,
) -> Result<Vec<u8>, ChunkError>
where
    B: AsRef<[u8]>,
    F: FnMut(&ChunkHash) -> Option<B>,
{
    if levels > MAX_LEVELS {
        return Err(ChunkError::TooDeep(levels));
    }
    let mut list = top.to_vec();
    for _ in 0..levels {
        list = expand(&list, &mut lookup)?;
    }
    let request = expand(&list, &mut lookup)?;
    if request.len() as u64 != size {
        return Err(ChunkError::Size {
            expected: size,
            got: request.len() as u64,
        });
    }
    Ok(request)
}

/// Lowercase hex of a hash, for error texts.
pub fn hex(hash: &ChunkHash) -> String {
    use std::fmt::Write as _;
    hash.iter().fold(String::with_capacity(64), |mut s, b| {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Deterministic text-like bytes: words from a small vocabulary, as conversations are.
    fn text(seed: u64, len: usize) -> Vec<u8> {
        const WORDS: [&str; 16] = [
            "the ",
            "turn ",
            "request ",
            "fn ",
            "let ",
            "chunk ",
            "{\"role\": ",
            "\"user\", ",
            "assistant ",
            "tool_result ",
            "\\n",
            "error ",
            "42 ",
            "store ",
            "index ",
            "=> ",
        ];
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut out = Vec::with_capacity(len + 16);
        while out.len() < len {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let word = WORDS[(state >> 60) as usize];
            out.extend_from_slice(word.as_bytes());
            // A varying number now and then, so repeated words do not repeat whole chunks.
            if (state >> 56) & 7 == 0 {
                out.extend_from_slice(format!("{} ", state >> 40).as_bytes());
            }
        }
        out.truncate(len);
        out
    }

    /// Every chunk of `chunked` by hash, as the store would hold them.
    fn store_of(request: &[u8], chunked: &Chunked) -> HashMap<ChunkHash, Vec<u8>> {
        chunked
            .pieces()
            .iter()
            .map(|p| (*p.hash(), chunked.bytes(p, request).unwrap().to_vec()))
            .collect()
    }

    fn round_trip(request: &[u8]) -> Chunked {
        let chunked = Chunked::split(request);
        let store = store_of(request, &chunked);
        let back = assemble(
            chunked.top(),
            chunked.levels(),
            request.len() as u64,
            |h: &ChunkHash| store.get(h),
        )
        .unwrap();
        assert_eq!(back, request);
        assert!(chunked.top().len() <= MAX_TOP_LIST);
        chunked
    }

    /// Bytes of the chunks `b` needs that `a` did not store, and of `b`'s top list.
    fn new_bytes(a: &Chunked, b: &Chunked) -> usize {
        let old: HashSet<_> = a.pieces().iter().map(|p| *p.hash()).collect();
        b.pieces()
            .iter()
            .filter(|p| !old.contains(p.hash()))
            .map(Piece::len)
            .sum::<usize>()
            + b.top().len()
    }

    #[test]
    fn an_empty_request_has_no_chunk_and_comes_back_empty() {
        let chunked = round_trip(b"");
        assert!(chunked.pieces().is_empty());
        assert!(chunked.top().is_empty());
        assert_eq!(chunked.levels(), 0);
    }

    #[test]
    fn a_tiny_request_is_one_chunk_listed_directly() {
        let chunked = round_trip(b"{\"model\":\"m\"}");
        assert_eq!(chunked.pieces().len(), 1);
        assert_eq!(chunked.levels(), 0);
        assert_eq!(chunked.top(), sha256(b"{\"model\":\"m\"}"));
    }

    #[test]
    fn a_huge_request_gets_list_levels_and_a_short_top() {
        let request = text(1, 8 << 20);
        let chunked = round_trip(&request);
        assert!(chunked.levels() >= 2, "{} levels", chunked.levels());
        let data: Vec<_> = chunked.pieces().iter().filter(|p| !p.is_list()).collect();
        let lists = chunked.pieces().len() - data.len();
        assert!(lists > 0);
        assert!(data.iter().all(|p| p.len() <= DATA_MAX));
        // The lists are a small fraction of the data.
        let list_bytes: usize = chunked
            .pieces()
            .iter()
            .filter(|p| p.is_list())
            .map(Piece::len)
            .sum();
        assert!(
            list_bytes * 50 < request.len(),
            "{list_bytes} bytes of lists"
        );
    }

    #[test]
    fn list_chunks_hold_whole_hashes() {
        let request = text(2, 3 << 20);
        let chunked = Chunked::split(&request);
        for piece in chunked.pieces().iter().filter(|p| p.is_list()) {
            assert_eq!(piece.len() % HASH_LEN, 0);
            assert!(piece.len() <= LIST_MAX + HASH_LEN);
        }
    }

    #[test]
    fn repeated_content_is_stored_once() {
        let block = text(3, 64 * 1024);
        let request = [block.as_slice(), block.as_slice(), block.as_slice()].concat();
        let chunked = round_trip(&request);
        let stored: usize = chunked.pieces().iter().map(Piece::len).sum();
        assert!(stored < request.len() / 2, "{stored} of {}", request.len());
    }

    #[test]
    fn an_appended_message_adds_about_one_chunk_per_level() {
        let base = text(4, 2 << 20);
        let mut longer = base.clone();
        longer.extend_from_slice(&text(5, 2048));
        let a = round_trip(&base);
        let b = round_trip(&longer);
        let added = new_bytes(&a, &b);
        // The new message, the chunk that used to end the request, one tail chunk per list
        // level and the top list.
        let bound =
            2048 + DATA_MAX + usize::from(b.levels()) * (LIST_MAX + HASH_LEN) + MAX_TOP_LIST;
        assert!(added <= bound, "{added} new bytes, bound {bound}");
    }

    #[test]
    fn a_shared_suffix_is_shared_after_a_changed_prefix() {
        let tail = text(6, 512 * 1024);
        let a = [text(7, 10_000).as_slice(), tail.as_slice()].concat();
        let b = [text(8, 12_000).as_slice(), tail.as_slice()].concat();
        let (ca, cb) = (round_trip(&a), round_trip(&b));
        let added = new_bytes(&ca, &cb);
        assert!(added < 12_000 + 4 * DATA_MAX + 4 * LIST_MAX, "{added}");
    }

    #[test]
    fn an_insertion_in_the_middle_rewrites_only_its_neighbourhood() {
        let head = text(9, 700 * 1024);
        let tail = text(10, 700 * 1024);
        let a = [head.as_slice(), tail.as_slice()].concat();
        let b = [head.as_slice(), b"an inserted tool result", tail.as_slice()].concat();
        let (ca, cb) = (round_trip(&a), round_trip(&b));
        let added = new_bytes(&ca, &cb);
        let bound =
            3 * DATA_MAX + 2 * usize::from(cb.levels()) * (LIST_MAX + HASH_LEN) + MAX_TOP_LIST;
        assert!(added <= bound, "{added} new bytes, bound {bound}");
    }

    #[test]
    fn reassembly_names_a_missing_chunk() {
        let request = text(11, 100_000);
        let chunked = Chunked::split(&request);
        let mut store = store_of(&request, &chunked);
        let gone = *chunked.pieces()[1].hash();
        store.remove(&gone);
        let err = assemble(chunked.top(), chunked.levels(), 100_000, |h: &ChunkHash| {
            store.get(h)
        })
        .unwrap_err();
        assert_eq!(err, ChunkError::Missing(hex(&gone)));
    }

    #[test]
    fn reassembly_refuses_damaged_bytes() {
        let request = text(12, 100_000);
        let chunked = Chunked::split(&request);
        let mut store = store_of(&request, &chunked);
        let first = *chunked.pieces()[0].hash();
        store.get_mut(&first).unwrap()[0] ^= 1;
        let err = assemble(chunked.top(), chunked.levels(), 100_000, |h: &ChunkHash| {
            store.get(h)
        })
        .unwrap_err();
        assert_eq!(err, ChunkError::Mismatch(hex(&first)));
        let err = assemble(&[0; 31], 0, 0, |_: &ChunkHash| None::<Vec<u8>>).unwrap_err();
        assert_eq!(err, ChunkError::BadList(31));
    }

    #[test]
    fn bytes_refuses_another_request() {
        let request = text(13, 10_000);
        let chunked = Chunked::split(&request);
        assert!(chunked.bytes(&chunked.pieces()[0], &request[1..]).is_none());
    }

    #[test]
    fn compression_round_trips_and_shrinks_text() {
        let chunk = text(14, DATA_AVG);
        let stored = compress(&chunk).unwrap();
        assert!(stored.len() < chunk.len() / 2, "{}", stored.len());
        assert_eq!(decompress(&stored, chunk.len()).unwrap(), chunk);
        assert!(decompress(&stored, chunk.len() - 1).is_err());
        assert_eq!(decompress(&compress(b"").unwrap(), 0).unwrap(), b"");
    }

    /// `split_after` of `request` after `previous` must be exactly its plain split.
    fn same_as_split(previous: &[u8], request: &[u8]) -> Chunked {
        let before = Chunked::split(previous);
        let after = Chunked::split_after(request, Some((previous, before.cuts())));
        assert_eq!(after, Chunked::split(request));
        after
    }

    #[test]
    fn splitting_after_the_previous_request_gives_the_plain_split() {
        let base = text(21, 200_000);
        // The warm turn: the whole previous request and a new message after it.
        let mut grown = base.clone();
        grown.extend_from_slice(&text(22, 5_000));
        same_as_split(&base, &grown);
        // The same request again, a shorter one, an empty one, one shorter than a chunk.
        same_as_split(&base, &base);
        same_as_split(&base, &base[..150_000]);
        same_as_split(&base, b"");
        same_as_split(&base, &base[..DATA_MIN]);
        same_as_split(b"", &base);
        // A change early in the request (a new system prompt) and one byte in the middle.
        let mut early = base.clone();
        early[10] ^= 1;
        same_as_split(&base, &early);
        let mut middle = grown.clone();
        middle[100_000] ^= 1;
        same_as_split(&base, &middle);
        // Bytes that never cut but at the maximum (all zeroes).
        let zeroes = vec![0; 100_000];
        let mut more = zeroes.clone();
        more.extend_from_slice(&[0; 20_000]);
        same_as_split(&zeroes, &more);
    }

    #[test]
    fn a_grown_request_reuses_the_cuts_of_its_prefix() {
        let base = text(23, 120_000);
        let mut grown = base.clone();
        grown.extend_from_slice(&text(24, 3_000));
        let before = Chunked::split(&base);
        // All but the chunks within DATA_MAX of the old end are taken over: only the last
        // few KiB are cut and hashed again.
        let reused = reusable_cuts(&base, before.cuts(), &grown);
        let start = reused.last().map_or(0, |c| c.end);
        assert!(
            start + 2 * DATA_MAX >= base.len(),
            "{start} of {}",
            base.len()
        );
        // A request that differs from the tenth byte on reuses nothing.
        let mut early = grown.clone();
        early[10] ^= 1;
        assert!(reusable_cuts(&base, before.cuts(), &early).is_empty());
        // Nor one shorter than a maximal chunk: its first cut may fall elsewhere.
        assert!(reusable_cuts(&base, before.cuts(), &base[..DATA_MAX - 2]).is_empty());
    }

    #[test]
    fn only_the_bytes_around_an_insertion_are_cut_and_hashed() {
        // Messages grow in the middle of an Anthropic body: system prompt and tools follow.
        let base = text(25, 150_000);
        let before = Chunked::split(&base);
        let mut grown = base[..40_000].to_vec();
        grown.extend_from_slice(&text(26, 3_000));
        grown.extend_from_slice(&base[40_000..]);
        let (after, hashed) = Chunked::split_counting(&grown, Some((&base, before.cuts())));
        assert_eq!(after, Chunked::split(&grown));
        assert!(hashed < 3_000 + 4 * DATA_MAX, "{hashed} bytes hashed");
        // Without a previous request everything is.
        assert_eq!(Chunked::split_counting(&grown, None).1, grown.len());
        // The same request again is taken over whole but for its last maximal chunk.
        let (_, again) = Chunked::split_counting(&base, Some((&base, before.cuts())));
        assert!(again <= DATA_MAX, "{again}");
    }

    proptest::proptest! {
        #[test]
        fn split_after_any_edit_is_the_plain_split(
            seed in 0u64..1_000,
            len in 0usize..60_000,
            at in 0usize..60_000,
            cut in 0usize..20_000,
            insert in proptest::collection::vec(proptest::num::u8::ANY, 0..3_000),
        ) {
            let previous = text(seed, len);
            let at = at.min(previous.len());
            let end = (at + cut).min(previous.len());
            let mut request = previous[..at].to_vec();
            request.extend_from_slice(&insert);
            request.extend_from_slice(&previous[end..]);
            same_as_split(&previous, &request);
        }
    }
}
