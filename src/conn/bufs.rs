//! A connection's buffers ([`ConnBufs`]), boxed so an idle connection pays
//! one pointer, and the pool of emptied boxes ([`BufPool`]) that busy
//! connections reuse instead of going to the allocator.

use crate::inbuf::{InBuf, KEEP_CAPACITY};
use crate::outq::OutQueue;

/// A connection's buffers, boxed so an idle connection pays one pointer.
#[derive(Debug, Default)]
pub(crate) struct ConnBufs {
    /// Bytes read but not yet used (see [`InBuf`]).
    pub input: InBuf,
    /// Replies not yet taken by the kernel.
    pub out: OutQueue,
    /// When the frame held in `input` began (ms on the server's clock),
    /// for `--frame-timeout`; `None` when no frame is incomplete.
    pub frame_since: Option<u64>,
    /// Since when this chat member is above `--write-buffer` (ms), for
    /// `--slow-timeout`; `None` when it is not.
    pub over_since: Option<u64>,
    /// When its room's blame of it reaches `--slow-timeout` if nothing
    /// changes (ms); `None` when not blamed now (see `server/blame.rs`).
    pub blame_due: Option<u64>,
}

impl ConnBufs {
    pub(super) fn is_empty(&self) -> bool {
        self.input.is_empty() && self.out.is_empty()
    }
}

/// Emptied buffer boxes, kept for reuse so that a connection that becomes
/// busy, drains and becomes busy again does not go to the allocator.
#[derive(Debug, Default)]
pub(crate) struct BufPool {
    // The boxes themselves are what is pooled: handing one out must not
    // allocate, and a connection holds exactly this box.
    #[allow(clippy::vec_box)]
    free: Vec<Box<ConnBufs>>,
}

/// How many boxes the pool keeps; beyond that they are freed.
const POOL_MAX: usize = 256;

impl BufPool {
    /// An empty box, reused if one is free.
    pub(crate) fn take(&mut self) -> Box<ConnBufs> {
        self.free.pop().unwrap_or_default()
    }

    /// Return a box (its contents are dropped).
    pub(crate) fn put(&mut self, mut b: Box<ConnBufs>) {
        b.out.clear();
        b.frame_since = None;
        b.over_since = None;
        b.blame_due = None;
        if b.input.capacity() > KEEP_CAPACITY {
            b.input.clear();
        }
        if self.free.len() < POOL_MAX && b.out.reusable() && b.input.is_empty() {
            self.free.push(b);
        }
    }
}
