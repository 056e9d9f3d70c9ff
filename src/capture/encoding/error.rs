//! Why a `raw_response` could not be decoded.

use super::{Coding, LAYER_CAP};

/// A decode that failed. The texts are the reference's: they name the encoding value as
/// sent (not normalised) and the coding that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodingError {
    /// A token other than `gzip`, `x-gzip`, `zstd` and `identity`, wherever it stands.
    #[error("content-encoding {value:?}: unsupported encoding {token:?}")]
    Unsupported {
        value: String,
        /// Lower-cased and trimmed.
        token: String,
    },
    /// A layer produced more than [`LAYER_CAP`] bytes.
    #[error("content-encoding {value:?}: {coding} decoded body exceeds {LAYER_CAP} bytes")]
    Oversize { value: String, coding: Coding },
    /// A layer's input is empty, corrupt, fails a checksum, declares a window over the cap,
    /// or ends before it produced anything.
    #[error("content-encoding {value:?}: {detail}")]
    Undecodable {
        value: String,
        coding: Coding,
        /// What the coding's reader said, e.g. `gzip read: unexpected EOF`.
        detail: String,
    },
    /// The decode would hold more than its [`Allowance`](super::Allowance) grants.
    #[error("content-encoding {value:?}: decoding needs more memory than the allowance")]
    OverAllowance { value: String },
}

impl EncodingError {
    /// The error's class: `unsupported`, `oversize`, `undecodable` or `over_allowance`.
    pub fn class(&self) -> &'static str {
        match self {
            EncodingError::Unsupported { .. } => "unsupported",
            EncodingError::Oversize { .. } => "oversize",
            EncodingError::Undecodable { .. } => "undecodable",
            EncodingError::OverAllowance { .. } => "over_allowance",
        }
    }
}
