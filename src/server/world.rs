//! The loop's one seam: everything it takes from outside — the clock,
//! readiness, and the sockets — goes through a [`World`].
//!
//! ```text
//!   Server<W: World>  ──now()──────────────────────▶ the clock
//!                     ──bind / accept / recv / send ▶ the sockets
//!                     ──register / reregister ──────▶ readiness (a poll)
//!                     ◀─ Ready { token, readable, … } (handle_ready)
//! ```
//!
//! There are two worlds. [`Os`] is the real one: `Instant::now`, mio's
//! sockets and registry. It is the default type of [`Server`], so a user
//! never names it; every call below is one line onto mio or the kernel,
//! monomorphised and inlined, so the real loop costs what it did before
//! the seam. The other is the simulation's (`sim/world.rs`, tests only):
//! in-memory sockets with bounded buffers, readiness it computes itself,
//! faults at random, and a clock the test moves.
//!
//! A stream is driven through [`Stream`] (read, write, our FIN), which the
//! connection already asks of its socket (conn/).

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use log::trace;
use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Interest, Registry, Token};

use super::builder::{self, Share};
use crate::addr::Proto;
use crate::conn::Stream;
use crate::sys::mmsg::{self, RecvBatch, SendBatch};

/// Which of a world's sockets a readiness call is about.
#[doc(hidden)]
pub enum Sock<'a, W: World + ?Sized> {
    /// A welcoming TCP socket.
    Listener(&'a mut W::Listener),
    /// An accepted connection.
    Stream(&'a mut W::Stream),
    /// A UDP socket.
    Udp(&'a mut W::Udp),
}

/// A socket just bound: a welcoming TCP socket or a UDP one.
#[doc(hidden)]
pub enum Bound<W: World + ?Sized> {
    /// TCP.
    Listener(W::Listener),
    /// UDP.
    Udp(W::Udp),
}

/// One readiness event, in the world's terms (mio's `Event`, or the
/// simulation's).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ready {
    /// Whose.
    pub token: Token,
    /// Bytes (or EOF, or an error) to read.
    pub readable: bool,
    /// Room to write.
    pub writable: bool,
    /// The peer's FIN arrived (EPOLLRDHUP).
    pub read_closed: bool,
    /// An error is pending on the socket.
    pub error: bool,
}

/// What the loop needs from outside: see the module docs. Not a trait for
/// users to implement; it exists so the loop can run in simulation.
#[doc(hidden)]
pub trait World {
    /// A welcoming TCP socket.
    type Listener;
    /// An accepted connection. (`Stream` is the crate's own: `World` is
    /// public only so that `Server` can name it in its default.)
    #[allow(private_bounds)]
    type Stream: Stream;
    /// A UDP socket.
    type Udp;

    /// The clock: what time it is. The loop keeps it in whole ms.
    fn now(&self) -> Instant;

    /// Bind a socket on `addr` (port 0: any free one); its real address.
    fn bind(
        &mut self,
        proto: Proto,
        addr: SocketAddr,
        share: Share,
    ) -> io::Result<(Bound<Self>, SocketAddr)>;
    /// Accept one connection waiting on `l` (`WouldBlock`: none waits).
    fn accept(&mut self, l: &Self::Listener) -> io::Result<(Self::Stream, SocketAddr)>;
    /// An accepted connection the loop keeps: set its options.
    fn configure(&mut self, s: &Self::Stream);

    /// Watch a socket for `interest` under `token`.
    fn register(&mut self, s: Sock<'_, Self>, token: Token, interest: Interest) -> io::Result<()>;
    /// Change what a watched socket is watched for.
    fn reregister(&mut self, s: Sock<'_, Self>, token: Token, interest: Interest)
        -> io::Result<()>;
    /// Stop watching a socket (before it is closed or dropped).
    fn deregister(&mut self, s: Sock<'_, Self>) -> io::Result<()>;

    /// Receive a batch of datagrams (see [`RecvBatch::recv`]).
    fn recv_batch(&mut self, u: &Self::Udp, batch: &mut RecvBatch) -> io::Result<usize>;
    /// Send a batch's messages from `from` on (see [`SendBatch::send`]).
    fn send_batch(
        &mut self,
        u: &Self::Udp,
        batch: &mut SendBatch,
        from: usize,
    ) -> io::Result<usize>;
    /// Send one datagram.
    fn send_to(&mut self, u: &Self::Udp, payload: &[u8], to: SocketAddr) -> io::Result<usize>;
    /// A UDP socket's own address (for the log).
    fn udp_local(&self, u: &Self::Udp) -> io::Result<SocketAddr>;
}

/// The real world: the monotonic clock, mio's sockets, and the registry
/// of the `Poll` the server was [`register`](super::Server::register)ed in.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct Os {
    pub(super) registry: Option<Registry>,
}

impl Os {
    fn registry(&self) -> io::Result<&Registry> {
        self.registry
            .as_ref()
            .ok_or_else(|| io::Error::other("not registered in a poll"))
    }
}

impl World for Os {
    type Listener = TcpListener;
    type Stream = TcpStream;
    type Udp = UdpSocket;

    #[inline]
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn bind(
        &mut self,
        proto: Proto,
        addr: SocketAddr,
        share: Share,
    ) -> io::Result<(Bound<Self>, SocketAddr)> {
        Ok(match proto {
            Proto::Tcp => {
                let l = builder::bind_tcp(addr, share)?;
                let local = l.local_addr()?;
                (Bound::Listener(l), local)
            }
            Proto::Udp => {
                let u = builder::bind_udp(addr, share)?;
                // Runs of datagrams from one peer may then arrive as one
                // buffer (cut back into datagrams by RecvBatch): where the
                // kernel will.
                mmsg::enable_gro(&u);
                let local = u.local_addr()?;
                (Bound::Udp(u), local)
            }
        })
    }

    #[inline]
    fn accept(&mut self, l: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
        l.accept()
    }

    /// Replies are whole messages written at once: Nagle's algorithm would
    /// only hold the next one back waiting for an ACK.
    #[inline]
    fn configure(&mut self, s: &TcpStream) {
        let _ = s.set_nodelay(true);
    }

    #[inline]
    fn register(&mut self, s: Sock<'_, Self>, token: Token, interest: Interest) -> io::Result<()> {
        let r = self.registry()?;
        match s {
            Sock::Listener(l) => r.register(l, token, interest),
            Sock::Stream(s) => r.register(s, token, interest),
            Sock::Udp(u) => r.register(u, token, interest),
        }
    }

    #[inline]
    fn reregister(
        &mut self,
        s: Sock<'_, Self>,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        let r = self.registry()?;
        match s {
            Sock::Listener(l) => r.reregister(l, token, interest),
            Sock::Stream(s) => r.reregister(s, token, interest),
            Sock::Udp(u) => r.reregister(u, token, interest),
        }
    }

    #[inline]
    fn deregister(&mut self, s: Sock<'_, Self>) -> io::Result<()> {
        let r = self.registry()?;
        match s {
            Sock::Listener(l) => r.deregister(l),
            Sock::Stream(s) => r.deregister(s),
            Sock::Udp(u) => r.deregister(u),
        }
    }

    #[inline]
    fn recv_batch(&mut self, u: &UdpSocket, batch: &mut RecvBatch) -> io::Result<usize> {
        batch.recv(u)
    }

    #[inline]
    fn send_batch(
        &mut self,
        u: &UdpSocket,
        batch: &mut SendBatch,
        from: usize,
    ) -> io::Result<usize> {
        batch.send(u, from)
    }

    #[inline]
    fn send_to(&mut self, u: &UdpSocket, payload: &[u8], to: SocketAddr) -> io::Result<usize> {
        u.send_to(payload, to)
    }

    fn udp_local(&self, u: &UdpSocket) -> io::Result<SocketAddr> {
        u.local_addr()
    }
}

impl From<&mio::event::Event> for Ready {
    #[inline]
    fn from(e: &mio::event::Event) -> Self {
        Ready {
            token: e.token(),
            readable: e.is_readable(),
            writable: e.is_writable(),
            read_closed: e.is_read_closed(),
            error: e.is_error(),
        }
    }
}

/// Re-register a socket only when the interest it needs changed, so the
/// usual request → reply round costs no `epoll_ctl` at all: the one
/// interest update of TCP connections and UDP sockets. `who` names the
/// socket in the log. Returns the interest it is now registered for.
pub(super) fn update_interest<W: World + ?Sized>(
    world: &mut W,
    sock: Sock<'_, W>,
    token: Token,
    have: Interest,
    want: Interest,
    who: std::fmt::Arguments<'_>,
) -> io::Result<Interest> {
    if want == have {
        return Ok(have);
    }
    let why = if want.is_writable() && !want.is_readable() {
        "replies above --write-buffer: stop reading until they drain (backpressure)"
    } else if want.is_writable() {
        "replies pending: wake when the send buffer has room"
    } else {
        "nothing pending: wake only for input"
    };
    trace!(target: LOG_TARGET, "{who}: interest {have:?} -> {want:?} ({why})");
    world.reregister(sock, token, want)?;
    Ok(want)
}

/// The interest log lines keep the target they had before the helper was
/// shared (docs/walkthrough.md quotes them).
const LOG_TARGET: &str = "sockloop::server::tcp";
