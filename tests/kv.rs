//! `examples/kv.rs` served for real: its protocol over a socket, with two
//! connections keeping separate `STATS`; and connection ids that stay
//! unique across 10,000 connect/close cycles.

mod common;

// The example's own source, so that its unit tests (the service tested
// with byte slices, no sockets) run here with `cargo test`; the example
// binary itself is run below.
#[path = "../examples/kv.rs"]
#[allow(dead_code)]
mod kv_example;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;

use common::*;
use sockloop::service::{ConnId, Outbox, Service};
use sockloop::{Endpoint, Options, Proto, Server};

#[test]
fn kv_example_over_a_socket_with_per_connection_stats() {
    let exe = std::env::current_exe().unwrap();
    let kv = exe.parent().unwrap().parent().unwrap().join("examples/kv");
    let mut child = Command::new(kv)
        .arg("0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let addr: SocketAddr = first.trim().rsplit(' ').next().unwrap().parse().unwrap();
    let mut a = connect(addr);
    let mut b = connect(addr);
    let ask = |s: &mut TcpStream, line: &str| {
        s.write_all(format!("{line}\n").as_bytes()).unwrap();
        read_line(s)
    };
    assert_eq!(ask(&mut a, "SET greeting hello there"), "OK");
    assert_eq!(ask(&mut b, "GET greeting"), "hello there");
    assert_eq!(ask(&mut b, "DEL greeting"), "1");
    assert_eq!(ask(&mut a, "GET greeting"), "NIL");
    assert_eq!(ask(&mut a, "STATS"), "commands 3");
    assert_eq!(ask(&mut b, "STATS"), "commands 3");
    assert_eq!(ask(&mut b, "STATS"), "commands 4");
    assert_eq!(ask(&mut a, "HELLO"), "ERR unknown command");
    let _ = child.kill();
    let _ = child.wait();
}

/// Records every id it is told of, connect and disconnect.
struct Ids(Arc<Mutex<(HashSet<ConnId>, usize, usize)>>);

impl Service for Ids {
    fn on_connect(&mut self, conn: ConnId, _: SocketAddr, _: &mut Outbox) {
        let mut g = self.0.lock().unwrap();
        assert!(g.0.insert(conn), "{conn} given twice");
        g.1 += 1;
    }
    fn on_frame(&mut self, _: ConnId, _: SocketAddr, _: &[u8], _: &mut Outbox) {}
    fn on_disconnect(&mut self, conn: ConnId, _: SocketAddr, _: &mut Outbox) {
        let mut g = self.0.lock().unwrap();
        assert!(g.0.contains(&conn), "{conn} left without joining");
        g.2 += 1;
    }
}

#[test]
fn connection_ids_are_never_reused_across_10000_cycles() {
    let seen = Arc::new(Mutex::new((HashSet::new(), 0, 0)));
    let (tx, rx) = mpsc::channel();
    let s2 = Arc::clone(&seen);
    thread::spawn(move || {
        let ep = Endpoint {
            proto: Proto::Tcp,
            addr: "127.0.0.1:0".parse().unwrap(),
        };
        let server = Server::builder(Options::default())
            .listen_with("ids", ep, None, Box::new(Ids(s2)))
            .build()
            .unwrap();
        tx.send(server.listeners().next().unwrap().1.addr).unwrap();
        server.run().unwrap();
    });
    let addr = rx.recv_timeout(WAIT).unwrap();
    const N: usize = 10_000;
    for _ in 0..N {
        // Each closes before the next connects: slab slot 0 is reused
        // every time; the id must not be.
        drop(TcpStream::connect(addr).unwrap());
    }
    assert!(
        eventually(|| seen.lock().unwrap().2 == N),
        "every disconnect seen"
    );
    let g = seen.lock().unwrap();
    assert_eq!(
        (g.0.len(), g.1),
        (N, N),
        "{N} connections, {N} distinct ids"
    );
}
