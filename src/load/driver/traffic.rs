//! The traffic on an open connection: starting messages (all that may
//! start, in one write), reading replies and having the protocol judge
//! them, and — with `--rate` — the schedule that says when each is due.

use std::io::{self, Write};
use std::time::Instant;

use super::{Driver, Phase};
use crate::load::protocol::{Protocol, Verdict};
use crate::load::reason;
use crate::sys::stamp;

/// Bytes of requests gathered for one write, at most (a pipeline of big
/// messages goes out in several).
const WRITE_CHUNK: usize = 64 * 1024;

impl<P: Protocol> Driver<'_, P> {
    /// Send what connection `i` may send now.
    pub(super) fn send_more(&mut self, i: usize) {
        let now_ns = self.measure.ns(Instant::now());
        self.send_more_at(i, now_ns);
    }

    /// Finish a cut write, then start every message that may start now
    /// (`pipeline` in flight; with --rate, only those already due) and
    /// write them in one `write` — one syscall per connection per turn,
    /// not per message — until done or WouldBlock. `now_ns` is the clock
    /// already read (a reply just came: one read serves both).
    pub(super) fn send_more_at(&mut self, i: usize, now_ns: u64) {
        if !self.conns[i].unsent.is_empty() && !self.write_unsent(i) {
            return;
        }
        let conn = self.cfg.global_conn(self.first + i);
        loop {
            let c = &mut self.conns[i];
            self.outbuf.clear();
            let mut k = 0;
            while c.in_flight.len() < self.cfg.pipeline
                && (self.cfg.rate.is_none() || c.started < c.due)
                && self.cfg.churn.map_or(true, |m| c.started < m)
                && self.outbuf.len() < WRITE_CHUNK
            {
                let due = match self.cfg.rate {
                    Some(_) => self.due.at(i, c.started),
                    None => now_ns,
                };
                self.proto.request(conn, c.started, &mut self.outbuf);
                c.in_flight.push_back((due, now_ns));
                c.started += 1;
                k += 1;
            }
            if k == 0 {
                return;
            }
            match c.stream.write(&self.outbuf) {
                Ok(w) => {
                    self.measure.write();
                    for &(due, sent) in c.in_flight.iter().rev().take(k) {
                        self.measure.sent(due, sent, 1);
                    }
                    if w < self.outbuf.len() {
                        // Cut by a full send buffer: the rest goes first
                        // on the next WRITABLE edge.
                        c.unsent.extend_from_slice(&self.outbuf[w..]);
                        return;
                    }
                }
                Err(e) => {
                    // Nothing of them left: they were never sent, so they
                    // are not started (a retry builds them again).
                    c.started -= k as u64;
                    c.in_flight.truncate(c.in_flight.len() - k);
                    match e.kind() {
                        // Send buffer full: the WRITABLE edge brings us back.
                        io::ErrorKind::WouldBlock => return,
                        io::ErrorKind::Interrupted => {}
                        _ => return self.lose(i, &reason(&e)),
                    }
                }
            }
        }
    }

    /// Write what a cut write left; whether all of it went.
    fn write_unsent(&mut self, i: usize) -> bool {
        let c = &mut self.conns[i];
        while !c.unsent.is_empty() {
            match c.stream.write(&c.unsent) {
                Ok(w) => {
                    self.measure.write();
                    c.unsent.drain(..w);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.lose(i, &reason(&e));
                    return false;
                }
            }
        }
        c.unsent = Vec::new();
        true
    }

    /// Read connection `i` until drained, judging replies as they come.
    /// A reply is timed by when its last bytes arrived (the kernel's
    /// stamp, sys/stamp.rs), not by when this loop got round to reading
    /// them: that would add the loop's own wake-up to the server's time.
    pub(super) fn read_replies(&mut self, i: usize, peer_fin: bool) {
        // Both clocks at once: a stamp (real time) is placed on ours by
        // its distance from this moment.
        let now_ns = self.measure.ns(Instant::now());
        let real = stamp::real_now();
        let replied = self.conns[i].replied;
        loop {
            let c = &mut self.conns[i];
            match stamp::recv(&c.stream, &mut self.scratch[..]) {
                Ok((0, _)) => {
                    // The close may complete a reply (an HTTP body until
                    // close): judge what waits with the EOF; a reply it
                    // completes replaces the connection, as `Connection:
                    // close` does. Otherwise the connection is lost.
                    if !self.cfg.idle && !self.judge(i, 0, now_ns, true) {
                        return;
                    }
                    return self.lose(i, "closed by the server");
                }
                Ok((n, at)) => {
                    self.measure.read(n);
                    let arrived = stamp::place(at, now_ns, real);
                    if !self.cfg.idle && !self.judge(i, n, arrived, false) {
                        return; // lost
                    }
                    // A short read: drained (see server/drive.rs, read_once).
                    if n < self.scratch.len() && !peer_fin {
                        break;
                    }
                }
                // Drained: the next READABLE edge brings more.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.lose(i, &reason(&e)),
            }
        }
        let c = &self.conns[i];
        if self.cfg.churn.is_some_and(|m| c.replied == m) {
            return self.replace(i);
        }
        if c.replied > replied {
            self.send_more_at(i, now_ns);
        }
    }

    /// Judge the `n` bytes just read into the scratch buffer (after any
    /// the protocol left unjudged), which arrived at `now_ns`: each
    /// complete reply is timed and counted; `eof`: the server has closed
    /// after them. False if the connection was lost or replaced.
    fn judge(&mut self, i: usize, n: usize, now_ns: u64, eof: bool) -> bool {
        let conn = self.cfg.global_conn(self.first + i);
        let c = &mut self.conns[i];
        let mut kept = std::mem::take(&mut c.unjudged);
        let fresh = kept.is_empty();
        let buf: &[u8] = if fresh {
            &self.scratch[..n]
        } else {
            kept.extend_from_slice(&self.scratch[..n]);
            &kept
        };
        let mut pos = 0;
        // Replies to messages that started together (one turn's pipeline)
        // share their times: one histogram entry per run of them.
        let mut run = (0u64, 0u64, 0u64);
        let mut broken = None;
        // Whether a reply is left part-way.
        let mut part_way = false;
        let mut closing = false;
        while pos < buf.len() {
            if c.replied == c.started {
                broken = Some("more reply bytes than were sent".to_string());
                break;
            }
            // (bytes, whether they complete a reply, whether it was right)
            let verdict = if eof {
                self.proto
                    .reply_at_close(conn, c.replied, c.received, &buf[pos..])
            } else {
                self.proto.reply(conn, c.replied, c.received, &buf[pos..])
            };
            let (len, complete, right) = match verdict {
                Verdict::Ok(len) => (len, true, true),
                Verdict::Error { len, why } => {
                    let target = &self.cfg.endpoints[conn % self.cfg.endpoints.len()];
                    self.measure.error(&why, target);
                    (len, true, false)
                }
                Verdict::Partial(len) => (len, false, false),
                Verdict::Broken(why) => {
                    broken = Some(why);
                    break;
                }
            };
            pos += len;
            c.received += len as u64;
            if !complete {
                part_way = true;
                break;
            }
            if len == 0 {
                broken = Some("a protocol judged an empty reply".into());
                break;
            }
            c.replied += 1;
            self.replied += 1;
            let (due, sent) = c.in_flight.pop_front().unwrap_or((now_ns, now_ns));
            // No reply comes before its request left (a real-time clock
            // stepped back would say so).
            let sent = sent.min(now_ns);
            // An error is not a message: its time is not timed.
            if right {
                if (due, sent) != (run.0, run.1) && run.2 > 0 {
                    self.measure.replies(run.0, run.1, now_ns, run.2);
                    run.2 = 0;
                }
                run = (due, sent, run.2 + 1);
            }
            if self.proto.closes_after(conn) {
                closing = true;
                break;
            }
        }
        if run.2 > 0 {
            self.measure.replies(run.0, run.1, now_ns, run.2);
        }
        let total = buf.len();
        // When bytes of the reply under way last came (a short reply is
        // one that stays part-way: see report).
        c.part_way_at = part_way.then_some(now_ns);
        if let Some(why) = broken {
            self.lose(i, &why);
            return false;
        }
        if closing {
            // The server closes after that reply (HTTP `Connection:
            // close`): what follows is not ours; a new connection takes
            // its place, as with --churn.
            self.replace(i);
            return false;
        }
        // What the protocol could not judge yet waits for more bytes.
        if pos < total {
            if fresh {
                kept.extend_from_slice(&self.scratch[pos..n]);
            } else {
                kept.drain(..pos);
            }
            self.conns[i].unjudged = kept;
        }
        true
    }

    pub(super) fn start_schedule(&mut self, now: Instant) {
        let (cfg, first) = (self.cfg, self.first);
        let open = (0..self.conns.len())
            .filter(|&i| self.conns[i].phase == Phase::Open)
            .map(|i| (i, cfg.global_conn(first + i)));
        self.due
            .start(self.measure.ns(now), open.collect::<Vec<_>>());
    }

    /// With --rate: count the messages that have come due and send them —
    /// every connection with something due in one write (see `due.rs`).
    pub(super) fn release_due(&mut self) {
        let now_ns = self.measure.ns(Instant::now());
        let conns = &self.conns;
        let mut ready = std::mem::take(&mut self.ready);
        self.due
            .release(now_ns, |i| conns[i].phase == Phase::Open, &mut ready);
        for &(i, n) in &ready {
            self.conns[i].due += n;
            // The clock read again: a send's lateness is its own, not
            // the first of this batch's.
            self.send_more(i);
        }
        self.ready = ready;
    }
}
