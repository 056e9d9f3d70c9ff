//! One layer of a decode: a coding's decoder over the layer before it, capped at
//! [`LAYER_CAP`], with the salvage rule of a stream that ends early.

use std::io::{self, BufRead, Read};

use super::allowance::{LayerCharge, Shared};
use super::{Coding, EncodingError, LAYER_CAP, gzip, zstd};

/// The buffer each layer's output is read through (by the next layer, or by the caller).
pub(super) const BUFFER: usize = 32 * 1024;

/// What a layer holds from its start: its decoder's fixed state and its output buffer. A
/// zstd layer adds each frame's window when the frame's header declares it.
pub(super) fn state(coding: Coding) -> u64 {
    let decoder = match coding {
        Coding::Gzip => gzip::STATE,
        Coding::Zstd => zstd::STATE,
    };
    decoder + BUFFER as u64
}

pub(super) type Input<'a> = Box<dyn BufRead + 'a>;

pub(super) struct Layer<'a> {
    coding: Coding,
    codec: Codec<'a>,
    ledger: Shared<'a>,
    index: usize,
    /// The layer undone last, whose output is the plaintext.
    last: bool,
    produced: u64,
    /// `Some` once the layer ended: cleanly (or salvaged), or with the error it keeps giving.
    end: Option<Result<(), EncodingError>>,
}

enum Codec<'a> {
    /// Not started yet: its input is checked for emptiness first, which reads the layers
    /// before it, so nothing is read until the plaintext is.
    Waiting(Option<Input<'a>>),
    Gzip(gzip::Members<'a>),
    Zstd(zstd::Frames<'a>),
}

impl<'a> Layer<'a> {
    pub(super) fn new(
        coding: Coding,
        input: Input<'a>,
        ledger: Shared<'a>,
        index: usize,
        last: bool,
    ) -> Self {
        Layer {
            coding,
            codec: Codec::Waiting(Some(input)),
            ledger,
            index,
            last,
            produced: 0,
            end: None,
        }
    }

    fn undecodable(&self, detail: String) -> EncodingError {
        EncodingError::Undecodable {
            value: self.ledger.borrow().value().to_owned(),
            coding: self.coding,
            detail,
        }
    }

    fn start(&mut self) -> Result<(), EncodingError> {
        let Codec::Waiting(waiting) = &mut self.codec else {
            return Ok(());
        };
        let Some(mut input) = waiting.take() else {
            return Ok(());
        };
        let empty = match input.fill_buf() {
            Ok(bytes) => bytes.is_empty(),
            Err(e) => return Err(self.ledger.borrow().error_of(&e)),
        };
        if empty {
            let coding = self.coding;
            return Err(self.undecodable(format!(
                "{coding}: empty body under a claimed content-coding"
            )));
        }
        self.codec = match self.coding {
            Coding::Gzip => Codec::Gzip(gzip::Members::new(input)),
            Coding::Zstd => {
                let charge = LayerCharge::new(self.ledger.clone(), self.index);
                match zstd::Frames::new(input, charge) {
                    Ok(frames) => Codec::Zstd(frames),
                    Err(e) => return Err(self.undecodable(format!("zstd reader init: {e}"))),
                }
            }
        };
        Ok(())
    }

    fn step(&mut self, buf: &mut [u8]) -> Result<usize, EncodingError> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.start()?;
        // One byte past the cap tells the layer is over it; it never produces more.
        let room = LAYER_CAP + 1 - self.produced;
        let len = usize::try_from(room).map_or(buf.len(), |room| room.min(buf.len()));
        let read = match &mut self.codec {
            Codec::Waiting(_) => Ok(0),
            Codec::Gzip(members) => members.read(&mut buf[..len]),
            Codec::Zstd(frames) => frames.read(&mut buf[..len]),
        };
        match read {
            Ok(0) => {
                self.end = Some(Ok(()));
                Ok(0)
            }
            Ok(n) => {
                self.produced += n as u64;
                // Before any salvage: a bomb that also ends early is refused.
                if self.produced > LAYER_CAP {
                    return Err(EncodingError::Oversize {
                        value: self.ledger.borrow().value().to_owned(),
                        coding: self.coding,
                    });
                }
                if self.last {
                    self.ledger.borrow_mut().plaintext_grows_by(n as u64)?;
                }
                Ok(n)
            }
            Err(e) => {
                if let Some(error) = super::error_of(&e) {
                    // The layer before this one failed, or the allowance refused.
                    return Err(error.clone());
                }
                if e.kind() == io::ErrorKind::UnexpectedEof && self.produced > 0 {
                    self.ledger.borrow_mut().mark_truncated();
                    self.end = Some(Ok(()));
                    return Ok(0);
                }
                let detail = match &self.codec {
                    Codec::Gzip(members) => members.describe(&e),
                    _ => zstd::describe(&e),
                };
                Err(self.undecodable(detail))
            }
        }
    }
}

impl Read for Layer<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.end {
            Some(Ok(())) => return Ok(0),
            Some(Err(error)) => return Err(io::Error::other(error.clone())),
            None => {}
        }
        self.step(buf).map_err(|error| {
            self.end = Some(Err(error.clone()));
            io::Error::other(error)
        })
    }
}
