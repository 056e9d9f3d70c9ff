//! zstd (RFC 8878): frames back to back, skippable frames skipped, checksums checked.
//!
//! libzstd decodes the frames; this reader walks between them. It reads each frame's
//! header itself first (RFC 8878 §3.1.1.1), so that a window over the cap is refused, and
//! the one under it charged, before the decoder allocates it. The header bytes are then
//! fed to the decoder ahead of the rest of the frame.

use std::io::{self, BufRead, Read};

use ::zstd::zstd_safe::{self, DCtx, DParameter, InBuffer, OutBuffer};

use super::LAYER_CAP;
use super::allowance::LayerCharge;
use super::layer::Input;

/// The decoder's state without its window: the context with its entropy tables and literal
/// buffer, the input block buffer, and the blocks of slack its output buffer keeps beyond
/// the window. libzstd 1.5 reports about 480 KiB; a test checks the charge covers it.
pub(super) const STATE: u64 = 1024 * 1024;

/// The largest window, or single-segment content size, a frame may declare.
const MAX_WINDOW: u64 = LAYER_CAP;
/// libzstd's own bound, a second guard behind the header check: 2^26 is the smallest
/// power of two that admits the 48 MiB window.
const WINDOW_LOG_MAX: u32 = 26;

const MAGIC: u32 = 0xFD2F_B528;
/// Skippable frames take the 16 magic numbers 0x184D2A50 to 0x184D2A5F.
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;

/// Magic (4), descriptor (1), window (1), dictionary id (up to 4), content size (up to 8).
const MAX_HEADER: usize = 18;

/// The bits of the frame header descriptor.
const SINGLE_SEGMENT: u8 = 0x20;
const RESERVED: u8 = 0x08;

pub(super) struct Frames<'a> {
    input: Input<'a>,
    decoder: DCtx<'static>,
    charge: LayerCharge<'a>,
    /// The current frame's header, read ahead of the decoder, and how much of it the
    /// decoder has taken.
    header: [u8; MAX_HEADER],
    header_len: usize,
    header_fed: usize,
    in_frame: bool,
}

impl<'a> Frames<'a> {
    pub(super) fn new(input: Input<'a>, charge: LayerCharge<'a>) -> io::Result<Self> {
        let mut decoder = DCtx::try_create()
            .ok_or_else(|| io::Error::other("cannot allocate a decompression context"))?;
        decoder
            .set_parameter(DParameter::WindowLogMax(WINDOW_LOG_MAX))
            .map_err(libzstd_error)?;
        Ok(Frames {
            input,
            decoder,
            charge,
            header: [0; MAX_HEADER],
            header_len: 0,
            header_fed: 0,
            in_frame: false,
        })
    }

    /// Reads the next frame's header, skipping skippable frames, and charges its window;
    /// `false` at the end of the input.
    fn next_frame(&mut self) -> io::Result<bool> {
        loop {
            self.header_len = 0;
            self.header_fed = 0;
            if !self.read_header(4)? {
                return Ok(false);
            }
            let magic = u32::from_le_bytes([
                self.header[0],
                self.header[1],
                self.header[2],
                self.header[3],
            ]);
            if magic & SKIPPABLE_MASK == SKIPPABLE_MAGIC {
                self.read_header(8)?;
                let size = u32::from_le_bytes([
                    self.header[4],
                    self.header[5],
                    self.header[6],
                    self.header[7],
                ]);
                self.skip(u64::from(size))?;
                continue;
            }
            if magic != MAGIC {
                return Err(invalid("invalid input: magic number mismatch"));
            }
            self.read_header(5)?;
            let descriptor = self.header[4];
            if descriptor & RESERVED != 0 {
                return Err(invalid("reserved bit set on frame header"));
            }
            self.read_header(header_len(descriptor))?;
            let window = declared_window(&self.header);
            if window > MAX_WINDOW {
                return Err(invalid(if descriptor & SINGLE_SEGMENT != 0 {
                    "decompressed size exceeds configured limit"
                } else {
                    "window size exceeded"
                }));
            }
            self.charge
                .state_grows_to(STATE + window)
                .map_err(io::Error::other)?;
            self.in_frame = true;
            return Ok(true);
        }
    }

    /// Fills the header up to `len` bytes; `false` when the input ended before its first
    /// byte, `UnexpectedEof` when it ends inside.
    fn read_header(&mut self, len: usize) -> io::Result<bool> {
        while self.header_len < len {
            let available = self.input.fill_buf()?;
            if available.is_empty() {
                if self.header_len == 0 {
                    return Ok(false);
                }
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let n = available.len().min(len - self.header_len);
            self.header[self.header_len..self.header_len + n].copy_from_slice(&available[..n]);
            self.header_len += n;
            self.input.consume(n);
        }
        Ok(true)
    }

    fn skip(&mut self, mut remaining: u64) -> io::Result<()> {
        while remaining > 0 {
            let available = self.input.fill_buf()?.len();
            if available == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let n = usize::try_from(remaining).map_or(available, |r| r.min(available));
            self.input.consume(n);
            remaining -= n as u64;
        }
        Ok(())
    }

    /// One decoder step into `buf`: the bytes written, and whether the frame ended.
    fn decode(&mut self, buf: &mut [u8]) -> io::Result<(usize, bool)> {
        let mut output = OutBuffer::around(buf);
        let hint = if self.header_fed < self.header_len {
            let mut input = InBuffer::around(&self.header[self.header_fed..self.header_len]);
            let hint = self
                .decoder
                .decompress_stream(&mut output, &mut input)
                .map_err(libzstd_error)?;
            self.header_fed += input.pos();
            hint
        } else {
            let available = self.input.fill_buf()?;
            let at_end = available.is_empty();
            let mut input = InBuffer::around(available);
            // At the end of the input this only flushes what the decoder still holds.
            let hint = self
                .decoder
                .decompress_stream(&mut output, &mut input)
                .map_err(libzstd_error)?;
            let used = input.pos();
            self.input.consume(used);
            if at_end && hint != 0 && output.pos() == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            hint
        };
        Ok((output.pos(), hint == 0))
    }

    /// The memory libzstd reports the decoder holds.
    #[cfg(test)]
    pub(super) fn decoder_bytes(&self) -> usize {
        self.decoder.sizeof()
    }
}

impl Read for Frames<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.in_frame && !self.next_frame()? {
                return Ok(0);
            }
            let (written, frame_ended) = self.decode(buf)?;
            if frame_ended {
                self.in_frame = false;
            }
            if written > 0 {
                return Ok(written);
            }
        }
    }
}

/// The length of a frame header with this descriptor (RFC 8878 §3.1.1.1).
fn header_len(descriptor: u8) -> usize {
    let single_segment = descriptor & SINGLE_SEGMENT != 0;
    let window = if single_segment { 0 } else { 1 };
    5 + window + dictionary_id_len(descriptor) + content_size_len(descriptor)
}

fn dictionary_id_len(descriptor: u8) -> usize {
    match descriptor & 0x03 {
        0 => 0,
        1 => 1,
        2 => 2,
        _ => 4,
    }
}

fn content_size_len(descriptor: u8) -> usize {
    match descriptor >> 6 {
        0 if descriptor & SINGLE_SEGMENT != 0 => 1,
        0 => 0,
        1 => 2,
        2 => 4,
        _ => 8,
    }
}

/// The memory a frame asks for: its window, or for a single-segment frame (which has no
/// window descriptor) its content size. `header` holds at least [`header_len`] bytes.
fn declared_window(header: &[u8; MAX_HEADER]) -> u64 {
    let descriptor = header[4];
    if descriptor & SINGLE_SEGMENT == 0 {
        let window = header[5];
        let base = 1u64 << (10 + (window >> 3));
        return base + (base / 8) * u64::from(window & 0x07);
    }
    let start = 5 + dictionary_id_len(descriptor);
    let field = &header[start..start + content_size_len(descriptor)];
    let mut bytes = [0u8; 8];
    bytes[..field.len()].copy_from_slice(field);
    let size = u64::from_le_bytes(bytes);
    // A two-byte content size is stored minus 256.
    if field.len() == 2 { size + 256 } else { size }
}

fn invalid(text: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, text)
}

fn libzstd_error(code: zstd_safe::ErrorCode) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, zstd_safe::get_error_name(code))
}

/// The text of a failed zstd read, as the reference words it (`zstd read: …`).
pub(super) fn describe(error: &io::Error) -> String {
    if error.kind() == io::ErrorKind::UnexpectedEof {
        return "zstd read: unexpected EOF".to_owned();
    }
    format!("zstd read: {error}")
}
