//! The loop over UDP: whole datagrams, every service, the reflection guard.

mod common;

use std::net::UdpSocket;

use common::*;
use sockloop::Options;

#[test]
fn largest_datagram_comes_back_whole() {
    let srv = serve(
        &["upper=udp://127.0.0.1:0", "echo=udp://127.0.0.1:0"],
        Options::default(),
    );
    let data: Vec<u8> = (0..65_507u32).map(|i| b'a' + (i % 26) as u8).collect();
    let u = udp_client();
    let mut buf = vec![0u8; 70_000];
    u.send_to(&data, srv.addrs[0]).unwrap();
    let (n, _) = u.recv_from(&mut buf).unwrap();
    assert_eq!(n, 65_507);
    assert!(buf[..n] == data.to_ascii_uppercase()[..]);
    u.send_to(&data, srv.addrs[1]).unwrap();
    let (n, _) = u.recv_from(&mut buf).unwrap();
    assert!(buf[..n] == data[..]);
}

#[test]
fn count_and_upper_answer_each_datagram() {
    let srv = serve(
        &["count=udp://127.0.0.1:0", "upper=udp://127.0.0.1:0"],
        Options::default(),
    );
    let u = udp_client();
    let mut buf = [0u8; 256];
    u.send_to(b"mississippi", srv.addrs[0]).unwrap();
    let (n, _) = u.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"4", "count over UDP has no newline");
    u.send_to("straße".as_bytes(), srv.addrs[1]).unwrap();
    let (n, _) = u.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], "STRASSE".as_bytes());
    u.send_to(&[b'a', 0xff, b'b'], srv.addrs[1]).unwrap();
    let (n, _) = u.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"A\xffB");
}

#[test]
fn empty_datagram_gets_an_empty_reply() {
    let srv = serve(&["echo=udp://127.0.0.1:0"], Options::default());
    let u = udp_client();
    let mut buf = [0u8; 16];
    u.send_to(b"", srv.addrs[0]).unwrap();
    let (n, from) = u.recv_from(&mut buf).unwrap();
    assert_eq!((n, from), (0, srv.addrs[0]));
}

#[test]
fn datagrams_from_small_service_ports_are_not_answered() {
    // Pretend to be a chargen service (port 19) and an echo service (7):
    // answering would start an endless ping-pong. We run as root here; if
    // not, the low ports cannot be bound and there is nothing to test.
    let srv = serve(&["echo=udp://127.0.0.1:0"], Options::default());
    for port in [7u16, 19] {
        let Ok(fake) = UdpSocket::bind(("127.0.0.1", port)) else {
            eprintln!("cannot bind port {port} (not root?); skipped");
            continue;
        };
        fake.set_read_timeout(Some(std::time::Duration::from_millis(300)))
            .unwrap();
        fake.send_to(b"loop me", srv.addrs[0]).unwrap();
        let mut buf = [0u8; 16];
        assert!(
            fake.recv_from(&mut buf).is_err(),
            "port {port} must get no reply"
        );
    }
    // An ordinary port still does: the guard dropped only those.
    let u = udp_client();
    u.send_to(b"hi", srv.addrs[0]).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(u.recv_from(&mut buf).unwrap().0, 2);
}
