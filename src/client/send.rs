//! `sockloop send`: each line of input out, each reply printed on its own
//! line, and never a reply printed as the answer to another line.

use std::io::{self, BufRead, Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::time::Duration;

use super::{connect_error, escape_for_terminal, is_timeout, next_line, udp_socket_for, SendArgs};
use crate::addr::Proto;
use crate::framing::{Decoded, Framing};

/// The longest reply a client accepts as one frame.
const MAX_REPLY: usize = 16 * 1024 * 1024;

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
/// line. Returns how many replies were lost (did not come within
/// `timeout`; each is reported on stderr): the command exits 1 unless
/// that is 0.
pub fn send(args: &SendArgs) -> Result<usize, String> {
    let stdin = io::stdin();
    let stdout = io::stdout();
    match args.endpoint.proto {
        Proto::Tcp => send_tcp(args, &mut stdin.lock(), &mut stdout.lock()),
        Proto::Udp => send_udp(args, &mut stdin.lock(), &mut stdout.lock()),
    }
}

/// Over one TCP connection; returns how many replies were lost.
///
/// Replies come back in order, so each reply frame answers the oldest line
/// not yet answered. A line whose reply does not come within `--timeout`
/// is reported lost and the client goes on; if that reply turns up later,
/// it is the answer to that earlier line, not to the one now awaited: it
/// is shown on stderr as `late reply to line N: ...` and never printed on
/// stdout as the answer to another line. At the end of input the client
/// half-closes and reads on until the server closes (within `--timeout`),
/// so replies still owed are shown and the connection ends with FINs,
/// not with a reset (closing with unread input would send an RST).
pub(crate) fn send_tcp(
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
    let mut replies = Replies::new(args.framing);
    let mut line = Vec::new();
    let mut wire = Vec::new();
    let mut lost = 0;
    let mut sent = 0; // lines sent so far: the next one is line `sent + 1`
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
        sent += 1;
        // Read until the reply to this line has come, or time is up.
        loop {
            match replies
                .next_reply(&mut stream)
                .map_err(|e| format!("{ep}: {e}"))?
            {
                Reply::Frame(reply) => {
                    if replies.answered + 1 < sent {
                        // The answer to an earlier line that timed out.
                        replies.answered += 1;
                        report_late(replies.answered, &reply);
                        continue;
                    }
                    replies.answered += 1;
                    print_reply(out, &reply)?;
                    if reply.starts_with(b"ERR ") && server_closed(&mut stream) {
                        // The server's own error line (frame too long,
                        // frame timeout, too many connections), then its
                        // close: the line was refused.
                        return Err(format!(
                            "{ep}: the server refused the line and closed: {}",
                            String::from_utf8_lossy(&reply)
                        ));
                    }
                    break;
                }
                Reply::TimedOut => {
                    report_lost(args);
                    lost += 1;
                    break;
                }
                Reply::Eof => {
                    return Err(format!(
                        "{ep}: the server closed the connection before replying"
                    ));
                }
            }
        }
    }
    // End of input: say so (FIN), and take what is still owed until the
    // server closes, so nothing unread is left to turn our close into a
    // reset.
    let _ = stream.shutdown(Shutdown::Write);
    while let Ok(Reply::Frame(reply)) = replies.next_reply(&mut stream) {
        replies.answered += 1;
        report_late(replies.answered, &reply);
    }
    Ok(lost)
}

/// A reply that came after its line was reported lost.
fn report_late(line: usize, reply: &[u8]) {
    eprintln!(
        "late reply to line {line} (after its timeout): {}",
        escape_for_terminal(reply)
    );
}

/// What one wait for a reply gave.
enum Reply {
    /// One whole reply (its payload).
    Frame(Vec<u8>),
    /// `--timeout` passed with no whole reply.
    TimedOut,
    /// The server closed (what came before was used).
    Eof,
}

/// Reply bytes read but not yet used, cut by the framing; and how many
/// lines have had their reply so far.
struct Replies {
    framing: Framing,
    buf: Vec<u8>,
    chunk: Vec<u8>,
    answered: usize,
}

impl Replies {
    fn new(framing: Framing) -> Self {
        Replies {
            framing,
            buf: Vec::new(),
            chunk: vec![0u8; 64 * 1024],
            answered: 0,
        }
    }

    /// The next whole reply, reading as needed (each read bounded by the
    /// stream's read timeout). `raw`: whatever one read returned.
    fn next_reply(&mut self, stream: &mut TcpStream) -> Result<Reply, String> {
        loop {
            if self.framing != Framing::Raw || !self.buf.is_empty() {
                match self.framing.decode(&self.buf, MAX_REPLY, false) {
                    Decoded::Frame { payload, consumed } => {
                        let reply = self.buf[payload].to_vec();
                        self.buf.drain(..consumed);
                        return Ok(Reply::Frame(reply));
                    }
                    Decoded::TooLong => return Err(format!("reply longer than {MAX_REPLY} bytes")),
                    Decoded::NeedMore => {}
                }
            }
            match stream.read(&mut self.chunk) {
                Ok(0) => return Ok(Reply::Eof),
                Ok(n) => self.buf.extend_from_slice(&self.chunk[..n]),
                Err(e) if is_timeout(&e) => return Ok(Reply::TimedOut),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("receive: {e}")),
            }
        }
    }
}

/// After an `ERR ...` reply: whether the server closed the connection
/// (EOF or reset within a short wait), which tells its error line from an
/// echo of a line that happened to start with `ERR `.
fn server_closed(stream: &mut TcpStream) -> bool {
    let timeout = stream.read_timeout().ok().flatten();
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut probe = [0u8; 1];
    let closed = match stream.peek(&mut probe) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !is_timeout(&e),
    };
    // Back to --timeout for the replies still to come.
    let _ = stream.set_read_timeout(timeout);
    closed
}

/// One datagram per line; returns how many replies were lost.
pub(crate) fn send_udp(
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
        if lost > 0 {
            // A reply that came after its timeout is waiting: it answers
            // an earlier line, not this one. (A datagram carries no line
            // number: one later still can only be told apart by content.)
            take_late_datagrams(&sock, &mut buf);
        }
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

/// The datagrams already waiting, shown as late replies on stderr.
fn take_late_datagrams(sock: &UdpSocket, buf: &mut [u8]) {
    if sock.set_nonblocking(true).is_err() {
        return;
    }
    while let Ok(n) = sock.recv(buf) {
        eprintln!(
            "late reply (after its timeout): {}",
            escape_for_terminal(&buf[..n])
        );
    }
    let _ = sock.set_nonblocking(false);
}
