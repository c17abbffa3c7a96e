//! docs/from-the-textbook.md kept honest: its server command (on free
//! ports) prints the startup lines shown; every command in its console
//! blocks — `sockloop send`, and the book's own Python clients, unchanged
//! but for `serverPort` — prints exactly what is shown; and the UDP chat
//! client it gives is relayed the room's lines. Needs `python3` (the
//! book's language): fails, loudly, without it.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const PAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/from-the-textbook.md");

/// The page's fenced blocks of one language, each as its lines.
fn blocks(lang: &str) -> Vec<Vec<String>> {
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

/// Split a command line into words as sh does for the quoting the docs
/// use: '...' and "..." quotes, backslash escapes, and `#` comments.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    w.push(q);
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => w.push(chars.next().unwrap_or('\\')),
                        _ => w.push(q),
                    }
                }
            }
            '\\' => word
                .get_or_insert_with(String::new)
                .push(chars.next().unwrap_or('\\')),
            '#' if word.is_none() => break,
            c if c.is_whitespace() => words.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

/// The page's Python files, written to a directory of their own.
fn python_files(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sockloop-textbook-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for block in blocks("python") {
        let name = block[0]
            .strip_prefix("# ")
            .expect("a python block starts with `# NAME.py`");
        std::fs::write(dir.join(name), block.join("\n") + "\n").unwrap();
    }
    dir
}

fn python3() -> Command {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "python3 is needed to run the textbook's clients (Debian: apt-get install -y python3)"
    );
    Command::new("python3")
}

/// A copy of a client with `serverPort` set to `port`, the one line the
/// book asks a student to change.
fn with_port(dir: &Path, file: &str, port: u16) -> (PathBuf, bool) {
    let src = std::fs::read_to_string(dir.join(file)).unwrap_or_else(|_| panic!("{file}"));
    let udp = src.contains("SOCK_DGRAM");
    let lines: Vec<String> = src
        .lines()
        .map(|l| match l.strip_prefix("serverPort = ") {
            Some(_) => format!("serverPort = {port}"),
            None => l.to_string(),
        })
        .collect();
    assert!(
        src.contains("\nserverPort = "),
        "{file} has no serverPort line"
    );
    let path = dir.join(format!("run-{port}-{file}"));
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    (path, udp)
}

/// Wait for a child with a bound; its stdout, and whether it exited 0.
fn finish(mut child: Child, what: &str) -> (String, bool) {
    let end = Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > end {
            let _ = child.kill();
            panic!("{what}: still running after {WAIT:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.is_empty() || out.status.success(), "{what}: {err}");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.success(),
    )
}

/// Start the page's server on free ports; (server, page address → real).
fn start_server() -> (Child_, HashMap<String, String>) {
    let server = blocks("console")
        .into_iter()
        .find(|b| b[0].starts_with("$ sockloop serve"))
        .expect("a serve block");
    // Join the `\`-continued command lines.
    let mut cmd = String::new();
    let mut rest = server.iter();
    for line in rest.by_ref() {
        let l = line.strip_prefix("$ ").unwrap_or(line).trim();
        match l.strip_suffix('\\') {
            Some(part) => cmd.push_str(part),
            None => {
                cmd.push_str(l);
                break;
            }
        }
        cmd.push(' ');
    }
    let words = shell_words(&cmd);
    let specs: Vec<String> = words
        .windows(2)
        .filter(|w| w[0] == "--listen")
        .map(|w| w[1].clone())
        .collect();
    let free: Vec<String> = specs
        .iter()
        .map(|s| {
            let (head, tail) = s.rsplit_once(':').unwrap();
            let query = tail.find('?').map_or("", |i| &tail[i..]);
            format!("{head}:0{query}")
        })
        .collect();
    let args: Vec<&str> = free.iter().flat_map(|s| ["--listen", s.as_str()]).collect();
    let srv = spawn_serve(&args);
    let shown: Vec<&String> = rest.collect();
    assert_eq!(shown.len(), specs.len() + 1, "startup lines: {shown:?}");
    assert_eq!(
        shown.last().unwrap().as_str(),
        "The server is ready to receive"
    );
    let mut real = HashMap::new();
    for ((line, spec), addr) in shown.iter().zip(&specs).zip(&srv.addrs) {
        // "listening SERVICE PROTO ADDR" as the spec says.
        let (service, url) = spec.split_once('=').unwrap();
        let (proto, page_addr) = url.split_once("://").unwrap();
        let page_addr = page_addr.split('?').next().unwrap();
        assert_eq!(
            line.as_str(),
            format!("listening {service} {proto} {page_addr}")
        );
        real.insert(
            format!("{proto}://{page_addr}"),
            format!("{proto}://{addr}"),
        );
    }
    (srv, real)
}

#[test]
fn every_command_on_the_textbook_page_prints_what_it_shows() {
    let (_srv, real) = start_server();
    let dir = python_files("commands");
    let mut played = 0;
    let mut by_python = 0;
    for block in blocks("console")
        .iter()
        .filter(|b| !b[0].starts_with("$ sockloop serve"))
    {
        let mut i = 0;
        while i < block.len() {
            let line = block[i].strip_prefix("$ ").expect("a command line");
            let expected: Vec<&str> = block[i + 1..]
                .iter()
                .take_while(|l| !l.starts_with("$ "))
                .map(String::as_str)
                .collect();
            i += 1 + expected.len();
            let (printf, cmd) = line.split_once(" | ").expect("printf ... | command");
            let input = shell_words(printf)[1].replace("\\n", "\n");
            let words = shell_words(cmd);
            let child = match words[0].as_str() {
                "sockloop" => {
                    let mut argv = words[1..].to_vec();
                    argv[1] = real
                        .get(&argv[1])
                        .unwrap_or_else(|| panic!("{line}: {} is not a listener", argv[1]))
                        .clone();
                    bin()
                        .args(&argv)
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap()
                }
                "python3" => {
                    let file = &words[1];
                    // `# serverPort = N` says which port; else the file's own.
                    let port: u16 = match line.split_once("# serverPort = ") {
                        Some((_, p)) => p.trim().parse().unwrap(),
                        None => {
                            let src = std::fs::read_to_string(dir.join(file)).unwrap();
                            src.lines()
                                .find_map(|l| l.strip_prefix("serverPort = "))
                                .unwrap()
                                .parse()
                                .unwrap()
                        }
                    };
                    let probe = with_port(&dir, file, 1);
                    let proto = if probe.1 { "udp" } else { "tcp" };
                    let target = real
                        .get(&format!("{proto}://127.0.0.1:{port}"))
                        .unwrap_or_else(|| panic!("{line}: no {proto} listener on {port}"));
                    let real_port: u16 = target.rsplit(':').next().unwrap().parse().unwrap();
                    let (path, _) = with_port(&dir, file, real_port);
                    by_python += 1;
                    python3()
                        .arg(path)
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap()
                }
                other => panic!("{line}: unknown command {other}"),
            };
            let mut child = child;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
            let (out, ok) = finish(child, line);
            assert_eq!(out.lines().collect::<Vec<_>>(), expected, "{line}");
            assert!(ok, "{line}: failed");
            played += 1;
        }
    }
    assert!(
        played >= 10 && by_python >= 6,
        "{played} commands, {by_python} clients"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// The page's UDP chat client, as given, is relayed another member's line.
#[test]
fn the_textbook_udp_chat_client_hears_the_room() {
    let (_srv, real) = start_server();
    let dir = python_files("chat");
    let room = real["udp://127.0.0.1:7321"]
        .strip_prefix("udp://")
        .unwrap()
        .to_string();
    let (path, udp) = with_port(
        &dir,
        "UDPChat.py",
        room.rsplit(':').next().unwrap().parse().unwrap(),
    );
    assert!(udp);
    let mut a = python3()
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    a.stdin
        .take()
        .unwrap()
        .write_all(b"hello from a\n")
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = a.stdout.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    // Another member speaks until the client shows it (its own join may
    // reach the room after the first tries).
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    let me = b.local_addr().unwrap();
    let end = Instant::now() + WAIT;
    let heard = loop {
        b.send_to(b"hi a", &room).unwrap();
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            break line;
        }
        assert!(Instant::now() < end, "the chat client heard nothing");
    };
    // After the prompt, which piped input leaves on the same line.
    assert_eq!(heard, format!("Say something:{me}: hi a"));
    let _ = a.kill();
    let _ = a.wait();
    let _ = std::fs::remove_dir_all(dir);
}
