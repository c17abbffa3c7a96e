//! `sockloop load`: its arguments, the `LoadConfig` they make (whose
//! `validate` holds the option rules), the files it writes, `--max-rate-at`'s
//! search, and the signals that stop a run early (docs/protocol.md, "load").

use std::process::ExitCode;
use std::time::Duration;

use sockloop::addr::Endpoint;
use sockloop::load::{self, LoadConfig};

use super::{at_least_one, positive_rate, positive_secs_duration, usage_error, whole_in};

/// Said at the end of `load --help`.
pub(crate) const EXAMPLES: &str = "\
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

#[derive(clap::Args)]
pub(crate) struct LoadArgs {
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
pub(crate) struct Prefix(Vec<u8>);

/// A `--request` template; a bad one names its column.
pub(crate) fn request_template(s: &str) -> Result<load::template::Template, String> {
    load::template::Template::parse(s).map_err(|e| e.to_string())
}

/// A `--reply` framing.
pub(crate) fn reply_framing(s: &str) -> Result<load::reply::Framing, String> {
    s.parse()
}

/// `--expect PREFIX`, escapes decoded; not empty.
pub(crate) fn expect_prefix(s: &str) -> Result<Prefix, String> {
    match load::template::unescape(s) {
        Ok(p) if p.is_empty() => Err("expected the bytes every reply begins with".into()),
        Ok(p) => Ok(Prefix(p)),
        Err(e) => Err(e.to_string()),
    }
}

/// Runs `sockloop load`.
pub(crate) fn run(a: LoadArgs) -> Result<ExitCode, String> {
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
pub(crate) fn write_files(a: &LoadArgs, report: &load::Report) -> Result<(), String> {
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
pub(crate) fn max_rate_cmd(
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

/// A stop handle that SIGINT or SIGTERM triggers: the run ends early with
/// the summary of what it measured, and exits as that summary says.
pub(crate) fn stop_on_signals() -> Result<load::Stop, String> {
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
