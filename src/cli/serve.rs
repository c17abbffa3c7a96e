//! `sockloop serve`: its arguments, their checks (a listener twice, a stray
//! word), and the start: bind, raise the open-file limit, say "listening",
//! run until a signal (docs/protocol.md, "serve").

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use sockloop::addr::ListenSpec;
use sockloop::options::defaults;
use sockloop::{Options, Workers};

use super::{at_least_one, off_if_zero, secs, usage_error, whole_in};

/// Said at the end of `serve --help`.
pub(crate) const EXAMPLES: &str = "\
Examples:
  sockloop serve                                  # upper on tcp and udp 127.0.0.1:12000
  sockloop serve --listen echo=tcp://127.0.0.1:7000 --listen 'count=tcp://[::1]:7001'
  sockloop serve --listen chat=tcp://0.0.0.0:7002 --slow-timeout 5 --stats 10
  sockloop serve --listen 'count=tcp://127.0.0.1:7003?framing=len32'
  sockloop serve --listen echo=tcp://0.0.0.0:7000 --workers 4   # four loops, one port
  sockloop serve --listen echo=tcp://127.0.0.1:0  # port 0: any free port, printed
  sockloop serve --listen echo=tcp://127.0.0.1:7000 --listen metrics=tcp://127.0.0.1:9464
                                                  # Prometheus scrapes GET /metrics
Quote an address with [ ] or ? in it: zsh, and bash on a match, would expand it.
It runs until Ctrl-C (SIGINT) or SIGTERM: owed replies are delivered for up to --grace seconds.
`Address already in use`: another server (another sockloop?) has that port;
stop it, or use another port, or port 0.";

#[derive(clap::Args)]
pub(crate) struct ServeArgs {
    /// SERVICE=PROTO://HOST:PORT[?framing=raw|line|len32]; repeatable.
    /// Default: upper=tcp://127.0.0.1:12000 and upper=udp://127.0.0.1:12000.
    /// metrics=tcp://HOST:PORT serves the counters and the loop's health to
    /// Prometheus (GET /metrics, text format 0.0.4; TCP only).
    #[arg(long = "listen", value_name = "SPEC", value_parser = listen_spec)]
    listen: Vec<ListenSpec>,
    /// A listener typed without --listen: caught to say so (see `serve`).
    #[arg(hide = true, value_name = "SPEC")]
    stray: Vec<String>,
    /// Connections past this are closed right after accept (at least 1).
    #[arg(long, value_name = "N", default_value_t = defaults::MAX_CONNS, value_parser = at_least_one, allow_negative_numbers = true)]
    max_conns: usize,
    /// Close a TCP connection idle this many seconds (0 = never).
    #[arg(long, value_name = "SECS", default_value_t = defaults::IDLE_TIMEOUT_SECS, value_parser = secs, allow_negative_numbers = true)]
    idle_timeout: f64,
    /// Longest frame accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = defaults::MAX_FRAME as u32, value_parser = |s: &str| whole_in(s, 1u32, u32::MAX), allow_negative_numbers = true)]
    max_frame: u32,
    /// Unsent reply bytes per connection above which reading pauses (and,
    /// for chat, the room pauses).
    #[arg(long, value_name = "BYTES", default_value_t = defaults::WRITE_BUFFER, value_parser = |s: &str| whole_in(s, 0usize, usize::MAX), allow_negative_numbers = true)]
    write_buffer: usize,
    /// Drop a UDP chat member silent this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = defaults::UDP_MEMBER_TTL_SECS, value_parser = secs, allow_negative_numbers = true)]
    udp_member_ttl: f64,
    /// Most members of a UDP chat room (at least 1).
    #[arg(long, value_name = "N", default_value_t = defaults::UDP_MAX_MEMBERS, value_parser = at_least_one, allow_negative_numbers = true)]
    udp_max_members: usize,
    /// Disconnect a chat member that stays above --write-buffer this many
    /// seconds (the room waits for it until then), or on which the room
    /// waited alone, its other readers done, this long within 10 s.
    #[arg(long, value_name = "SECS", default_value_t = defaults::SLOW_TIMEOUT_SECS, value_parser = secs, allow_negative_numbers = true)]
    slow_timeout: f64,
    /// Close a connection whose frame is still incomplete this many seconds
    /// after its first byte (0 = off); a line listener first sends
    /// "ERR frame timeout".
    #[arg(long, value_name = "SECS", default_value_t = defaults::FRAME_TIMEOUT_SECS, value_parser = secs, allow_negative_numbers = true)]
    frame_timeout: f64,
    /// Print a counters line on stderr every this many seconds (0 = never):
    /// connections, bytes, frames, and the loop's turns, busy time and
    /// turn-duration p50/p99.
    #[arg(long, value_name = "SECS", default_value_t = defaults::STATS_SECS, value_parser = secs, allow_negative_numbers = true)]
    stats: f64,
    /// On SIGINT/SIGTERM, deliver owed replies for up to this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = defaults::GRACE_SECS, value_parser = secs, allow_negative_numbers = true)]
    grace: f64,
    /// Loops (threads) serving the same addresses with SO_REUSEPORT, shared
    /// nothing; a chat listener is one room, served by the first alone.
    /// --max-conns stays the total.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = |s: &str| whole_in(s, 1usize, 1024), allow_negative_numbers = true)]
    workers: usize,
}

/// A `--listen` spec naming one of the services `serve` knows.
pub(crate) fn listen_spec(s: &str) -> Result<ListenSpec, String> {
    let spec: ListenSpec = s.parse().map_err(|e: sockloop::AddrError| e.to_string())?;
    sockloop::service::check_name(&spec.service)?;
    if spec.service == sockloop::service::metrics::NAME {
        sockloop::service::metrics::check(&spec)?;
    }
    Ok(spec)
}

/// Runs `sockloop serve`.
pub(crate) fn run(args: ServeArgs) -> Result<ExitCode, String> {
    if let Some(stray) = args.stray.first() {
        let hint = if stray.contains('=') {
            format!("a listener is given with --listen: sockloop serve --listen '{stray}'")
        } else {
            "listeners are given with --listen SERVICE=PROTO://HOST:PORT".to_string()
        };
        usage_error(
            "serve",
            format!("unexpected argument '{stray}'\n\n  tip: {hint}"),
        );
    }
    let specs = if args.listen.is_empty() {
        let default = |s: &str| s.parse::<ListenSpec>().map_err(|e| e.to_string());
        vec![
            default("upper=tcp://127.0.0.1:12000")?,
            default("upper=udp://127.0.0.1:12000")?,
        ]
    } else {
        args.listen
    };
    // The same address twice is a typo, not a runtime "address in use".
    for (i, a) in specs.iter().enumerate() {
        let e = a.endpoint;
        if e.addr.port() != 0 && specs[..i].iter().any(|b| b.endpoint == e) {
            usage_error("serve", format!("--listen: {e} is listed twice"));
        }
    }
    let opts = Options {
        max_conns: args.max_conns,
        idle_timeout: off_if_zero(args.idle_timeout),
        max_frame: args.max_frame as usize,
        write_buffer: args.write_buffer,
        udp_member_ttl: Duration::from_secs_f64(args.udp_member_ttl),
        udp_max_members: args.udp_max_members,
        slow_timeout: Duration::from_secs_f64(args.slow_timeout),
        frame_timeout: off_if_zero(args.frame_timeout),
        stats_every: off_if_zero(args.stats),
        grace: Duration::from_secs_f64(args.grace),
    };
    let server = Workers::bind(&specs, opts, args.workers).map_err(|e| e.to_string())?;
    // After binding, so a bind error is the only line on stderr (docs/protocol.md, "Command line");
    // the limit only matters for the connections still to come.
    match sockloop::raise_fd_limit() {
        Ok(limit) => {
            log::info!("open-file limit: {limit}");
            if (limit as usize) < opts.max_conns {
                // A warning, shown by default: the limit, not --max-conns,
                // is what caps connections here (docs/protocol.md, "serve").
                log::warn!(
                    "the open-file limit ({limit}) is below --max-conns ({}): it, not --max-conns, caps connections at about {}",
                    opts.max_conns,
                    limit.saturating_sub(16)
                );
            }
        }
        Err(e) => log::warn!("cannot read or raise the open-file limit: {e}"),
    }
    let mut out = std::io::stdout().lock();
    for (service, endpoint) in server.listeners() {
        let _ = writeln!(
            out,
            "listening {service} {} {}",
            endpoint.proto, endpoint.addr
        );
    }
    let _ = writeln!(out, "The server is ready to receive");
    let _ = out.flush();
    drop(out);
    server.run().map_err(|e| format!("poll loop: {e}"))?;
    Ok(ExitCode::SUCCESS)
}
