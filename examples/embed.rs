//! sockloop inside someone else's mio loop, with a service of our own.
//!
//! The host program owns the `Poll`. It has a socket of its own (a UDP
//! "control" socket on token 0: send it `stop`), and gives the server the
//! token range 1000..200_000. Each turn it polls, keeps its own events,
//! hands the rest to the server, and calls the server's timer hook.
//!
//! ```text
//! cargo run --example embed
//! printf 'hello\n' | nc -q1 127.0.0.1 7400      # → "olleh"
//! printf 'stop' | nc -u -w1 127.0.0.1 7401
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use sockloop::service::{ConnId, Outbox, Service};
use sockloop::{Endpoint, Framing, Options, Proto, Server};

/// A service of our own: each line comes back reversed. No sockets here,
/// so it is tested with plain byte slices (see the test below).
struct Reverse;

impl Service for Reverse {
    fn default_framing(&self) -> Framing {
        Framing::Line
    }

    fn on_frame(&mut self, _conn: ConnId, _peer: SocketAddr, frame: &[u8], out: &mut Outbox) {
        out.reply_with(|buf| buf.extend(frame.iter().rev()));
    }
}

const CONTROL: Token = Token(0);

fn main() -> std::io::Result<()> {
    env_logger::init();
    let endpoint = Endpoint {
        proto: Proto::Tcp,
        addr: "127.0.0.1:7400".parse().unwrap(),
    };
    let mut server = Server::builder(Options::default())
        .listen_with("reverse", endpoint, None, Box::new(Reverse))
        .listen(&"upper=udp://127.0.0.1:7402".parse().unwrap())
        .build()?;

    let mut poll = Poll::new()?;
    server.register(poll.registry(), 1000..200_000)?;
    let mut control = UdpSocket::bind("127.0.0.1:7401".parse().unwrap())?;
    poll.registry()
        .register(&mut control, CONTROL, Interest::READABLE)?;
    for (name, ep) in server.listeners() {
        println!("listening {name} {} {}", ep.proto, ep.addr);
    }

    let mut events = Events::with_capacity(1024);
    let counters = server.counters();
    loop {
        // Sleep no longer than the server allows (idle deadlines, batches
        // it could not finish); our own timers would go in this min too.
        let timeout = server
            .next_timeout()
            .map(|t| t.min(Duration::from_secs(10)));
        poll.poll(&mut events, timeout)?;
        for event in events.iter() {
            if event.token() == CONTROL {
                let mut buf = [0u8; 64];
                // Drain until WouldBlock: edge-triggered, like the server.
                while let Ok((n, _)) = control.recv_from(&mut buf) {
                    if &buf[..n] == b"stop" {
                        server.shutdown(Duration::from_secs(2));
                    }
                }
            } else {
                server.handle_event(event);
            }
        }
        server.on_timer();
        if server.is_finished() {
            println!("served {} connections; bye", counters.snapshot().accepted);
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_without_sockets() {
        let mut out = Outbox::default();
        Reverse.on_frame(ConnId(1), "127.0.0.1:1".parse().unwrap(), b"abc", &mut out);
        assert_eq!(out.messages().next().unwrap().1, b"cba");
    }
}
