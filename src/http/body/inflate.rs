//! Undoing `Content-Encoding`s as the wire bytes arrive, with bounded memory: each coding's
//! decoder writes its output, a few KiB at a time, into the next decoder or into the
//! [`BodyBuffer`], which refuses to grow past the limit or the budget. A decompression bomb
//! is stopped within one such write of the limit, never holding more than it was charged.

use std::io::{self, Write};

use actix_web::http::header::ContentEncoding;

use super::budget::{Budget, Charge};
use super::buffer::BodyBuffer;

/// The largest zstd window accepted: 8 MiB, the bound RFC 9659 sets for zstd as an HTTP
/// content coding. A frame asking for more is refused instead of allocated.
const ZSTD_WINDOW_LOG_MAX: u32 = 23;
/// Brotli's output is taken out of the decoder in pieces of this size.
const BROTLI_OUTPUT: usize = 32 * 1024;

/// What each decoder may allocate, charged to the budget for as long as it lives: inflate
/// keeps a 32 KiB window and flate2 a 32 KiB output buffer; zstd at most its 8 MiB window,
/// two 128 KiB blocks and its context; brotli at most its 16 MiB ring buffer (the large
/// window extension is off) and its tables.
const fn decoder_state(encoding: Coding) -> usize {
    match encoding {
        Coding::Gzip | Coding::Deflate => 128 * 1024,
        Coding::Zstd => 9 * 1024 * 1024,
        Coding::Brotli => 17 * 1024 * 1024,
    }
}

/// The most a decoder of any coding is charged.
pub(super) const MAX_DECODER_STATE: usize = decoder_state(Coding::Brotli);

/// A coding reel decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Coding {
    Gzip,
    Deflate,
    Brotli,
    Zstd,
}

impl Coding {
    /// The coding of a `Content-Encoding` token; `None` for `identity` and unknown tokens.
    pub(super) fn of(encoding: ContentEncoding) -> Option<Self> {
        match encoding {
            ContentEncoding::Gzip => Some(Coding::Gzip),
            ContentEncoding::Deflate => Some(Coding::Deflate),
            ContentEncoding::Brotli => Some(Coding::Brotli),
            ContentEncoding::Zstd => Some(Coding::Zstd),
            _ => None,
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Brotli => "br",
            Coding::Zstd => "zstd",
        }
    }
}

/// Where a coding's decoded bytes go: the decoder of the coding applied before it, or the
/// body buffer.
pub(super) trait Sink: Write {
    /// Ends the stream: writes out what the decoders still hold, fails when a stream is
    /// incomplete, and returns the buffer at the end.
    fn finish(self: Box<Self>) -> io::Result<BodyBuffer>;
}

impl Sink for BodyBuffer {
    fn finish(self: Box<Self>) -> io::Result<BodyBuffer> {
        Ok(*self)
    }
}

type Next = Box<dyn Sink>;

/// One coding's decoder with its share of the budget.
pub(super) struct Decoder {
    codec: Codec,
    _state: Charge,
}

enum Codec {
    Gzip(flate2::write::GzDecoder<Next>),
    Deflate(flate2::write::ZlibDecoder<Next>),
    Brotli(Box<brotli_decompressor::DecompressorWriter<Next>>),
    Zstd(zstd::stream::write::Decoder<'static, Next>),
}

/// Why a decoder could not start.
#[derive(Debug)]
pub(super) enum StartError {
    OverBudget,
    Codec(io::Error),
}

impl Decoder {
    /// A decoder of `coding` in front of `next`, once the budget holds its state.
    pub(super) fn wrap(coding: Coding, next: Next, budget: &Budget) -> Result<Next, StartError> {
        let mut state = budget.share();
        state
            .grow_to(decoder_state(coding))
            .map_err(|_| StartError::OverBudget)?;
        let codec = match coding {
            Coding::Gzip => Codec::Gzip(flate2::write::GzDecoder::new(next)),
            Coding::Deflate => Codec::Deflate(flate2::write::ZlibDecoder::new(next)),
            Coding::Brotli => Codec::Brotli(Box::new(
                brotli_decompressor::DecompressorWriter::new(next, BROTLI_OUTPUT),
            )),
            Coding::Zstd => {
                let mut decoder =
                    zstd::stream::write::Decoder::new(next).map_err(StartError::Codec)?;
                decoder
                    .window_log_max(ZSTD_WINDOW_LOG_MAX)
                    .map_err(StartError::Codec)?;
                Codec::Zstd(decoder)
            }
        };
        Ok(Box::new(Decoder {
            codec,
            _state: state,
        }))
    }
}

impl Write for Decoder {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match &mut self.codec {
            Codec::Gzip(d) => d.write(data),
            Codec::Deflate(d) => d.write(data),
            Codec::Brotli(d) => d.write(data),
            Codec::Zstd(d) => d.write(data),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.codec {
            Codec::Gzip(d) => d.flush(),
            Codec::Deflate(d) => d.flush(),
            Codec::Brotli(d) => d.flush(),
            Codec::Zstd(d) => d.flush(),
        }
    }
}

impl Sink for Decoder {
    fn finish(self: Box<Self>) -> io::Result<BodyBuffer> {
        let next = match self.codec {
            Codec::Gzip(d) => d.finish()?,
            Codec::Deflate(d) => d.finish()?,
            Codec::Brotli(mut d) => {
                // `close` reports a truncated stream; `into_inner` would only say it failed.
                d.close()?;
                d.into_inner()
                    .map_err(|_| io::Error::other("cannot finish the stream"))?
            }
            Codec::Zstd(d) => d.finish()?,
        };
        // This decoder's state is freed before the next one finishes.
        next.finish()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use super::super::buffer::Refusal;
    use super::*;
    use crate::memory::Releaser;

    fn pipeline(
        codings: &[Coding],
        budget: &Budget,
        limit: usize,
    ) -> (Next, Rc<Cell<Option<Refusal>>>) {
        let refused = Rc::default();
        let buffer = BodyBuffer::new(limit, 0, budget.share(), Rc::clone(&refused)).unwrap();
        let mut sink: Next = Box::new(buffer);
        for coding in codings {
            sink = Decoder::wrap(*coding, sink, budget).unwrap_or_else(|_| panic!("{coding:?}"));
        }
        (sink, refused)
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn stacked_codings_are_undone_last_first() {
        let budget = Budget::new(64 << 20, Releaser::default());
        let text = b"{\"provider\":\"openai\"}".repeat(100);
        // gzip applied first, then zstd.
        let wire = zstd::encode_all(&gzip(&text)[..], 3).unwrap();
        let (mut sink, _) = pipeline(&[Coding::Gzip, Coding::Zstd], &budget, 1 << 20);
        for piece in wire.chunks(7) {
            sink.write_all(piece).unwrap();
        }
        let (bytes, _) = sink.finish().unwrap().into_parts();
        assert_eq!(bytes, text);
    }

    #[test]
    fn a_bomb_stops_at_the_limit_with_bounded_memory() {
        let budget = Budget::new(64 << 20, Releaser::default());
        let wire = zstd::encode_all(&vec![0u8; 64 << 20][..], 3).unwrap();
        let (mut sink, refused) = pipeline(&[Coding::Zstd], &budget, 4 << 20);
        assert!(sink.write_all(&wire).is_err());
        assert_eq!(refused.get(), Some(Refusal::TooLarge { limit: 4 << 20 }));
        drop(sink);
        // Everything charged is returned.
        let mut all = budget.share();
        all.grow_to(64 << 20).unwrap();
    }

    #[test]
    fn truncated_streams_fail_at_the_end() {
        let budget = Budget::new(64 << 20, Releaser::default());
        let text = b"some text that compresses".repeat(50);
        let zst = zstd::encode_all(&text[..], 3).unwrap();
        for (coding, wire) in [(Coding::Gzip, gzip(&text)), (Coding::Zstd, zst)] {
            let (mut sink, _) = pipeline(&[coding], &budget, 1 << 20);
            sink.write_all(&wire[..wire.len() - 5]).unwrap();
            assert!(sink.finish().is_err(), "{coding:?}");
        }
    }

    #[test]
    fn zstd_windows_over_8_mib_are_refused() {
        let budget = Budget::new(64 << 20, Releaser::default());
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        encoder.window_log(24).unwrap();
        encoder.long_distance_matching(true).unwrap();
        // Unknown content size, so the frame declares its 16 MiB window.
        encoder.write_all(&vec![7u8; 1 << 20]).unwrap();
        let wire = encoder.finish().unwrap();
        let (mut sink, _) = pipeline(&[Coding::Zstd], &budget, 64 << 20);
        let err = sink.write_all(&wire).unwrap_err();
        assert!(err.to_string().contains("memory"), "{err}");
    }
}
