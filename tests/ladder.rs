//! The ladder of examples (examples/ladder*.rs): each starts, answers one
//! client, and stops; and each teaches what its header says (rung 1
//! survives a client's reset, rung 3 delivers what it owes at a
//! half-close).
//!
//! The rungs run as the example binaries `cargo test` builds; with
//! `--test ladder` alone, `cargo build --examples` first (same profile),
//! or an old build is what is tested.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::WAIT;

/// An example's binary, built by `cargo test` next to the test binaries.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap(); // target/<profile>
    dir.join("examples").join(name)
}

/// Start rung `name` for `clients` clients; its address.
fn start(name: &str, clients: usize) -> (std::process::Child, String) {
    start_with(name, clients, &[])
}

fn start_with(name: &str, clients: usize, flags: &[&str]) -> (std::process::Child, String) {
    let mut child = Command::new(example(name))
        .args(["0", "--clients", &clients.to_string()])
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{name} printed {first:?}"))
        .to_string();
    (child, addr)
}

/// Wait (at most WAIT) for the rung to exit 0.
fn exits_ok(name: &str, child: &mut std::process::Child) {
    let end = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{name} exited {status}");
            return;
        }
        assert!(
            Instant::now() < end,
            "{name} did not stop after its clients"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn one_client(name: &str) {
    let (mut child, addr) = start(name, 1);
    let mut c = TcpStream::connect(&addr).unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    c.write_all(b"hello, ladder\nstra").unwrap();
    c.write_all("ße\n".as_bytes()).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut got = String::new();
    c.read_to_string(&mut got).unwrap();
    assert_eq!(got, "HELLO, LADDER\nSTRASSE\n", "{name}");
    exits_ok(name, &mut child);
}

#[test]
fn rung_1_blocking_server_answers_and_stops() {
    one_client("ladder1_blocking");
}

#[test]
fn rung_2_busy_loop_server_answers_and_stops() {
    one_client("ladder2_busy");
}

#[test]
fn rung_3_mio_server_answers_and_stops() {
    one_client("ladder3_mio");
}

/// A client that resets its connection (closes with SO_LINGER 0, as a
/// client closing with unread data does) ends that client, not the
/// blocking server: the next client is served.
#[test]
fn rung_1_survives_a_client_reset() {
    let (mut child, addr) = start("ladder1_blocking", 2);
    let mut first = TcpStream::connect(&addr).unwrap();
    first.set_read_timeout(Some(WAIT)).unwrap();
    first.write_all(b"hello\n").unwrap();
    let mut reply = [0u8; 6];
    first.read_exact(&mut reply).unwrap();
    socket2::SockRef::from(&first)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(first); // RST
    let mut second = TcpStream::connect(&addr).unwrap();
    second.set_read_timeout(Some(WAIT)).unwrap();
    second.write_all(b"still here\n").unwrap();
    second.shutdown(Shutdown::Write).unwrap();
    let mut got = String::new();
    second.read_to_string(&mut got).unwrap();
    assert_eq!(got, "STILL HERE\n");
    exits_ok("ladder1_blocking", &mut child);
}

/// Rung 3's header: unsent replies wait in a queue. A client that sends
/// megabytes of lines without reading, then half-closes, gets every
/// reply (the connection is not dropped with replies pending).
#[test]
fn rung_3_delivers_every_owed_reply_after_a_half_close() {
    let (mut child, addr) = start("ladder3_mio", 1);
    let c = TcpStream::connect(&addr).unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    let mut sent = Vec::new();
    for i in 0..400_000u32 {
        sent.extend_from_slice(format!("line {i} of many\n").as_bytes());
    }
    assert!(sent.len() > 7_000_000);
    let expected = String::from_utf8(sent.clone()).unwrap().to_uppercase();
    let mut writer = c.try_clone().unwrap();
    let w = std::thread::spawn(move || {
        // The server is not read while this writes: only its queue holds.
        writer.write_all(&sent).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    // Read nothing until all is sent and the FIN is out: at the FIN the
    // server holds megabytes of replies (rung 3 has no backpressure).
    w.join().unwrap();
    let mut got = Vec::new();
    (&c).read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), expected.len(), "bytes back");
    assert!(got == expected.as_bytes(), "replies differ");
    exits_ok("ladder3_mio", &mut child);
}

/// The walkthrough's experiment: a loop that reads once per event (rung 3
/// with `--read-once`) answers the first 4 KiB of a 10 KB burst and then
/// stalls, since no new edge comes for bytes already waiting; the next
/// bytes the client sends bring one more read. The same burst against
/// the rung as written is answered whole.
#[test]
fn rung_3_reading_once_per_event_stalls_and_reading_to_wouldblock_does_not() {
    let burst: Vec<u8> = (0..100)
        .flat_map(|_| [b'x'; 99].into_iter().chain([b'\n']))
        .collect();
    for (flags, stalls) in [(&[][..], false), (&["--read-once"][..], true)] {
        let (mut child, addr) = start_with("ladder3_mio", 1, flags);
        let mut c = TcpStream::connect(&addr).unwrap();
        c.write_all(&burst).unwrap();
        // Everything that comes back before the loop goes quiet.
        c.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 65536];
        while let Ok(n) = c.read(&mut chunk) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
            if got.len() == burst.len() {
                break;
            }
        }
        if stalls {
            assert!(got.len() <= 4096, "{flags:?}: {} bytes back", got.len());
            assert!(
                !got.is_empty(),
                "{flags:?}: not even the first read answered"
            );
            // A new edge: one more read's worth comes back.
            c.write_all(b"poke\n").unwrap();
            let before = got.len();
            c.set_read_timeout(Some(WAIT)).unwrap();
            let n = c.read(&mut chunk).unwrap();
            assert!(
                n > 0 && before + n > 4096,
                "{flags:?}: the poke brought {n} bytes"
            );
        } else {
            assert_eq!(got.len(), burst.len(), "{flags:?}");
        }
        c.shutdown(Shutdown::Both).unwrap();
        drop(c);
        let _ = child.kill();
        let _ = child.wait();
    }
}
