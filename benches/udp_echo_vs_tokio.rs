//! UDP echo: sockloop (`recvmmsg`/`sendmmsg`, up to 32 datagrams a call)
//! next to a tokio current-thread UDP echo (`recv_from`/`send_to`, one
//! datagram a call), in the same run, alternating, driven by the same
//! `load udp://` generator.
//!
//! `cargo bench --bench udp_echo_vs_tokio` — knobs: BENCH_SECS (default 4
//! per round), BENCH_ROUNDS (2), BENCH_CONNS (50 sockets), BENCH_PIPELINE
//! (16 datagrams in flight each), BENCH_SIZES (`64,512`).
//!
//! Both servers run on CPU 0 and the generator on CPU 1 (each thread pins
//! itself). Syscalls are counted by the kernel, per server thread, with
//! `perf stat -e syscalls:sys_enter_*` for the length of each round (when
//! `perf` is missing or not allowed, that column says n/a); CPU per
//! datagram is the thread's user+sys time from /proc.

use std::fs;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use sockloop::load::{self, LoadConfig};
use sockloop::{Endpoint, Options, Proto, Server};

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// Pin the calling thread to one CPU.
fn pin(cpu: usize) {
    // SAFETY: cpu_set_t is a plain bit set (all-zero is empty); CPU_SET
    // writes inside it; sched_setaffinity(0, ...) reads it for the calling
    // thread only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// The kernel's id of the calling thread (what perf's `-t` takes).
fn tid() -> i32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::gettid() }
}

/// A thread's CPU seconds (user + sys) from /proc.
fn cpu_of(tid: i32) -> f64 {
    let Ok(stat) = fs::read_to_string(format!("/proc/self/task/{tid}/stat")) else {
        return 0.0;
    };
    let Some(close) = stat.rfind(')') else {
        return 0.0;
    };
    let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let (u, s): (f64, f64) = (f[11].parse().unwrap_or(0.0), f[12].parse().unwrap_or(0.0));
    (u + s) / 100.0 // USER_HZ
}

fn start_sockloop() -> (SocketAddr, i32) {
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name("sockloop-udp".into())
        .spawn(move || {
            pin(0);
            let spec = "echo=udp://127.0.0.1:0".parse().unwrap();
            let server = Server::bind(&[spec], Options::default()).unwrap();
            tx.send((server.listeners().next().unwrap().1.addr, tid()))
                .unwrap();
            server.run().unwrap();
        })
        .unwrap();
    rx.recv().unwrap()
}

/// The loop a tokio user writes: receive one, send it back, again.
fn start_tokio() -> (SocketAddr, i32) {
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name("tokio-udp".into())
        .spawn(move || {
            pin(0);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
                .unwrap();
            rt.block_on(async move {
                let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
                tx.send((s.local_addr().unwrap(), tid())).unwrap();
                let mut buf = vec![0u8; 65_536];
                loop {
                    if let Ok((n, peer)) = s.recv_from(&mut buf).await {
                        let _ = s.send_to(&buf[..n], peer).await;
                    }
                }
            });
        })
        .unwrap();
    rx.recv().unwrap()
}

/// `perf stat` counting these syscalls of one thread until stopped.
struct SyscallCount(Option<std::process::Child>);

impl SyscallCount {
    fn start(tid: i32, calls: &[&str]) -> Self {
        let events: Vec<String> = calls
            .iter()
            .map(|c| format!("syscalls:sys_enter_{c}"))
            .collect();
        let child = Command::new("perf")
            .args(["stat", "-x", ",", "-e", &events.join(","), "-t"])
            .arg(tid.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .ok();
        // perf needs a moment to attach before the round starts.
        thread::sleep(Duration::from_millis(300));
        SyscallCount(child)
    }

    /// Each syscall's count, in the order asked, or None without perf.
    fn stop(self) -> Option<Vec<u64>> {
        let child = self.0?;
        // SAFETY: kill only sends a signal to our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let out = child.wait_with_output().ok()?;
        let text = String::from_utf8_lossy(&out.stderr);
        let counts: Vec<u64> = text
            .lines()
            .filter(|l| l.contains("syscalls:sys_enter_"))
            .map(|l| l.split(',').next().unwrap_or("").parse().unwrap_or(0))
            .collect();
        (!counts.is_empty()).then_some(counts)
    }
}

fn main() {
    let secs: f64 = env("BENCH_SECS", "4").parse().unwrap();
    let rounds: usize = env("BENCH_ROUNDS", "2").parse().unwrap();
    let conns: usize = env("BENCH_CONNS", "50").parse().unwrap();
    let pipeline: usize = env("BENCH_PIPELINE", "16").parse().unwrap();
    let sizes: Vec<usize> = env("BENCH_SIZES", "64,512")
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect();
    let servers = [
        (
            "sockloop",
            start_sockloop(),
            ["recvmmsg", "sendmmsg", "epoll_wait"],
        ),
        ("tokio", start_tokio(), ["recvfrom", "sendto", "epoll_wait"]),
    ];
    println!(
        "UDP echo: {conns} sockets x {pipeline} datagrams in flight, {secs} s a round, {rounds} rounds, server CPU 0, load CPU 1"
    );
    println!("| size | server | datagrams/s | lost % | p50 µs | p99 µs | server CPU µs/dgram | recv calls/dgram | send calls/dgram | epoll_wait/dgram |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for &size in &sizes {
        let mut rates = [0.0f64; 2];
        for _ in 0..rounds {
            for (k, (name, (addr, tid), calls)) in servers.iter().enumerate() {
                let cfg = LoadConfig {
                    endpoints: vec![Endpoint {
                        proto: Proto::Udp,
                        addr: *addr,
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
                let perf = SyscallCount::start(*tid, calls);
                let cpu0 = cpu_of(*tid);
                let report = thread::Builder::new()
                    .name("load-udp".into())
                    .spawn(move || {
                        pin(1);
                        load::run_with_progress(&cfg, false, &load::Stop::new())
                    })
                    .unwrap()
                    .join()
                    .unwrap()
                    .expect("load");
                let cpu = cpu_of(*tid) - cpu0;
                let counts = perf.stop();
                // Datagrams the server answered: those the generator got
                // back (a lost one cost the server little or nothing).
                let n = report.messages.max(1) as f64;
                let per = |i: usize| {
                    counts
                        .as_ref()
                        .and_then(|c| c.get(i))
                        .map_or("n/a".to_string(), |&c| format!("{:.3}", c as f64 / n))
                };
                let lost = report.datagrams_lost.unwrap_or(0) as f64;
                println!(
                    "| {size} | {name} | {:.0} | {:.2} | {:.0} | {:.0} | {:.2} | {} | {} | {} |",
                    report.messages_per_sec(),
                    100.0 * lost / (n + lost),
                    report.latency_us(0.5),
                    report.latency_us(0.99),
                    cpu / n * 1e6,
                    per(0),
                    per(1),
                    per(2),
                );
                assert_eq!(report.errors, 0, "{name}: wrong replies");
                rates[k] += report.messages_per_sec();
            }
        }
        println!(
            "{size} B: sockloop / tokio datagrams/s: {:.2}",
            rates[0] / rates[1]
        );
    }
}
