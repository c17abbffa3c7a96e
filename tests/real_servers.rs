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
