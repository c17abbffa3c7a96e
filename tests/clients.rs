//! The clients never mislead: `send` pairs every reply with its own line
//! (a late reply is shown as late), ends a connection without resetting
//! it, and `chat` says so at once when the server goes away.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// A line server that answers `slow` lines `delay` late (everything
/// uppercased, in order, as TCP keeps it), then reports how the client
/// ended the connection: `true` for a FIN, `false` for a reset.
fn slow_upper(delay: Duration) -> (String, mpsc::Receiver<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let ep = format!("tcp://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut out = stream;
        let mut line = String::new();
        let clean = loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) => break true,
                Ok(_) => {}
                Err(_) => break false,
            }
            if line.starts_with("slow") {
                thread::sleep(delay);
            }
            if out.write_all(line.to_uppercase().as_bytes()).is_err() {
                break false;
            }
        };
        let _ = tx.send(clean);
    });
    (ep, rx)
}

fn send(ep: &str, timeout: &str, input: &str) -> Output {
    let mut child = bin()
        .args(["send", ep, "--timeout", timeout])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// The ladder's rung-1 scenario: the reply to `slow` comes after the
/// timeout, while `send` waits for the reply to `two`. It must not be
/// printed as the answer to `two`.
#[test]
fn a_late_reply_is_shown_as_late_never_as_the_next_lines() {
    let (ep, clean) = slow_upper(Duration::from_millis(600));
    let out = send(&ep, "0.3", "slow one\ntwo\nthree\n");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stdout, "TWO\nTHREE\n", "stderr: {stderr}");
    assert!(stderr.contains("error: no reply within"), "{stderr}");
    assert!(
        stderr.contains("late reply to line 1 (after its timeout): SLOW ONE"),
        "{stderr}"
    );
    assert_eq!(out.status.code(), Some(1), "a reply was lost in time");
    assert!(
        clean.recv_timeout(WAIT).unwrap(),
        "send reset the connection"
    );
}

/// The last line's reply comes late: after its input ends, `send` still
/// takes it (and shows it as late) and closes with a FIN, not a reset
/// that would kill a blocking server.
#[test]
fn the_last_late_reply_is_shown_and_the_connection_ends_cleanly() {
    let (ep, clean) = slow_upper(Duration::from_millis(400));
    let out = send(&ep, "0.2", "first\nslow last\n");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stdout, "FIRST\n", "stderr: {stderr}");
    assert!(
        stderr.contains("late reply to line 2 (after its timeout): SLOW LAST"),
        "{stderr}"
    );
    assert!(
        clean.recv_timeout(WAIT).unwrap(),
        "send reset the connection"
    );
}

/// The server stops while the user is not typing: `chat` says so and
/// exits 1 at once, instead of staying silent and losing the next line.
#[test]
fn chat_reports_a_closed_server_and_exits_1() {
    let mut srv = spawn_serve(&["--listen", "chat=tcp://127.0.0.1:0"]);
    let addr = srv.addrs[0];
    let mut other = connect(addr);
    let mut child = bin()
        .args(["chat", &format!("tcp://{addr}")])
        .stdin(Stdio::piped()) // kept open: the user is still there
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The room announcing it proves the chat client is in.
    assert!(read_line(&mut other).ends_with(" joined"));
    drop(other);
    srv.signal("TERM");
    let end = Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < end,
            "chat did not notice the server closing"
        );
        thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("error:") && err.contains("the server closed the connection"),
        "{err}"
    );
    assert_eq!(srv.wait(), 0);
}
