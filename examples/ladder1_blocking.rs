//! Rung 1 of the ladder: the textbook's blocking TCP server, one client at
//! a time. Each line comes back uppercased.
//!
//! Try it:
//!   cargo run --example ladder1_blocking            # listens on 127.0.0.1:12000
//!   sockloop send tcp://127.0.0.1:12000              # in a second terminal: type lines
//!   sockloop send tcp://127.0.0.1:12000              # a third: it waits...
//!
//! Watch: the third client gets no answer until the second one ends (Ctrl-D).
//! `accept` and `read` block: while the server waits on one client's
//! `read`, it cannot `accept` another. That is the problem the next rungs
//! solve. `--clients N` stops after N clients; port 0 asks for a free port.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

fn main() -> std::io::Result<()> {
    let (port, clients) = ladder_args();
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    println!("listening on {}", listener.local_addr()?);
    for served in 0.. {
        if clients == Some(served) {
            break;
        }
        // Blocks until a client connects.
        let (stream, peer) = listener.accept()?;
        eprintln!("serving {peer}; anyone else waits in the backlog");
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut out = stream;
        let mut line = String::new();
        // Blocks until the client sends a line (or closes: 0 bytes).
        while reader.read_line(&mut line)? > 0 {
            out.write_all(line.to_uppercase().as_bytes())?;
            line.clear();
        }
        eprintln!("{peer} closed");
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
