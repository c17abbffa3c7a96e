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
//! `progress.rs` (the progress line, one loop or several), `udp.rs` (the
//! UDP driver),
//! `source.rs` (source addresses and connecting), `driver.rs` (the poll
//! loop that drives the connections' traffic) with `driver/connect.rs`
//! (a connection's life: connect, time out, lose, replace), `report.rs`
//! (the summary, table and JSON).

mod driver;
mod pattern;
mod progress;
pub mod proto;
pub mod reply;
mod report;
mod source;
pub mod template;
mod udp;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::addr::{Endpoint, Proto};

pub use pattern::pattern;
use progress::Progress;
pub use report::Report;

/// What `sockloop load` is asked to do.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The echo-like services to drive: connection `g` goes to
    /// `endpoints[g % len]` (a server with several workers, or several
    /// servers).
    pub endpoints: Vec<Endpoint>,
    /// Poll loops (threads), each with its share of the connections.
    pub threads: usize,
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
    /// `--churn M`: each connection closes after M round trips and is
    /// replaced at once.
    pub churn: Option<u64>,
}

/// A connection attempt still unanswered after this long has failed.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Ports of one source address kept free for everything else.
pub(crate) const PORT_MARGIN: usize = 1000;

/// File descriptors `load` needs besides its connections.
const FD_MARGIN: usize = 32;

/// Why a connection whose replies differ from what it sent is dropped.
pub(crate) const WRONG_BYTES: &str = "wrong reply bytes: the target does not look like an echo-like service (echo, or upper with these ASCII messages)";

/// Why a run in which nothing came back failed, naming its targets.
pub(crate) fn no_reply(cfg: &LoadConfig) -> String {
    let targets: Vec<String> = cfg.endpoints.iter().map(|e| e.to_string()).collect();
    format!("{NO_REPLY} ({})", targets.join(", "))
}

/// Why a run in which nothing came back failed.
const NO_REPLY: &str = "no reply came back in the whole run: the target does not look like an echo-like service (echo, or upper)";

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
    let udp = cfg
        .endpoints
        .iter()
        .filter(|e| e.proto == Proto::Udp)
        .count();
    if udp > 0 && udp < cfg.endpoints.len() {
        return Err("load drives tcp:// or udp:// targets, not both in one run".into());
    }
    if cfg.endpoints.is_empty() || cfg.conns == 0 || cfg.threads == 0 {
        return Err("load needs a target, --conns ≥ 1 and --threads ≥ 1".into());
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
    let threads = cfg.threads.min(cfg.conns);
    if udp > 0 && threads == 1 {
        return udp::run(cfg, 0, Progress::Print(progress)).map_err(|e| format!("udp: {e}"));
    }
    // Each target gets its share of the connections, and the source
    // addresses that share needs.
    let per_target = cfg.conns.div_ceil(cfg.endpoints.len());
    let sources = source::source_addrs(cfg.endpoints[0].addr, per_target)?;
    if threads == 1 {
        let driver = driver::Driver::new(cfg, 0, sources, Progress::Print(progress));
        return driver
            .map_err(|e| format!("poll: {e}"))?
            .run()
            .map_err(|e| format!("poll: {e}"));
    }
    // T loops, shared nothing but a slot each for the progress line.
    let shared: Arc<Vec<progress::Slot>> =
        Arc::new((0..threads).map(|_| Default::default()).collect());
    let mut handles = Vec::new();
    let mut first = 0;
    for t in 0..threads {
        let mut part = cfg.clone();
        part.conns = cfg.conns / threads + usize::from(t < cfg.conns % threads);
        let share = part.conns as f64 / cfg.conns as f64;
        part.rate = cfg.rate.map(|r| r * share);
        part.connect_rate = cfg.connect_rate * share;
        let (sources, shared) = (sources.clone(), Arc::clone(&shared));
        let start = first;
        first += part.conns;
        handles.push(
            std::thread::Builder::new()
                .name(format!("load-{t}"))
                .spawn(move || {
                    let progress = Progress::Shared(shared, t);
                    if udp > 0 {
                        return udp::run(&part, start, progress).map_err(|e| format!("udp: {e}"));
                    }
                    driver::Driver::new(&part, start, sources, progress)
                        .and_then(|d| d.run())
                        .map_err(|e| format!("poll: {e}"))
                })
                .map_err(|e| format!("thread: {e}"))?,
        );
    }
    let start = std::time::Instant::now();
    let mut next = start + Duration::from_secs(1);
    while !handles.iter().all(|h| h.is_finished()) {
        std::thread::sleep(Duration::from_millis(20));
        if progress && std::time::Instant::now() >= next {
            progress::print_shared(&shared, start.elapsed(), cfg.conns);
            next += Duration::from_secs(1);
        }
    }
    let mut reports = Vec::new();
    for h in handles {
        reports.push(
            h.join()
                .map_err(|_| "a load thread panicked".to_string())??,
        );
    }
    Ok(Report::merge(reports))
}
