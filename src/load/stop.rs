//! Ending a run early from outside it: the handle a caller keeps (the
//! command line's signal thread, a test, a UI) and the loops watch.
//!
//! The library installs no signal handler: the command line (`cli/load.rs`) turns SIGINT/SIGTERM
//! into [`Stop::stop`]. Each loop registers a waker, so a stop ends a poll
//! at once rather than at its next timeout.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use mio::{Registry, Token, Waker};

/// A handle that ends a run (every loop of it) early; the run then
/// reports what it measured. Clones share the one flag.
#[derive(Clone, Default)]
pub struct Stop {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    stopped: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

impl Stop {
    /// A handle not stopped yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// End the run: every loop stops at once and reports.
    pub fn stop(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        if let Ok(wakers) = self.inner.wakers.lock() {
            for w in wakers.iter() {
                let _ = w.wake();
            }
        }
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::SeqCst)
    }

    /// A loop's poll, to be woken (with an event for `token`) by a stop.
    pub(crate) fn watch(&self, registry: &Registry, token: Token) -> std::io::Result<()> {
        let waker = Waker::new(registry, token)?;
        if let Ok(mut wakers) = self.inner.wakers.lock() {
            wakers.push(waker);
        }
        Ok(())
    }
}
