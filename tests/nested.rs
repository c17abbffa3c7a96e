//! The server nested in loops that are not mio, through one pollable fd:
//! `examples/in_tokio.rs` and `examples/in_epoll.rs`, run as programs.
//! Both of the host loop's listeners answer; Ctrl-C (SIGINT) from the
//! host stops both, and the server still delivers the replies it owes,
//! ending with a clean EOF.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{read_line, read_to_eof, tcp_queues, WAIT};

fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name)
}

/// Start the example; its (sockloop echo, host's own) addresses.
fn start(
    name: &str,
) -> (
    Child,
    BufReader<std::process::ChildStdout>,
    SocketAddr,
    SocketAddr,
) {
    let mut child = Command::new(example(name))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut addr = || {
        let mut l = String::new();
        out.read_line(&mut l).unwrap();
        l.trim()
            .rsplit(' ')
            .next()
            .unwrap()
            .parse::<SocketAddr>()
            .unwrap()
    };
    let (echo, own) = (addr(), addr());
    (child, out, echo, own)
}

fn connect(a: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(a).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

fn wait_exit(child: &mut Child) -> i32 {
    let end = Instant::now() + WAIT;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        assert!(Instant::now() < end, "did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn nested_in(name: &str, own_answer: &str) {
    let (mut child, mut out, echo, own) = start(name);
    // sockloop's echo, through the nested fd.
    let mut e = connect(echo);
    e.write_all(b"through the fd\n").unwrap();
    assert_eq!(read_line(&mut e), "through the fd");
    // The host loop's own listener, in the same thread.
    let mut o = connect(own);
    o.write_all(b"hi\n").unwrap();
    assert_eq!(read_line(&mut o), own_answer);
    drop(o);
    // Send without reading until the server stops reading us
    // (backpressure: replies above --write-buffer wait in it) and every
    // buffer on the way is full. What it had read by then is owed: the
    // replies to it must all arrive after the signal, in order, then a
    // clean EOF. (Input it had not read is read and thrown away.)
    let pattern = |i: usize| b'a' + (i % 26) as u8;
    let mut w = e.try_clone().unwrap();
    w.set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut sent = 0;
    loop {
        let chunk: Vec<u8> = (sent..sent + 64 * 1024).map(pattern).collect();
        match w.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break, // 200 ms and not a byte taken: all full
        }
        assert!(sent < 1 << 30, "{name}: the server never stopped reading");
    }
    // What the server has read: what we sent, less what is still in our
    // send queue and in its receive queue.
    let (me, it) = (e.local_addr().unwrap(), e.peer_addr().unwrap());
    let (unacked, _) = tcp_queues(me, it);
    let (_, unread) = tcp_queues(it, me);
    let owed = sent - unacked as usize - unread as usize;
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let got = read_to_eof(&mut e);
    eprintln!(
        "{name}: {sent} sent, {owed} owed at the signal, {} back",
        got.len()
    );
    assert!(
        got.len() >= owed && got.iter().enumerate().all(|(i, &b)| b == pattern(i)),
        "{name}: {} bytes back, in order, of the {owed} owed ({sent} sent)",
        got.len()
    );
    // Our FIN lets the server close without waiting out its grace.
    drop((w, e));
    assert_eq!(wait_exit(&mut child), 0, "{name}");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("both stopped"), "{name}: {rest}");
    // The welcoming sockets are closed.
    assert!(TcpStream::connect(echo).is_err());
}

#[test]
fn nested_in_a_tokio_runtime_next_to_its_own_listener() {
    nested_in("in_tokio", "tokio: hi");
}

#[test]
fn nested_in_a_plain_epoll_loop_next_to_its_own_listener() {
    nested_in("in_epoll", "hello from the epoll loop");
}

/// `Nested` is `AsFd`: an outer loop can own it and wait on the fd it
/// lends, which turns readable when the server has work.
#[test]
fn nested_lends_its_fd_as_fd_and_it_turns_readable_on_work() {
    use std::os::fd::{AsFd, AsRawFd};
    fn waits_on<T: AsFd>(t: &T) -> std::os::fd::BorrowedFd<'_> {
        t.as_fd()
    }
    let spec = "echo=tcp://127.0.0.1:0".parse().unwrap();
    let server = sockloop::Server::bind(&[spec], sockloop::Options::default()).unwrap();
    let addr = server.listeners().next().unwrap().1.addr;
    let mut nested = sockloop::Nested::new(server).unwrap();
    let fd = waits_on(&nested).as_raw_fd();
    assert_eq!(fd, nested.as_raw_fd());
    // An outer poller (mio here) waits on the lent fd.
    let mut outer = mio::Poll::new().unwrap();
    outer
        .registry()
        .register(
            &mut mio::unix::SourceFd(&fd),
            mio::Token(7),
            mio::Interest::READABLE,
        )
        .unwrap();
    let mut events = mio::Events::with_capacity(4);
    outer.poll(&mut events, Some(Duration::ZERO)).unwrap();
    assert!(events.is_empty(), "readable with nothing to do");
    let mut client = TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(WAIT)).unwrap();
    outer.poll(&mut events, Some(WAIT)).unwrap();
    assert!(events
        .iter()
        .any(|e| e.token() == mio::Token(7) && e.is_readable()));
    client.write_all(b"ping\n").unwrap();
    let end = Instant::now() + WAIT;
    let mut got = [0u8; 5];
    let mut n = 0;
    while n < 5 {
        nested.turn(Duration::from_millis(10)).unwrap();
        client.set_nonblocking(true).unwrap();
        if let Ok(k) = client.read(&mut got[n..]) {
            n += k;
        }
        assert!(Instant::now() < end, "no echo");
    }
    assert_eq!(&got, b"ping\n");
}

/// The SPEC's promise: nesting in tokio needs no `unsafe` (the example is
/// the proof a user copies from).
#[test]
fn nesting_in_tokio_needs_no_unsafe() {
    let src = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/in_tokio.rs"),
    )
    .unwrap();
    assert!(
        !src.contains("unsafe {") && !src.contains("unsafe fn"),
        "examples/in_tokio.rs uses unsafe"
    );
}
