//! The command line against the built binary: exit codes, error lines,
//! and the clients `send`, `chat` and `load`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
use std::process::{Output, Stdio};

use common::*;
use sockloop::Options;

fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The child may exit before reading its input (a refused connection
    // fails at once): a broken pipe here is not the test's business.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn bad_listen_specs_are_usage_errors() {
    for bad in [
        "upper",
        "daytime=tcp://127.0.0.1:0",
        "echo=tcp://127.0.0.1",
        "echo=tcp://127.0.0.1:70000",
        "echo=http://127.0.0.1:0",
        "echo=tcp://127.0.0.1:0?framing=xml",
        "echo=udp://127.0.0.1:0?framing=line",
    ] {
        let out = run(&["serve", "--listen", bad], "");
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(
            text(&out.stderr).starts_with("error:"),
            "{bad}: {}",
            text(&out.stderr)
        );
    }
    for bad in [["--max-frame", "0"], ["--max-conns", "many"]] {
        let out = run(&["serve", bad[0], bad[1]], "");
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}

#[test]
fn startup_lines_give_real_addresses_in_order() {
    let srv = spawn_serve(&[
        "--listen",
        "count=tcp://127.0.0.1:0",
        "--listen",
        "echo=udp://127.0.0.1:0",
    ]);
    assert_eq!(srv.addrs.len(), 2);
    assert!(srv.addrs.iter().all(|a| a.port() != 0));
    let mut c = connect(srv.addrs[0]);
    c.write_all(b"sss\n").unwrap();
    assert_eq!(read_line(&mut c), "3");
}

#[test]
fn send_pipes_lines_over_tcp_and_udp() {
    let srv = serve(
        &[
            "upper=tcp://127.0.0.1:0",
            "count=tcp://127.0.0.1:0",
            "upper=udp://127.0.0.1:0",
            "count=udp://127.0.0.1:0",
        ],
        Options::default(),
    );
    let input = "hello\nstraße\n\nmississippi\n";
    for (i, expect) in [
        (0, "HELLO\nSTRASSE\n\nMISSISSIPPI\n"),
        (1, "0\n1\n0\n4\n"),
        (2, "HELLO\nSTRASSE\n\nMISSISSIPPI\n"),
        (3, "0\n1\n0\n4\n"),
    ] {
        let proto = if i < 2 { "tcp" } else { "udp" };
        let out = run(&["send", &format!("{proto}://{}", srv.addrs[i])], input);
        assert_eq!(
            text(&out.stdout),
            expect,
            "listener {i}: {}",
            text(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(0));
    }
    // len32 framing end to end.
    let srv = serve(
        &["count=tcp://127.0.0.1:0?framing=len32"],
        Options::default(),
    );
    let out = run(
        &[
            "send",
            &format!("tcp://{}", srv.addrs[0]),
            "--framing",
            "len32",
        ],
        "a\nss\n",
    );
    assert_eq!(text(&out.stdout), "0\n2\n");
}

#[test]
fn send_reports_a_lost_udp_reply_and_goes_on() {
    // A UDP socket that never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let out = run(
        &["send", &format!("udp://{addr}"), "--timeout", "0.2"],
        "one\ntwo\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert_eq!(err.matches("error: no reply within").count(), 2, "{err}");
    let mut buf = [0u8; 16];
    silent.set_read_timeout(Some(WAIT)).unwrap();
    for expect in [&b"one"[..], b"two"] {
        let n = silent.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], expect);
    }
}

#[test]
fn send_to_nothing_fails_at_once_with_one_line() {
    // A port that was free a moment ago.
    let port = common::servers::free_port();
    for ep in [
        format!("tcp://127.0.0.1:{port}"),
        format!("udp://127.0.0.1:{port}"),
    ] {
        let started = std::time::Instant::now();
        let out = run(&["send", &ep], "x\n");
        assert_eq!(out.status.code(), Some(1), "{ep}");
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("error:") && err.contains("refused"),
            "{err}"
        );
        assert!(started.elapsed() < WAIT);
    }
    let out = run(&["send", "tcp://no-such-host.invalid:1"], "");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn chat_client_prints_the_room_escaped() {
    let srv = serve(&["chat=tcp://127.0.0.1:0"], Options::default());
    let mut child = bin()
        .args(["chat", &format!("tcp://{}", srv.addrs[0])])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    assert!(eventually(|| srv.counters.snapshot().open == 1));
    let mut other = connect(srv.addrs[0]);
    let me = other.local_addr().unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, format!("* {me} joined\n"));
    other
        .write_all(b"\x1b[2J\x1b]0;owned\x07hi\tthere\n")
        .unwrap();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, format!("{me}: \\x1b[2J\\x1b]0;owned\\x07hi\tthere\n"));
    // What the chat client types reaches the room.
    stdin.write_all(b"hello room\n").unwrap();
    let line = read_line(&mut other);
    assert!(line.ends_with(": hello room"), "{line}");
    // End of input ends the client.
    drop(stdin);
    assert!(read_line(&mut other).ends_with(" left"));
    assert!(child.wait().unwrap().success());
}

#[test]
fn load_json_against_echo_reports_messages_and_no_errors() {
    let srv = serve(&["echo=tcp://127.0.0.1:0"], Options::default());
    let out = run(
        &[
            "load",
            &format!("tcp://{}", srv.addrs[0]),
            "--conns",
            "8",
            "--pipeline",
            "4",
            "--duration",
            "0.5",
            "--json",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["connections"], 8);
    assert_eq!(v["errors"], 0);
    assert!(v["messages"].as_u64().unwrap() > 0);
    assert!(v["messages_per_sec"].as_f64().unwrap() > 0.0);
    assert!(v["mb_per_sec"].as_f64().unwrap() > 0.0);
    for k in ["p50", "p90", "p99", "p99_9", "max"] {
        assert!(v["latency_us"][k].as_f64().unwrap() > 0.0, "{k}");
    }
    // The server saw what load says it sent, at least.
    assert!(srv.counters.snapshot().bytes_in >= v["messages"].as_u64().unwrap() * 64);
}

#[test]
fn load_with_rate_paces_messages() {
    let srv = serve(&["upper=tcp://127.0.0.1:0"], Options::default());
    let out = run(
        &[
            "load",
            &format!("tcp://{}", srv.addrs[0]),
            "--conns",
            "4",
            "--rate",
            "400",
            "--duration",
            "1",
            "--json",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let n = v["messages"].as_u64().unwrap();
    // 400/s for 1 s: never more than came due (about 400), and far from
    // the tens of thousands flat out would give.
    assert!((200..=450).contains(&n), "{n} messages");
}

#[test]
fn load_idle_holds_a_few_hundred_connections() {
    let srv = serve(&["echo=tcp://127.0.0.1:0"], Options::default());
    let out = run(
        &[
            "load",
            &format!("tcp://{}", srv.addrs[0]),
            "--idle",
            "--conns",
            "300",
            "--duration",
            "0.3",
            "--json",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            v["connections"].as_u64(),
            v["held"].as_u64(),
            v["failed"].as_u64()
        ),
        (Some(300), Some(300), Some(0))
    );
    assert!(srv.counters.snapshot().accepted >= 300);
}

#[test]
fn load_counts_refused_connections_and_fails() {
    let port = common::servers::free_port();
    let out = run(
        &[
            "load",
            &format!("tcp://127.0.0.1:{port}"),
            "--idle",
            "--conns",
            "3",
            "--duration",
            "0.1",
            "--json",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["held"], 0);
    let why = format!("connection refused (tcp://127.0.0.1:{port})");
    assert_eq!(v["failures"][&why], 3, "{v}");
}

#[test]
fn load_beyond_the_fd_limit_says_so_at_once() {
    let out = run(
        &[
            "load",
            "tcp://127.0.0.1:9",
            "--conns",
            "1000000",
            "--duration",
            "1",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("error:") && err.contains("file descriptors"),
        "{err}"
    );
}

/// Each rule a user trips over, with the error a user expects: exit 2, a
/// first line `error: ...` that says what is wrong with what was typed.
#[test]
fn usage_rules_say_what_is_wrong() {
    for (args, says) in [
        (
            &["serve", "--idle-timeout", "-1"][..],
            "'-1' is not a number of seconds",
        ),
        (
            &["serve", "--grace", "soon"][..],
            "'soon' is not a number of seconds",
        ),
        (
            &["serve", "--max-conns", "0"][..],
            "'0' is not a whole number ≥ 1",
        ),
        (
            &["serve", "--udp-max-members", "0"][..],
            "'0' is not a whole number ≥ 1",
        ),
        (
            &[
                "serve",
                "--listen",
                "echo=tcp://127.0.0.1:7999",
                "--listen",
                "count=tcp://127.0.0.1:7999",
            ][..],
            "tcp://127.0.0.1:7999 is listed twice",
        ),
        (
            &["send", "tcp://127.0.0.1:1", "--framing", "xml"][..],
            "possible values: raw, line, len32",
        ),
        (
            &["load", "tcp://127.0.0.1:1", "--conns", "0"][..],
            "'0' is not a whole number ≥ 1",
        ),
        (
            &["load", "tcp://127.0.0.1:1", "--rate", "0"][..],
            "'0' is not a rate above 0",
        ),
    ] {
        let out = run(args, "");
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with("error:"), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn send_exits_1_when_the_server_refuses_a_line_too_long() {
    let opts = Options {
        max_frame: 10,
        ..Options::default()
    };
    let srv = serve(&["count=tcp://127.0.0.1:0"], opts);
    let ep = format!("tcp://{}", srv.addrs[0]);
    let out = run(&["send", &ep], "ss\nthis line is far too long\n");
    assert_eq!(text(&out.stdout), "2\nERR frame too long\n");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("error:") && err.contains("refused"),
        "{err}"
    );
}

#[test]
fn send_of_an_echoed_err_line_is_not_an_error() {
    let srv = serve(&["echo=tcp://127.0.0.1:0?framing=line"], Options::default());
    let ep = format!("tcp://{}", srv.addrs[0]);
    let out = run(&["send", &ep], "ERR but only echoed\nnext\n");
    assert_eq!(text(&out.stdout), "ERR but only echoed\nnext\n");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn help_teaches_units_examples_exit_codes_and_logging() {
    for sub in ["serve", "send", "chat", "load", "report"] {
        let out = run(&[sub, "--help"], "");
        let help = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0));
        for must in ["Examples:", "Exit codes:", "RUST_LOG"] {
            assert!(help.contains(must), "{sub} --help lacks {must}:\n{help}");
        }
    }
    let serve = text(&run(&["serve", "--help"], "").stdout);
    for must in [
        "--idle-timeout <SECS>",
        "--max-frame <BYTES>",
        "--max-conns <N>",
        "--frame-timeout <SECS>",
        "--slow-timeout <SECS>",
    ] {
        assert!(serve.contains(must), "serve --help lacks {must}");
    }
    let chat = text(&run(&["chat", "--help"], "").stdout);
    assert!(chat.contains("Leave with"), "chat --help says how to leave");
}
