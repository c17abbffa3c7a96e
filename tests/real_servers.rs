//! `load --request/--reply` against real servers: redis-server and nginx
//! (Debian's packages, started by `common::servers`), and a server that
//! answers garbage. A missing server fails the test, loudly.

mod common;

use std::io::{Read, Write};

use common::servers::{self, load, load_ok, target};
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
