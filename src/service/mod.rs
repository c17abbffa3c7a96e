//! Services: what the server *does* with the bytes it receives.
//!
//! A service never touches a socket. The loop decodes frames (see
//! [`crate::framing`]) and calls the service with each one; the service
//! answers by writing messages into an [`Outbox`]; the loop then frames the
//! messages and queues them on the right connections (or sends them as
//! datagrams). That split keeps every service a plain struct that can be
//! tested with byte slices:
//!
//! ```
//! use sockloop::service::{ConnId, Service, Outbox, To, Count};
//! let mut count = Count;
//! let mut out = Outbox::default();
//! count.on_frame(ConnId(1), "127.0.0.1:5000".parse().unwrap(), b"mississippi", &mut out);
//! assert_eq!(out.messages().collect::<Vec<_>>(), vec![(To::Sender, &b"4"[..])]);
//! ```
//!
//! To add a service, implement [`Service`] and hand it to
//! [`crate::Server::builder`]'s `listen_with` (see `examples/`).

mod chat;
mod count;
mod echo;
pub mod metrics;
mod upper;

use std::net::SocketAddr;
use std::time::Instant;

use crate::framing::Framing;
use crate::options::Options;

pub use chat::Chat;
pub(crate) use chat::LEAVE;
pub use count::Count;
pub use echo::Echo;
pub use metrics::Metrics;
pub use upper::{uppercase_into, Upper};

/// Which TCP connection a call is about: an id the server gives each
/// connection it accepts and never gives again while it runs (unlike the
/// peer's address, which a client that reconnects can repeat, or the slab
/// slot, which is reused). Keep per-connection state under it, and drop it
/// in [`Service::on_disconnect`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl ConnId {
    /// What [`Service::on_frame`] is told for a UDP datagram (through the
    /// default [`Service::on_datagram`]): datagrams have no connection.
    /// Connections' ids start at 1.
    pub const NONE: ConnId = ConnId(0);
}

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A service: bytes or frames in, messages out, no I/O.
///
/// One value serves one listener: every connection of that listener (and,
/// for UDP, every sender) shares it, so state that belongs to the whole
/// listener — a chat room — lives here. Methods are told which connection
/// ([`ConnId`]) and which peer address the call is about.
pub trait Service {
    /// The framing a TCP listener of this service uses when its address
    /// names none (docs/protocol.md, "Framing").
    fn default_framing(&self) -> Framing {
        Framing::Line
    }

    /// Whether this service's state is one whole shared by all its clients
    /// (a chat room): with `--workers` it is served by one worker only,
    /// since N copies would be N rooms that never hear each other. Services
    /// whose every request stands alone (upper, echo, count) say `false`,
    /// the default, and are served by every worker.
    fn shared_state(&self) -> bool {
        false
    }

    /// A TCP connection was accepted. The default does nothing.
    fn on_connect(&mut self, conn: ConnId, peer: SocketAddr, out: &mut Outbox) {
        let _ = (conn, peer, out);
    }

    /// `raw` framing: the bytes one read returned, after any bytes this
    /// method left unconsumed last time. Returns how many it consumed; the
    /// loop holds the rest and hands them back, in front of the next read.
    /// `at_eof` says no more bytes will come: consume everything.
    ///
    /// The default treats the bytes as one frame.
    fn on_bytes(
        &mut self,
        conn: ConnId,
        peer: SocketAddr,
        bytes: &[u8],
        at_eof: bool,
        out: &mut Outbox,
    ) -> usize {
        let _ = at_eof;
        self.on_frame(conn, peer, bytes, out);
        bytes.len()
    }

    /// A whole frame from a TCP connection (`line` or `len32` framing); or,
    /// through the default [`on_datagram`](Self::on_datagram), a UDP
    /// datagram, with `conn` [`ConnId::NONE`].
    ///
    /// `frame` is the payload only: a `line` frame without its `\n` (and
    /// without a `\r` before it), a `len32` frame without its 4-byte
    /// length. Replies are payloads too: the loop frames each message put
    /// in `out` the way the listener frames (`line`: adds the `\n`;
    /// `len32`: the length; `raw` and UDP: as is), so a service never
    /// writes a delimiter and works unchanged under any framing.
    ///
    /// ```
    /// use sockloop::service::{ConnId, Count, Outbox, Service, To};
    /// let mut out = Outbox::default();
    /// // The line "mississippi\n" arrives as the frame "mississippi"…
    /// Count.on_frame(ConnId(1), "127.0.0.1:5000".parse().unwrap(), b"mississippi", &mut out);
    /// // …and the reply is "4"; on a `line` listener the client reads "4\n".
    /// assert_eq!(out.messages().collect::<Vec<_>>(), vec![(To::Sender, &b"4"[..])]);
    /// ```
    fn on_frame(&mut self, conn: ConnId, peer: SocketAddr, frame: &[u8], out: &mut Outbox);

    /// A TCP connection is gone (closed by either side or by a limit). The
    /// default does nothing.
    fn on_disconnect(&mut self, conn: ConnId, peer: SocketAddr, out: &mut Outbox) {
        let _ = (conn, peer, out);
    }

    /// A UDP datagram. `now` is the loop's clock, for services that keep
    /// time (chat membership). The default treats it as one frame.
    fn on_datagram(&mut self, peer: SocketAddr, datagram: &[u8], now: Instant, out: &mut Outbox) {
        let _ = now;
        self.on_frame(ConnId::NONE, peer, datagram, out);
    }
}

/// Where a message in an [`Outbox`] goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum To {
    /// Back to the peer the service was called for.
    Sender,
    /// To every *other* connection of the same TCP listener (a chat room).
    Others,
    /// To this address, as a datagram (UDP services).
    Addr(SocketAddr),
}

/// The messages a service call produced, in order.
///
/// All payloads live in one byte buffer and the list holds ranges into it,
/// so the loop can reuse one `Outbox` for every call: after warm-up,
/// filling it allocates nothing.
#[derive(Default, Debug)]
pub struct Outbox {
    bytes: Vec<u8>,
    messages: Vec<(To, u32, u32)>,
    /// How many of `messages` are [`To::Others`] (what a turn's budget
    /// charges per recipient).
    to_room: usize,
    /// The service asked to close the connection once its replies are
    /// delivered.
    close: bool,
}

impl Outbox {
    /// A message to the peer.
    pub fn reply(&mut self, payload: &[u8]) {
        self.push(To::Sender, |buf| buf.extend_from_slice(payload));
    }

    /// A message to the peer, written straight into the outbox by `fill`
    /// (saves building it in a buffer of its own first).
    pub fn reply_with(&mut self, fill: impl FnOnce(&mut Vec<u8>)) {
        self.push(To::Sender, fill);
    }

    /// A message to every other connection of this TCP listener.
    pub fn to_others(&mut self, payload: &[u8]) {
        self.push(To::Others, |buf| buf.extend_from_slice(payload));
    }

    /// Like [`Outbox::to_others`], written straight in by `fill`.
    pub fn to_others_with(&mut self, fill: impl FnOnce(&mut Vec<u8>)) {
        self.push(To::Others, fill);
    }

    /// One datagram to each of `addrs`. The payload is stored once,
    /// however many addresses share it.
    pub fn to_addrs_with(
        &mut self,
        addrs: impl IntoIterator<Item = SocketAddr>,
        fill: impl FnOnce(&mut Vec<u8>),
    ) {
        let start = self.bytes.len();
        fill(&mut self.bytes);
        let (start, end) = (offset(start), offset(self.bytes.len()));
        self.messages
            .extend(addrs.into_iter().map(|a| (To::Addr(a), start, end)));
    }

    fn push(&mut self, to: To, fill: impl FnOnce(&mut Vec<u8>)) {
        self.to_room += usize::from(to == To::Others);
        let start = self.bytes.len();
        fill(&mut self.bytes);
        self.messages
            .push((to, offset(start), offset(self.bytes.len())));
    }

    /// Close this TCP connection once every reply it is owed is delivered
    /// (an HTTP answer with `Connection: close`, say). It reads nothing
    /// more; frames already read in the same chunk are still answered.
    /// Honoured for [`Service::on_frame`] and [`Service::on_bytes`] on TCP.
    pub fn close_after(&mut self) {
        self.close = true;
    }

    /// Whether [`close_after`](Self::close_after) was asked.
    pub fn closes(&self) -> bool {
        self.close
    }

    /// The messages, in the order they were written.
    pub fn messages(&self) -> impl Iterator<Item = (To, &[u8])> + '_ {
        self.messages
            .iter()
            .map(|&(to, s, e)| (to, &self.bytes[s as usize..e as usize]))
    }

    /// How many messages are waiting.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// How many waiting messages go to the room ([`To::Others`]).
    pub fn to_room_count(&self) -> usize {
        self.to_room
    }

    /// Whether no message is waiting.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Forget every message, keeping the memory for the next call.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.messages.clear();
        self.to_room = 0;
        self.close = false;
    }
}

/// Outbox offsets are u32: one service call sees at most one read or one
/// frame (bounded by `--max-frame`), far below 4 GiB.
fn offset(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A service `sockloop serve` knows by name: the one table of them.
pub struct Named {
    /// The name `--listen SERVICE=...` uses.
    pub name: &'static str,
    /// A new instance for one listener; its
    /// [`default_framing`](Service::default_framing) is the listener's
    /// framing unless the address names one.
    pub make: fn(&Options) -> Box<dyn Service>,
}

/// Every named service, in the order `--help` lists them.
pub const SERVICES: [Named; 4] = [
    Named {
        name: "upper",
        make: |_| Box::new(Upper),
    },
    Named {
        name: "echo",
        make: |_| Box::new(Echo),
    },
    Named {
        name: "count",
        make: |_| Box::new(Count),
    },
    Named {
        name: "chat",
        make: |o| Box::new(Chat::new(o.udp_member_ttl, o.udp_max_members)),
    },
];

/// The names of [`SERVICES`] and [`metrics`], comma-separated (for
/// messages).
pub fn names() -> String {
    format!("{}, {}", SERVICES.map(|s| s.name).join(", "), metrics::NAME)
}

/// `Ok` if `name` is one of [`SERVICES`] or [`metrics`], else the usage
/// error to print.
pub fn check_name(name: &str) -> Result<(), String> {
    if SERVICES.iter().any(|s| s.name == name) || name == metrics::NAME {
        Ok(())
    } else {
        Err(format!(
            "unknown service '{name}' (expected one of {})",
            names()
        ))
    }
}

/// The service called `name`, for one listener, or `None` if there is no
/// such service.
pub(crate) fn by_name(name: &str, opts: &Options) -> Option<Box<dyn Service>> {
    SERVICES
        .iter()
        .find(|s| s.name == name)
        .map(|s| (s.make)(opts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_keeps_order_and_shares_relay_payload() {
        let mut out = Outbox::default();
        out.reply(b"a");
        out.to_others(b"b");
        let a: SocketAddr = "127.0.0.1:1000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:1001".parse().unwrap();
        out.to_addrs_with([a, b], |v| v.extend_from_slice(b"cc"));
        let got: Vec<_> = out.messages().collect();
        assert_eq!(
            got,
            vec![
                (To::Sender, &b"a"[..]),
                (To::Others, &b"b"[..]),
                (To::Addr(a), &b"cc"[..]),
                (To::Addr(b), &b"cc"[..])
            ]
        );
        // The relayed payload is stored once.
        assert_eq!(out.bytes.len(), 4);
        out.clear();
        assert!(out.is_empty());
    }

    #[test]
    fn names_resolve() {
        let opts = Options::default();
        for s in &SERVICES {
            assert!(by_name(s.name, &opts).is_some(), "{}", s.name);
        }
        assert!(by_name("daytime", &opts).is_none());
        assert_eq!(names(), "upper, echo, count, chat, metrics");
        assert!(check_name("metrics").is_ok());
    }
}
