//! Session actors: one per (org, harness, harness session id), serialising that session's writes.
//!
//! The HTTP layer asks the [`Registry`] for a [`SessionHandle`] and submits
//! [`Turn`](crate::turn::Turn)s to it; it never sees an actor address, so this layer can
//! change without touching HTTP code. Each actor runs on one of the registry's own arbiters
//! (never an HTTP worker), commits its turns one at a time through the
//! [`Store`](crate::store::Store), remembers which hashes it stored, and publishes a
//! [`SessionSnapshot`] after each commit for the admin endpoints.
//!
//! Modules depend on each other in one direction: `registry` → `handle` → `actor` →
//! `shared` → `remembered`, `messages`, `snapshot`, `error`.

mod actor;
mod error;
mod handle;
mod messages;
mod registry;
mod remembered;
mod shared;
mod snapshot;

pub use error::SubmitError;
pub use handle::SessionHandle;
pub use registry::Registry;
pub use shared::SessionSettings;
pub use snapshot::{ActorInfo, SessionSnapshot};
