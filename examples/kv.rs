//! A key-value store as a sockloop service: per-connection state through
//! `ConnId`, no I/O in the service, tested with byte slices.
//!
//! ```text
//! cargo run --example kv                    # listens on 127.0.0.1:7600 (or the port given)
//! printf 'SET a 1\nGET a\nDEL a\nGET a\nSTATS\n' | sockloop send tcp://127.0.0.1:7600
//! ```
//!
//! The protocol, one command per line, one reply line each:
//!
//! | command | reply |
//! |---|---|
//! | `SET key value` | `OK` |
//! | `GET key` | the value, or `NIL` |
//! | `DEL key` | `1` if it existed, else `0` |
//! | `STATS` | `commands N` — how many commands *this connection* sent (STATS included) |
//! | anything else | `ERR unknown command` |
//!
//! The store is shared by every connection of the listener; the counts are
//! each connection's own, kept under its `ConnId` (an id the server never
//! reuses, unlike a peer address) and dropped in `on_disconnect`.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::SocketAddr;

use sockloop::service::{ConnId, Outbox, Service};
use sockloop::{Endpoint, Framing, Options, Proto, Server};

/// The service: a map, and each connection's command count.
#[derive(Default)]
pub struct Kv {
    store: HashMap<Vec<u8>, Vec<u8>>,
    commands: HashMap<ConnId, u64>,
}

impl Service for Kv {
    fn default_framing(&self) -> Framing {
        Framing::Line
    }

    fn on_connect(&mut self, conn: ConnId, _peer: SocketAddr, _out: &mut Outbox) {
        self.commands.insert(conn, 0);
    }

    fn on_frame(&mut self, conn: ConnId, _peer: SocketAddr, frame: &[u8], out: &mut Outbox) {
        let count = self.commands.entry(conn).or_default();
        *count += 1;
        let count = *count;
        let mut words = frame.splitn(3, |&b| b == b' ');
        let (cmd, key, rest) = (words.next(), words.next(), words.next());
        match (cmd, key, rest) {
            (Some(b"SET"), Some(k), Some(v)) => {
                self.store.insert(k.to_vec(), v.to_vec());
                out.reply(b"OK");
            }
            (Some(b"GET"), Some(k), None) => match self.store.get(k) {
                Some(v) => out.reply(v),
                None => out.reply(b"NIL"),
            },
            (Some(b"DEL"), Some(k), None) => out.reply(if self.store.remove(k).is_some() {
                b"1"
            } else {
                b"0"
            }),
            (Some(b"STATS"), None, None) => {
                out.reply_with(|v| {
                    let _ = write!(v, "commands {count}");
                });
            }
            _ => out.reply(b"ERR unknown command"),
        }
    }

    fn on_disconnect(&mut self, conn: ConnId, _peer: SocketAddr, _out: &mut Outbox) {
        self.commands.remove(&conn);
    }
}

fn main() -> io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(7600);
    let endpoint = Endpoint {
        proto: Proto::Tcp,
        addr: ([127, 0, 0, 1], port).into(),
    };
    let server = Server::builder(Options::default())
        .listen_with("kv", endpoint, None, Box::new(Kv::default()))
        .build()?;
    for (name, ep) in server.listeners() {
        println!("listening {name} {} {}", ep.proto, ep.addr);
    }
    io::stdout().flush()?;
    server.run() // until Ctrl-C
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(kv: &mut Kv, conn: u64, line: &[u8]) -> Vec<u8> {
        let mut out = Outbox::default();
        kv.on_frame(ConnId(conn), "127.0.0.1:1".parse().unwrap(), line, &mut out);
        let reply = out.messages().next().unwrap().1.to_vec();
        reply
    }

    #[test]
    fn set_get_del_without_sockets() {
        let mut kv = Kv::default();
        assert_eq!(ask(&mut kv, 1, b"SET a hello world"), b"OK");
        assert_eq!(ask(&mut kv, 2, b"GET a"), b"hello world");
        assert_eq!(ask(&mut kv, 2, b"DEL a"), b"1");
        assert_eq!(ask(&mut kv, 1, b"DEL a"), b"0");
        assert_eq!(ask(&mut kv, 1, b"GET a"), b"NIL");
        assert_eq!(ask(&mut kv, 1, b"FLY"), b"ERR unknown command");
    }

    #[test]
    fn stats_are_per_connection_and_forgotten_on_disconnect() {
        let mut kv = Kv::default();
        let peer = "127.0.0.1:1".parse().unwrap();
        let mut out = Outbox::default();
        kv.on_connect(ConnId(1), peer, &mut out);
        kv.on_connect(ConnId(2), peer, &mut out);
        ask(&mut kv, 1, b"GET x");
        ask(&mut kv, 1, b"GET y");
        assert_eq!(ask(&mut kv, 1, b"STATS"), b"commands 3");
        assert_eq!(ask(&mut kv, 2, b"STATS"), b"commands 1");
        kv.on_disconnect(ConnId(1), peer, &mut out);
        assert!(!kv.commands.contains_key(&ConnId(1)));
    }
}
