//! `sockloop load`: a load generator for echo-like services, on a mio loop
//! of its own, as lean per message as the server it drives.
//!
//! Each connection sends messages of `size` bytes and expects the same
//! bytes back. A message's content is a function of its offset in the
//! connection's byte stream ([`pattern`]), so neither side of the check
//! needs a buffer: bytes to send are generated into the one scratch buffer,
//! and each reply byte is compared with what that offset must hold. A reply
//! may arrive in any number of reads; a short read is normal.
//!
//! ```text
//!  ramp: connect at --connect-rate, from 127.0.0.{1,2,…} once one source
//!        address would use more than half its ephemeral ports
//!  run:  keep --pipeline messages in flight per connection; with --rate,
//!        message j of a connection is *due* at a fixed time, and its
//!        latency counts from then, even if it could only be sent later
//!        (no coordinated omission)
//!  idle: just hold the connections and count who is still there
//! ```
//!
//! Latencies go into an HDR histogram (nanoseconds, 3 significant digits).
//!
//! Files: `pattern.rs` (what each connection sends and expects),
//! `source.rs` (source addresses and connecting), `driver.rs` (the poll
//! loop that drives the connections), `report.rs` (the summary, table and
//! JSON).

mod driver;
mod pattern;
mod report;
mod source;

use std::io;
use std::time::Duration;

use crate::addr::{Endpoint, Proto};

pub use pattern::pattern;
pub use report::Report;

/// What `sockloop load` is asked to do.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The echo-like service to drive.
    pub endpoint: Endpoint,
    /// Connections to open.
    pub conns: usize,
    /// Bytes per message.
    pub size: usize,
    /// How long to measure, after every connection is open.
    pub duration: Duration,
    /// Messages in flight per connection.
    pub pipeline: usize,
    /// Messages per second over all connections; `None`: as fast as
    /// replies allow.
    pub rate: Option<f64>,
    /// New connections per second while ramping up.
    pub connect_rate: f64,
    /// Hold the connections without traffic.
    pub idle: bool,
}

/// A connection attempt still unanswered after this long has failed.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Ports of one source address kept free for everything else.
pub(crate) const PORT_MARGIN: usize = 1000;

/// File descriptors `load` needs besides its connections.
const FD_MARGIN: usize = 32;

/// Why a connection whose replies differ from what it sent is dropped.
pub(crate) const WRONG_BYTES: &str = "wrong reply bytes: the target does not look like an echo-like service (echo, or upper with these ASCII messages)";

/// Why a run in which nothing came back failed.
pub(crate) const NO_REPLY: &str = "no reply came back in the whole run: the target does not look like an echo-like service (echo, or upper)";

pub(crate) fn reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset => "connection reset".into(),
        io::ErrorKind::TimedOut => "timed out".into(),
        io::ErrorKind::AddrNotAvailable => "no local address/port available".into(),
        _ if e.raw_os_error() == Some(libc::EMFILE) => "out of file descriptors (EMFILE)".into(),
        _ => e.to_string(),
    }
}

/// Run the load; progress on stderr. Errors only for setup problems; a
/// failed connection is counted, not fatal.
pub fn run(cfg: &LoadConfig) -> Result<Report, String> {
    run_with_progress(cfg, true)
}

/// [`run`], with progress lines on stderr or not.
pub fn run_with_progress(cfg: &LoadConfig, progress: bool) -> Result<Report, String> {
    if cfg.endpoint.proto != Proto::Tcp {
        return Err(format!("{}: load drives TCP services only", cfg.endpoint));
    }
    if cfg.conns == 0 {
        return Err("--conns must be at least 1".into());
    }
    if cfg.connect_rate.is_nan()
        || cfg.connect_rate <= 0.0
        || cfg.rate.is_some_and(|r| r.is_nan() || r <= 0.0)
    {
        return Err("--rate and --connect-rate must be above 0".into());
    }
    // Say at once if the connections cannot all be had, rather than fail
    // part-way through the ramp.
    let limit = crate::sys::raise_fd_limit().map_err(|e| format!("open-file limit: {e}"))? as usize;
    if cfg.conns + FD_MARGIN > limit {
        return Err(format!(
            "--conns {} needs about {} file descriptors, but this process may open only {limit} (RLIMIT_NOFILE); lower --conns or run several load processes",
            cfg.conns,
            cfg.conns + FD_MARGIN
        ));
    }
    let sources = source::source_addrs(cfg.endpoint.addr, cfg.conns)?;
    driver::Driver::new(cfg, sources, progress)
        .map_err(|e| format!("poll: {e}"))?
        .run()
        .map_err(|e| format!("poll: {e}"))
}
