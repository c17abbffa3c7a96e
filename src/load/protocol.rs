//! The seam between the drivers and what is said on a connection: which
//! bytes a connection sends, and how the bytes that come back are cut into
//! replies and judged.
//!
//! The drivers (`driver.rs` for TCP, `udp/` for UDP) own the sockets, the
//! clock, the schedule and the counting; a [`Protocol`] owns the bytes.
//! Data flows through it like this:
//!
//! ```text
//!  send:  driver asks request(conn, seq, out) for each message it may
//!         start, appends them all to one buffer, one write() per turn
//!  TCP:   bytes read → reply(conn, seq, off, buf) on what is unconsumed:
//!           Ok(n)        first n bytes are reply seq, as expected
//!           Error{..}    first n bytes are reply seq, well framed, wrong
//!                        (counted an error; the connection goes on)
//!           Partial(n)   reply seq is not complete; its first n bytes are
//!                        checked and may be dropped (echo: n = all), the
//!                        rest is kept and offered again with more bytes
//!           Broken(why)  not a reply at all: the connection is lost
//!  UDP:   each datagram is one whole reply: reply_tag says which request
//!         it answers (or "the oldest"), reply(conn, seq, 0, datagram)
//!         judges it; anything but Ok(len) is an error
//! ```
//!
//! The echo pattern ([`Echo`](super::pattern::Echo)) is the first
//! implementation: its bytes are a function of their offset in the stream,
//! so it checks a reply a slice at a time as it arrives and never asks the
//! driver to keep a byte (`Partial(all)`): no buffer per connection, a
//! `memcmp` per slice. A framed protocol answers `Partial(0)` until a reply
//! is whole, and the driver keeps those bytes for it.
//!
//! Drivers are generic over the protocol (one copy of the loop per
//! protocol, no call through a pointer per message); `load::run` picks the
//! implementation from the [`LoadConfig`](super::LoadConfig).

/// How the bytes at the start of what a connection received read, as
/// reply `seq` (see the module doc for what the driver does with each).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The first `n` bytes are the reply, as expected.
    Ok(usize),
    /// The first `len` bytes are the reply, complete but not what was
    /// expected (an error reply, a reply that fails `--expect`). Echo never
    /// says so (a wrong echo byte breaks the stream); checks that keep the
    /// connection going do (issue 19's protocols). `why` names the check
    /// that failed.
    Error {
        /// Bytes of the reply.
        len: usize,
        /// Why it is wrong.
        why: String,
    },
    /// The reply is not complete in these bytes; its first `n` are already
    /// checked and need not be offered again (0: offer them all again).
    Partial(usize),
    /// These bytes cannot be a reply to what was sent: the stream is out
    /// of step and the connection is dropped, with this reason.
    Broken(String),
}

/// Which request a reply datagram answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tag {
    /// The protocol cannot tell: the oldest request in flight.
    Oldest,
    /// The request whose sequence number `seq` has `seq & mask == low`.
    Seq {
        /// The bits the datagram carries.
        low: u64,
        /// Which bits of a sequence number those are.
        mask: u64,
    },
    /// The datagram does not say, and cannot be a reply.
    Unreadable,
}

impl Tag {
    /// Whether request `seq` is the one this tag names.
    pub(crate) fn names(self, seq: u64) -> bool {
        match self {
            Tag::Oldest => true,
            Tag::Seq { low, mask } => seq & mask == low,
            Tag::Unreadable => false,
        }
    }
}

/// What a connection sends and how its replies are read. `conn` is the
/// connection's number in the whole run (from 0), `seq` the message's
/// number on its connection (from 0); both count requests and replies
/// alike, since every request has one reply.
pub(crate) trait Protocol {
    /// Append connection `conn`'s request `seq` to `out`.
    fn request(&mut self, conn: usize, seq: u64, out: &mut Vec<u8>);

    /// Judge the start of `buf`: bytes of connection `conn`'s reply `seq`
    /// (and maybe of later replies), `off` bytes into the connection's
    /// reply stream. Over UDP, `buf` is one whole datagram and `off` is 0.
    fn reply(&mut self, conn: usize, seq: u64, off: u64, buf: &[u8]) -> Verdict;

    /// The server closed with `buf` still unjudged (TCP): the reply a
    /// close completes (an HTTP body delimited by the close), or
    /// `Partial(0)` if the close completes none — the default: echo's and
    /// most framings' replies end by their own bytes.
    fn reply_at_close(&mut self, _conn: usize, _seq: u64, _off: u64, _buf: &[u8]) -> Verdict {
        Verdict::Partial(0)
    }

    /// UDP: which request the datagram `d` answers.
    fn reply_tag(&self, _d: &[u8]) -> Tag {
        Tag::Oldest
    }

    /// Whether connection `conn`'s reply just judged says the server
    /// closes after it (HTTP `Connection: close`): the driver replaces the
    /// connection. Asked once per reply; echo never closes.
    fn closes_after(&mut self, _conn: usize) -> bool {
        false
    }

    /// Replies counted by outcome (`--request` protocols), for the report.
    fn tally(&self) -> Option<super::framed::Tally> {
        None
    }

    /// Why a run in which no reply came back failed: what the targets do
    /// not look like.
    fn silence(&self) -> &'static str;
}
