//! The reflection guard, what a full send buffer does to a batch, and a
//! receive error that persists.

use super::*;

fn blocked(s: &str) -> bool {
    blocked_peer(s.parse().unwrap()).is_some()
}

#[test]
fn reflection_guard() {
    for bad in [
        "127.0.0.1:0",
        "127.0.0.1:7",
        "127.0.0.1:9",
        "127.0.0.1:13",
        "127.0.0.1:19",
        "127.0.0.1:37",
        "255.255.255.255:5000",
        "224.0.0.1:5000",
        "0.0.0.0:5000",
        "[ff02::1]:5000",
        "[::]:5000",
        "[::ffff:255.255.255.255]:5000",
        "[::1]:19",
    ] {
        assert!(blocked(bad), "{bad} should be blocked");
    }
    for ok in [
        "127.0.0.1:5000",
        "[::1]:5000",
        "10.0.0.1:8",
        "127.0.0.1:12000",
    ] {
        assert!(!blocked(ok), "{ok} should be allowed");
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A batch of replies and relays, sent through a fake `sendmmsg` that
/// takes `take` datagrams, then fails as told.
fn deliver_through(take: usize, then: io::ErrorKind) -> (Unsent, ListenerCounters, Vec<u16>) {
    let mut batch = SendBatch::default();
    for i in 0..10u16 {
        // Even: replies; odd: relays to another member.
        batch.push(addr(5000 + i), &[i as u8; 3], i % 2 == 1);
    }
    let (mut unsent, counters) = (Unsent::default(), ListenerCounters::default());
    let mut sent = Vec::new();
    let mut failed_once = false;
    deliver(&mut batch, &mut unsent, &counters, |b, from| {
        if from < take || (then != io::ErrorKind::WouldBlock && failed_once) {
            let n = if from < take {
                take - from
            } else {
                b.len() - from
            };
            sent.extend((from..from + n).map(|k| b.get(k).0.to.port()));
            return Ok(n);
        }
        failed_once = true;
        Err(io::Error::from(then))
    });
    assert_eq!(batch.len(), 0, "the batch is emptied");
    (unsent, counters, sent)
}

#[test]
fn a_full_send_buffer_queues_replies_and_drops_relays_and_never_waits() {
    let (unsent, counters, sent) = deliver_through(4, io::ErrorKind::WouldBlock);
    assert_eq!(sent, [5000, 5001, 5002, 5003]);
    assert_eq!(counters.snapshot().bytes_out, 12);
    // Of the six refused, the three replies wait in order, the three
    // relays are dropped and counted.
    let queued: Vec<u16> = unsent.queue.iter().map(|(a, _)| a.port()).collect();
    assert_eq!(queued, [5004, 5006, 5008]);
    assert_eq!(unsent.bytes, 9);
    assert_eq!(counters.snapshot().udp_relays_dropped, 3);
}

#[test]
fn another_send_error_drops_only_that_datagram() {
    let (unsent, counters, sent) = deliver_through(4, io::ErrorKind::PermissionDenied);
    assert_eq!(sent, [5000, 5001, 5002, 5003, 5005, 5006, 5007, 5008, 5009]);
    assert!(unsent.is_empty());
    assert_eq!(counters.snapshot().udp_relays_dropped, 0);
    assert_eq!(counters.snapshot().bytes_out, 27);
}

/// A receive that fails with something other than `WouldBlock`, again and
/// again (a socket gone bad), ends the socket's turn after a bounded number
/// of calls, and leaves it to be tried again on the next turn.
#[test]
fn a_persistent_receive_error_ends_the_turn_instead_of_spinning() {
    let spec = "echo=udp://127.0.0.1:0".parse().unwrap();
    let mut server = Server::builder(crate::options::Options::default())
        .listen(&spec)
        .build()
        .unwrap();
    let Socket::Udp(u) = &mut server.listeners[0].socket else {
        panic!("a UDP listener");
    };
    u.may_read = true;
    let mut calls = 0;
    server.recv_some_with(0, |_, _, _| {
        calls += 1;
        assert!(calls < 1000, "the receive loop spins on a persistent error");
        Err(io::Error::from(io::ErrorKind::ConnectionRefused))
    });
    assert!(
        calls <= UDP_BATCH / mmsg::BATCH,
        "{calls} calls in one turn"
    );
    assert!(server.listeners[0].backlog, "tried again on the next turn");
}
