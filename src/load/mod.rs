//! `sockloop load`: a load generator on a mio loop of its own, as lean
//! per message as the server it drives.
//!
//! ```text
//!  cli/load.rs ── LoadConfig::validate (usage), Stop (signals) ──────┐
//!  run ─ T threads, each a driver with its share of the connections ─┤
//!        driver.rs (TCP) / udp/ (UDP): sockets, clock, schedule      │
//!          ├─ protocol.rs: what is sent, how replies are cut/judged   │
//!          │    (pattern.rs: echo over TCP; udp/datagram.rs: over UDP)│
//!          └─ measure.rs: latencies, seconds, failures, warm-up       │
//!  Report::merge → report/ (table, JSON, .hgrm, CSV) ────────────────┘
//! ```
//!
//! A run: ramp (connect at `--connect-rate`, from 127.0.0.{1,2,…} once one
//! source address would use more than half its ephemeral ports), then the
//! measured window (`--duration`): keep `--pipeline` messages in flight
//! per connection; with `--rate`, message j of a connection is *due* at a
//! fixed time and its latency counts from then, even if it could only be
//! sent later (no coordinated omission). `--idle` just holds the
//! connections. Latencies go into HDR histograms (ns, 3 significant
//! digits).
//!
//! Other files: `config.rs` (the options and their rules), `shard.rs`
//! (`--shard S/N`: a part of the test, by global connection numbers),
//! `start.rs` (`--start-at`: starting at an agreed second), `stop.rs`
//! (ending a run early), `progress.rs` (the progress line, one loop or
//! several), `source.rs` (source addresses and connecting),
//! `driver/connect.rs` (a TCP connection's life), `driver/traffic.rs` (its
//! traffic).

mod config;
mod driver;
mod framed;
mod knee;
mod measure;
mod pace;
mod pattern;
mod progress;
mod protocol;
pub mod reply;
mod report;
pub mod shard;
mod source;
pub mod start;
mod stop;
pub mod template;
mod udp;

use std::io;
use std::sync::Arc;
use std::time::Duration;

pub use config::LoadConfig;
pub use framed::Tally;
pub use knee::{search, LatencyTarget, Search, Step};
use pattern::Echo;
use progress::Progress;
pub use report::{Report, Second};
pub use stop::Stop;

/// Ports of one source address kept free for everything else.
pub(crate) const PORT_MARGIN: usize = 1000;

/// File descriptors `load` needs besides its connections.
const FD_MARGIN: usize = 32;

/// How the reason for a run in which nothing came back begins (the
/// protocol says what the target does not look like).
pub(crate) const NO_REPLY: &str = "no reply came back in the whole run";

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

/// Run the load; progress on stderr. `stop` ends it early (the command
/// line wires SIGINT/SIGTERM to it; the library installs no handler).
/// Errors only for bad options or setup problems; a failed connection is
/// counted, not fatal.
pub fn run(cfg: &LoadConfig, stop: &Stop) -> Result<Report, String> {
    run_with_progress(cfg, true, stop)
}

/// [`run`], with progress lines on stderr or not.
pub fn run_with_progress(
    whole: &LoadConfig,
    progress: bool,
    stop: &Stop,
) -> Result<Report, String> {
    whole.validate()?;
    // A run with random requests always has a seed, reported, so it can
    // be repeated.
    let resolved;
    let whole = if !whole.request.is_empty() && whole.seed.is_none() {
        resolved = LoadConfig {
            seed: Some(template::seed_from_time()),
            ..whole.clone()
        };
        &resolved
    } else {
        whole
    };
    // With --shard, this process runs its part (its own seed among them);
    // the report keeps the whole test's settings (what every shard was
    // asked, for merge to compare).
    let part = whole.shard_part();
    let cfg = &part;
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
    // Each target gets its share of the connections, and the source
    // addresses that share needs.
    let per_target = cfg.conns.div_ceil(cfg.endpoints.len());
    let sources = if cfg.udp() {
        Vec::new()
    } else {
        source::source_addrs(cfg.endpoints[0].addr, per_target)?
    };
    // --start-at: every check above is done, so a shard that cannot run
    // says so now rather than at the agreed second.
    if let Some(at) = whole.start_at {
        start::until(at, start::now_unix())?;
        if !start::wait_until(at, || stop.is_stopped()) {
            return Ok(Report::merge(whole, Vec::new()));
        }
    }
    // With --rate, every loop of every shard paces by the one schedule.
    let sched = shard::Schedule {
        conns: whole.conns,
        rate: whole.rate.unwrap_or(1.0),
    };
    let threads = cfg.threads.min(cfg.conns);
    if threads == 1 {
        let one = drive(cfg, sched, 0, sources, Progress::Print(progress), stop)?;
        return Ok(Report::merge(whole, vec![one]));
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
        let (sources, shared, stop) = (sources.clone(), Arc::clone(&shared), stop.clone());
        let start = first;
        first += part.conns;
        handles.push(
            std::thread::Builder::new()
                .name(format!("load-{t}"))
                .spawn(move || {
                    drive(
                        &part,
                        sched,
                        start,
                        sources,
                        Progress::Shared(shared, t),
                        &stop,
                    )
                })
                .map_err(|e| format!("thread: {e}"))?,
        );
    }
    let start = std::time::Instant::now();
    let mut next = start + Duration::from_secs(1);
    while !handles.iter().all(|h| h.is_finished()) {
        std::thread::sleep(Duration::from_millis(20));
        if progress && std::time::Instant::now() >= next {
            progress::print_shared(&shared, start.elapsed(), cfg.conns, cfg.udp());
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
    Ok(Report::merge(whole, reports))
}

/// One loop's run: the driver for the transport, with the protocol the
/// options ask for (the place a new protocol plugs in).
/// One loop's part `cfg` of the test (with --rate, paced by `schedule`,
/// the whole test's: see [`shard::Schedule`]).
fn drive(
    cfg: &LoadConfig,
    schedule: shard::Schedule,
    first: usize,
    sources: Vec<std::net::IpAddr>,
    progress: Progress,
    stop: &Stop,
) -> Result<Report, String> {
    if !cfg.request.is_empty() {
        // `run` resolved the seed (from the clock if none was given).
        let proto = framed::Framed::new(cfg, cfg.seed.unwrap_or(0), first);
        if cfg.udp() {
            return udp::UdpDriver::new(cfg, proto, first, progress, stop)
                .and_then(|d| d.run())
                .map_err(|e| format!("udp: {e}"));
        }
        return driver::Driver::new(cfg, proto, first, sources, progress, stop)
            .and_then(|d| d.on_schedule(schedule).run())
            .map_err(|e| format!("poll: {e}"));
    }
    if cfg.udp() {
        let proto = udp::EchoDatagram::new(cfg.size);
        return udp::UdpDriver::new(cfg, proto, first, progress, stop)
            .and_then(|d| d.run())
            .map_err(|e| format!("udp: {e}"));
    }
    let proto = Echo::new(cfg.size);
    driver::Driver::new(cfg, proto, first, sources, progress, stop)
        .and_then(|d| d.on_schedule(schedule).run())
        .map_err(|e| format!("poll: {e}"))
}
