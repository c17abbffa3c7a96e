//! Rung 2: nonblocking sockets without a poller. Many clients at once —
//! by asking every socket, over and over, "anything for me?".
//!
//! Try it:
//!   cargo run --release --example ladder2_busy      # listens on 127.0.0.1:12000
//!   sockloop send tcp://127.0.0.1:12000              # several terminals at once
//!   top                                              # ...and watch the CPU
//!
//! Watch: every client is served at once now, but the server uses a whole
//! core even when nobody types: `accept` and `read` on a nonblocking socket
//! return `WouldBlock` ("call again later") instead of waiting, and this
//! loop calls again at once, forever. It prints how many times it spun.
//! The next rung asks the kernel to say *when* to call again.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};

fn main() -> io::Result<()> {
    let (port, clients) = ladder_args();
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    listener.set_nonblocking(true)?;
    println!("listening on {}", listener.local_addr()?);
    let mut conns: Vec<(TcpStream, Vec<u8>)> = Vec::new();
    let (mut accepted, mut closed, mut spins) = (0usize, 0usize, 0u64);
    let mut buf = [0u8; 4096];
    while clients.map_or(true, |n| closed < n) {
        spins += 1;
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(true)?;
                conns.push((s, Vec::new()));
                accepted += 1;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {} // nobody: ask again
            Err(e) => return Err(e),
        }
        conns.retain_mut(|(s, line)| match s.read(&mut buf) {
            Ok(0) => {
                closed += 1;
                false
            }
            Ok(n) => {
                // Answer whole lines; keep a partial one for later.
                line.extend_from_slice(&buf[..n]);
                while let Some(nl) = line.iter().position(|&b| b == b'\n') {
                    let up = String::from_utf8_lossy(&line[..=nl]).to_uppercase();
                    // A blocking-style write on a nonblocking socket: fine
                    // for a few bytes, wrong for a flood (rung 3 queues).
                    let _ = s.write_all(up.as_bytes());
                    line.drain(..=nl);
                }
                true
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => true, // nothing yet
            Err(_) => {
                closed += 1;
                false
            }
        });
    }
    eprintln!("served {accepted} clients; spun {spins} times");
    Ok(())
}

/// `[PORT] [--clients N]`, for every rung.
fn ladder_args() -> (u16, Option<usize>) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut port = 12000;
    let mut clients = None;
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--clients" {
            clients = args.get(i + 1).and_then(|n| n.parse().ok());
            i += 1;
        } else if let Ok(p) = args[i].parse() {
            port = p;
        }
        i += 1;
    }
    (port, clients)
}
