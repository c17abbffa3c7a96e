//! The chat room over TCP and UDP.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use sockloop::Options;

fn me(s: &TcpStream) -> String {
    s.local_addr().unwrap().to_string()
}

#[test]
fn three_clients_hear_each_other_not_themselves() {
    let srv = serve(&["chat=tcp://127.0.0.1:0"], Options::default());
    let mut a = connect(srv.addrs[0]);
    let mut b = connect(srv.addrs[0]);
    assert_eq!(read_line(&mut a), format!("* {} joined", me(&b)));
    let mut c = connect(srv.addrs[0]);
    assert_eq!(read_line(&mut a), format!("* {} joined", me(&c)));
    assert_eq!(read_line(&mut b), format!("* {} joined", me(&c)));

    a.write_all(b"hi all\n").unwrap();
    assert_eq!(read_line(&mut b), format!("{}: hi all", me(&a)));
    assert_eq!(read_line(&mut c), format!("{}: hi all", me(&a)));
    b.write_all(b"hey\r\n").unwrap();
    assert_eq!(read_line(&mut a), format!("{}: hey", me(&b)));
    assert_eq!(read_line(&mut c), format!("{}: hey", me(&b)));

    // A never got its own line back: the next thing it hears is C leaving.
    let c_addr = me(&c);
    drop(c);
    assert_eq!(read_line(&mut a), format!("* {c_addr} left"));
    assert_eq!(read_line(&mut b), format!("* {c_addr} left"));
}

#[test]
fn slow_reader_is_cut_off_and_the_room_goes_on() {
    let opts = Options {
        write_buffer: 64 * 1024,
        ..Options::default()
    };
    let srv = serve(&["chat=tcp://127.0.0.1:0"], opts);
    // The slow one never reads, and says so to the kernel: a tiny receive
    // window, so what it does not read backs up into the server.
    let slow = {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.set_recv_buffer_size(4096).unwrap();
        s.connect(&srv.addrs[0].into()).unwrap();
        TcpStream::from(s)
    };
    let slow_addr = me(&slow);
    let mut talker = connect(srv.addrs[0]);
    let listener = connect(srv.addrs[0]);
    assert_eq!(
        read_line(&mut talker),
        format!("* {} joined", me(&listener))
    );

    // The listener reads everything on a thread and reports the leave.
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        // Buffered: a listener reading a byte per syscall would itself be
        // too slow a reader, and rightly cut off.
        let mut listener = std::io::BufReader::with_capacity(1 << 16, listener);
        let mut saw_left = false;
        loop {
            let mut line = String::new();
            assert!(
                std::io::BufRead::read_line(&mut listener, &mut line).unwrap() > 0,
                "listener cut off"
            );
            let line = line.trim_end_matches('\n');
            if line == format!("* {slow_addr} left") {
                saw_left = true;
                let _ = tx.send(());
            }
            if line.ends_with(": still talking") {
                return saw_left;
            }
        }
    });
    let line = vec![b'x'; 8191];
    let mut sent = 0;
    while rx.try_recv().is_err() {
        talker.write_all(&line).unwrap();
        talker.write_all(b"\n").unwrap();
        sent += line.len() + 1;
        assert!(
            sent < 64 << 20,
            "the slow reader was never cut off: {:?}",
            srv.counters.snapshot()
        );
    }
    talker.write_all(b"still talking\n").unwrap();
    assert!(
        reader.join().unwrap(),
        "listener saw the slow reader leave, then kept hearing"
    );
    // Cut off means closed: after what the kernel already held, EOF.
    let mut slow = slow;
    slow.set_read_timeout(Some(WAIT)).unwrap();
    assert!(closed_by_server(&mut slow));
    // Bounded by --write-buffer plus what one read (64 KiB) fans out.
    assert!(srv.counters.snapshot().peak_conn_pending <= 2 * 64 * 1024 + 1024);
}

#[test]
fn udp_room_relays_to_other_members_until_they_leave() {
    let srv = serve(&["chat=udp://127.0.0.1:0"], Options::default());
    let x = udp_client();
    let y = udp_client();
    let (xa, ya) = (x.local_addr().unwrap(), y.local_addr().unwrap());
    let mut buf = [0u8; 256];
    x.send_to(b"hello?", srv.addrs[0]).unwrap(); // x joins; no one to tell
    y.send_to(b"hi x", srv.addrs[0]).unwrap(); // y joins
    let n = x.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], format!("{ya}: hi x").as_bytes());
    x.send_to(b"hi y", srv.addrs[0]).unwrap();
    let n = y.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], format!("{xa}: hi y").as_bytes());

    y.send_to(b"/leave", srv.addrs[0]).unwrap();
    // Once y has left, x talks to an empty room; a third member proves
    // the room still works and that x's words reach only members.
    let z = udp_client();
    z.send_to(b"z here", srv.addrs[0]).unwrap();
    let n = x.recv(&mut buf).unwrap();
    assert_eq!(
        &buf[..n],
        format!("{}: z here", z.local_addr().unwrap()).as_bytes()
    );
    y.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(y.recv(&mut buf).is_err(), "y left: it hears nothing more");
}
