//! The textbook clients: `send` (many sentences over one connection, or
//! one datagram per line) and `chat` (type and read at the same time).
//!
//! These are ordinary blocking clients with read timeouts: one socket and a
//! human (or a pipe) on the other side need no event loop. `chat` reads the
//! terminal and the socket at the same time with one thread for each.

use std::io::{self, BufRead, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::addr::{Endpoint, Proto};
use crate::framing::{Decoded, Framing};

/// The longest reply a client accepts as one frame.
const MAX_REPLY: usize = 16 * 1024 * 1024;

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

/// A lost reply is reported, and the client goes on (docs/protocol.md, "Command line" `send`).
fn report_lost(args: &SendArgs) {
    eprintln!(
        "error: no reply within {:?} from {}",
        args.timeout, args.endpoint
    );
}

fn print_reply(out: &mut impl Write, reply: &[u8]) -> Result<(), String> {
    out.write_all(reply)
        .and_then(|_| out.write_all(b"\n"))
        .and_then(|_| out.flush())
        .map_err(|e| format!("stdout: {e}"))
}

/// `sockloop send`: each stdin line out, each reply printed on its own
/// line. Exit 0 if every reply came, 1 if any was lost.
pub fn send(args: &SendArgs) -> Result<ExitCode, String> {
    let stdin = io::stdin();
    let stdout = io::stdout();
    let lost = match args.endpoint.proto {
        Proto::Tcp => send_tcp(args, &mut stdin.lock(), &mut stdout.lock())?,
        Proto::Udp => send_udp(args, &mut stdin.lock(), &mut stdout.lock())?,
    };
    Ok(if lost == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Over one TCP connection; returns how many replies were lost.
pub fn send_tcp(
    args: &SendArgs,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> Result<usize, String> {
    let ep = &args.endpoint;
    let mut stream =
        TcpStream::connect_timeout(&ep.addr, args.timeout).map_err(|e| connect_error(ep, &e))?;
    stream
        .set_read_timeout(Some(args.timeout))
        .map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let mut line = Vec::new();
    let mut wire = Vec::new();
    let mut buf = Vec::new(); // reply bytes read but not yet used
    let mut chunk = vec![0u8; 64 * 1024];
    let mut lost = 0;
    while next_line(input, &mut line).map_err(|e| format!("stdin: {e}"))? {
        wire.clear();
        match args.framing {
            // raw: the textbook's client sends the sentence and prints what
            // one read returns.
            Framing::Raw => wire.extend_from_slice(&line),
            f => f.encode(&line, &mut wire),
        }
        stream
            .write_all(&wire)
            .map_err(|e| format!("{ep}: send: {e}"))?;
        // Read until one whole reply frame is buffered.
        loop {
            if args.framing != Framing::Raw || !buf.is_empty() {
                match args.framing.decode(&buf, MAX_REPLY, false) {
                    Decoded::Frame { payload, consumed } => {
                        let reply = &buf[payload];
                        print_reply(out, reply)?;
                        if reply.starts_with(b"ERR ") && server_closed(&mut stream) {
                            // The server's own error line (frame too long,
                            // frame timeout, too many connections), then
                            // its close: the line was refused.
                            return Err(format!(
                                "{ep}: the server refused the line and closed: {}",
                                String::from_utf8_lossy(reply)
                            ));
                        }
                        buf.drain(..consumed);
                        break;
                    }
                    Decoded::TooLong => {
                        return Err(format!("{ep}: reply longer than {MAX_REPLY} bytes"))
                    }
                    Decoded::NeedMore => {}
                }
            }
            match stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(format!(
                        "{ep}: the server closed the connection before replying"
                    ));
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if is_timeout(&e) => {
                    report_lost(args);
                    lost += 1;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("{ep}: receive: {e}")),
            }
        }
    }
    Ok(lost)
}

/// After an `ERR ...` reply: whether the server closed the connection
/// (EOF or reset within a short wait), which tells its error line from an
/// echo of a line that happened to start with `ERR `.
fn server_closed(stream: &mut TcpStream) -> bool {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut probe = [0u8; 1];
    match stream.peek(&mut probe) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !is_timeout(&e),
    }
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

/// One datagram per line; returns how many replies were lost.
pub fn send_udp(
    args: &SendArgs,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> Result<usize, String> {
    let ep = &args.endpoint;
    let sock = udp_socket_for(ep)?;
    sock.set_read_timeout(Some(args.timeout))
        .map_err(|e| e.to_string())?;
    let mut line = Vec::new();
    let mut buf = vec![0u8; 65_536];
    let mut lost = 0;
    while next_line(input, &mut line).map_err(|e| format!("stdin: {e}"))? {
        sock.send(&line).map_err(|e| format!("{ep}: send: {e}"))?;
        match sock.recv(&mut buf) {
            Ok(n) => print_reply(out, &buf[..n])?,
            Err(e) if is_timeout(&e) => {
                report_lost(args);
                lost += 1;
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                return Err(format!(
                    "{ep}: connection refused (nothing listening there)"
                ));
            }
            Err(e) => return Err(format!("{ep}: receive: {e}")),
        }
    }
    Ok(lost)
}

/// `sockloop chat`: lines typed go to the room, the room's lines are
/// printed as they come, escaped. Ends at end of input.
pub fn chat(args: &ChatArgs) -> Result<ExitCode, String> {
    let ep = args.endpoint;
    let (done_tx, done_rx) = mpsc::channel::<Result<(), String>>();
    match ep.proto {
        Proto::Tcp => {
            let stream = TcpStream::connect_timeout(&ep.addr, Duration::from_secs(5))
                .map_err(|e| connect_error(&ep, &e))?;
            let mut reader = stream.try_clone().map_err(|e| e.to_string())?;
            thread::spawn(move || {
                let r = print_room_tcp(&mut reader, &mut io::stdout());
                let _ = done_tx.send(r.map_err(|e| format!("{ep}: {e}")));
            });
            let mut writer = stream;
            let mut line = Vec::new();
            let stdin = io::stdin();
            let mut input = stdin.lock();
            while next_line(&mut input, &mut line).map_err(|e| format!("stdin: {e}"))? {
                line.push(b'\n');
                if let Err(e) = writer.write_all(&line) {
                    return Err(format!("{ep}: send: {e}"));
                }
                if let Ok(r) = done_rx.try_recv() {
                    return r.map(|_| ExitCode::SUCCESS); // the server closed
                }
            }
            // End of input: half-close, and let the room's last lines
            // arrive until the server closes (docs/protocol.md, "Services"), within bounds.
            let _ = writer.shutdown(Shutdown::Write);
            match done_rx.recv_timeout(Duration::from_secs(5)) {
                Ok(r) => r.map(|_| ExitCode::SUCCESS),
                Err(_) => Ok(ExitCode::SUCCESS),
            }
        }
        Proto::Udp => {
            let sock = udp_socket_for(&ep)?;
            let reader = sock.try_clone().map_err(|e| e.to_string())?;
            thread::spawn(move || {
                let mut buf = vec![0u8; 65_536];
                let mut out = io::stdout();
                loop {
                    match reader.recv(&mut buf) {
                        Ok(n) => {
                            let _ = writeln!(out, "{}", escape_for_terminal(&buf[..n]));
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            let _ = done_tx.send(Err(format!("{ep}: {e}")));
                            return;
                        }
                    }
                }
            });
            let mut line = Vec::new();
            let stdin = io::stdin();
            let mut input = stdin.lock();
            while next_line(&mut input, &mut line).map_err(|e| format!("stdin: {e}"))? {
                sock.send(&line).map_err(|e| format!("{ep}: send: {e}"))?;
                if let Ok(r) = done_rx.try_recv() {
                    return r.map(|_| ExitCode::SUCCESS);
                }
            }
            let _ = sock.send(crate::service::LEAVE);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Print each line the room sends, escaped, until the server closes.
fn print_room_tcp(reader: &mut impl Read, out: &mut impl Write) -> io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut used = 0;
        while let Decoded::Frame { payload, consumed } =
            Framing::Line.decode(&buf[used..], usize::MAX - 2, n == 0)
        {
            writeln!(
                out,
                "{}",
                escape_for_terminal(&buf[used + payload.start..used + payload.end])
            )?;
            used += consumed;
        }
        out.flush()?;
        buf.drain(..used);
        if n == 0 {
            return Ok(());
        }
    }
}

/// Text from the network made safe for a terminal: control characters
/// (C0 but tab, DEL, C1) and bidirectional overrides are shown escaped —
/// `\x1b`, `\u{9b}` — and bytes that are not UTF-8 as `\xff`, so nothing a
/// peer sends can move the cursor, recolour or retitle the terminal.
pub fn escape_for_terminal(bytes: &[u8]) -> String {
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
