//! Echo throughput and CPU per message: sockloop next to a small tokio
//! echo server, both on one thread each, in the same run, driven by the
//! same `load` generator (also on a thread of its own, in this process).
//!
//! `cargo bench --bench echo_vs_tokio` — knobs: BENCH_SECS (default 5),
//! BENCH_CONNS (50), BENCH_SIZE (64), BENCH_PIPELINE (1).
//!
//! CPU is each thread's user+sys time from /proc/self/task/*/stat, so the
//! figures are per-thread: server and load generator apart.

use std::collections::HashMap;
use std::fs;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use sockloop::load::{self, LoadConfig};
use sockloop::{Endpoint, Options, Proto, Server};

fn env(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (thread name, CPU seconds user + sys) from one /proc stat file.
fn stat_cpu(path: &std::path::Path) -> Option<(String, f64)> {
    let stat = fs::read_to_string(path).ok()?;
    // comm is in parentheses and may hold spaces: split after the last ')'.
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let (u, s): (f64, f64) = (f[11].parse().ok()?, f[12].parse().ok()?);
    // USER_HZ, the unit of these fields, is 100 on Linux.
    Some((stat[open + 1..close].to_string(), (u + s) / 100.0))
}

/// CPU seconds of each thread of this process, by name.
fn thread_cpu() -> HashMap<String, f64> {
    fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| stat_cpu(&t.path().join("stat")))
        .collect()
}

/// CPU seconds of the calling thread.
fn own_cpu() -> f64 {
    stat_cpu(std::path::Path::new("/proc/thread-self/stat")).map_or(0.0, |(_, c)| c)
}

fn start_sockloop() -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name("sockloop-srv".into())
        .spawn(move || {
            let spec = "echo=tcp://127.0.0.1:0".parse().unwrap();
            let server = Server::bind(&[spec], Options::default()).unwrap();
            tx.send(server.listeners().next().unwrap().1.addr).unwrap();
            server.run().unwrap();
        })
        .unwrap();
    rx.recv().unwrap()
}

fn start_tokio() -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name("tokio-srv".into())
        .spawn(move || {
            // One thread, like sockloop: a current-thread runtime.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
                .unwrap();
            rt.block_on(async move {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(l.local_addr().unwrap()).unwrap();
                loop {
                    let (mut s, _) = l.accept().await.unwrap();
                    let _ = s.set_nodelay(true);
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            match s.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => {
                                    if s.write_all(&buf[..n]).await.is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                    });
                }
            });
        })
        .unwrap();
    rx.recv().unwrap()
}

fn main() {
    let secs = env("BENCH_SECS", 5.0);
    let conns = env("BENCH_CONNS", 50.0) as usize;
    let size = env("BENCH_SIZE", 64.0) as usize;
    let pipeline = env("BENCH_PIPELINE", 1.0) as usize;
    let servers = [
        ("sockloop", "sockloop-srv", start_sockloop()),
        ("tokio", "tokio-srv", start_tokio()),
    ];
    println!("echo: {conns} connections, {size}-byte messages, pipeline {pipeline}, {secs} s each");
    println!("| server | msgs/s | MB/s | p50 µs | p99 µs | p99.9 µs | server CPU µs/msg | load CPU µs/msg |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut rates = HashMap::new();
    for (name, thread_name, addr) in servers {
        let cfg = LoadConfig {
            endpoints: vec![Endpoint {
                proto: Proto::Tcp,
                addr,
            }],
            threads: 1,
            conns,
            size,
            duration: Duration::from_secs_f64(secs),
            pipeline,
            rate: None,
            connect_rate: 5000.0,
            idle: false,
            churn: None,
            ..LoadConfig::default()
        };
        let load_thread = thread::Builder::new().name("load-gen".into());
        let before = thread_cpu();
        let (report, load_cpu) = load_thread
            .spawn(move || {
                let c0 = own_cpu();
                let r = load::run_with_progress(&cfg, false, &load::Stop::new());
                (r, own_cpu() - c0)
            })
            .unwrap()
            .join()
            .unwrap();
        let report = report.expect("load");
        let after = thread_cpu();
        let cpu =
            |t: &str| after.get(t).copied().unwrap_or(0.0) - before.get(t).copied().unwrap_or(0.0);
        // CPU covers the ramp too; it is short next to the run.
        let per_msg = |secs: f64| secs / report.messages.max(1) as f64 * 1e6;
        println!(
            "| {name} | {:.0} | {:.2} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} |",
            report.messages_per_sec(),
            report.mb_per_sec(),
            report.latency_us(0.5),
            report.latency_us(0.99),
            report.latency_us(0.999),
            per_msg(cpu(thread_name)),
            per_msg(load_cpu),
        );
        assert_eq!(report.errors, 0, "{name}: reply errors");
        rates.insert(name, report.messages_per_sec());
    }
    println!(
        "sockloop / tokio throughput ratio: {:.2}",
        rates["sockloop"] / rates["tokio"]
    );
}
