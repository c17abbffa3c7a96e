//! docs/walkthrough.md kept honest: the session and every experiment in
//! "Try them" are played against a traced server (and rung 3 of the
//! ladder), and every log line the page shows must be one the programs
//! really print (numbers, addresses and timestamps aside). Needs
//! `python3` for the experiments' clients: fails, loudly, without it.

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::*;

const PAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/walkthrough.md");

fn page_blocks(lang: &str) -> Vec<Vec<String>> {
    let page = std::fs::read_to_string(PAGE).unwrap();
    let mut out = Vec::new();
    let mut cur: Option<Vec<String>> = None;
    for line in page.lines() {
        match (&mut cur, line.trim_end()) {
            (None, l) if l == format!("```{lang}") => cur = Some(Vec::new()),
            (Some(_), "```") => out.push(cur.take().unwrap()),
            (Some(b), l) => b.push(l.to_string()),
            _ => {}
        }
    }
    out
}

/// A log line without its timestamp, every number as `N`, and an interest
/// change without the interest it came from (READABLE, or READABLE |
/// WRITABLE: how far a queue grew before a turn ended varies by run).
fn normal(line: &str) -> String {
    let line = match (line.find("interest "), line.find(" -> ")) {
        (Some(a), Some(b)) if a < b => format!("{}interest …{}", &line[..a], &line[b..]),
        _ => line.to_string(),
    };
    let line = line.as_str();
    let line = match line.strip_prefix('[') {
        // "[2026-11-30T12:44:19Z TRACE ..." → "[TRACE ..."
        Some(rest) if rest.as_bytes().first().is_some_and(u8::is_ascii_digit) => {
            format!("[{}", rest.split_once(' ').map_or(rest, |(_, r)| r))
        }
        _ => line.to_string(),
    };
    let mut out = String::new();
    let mut in_number = false;
    for c in line.chars() {
        if c.is_ascii_digit() || (in_number && c == '.') {
            if !in_number {
                out.push('N');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out
}

fn python(script: &str, dir: &std::path::Path, port: u16) -> String {
    let path = dir.join(script);
    let out = Command::new("python3")
        .arg(&path)
        .arg(port.to_string())
        .output()
        .unwrap_or_else(|e| {
            panic!("python3 is needed for the walkthrough's experiments (apt-get install -y python3): {e}")
        });
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn send(ep: &str, input: &str) {
    let mut child = bin()
        .args(["send", ep])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "send {ep}");
}

fn ladder3(flags: &[&str]) -> (std::process::Child, u16) {
    let exe = std::env::current_exe().unwrap();
    let rung = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/ladder3_mio");
    let mut child = Command::new(rung)
        .args(["0", "--clients", "1"])
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("examples/ladder3_mio (cargo build --examples)");
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    let port = first.trim().rsplit(':').next().unwrap().parse().unwrap();
    (child, port)
}

#[test]
fn every_log_line_on_the_walkthrough_is_one_the_programs_print() {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("sockloop-walkthrough-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for block in page_blocks("python") {
        let name = block[0].strip_prefix("# ").expect("`# NAME.py` first");
        std::fs::write(dir.join(name), block.join("\n") + "\n").unwrap();
    }

    // The session and the experiments against one traced server.
    let mut cmd = bin();
    cmd.env("RUST_LOG", "sockloop=trace");
    let mut srv = spawn_serve_with(
        cmd,
        &[
            "--listen",
            "upper=tcp://127.0.0.1:0",
            "--listen",
            "upper=udp://127.0.0.1:0",
        ],
    );
    let (tcp, udp) = (srv.addrs[0], srv.addrs[1]);
    send(&format!("tcp://{tcp}"), "hello\nstraße\n");
    assert_eq!(python("split.py", &dir, tcp.port()).trim(), "b'STRASSE\\n'");
    let bp = python("backpressure.py", &dir, tcp.port());
    assert!(
        bp.contains("then the server stopped reading (backpressure)"),
        "{bp}"
    );
    let sent: &str = bp.split_whitespace().nth(1).unwrap();
    assert!(bp.contains(&format!("read back {sent} bytes")), "{bp}");
    send(&format!("udp://{udp}"), "ping\n");
    srv.signal("INT");
    assert_eq!(srv.wait(), 0);
    let mut printed: HashSet<String> = srv.stderr().lines().map(normal).collect();

    // Rung 3: its --trace lines, and the stall.
    let (rung, port) = ladder3(&["--trace"]);
    send(&format!("tcp://127.0.0.1:{port}"), "hello\n");
    let out = rung.wait_with_output().unwrap();
    printed.extend(String::from_utf8_lossy(&out.stderr).lines().map(normal));
    for (flags, says) in [
        (
            &["--read-once"][..],
            "stalled: 4000 of 10000 bytes answered",
        ),
        (&[][..], "all 10000 bytes answered"),
    ] {
        let (mut rung, port) = ladder3(flags);
        assert_eq!(python("stall.py", &dir, port).trim(), says, "{flags:?}");
        let _ = rung.kill();
        let _ = rung.wait();
    }

    let mut checked = 0;
    for block in page_blocks("text") {
        for line in block
            .iter()
            .filter(|l| l.starts_with('[') || l.starts_with("Token("))
        {
            if line.contains("open-file limit") {
                continue; // the machine's own limit decides whether it shows
            }
            if !line.contains("TRACE")
                && !line.contains("DEBUG")
                && !line.contains("INFO")
                && !line.starts_with("Token(")
            {
                continue;
            }
            assert!(printed.contains(&normal(line)), "never printed:\n{line}");
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} lines checked");
    let _ = std::fs::remove_dir_all(dir);
}
