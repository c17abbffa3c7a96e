//! The bytes a connection owes its peer but the kernel has not taken yet.
//!
//! A nonblocking `write` may take only part of what it is given (the
//! socket's send buffer is full: the peer reads slower than we answer).
//! What it did not take must be kept, in order, and written when the socket
//! says WRITABLE again. That is this queue.
//!
//! It holds two kinds of chunks:
//! - *owned* bytes: replies to this connection, appended in place;
//! - *shared* frames: one chat message going to many connections is
//!   encoded once into an `Rc<[u8]>`, and every recipient's queue holds a
//!   reference to it instead of a copy.
//!
//! A write hands the kernel up to `IOV_MAX` (1024 on Linux) chunks in one
//! `writev`.
//! A fully written owned chunk is kept as `spare` and reused for the next
//! replies, so a steady stream of replies allocates nothing.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::rc::Rc;

/// How many chunks one `writev` is given: Linux's `IOV_MAX`.
const MAX_IOVECS: usize = 1024;

/// The common case — a reply or two — gets a small array on the stack, so
/// a write does not pay for setting up 1024 slices it will not use.
const FEW_IOVECS: usize = 8;

/// A spare buffer larger than this is freed rather than kept.
const MAX_SPARE: usize = 256 * 1024;

#[derive(Debug)]
enum Chunk {
    Owned(Vec<u8>),
    Shared(Rc<[u8]>),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Owned(v) => v,
            Chunk::Shared(r) => r,
        }
    }
}

/// Bytes owed to one peer, oldest first.
#[derive(Debug, Default)]
pub(crate) struct OutQueue {
    chunks: VecDeque<Chunk>,
    /// Bytes of the front chunk already written.
    front_sent: usize,
    /// Unsent bytes in all chunks.
    len: usize,
    spare: Vec<u8>,
}

impl OutQueue {
    /// Unsent bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether everything has been written.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Append bytes that `fill` writes, to the last owned chunk where that
    /// is safe, or a new one.
    pub(crate) fn append_with(&mut self, fill: impl FnOnce(&mut Vec<u8>)) {
        // Appending to the front chunk while part of it is sent would keep
        // the sent part in memory for as long as the peer reads slowly (the
        // chunk never empties): start a new chunk behind it instead.
        let front_busy = self.chunks.len() == 1 && self.front_sent > 0;
        let tail = match self.chunks.back_mut() {
            Some(Chunk::Owned(v)) if !front_busy => v,
            _ => {
                let buf = std::mem::take(&mut self.spare);
                self.chunks.push_back(Chunk::Owned(buf));
                match self.chunks.back_mut() {
                    Some(Chunk::Owned(v)) => v,
                    _ => unreachable!("an owned chunk was just pushed"),
                }
            }
        };
        let before = tail.len();
        fill(tail);
        self.len += tail.len() - before;
    }

    /// Append a frame shared with other queues.
    pub(crate) fn push_shared(&mut self, frame: Rc<[u8]>) {
        self.len += frame.len();
        self.chunks.push_back(Chunk::Shared(frame));
    }

    /// One `writev` of the unsent bytes to `w`. Returns what the kernel
    /// took, which may be less than [`len`](Self::len): the rest stays.
    pub(crate) fn write_to<W: Write>(&mut self, w: &mut W) -> io::Result<usize> {
        let written = if self.chunks.len() <= FEW_IOVECS {
            self.writev::<W, FEW_IOVECS>(w)?
        } else {
            self.writev::<W, MAX_IOVECS>(w)?
        };
        self.consume(written);
        Ok(written)
    }

    /// One `writev` of up to `N` chunks.
    fn writev<W: Write, const N: usize>(&self, w: &mut W) -> io::Result<usize> {
        let mut slices = [IoSlice::new(&[]); N];
        let mut n = 0;
        for (i, chunk) in self.chunks.iter().take(N).enumerate() {
            let skip = if i == 0 { self.front_sent } else { 0 };
            slices[i] = IoSlice::new(&chunk.bytes()[skip..]);
            n += 1;
        }
        w.write_vectored(&slices[..n])
    }

    /// Forget the first `n` unsent bytes (they were written).
    fn consume(&mut self, mut n: usize) {
        self.len -= n;
        while n > 0 {
            let Some(front) = self.chunks.front() else {
                break;
            };
            let left = front.bytes().len() - self.front_sent;
            if n < left {
                // A partial write: the kernel took part of this chunk.
                self.front_sent += n;
                return;
            }
            n -= left;
            self.front_sent = 0;
            if let Some(Chunk::Owned(mut v)) = self.chunks.pop_front() {
                if v.capacity() <= MAX_SPARE && v.capacity() > self.spare.capacity() {
                    v.clear();
                    self.spare = v;
                }
            }
        }
        // Chunks that were empty from the start (a service that replied
        // with nothing) are dropped too.
        while matches!(self.chunks.front(), Some(c) if c.bytes().len() == self.front_sent) {
            self.chunks.pop_front();
            self.front_sent = 0;
        }
    }

    /// Drop everything unsent (the connection is being aborted).
    pub(crate) fn clear(&mut self) {
        self.chunks.clear();
        self.front_sent = 0;
        self.len = 0;
    }

    /// Whether this queue is worth keeping in a pool.
    pub(crate) fn reusable(&self) -> bool {
        self.is_empty() && self.spare.capacity() <= MAX_SPARE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A writer that takes at most `limit` bytes per call, like a socket
    /// whose send buffer is nearly full.
    struct Trickle {
        got: Vec<u8>,
        limit: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.limit);
            if n == 0 && !buf.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partial_writes_keep_order_across_owned_and_shared() {
        let mut q = OutQueue::default();
        q.append_with(|v| v.extend_from_slice(b"hello "));
        q.push_shared(Rc::from(&b"shared "[..]));
        q.append_with(|v| v.extend_from_slice(b"world"));
        assert_eq!(q.len(), 18);
        let mut w = Trickle {
            got: Vec::new(),
            limit: 4,
        };
        while !q.is_empty() {
            q.write_to(&mut w).unwrap();
            // Replies arriving mid-write go behind what is owed.
            if w.got.len() == 4 {
                q.append_with(|v| v.extend_from_slice(b"!"));
            }
        }
        assert_eq!(w.got, b"hello shared world!");
    }

    #[test]
    fn would_block_leaves_the_queue_alone() {
        let mut q = OutQueue::default();
        q.append_with(|v| v.extend_from_slice(b"abc"));
        let mut w = Trickle {
            got: Vec::new(),
            limit: 0,
        };
        assert_eq!(
            q.write_to(&mut w).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        assert_eq!(q.len(), 3);
    }

    #[test]
    fn drained_buffer_is_reused() {
        let mut q = OutQueue::default();
        q.append_with(|v| v.extend_from_slice(&[1; 1000]));
        let mut w = Trickle {
            got: Vec::new(),
            limit: usize::MAX,
        };
        q.write_to(&mut w).unwrap();
        assert!(q.spare.capacity() >= 1000);
        q.append_with(|v| v.push(2));
        assert!(
            q.spare.capacity() == 0,
            "the spare buffer was taken for the new reply"
        );
    }

    proptest! {
        #[test]
        fn bytes_come_out_in_order(
            parts in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..20)), 0..20),
            limit in 1usize..16,
        ) {
            let mut q = OutQueue::default();
            let mut expected = Vec::new();
            let mut w = Trickle { got: Vec::new(), limit };
            for (shared, bytes) in &parts {
                if *shared { q.push_shared(Rc::from(&bytes[..])) } else { q.append_with(|v| v.extend_from_slice(bytes)) }
                expected.extend_from_slice(bytes);
                if !q.is_empty() { q.write_to(&mut w).unwrap(); }
            }
            while !q.is_empty() { q.write_to(&mut w).unwrap(); }
            prop_assert_eq!(w.got, expected);
        }
    }
}
