use std::io::{BufRead, Read, Write};

use base64::Engine as _;
use flate2::{Compress, Compression, Crc, FlushCompress};

use super::allowance::{LayerCharge, Ledger};
use super::layer::{BUFFER, state};
use super::zstd::Frames;
use super::*;

const CAP: usize = LAYER_CAP as usize;
const MIB: usize = 1 << 20;

// ---- inputs -------------------------------------------------------------------------

/// Text that compresses, long enough for several deflate and zstd blocks.
fn text(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut i = 0u64;
    while out.len() < len {
        // A small LCG keeps blocks from being trivially repetitive.
        i = i
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        write!(
            out,
            "data: {{\"delta\":\"token {} of the stream\"}}\n\n",
            i >> 40
        )
        .unwrap();
    }
    out.truncate(len);
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    ::zstd::encode_all(data, 3).unwrap()
}

fn zstd_with_checksum(data: &[u8]) -> Vec<u8> {
    let mut encoder = ::zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    encoder.include_checksum(true).unwrap();
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff];

fn gzip_member(deflate: &[u8], crc: u32, len: u64) -> Vec<u8> {
    let mut out = GZIP_HEADER.to_vec();
    out.extend_from_slice(deflate);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out
}

/// A raw deflate stream of `data` in one call (`Finish`) or left open (`Sync`).
fn deflate(data: &[u8], flush: FlushCompress) -> Vec<u8> {
    let mut compress = Compress::new(Compression::fast(), false);
    let mut out = Vec::with_capacity(data.len() / 8 + 1024);
    compress.compress_vec(data, &mut out, flush).unwrap();
    assert_eq!(compress.total_in(), data.len() as u64);
    out
}

/// gzip of `len` zeros without compressing them all: one MiB of zeros, compressed and
/// flushed to a byte boundary, is repeated (each copy only refers back to zeros), then the
/// rest ends the stream. Without `complete`, the stream stops after the repeated MiBs, with
/// neither final block nor trailer.
fn zeros_gzip(len: usize, complete: bool) -> Vec<u8> {
    let zeros = vec![0u8; MIB];
    let one_mib = deflate(&zeros, FlushCompress::Sync);
    let mut body = Vec::new();
    for _ in 0..len / MIB {
        body.extend_from_slice(&one_mib);
    }
    if !complete {
        let mut out = GZIP_HEADER.to_vec();
        out.extend_from_slice(&body);
        return out;
    }
    body.extend_from_slice(&deflate(&zeros[..len % MIB], FlushCompress::Finish));
    let mut crc_of_mib = Crc::new();
    crc_of_mib.update(&zeros);
    let mut crc = Crc::new();
    for _ in 0..len / MIB {
        crc.combine(&crc_of_mib);
    }
    crc.update(&zeros[..len % MIB]);
    gzip_member(&body, crc.sum(), len as u64)
}

/// A raw (stored) deflate stream, for layers that must stay as large as their plaintext.
fn stored_deflate(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 65535 * 5 + 5);
    let mut chunks = data.chunks(65535).peekable();
    while let Some(chunk) = chunks.next() {
        out.push(u8::from(chunks.peek().is_none()));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

fn stored_gzip(data: &[u8]) -> Vec<u8> {
    let mut crc = Crc::new();
    crc.update(data);
    gzip_member(&stored_deflate(data), crc.sum(), data.len() as u64)
}

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// Window descriptor of a 1 MiB window: exponent 10, mantissa 0.
const WINDOW_1_MIB: u8 = 10 << 3;

/// A zstd frame header with a window descriptor, no checksum, no content size.
fn zstd_header(window_descriptor: u8) -> Vec<u8> {
    let mut out = ZSTD_MAGIC.to_vec();
    out.extend_from_slice(&[0x00, window_descriptor]);
    out
}

/// A block header (RFC 8878 §3.1.1.2): last flag, type (0 raw, 1 RLE), size.
fn block_header(kind: u32, size: usize, last: bool) -> [u8; 3] {
    let header = (size as u32) << 3 | kind << 1 | u32::from(last);
    let bytes = header.to_le_bytes();
    [bytes[0], bytes[1], bytes[2]]
}

/// RLE blocks of `byte` making `len` bytes (4 bytes of frame per 128 KiB of output); the
/// last block is flagged only when `last`.
fn rle_blocks(byte: u8, len: usize, last: bool) -> Vec<u8> {
    const BLOCK: usize = 128 * 1024;
    let mut out = Vec::new();
    let mut left = len;
    while left > 0 {
        let size = left.min(BLOCK);
        left -= size;
        out.extend_from_slice(&block_header(1, size, last && left == 0));
        out.push(byte);
    }
    out
}

fn rle_frame(window_descriptor: u8, byte: u8, len: usize) -> Vec<u8> {
    let mut out = zstd_header(window_descriptor);
    out.extend_from_slice(&rle_blocks(byte, len, true));
    out
}

/// A frame of raw blocks: its size is its plaintext's.
fn raw_zstd(data: &[u8]) -> Vec<u8> {
    let mut out = zstd_header(WINDOW_1_MIB);
    let mut chunks = data.chunks(128 * 1024).peekable();
    while let Some(chunk) = chunks.next() {
        out.extend_from_slice(&block_header(0, chunk.len(), chunks.peek().is_none()));
        out.extend_from_slice(chunk);
    }
    out
}

fn skippable_frame(content: &[u8]) -> Vec<u8> {
    let mut out = vec![0x5a, 0x2a, 0x4d, 0x18];
    out.extend_from_slice(&(content.len() as u32).to_le_bytes());
    out.extend_from_slice(content);
    out
}

// ---- decoding -----------------------------------------------------------------------

fn decode(encoding: &str, body: &[u8]) -> Result<Decoded, EncodingError> {
    decode_all(encoding, body, &mut Unlimited)
}

/// The plaintext of a decode that must succeed.
fn plain(encoding: &str, body: &[u8]) -> Decoded {
    decode(encoding, body).unwrap_or_else(|e| panic!("{encoding}: {e}"))
}

/// The text of a decode that must fail.
fn refusal(encoding: &str, body: &[u8]) -> EncodingError {
    match decode(encoding, body) {
        Ok(decoded) => panic!(
            "{encoding}: decoded {} bytes (truncated {})",
            decoded.bytes.len(),
            decoded.truncated
        ),
        Err(e) => e,
    }
}

/// An allowance of `limit` bytes that remembers the most it was asked to hold.
struct Meter {
    limit: usize,
    held: usize,
}

impl Meter {
    fn new(limit: usize) -> Self {
        Meter { limit, held: 0 }
    }
}

impl Allowance for Meter {
    fn grow_to(&mut self, bytes: usize) -> Result<(), OverAllowance> {
        if bytes > self.limit {
            return Err(OverAllowance);
        }
        self.held = self.held.max(bytes);
        Ok(())
    }
}

// ---- §3.1 the encoding value ----------------------------------------------------------

#[test]
fn the_value_is_lower_cased_trimmed_split_and_undone_right_to_left() {
    use Coding::{Gzip, Zstd};
    let cases: &[(&str, &[Coding])] = &[
        ("", &[]),
        ("identity", &[]),
        (" IDENTITY\t", &[]),
        ("identity, identity", &[]),
        (", ,", &[]),
        (",", &[]),
        ("gzip", &[Gzip]),
        ("GZIP", &[Gzip]),
        (" x-gzip ", &[Gzip]),
        ("X-Gzip", &[Gzip]),
        ("gzip, identity", &[Gzip]),
        ("identity,gzip,", &[Gzip]),
        ("\u{a0}zstd\n", &[Zstd]),
        ("gzip, gzip", &[Gzip, Gzip]),
        // The last listed coding was applied last, so it comes off first.
        ("zstd, gzip", &[Gzip, Zstd]),
        ("gzip,zstd", &[Zstd, Gzip]),
        ("zstd , identity , x-gzip", &[Gzip, Zstd]),
    ];
    for (value, expected) in cases {
        assert_eq!(layers(value).unwrap(), *expected, "{value:?}");
    }
}

#[test]
fn stacked_layers_come_off_in_order() {
    let plaintext = text(200_000);
    let body = gzip(&zstd(&plaintext));
    assert_eq!(plain("zstd, gzip", &body).bytes, plaintext);
    // The other order reads the gzip member as a zstd frame.
    let e = refusal("gzip, zstd", &body);
    assert_eq!(e.class(), "undecodable", "{e}");
    assert_eq!(
        plain("gzip, gzip", &gzip(&gzip(&plaintext))).bytes,
        plaintext
    );
    assert_eq!(
        plain("zstd,zstd", &zstd(&zstd(&plaintext))).bytes,
        plaintext
    );
}

#[test]
fn identity_gives_the_bytes_as_they_are() {
    // Not gzip, though it starts like a member: identity checks nothing.
    let body = b"\x1f\x8b\x08 not really gzip";
    for value in ["", "identity", "Identity ", "identity, identity", ", ,"] {
        let mut meter = Meter::new(0);
        let decoded = decode_all(value, body, &mut meter).unwrap();
        assert_eq!(decoded.bytes, body, "{value:?}");
        assert!(!decoded.truncated);
        assert_eq!(meter.held, 0, "identity charges nothing");
        assert_eq!(plain(value, b"").bytes, b"");
    }
}

// ---- §3.2 unsupported codings -----------------------------------------------------------

#[test]
fn unsupported_tokens_are_refused_before_any_byte_is_read() {
    let valid = gzip(b"hello");
    let cases = [
        ("br", "br"),
        ("deflate", "deflate"),
        ("compress", "compress"),
        ("x-compress", "x-compress"),
        ("snappy", "snappy"),
        (" BR ", "br"),
        ("gzip, br", "br"),
        // Inner layers too, whatever the outer bytes are.
        ("br, gzip", "br"),
        ("deflate, zstd, gzip", "deflate"),
        ("identity, Compress, identity", "compress"),
        // The last listed (outermost) unsupported token is the one named.
        ("br, deflate", "deflate"),
    ];
    for (value, token) in cases {
        for body in [&valid[..], b"", b"garbage"] {
            let Err(e) = open(value, body, &mut Meter::new(0)) else {
                panic!("{value:?} opened");
            };
            assert_eq!(
                e,
                EncodingError::Unsupported {
                    value: value.to_owned(),
                    token: token.to_owned()
                }
            );
            assert_eq!(e.class(), "unsupported");
            assert_eq!(
                e.to_string(),
                format!("content-encoding {value:?}: unsupported encoding {token:?}")
            );
        }
    }
}

// ---- §3.3 empty input -------------------------------------------------------------------

#[test]
fn an_empty_input_under_a_coding_is_refused() {
    let cases: [(&str, Vec<u8>, &str); 6] = [
        ("gzip", Vec::new(), "gzip"),
        ("x-gzip", Vec::new(), "gzip"),
        ("zstd", Vec::new(), "zstd"),
        // Inner layers: the outer layer decodes to nothing.
        ("gzip, gzip", gzip(b""), "gzip"),
        ("gzip, zstd", zstd(b""), "gzip"),
        ("zstd, gzip", gzip(b""), "zstd"),
    ];
    for (value, body, coding) in cases {
        let e = refusal(value, &body);
        assert_eq!(e.class(), "undecodable");
        assert_eq!(
            e.to_string(),
            format!(
                "content-encoding {value:?}: {coding}: empty body under a claimed content-coding"
            )
        );
    }
    // A member whose plaintext is empty is not an empty input.
    assert_eq!(plain("gzip", &gzip(b"")).bytes, b"");
    assert_eq!(plain("zstd", &zstd(b"")).bytes, b"");
}

// ---- §3.4 the cap -------------------------------------------------------------------------

#[test]
fn a_gzip_layer_may_produce_exactly_the_cap() {
    let decoded = plain("gzip", &zeros_gzip(CAP, true));
    assert_eq!(decoded.bytes.len(), CAP);
    assert!(decoded.bytes.iter().all(|b| *b == 0));
    assert!(!decoded.truncated);

    let e = refusal("gzip", &zeros_gzip(CAP + 1, true));
    assert_eq!(
        e.to_string(),
        "content-encoding \"gzip\": gzip decoded body exceeds 50331648 bytes"
    );
    assert_eq!(e.class(), "oversize");
}

#[test]
fn a_zstd_layer_may_produce_exactly_the_cap() {
    let decoded = plain("zstd", &rle_frame(WINDOW_1_MIB, 7, CAP));
    assert_eq!(decoded.bytes.len(), CAP);
    assert!(decoded.bytes.iter().all(|b| *b == 7));

    let e = refusal("zstd", &rle_frame(WINDOW_1_MIB, 7, CAP + 1));
    assert_eq!(
        e.to_string(),
        "content-encoding \"zstd\": zstd decoded body exceeds 50331648 bytes"
    );
    // The cap is on the layer, not on a frame: two frames of 24 MiB and one byte.
    let mut two = rle_frame(WINDOW_1_MIB, 7, CAP / 2);
    two.extend_from_slice(&rle_frame(WINDOW_1_MIB, 7, CAP / 2 + 1));
    assert_eq!(refusal("zstd", &two).class(), "oversize");
}

#[test]
fn the_cap_is_checked_before_a_short_stream_is_salvaged() {
    // Both streams end early, after more than the cap.
    let gzip = zeros_gzip(CAP + 2 * MIB, false);
    assert_eq!(refusal("gzip", &gzip).class(), "oversize");
    let mut zstd = zstd_header(WINDOW_1_MIB);
    zstd.extend_from_slice(&rle_blocks(1, CAP + MIB, false));
    assert_eq!(refusal("zstd", &zstd).class(), "oversize");
}

#[test]
fn the_cap_applies_to_each_layer_not_to_their_sum() {
    // Each layer produces 30 MiB: 60 MiB in all.
    let plaintext = vec![3u8; 30 * MIB];
    let body = stored_gzip(&raw_zstd(&plaintext));
    assert!(body.len() > 30 * MIB);
    let decoded = plain("zstd, gzip", &body);
    assert_eq!(decoded.bytes.len(), plaintext.len());
    assert!(decoded.bytes == plaintext);
}

#[test]
fn a_bomb_is_refused_holding_little_more_than_the_cap() {
    // 1 GiB of zeros in about 1 MiB of gzip, and in 32 KiB of zstd.
    let bombs = [
        ("gzip", zeros_gzip(1 << 30, true), state(Coding::Gzip)),
        (
            "zstd",
            rle_frame(WINDOW_1_MIB, 0, 1 << 30),
            state(Coding::Zstd) + MIB as u64,
        ),
    ];
    for (value, body, state) in bombs {
        let mut meter = Meter::new(usize::MAX);
        let mut decoding = open(value, &body, &mut meter).unwrap();
        let mut handed_out = 0;
        let e = loop {
            match decoding.fill_buf() {
                Ok([]) => panic!("{value}: the bomb decoded"),
                Ok(bytes) => {
                    let n = bytes.len();
                    handed_out += n;
                    decoding.consume(n);
                }
                Err(e) => break e,
            }
        };
        drop(decoding);
        assert_eq!(error_of(&e).map(EncodingError::class), Some("oversize"));
        assert!(handed_out <= CAP, "{value}: {handed_out} bytes handed out");
        // What was handed out is charged, and little else: the decoder's state.
        assert!(meter.held >= handed_out, "{value}: {}", meter.held);
        let bound = CAP + state as usize;
        assert!(meter.held <= bound, "{value}: {} > {bound}", meter.held);
    }
}

// ---- the allowance ------------------------------------------------------------------------

#[test]
fn the_allowance_is_charged_before_the_memory_is_taken() {
    let plaintext = text(4 * MIB);
    let body = gzip(&plaintext);

    // Not even the decoders' state: refused before any byte is read.
    let Err(e) = open("gzip, gzip", &body, &mut Meter::new(BUFFER)) else {
        panic!("opened");
    };
    assert_eq!(e.class(), "over_allowance");

    // The plaintext grows past the allowance.
    let mut meter = Meter::new(MIB);
    let e = decode_all("gzip", &body, &mut meter).unwrap_err();
    assert_eq!(
        e,
        EncodingError::OverAllowance {
            value: "gzip".to_owned()
        }
    );
    assert!(meter.held <= MIB);

    // A frame's window is charged from its header, before it is decoded.
    let frame = rle_frame((25 - 10) << 3, 1, 1000);
    let mut meter = Meter::new(8 * MIB);
    let mut decoding = open("zstd", &frame, &mut meter).unwrap();
    let e = decoding.fill_buf().unwrap_err();
    assert_eq!(
        error_of(&e).map(EncodingError::class),
        Some("over_allowance")
    );
    drop(decoding);
    // Only the decoder's fixed state was charged, nothing of the window.
    assert_eq!(meter.held as u64, state(Coding::Zstd));

    // With room for it, the same frame decodes.
    let mut meter = Meter::new(64 * MIB);
    assert_eq!(
        decode_all("zstd", &frame, &mut meter).unwrap().bytes,
        vec![1; 1000]
    );
    assert!(meter.held >= 32 * MIB);
}

#[test]
fn the_zstd_charge_covers_what_libzstd_holds() {
    let single_segment = {
        let mut out = ZSTD_MAGIC.to_vec();
        // Single segment, 4-byte content size.
        out.push(0xa0);
        out.extend_from_slice(&(3 * MIB as u32).to_le_bytes());
        out.extend_from_slice(&rle_blocks(9, 3 * MIB, true));
        out
    };
    let frames = [
        (rle_frame(WINDOW_1_MIB, 9, 3 * MIB), 3 * MIB, MIB as u64),
        (
            rle_frame((25 - 10) << 3, 9, 40 * MIB),
            40 * MIB,
            32 * MIB as u64,
        ),
        (single_segment, 3 * MIB, 3 * MIB as u64),
    ];
    for (frame, len, window) in frames {
        let mut meter = Meter::new(usize::MAX);
        let ledger = Rc::new(RefCell::new(Ledger::new(
            "zstd",
            &mut meter,
            &[Coding::Zstd],
            Coding::Zstd,
        )));
        let charge = LayerCharge::new(Rc::clone(&ledger), 0);
        let mut frames = Frames::new(Box::new(&frame[..]), charge).unwrap();
        // Read through a small buffer, so that libzstd keeps its own output buffer.
        let mut buf = [0u8; 4096];
        let mut total = 0;
        loop {
            let n = frames.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n;
        }
        assert_eq!(total, len);
        let held = frames.decoder_bytes();
        drop((frames, ledger));
        assert!(
            held <= meter.held,
            "libzstd holds {held}, {} charged",
            meter.held
        );
        assert!(held as u64 > window, "the window is allocated: {held}");
    }
}

/// Input that comes one byte at a time, as no real layer gives it: every header and
/// block straddles reads.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.fill_buf()?.len().min(buf.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Trickle<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        Ok(&self.0[..self.0.len().min(1)])
    }

    fn consume(&mut self, amount: usize) {
        self.0 = &self.0[amount..];
    }
}

/// Reads `reader` to the end through a buffer of `len` bytes.
fn read_through(mut reader: impl Read, len: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; len];
    loop {
        match reader.read(&mut buf)? {
            0 => return Ok(out),
            n => out.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn layers_decode_input_that_trickles_in_into_small_buffers() {
    let plaintext = text(300_000);
    let zstd_body = [
        skippable_frame(b"meta"),
        zstd_with_checksum(&plaintext[..1000]),
        skippable_frame(b""),
        zstd(&plaintext[1000..]),
    ]
    .concat();
    let gzip_body = [gzip(&plaintext[..1000]), gzip(&plaintext[1000..])].concat();
    for len in [1, 3, 4096] {
        let mut allowance = Unlimited;
        let ledger = Rc::new(RefCell::new(Ledger::new(
            "zstd",
            &mut allowance,
            &[Coding::Zstd],
            Coding::Zstd,
        )));
        let charge = LayerCharge::new(Rc::clone(&ledger), 0);
        let frames = Frames::new(Box::new(Trickle(&zstd_body)), charge).unwrap();
        assert!(
            read_through(frames, len).unwrap() == plaintext,
            "zstd, {len}"
        );

        let members = super::gzip::Members::new(Box::new(Trickle(&gzip_body)));
        assert!(
            read_through(members, len).unwrap() == plaintext,
            "gzip, {len}"
        );
    }
}

// ---- §3.5 gzip: salvage or refusal --------------------------------------------------------

#[test]
fn gzip_streams_that_end_early_are_salvaged_when_they_produced_something() {
    let plaintext = text(300_000);
    let member = gzip(&plaintext);
    let len = member.len();
    let with = |extra: &[u8]| [&member[..], extra].concat();
    // (case, body, the whole plaintext is recovered)
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("no trailer", member[..len - 8].to_vec(), true),
        ("partial trailer", member[..len - 3].to_vec(), true),
        ("cut data", member[..len / 2].to_vec(), false),
        ("one further byte", with(b"\x1f"), true),
        ("a cut next header", with(&[0x1f, 0x8b, 0x08, 0x00]), true),
        ("nine further bytes", with(b"123456789"), true),
        (
            "a next member cut in its data",
            with(&gzip(b"next")[..11]),
            true,
        ),
    ];
    for (case, body, whole) in cases {
        let decoded = plain("gzip", &body);
        assert!(decoded.truncated, "{case}");
        assert!(!decoded.bytes.is_empty(), "{case}");
        if whole {
            assert!(
                decoded.bytes == plaintext,
                "{case}: {} bytes",
                decoded.bytes.len()
            );
        } else {
            assert!(
                plaintext.starts_with(&decoded.bytes),
                "{case}: not a prefix"
            );
        }
    }
}

#[test]
fn gzip_streams_that_are_corrupt_or_produced_nothing_are_refused() {
    let plaintext = text(10_000);
    let member = gzip(&plaintext);
    let len = member.len();
    let mut wrong_crc = member.clone();
    wrong_crc[len - 8] ^= 1;
    let mut wrong_len = member.clone();
    wrong_len[len - 1] ^= 1;
    let mut corrupt = member.clone();
    // A reserved block type (BTYPE 11) at the start of the data.
    corrupt[10] |= 0x06;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "cut header",
            member[..5].to_vec(),
            "gzip reader init: unexpected EOF",
        ),
        (
            "not gzip",
            b"{\"type\":\"message\"}".to_vec(),
            "gzip reader init: gzip: invalid header",
        ),
        (
            "cut after the header",
            member[..10].to_vec(),
            "gzip read: unexpected EOF",
        ),
        (
            "ten garbage bytes",
            [&member[..], b"0123456789"].concat(),
            "gzip read: gzip: invalid header",
        ),
        (
            "a kilobyte of garbage",
            [&member[..], &[b'x'; 1024][..]].concat(),
            "gzip read: gzip: invalid header",
        ),
        ("wrong crc", wrong_crc, "gzip read: gzip: invalid checksum"),
        (
            "wrong length",
            wrong_len,
            "gzip read: gzip: invalid checksum",
        ),
        ("corrupt data", corrupt, "gzip read: flate: corrupt input"),
    ];
    for (case, body, detail) in cases {
        let e = refusal("gzip", &body);
        assert_eq!(e.class(), "undecodable", "{case}");
        assert_eq!(
            e.to_string(),
            format!("content-encoding \"gzip\": {detail}"),
            "{case}"
        );
    }
}

#[test]
fn gzip_members_are_concatenated() {
    let body = [gzip(b"first, "), gzip(b""), gzip(b"second")].concat();
    let decoded = plain("x-gzip", &body);
    assert_eq!(decoded.bytes, b"first, second");
    assert!(!decoded.truncated);
}

// ---- §3.5 zstd: salvage or refusal --------------------------------------------------------

#[test]
fn zstd_frames_cut_after_a_block_are_salvaged() {
    // Two whole RLE blocks, then a block cut in its header.
    let mut cut = zstd_header(WINDOW_1_MIB);
    cut.extend_from_slice(&rle_blocks(5, 256 * 1024, false));
    cut.extend_from_slice(&block_header(1, 1000, true)[..2]);
    let decoded = plain("zstd", &cut);
    assert!(decoded.truncated);
    assert_eq!(decoded.bytes, vec![5; 256 * 1024]);

    // An encoder's frame cut in its middle.
    let plaintext = text(2 * MIB);
    let frame = zstd(&plaintext);
    let decoded = plain("zstd", &frame[..frame.len() / 2]);
    assert!(decoded.truncated);
    assert!(!decoded.bytes.is_empty());
    assert!(plaintext.starts_with(&decoded.bytes));

    // A second frame cut in its header, or a few bytes that cannot be a header.
    for tail in [&zstd(b"more")[..6], &ZSTD_MAGIC[..3], b"x"] {
        let decoded = plain("zstd", &[&zstd(b"whole")[..], tail].concat());
        assert!(decoded.truncated);
        assert_eq!(decoded.bytes, b"whole");
    }
}

#[test]
fn zstd_frames_that_are_corrupt_or_produced_nothing_are_refused() {
    let plaintext = text(100_000);
    let frame = zstd(&plaintext);
    let mut reserved = frame.clone();
    reserved[4] |= 0x08;
    let mut bad_checksum = zstd_with_checksum(&plaintext);
    let last = bad_checksum.len() - 1;
    bad_checksum[last] ^= 0xff;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "cut at 9 bytes",
            frame[..9].to_vec(),
            "zstd read: unexpected EOF",
        ),
        (
            "cut in the magic",
            frame[..3].to_vec(),
            "zstd read: unexpected EOF",
        ),
        (
            "bad magic",
            b"{\"object\":\"response\"}".to_vec(),
            "zstd read: invalid input: magic number mismatch",
        ),
        (
            "reserved bit",
            reserved,
            "zstd read: reserved bit set on frame header",
        ),
        (
            "garbage after a frame",
            [&frame[..], b"garbage"].concat(),
            "zstd read: invalid input: magic number mismatch",
        ),
        (
            // No dictionary is ever loaded.
            "a dictionary id",
            [
                &ZSTD_MAGIC[..],
                &[0x01, WINDOW_1_MIB, 5],
                &rle_blocks(1, 10, true),
            ]
            .concat(),
            "zstd read: Dictionary mismatch",
        ),
    ];
    for (case, body, detail) in cases {
        let e = refusal("zstd", &body);
        assert_eq!(e.class(), "undecodable", "{case}");
        assert_eq!(
            e.to_string(),
            format!("content-encoding \"zstd\": {detail}"),
            "{case}"
        );
    }
    let e = refusal("zstd", &bad_checksum);
    assert_eq!(e.class(), "undecodable");
    assert!(
        e.to_string()
            .starts_with("content-encoding \"zstd\": zstd read: "),
        "{e}"
    );
    // The same frame with its checksum intact decodes.
    assert_eq!(
        plain("zstd", &zstd_with_checksum(&plaintext)).bytes,
        plaintext
    );
}

#[test]
fn zstd_frames_and_skippable_frames_are_concatenated() {
    let body = [
        skippable_frame(b"metadata"),
        zstd(b"first, "),
        skippable_frame(b""),
        zstd(b"second"),
        skippable_frame(&[0xff; 100]),
    ]
    .concat();
    let decoded = plain("zstd", &body);
    assert_eq!(decoded.bytes, b"first, second");
    assert!(!decoded.truncated);
    assert_eq!(plain("zstd", &skippable_frame(b"only")).bytes, b"");
}

#[test]
fn zstd_windows_over_the_cap_are_refused_before_decoding() {
    let window = |exponent: u8, mantissa: u8| (exponent - 10) << 3 | mantissa;
    // (descriptor, accepted): 32 MiB, 48 MiB exactly, 52 MiB, 64 MiB, 128 MiB.
    let cases = [
        (window(25, 0), true),
        (window(25, 4), true),
        (window(25, 5), false),
        (window(26, 0), false),
        (window(27, 0), false),
    ];
    for (descriptor, accepted) in cases {
        let frame = rle_frame(descriptor, 4, 1000);
        if accepted {
            assert_eq!(
                plain("zstd", &frame).bytes,
                vec![4; 1000],
                "{descriptor:#x}"
            );
        } else {
            let mut meter = Meter::new(usize::MAX);
            let e = decode_all("zstd", &frame, &mut meter).unwrap_err();
            assert_eq!(
                e.to_string(),
                "content-encoding \"zstd\": zstd read: window size exceeded"
            );
            assert_eq!(meter.held as u64, state(Coding::Zstd), "{descriptor:#x}");
        }
    }

    // A single-segment frame has no window descriptor: its content size is the window.
    let single_segment = |size: u64| {
        let mut out = ZSTD_MAGIC.to_vec();
        // Single segment, 8-byte content size.
        out.push(0xe0);
        out.extend_from_slice(&size.to_le_bytes());
        out
    };
    let mut frame = single_segment(LAYER_CAP + 1);
    frame.extend_from_slice(&rle_blocks(4, 1000, true));
    assert_eq!(
        refusal("zstd", &frame).to_string(),
        "content-encoding \"zstd\": zstd read: decompressed size exceeds configured limit"
    );
    let mut frame = single_segment(1000);
    frame.extend_from_slice(&rle_blocks(4, 1000, true));
    assert_eq!(plain("zstd", &frame).bytes, vec![4; 1000]);
}

// ---- §3.6 errors --------------------------------------------------------------------------

#[test]
fn errors_name_the_value_as_sent_and_the_failing_layer() {
    let inner_fails = gzip(b"plain text, not zstd");
    let cases = [
        (
            refusal(" Zstd , GZIP ", &inner_fails),
            "undecodable",
            "content-encoding \" Zstd , GZIP \": zstd read: invalid input: magic number mismatch",
        ),
        (
            refusal("GZip", b"hello, this is not gzip"),
            "undecodable",
            "content-encoding \"GZip\": gzip reader init: gzip: invalid header",
        ),
        (
            refusal("gzip, BR", b""),
            "unsupported",
            "content-encoding \"gzip, BR\": unsupported encoding \"br\"",
        ),
        (
            refusal("x-gzip, identity", &zeros_gzip(CAP + 1, true)),
            "oversize",
            "content-encoding \"x-gzip, identity\": gzip decoded body exceeds 50331648 bytes",
        ),
    ];
    for (error, class, text) in cases {
        assert_eq!(error.class(), class);
        assert_eq!(error.to_string(), text);
    }
}

// ---- streaming --------------------------------------------------------------------------

#[test]
fn the_plaintext_streams_through_bufread() {
    let plaintext = text(MIB);
    let body = zstd(&gzip(&plaintext));
    let mut meter = Meter::new(usize::MAX);
    let mut decoding = open("gzip, zstd", &body, &mut meter).unwrap();
    let mut lines = 0;
    let mut out = Vec::new();
    let mut line = Vec::new();
    while decoding.read_until(b'\n', &mut line).unwrap() > 0 {
        out.extend_from_slice(&line);
        line.clear();
        lines += 1;
    }
    assert!(!decoding.truncated());
    drop(decoding);
    assert!(out == plaintext);
    let newlines = plaintext.iter().filter(|b| **b == b'\n').count();
    assert_eq!(
        lines,
        newlines + usize::from(plaintext.last() != Some(&b'\n'))
    );
    // The plaintext is charged, nothing of the layer in between.
    let states = (state(Coding::Gzip) + state(Coding::Zstd)) as usize;
    assert!(meter.held <= plaintext.len() + states + 2 * MIB);

    // A failure reaches the reader as an io::Error that carries the decode error.
    let cut = &body[..9];
    let mut unlimited = Unlimited;
    let mut decoding = open("gzip, zstd", cut, &mut unlimited).unwrap();
    let e = decoding.read_to_end(&mut Vec::new()).unwrap_err();
    assert_eq!(
        error_of(&e).map(ToString::to_string).as_deref(),
        Some("content-encoding \"gzip, zstd\": zstd read: unexpected EOF")
    );
    // And keeps doing so.
    let again = decoding.fill_buf().unwrap_err();
    assert_eq!(error_of(&again), error_of(&e));
}

#[test]
fn a_truncated_inner_layer_is_reported() {
    // The outer gzip is whole; the zstd frame inside it is cut after its first block.
    let mut cut = zstd_header(WINDOW_1_MIB);
    cut.extend_from_slice(&rle_blocks(8, 200_000, false));
    let decoded = plain("zstd, gzip", &gzip(&cut));
    assert!(decoded.truncated);
    assert_eq!(decoded.bytes, vec![8; 200_000]);
    // The outer gzip lost its trailer: the inner layer sees all of its input.
    let inner = gzip(&text(50_000));
    let outer = gzip(&inner);
    let decoded = plain("gzip, gzip", &outer[..outer.len() - 8]);
    assert!(decoded.truncated);
    assert_eq!(decoded.bytes, text(50_000));
}

// ---- the reference's vectors --------------------------------------------------------------

/// Every raw response of `raw-reduce.jsonl` decodes to the bytes of its fixture's identity
/// line, and is truncated exactly where the reference said so.
#[test]
fn the_raw_reduce_vectors_decode_like_the_reference() {
    let file = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/conformance/raw-reduce.jsonl"
    ));
    const VARIANTS: [&str; 8] = [
        "-identity",
        "-gzip-stacked",
        "-gzip-no-trailer",
        "-gzip-two-members",
        "-gzip",
        "-wrong-content-type",
        "-no-content-type",
        "-no-stamps",
    ];
    struct Line {
        fixture: String,
        variant: &'static str,
        encoding: String,
        raw: Vec<u8>,
        truncated: bool,
    }
    let lines: Vec<Line> = file
        .lines()
        .map(|line| {
            let line: serde_json::Value = serde_json::from_str(line).unwrap();
            let name = line["name"].as_str().unwrap();
            let variant = VARIANTS
                .into_iter()
                .find(|v| name.ends_with(v))
                .unwrap_or_else(|| panic!("{name}: unknown variant"));
            let payload = &line["payload"];
            Line {
                fixture: name[..name.len() - variant.len()].to_owned(),
                variant,
                encoding: payload["raw_response_encoding"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                raw: base64::engine::general_purpose::STANDARD
                    .decode(payload["raw_response"].as_str().unwrap())
                    .unwrap(),
                truncated: line["expect"]["truncated"].as_bool().unwrap_or(false),
            }
        })
        .collect();
    assert_eq!(lines.len(), 105);
    let mut encoded = 0;
    for line in &lines {
        let identity = lines
            .iter()
            .find(|l| l.fixture == line.fixture && l.variant == "-identity")
            .unwrap_or_else(|| panic!("{}: no identity line", line.fixture));
        let decoded = plain(&line.encoding, &line.raw);
        let name = format!("{}{}", line.fixture, line.variant);
        assert!(decoded.bytes == identity.raw, "{name}: plaintext differs");
        assert_eq!(decoded.truncated, line.truncated, "{name}");
        encoded += usize::from(!line.encoding.is_empty() && line.encoding != "identity");
    }
    assert_eq!(encoded, 17 * 4, "every fixture has four gzip variants");
}
