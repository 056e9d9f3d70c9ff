//! Undoing the content-codings of `raw_response` (docs/capture.md, the contract's §3).
//!
//! Capture clients send the provider's response bytes still under their HTTP
//! Content-Encoding. [`open`] parses the encoding value and chains one streaming decoder
//! per layer, the last listed coding undone first; the plaintext comes out of the
//! [`Decoding`] through [`BufRead`], so no whole intermediate layer is ever held.
//!
//! Each layer stops at [`LAYER_CAP`] + 1 bytes of output, a zstd frame whose window is over
//! the cap is refused before the decoder allocates for it, and every byte the decode may
//! hold (decoder state, buffers, the plaintext handed out) is charged to an [`Allowance`]
//! before it is taken. A stream that ends early is salvaged when its layer produced
//! something ([`Decoding::truncated`]), refused when it produced nothing.

mod allowance;
mod error;
mod gzip;
mod layer;
mod zstd;

use std::cell::RefCell;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::rc::Rc;

pub use allowance::{Allowance, OverAllowance, Unlimited};
pub use error::EncodingError;

use allowance::{Ledger, Shared};
use layer::Layer;

/// The most bytes one layer may produce: 48 MiB. Exactly this many decode; one more is
/// [`EncodingError::Oversize`], whatever the rest of the stream holds.
pub const LAYER_CAP: u64 = 50_331_648;

/// A content-coding reel undoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// `gzip` or `x-gzip`: RFC 1952 members back to back.
    Gzip,
    /// `zstd`: RFC 8878 frames back to back.
    Zstd,
}

impl Coding {
    /// The name errors give the coding.
    pub fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Coding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The layers of an encoding value, in the order they are undone (right to left).
///
/// Every token is checked before any byte is read, so an unsupported coding is refused as
/// such even under a layer whose bytes would not decode.
fn layers(value: &str) -> Result<Vec<Coding>, EncodingError> {
    let normalised = value.to_lowercase();
    let normalised = normalised.trim();
    if normalised.is_empty() || normalised == "identity" {
        return Ok(Vec::new());
    }
    normalised
        .split(',')
        .map(str::trim)
        .rev()
        .filter(|token| !token.is_empty() && *token != "identity")
        .map(|token| match token {
            "gzip" | "x-gzip" => Ok(Coding::Gzip),
            "zstd" => Ok(Coding::Zstd),
            other => Err(EncodingError::Unsupported {
                value: value.to_owned(),
                token: other.to_owned(),
            }),
        })
        .collect()
}

/// The plaintext of a `raw_response`, read through [`BufRead`].
///
/// A read fails with an [`io::Error`] that carries the [`EncodingError`] ([`error_of`]).
/// The bytes are whole and checked (trailers, checksums) only once a read returned none.
pub struct Decoding<'a> {
    plaintext: Plaintext<'a>,
}

enum Plaintext<'a> {
    /// Nothing to undo: the bytes as they are, unchecked and uncharged.
    Identity(&'a [u8]),
    /// The layer undone last, reading the ones before it.
    Layers {
        last: Box<BufReader<Layer<'a>>>,
        ledger: Shared<'a>,
    },
}

impl Decoding<'_> {
    /// Whether some layer's stream ended early and what it had produced was kept.
    pub fn truncated(&self) -> bool {
        match &self.plaintext {
            Plaintext::Identity(_) => false,
            Plaintext::Layers { ledger, .. } => ledger.borrow().truncated(),
        }
    }
}

impl Read for Decoding<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.plaintext {
            Plaintext::Identity(bytes) => bytes.read(buf),
            Plaintext::Layers { last, .. } => last.read(buf),
        }
    }
}

impl BufRead for Decoding<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match &mut self.plaintext {
            Plaintext::Identity(bytes) => bytes.fill_buf(),
            Plaintext::Layers { last, .. } => last.fill_buf(),
        }
    }

    fn consume(&mut self, amount: usize) {
        match &mut self.plaintext {
            Plaintext::Identity(bytes) => bytes.consume(amount),
            Plaintext::Layers { last, .. } => last.consume(amount),
        }
    }
}

/// Starts decoding `body` under `encoding` (the `raw_response_encoding` as sent).
///
/// Refuses an unsupported token, and a decoder state the allowance cannot hold, before any
/// byte is read. Identity (`""`, `identity`, or no layer left once empty and `identity`
/// tokens are dropped) gives the bytes as they are, unchecked and uncharged.
pub fn open<'a>(
    encoding: &str,
    body: &'a [u8],
    allowance: &'a mut dyn Allowance,
) -> Result<Decoding<'a>, EncodingError> {
    let codings = layers(encoding)?;
    let Some((&last, before)) = codings.split_last() else {
        return Ok(Decoding {
            plaintext: Plaintext::Identity(body),
        });
    };
    let ledger = Rc::new(RefCell::new(Ledger::new(
        encoding, allowance, &codings, last,
    )));
    ledger.borrow_mut().charge()?;
    let mut input: Box<dyn BufRead + 'a> = Box::new(body);
    for (index, &coding) in before.iter().enumerate() {
        let layer = Layer::new(coding, input, Rc::clone(&ledger), index, false);
        input = Box::new(BufReader::with_capacity(layer::BUFFER, layer));
    }
    let layer = Layer::new(last, input, Rc::clone(&ledger), before.len(), true);
    Ok(Decoding {
        plaintext: Plaintext::Layers {
            last: Box::new(BufReader::with_capacity(layer::BUFFER, layer)),
            ledger,
        },
    })
}

/// The decode error an [`io::Error`] of a [`Decoding`] carries.
pub fn error_of(error: &io::Error) -> Option<&EncodingError> {
    error.get_ref()?.downcast_ref()
}

/// A whole plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub bytes: Vec<u8>,
    /// Some layer ended early and was salvaged ([`Decoding::truncated`]).
    pub truncated: bool,
}

/// Decodes `body` to the end, for callers that want the whole plaintext at once.
pub fn decode_all(
    encoding: &str,
    body: &[u8],
    allowance: &mut dyn Allowance,
) -> Result<Decoded, EncodingError> {
    let mut decoding = open(encoding, body, allowance)?;
    let bytes = match &mut decoding.plaintext {
        Plaintext::Identity(bytes) => bytes.to_vec(),
        Plaintext::Layers { last, ledger } => {
            let mut bytes = Vec::new();
            if let Err(e) = last.read_to_end(&mut bytes) {
                return Err(ledger.borrow().error_of(&e));
            }
            bytes
        }
    };
    Ok(Decoded {
        truncated: decoding.truncated(),
        bytes,
    })
}

#[cfg(test)]
mod tests;
