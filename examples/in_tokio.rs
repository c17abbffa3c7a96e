//! sockloop nested in a tokio current-thread runtime, on one thread, next
//! to a tokio listener of the program's own.
//!
//! ```text
//! cargo run --example in_tokio
//! printf 'hi\n' | sockloop send tcp://127.0.0.1:PORT   # sockloop's echo (port printed)
//! printf 'hi\n' | sockloop send tcp://127.0.0.1:PORT   # tokio's own: "tokio: hi"
//! ```
//!
//! How: tokio is handed a duplicate of the `Nested` server's fd (`Nested`
//! is `AsFd`), wrapped as a `tokio::net::unix::pipe::Receiver`: tokio's
//! one safe constructor for an arbitrary owned fd (its `AsyncFd`
//! constructors are all `unsafe` or deprecated since 1.51.6). We never read
//! it: we only wait for it to be readable. When it is, or when the server's
//! next deadline comes, the program calls `turn(ZERO)` until it says there
//! is no more to do — inside `try_io`, whose `WouldBlock` tells tokio the
//! readiness was used up (tokio's registration is edge-triggered: what is
//! not drained now is not reported again). Ctrl-C stops both: tokio's
//! listener stops accepting, and the server delivers what it owes (for up
//! to 5 s) before the program exits. The duplicate closes when the
//! `Receiver` drops; the server's own fd stays the server's.

use std::io;
use std::os::fd::AsFd;
use std::pin::pin;
use std::time::Duration;

use sockloop::{ListenSpec, Nested, Options, Server};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The program's own service, in plain tokio: each line back as "tokio: line".
async fn serve_tokio(stream: TcpStream) -> io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    while let Some(line) = lines.next_line().await? {
        w.write_all(format!("tokio: {line}\n").as_bytes()).await?;
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // An AddrError converts into io::Error: `?` works in an io::Result main.
    let spec: ListenSpec = format!("echo=tcp://127.0.0.1:{port}").parse()?;
    let mut nested = Nested::new(Server::bind(&[spec], Options::default())?)?;
    for (name, ep) in nested.server().listeners() {
        println!("listening {name} {} {}", ep.proto, ep.addr);
    }
    let own = TcpListener::bind("127.0.0.1:0").await?;
    println!("listening tokio tcp {}", own.local_addr()?);

    // A duplicate of the server's fd for tokio to watch (the pipe type only
    // registers it for readability; "unchecked": it is not a FIFO, and is
    // never read).
    let ready = tokio::net::unix::pipe::Receiver::from_owned_fd_unchecked(
        nested.as_fd().try_clone_to_owned()?,
    )?;
    let mut ctrl_c = pin!(tokio::signal::ctrl_c());
    let mut stopping = false;
    // Everything ready now, before waiting again; `WouldBlock` when done
    // (the server's sockets are edge-triggered, and so is tokio's watch).
    let drain = |nested: &mut Nested| -> io::Result<()> {
        while nested.turn(Duration::ZERO)? {}
        Err(io::ErrorKind::WouldBlock.into())
    };
    loop {
        match drain(&mut nested) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            other => other?,
        }
        if stopping && nested.is_finished() {
            println!("both stopped; bye");
            return Ok(());
        }
        let wait = nested.next_timeout().unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            r = ready.readable() => {
                r?;
                // The drain's WouldBlock clears tokio's readiness flag, so
                // the next readable() waits for new work.
                match ready.try_io(|| drain(&mut nested)) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    other => other?,
                }
            }
            _ = tokio::time::sleep(wait) => {}
            conn = own.accept(), if !stopping => {
                let (s, _) = conn?;
                tokio::spawn(serve_tokio(s));
            }
            _ = &mut ctrl_c, if !stopping => {
                stopping = true;
                nested.shutdown(Duration::from_secs(5));
            }
        }
    }
}
