//! What capture clients send beside a turn, and what reel keeps of it (docs/capture.md):
//! the content-encoding of `raw_response`, the reducers that turn a provider's response
//! bytes into a reduced response, the capture stamps from `meta`, and the content-defined
//! chunks that raw request bytes are stored as.
//!
//! Pure CPU, no I/O: the HTTP layer and the store call it; it calls only the layers below.

pub mod chunks;
pub mod encoding;
pub mod reduce;
pub mod sse;
pub mod stamps;

pub use reduce::{ReduceError, Reduction, reduce};
pub use stamps::{CreatedAtSource, DurationSource, SkippedStamp, Stamps};
