//! The `sockloop` command line (docs/protocol.md, "Command line"): the
//! command table and the dispatch. Each sub-command's arguments and the code
//! that runs it are in `cli/` (one file a sub-command). Usage errors exit 2
//! (clap's own, or ours through clap), runtime errors exit 1 with one
//! `error: ...` line.

use std::process::ExitCode;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Parser, Subcommand};

use sockloop::addr::Endpoint;
use sockloop::client::{ChatArgs, SendArgs};
use sockloop::Framing;

use cli::{positive_secs_duration, FOOTER};

mod cli;

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

// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Serve upper, echo, count and chat over TCP and UDP from one loop
    /// (and the server's counters at GET /metrics).
    #[command(after_help = format!("{}\n\n{FOOTER}", cli::serve::EXAMPLES))]
    Serve(cli::serve::ServeArgs),
    /// Send each line of stdin, print each reply.
    #[command(after_help = format!("{}\n\n{FOOTER}", cli::client::SEND_EXAMPLES))]
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
    #[command(after_help = format!("{}\n\n{FOOTER}", cli::client::CHAT_EXAMPLES))]
    Chat {
        /// tcp://HOST:PORT or udp://HOST:PORT (IPv6: tcp://[::1]:PORT).
        #[arg(value_name = "PROTO://HOST:PORT")]
        endpoint: Endpoint,
    },
    /// Drive an echo-like service with many connections and report.
    #[command(after_help = format!("{}\n\n{FOOTER}", cli::load::EXAMPLES))]
    Load(cli::load::LoadArgs),
    /// Runs (`load --json` files) as one HTML page of charts.
    #[command(after_help = format!("{}\n\n{FOOTER}", cli::report::EXAMPLES))]
    Report(cli::report::ReportArgs),
    /// Merge `load --shard S/N --json` outputs into one run, exactly.
    #[command(after_help = format!("{}\n\n{FOOTER}", cli::merge::EXAMPLES))]
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

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => cli::serve::run(args),
        Command::Send {
            endpoint,
            framing,
            timeout,
        } => cli::client::send(&SendArgs {
            endpoint,
            framing,
            timeout,
        }),
        Command::Chat { endpoint } => cli::client::chat(&ChatArgs { endpoint }),
        Command::Load(a) => cli::load::run(a),
        Command::Report(a) => cli::report::run(a),
        Command::Merge { inputs, json } => cli::merge::run(&inputs, json),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
