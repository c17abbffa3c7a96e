//! The textbook clients: `send` (many sentences over one connection, or
//! one datagram per line) and `chat` (type and read at the same time).
//!
//! These are ordinary blocking clients with read timeouts: one socket and a
//! human (or a pipe) on the other side need no event loop. `send.rs` pairs
//! each line with its reply (and a late reply with its own line); `chat.rs`
//! reads the terminal and the socket at the same time, one thread each, and
//! notices when the server goes away. What both use is here.

mod chat;
mod send;

use std::io::{self, BufRead};
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use crate::addr::Endpoint;
use crate::framing::Framing;

pub use chat::chat;
pub use send::send;

/// `sockloop send`'s arguments.
pub struct SendArgs {
    /// The server.
    pub endpoint: Endpoint,
    /// TCP framing of lines and replies.
    pub framing: Framing,
    /// How long to wait for each reply.
    pub timeout: Duration,
}

/// `sockloop chat`'s arguments.
pub struct ChatArgs {
    /// The room.
    pub endpoint: Endpoint,
}

/// A line of input, without its `\n` or `\r\n`.
fn next_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<bool> {
    line.clear();
    if input.read_until(b'\n', line)? == 0 {
        return Ok(false);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    Ok(true)
}

fn connect_error(endpoint: &Endpoint, e: &io::Error) -> String {
    format!("cannot connect to {endpoint}: {e}")
}

/// A read timeout shows as WouldBlock or TimedOut, by platform.
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn udp_socket_for(ep: &Endpoint) -> Result<UdpSocket, String> {
    let local: SocketAddr = if ep.addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(local).map_err(|e| format!("udp bind: {e}"))?;
    // Connected: only the server's datagrams are received, and an ICMP
    // "port unreachable" comes back as ECONNREFUSED instead of silence.
    sock.connect(ep.addr).map_err(|e| connect_error(ep, &e))?;
    Ok(sock)
}

/// Text from the network made safe for a terminal: control characters
/// (C0 but tab, DEL, C1) and bidirectional overrides are shown escaped —
/// `\x1b`, `\u{9b}` — and bytes that are not UTF-8 as `\xff`, so nothing a
/// peer sends can move the cursor, recolour or retitle the terminal.
pub(crate) fn escape_for_terminal(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
            if c == '\t' || !(c.is_control() || bidi) {
                s.push(c);
            } else if (c as u32) < 0x80 {
                let _ = write!(s, "\\x{:02x}", c as u32);
            } else {
                let _ = write!(s, "\\u{{{:x}}}", c as u32);
            }
        }
        for b in chunk.invalid() {
            let _ = write!(s, "\\x{b:02x}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::chat::print_room_tcp;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_control_characters_but_tab() {
        assert_eq!(escape_for_terminal(b"a\tb"), "a\tb");
        assert_eq!(escape_for_terminal(b"\x1b[2Jboo\x07"), "\\x1b[2Jboo\\x07");
        assert_eq!(escape_for_terminal("\u{9b}31m".as_bytes()), "\\u{9b}31m");
        assert_eq!(escape_for_terminal("x\u{202e}y".as_bytes()), "x\\u{202e}y");
        assert_eq!(escape_for_terminal(b"caf\xc3\xa9 \xff"), "café \\xff");
        assert_eq!(escape_for_terminal(b"\r\n\x7f"), "\\x0d\\x0a\\x7f");
    }

    proptest! {
        #[test]
        fn escaped_text_has_no_control_characters(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let s = escape_for_terminal(&bytes);
            prop_assert!(s.chars().all(|c| c == '\t' || !c.is_control()));
        }
    }

    #[test]
    fn next_line_strips_line_endings() {
        let mut input = &b"one\r\ntwo\nlast"[..];
        let mut line = Vec::new();
        let mut got = Vec::new();
        while next_line(&mut input, &mut line).unwrap() {
            got.push(line.clone());
        }
        assert_eq!(
            got,
            vec![b"one".to_vec(), b"two".to_vec(), b"last".to_vec()]
        );
    }

    #[test]
    fn room_lines_are_printed_escaped_until_eof() {
        let mut input = &b"* 127.0.0.1:5 joined\n127.0.0.1:5: \x1b]0;pwned\x07\nlast"[..];
        let mut out = Vec::new();
        print_room_tcp(&mut input, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "* 127.0.0.1:5 joined\n127.0.0.1:5: \\x1b]0;pwned\\x07\nlast\n"
        );
    }
}
