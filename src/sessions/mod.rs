//! Session actors: one per (org, harness, harness session id), serialising that session's writes.

mod key;

pub use key::SessionKey;
