//! The library embedded in a caller's own `mio::Poll`, next to the
//! caller's sockets, with a service of the caller's own.

mod common;

// The example's source, so its unit test runs with `cargo test`.
#[path = "../examples/embed.rs"]
#[allow(dead_code)]
mod embed_example;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::mpsc;

use common::*;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use sockloop::service::{ConnId, Outbox, Service};
use sockloop::{Endpoint, Options, Proto, Server};

/// Replies with the frame's length; greets each connection.
struct Length;

impl Service for Length {
    fn on_connect(&mut self, _conn: ConnId, _peer: SocketAddr, out: &mut Outbox) {
        out.reply(b"hello");
    }
    fn on_frame(&mut self, _conn: ConnId, _peer: SocketAddr, frame: &[u8], out: &mut Outbox) {
        out.reply(frame.len().to_string().as_bytes());
    }
}

#[test]
fn server_runs_inside_a_foreign_poll_on_its_token_range() {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let tcp = Endpoint {
            proto: Proto::Tcp,
            addr: "127.0.0.1:0".parse().unwrap(),
        };
        let mut server = Server::builder(Options::default())
            .listen_with("length", tcp, None, Box::new(Length))
            .listen(&"echo=udp://127.0.0.1:0".parse().unwrap())
            .build()
            .unwrap();
        let mut poll = Poll::new().unwrap();
        server.register(poll.registry(), 500..600).unwrap();
        // The host's own socket, on a token outside the server's range.
        let mut own = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        poll.registry()
            .register(&mut own, Token(7), Interest::READABLE)
            .unwrap();
        let addrs: Vec<SocketAddr> = server.listeners().map(|(_, e)| e.addr).collect();
        tx.send((addrs, own.local_addr().unwrap(), server.counters()))
            .unwrap();
        let mut events = Events::with_capacity(64);
        loop {
            poll.poll(&mut events, server.next_timeout()).unwrap();
            for ev in events.iter() {
                if ev.token() == Token(7) {
                    let mut buf = [0u8; 16];
                    while let Ok((n, from)) = own.recv_from(&mut buf) {
                        own.send_to(&buf[..n], from).unwrap(); // the host's own echo
                    }
                } else {
                    assert!(server.owns(ev.token()));
                    assert!(server.handle_event(ev));
                }
            }
            server.on_timer();
        }
    });
    let (addrs, own, counters) = rx.recv_timeout(WAIT).unwrap();
    let mut c = connect(addrs[0]);
    assert_eq!(read_line(&mut c), "hello");
    c.write_all(b"four\nsixsix\n").unwrap();
    assert_eq!(read_line(&mut c), "4");
    assert_eq!(read_line(&mut c), "6");
    // Both the host's socket and the server's UDP listener answer.
    let u = udp_client();
    let mut buf = [0u8; 16];
    for to in [own, addrs[1]] {
        u.send_to(b"ping", to).unwrap();
        let (n, from) = u.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"ping"[..], to));
    }
    assert_eq!(counters.snapshot().open, 1);
    assert!(counters.snapshot().frames_in >= 3);
}

#[test]
fn a_token_range_too_small_is_refused() {
    let mut server = Server::bind(
        &["echo=tcp://127.0.0.1:0".parse().unwrap()],
        Options::default(),
    )
    .unwrap();
    let poll = Poll::new().unwrap();
    assert!(server.register(poll.registry(), 10..11).is_err());
}

#[test]
fn connections_beyond_the_token_range_are_refused_like_max_conns() {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut server = Server::bind(
            &["count=tcp://127.0.0.1:0".parse().unwrap()],
            Options::default(),
        )
        .unwrap();
        let mut poll = Poll::new().unwrap();
        // One listener token and room for two connections.
        server.register(poll.registry(), 0..3).unwrap();
        tx.send(server.listeners().next().unwrap().1.addr).unwrap();
        let mut events = Events::with_capacity(64);
        loop {
            poll.poll(&mut events, server.next_timeout()).unwrap();
            for ev in events.iter() {
                server.handle_event(ev);
            }
            server.on_timer();
        }
    });
    let addr = rx.recv_timeout(WAIT).unwrap();
    let mut a = connect(addr);
    let mut b = connect(addr);
    for c in [&mut a, &mut b] {
        c.write_all(b"s\n").unwrap();
        assert_eq!(read_line(c), "1");
    }
    let mut c = connect(addr);
    assert_eq!(read_to_eof(&mut c), sockloop::server::MAX_CONNS_LINE);
}
