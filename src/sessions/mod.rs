//! Session actors: one per (org, harness, harness session id), serialising that session's writes.
//!
//! The HTTP layer asks the [`Registry`] for a [`SessionHandle`] and submits [`Turn`]s to it;
//! it never sees an actor address, so this layer can change without touching HTTP code.
//! Each actor runs on one of the registry's own arbiters (never an HTTP worker), commits its
//! turns one at a time through `store`, remembers which hashes it stored, and publishes a
//! [`SessionSnapshot`] after each commit for the admin endpoints.

mod actor;
mod handle;
mod key;
mod known;
mod messages;
mod registry;
mod snapshot;
mod writer;

pub use handle::{SessionHandle, SubmitError};
pub use key::SessionKey;
pub use messages::{Committed, Turn};
pub use registry::{Registry, SessionSettings};
pub use snapshot::{ActorInfo, SessionSnapshot};
