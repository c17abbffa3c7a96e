//! Rung 3: a minimal `mio` poll loop. The kernel says which sockets are
//! ready; the loop sleeps the rest of the time.
//!
//! Try it:
//!   cargo run --release --example ladder3_mio        # listens on 127.0.0.1:12000
//!   sockloop send tcp://127.0.0.1:12000               # several terminals at once
//!
//! Two flags for study (docs/walkthrough.md, "Try them"):
//!   --trace      print every read and write, and each `WouldBlock`, on stderr
//!   --read-once  break the rule below on purpose: one read per event. A
//!                client that sends more than one read's worth (4 KiB) at
//!                once gets the answers to the first 4 KiB, then nothing:
//!                the rest waits in the kernel, and no event will come for
//!                it until the client sends again (the edge-triggered stall).
//!
//! Watch: all clients at once, and 0 % CPU while nobody types. The rules
//! this rung obeys (and sockloop obeys, in src/server/): readiness is
//! edge-triggered — reported once — so each socket is drained until
//! `WouldBlock`; what a write could not send waits in a queue, with
//! WRITABLE interest only while it does. A client that half-closes
//! (`shutdown(SHUT_WR)`: "no more from me") still gets every reply it is
//! owed: its connection is closed only once the queue is empty. Missing
//! here, and in sockloop:
//! framing of more than lines, backpressure, timeouts, limits, fairness,
//! shutdown — the rest of the ladder is `sockloop serve`.

use std::collections::HashMap;
use std::io::{self, Read, Write};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const LISTENER: Token = Token(0);

struct Conn {
    stream: TcpStream,
    line: Vec<u8>,
    /// Replies the kernel has not taken yet.
    out: Vec<u8>,
    /// The client sent FIN: nothing more to read, replies still owed.
    peer_closed: bool,
    /// What the poll watches for now.
    interest: Interest,
}

fn main() -> io::Result<()> {
    let (port, clients) = ladder_args();
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(([127, 0, 0, 1], port).into())?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    println!("listening on {}", listener.local_addr()?);
    let mut conns: HashMap<Token, Conn> = HashMap::new();
    let mut next = 1;
    let mut closed = 0;
    let mut events = Events::with_capacity(128);
    let mut buf = [0u8; 4096];
    let trace = std::env::args().any(|a| a == "--trace");
    let read_once = std::env::args().any(|a| a == "--read-once");
    while clients.map_or(true, |n| closed < n) {
        // Sleep until something is ready.
        poll.poll(&mut events, None)?;
        for event in events.iter() {
            if event.token() == LISTENER {
                // Accept until WouldBlock: the event will not be repeated.
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let token = Token(next);
                            next += 1;
                            poll.registry()
                                .register(&mut stream, token, Interest::READABLE)?;
                            conns.insert(
                                token,
                                Conn {
                                    stream,
                                    line: Vec::new(),
                                    out: Vec::new(),
                                    peer_closed: false,
                                    interest: Interest::READABLE,
                                },
                            );
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
                continue;
            }
            let token = event.token();
            let Some(c) = conns.get_mut(&token) else {
                continue;
            };
            let mut done = false;
            // Read until WouldBlock (or EOF).
            while !c.peer_closed {
                match c.stream.read(&mut buf) {
                    Ok(0) => {
                        // FIN: the client is done sending, not reading.
                        if trace {
                            eprintln!("{token:?}: read 0 bytes: EOF");
                        }
                        c.peer_closed = true;
                    }
                    Ok(n) => {
                        if trace {
                            eprintln!("{token:?}: read {n} bytes");
                        }
                        c.line.extend_from_slice(&buf[..n]);
                        while let Some(nl) = c.line.iter().position(|&b| b == b'\n') {
                            let up = String::from_utf8_lossy(&c.line[..=nl]).to_uppercase();
                            c.out.extend_from_slice(up.as_bytes());
                            c.line.drain(..=nl);
                        }
                        if read_once {
                            break; // the mistake, on purpose
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if trace {
                            eprintln!("{token:?}: read: WouldBlock (drained)");
                        }
                        break;
                    }
                    Err(_) => {
                        done = true;
                        break;
                    }
                }
            }
            // Write until done or WouldBlock; keep the rest.
            while !c.out.is_empty() {
                match c.stream.write(&c.out) {
                    Ok(n) => {
                        c.out.drain(..n);
                        if trace {
                            eprintln!("{token:?}: wrote {n} bytes, {} pending", c.out.len());
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if trace {
                            eprintln!("{token:?}: write: WouldBlock");
                        }
                        break;
                    }
                    Err(_) => {
                        done = true;
                        break;
                    }
                }
            }
            // Closed by the client, and every reply delivered: the end.
            if done || (c.peer_closed && c.out.is_empty()) {
                closed += 1;
                if let Some(mut c) = conns.remove(&token) {
                    poll.registry().deregister(&mut c.stream)?;
                }
                continue;
            }
            // WRITABLE only while something waits to be written; READABLE
            // until the client's FIN.
            let want = match (c.peer_closed, c.out.is_empty()) {
                (false, true) => Interest::READABLE,
                (false, false) => Interest::READABLE | Interest::WRITABLE,
                (true, _) => Interest::WRITABLE,
            };
            // Only on a change: an epoll_ctl per event would cost a syscall
            // each time (and re-arm the edge, hiding the stall that
            // `--read-once` shows).
            if want != c.interest {
                poll.registry().reregister(&mut c.stream, token, want)?;
                c.interest = want;
            }
        }
    }
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
