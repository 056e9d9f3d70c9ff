//! gzip and x-gzip (RFC 1952): members back to back, each with its CRC-32 and length
//! checked.
//!
//! flate2's `MultiGzDecoder` already follows the reference's member rules: after a
//! complete member it reads on only if bytes follow, 1–9 further bytes end as a cut
//! header (`UnexpectedEof`, so the layer salvages), 10 or more that are not a header are
//! refused, and every cut (header, data, trailer) is `UnexpectedEof`. What it does not
//! give is the reference's texts; [`Members::describe`] maps its errors onto them.

use std::io::{self, Read};

use flate2::bufread::MultiGzDecoder;

use super::layer::Input;

/// Inflate's state: its 32 KiB window and its Huffman tables.
pub(super) const STATE: u64 = 64 * 1024;

pub(super) struct Members<'a> {
    decoder: MultiGzDecoder<Input<'a>>,
    /// The first member's header did not parse: the reference fails in `gzip.NewReader`
    /// then, and says so.
    header_failed: bool,
}

impl<'a> Members<'a> {
    pub(super) fn new(input: Input<'a>) -> Self {
        // The decoder parses the first header at once (the input never blocks).
        let decoder = MultiGzDecoder::new(input);
        let header_failed = decoder.header().is_none();
        Members {
            decoder,
            header_failed,
        }
    }

    /// The reference's text for one of the decoder's errors, e.g. `gzip read: gzip: invalid
    /// checksum`.
    pub(super) fn describe(&self, error: &io::Error) -> String {
        let stage = if self.header_failed {
            "gzip reader init"
        } else {
            "gzip read"
        };
        format!("{stage}: {}", reference_text(error))
    }
}

impl Read for Members<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.decoder.read(buf)
    }
}

/// Go's `compress/gzip` and `compress/flate` name these failures differently from flate2.
fn reference_text(error: &io::Error) -> String {
    if error.kind() == io::ErrorKind::UnexpectedEof {
        return "unexpected EOF".to_owned();
    }
    let text = error.to_string();
    match text.as_str() {
        "invalid gzip header" | "gzip header field too long" => "gzip: invalid header".to_owned(),
        "corrupt gzip stream does not have a matching checksum" => {
            "gzip: invalid checksum".to_owned()
        }
        "corrupt deflate stream" => "flate: corrupt input".to_owned(),
        _ => text,
    }
}
