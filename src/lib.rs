//! sockloop: a single-threaded nonblocking socket server on a hand-written
//! `mio` poll loop, with the clients and the load generator that go with it.
//!
//! How the pieces fit (data flows top to bottom; [`server`], [`client`]
//! and [`load`] touch sockets, the rest is plain code over bytes):
//!
//! ```text
//!   server/   the server: its sockets, its loop
//!     mod.rs       the embedding API: register, handle_event, next_timeout, on_timer, run
//!     run.rs       the loop on a Poll of its own, by role (alone, lead, follower worker),
//!                  signals and waker
//!     builder.rs   binding, socket options
//!     accept.rs    welcoming sockets, the connection cap
//!     world.rs     the seam: the clock, sockets and readiness the loop goes through
//!                  (Os: mio and Instant, the real one; sim/world.rs: the simulated one)
//!     schedule.rs  who is driven next: dirty and deferred queues, paused senders
//!     tcp.rs       a connection's turn, interest, close
//!     drive.rs     write, read, frame, serve — over any Read + Write
//!     room.rs      delivery, chat fan-out, pacing by the slowest reader (blame.rs: who)
//!     deadlines.rs idle, frame, slow-member and linger deadlines (timer.rs: the heap)
//!     udp.rs       UDP sockets, unsent datagrams, the reflection guard
//!     shutdown.rs  graceful stop
//!     health.rs    the loop's health: turns, busy time, turn duration
//!     nested.rs    the server inside a loop that is not mio, through one fd
//!     workers.rs   --workers: N loops on the same addresses (SO_REUSEPORT)
//!     sim/         (tests) the whole server in a seeded simulation of sockets and time
//!   conn/     one connection's state machine, flags, buffers, deadlines (no I/O)
//!   inbuf     held input: bytes → frames → service calls, budgeted (no I/O)
//!   outq      replies the kernel has not taken yet
//!   framing   bytes → frames → bytes                            (no I/O)
//!   service/  frames → replies: upper, echo, count, chat         (no I/O)
//!             and metrics (HTTP GET /metrics → the counters)
//!   stats/    the one table of counters: Counters, Stats, --stats, Prometheus
//!   options   every limit, with its default
//!   addr      endpoints and --listen specs, parsed
//!   client/   the blocking textbook clients: send, chat
//!   load/     the load generator (its own sockets, threads and pacing)
//!   hdr/      load's histograms as they travel (base64, JSON, .hlog)
//!   merge/    load --shard outputs added into one run, exactly
//!   report/   runs as one HTML page of charts (`sockloop report`, `load --html`)
//!   sys/      what std and mio do not wrap: fd limit, recvmmsg/sendmmsg,
//!             a ns timer, the port-sparing bind, a thread's CPU time
//!   oracle    (tests only) the reference answers the services are checked against
//! ```
//!
//! The `sockloop` binary (`src/main.rs`, `src/cli/`) is only the command
//! line over this library.
//!
//! Run a server:
//!
//! ```no_run
//! use sockloop::{Server, Options};
//! let specs = ["echo=tcp://127.0.0.1:7000".parse().unwrap()];
//! let server = Server::bind(&specs, Options::default()).expect("bind");
//! server.run().expect("run");
//! ```
//!
//! Embed it in your own `mio::Poll`: see [`Server::register`] and
//! `examples/embed.rs`. Add a service: implement [`service::Service`].

#![warn(missing_docs)]
#![warn(unreachable_pub)]

pub mod addr;
pub mod client;
pub(crate) mod conn;
pub mod framing;
pub mod hdr;
pub(crate) mod inbuf;
pub mod load;
pub mod merge;
pub mod options;
#[cfg(test)]
mod oracle;
pub(crate) mod outq;
pub mod report;
pub mod server;
pub mod service;
pub mod stats;
pub(crate) mod sys;

pub use addr::{AddrError, Endpoint, ListenSpec, Proto};
pub use framing::Framing;
pub use options::Options;
pub use server::{Builder, Nested, Server, Stopper, Workers};
pub use stats::{Counters, Stats};
pub use sys::raise_fd_limit;
