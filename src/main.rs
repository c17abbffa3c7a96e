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

mod report_cli;

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

const SEND_EXAMPLES: &str = "\
Examples:
  printf 'hello\\nworld\\n' | sockloop send tcp://127.0.0.1:12000
  printf 'mississippi\\n' | sockloop send tcp://127.0.0.1:7001
  printf 'ping\\n' | sockloop send udp://127.0.0.1:12000 --timeout 0.5
It ends at the end of input, once every reply has come (or timed out).
A reply that comes after its --timeout answers its own line: it is shown on
stderr as `late reply to line N ...`, never as the reply to a later line.
A server that answers a line with `ERR ...` and closes makes send exit 1.";

const CHAT_EXAMPLES: &str = "\
Examples:
  sockloop chat tcp://127.0.0.1:7002
  sockloop chat udp://127.0.0.1:7004
Type lines to send them; the room's lines appear as they come. Leave with
Ctrl-D (end of input; over UDP this sends /leave) or Ctrl-C. If the server
closes the connection, chat says so and exits 1.";

const LOAD_EXAMPLES: &str = "\
Examples:
  sockloop load tcp://127.0.0.1:7000 --conns 50 --duration 5
  sockloop load tcp://127.0.0.1:7000 --conns 50 --pipeline 16 --size 512 --json
  sockloop load tcp://127.0.0.1:7000 --conns 1000 --rate 20000
  sockloop load tcp://127.0.0.1:7000 --conns 50 --duration 3 --max-rate-at p99=1ms
  sockloop load tcp://127.0.0.1:7000 --idle --conns 19000 --duration 30
  sockloop load udp://127.0.0.1:7000 --conns 8 --pipeline 4 --duration 5   # 8 UDP sockets
  sockloop load tcp://10.0.0.10:7000 --conns 18000 --shard 2/4 --start-at 1764504000 --json
Any request/response protocol, with --request (Redis, then HTTP):
  sockloop load tcp://127.0.0.1:6379 --conns 50 --pipeline 16 --reply resp \\
      --request '*2\\r\\n$3\\r\\nGET\\r\\n$8\\r\\nk{key:10000000}\\r\\n' --expect '$'
  sockloop load tcp://127.0.0.1:8080 --conns 50 --reply http --expect 'HTTP/1.1 200' \\
      --request 'GET / HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n'
Without --request, point it at an echo (or upper) listener. Stop early with Ctrl-C.
Over udp:// each of --conns is a socket, not a connection; options marked
(tcp:// only) are usage errors with udp:// targets.";

const MERGE_EXAMPLES: &str = "\
Examples:
  sockloop merge shard-0.json shard-1.json shard-2.json shard-3.json
  kubectl logs -l batch.kubernetes.io/job-name=sockloop-load --tail=-1 --max-log-requests=20 | sockloop merge -
Exit 2 if a shard is missing or repeated or the shards' options differ (naming which); 1 if any failed.";

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
    /// Serve upper, echo, count and chat over TCP and UDP from one loop
    /// (and the server's counters at GET /metrics).
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
        /// Seconds to wait for each reply (above 0).
        #[arg(long, value_name = "SECS", default_value = "5", value_parser = positive_secs_duration, allow_negative_numbers = true)]
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
    /// Runs (`load --json` files) as one HTML page of charts.
    #[command(after_help = format!("{}\n\n{FOOTER}", report_cli::EXAMPLES))]
    Report(report_cli::ReportArgs),
    /// Merge `load --shard S/N --json` outputs into one run, exactly.
    #[command(after_help = format!("{MERGE_EXAMPLES}\n\n{FOOTER}"))]
    Merge {
        /// Files of `load --shard S/N --json` outputs; `-`: stdin, an object
        /// a line (other lines skipped: `kubectl logs` output goes in as is).
        #[arg(value_name = "FILE", required = true, num_args = 1..)]
        inputs: Vec<String>,
        /// Print one JSON object: load's keys, shards and merged histograms.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
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

#[derive(clap::Args)]
struct LoadArgs {
    /// tcp://HOST:PORT or udp://HOST:PORT of an echo-like service
    /// (IPv6: 'tcp://[::1]:PORT'); several: connections are spread over
    /// them round-robin (all tcp:// or all udp://).
    #[arg(value_name = "PROTO://HOST:PORT", required = true, num_args = 1..)]
    endpoints: Vec<Endpoint>,
    /// Threads, each its own poll loop with its share of the connections
    /// (to drive a server faster than one core of load can).
    #[arg(long, value_name = "T", default_value = "1", value_parser = at_least_one, allow_negative_numbers = true)]
    threads: usize,
    /// Connections to open (udp://: sockets).
    #[arg(long, value_name = "N", default_value = "10", value_parser = at_least_one, allow_negative_numbers = true)]
    conns: usize,
    /// Bytes per message.
    #[arg(long, value_name = "BYTES", default_value = "64", value_parser = |s: &str| whole_in(s, 1u32, 1_048_576), allow_negative_numbers = true)]
    size: u32,
    /// Seconds to run, above 0 (with --idle: to hold the connections once open).
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = positive_secs_duration, allow_negative_numbers = true)]
    duration: Duration,
    /// Messages in flight per connection.
    #[arg(long, value_name = "K", default_value = "1", value_parser = |s: &str| whole_in(s, 1u32, 1024), allow_negative_numbers = true)]
    pipeline: u32,
    /// Total messages per second (default: as fast as replies come);
    /// latency counts from when each was due, and the summary adds the
    /// latency from the actual send and the sends' lateness. (tcp:// only)
    #[arg(long, value_name = "MSGS_PER_SEC", value_parser = positive_rate, allow_negative_numbers = true)]
    rate: Option<f64>,
    /// New connections per second while ramping up.
    #[arg(long, value_name = "CONNS_PER_SEC", default_value = "5000", value_parser = positive_rate, allow_negative_numbers = true)]
    connect_rate: f64,
    /// Seconds a connection attempt may stay unanswered before it counts
    /// as failed ("connect timed out"); never longer than --duration.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = positive_secs_duration, allow_negative_numbers = true)]
    connect_timeout: Duration,
    /// Open and hold connections without traffic. (tcp:// only)
    #[arg(long, conflicts_with_all = ["churn", "rate"])]
    idle: bool,
    /// Close each connection after M round trips and open its replacement
    /// at once (connections/s and connect latency: the accept path's
    /// benchmark). (tcp:// only)
    #[arg(long, value_name = "M", value_parser = |s: &str| whole_in(s, 1u64, u64::MAX), allow_negative_numbers = true)]
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
    /// Write the run's report to FILE: one self-contained HTML page with the
    /// latency curve, the run second by second and its figures (as
    /// `sockloop report`).
    #[arg(long, value_name = "FILE")]
    html: Option<std::path::PathBuf>,
    /// Search for the highest --rate whose latency quantile stays at or
    /// under DURATION (p50, p90, p99, p99.9; DURATION like 1ms, 500us,
    /// 0.2s): a closed-loop step, then bisection, each step --duration
    /// long and printed as it ends; the answer is the last line.
    #[arg(long, value_name = "pNN=DURATION", value_parser = |s: &str| s.parse::<load::LatencyTarget>())]
    max_rate_at: Option<load::LatencyTarget>,
    /// Run shard S of a test split N ways (0 ≤ S < N): connections S, S+N, …
    /// and ⌊(S+1)R/N⌋ − ⌊SR/N⌋ of --rate R (and --connect-rate).
    #[arg(long, value_name = "S/N")]
    shard: Option<load::shard::Shard>,
    /// Start at this wall-clock unix second (a second already past: exit 2).
    #[arg(long, value_name = "UNIX_SECS")]
    start_at: Option<u64>,
    /// Write an HdrHistogram interval log to FILE (an interval a second, µs).
    #[arg(long, value_name = "FILE")]
    hlog: Option<std::path::PathBuf>,
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

/// Seconds, whole or fractional, from 0 to `MAX_SECS` (about 31 years:
/// more is a typo, and would overflow the loop's millisecond clock).
fn secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=defaults::MAX_SECS).contains(&v) => Ok(v),
        _ => Err(format!(
            "'{s}' is not a number of seconds from 0 to {}",
            defaults::MAX_SECS
        )),
    }
}

/// A count of at least 1.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("'{s}' is not a whole number ≥ 1")),
    }
}

/// A whole number from `lo` to `hi`, said the way a user reads it (and
/// for `-5` too, which clap would otherwise take for an option and answer
/// with "use `-- -5`": that would make `-5` a positional argument).
fn whole_in<T>(s: &str, lo: T, hi: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy + Bounded,
{
    match s.parse::<T>() {
        Ok(n) if lo <= n && n <= hi => Ok(n),
        _ if hi == T::MAX => Err(format!("'{s}' is not a whole number ≥ {lo}")),
        _ => Err(format!("'{s}' is not a whole number from {lo} to {hi}")),
    }
}

/// The largest value of an integer type (what "no upper bound" means to
/// [`whole_in`]).
trait Bounded {
    const MAX: Self;
}
impl Bounded for u32 {
    const MAX: u32 = u32::MAX;
}
impl Bounded for u64 {
    const MAX: u64 = u64::MAX;
}
impl Bounded for usize {
    const MAX: usize = usize::MAX;
}

/// A rate: a number above 0.
fn positive_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("'{s}' is not a rate above 0")),
    }
}

/// Seconds above 0, as a Duration (a wait or a run that must last).
fn positive_secs_duration(s: &str) -> Result<Duration, String> {
    match secs(s) {
        Ok(v) if v > 0.0 => Ok(Duration::from_secs_f64(v)),
        _ => Err(format!("'{s}' is not a number of seconds above 0")),
    }
}

/// Seconds, `None` for 0 (a timer switched off).
fn off_if_zero(v: f64) -> Option<Duration> {
    (v > 0.0).then(|| Duration::from_secs_f64(v))
}

/// A `--listen` spec naming one of the services `serve` knows.
fn listen_spec(s: &str) -> Result<ListenSpec, String> {
    let spec: ListenSpec = s.parse().map_err(|e: sockloop::AddrError| e.to_string())?;
    sockloop::service::check_name(&spec.service)?;
    if spec.service == sockloop::service::metrics::NAME {
        sockloop::service::metrics::check(&spec)?;
    }
    Ok(spec)
}

/// A usage error found after parsing, shown as clap shows its own: the
/// `error:` line, then the usage of the sub-command `sub` (not the top
/// level's, which would not say how to write it). Exits 2.
fn usage_error(sub: &str, msg: impl std::fmt::Display) -> ! {
    let mut cli = Cli::command();
    cli.build(); // gives each sub-command its full name, `sockloop serve`
    let cmd = cli
        .find_subcommand_mut(sub)
        .expect("usage_error names a sub-command");
    cmd.error(clap::error::ErrorKind::ArgumentConflict, msg)
        .exit()
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
        Command::Report(a) => report_cli::run(a),
        Command::Merge { inputs, json } => merge_cmd(&inputs, json),
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

fn load_cmd(a: LoadArgs) -> Result<ExitCode, String> {
    let cfg = LoadConfig {
        endpoints: a.endpoints.clone(),
        threads: a.threads,
        conns: a.conns,
        size: a.size as usize,
        duration: a.duration,
        pipeline: a.pipeline as usize,
        rate: a.rate,
        connect_rate: a.connect_rate,
        idle: a.idle,
        churn: a.churn,
        max_rate_at: a.max_rate_at.clone(),
        connect_timeout: a.connect_timeout,
        shard: a.shard,
        start_at: a.start_at,
        request: a.request.clone(),
        reply: a.reply.clone(),
        expect: a.expect.as_ref().map(|p| p.0.clone()),
        seed: a.seed,
    };
    // The option rules live with the options (LoadConfig::validate): a
    // broken one is a usage error. So is a --start-at already past.
    let start = a.start_at.map_or(Ok(Duration::ZERO), |at| {
        load::start::until(at, load::start::now_unix())
    });
    if let Err(why) = cfg.validate().and(start) {
        usage_error("load", why);
    }
    let stop = stop_on_signals()?;
    if let Some(target) = &cfg.max_rate_at {
        return max_rate_cmd(&a, &cfg, target, &stop);
    }
    let report = load::run(&cfg, &stop)?;
    write_files(&a, &report)?;
    if a.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    Ok(ExitCode::from(u8::from(!report.ok())))
}

/// `--hgrm` and `--timeline`, if asked.
fn write_files(a: &LoadArgs, report: &load::Report) -> Result<(), String> {
    let write = |path: &Option<std::path::PathBuf>, flag: &str, text: String| match path {
        Some(p) => std::fs::write(p, text).map_err(|e| format!("{flag} {}: {e}", p.display())),
        None => Ok(()),
    };
    write(&a.hgrm, "--hgrm", report.to_hgrm())?;
    write(&a.timeline, "--timeline", report.to_timeline_csv())?;
    if let Some(out) = &a.html {
        let targets: Vec<String> = a.endpoints.iter().map(|e| e.to_string()).collect();
        sockloop::report::write_one(
            out,
            &targets.join(" "),
            &report.to_json(),
            &report.latency_ns,
        )?;
    }
    if let Some(p) = &a.hlog {
        std::fs::write(p, report.to_hlog()).map_err(|e| format!("--hlog {}: {e}", p.display()))?;
    }
    Ok(())
}

/// `load --max-rate-at`: the steps as they end (on stdout with the table,
/// on stderr beside the JSON), the answer's step as the summary, and the
/// answer last. Exit 1 if no rate passed.
fn max_rate_cmd(
    a: &LoadArgs,
    cfg: &LoadConfig,
    target: &load::LatencyTarget,
    stop: &load::Stop,
) -> Result<ExitCode, String> {
    let search = load::search(cfg, target, true, stop, |n, step| {
        let line = step.line(n, target);
        if a.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    })?;
    if let Some(best) = search.best() {
        write_files(a, &best.report)?;
        if !a.json {
            print!("{}", best.report.to_table());
        }
    }
    if a.json {
        println!("{}", search.to_json(cfg));
    } else {
        println!("{}", search.answer());
    }
    Ok(ExitCode::from(u8::from(search.max_rate.is_none())))
}

fn merge_cmd(inputs: &[String], json: bool) -> Result<ExitCode, String> {
    use sockloop::merge::{merge_inputs, MergeError};
    let merged = match merge_inputs(inputs) {
        Ok(m) => m,
        Err(MergeError::Usage(why)) => {
            eprintln!("error: merge: {why}");
            return Ok(ExitCode::from(2));
        }
        Err(MergeError::Runtime(why)) => return Err(why),
    };
    print!("{}", merged.output(json));
    Ok(ExitCode::from(u8::from(!merged.ok())))
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
