//! sockloop nested in a tokio current-thread runtime, on one thread, next
//! to a tokio listener of the program's own.
//!
//! ```text
//! cargo run --example in_tokio
//! printf 'hi\n' | sockloop send tcp://127.0.0.1:PORT   # sockloop's echo (port printed)
//! printf 'hi\n' | sockloop send tcp://127.0.0.1:PORT   # tokio's own: "tokio: hi"
//! ```
//!
//! How: the `Nested` server goes into tokio's reactor whole, as an
//! `AsyncFd<Nested>` (`Nested` is `AsFd`: it owns the fd tokio waits on).
//! When the fd is readable, or when the server's next deadline comes, the
//! program calls `turn(ZERO)` until it says there is no more to do
//! (AsyncFd is edge-triggered: what is not drained now is not reported
//! again). Ctrl-C stops both: tokio's listener stops accepting, and the
//! server delivers what it owes (for up to 5 s) before the program exits.
//! Dropping the `AsyncFd` deregisters the fd, then drops the server that
//! owns it: the order is right by construction.

use std::io;
use std::pin::pin;
use std::time::Duration;

use sockloop::{ListenSpec, Nested, Options, Server};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
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
    let nested = Nested::new(Server::bind(&[spec], Options::default())?)?;
    for (name, ep) in nested.server().listeners() {
        println!("listening {name} {} {}", ep.proto, ep.addr);
    }
    let own = TcpListener::bind("127.0.0.1:0").await?;
    println!("listening tokio tcp {}", own.local_addr()?);

    // tokio (since 1.51.6) has no safe way to register any fd: every
    // AsyncFd constructor is `unsafe` or deprecated, since nothing stops
    // safe code from swapping the inner value for one with another fd.
    // SAFETY: `Nested: AsFd` owns its fd, open and unchanged until the
    // `Nested` drops, which is after `fd` deregisters it; and the `Nested`
    // is never replaced through `get_mut`.
    let mut fd = unsafe { AsyncFd::register_with_interest(nested, Interest::READABLE) }?;
    let mut ctrl_c = pin!(tokio::signal::ctrl_c());
    let mut stopping = false;
    loop {
        // Drain: everything ready now, before waiting again.
        while fd.get_mut().turn(Duration::ZERO)? {}
        if stopping && fd.get_ref().is_finished() {
            println!("both stopped; bye");
            return Ok(());
        }
        let wait = fd
            .get_ref()
            .next_timeout()
            .unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            ready = fd.readable() => ready?.clear_ready(),
            _ = tokio::time::sleep(wait) => {}
            conn = own.accept(), if !stopping => {
                let (s, _) = conn?;
                tokio::spawn(serve_tokio(s));
            }
            _ = &mut ctrl_c, if !stopping => {
                stopping = true;
                fd.get_mut().shutdown(Duration::from_secs(5));
            }
        }
    }
}
