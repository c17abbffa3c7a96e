//! The README's "First ten minutes" session, played against the built
//! binary: its server command (on free ports instead of 12000–12004) must
//! print the startup lines the README shows, and each `printf ... |
//! sockloop send ...` in it must print exactly the output shown under it.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::process::Stdio;

use common::*;

/// The console blocks of README.md, each as its lines.
fn console_blocks() -> Vec<Vec<String>> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut blocks = Vec::new();
    let mut cur: Option<Vec<String>> = None;
    for line in readme.lines() {
        match (&mut cur, line.trim_end()) {
            (None, "```console") => cur = Some(Vec::new()),
            (Some(_), "```") => blocks.push(cur.take().unwrap()),
            (Some(b), l) => b.push(l.to_string()),
            _ => {}
        }
    }
    blocks
}

/// `printf`'s escapes that the README uses.
fn unprintf(s: &str) -> String {
    s.replace("\\n", "\n")
}

#[test]
fn the_readme_session_prints_what_the_readme_shows() {
    let blocks = console_blocks();
    let serve = blocks
        .iter()
        .find(|b| b[0].starts_with("$ sockloop serve"))
        .expect("a serve block");
    // The README's listeners, on free ports.
    // Quoted words ('echo=tcp://[::1]:12004', as zsh needs) unquoted.
    let words: Vec<&str> = serve[0]
        .split_whitespace()
        .map(|w| w.trim_matches('\''))
        .collect();
    let specs: Vec<String> = words
        .windows(2)
        .filter(|w| w[0] == "--listen")
        .map(|w| {
            let (head, port) = w[1].rsplit_once(':').unwrap();
            assert!(port.parse::<u16>().is_ok(), "{}", w[1]);
            format!("{head}:0")
        })
        .collect();
    let args: Vec<&str> = specs
        .iter()
        .flat_map(|s| ["--listen", s.as_str()])
        .collect();
    let srv = spawn_serve(&args);
    // Startup lines: the README's, with each address replaced by the real one.
    let shown = &serve[1..];
    assert_eq!(shown.len(), srv.addrs.len() + 1, "{shown:?}");
    let mut real = HashMap::new();
    for (line, addr) in shown.iter().zip(&srv.addrs) {
        let (head, readme_addr) = line.rsplit_once(' ').unwrap();
        let (_, proto_head) = head.split_at(10); // "listening "
        let proto = proto_head.split(' ').nth(1).unwrap();
        assert_eq!(
            readme_addr.rsplit_once(':').unwrap().0,
            addr.to_string().rsplit_once(':').unwrap().0
        );
        real.insert(
            format!("{proto}://{readme_addr}"),
            format!("{proto}://{addr}"),
        );
    }
    assert_eq!(shown.last().unwrap(), "The server is ready to receive");

    let session = blocks
        .iter()
        .find(|b| b[0].starts_with("$ printf"))
        .expect("a send session");
    let mut i = 0;
    let mut played = 0;
    while i < session.len() {
        let cmd = session[i].strip_prefix("$ ").expect("a command line");
        let expected: Vec<&str> = session[i + 1..]
            .iter()
            .take_while(|l| !l.starts_with("$ "))
            .map(String::as_str)
            .collect();
        i += 1 + expected.len();
        let (printf, send) = cmd.split_once(" | ").unwrap();
        let input = unprintf(
            printf
                .strip_prefix("printf '")
                .unwrap()
                .strip_suffix('\'')
                .unwrap(),
        );
        let mut argv: Vec<String> = send
            .split_whitespace()
            .skip(1)
            .map(|w| w.trim_matches('\'').to_string())
            .collect();
        argv[1] = real
            .get(&argv[1])
            .unwrap_or_else(|| panic!("{} is not a listener", argv[1]))
            .clone();
        let mut child = bin()
            .args(&argv)
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
        let out = child.wait_with_output().unwrap();
        let got = String::from_utf8_lossy(&out.stdout);
        assert_eq!(got.lines().collect::<Vec<_>>(), expected, "{cmd}");
        assert_eq!(out.status.code(), Some(0), "{cmd}");
        played += 1;
    }
    assert!(played >= 4, "the session has its four commands");
}
