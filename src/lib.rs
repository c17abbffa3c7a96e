//! sockloop: a single-threaded nonblocking socket server on a hand-written
//! `mio` poll loop, with the clients and the load generator that go with it.
//!
//! How the pieces fit (data flows top to bottom, and only [`server`] and
//! the clients touch sockets):
//!
//! ```text
//!   server  (the poll loop: accept, read, write, interest, deadlines)
//!     ├── conn     one connection's state in the slab
//!     ├── outq     replies the kernel has not taken yet
//!     ├── udp      UDP sockets, their unsent datagrams, the reflection guard
//!     ├── timer    idle and linger deadlines
//!     ├── framing  bytes → frames → bytes                (no I/O)
//!     └── service  frames → replies: upper, echo, count, chat  (no I/O)
//! ```
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

pub mod addr;
pub mod client;

pub mod conn;
pub mod framing;
pub mod load;

pub mod outq;
pub mod server;
pub mod service;
pub mod stats;
pub mod sys;
pub mod timer;
pub mod udp;

pub use addr::{Endpoint, ListenSpec, Proto};
pub use framing::Framing;
pub use server::{Builder, Options, Server};
pub use stats::{Counters, Stats};
