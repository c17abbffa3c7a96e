//! The `sockloop` command line (docs/protocol.md, "Command line"). Only argument parsing and exit
//! codes live here: usage errors exit 2 (clap's own, or ours through
//! clap), runtime errors exit 1 with one `error: ...` line.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{CommandFactory, Parser, Subcommand};

use sockloop::addr::{Endpoint, ListenSpec};
use sockloop::client::{self, ChatArgs, SendArgs};
use sockloop::load::{self, LoadConfig};
use sockloop::options::defaults;
use sockloop::{Framing, Options, Workers};

/// Said at the end of every `--help`: exit codes and logging.
const FOOTER: &str = "\
Exit codes: 0 success; 1 a runtime error (one line `error: ...` naming the
address), a lost reply (send) or a failed connection or wrong reply (load);
2 a usage error.

Logging: RUST_LOG=info shows the open-file limit and shutdown; RUST_LOG=sockloop=trace
narrates the loop (every event, read, write, WouldBlock, interest change),
RUST_LOG=trace adds mio's own lines. The wire contract: docs/protocol.md.";

const SERVE_EXAMPLES: &str = "\
Examples:
  sockloop serve                                  # upper on tcp and udp 127.0.0.1:12000
  sockloop serve --listen echo=tcp://127.0.0.1:7000 --listen count=tcp://[::1]:7001
  sockloop serve --listen chat=tcp://0.0.0.0:7002 --slow-timeout 5 --stats 10
  sockloop serve --listen count=tcp://127.0.0.1:7003?framing=len32
  sockloop serve --listen echo=tcp://0.0.0.0:7000 --workers 4   # four loops, one port
Stop it with Ctrl-C (SIGINT) or SIGTERM: owed replies are delivered for up to --grace seconds.";

const SEND_EXAMPLES: &str = "\
Examples:
  printf 'hello\\nworld\\n' | sockloop send tcp://127.0.0.1:12000
  printf 'mississippi\\n' | sockloop send tcp://127.0.0.1:7001
  printf 'ping\\n' | sockloop send udp://127.0.0.1:12000 --timeout 0.5
It ends at the end of input, once every reply has come (or timed out).
A server that answers a line with `ERR ...` and closes makes send exit 1.";

const CHAT_EXAMPLES: &str = "\
Examples:
  sockloop chat tcp://127.0.0.1:7002
  sockloop chat udp://127.0.0.1:7004
Type lines to send them; the room's lines appear as they come. Leave with
Ctrl-D (end of input; over UDP this sends /leave) or Ctrl-C.";

const LOAD_EXAMPLES: &str = "\
Examples:
  sockloop load tcp://127.0.0.1:7000 --conns 50 --duration 5
  sockloop load tcp://127.0.0.1:7000 --conns 50 --pipeline 16 --size 512 --json
  sockloop load tcp://127.0.0.1:7000 --conns 1000 --rate 20000
  sockloop load tcp://127.0.0.1:7000 --idle --conns 19000 --duration 30
Any request/response protocol, with --request (Redis, then HTTP):
  sockloop load tcp://127.0.0.1:6379 --conns 50 --pipeline 16 --reply resp \\
      --request '*2\\r\\n$3\\r\\nGET\\r\\n$8\\r\\nk{key:10000000}\\r\\n' --expect '$'
  sockloop load tcp://127.0.0.1:8080 --conns 50 --reply http --expect 'HTTP/1.1 200' \\
      --request 'GET / HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n'
Without --request, point it at an echo (or upper) listener. Stop early with Ctrl-C.";

#[derive(Parser)]
#[command(
    name = "sockloop",
    version,
    about = "A single-threaded nonblocking socket server, its clients and a load generator",
    after_help = FOOTER
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve upper, echo, count and chat over TCP and UDP from one loop.
    #[command(after_help = format!("{SERVE_EXAMPLES}\n\n{FOOTER}"))]
    Serve(ServeArgs),
    /// Send each line of stdin, print each reply.
    #[command(after_help = format!("{SEND_EXAMPLES}\n\n{FOOTER}"))]
    Send {
        /// tcp://HOST:PORT or udp://HOST:PORT (IPv6: tcp://[::1]:PORT).
        #[arg(value_name = "PROTO://HOST:PORT")]
        endpoint: Endpoint,
        /// TCP framing of requests and replies (UDP: one datagram per line).
        #[arg(long, value_name = "FRAMING", default_value = "line",
              value_parser = PossibleValuesParser::new(["raw", "line", "len32"]).try_map(|s| s.parse::<Framing>()))]
        framing: Framing,
        /// Seconds to wait for each reply.
        #[arg(long, value_name = "SECS", default_value = "5", value_parser = secs_duration, allow_negative_numbers = true)]
        timeout: Duration,
    },
    /// Join a chat room: typed lines are sent, the room's lines printed.
    #[command(after_help = format!("{CHAT_EXAMPLES}\n\n{FOOTER}"))]
    Chat {
        /// tcp://HOST:PORT or udp://HOST:PORT (IPv6: tcp://[::1]:PORT).
        #[arg(value_name = "PROTO://HOST:PORT")]
        endpoint: Endpoint,
    },
    /// Drive an echo-like service with many connections and report.
    #[command(after_help = format!("{LOAD_EXAMPLES}\n\n{FOOTER}"))]
    Load(LoadArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// SERVICE=PROTO://HOST:PORT[?framing=raw|line|len32]; repeatable.
    /// Default: upper=tcp://127.0.0.1:12000 and upper=udp://127.0.0.1:12000.
    #[arg(long = "listen", value_name = "SPEC", value_parser = listen_spec)]
    listen: Vec<ListenSpec>,
    /// Connections past this are closed right after accept (at least 1).
    #[arg(long, value_name = "N", default_value_t = defaults::MAX_CONNS, value_parser = at_least_one)]
    max_conns: usize,
    /// Close a TCP connection idle this many seconds (0 = never).
    #[arg(long, value_name = "SECS", default_value_t = defaults::IDLE_TIMEOUT_SECS, value_parser = secs, allow_negative_numbers = true)]
    idle_timeout: f64,
    /// Longest frame accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = defaults::MAX_FRAME as u32, value_parser = clap::value_parser!(u32).range(1..))]
    max_frame: u32,
    /// Unsent reply bytes per connection above which reading pauses (and,
    /// for chat, the room pauses).
    #[arg(long, value_name = "BYTES", default_value_t = defaults::WRITE_BUFFER)]
    write_buffer: usize,
    /// Drop a UDP chat member silent this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = defaults::UDP_MEMBER_TTL_SECS, value_parser = secs, allow_negative_numbers = true)]
    udp_member_ttl: f64,
    /// Most members of a UDP chat room (at least 1).
    #[arg(long, value_name = "N", default_value_t = defaults::UDP_MAX_MEMBERS, value_parser = at_least_one)]
    udp_max_members: usize,
    /// Disconnect a chat member that stays above --write-buffer this many
    /// seconds (the room waits for it until then).
    #[arg(long, value_name = "SECS", default_value_t = defaults::SLOW_TIMEOUT_SECS, value_parser = secs, allow_negative_numbers = true)]
    slow_timeout: f64,
    /// Close a connection whose frame is still incomplete this many seconds
    /// after its first byte (0 = off); a line listener first sends
    /// "ERR frame timeout".
    #[arg(long, value_name = "SECS", default_value_t = defaults::FRAME_TIMEOUT_SECS, value_parser = secs, allow_negative_numbers = true)]
    frame_timeout: f64,
    /// Print a counters line on stderr every this many seconds (0 = never).
    #[arg(long, value_name = "SECS", default_value_t = defaults::STATS_SECS, value_parser = secs, allow_negative_numbers = true)]
    stats: f64,
    /// On SIGINT/SIGTERM, deliver owed replies for up to this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = defaults::GRACE_SECS, value_parser = secs, allow_negative_numbers = true)]
    grace: f64,
    /// Loops (threads) serving the same addresses with SO_REUSEPORT, shared
    /// nothing; a chat listener is one room, served by the first alone.
    /// --max-conns stays the total.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = workers_count)]
    workers: usize,
}

#[derive(clap::Args)]
struct LoadArgs {
    /// tcp://HOST:PORT of an echo-like service; several: connections are
    /// spread over them round-robin.
    #[arg(value_name = "PROTO://HOST:PORT", required = true, num_args = 1..)]
    endpoints: Vec<Endpoint>,
    /// Threads, each its own poll loop with its share of the connections
    /// (to drive a server faster than one core of load can).
    #[arg(long, value_name = "T", default_value = "1", value_parser = at_least_one)]
    threads: usize,
    /// Connections to open.
    #[arg(long, value_name = "N", default_value = "10", value_parser = at_least_one)]
    conns: usize,
    /// Bytes per message.
    #[arg(long, value_name = "BYTES", default_value = "64", value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    size: u32,
    /// Seconds to run (with --idle: to hold the connections once open).
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = secs_duration, allow_negative_numbers = true)]
    duration: Duration,
    /// Messages in flight per connection.
    #[arg(long, value_name = "K", default_value = "1", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pipeline: u32,
    /// Total messages per second (default: as fast as replies come).
    #[arg(long, value_name = "MSGS_PER_SEC", value_parser = positive_rate, allow_negative_numbers = true)]
    rate: Option<f64>,
    /// New connections per second while ramping up.
    #[arg(long, value_name = "CONNS_PER_SEC", default_value = "5000", value_parser = positive_rate, allow_negative_numbers = true)]
    connect_rate: f64,
    /// Open and hold connections without traffic.
    #[arg(long, conflicts_with_all = ["churn", "rate"])]
    idle: bool,
    /// Close each connection after M round trips and open its replacement
    /// at once (connections/s and connect latency: the accept path's benchmark).
    #[arg(long, value_name = "M", value_parser = clap::value_parser!(u64).range(1..))]
    churn: Option<u64>,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Write the latency distribution to FILE in HdrHistogram's
    /// percentile format (µs; what wrk2 prints and HdrHistogram's plotter reads).
    #[arg(long, value_name = "FILE")]
    hgrm: Option<std::path::PathBuf>,
    /// Write one CSV row per second to FILE: second, messages, p50 and p99
    /// in µs, errors, open connections.
    #[arg(long, value_name = "FILE")]
    timeline: Option<std::path::PathBuf>,
    /// Send this instead of the echo pattern; repeat it for several,
    /// sent in turn on each connection. Escapes \r \n \t \\ \0 \xHH;
    /// {seq} {conn} {key:N} {rand:N} {pad:N}, {{ and }} for braces.
    #[arg(long, value_name = "TEMPLATE", value_parser = request_template)]
    request: Vec<load::template::Template>,
    /// Where each reply ends: echo, line, bytes:N, len32, until:STR, resp
    /// (Redis) or http (HTTP/1.1). Default: echo, or line with --request.
    #[arg(long, value_name = "FRAMING", value_parser = reply_framing)]
    reply: Option<load::reply::Framing>,
    /// Every reply must begin with PREFIX (escapes as in --request), or it
    /// is an error; the first that does not is shown.
    #[arg(long, value_name = "PREFIX", value_parser = expect_prefix)]
    expect: Option<Prefix>,
    /// Seed of the random parts of --request (default: from the clock,
    /// printed in the summary so the run can be repeated).
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
}

/// `--expect`'s bytes.
#[derive(Clone, Debug)]
struct Prefix(Vec<u8>);

/// A `--request` template; a bad one names its column.
fn request_template(s: &str) -> Result<load::template::Template, String> {
    load::template::Template::parse(s).map_err(|e| e.to_string())
}

/// A `--reply` framing.
fn reply_framing(s: &str) -> Result<load::reply::Framing, String> {
    s.parse()
}

/// `--expect PREFIX`, escapes decoded; not empty.
fn expect_prefix(s: &str) -> Result<Prefix, String> {
    match load::template::unescape(s) {
        Ok(p) if p.is_empty() => Err("expected the bytes every reply begins with".into()),
        Ok(p) => Ok(Prefix(p)),
        Err(e) => Err(e.to_string()),
    }
}

/// Seconds, whole or fractional, ≥ 0.
fn secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if Duration::try_from_secs_f64(v).is_ok() => Ok(v),
        _ => Err(format!("'{s}' is not a number of seconds ≥ 0")),
    }
}

/// A count of at least 1.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("'{s}' is not a whole number ≥ 1")),
    }
}

/// `--workers`: 1 to 1024 (one thread each).
fn workers_count(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=1024).contains(&n) => Ok(n),
        _ => Err(format!("'{s}' is not a whole number from 1 to 1024")),
    }
}

/// A rate: a number above 0.
fn positive_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("'{s}' is not a rate above 0")),
    }
}

/// Seconds as a Duration (load's options).
fn secs_duration(s: &str) -> Result<Duration, String> {
    secs(s).map(Duration::from_secs_f64)
}

/// Seconds, `None` for 0 (a timer switched off).
fn off_if_zero(v: f64) -> Option<Duration> {
    (v > 0.0).then(|| Duration::from_secs_f64(v))
}

/// A `--listen` spec naming one of the services `serve` knows.
fn listen_spec(s: &str) -> Result<ListenSpec, String> {
    let spec: ListenSpec = s.parse()?;
    sockloop::service::check_name(&spec.service)?;
    Ok(spec)
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Send {
            endpoint,
            framing,
            timeout,
        } => client::send(&SendArgs {
            endpoint,
            framing,
            timeout,
        }),
        Command::Chat { endpoint } => client::chat(&ChatArgs { endpoint }),
        Command::Load(a) => load_cmd(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn serve(args: ServeArgs) -> Result<ExitCode, String> {
    let specs = if args.listen.is_empty() {
        vec![
            "upper=tcp://127.0.0.1:12000".parse::<ListenSpec>()?,
            "upper=udp://127.0.0.1:12000".parse::<ListenSpec>()?,
        ]
    } else {
        args.listen
    };
    // The same address twice is a typo, not a runtime "address in use".
    for (i, a) in specs.iter().enumerate() {
        let e = a.endpoint;
        if e.addr.port() != 0 && specs[..i].iter().any(|b| b.endpoint == e) {
            Cli::command()
                .error(
                    clap::error::ErrorKind::ArgumentConflict,
                    format!("--listen: {e} is listed twice"),
                )
                .exit();
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
                // Info, not a warning: on most machines the default
                // --max-conns is above the limit, and that is fine.
                log::info!(
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

fn load_cmd(a: LoadArgs) -> Result<ExitCode, String> {
    let cfg = LoadConfig {
        endpoints: a.endpoints,
        threads: a.threads,
        conns: a.conns,
        size: a.size as usize,
        duration: a.duration,
        pipeline: a.pipeline as usize,
        rate: a.rate,
        connect_rate: a.connect_rate,
        idle: a.idle,
        churn: a.churn,
        request: a.request,
        reply: a.reply,
        expect: a.expect.map(|p| p.0),
        seed: a.seed,
        ..LoadConfig::default()
    };
    // The option rules live with the options (LoadConfig::validate); a
    // broken one is a usage error here.
    if let Err(why) = cfg.validate() {
        Cli::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                format!("load: {why}"),
            )
            .exit();
    }
    let report = load::run(&cfg, &stop_on_signals()?)?;
    let write = |path: &Option<std::path::PathBuf>, flag: &str, text: String| match path {
        Some(p) => std::fs::write(p, text).map_err(|e| format!("{flag} {}: {e}", p.display())),
        None => Ok(()),
    };
    write(&a.hgrm, "--hgrm", report.to_hgrm())?;
    write(&a.timeline, "--timeline", report.to_timeline_csv())?;
    if a.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A stop handle that SIGINT or SIGTERM triggers: the run ends early with
/// the summary of what it measured, and exits as that summary says.
fn stop_on_signals() -> Result<load::Stop, String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = load::Stop::new();
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .map_err(|e| format!("signals: {e}"))?;
    let on_signal = stop.clone();
    std::thread::Builder::new()
        .name("load-signals".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                on_signal.stop();
            }
        })
        .map_err(|e| format!("signals: {e}"))?;
    Ok(stop)
}
