//! Giving freed memory back to the system (ARCHITECTURE.md#memory).
//!
//! An allocator keeps what the process frees for its next allocations, and mimalloc purges
//! freed pages only after a delay and only when it runs again: after a burst of large
//! bodies an idle server kept hundreds of MB it no longer used. The library does not know
//! the allocator; the binary hands it a function that asks its allocator to collect.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How often each HTTP worker lets the allocator purge what has been free for a while.
pub const EXPIRED_CHECK: Duration = Duration::from_secs(1);

/// What a collection purges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purge {
    /// Everything free, at once: after a large body's memory was freed.
    Now,
    /// What has been free for the allocator's delay: periodically, on each thread that
    /// serves requests, so memory freed by a thread that then idles is purged too.
    Expired,
}

/// The binary's collection function, shared by everything that frees large memory. Unset
/// (in tests, or with another allocator) it does nothing.
#[derive(Debug, Clone, Default)]
pub struct Releaser(Arc<OnceLock<fn(Purge)>>);

impl Releaser {
    /// Sets the collection function; a second call does nothing.
    pub fn set(&self, collect: fn(Purge)) {
        let _ = self.0.set(collect);
    }

    pub fn release(&self, purge: Purge) {
        if let Some(collect) = self.0.get() {
            collect(purge);
        }
    }

    /// Purges expired memory every [`EXPIRED_CHECK`] on the thread that polls it, for as
    /// long as it is polled.
    pub fn expiry(&self) -> impl Future<Output = ()> + Send + 'static {
        let releaser = self.clone();
        async move {
            let mut check = actix_rt::time::interval(EXPIRED_CHECK);
            loop {
                check.tick().await;
                releaser.release(Purge::Expired);
            }
        }
    }

    /// Runs [`Releaser::expiry`] on the current thread while its runtime lives. Must run
    /// inside an actix runtime.
    pub fn spawn_expiry(&self) {
        actix_rt::spawn(self.expiry());
    }
}
