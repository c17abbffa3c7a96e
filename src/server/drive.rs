//! Driving one TCP connection as far as it can go without blocking: the
//! heart of the loop, written over any [`Stream`] so that the simulation
//! tests (`sim.rs`) can drive it through a stream that returns short reads,
//! short writes, `WouldBlock` and `Interrupted` at random.
//!
//! ```text
//!  drive ─▶ write what is owed ─▶ whole frames already held? ─▶ hand them on
//!        ▲                     └▶ may read? ─▶ read one chunk ─▶ hand it on
//!        └──────────── until WouldBlock, backpressure, a budget, or the end
//! ```
//!
//! It touches only its own connection. What concerns others — messages to
//! the room, deadlines, interest, closing — it reports in a [`Driven`] for
//! the server to act on.

use std::io;

use log::{debug, trace};

use crate::conn::{BufPool, Conn, Event, Next, State, Stream, Why};
use crate::framing::{Framing, LINE_TOO_LONG};
use crate::inbuf::{Serving, Stop};
use crate::service::To;
use crate::stats::ListenerCounters;

/// What a connection's turn needs from the server: what serves its input
/// (framing, service, outbox, the work budget), `--write-buffer`, the
/// shared buffers, and this turn's read budget.
pub(crate) struct Cx<'a> {
    /// The connection's slab key (for the log).
    pub key: usize,
    /// Its input's framing, service, outbox and work budget.
    pub serving: Serving<'a>,
    pub write_buffer: usize,
    pub pool: &'a mut BufPool,
    /// Its listener's counters.
    pub counters: &'a ListenerCounters,
    /// The loop's clock, ms.
    pub now_ms: u64,
    /// Reads this turn may still make.
    pub reads_left: usize,
    /// Its room is paused (a member is above `--write-buffer`): take no
    /// input.
    pub input_paused: bool,
    /// Out: bytes moved either way (the idle deadline moves).
    pub traffic: bool,
}

/// How a connection's turn ended.
#[derive(Debug)]
pub(crate) enum Driven {
    /// Waiting on the socket: READABLE, WRITABLE, or both.
    Blocked,
    /// A budget ran out with more to do: drive it again next turn (edge
    /// triggering will not report what is already there again).
    Yielded,
    /// Its room is paused: it has input to take, later.
    Paused,
    /// The service wrote to the room: the outbox holds messages for the
    /// other members. Route them, then drive this one again next turn, so
    /// the recipients write before it reads more.
    ToRoom,
    /// We sent our FIN: its deadline becomes the linger deadline.
    SentFin,
    /// Its life is over: close it.
    Done(Why),
}

/// Move the connection along until it must wait. See the module docs.
pub(crate) fn drive<S: Stream>(c: &mut Conn<S>, cx: &mut Cx, scratch: &mut [u8]) -> Driven {
    let write_buffer = cx.write_buffer;
    loop {
        if let Err(e) = write_pending(c, cx) {
            return Driven::Done(Why::Io("write", e));
        }
        let state = c.state();
        // Whole frames left over from an earlier turn come before any new
        // read: the budget that stopped them is fresh now.
        if c.has_ready_input() && c.may_take_input(write_buffer) {
            if cx.input_paused && state == State::Open {
                return Driven::Paused;
            }
            if cx.serving.budget.left == 0 {
                return Driven::Yielded;
            }
            let at_eof = state == State::PeerClosed;
            if consume(c, cx, &[], at_eof) {
                return Driven::ToRoom;
            }
            continue;
        }
        match state {
            State::Open if c.wants_read(write_buffer) => {
                if cx.input_paused {
                    return Driven::Paused;
                }
                if cx.reads_left == 0 || cx.serving.budget.left == 0 {
                    trace!("conn {}: turn's budget used; more next turn", cx.key);
                    return Driven::Yielded;
                }
                cx.reads_left -= 1;
                match read_once(c, cx, scratch) {
                    Ok(true) => return Driven::ToRoom,
                    Ok(false) => continue, // answer what was read, then read again
                    Err(why) => return Driven::Done(why),
                }
            }
            // Waiting for READABLE (nothing more to read now) or WRITABLE
            // (above --write-buffer, or replies pending).
            State::Open => return Driven::Blocked,
            State::Closing | State::Lingering if c.wants_discard() => {
                if cx.reads_left == 0 {
                    return Driven::Yielded;
                }
                cx.reads_left -= 1;
                if let Err(why) = discard_once(c, cx, scratch) {
                    return Driven::Done(why);
                }
            }
            // Replies still owed: wait for WRITABLE.
            State::PeerClosed | State::Closing if c.pending_out() > 0 => return Driven::Blocked,
            // Lingering: waiting for the peer's FIN (READABLE) or the deadline.
            State::Lingering => return Driven::Blocked,
            State::PeerClosed | State::Closing => match c.on(Event::AllDelivered) {
                Next::Close(why) => return Driven::Done(Why::Said(why)),
                Next::SendFin => {
                    // Everything owed is with the kernel: our FIN goes out
                    // after it. Then we wait for the peer's FIN before
                    // closing, because closing with unread input would send
                    // an RST, and an RST can destroy replies in flight.
                    let _ = c.stream().shutdown_write();
                    trace!(
                        "conn {}: all delivered; sent FIN, lingering for the peer's",
                        cx.key
                    );
                    return Driven::SentFin;
                }
                Next::Stay => return Driven::Blocked,
            },
        }
    }
}

/// One read, and the answers to it. `Ok(true)`: the service wrote to the
/// room (the outbox holds those messages).
fn read_once<S: Stream>(c: &mut Conn<S>, cx: &mut Cx, scratch: &mut [u8]) -> Result<bool, Why> {
    match c.stream_mut().read(scratch) {
        Ok(0) => {
            trace!("conn {}: read 0 bytes: EOF (the peer sent FIN)", cx.key);
            c.set_may_read(false);
            // A last frame without its terminator is still a frame.
            let to_room = consume(c, cx, &[], true);
            c.on(Event::PeerFin);
            Ok(to_room)
        }
        Ok(n) => {
            // On Linux a stream socket returns less than was asked only
            // when its receive buffer is empty, so a short read proves it
            // drained (tokio relies on the same): skip the read that would
            // only say WouldBlock, one syscall per message saved. Not after
            // the peer's FIN was reported: then read on to EOF, which no
            // further event would announce.
            if n < scratch.len() && !c.peer_fin_seen() {
                trace!(
                    "conn {}: read {n} bytes (short read: drained, not calling read again until READABLE)",
                    cx.key
                );
                c.set_may_read(false);
            } else {
                trace!("conn {}: read {n} bytes", cx.key);
            }
            cx.counters.bytes_in.add(n as u64);
            cx.traffic = true;
            Ok(consume(c, cx, &scratch[..n], false))
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            trace!(
                "conn {}: read: WouldBlock (drained; call again on the next READABLE)",
                cx.key
            );
            c.set_may_read(false);
            Ok(false)
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
        Err(e) => Err(Why::Io("read", e)),
    }
}

/// Closing: read and throw away, so that close() finds the receive queue
/// empty and sends FIN, not an RST that would destroy replies in flight.
fn discard_once<S: Stream>(c: &mut Conn<S>, cx: &mut Cx, scratch: &mut [u8]) -> Result<(), Why> {
    match c.stream_mut().read(scratch) {
        Ok(0) => {
            trace!("conn {}: closing, read EOF", cx.key);
            c.set_may_read(false);
            match c.on(Event::PeerFin) {
                Next::Close(why) => Err(Why::Said(why)),
                _ => Ok(()),
            }
        }
        Ok(n) => {
            trace!("conn {}: closing, discarded {n} bytes", cx.key);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            c.set_may_read(false);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
        Err(e) => Err(Why::Io("read while closing", e)),
    }
}

/// Hand bytes just read (after any held) to the framing and the service,
/// queue the replies to the sender, keep what is left. Returns whether the
/// service also wrote to the room (those messages stay in the outbox).
fn consume<S: Stream>(c: &mut Conn<S>, cx: &mut Cx, data: &[u8], at_eof: bool) -> bool {
    let peer = cx.serving.peer;
    let bufs = c.bufs_mut(cx.pool);
    let was_empty = bufs.input.is_empty();
    let fed = bufs.input.feed(data, at_eof, &mut cx.serving);
    // The frame now held (if any) began with these bytes when nothing was
    // held before or a frame just completed: its clock starts now. Whole
    // frames a budget left for later are not late: no clock for them.
    if bufs.input.is_empty() || fed.stop == Stop::Budget {
        bufs.frame_since = None;
    } else if was_empty || fed.frames > 0 {
        bufs.frame_since = Some(cx.now_ms);
    }
    cx.counters
        .peak_held_input
        .max(bufs.input.capacity() as u64);
    cx.counters.frames_in.add(fed.frames);
    if fed.discarded > 0 {
        debug!(
            "{peer}: {} bytes of an incomplete frame at EOF discarded",
            fed.discarded
        );
    }
    let framing = cx.serving.framing;
    let outbox = &mut *cx.serving.outbox;
    for (to, payload) in outbox.messages() {
        match to {
            To::Sender => queue_reply(c, cx.pool, cx.counters, |v| framing.encode(payload, v)),
            To::Others => {} // the room's, routed by the server
            To::Addr(a) => debug!("tcp service addressed a datagram to {a}: ignored"),
        }
    }
    if outbox.closes() {
        // The service is done with this connection (an HTTP answer):
        // deliver what it is owed, then close.
        c.on(Event::WeClose);
    }
    if fed.stop == Stop::TooLong {
        debug!(
            "{peer}: frame over --max-frame ({} bytes); closing",
            cx.serving.max_frame
        );
        if framing == Framing::Line {
            queue_reply(c, cx.pool, cx.counters, |v| {
                v.extend_from_slice(LINE_TOO_LONG)
            });
        }
        c.on(Event::WeClose);
    }
    let to_room = outbox.to_room_count() > 0;
    if !to_room {
        outbox.clear();
    }
    c.release_bufs_if_empty(cx.pool);
    to_room
}

/// Append one reply to the connection's queue, keeping the byte counters.
pub(crate) fn queue_reply<S>(
    c: &mut Conn<S>,
    pool: &mut BufPool,
    counters: &ListenerCounters,
    fill: impl FnOnce(&mut Vec<u8>),
) {
    let out = &mut c.bufs_mut(pool).out;
    let before = out.len();
    out.append_with(fill);
    counters.frames_out.add(1);
    counters.pending_out.add((out.len() - before) as u64);
    counters.peak_conn_pending.max(out.len() as u64);
}

/// Write what is owed until done or `WouldBlock`.
fn write_pending<S: Stream>(c: &mut Conn<S>, cx: &mut Cx) -> io::Result<()> {
    let mut wrote = 0;
    let mut result = Ok(());
    let key = cx.key;
    if c.pending_out() > 0 {
        let (stream, bufs) = c.stream_and_bufs();
        let out = &mut bufs.out;
        while !out.is_empty() {
            match out.write_to(stream) {
                Ok(0) => {
                    result = Err(io::ErrorKind::WriteZero.into());
                    break;
                }
                // A partial write is normal: the kernel took what fit in
                // the socket's send buffer; the rest stays queued and the
                // next write (or WRITABLE) continues from there.
                Ok(n) => {
                    trace!("conn {key}: wrote {n} bytes, {} pending", out.len());
                    wrote += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    trace!(
                        "conn {key}: write: WouldBlock with {} bytes pending (send buffer full; call again on WRITABLE)",
                        out.len()
                    );
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        c.release_bufs_if_empty(cx.pool);
    }
    cx.counters.bytes_out.add(wrote as u64);
    cx.counters.pending_out.sub(wrote as u64);
    if wrote > 0 {
        cx.traffic = true;
    }
    result
}
