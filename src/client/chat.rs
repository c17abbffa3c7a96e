//! `sockloop chat`: type and read at the same time; the room's lines are
//! printed escaped, and the server going away ends the client at once.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use super::{connect_error, escape_for_terminal, next_line, udp_socket_for, ChatArgs};
use crate::addr::Proto;
use crate::framing::{Decoded, Framing};

/// What the chat client waits for: a typed line, the end of typing, or
/// the end of the room (the server closed, or an error).
enum ChatEvent {
    Line(Vec<u8>),
    InputEnded,
    RoomEnded(Result<(), String>),
}

/// Sends one typed line to the room (TCP: framed with `\n`; UDP: as a
/// datagram).
type SendLine = Box<dyn FnMut(&[u8]) -> io::Result<()>>;

/// Typed lines, read on a thread of their own so that the room ending can
/// be noticed while the user is not typing.
fn read_typed_lines(events: mpsc::Sender<ChatEvent>) {
    thread::spawn(move || {
        let stdin = io::stdin();
        let mut input = stdin.lock();
        let mut line = Vec::new();
        loop {
            let event = match next_line(&mut input, &mut line) {
                Ok(true) => ChatEvent::Line(std::mem::take(&mut line)),
                Ok(false) => ChatEvent::InputEnded,
                Err(e) => ChatEvent::RoomEnded(Err(format!("stdin: {e}"))),
            };
            let last = !matches!(event, ChatEvent::Line(_));
            if events.send(event).is_err() || last {
                return;
            }
        }
    });
}

/// `sockloop chat`: lines typed go to the room, the room's lines are
/// printed as they come, escaped. Ends at end of input (`Ok`); if the
/// server closes the connection first, fails at once with that, without
/// waiting for the next typed line.
pub fn chat(args: &ChatArgs) -> Result<(), String> {
    let ep = args.endpoint;
    let (tx, events) = mpsc::channel::<ChatEvent>();
    let room_tx = tx.clone();
    let mut send: SendLine;
    let leave: Box<dyn FnOnce()>;
    match ep.proto {
        Proto::Tcp => {
            let stream = TcpStream::connect_timeout(&ep.addr, Duration::from_secs(5))
                .map_err(|e| connect_error(&ep, &e))?;
            let mut reader = stream.try_clone().map_err(|e| e.to_string())?;
            thread::spawn(move || {
                let r = print_room_tcp(&mut reader, &mut io::stdout());
                let _ = room_tx.send(ChatEvent::RoomEnded(r.map_err(|e| e.to_string())));
            });
            let writer = stream.try_clone().map_err(|e| e.to_string())?;
            send = Box::new(move |line| {
                let mut framed = line.to_vec();
                framed.push(b'\n');
                (&writer).write_all(&framed)
            });
            // Half-close: the room's last lines still arrive until the
            // server closes (docs/protocol.md, "Services").
            leave = Box::new(move || {
                let _ = stream.shutdown(Shutdown::Write);
            });
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
                            let _ = room_tx.send(ChatEvent::RoomEnded(Err(e.to_string())));
                            return;
                        }
                    }
                }
            });
            let writer = sock.try_clone().map_err(|e| e.to_string())?;
            send = Box::new(move |line| writer.send(line).map(|_| ()));
            leave = Box::new(move || {
                let _ = sock.send(crate::service::LEAVE);
            });
        }
    }
    read_typed_lines(tx);
    let room_ended = |r: Result<(), String>| match r {
        Ok(()) => Err(format!("{ep}: the server closed the connection")),
        Err(e) => Err(format!("{ep}: {e}")),
    };
    loop {
        match events.recv() {
            Ok(ChatEvent::Line(line)) => {
                send(&line).map_err(|e| format!("{ep}: send: {e}"))?;
            }
            Ok(ChatEvent::RoomEnded(r)) => return room_ended(r),
            Ok(ChatEvent::InputEnded) | Err(_) => break,
        }
    }
    leave();
    if ep.proto == Proto::Udp {
        return Ok(());
    }
    // We left; the server's close is now the expected end. Wait for it a
    // little, so the room's last lines are printed.
    loop {
        match events.recv_timeout(Duration::from_secs(5)) {
            Ok(ChatEvent::RoomEnded(Err(e))) => return Err(format!("{ep}: {e}")),
            Ok(ChatEvent::RoomEnded(Ok(()))) | Err(_) => return Ok(()),
            Ok(_) => {}
        }
    }
}

/// Print each line the room sends, escaped, until the server closes.
pub(super) fn print_room_tcp(reader: &mut impl Read, out: &mut impl Write) -> io::Result<()> {
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
