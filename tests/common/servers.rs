//! Real servers for the protocol tests: `redis-server` and `nginx` from
//! Debian's packages (`.ci/run` installs them), each started on a free
//! port of 127.0.0.1 with its config in a temp dir, ready when it accepts
//! a connection (no sleeping), and stopped when dropped (SIGTERM, so nginx
//! takes its worker with it). A missing binary fails the test loudly: it
//! never passes by skipping.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process, stopped (and its temp dir removed) on drop.
pub struct RealServer {
    pub addr: SocketAddr,
    child: Child,
    dir: PathBuf,
}

impl Drop for RealServer {
    fn drop(&mut self) {
        // SIGTERM first: nginx's master stops its workers only when asked
        // (SIGKILL would orphan them, still serving); SIGKILL if it dawdles.
        // SAFETY: kill(2) on our own child's pid, which we have not reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(3);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The path of `name`, or a failure that says how to get it.
pub fn require(name: &str) -> PathBuf {
    for dir in [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/bin",
        "/usr/local/sbin",
    ] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "{name} is not installed: this test needs it (run .ci/run, or apt-get install -y redis-server redis-tools nginx-light wrk)"
    );
}

/// A port free on 127.0.0.1 now (bound, then released: for a server that
/// takes a port number, not a socket, or for a target nobody listens on).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().unwrap().port()
}

/// A fresh temp dir of this test process.
fn temp_dir(what: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "sockloop-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Start `cmd` and wait until `addr` accepts; a process that exits first
/// (the port was taken after all, a bad config) fails with its output.
fn start(mut cmd: Command, addr: SocketAddr, dir: PathBuf, what: &str) -> RealServer {
    let log = std::fs::File::create(dir.join("out.log")).expect("log file");
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    let child = cmd.spawn().unwrap_or_else(|e| panic!("start {what}: {e}"));
    let mut s = RealServer { addr, child, dir };
    let deadline = Instant::now() + super::WAIT;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return s;
        }
        if let Ok(Some(status)) = s.child.try_wait() {
            let out = std::fs::read_to_string(s.dir.join("out.log")).unwrap_or_default();
            panic!("{what} exited ({status}) before accepting on {addr}:\n{out}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} not accepting on {addr} within {:?}",
            super::WAIT
        );
        // Not a sleep for synchronisation: a pause between connect probes.
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `redis-server --port P --save ''` on 127.0.0.1.
pub fn redis() -> RealServer {
    let bin = require("redis-server");
    let port = free_port();
    let dir = temp_dir("redis");
    let mut cmd = Command::new(bin);
    cmd.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
    ])
    .args(["--appendonly", "no", "--daemonize", "no", "--dir"])
    .arg(&dir);
    start(
        cmd,
        SocketAddr::from(([127, 0, 0, 1], port)),
        dir,
        "redis-server",
    )
}

/// The 100-byte file nginx serves at `/`.
pub const NGINX_FILE: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopq\n";

/// nginx, one worker, `daemon off;`, serving `/` (a 100-byte file with
/// `Content-Length`) and `/chunked` (the same file through `sub_filter`,
/// which drops the length, so nginx answers HTTP/1.1 chunked).
pub fn nginx() -> RealServer {
    let bin = require("nginx");
    let port = free_port();
    let dir = temp_dir("nginx");
    let root = dir.join("www");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("index.html"), NGINX_FILE).unwrap();
    std::fs::write(root.join("chunked.html"), NGINX_FILE).unwrap();
    let d = dir.display();
    let conf = format!(
        "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/tmp;\n  proxy_temp_path {d}/tmp;\n\
         fastcgi_temp_path {d}/tmp;\n  uwsgi_temp_path {d}/tmp;\n  scgi_temp_path {d}/tmp;\n\
         keepalive_requests 100000000;\n  server {{\n    listen 127.0.0.1:{port};\n    root {d}/www;\n\
         location = / {{ try_files /index.html =404; }}\n\
         location = /chunked {{ default_type text/html; sub_filter_types *; sub_filter 'zzz' 'y'; try_files /chunked.html =404; }}\n\
         }}\n}}\n"
    );
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let mut cmd = Command::new(bin);
    cmd.arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"));
    start(cmd, SocketAddr::from(([127, 0, 0, 1], port)), dir, "nginx")
}

/// Run `sockloop load ARGS`; fail (never hang) if it is not done within
/// the run's duration plus WAIT. (exit code, stdout, stderr).
pub fn load(args: &[&str]) -> (i32, String, String) {
    use std::time::Instant;
    let mut child = super::bin()
        .arg("load")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn load");
    let deadline = Instant::now() + std::time::Duration::from_secs(5) + super::WAIT;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("load {args:?} still running after {:?}", deadline.elapsed());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code().unwrap_or(-1), out, err)
}

/// `load ... --json`, exit 0 required: the JSON.
pub fn load_ok(args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--json");
    let (code, out, err) = load(&a);
    assert_eq!(
        code, 0,
        "load {args:?} exit {code}\nstdout: {out}\nstderr: {err}"
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

pub fn target(addr: std::net::SocketAddr) -> String {
    format!("tcp://{addr}")
}
