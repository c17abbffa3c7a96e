//! `load --request/--reply` against real servers: redis-server and nginx
//! (Debian's packages, started by `common::servers`), and a server that
//! answers garbage. A missing server fails the test, loudly.

mod common;

use std::io::{Read, Write};

use common::servers;
use sockloop::load::reply::{Decode, Framing, MAX_REPLY};

/// Send `req` and read until `framing` finds one whole reply.
fn round_trip(addr: std::net::SocketAddr, req: &[u8], framing: &Framing) -> (Vec<u8>, Decode) {
    let mut s = common::connect(addr);
    s.write_all(req).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).expect("read a reply");
        buf.extend_from_slice(&chunk[..n]);
        match framing.decode(&buf, n == 0, MAX_REPLY, 0) {
            Decode::Need(_) => continue,
            d => return (buf, d),
        }
    }
}

#[test]
fn nginx_answers_with_length_at_root_and_chunked_at_chunked() {
    let nginx = servers::nginx();
    let (buf, d) = round_trip(
        nginx.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        &Framing::Http,
    );
    let Decode::Reply {
        len,
        error: false,
        close: false,
    } = d
    else {
        panic!("{d:?}")
    };
    let text = String::from_utf8_lossy(&buf[..len]);
    assert!(
        text.contains("Content-Length: 100") && buf[..len].ends_with(servers::NGINX_FILE),
        "{text}"
    );
    let (buf, d) = round_trip(
        nginx.addr,
        b"GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n",
        &Framing::Http,
    );
    let Decode::Reply {
        len, error: false, ..
    } = d
    else {
        panic!("{d:?}")
    };
    let text = String::from_utf8_lossy(&buf[..len]);
    assert!(
        text.contains("Transfer-Encoding: chunked") && text.ends_with("0\r\n\r\n"),
        "{text}"
    );
}

#[test]
fn redis_answers_inline_ping_with_resp() {
    let redis = servers::redis();
    let (buf, d) = round_trip(redis.addr, b"PING\r\n", &Framing::Resp);
    assert_eq!(
        (&buf[..], d),
        (
            &b"+PONG\r\n"[..],
            Decode::Reply {
                len: 7,
                error: false,
                close: false
            }
        )
    );
}

/// Run `sockloop load ARGS`; fail (never hang) if it is not done within
/// the run's duration plus WAIT. (exit code, stdout, stderr).
fn load(args: &[&str]) -> (i32, String, String) {
    use std::time::Instant;
    let mut child = common::bin()
        .arg("load")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn load");
    let deadline = Instant::now() + std::time::Duration::from_secs(5) + common::WAIT;
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
fn load_ok(args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--json");
    let (code, out, err) = load(&a);
    assert_eq!(
        code, 0,
        "load {args:?} exit {code}\nstdout: {out}\nstderr: {err}"
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn target(addr: std::net::SocketAddr) -> String {
    format!("tcp://{addr}")
}

#[test]
fn redis_ping_inline_with_resp_replies() {
    let redis = servers::redis();
    let t = target(redis.addr);
    let j = load_ok(&[
        &t,
        "--conns",
        "4",
        "--duration",
        "1",
        "--request",
        "PING\\r\\n",
        "--reply",
        "resp",
        "--expect",
        "+PONG",
    ]);
    let m = j["messages"].as_u64().unwrap();
    assert!(m > 100, "{j}");
    assert_eq!(j["errors"], 0, "{j}");
    // Replies are counted over the whole run, warm-up included.
    assert!(j["replies"]["ok"].as_u64().unwrap() >= m, "{j}");
    assert_eq!(j["replies"]["mismatched"], 0, "{j}");
    assert!(j["seed"].is_u64(), "the seed is reported: {j}");
}

#[test]
fn redis_set_get_keys_resp_pipeline_16() {
    let redis = servers::redis();
    let t = target(redis.addr);
    let set = "*3\\r\\n$3\\r\\nSET\\r\\n$3\\r\\nk{key:100}\\r\\n$5\\r\\n{rand:5}\\r\\n";
    let get = "*2\\r\\n$3\\r\\nGET\\r\\n$3\\r\\nk{key:100}\\r\\n";
    let j = load_ok(&[
        &t,
        "--conns",
        "4",
        "--duration",
        "1",
        "--pipeline",
        "16",
        "--request",
        set,
        "--request",
        get,
        "--reply",
        "resp",
        "--seed",
        "7",
    ]);
    let m = j["messages"].as_u64().unwrap();
    assert!(m > 1000 && j["errors"] == 0, "{j}");
    // Pipelined: many requests per write.
    assert!(j["writes"].as_u64().unwrap() * 4 < m, "{j}");
    // The SETs landed under 100 distinct zero-padded keys.
    let (buf, _) = round_trip(redis.addr, b"DBSIZE\r\n", &Framing::Resp);
    let n: u64 = std::str::from_utf8(&buf[1..buf.len() - 2])
        .unwrap()
        .parse()
        .unwrap();
    assert!((50..=100).contains(&n), "DBSIZE {n}");
    let (buf, _) = round_trip(redis.addr, b"GET k07\r\n", &Framing::Resp);
    assert!(
        buf.starts_with(b"$5\r\n"),
        "{:?}",
        String::from_utf8_lossy(&buf)
    );
}

#[test]
fn nginx_keep_alive_content_length_and_chunked() {
    let nginx = servers::nginx();
    let t = target(nginx.addr);
    for path in ["/", "/chunked"] {
        let req = format!("GET {path} HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n");
        let j = load_ok(&[
            &t,
            "--conns",
            "4",
            "--duration",
            "1",
            "--request",
            &req,
            "--reply",
            "http",
            "--expect",
            "HTTP/1.1 200",
        ]);
        let m = j["messages"].as_u64().unwrap();
        assert!(m > 100, "{path}: {j}");
        assert_eq!(j["errors"], 0, "{path}: {j}");
        assert!(j["replies"]["ok"].as_u64().unwrap() >= m, "{path}: {j}");
        assert_eq!(j["replies"]["closes"], 0, "keep-alive: {j}");
        assert_eq!(j["failed"], 0, "{path}: {j}");
    }
}

#[test]
fn http_connection_close_replaces_the_connection() {
    let nginx = servers::nginx();
    let t = target(nginx.addr);
    let req = "GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n";
    let j = load_ok(&[
        &t,
        "--conns",
        "2",
        "--duration",
        "1",
        "--request",
        req,
        "--reply",
        "http",
    ]);
    let m = j["messages"].as_u64().unwrap();
    assert!(m > 20, "{j}");
    assert_eq!(j["errors"], 0, "{j}");
    assert!(
        j["replies"]["closes"].as_u64().unwrap() >= m,
        "every reply closed: {j}"
    );
    assert_eq!(j["lost_connections"], 0, "replaced, not lost: {j}");
}

#[test]
fn http_404_is_an_error_unless_expected() {
    let nginx = servers::nginx();
    let t = target(nginx.addr);
    let req = "GET /nothing HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n";
    let (code, out, _) = load(&[
        &t,
        "--conns",
        "1",
        "--duration",
        "0.5",
        "--request",
        req,
        "--reply",
        "http",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("error reply") && out.contains("HTTP/1.1 404"),
        "{out}"
    );
    load_ok(&[
        &t,
        "--conns",
        "1",
        "--duration",
        "0.5",
        "--request",
        req,
        "--reply",
        "http",
        "--expect",
        "HTTP/1.1 404",
    ]);
}

#[test]
fn expect_mismatch_exits_1_and_shows_the_reply_and_address() {
    let redis = servers::redis();
    let t = target(redis.addr);
    let (code, out, err) = load(&[
        &t,
        "--conns",
        "2",
        "--duration",
        "0.5",
        "--request",
        "PING\\r\\n",
        "--reply",
        "resp",
        "--expect",
        "+PANG",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("+PONG\\r\\n") && out.contains(&t),
        "the reply, escaped, and where from: {out}"
    );
    assert!(out.contains("mismatched"), "{out}");
}

#[test]
fn garbage_answers_are_an_error_not_a_hang() {
    // A server that answers every read with bytes no framing wants.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut b = [0u8; 4096];
                while let Ok(n) = s.read(&mut b) {
                    if n == 0 || s.write_all(b"?garbage\x00\xff\r\n").is_err() {
                        return;
                    }
                }
            });
        }
    });
    let t = target(addr);
    for reply in ["resp", "http"] {
        let (code, out, err) = load(&[
            &t,
            "--conns",
            "2",
            "--duration",
            "1",
            "--request",
            "PING\\r\\n",
            "--reply",
            reply,
        ]);
        assert_eq!(code, 1, "{out}{err}");
        assert!(
            out.contains(&format!("malformed {reply} reply")),
            "{reply}: {out}"
        );
    }
}

#[test]
fn bad_template_or_framing_is_a_usage_error_naming_the_column() {
    for (args, want) in [
        (&["--request", "GET {key:0}"][..], "column 10"),
        (&["--request", "x\\q"][..], "column 3"),
        (&["--reply", "until:\\x4"][..], "column 10"),
        (&["--reply", "smtp"][..], "resp or http"),
        (&["--request", "x", "--expect", "\\z"][..], "column 2"),
    ] {
        let mut a = vec!["tcp://127.0.0.1:9"];
        a.extend_from_slice(args);
        let (code, out, err) = load(&a);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(
            err.starts_with("error:") && err.contains(want),
            "{args:?}: {err}"
        );
    }
}

/// A server that echoes and records what its first connection sent.
fn recording_echo() -> (std::net::SocketAddr, std::sync::mpsc::Receiver<Vec<u8>>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = l.accept() else { return };
        let mut seen = Vec::new();
        let mut b = [0u8; 4096];
        while let Ok(n) = s.read(&mut b) {
            if n == 0 || s.write_all(&b[..n]).is_err() {
                break;
            }
            if seen.len() < 200 {
                seen.extend_from_slice(&b[..n]);
                if seen.len() >= 200 {
                    let _ = tx.send(seen[..200].to_vec());
                }
            }
        }
    });
    (addr, rx)
}

#[test]
fn seed_repeats_the_requests() {
    let run = |seed: &str| {
        let (addr, rx) = recording_echo();
        let t = target(addr);
        load_ok(&[
            &t,
            "--conns",
            "1",
            "--duration",
            "0.3",
            "--request",
            "k{key:1000000} {rand:6}\\n",
            "--reply",
            "line",
            "--seed",
            seed,
        ]);
        rx.recv_timeout(common::WAIT)
            .expect("200 bytes of requests")
    };
    let a = run("9");
    assert_eq!(a, run("9"));
    assert_ne!(a, run("10"));
    assert!(
        a.starts_with(b"k") && a[7] == b' ',
        "{:?}",
        String::from_utf8_lossy(&a)
    );
}

#[test]
fn udp_requests_one_datagram_each_and_expect_applies() {
    let srv = common::serve(&["echo=udp://127.0.0.1:0"], sockloop::Options::default());
    let t = format!("udp://{}", srv.addrs[0]);
    let j = load_ok(&[
        &t,
        "--conns",
        "2",
        "--duration",
        "0.5",
        "--request",
        "hi {seq}\\n",
        "--reply",
        "line",
        "--expect",
        "hi ",
    ]);
    assert!(
        j["messages"].as_u64().unwrap() > 100 && j["errors"] == 0,
        "{j}"
    );
    let (code, out, _) = load(&[
        &t,
        "--conns",
        "1",
        "--duration",
        "0.5",
        "--request",
        "hi {seq}\\n",
        "--reply",
        "line",
        "--expect",
        "HI",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("mismatched") && out.contains("hi 0\\n"),
        "{out}"
    );
}

#[test]
fn rate_threads_churn_several_targets_and_files_work_with_resp() {
    let (a, b) = (servers::redis(), servers::redis());
    let (ta, tb) = (target(a.addr), target(b.addr));
    let dir = std::env::temp_dir().join(format!("sockloop-proto-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (hgrm, csv) = (dir.join("l.hgrm"), dir.join("l.csv"));
    let j = load_ok(&[
        &ta,
        &tb,
        "--conns",
        "4",
        "--threads",
        "2",
        "--duration",
        "1",
        "--rate",
        "2000",
        "--request",
        "PING\\r\\n",
        "--reply",
        "resp",
        "--expect",
        "+PONG",
        "--hgrm",
        hgrm.to_str().unwrap(),
        "--timeline",
        csv.to_str().unwrap(),
    ]);
    let m = j["messages"].as_u64().unwrap();
    assert!((1500..=2500).contains(&m) && j["errors"] == 0, "{j}");
    assert_eq!(j["per_thread_messages"].as_array().unwrap().len(), 2, "{j}");
    assert!(std::fs::read_to_string(&hgrm)
        .unwrap()
        .contains("Percentile"));
    assert!(std::fs::read_to_string(&csv).unwrap().lines().count() >= 2);
    let j = load_ok(&[
        &ta,
        "--conns",
        "2",
        "--duration",
        "1",
        "--churn",
        "5",
        "--request",
        "PING\\r\\n",
        "--reply",
        "resp",
    ]);
    assert!(
        j["churned"].as_u64().unwrap() > 10 && j["errors"] == 0,
        "{j}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
