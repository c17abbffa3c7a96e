//! Memory and CPU per idle connection: `sockloop serve` (the built binary,
//! default options) holding N idle TCP connections opened from here.
//!
//! `cargo bench --bench idle_memory` — IDLE_CONNS (default 10000; this
//! machine's per-process limit of 20,000 descriptors allows up to about
//! 19,000), IDLE_SECS (CPU sampling window, default 5).
//!
//! RSS is the server's VmRSS from /proc before and after; the growth is
//! user-space memory (kernel socket buffers are not in RSS).

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

fn cpu_secs(pid: u32) -> f64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}

fn main() {
    let n: usize = std::env::var("IDLE_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let secs: u64 = std::env::var("IDLE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let limit = sockloop::raise_fd_limit().unwrap() as usize;
    if n + 64 > limit {
        println!("IDLE_CONNS={n} needs more descriptors than this process may open ({limit}); stopping at the limit");
        return;
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_sockloop"))
        .args([
            "serve",
            "--listen",
            "echo=tcp://127.0.0.1:0",
            "--stats",
            "0.2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr: std::net::SocketAddr = line.trim().rsplit(' ').next().unwrap().parse().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());

    let before = rss_kib(pid);
    let start = Instant::now();
    let conns: Vec<TcpStream> = (0..n).map(|_| TcpStream::connect(addr).unwrap()).collect();
    // The server's stats line says when it has accepted them all.
    let want = format!("open={n} ");
    loop {
        line.clear();
        err.read_line(&mut line).unwrap();
        if line.contains(&want) {
            break;
        }
    }
    let opened = start.elapsed();
    let after = rss_kib(pid);
    let cpu0 = cpu_secs(pid);
    std::thread::sleep(Duration::from_secs(secs)); // the idle window being measured
    let cpu1 = cpu_secs(pid);
    println!(
        "idle connections: {n} (opened and accepted in {:.2} s)",
        opened.as_secs_f64()
    );
    println!("server RSS: {before} KiB -> {after} KiB");
    println!(
        "RSS growth per connection: {:.0} bytes",
        (after - before) as f64 * 1024.0 / n as f64
    );
    println!("size_of::<Conn>() = {} bytes", sockloop::server::CONN_SIZE);
    println!(
        "server CPU while idle: {:.3} s over {secs} s ({:.2} %)",
        cpu1 - cpu0,
        (cpu1 - cpu0) / secs as f64 * 100.0
    );
    drop(conns);
    let _ = child.kill();
    let _ = child.wait();
}
