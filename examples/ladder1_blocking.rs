//! Rung 1 of the ladder: the textbook's blocking TCP server, one client at
//! a time. Each line comes back uppercased.
//!
//! Try it:
//!   cargo run --example ladder1_blocking            # listens on 127.0.0.1:12000
//!   sockloop send tcp://127.0.0.1:12000              # in a second terminal: type lines
//!   sockloop send tcp://127.0.0.1:12000              # a third: it waits...
//!
//! Watch: the third client gets no answer until the second one ends
//! (Ctrl-D). `accept` and `read` block: while the server waits on one
//! client's `read`, it cannot `accept` another. The third `send` gives up
//! on its first line after `--timeout` (5 s: `error: no reply within 5s`);
//! when the server gets to it at last, that answer is printed as
//! `late reply to line 1 ...` on stderr, and each later line gets its own.
//! That is the problem the next rungs solve. `--clients N` stops after N
//! clients; port 0 asks for a free port.
//!
//! One client's failure is that client's, not the server's: a connection
//! reset (the client vanished, or closed with unread data) ends that
//! client, and the server goes on to the next.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

fn main() -> io::Result<()> {
    let (port, clients) = ladder_args();
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    println!("listening on {}", listener.local_addr()?);
    for served in 0.. {
        if clients == Some(served) {
            break;
        }
        // Blocks until a client connects.
        let (stream, peer) = match listener.accept() {
            Ok(c) => c,
            // A connection that died in the backlog, say: not ours to die of.
            Err(e) => {
                eprintln!("accept: {e}; waiting for the next client");
                continue;
            }
        };
        eprintln!("serving {peer}; anyone else waits in the backlog");
        match serve_one(stream) {
            Ok(()) => eprintln!("{peer} closed"),
            Err(e) => eprintln!("{peer}: {e}; on to the next client"),
        }
    }
    Ok(())
}

/// One client, until it closes (or fails).
fn serve_one(stream: TcpStream) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    let mut line = String::new();
    // Blocks until the client sends a line (or closes: 0 bytes).
    while reader.read_line(&mut line)? > 0 {
        out.write_all(line.to_uppercase().as_bytes())?;
        line.clear();
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
