//! Regression: the steady-state echo path allocates nothing per message
//! (TCP) or per datagram (UDP).
//! A counting global allocator in this test binary (its own process)
//! counts every allocation while 10,000 request/reply rounds run after a
//! warm-up; the client side uses only buffers made before the window.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use common::*;
use sockloop::Options;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The count is process-wide: one test at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn steady_state_echo_allocates_nothing_per_message() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let srv = serve(
        &["echo=tcp://127.0.0.1:0", "count=tcp://127.0.0.1:0"],
        Options::default(),
    );
    for &addr in &srv.addrs {
        let mut c = connect(addr);
        let msg = b"ssss sss ss s\n";
        let mut reply = [0u8; 64];
        let n = if addr == srv.addrs[0] { msg.len() } else { 3 };
        let mut round = |c: &mut std::net::TcpStream| {
            c.write_all(msg).unwrap();
            c.read_exact(&mut reply[..n]).unwrap();
        };
        for _ in 0..1000 {
            round(&mut c); // warm-up: pools and buffers reach their size
        }
        let before = ALLOCS.load(Relaxed);
        for _ in 0..10_000 {
            round(&mut c);
        }
        let allocs = ALLOCS.load(Relaxed) - before;
        assert!(
            allocs < 10,
            "{allocs} allocations in 10,000 rounds on {addr}"
        );
    }
}

#[test]
fn steady_state_udp_echo_allocates_nothing_per_datagram() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let srv = serve(&["echo=udp://127.0.0.1:0"], Options::default());
    let u = udp_client();
    let msg = b"a datagram";
    let mut reply = [0u8; 64];
    let mut round = || {
        u.send_to(msg, srv.addrs[0]).unwrap();
        let (n, _) = u.recv_from(&mut reply).unwrap();
        assert_eq!(n, msg.len());
    };
    for _ in 0..1000 {
        round(); // warm-up: the batches' buffers reach their size
    }
    let before = ALLOCS.load(Relaxed);
    for _ in 0..10_000 {
        round();
    }
    let allocs = ALLOCS.load(Relaxed) - before;
    assert!(allocs < 10, "{allocs} allocations in 10,000 datagrams");
}
