//! The ladder of examples (examples/ladder*.rs): each starts, answers one
//! client, and stops.

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

fn one_client(name: &str) {
    let mut child = Command::new(example(name))
        .args(["0", "--clients", "1"])
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
        .unwrap_or_else(|| panic!("{name} printed {first:?}"));
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    c.write_all(b"hello, ladder\nstra").unwrap();
    c.write_all("ße\n".as_bytes()).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut got = String::new();
    c.read_to_string(&mut got).unwrap();
    assert_eq!(got, "HELLO, LADDER\nSTRASSE\n", "{name}");
    let end = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{name} exited {status}");
            return;
        }
        assert!(Instant::now() < end, "{name} did not stop after its client");
        std::thread::sleep(Duration::from_millis(20));
    }
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
