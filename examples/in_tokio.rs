//! sockloop nested in a tokio current-thread runtime, on one thread, next
//! to a tokio listener of the program's own.
//!
//! ```text
//! cargo run --example in_tokio
//! printf 'hi\n' | sockloop send tcp://127.0.0.1:PORT   # sockloop's echo (port printed)
//! printf 'hi\n' | sockloop send tcp://127.0.0.1:PORT   # tokio's own: "tokio: hi"
//! ```
//!
//! How: the server's one fd goes into tokio's reactor through `AsyncFd`;
//! when it is readable, or when the server's next deadline comes, the
//! program calls `Nested::turn(ZERO)` until it says there is no more to do
//! (AsyncFd is edge-triggered: what is not drained now is not reported
//! again). Ctrl-C stops both: tokio's listener stops accepting, and the
//! server delivers what it owes (for up to 5 s) before the program exits.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::pin;
use std::time::Duration;

use sockloop::{ListenSpec, Nested, Options, Server};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The server's fd, for AsyncFd (which wants to own something AsRawFd;
/// the fd itself stays the server's).
struct ServerFd(RawFd);

impl AsRawFd for ServerFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

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
    let spec: ListenSpec = format!("echo=tcp://127.0.0.1:{port}")
        .parse()
        .map_err(io::Error::other)?;
    let mut nested = Nested::new(Server::bind(&[spec], Options::default())?)?;
    for (name, ep) in nested.server().listeners() {
        println!("listening {name} {} {}", ep.proto, ep.addr);
    }
    let own = TcpListener::bind("127.0.0.1:0").await?;
    println!("listening tokio tcp {}", own.local_addr()?);

    // SAFETY: the fd is the server's epoll instance, open for as long as
    // `nested` lives; `fd` is declared after `nested`, so it is dropped
    // (deregistered) first.
    let fd = unsafe {
        AsyncFd::register_with_interest(ServerFd(nested.as_raw_fd()), tokio::io::Interest::READABLE)
    }
    .map_err(|e| io::Error::other(e.to_string()))?;
    let mut ctrl_c = pin!(tokio::signal::ctrl_c());
    let mut stopping = false;
    loop {
        // Drain: everything ready now, before waiting again.
        while nested.turn(Duration::ZERO)? {}
        if stopping && nested.is_finished() {
            println!("both stopped; bye");
            return Ok(());
        }
        let wait = nested.next_timeout().unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            ready = fd.readable() => ready?.clear_ready(),
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
