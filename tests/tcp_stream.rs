//! The loop over TCP: stream transforms (`upper`, `echo`) across every way
//! a byte stream can be cut, half-close, and several listeners in one loop.

mod common;

use std::io::Write;
use std::net::Shutdown;

use common::*;
use sockloop::Options;

#[test]
fn byte_at_a_time_is_answered_byte_by_byte() {
    let srv = serve(
        &["upper=tcp://127.0.0.1:0", "echo=tcp://127.0.0.1:0"],
        Options::default(),
    );
    for (addr, expect) in [
        (srv.addrs[0], b"HELLO, WORLD"),
        (srv.addrs[1], b"hello, world"),
    ] {
        let mut s = connect(addr);
        s.set_nodelay(true).unwrap();
        for (i, b) in b"hello, world".iter().enumerate() {
            s.write_all(&[*b]).unwrap();
            // Each byte comes back before the next is sent: nothing waits
            // for a newline or a fuller buffer.
            assert_eq!(read_n(&mut s, 1), [expect[i]]);
        }
    }
}

#[test]
fn five_megabytes_streamed_while_reading_come_back_intact() {
    let srv = serve(
        &["echo=tcp://127.0.0.1:0", "upper=tcp://127.0.0.1:0"],
        Options::default(),
    );
    let data: Vec<u8> = (0..5_000_000u32)
        .map(|i| b"abcdefghij\n"[(i % 11) as usize])
        .collect();
    for (addr, expect) in [
        (srv.addrs[0], data.clone()),
        (srv.addrs[1], data.to_ascii_uppercase()),
    ] {
        let s = connect(addr);
        let mut reader = s.try_clone().unwrap();
        let writer = write_in_background(s, data.clone());
        let got = read_n(&mut reader, expect.len());
        assert!(got == expect, "stream differs");
        writer.join().unwrap();
    }
}

#[test]
fn utf8_char_split_across_reads_is_uppercased_whole() {
    let srv = serve(&["upper=tcp://127.0.0.1:0"], Options::default());
    let mut s = connect(srv.addrs[0]);
    // "ß" is C3 9F. The reply "A" proves the server has read the first
    // half of the character, and held it back.
    s.write_all(b"a\xc3").unwrap();
    assert_eq!(read_n(&mut s, 1), b"A");
    s.write_all(b"\x9fb").unwrap();
    assert_eq!(read_n(&mut s, 3), b"SSB");
    // A 4-byte character in four pieces.
    for piece in [&b"\xf0"[..], b"\x9f", b"\x98"] {
        s.write_all(piece).unwrap();
    }
    s.write_all(b"\x80!").unwrap();
    assert_eq!(read_n(&mut s, 5), "😀!".as_bytes());
}

#[test]
fn invalid_utf8_is_sent_back_unchanged_and_the_connection_goes_on() {
    let srv = serve(&["upper=tcp://127.0.0.1:0"], Options::default());
    let mut s = connect(srv.addrs[0]);
    s.write_all(b"ab\xff\xfecd").unwrap();
    assert_eq!(read_n(&mut s, 6), b"AB\xff\xfeCD");
    s.write_all(b"ok").unwrap();
    assert_eq!(read_n(&mut s, 2), b"OK");
}

#[test]
fn half_close_delivers_owed_replies() {
    // Room in user space for every reply, so the server reads all of it
    // (and the FIN) while the replies wait: more than the kernel's buffers
    // on the way back can hold (the server's send buffer grows to 4 MiB).
    let opts = Options {
        write_buffer: 16 << 20,
        ..Options::default()
    };
    let srv = serve(&["echo=tcp://127.0.0.1:0", "upper=tcp://127.0.0.1:0"], opts);
    let data: Vec<u8> = (0..6_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    for (i, (addr, want)) in [
        (srv.addrs[0], data.clone()),
        (srv.addrs[1], data.to_ascii_uppercase()),
    ]
    .into_iter()
    .enumerate()
    {
        // A client with a small receive buffer writes it all without
        // reading, then half-closes: the replies cannot all leave, so the
        // server meets our FIN with replies still owed.
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.set_recv_buffer_size(4096).unwrap();
        s.connect(&addr.into()).unwrap();
        let mut s = std::net::TcpStream::from(s);
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(&data).unwrap();
        let read_all = (i as u64 + 1) * data.len() as u64;
        assert!(eventually(|| srv.counters.snapshot().bytes_in == read_all));
        let owed = srv.counters.snapshot().pending_out;
        assert!(
            owed > 0,
            "nothing pending before the half-close: the test tests nothing"
        );
        s.shutdown(Shutdown::Write).unwrap();
        // Only now read: every reply owed, then EOF.
        assert!(read_to_eof(&mut s) == want, "all owed bytes, then EOF");
    }

    // A character cut by the half-close is sent back as it is.
    let mut s = connect(srv.addrs[1]);
    s.write_all(b"x\xc3").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_eof(&mut s), b"X\xc3");
}

#[test]
fn several_listeners_of_different_services_share_one_loop() {
    let srv = serve(
        &[
            "upper=tcp://127.0.0.1:0",
            "echo=tcp://127.0.0.1:0",
            "count=tcp://127.0.0.1:0",
            "upper=udp://127.0.0.1:0",
            "echo=udp://127.0.0.1:0",
        ],
        Options::default(),
    );
    let mut clients: Vec<_> = srv.addrs[..3].iter().map(|a| connect(*a)).collect();
    for c in &mut clients {
        c.write_all(b"sassy\n").unwrap();
    }
    assert_eq!(read_n(&mut clients[0], 6), b"SASSY\n");
    assert_eq!(read_n(&mut clients[1], 6), b"sassy\n");
    assert_eq!(read_n(&mut clients[2], 2), b"3\n");
    let u = udp_client();
    let mut buf = [0u8; 64];
    u.send_to(b"sassy", srv.addrs[3]).unwrap();
    let (n, from) = u.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"SASSY"[..], srv.addrs[3]));
    u.send_to(b"sassy", srv.addrs[4]).unwrap();
    let (n, from) = u.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"sassy"[..], srv.addrs[4]));
}

#[test]
fn ipv6_loopback_listener_works() {
    // CI has ::1 on loopback; a machine without it cannot run this test,
    // and says so by failing (a silent pass would claim IPv6 works).
    if let Err(e) = std::net::TcpListener::bind("[::1]:0") {
        panic!("no IPv6 loopback here ({e}): this test needs ::1 on lo");
    }
    let srv = serve(&["echo=tcp://[::1]:0"], Options::default());
    assert!(srv.addrs[0].is_ipv6());
    let mut s = connect(srv.addrs[0]);
    s.write_all(b"six").unwrap();
    assert_eq!(read_n(&mut s, 3), b"six");
}

#[test]
fn many_clients_at_once_each_get_their_own_bytes() {
    let srv = serve(&["echo=tcp://127.0.0.1:0"], Options::default());
    let mut clients: Vec<_> = (0..200).map(|_| connect(srv.addrs[0])).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.write_all(format!("client {i}\n").as_bytes()).unwrap();
    }
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(read_line(c), format!("client {i}"));
    }
    assert!(eventually(|| srv.counters.snapshot().open == 200));
}
