//! The invariants, checked on every seed: after every turn (memory,
//! starvation, `--max-conns`, shutdown's grace) and at the end (what each
//! client got, when each connection ended). Expected answers come from
//! `crate::oracle`; times from the world's own record of when bytes moved
//! and when the server closed — never from the server's account of itself,
//! except where the promise is about its state: above the mark (a chat
//! member's slow clock starts there) and the bytes it holds.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use super::clients::Kind;
use super::scenario::{Family, Sim};
use super::world::End;
use crate::conn::State;
use crate::framing::Framing;
use crate::options::millis;
use crate::oracle;
use crate::server::{FRAME_TIMEOUT_LINE, READ_BUF, WORK_PER_TURN};

/// The most a connection may hold for its peer (docs/protocol.md, "Memory
/// bounds"): `--write-buffer` plus the replies to one read (`upper` can
/// triple it); in a chat room, plus one turn's fan-out, which the
/// per-turn budget bounds to `WORK_PER_TURN / (members − 1)` messages.
fn held_bound(sim: &Sim) -> usize {
    let hw = sim.opts.write_buffer;
    if sim.service == "chat" {
        let others = sim.clients.len().saturating_sub(1).max(1);
        // "10.1.x.y:4000z: " and a line of at most 24 bytes, framed; in a
        // flood, exactly "10.1.0.2:40000: x\n" (and the joins, small), so
        // a turn that ignores its work budget is over the bound.
        let (longest, joins) = if sim.family == Family::Flood {
            (18, 1024)
        } else {
            (24 + 24 + 1, 0)
        };
        hw + (WORK_PER_TURN / others + 1) * longest + joins
    } else {
        hw + 3 * READ_BUF
    }
}

/// After every turn.
pub(super) fn per_turn(sim: &mut Sim) -> Result<(), String> {
    let mut net = sim.world.0.borrow_mut();
    if let Some(v) = net.violations.first() {
        return Err(v.clone());
    }
    let (now, turn) = (net.now_ms, net.turn);
    let hw = sim.opts.write_buffer;
    let bound = held_bound(sim);
    let paused = sim.server.listeners[0].delivery.is_paused();
    let patience = 8 + 2 * sim.server.conns.len() as u64;
    for (_, c) in sim.server.conns.iter() {
        let pipe = c.stream().id;
        if c.pending_out() > bound {
            return Err(format!(
                "conn {pipe} holds {} bytes for its peer, over the bound {bound}",
                c.pending_out()
            ));
        }
        if c.is_over_write_buffer() {
            sim.over_since.entry(pipe).or_insert(now);
        } else {
            sim.over_since.remove(&pipe);
        }
        // Input waiting while the server may take it must be taken within
        // a bounded number of turns, whoever else is busy.
        let p = &mut net.pipes[pipe];
        let may = c.state() == State::Open && !c.over(hw) && !paused && p.c2s.len() < p.c2s_cap;
        if let Some(since) = p.waiting_since {
            if !may {
                p.waiting_since = Some(turn);
            } else if turn - since > patience {
                return Err(format!(
                    "conn {pipe}: input unread for {} turns (starved; allowed {patience})",
                    turn - since
                ));
            }
        }
    }
    for p in net.pipes.iter_mut().filter(|p| p.end == End::Waiting) {
        if p.waiting_since.is_some() {
            p.waiting_since = Some(turn);
        }
    }
    if let (true, Some(stop)) = (sim.stopped, sim.stop_at) {
        let grace_end = stop + millis(sim.opts.grace);
        for (i, p) in net.pipes.iter().enumerate() {
            if let End::Closed { at, reset: true } = p.end {
                if at < grace_end && !p.client_reset {
                    return Err(format!(
                        "conn {i} reset at {at} ms, before --grace ended at {grace_end}"
                    ));
                }
            }
        }
        if now >= grace_end && !sim.server.conns.is_empty() {
            return Err(format!(
                "{} connections open after --grace",
                sim.server.conns.len()
            ));
        }
    }
    Ok(())
}

/// Whether member `i` heard every line of every other member.
pub(super) fn member_has_all(sim: &Sim, i: usize) -> bool {
    sim.clients.iter().enumerate().all(|(j, m)| {
        j == i
            || m.kind != Kind::Member
            || sim.clients[i].heard.get(&m.addr).copied().unwrap_or(0) == lines(&m.input)
    })
}

fn lines(input: &[u8]) -> usize {
    input.iter().filter(|&&b| b == b'\n').count()
}

/// The lines `got` holds from `from`, in order, as they came.
fn heard_from(got: &[u8], from: SocketAddr) -> Vec<u8> {
    let prefix = format!("{from}: ");
    got.split_inclusive(|&b| b == b'\n')
        .filter(|line| line.starts_with(prefix.as_bytes()))
        .flatten()
        .copied()
        .collect()
}

/// What every other member hears from a member that sends `input`.
fn said_by(from: SocketAddr, input: &[u8]) -> Vec<u8> {
    input
        .split_inclusive(|&b| b == b'\n')
        .flat_map(|line| oracle::chat_line(from, line.strip_suffix(b"\n").unwrap_or(line)))
        .collect()
}

/// At the end of the run.
pub(super) fn at_end(sim: &Sim) -> Result<(), String> {
    let net = sim.world.0.borrow();
    if let Some(v) = net.violations.first() {
        return Err(v.clone());
    }
    let places = sim.total.load(Ordering::Relaxed);
    if places != 0 {
        return Err(format!("{places} --max-conns places never given back"));
    }
    let idle = sim.opts.idle_timeout.map_or(u64::MAX, millis);
    let slow = millis(sim.opts.slow_timeout);
    let frame = sim.opts.frame_timeout.map_or(u64::MAX, millis);
    let stop = sim.stop_at.filter(|_| sim.stopped);
    for c in &sim.clients {
        let Some(id) = c.pipe else { continue };
        let p = &net.pipes[id];
        if !p.registered {
            continue; // refused at the cap (judged when it happened)
        }
        let End::Closed { at, reset } = p.end else {
            return Err(format!("conn {id} ({:?}) still open at the end", c.kind));
        };
        let who = format!("conn {id} ({:?}, {} bytes in)", c.kind, c.input.len());
        let full = || oracle::replies(sim.service, sim.framing, &c.input, 64, true);
        match c.kind {
            Kind::Good if stop.is_some() => {
                let full = full();
                if !full.starts_with(&c.got) {
                    return Err(format!("{who}: a reply not owed, or out of order"));
                }
                let read = sim.read_at_stop.get(&id).copied().unwrap_or(0);
                let owed = oracle::replies(sim.service, sim.framing, &c.input[..read], 64, false);
                let grace_end = stop.unwrap_or(0) + millis(sim.opts.grace);
                if at < grace_end && c.got.len() < owed.len() {
                    return Err(format!(
                        "{who}: got {} of the {} bytes owed at the shutdown",
                        c.got.len(),
                        owed.len()
                    ));
                }
            }
            Kind::Good => {
                if reset {
                    return Err(format!("{who}: reset"));
                }
                if c.got != full() {
                    let want = full();
                    let same = c.got.iter().zip(&want).take_while(|(a, b)| a == b).count();
                    return Err(format!(
                        "{who}: got {} bytes, the oracle {} (first difference at byte {same}){}",
                        c.got.len(),
                        want.len(),
                        if p.client_fin {
                            "; it had half-closed"
                        } else {
                            ""
                        }
                    ));
                }
            }
            Kind::Idler if stop.is_none() && at != p.last_io + idle => {
                return Err(format!(
                    "{who}: closed at {at} ms; idle since {} ms, --idle-timeout {idle} ms",
                    p.last_io
                ));
            }
            Kind::Pauser => {
                let (paused_at, ms) = c.pause.unwrap_or_default();
                let want =
                    oracle::replies(sim.service, sim.framing, &c.input[..paused_at], 64, false);
                if reset || c.got != want || at != p.last_io + idle {
                    return Err(format!(
                        "{who}: paused {ms} ms after byte {paused_at}; cut at {at} ms (reset {reset}), idle since {} ms, --idle-timeout {idle} ms; got {} bytes, want {}",
                        p.last_io,
                        c.got.len(),
                        want.len()
                    ));
                }
            }
            Kind::Trickler if stop.is_none() => {
                let mut want = oracle::replies(
                    sim.service,
                    sim.framing,
                    &c.input[..c.partial_at],
                    64,
                    false,
                );
                if sim.framing == Framing::Line {
                    want.extend_from_slice(FRAME_TIMEOUT_LINE);
                }
                if c.got != want {
                    return Err(format!(
                        "{who}: got {:?}, want {:?}",
                        String::from_utf8_lossy(&c.got),
                        String::from_utf8_lossy(&want)
                    ));
                }
                let mut seen = 0;
                let first = p.reads.iter().find(|(_, n)| {
                    seen += n;
                    seen > c.partial_at
                });
                let Some(&(began, _)) = first else {
                    return Err(format!("{who}: its endless frame was never read"));
                };
                if p.server_fin != Some(began + frame) {
                    return Err(format!(
                        "{who}: frame began {began} ms, --frame-timeout {frame} ms, server's FIN at {:?}",
                        p.server_fin
                    ));
                }
            }
            Kind::Stuck => {
                let want = match sim.over_since.get(&id) {
                    Some(&since) => since + slow,
                    None => p.last_io + idle,
                };
                if at != want {
                    return Err(format!(
                        "{who}: cut at {at} ms, want {want} (above the mark since {:?}, --slow-timeout {slow} ms)",
                        sim.over_since.get(&id)
                    ));
                }
            }
            Kind::Member => {
                if !c.fin_sent || reset {
                    return Err(format!("{who}: cut at {at} ms, within the slow rule"));
                }
                for m in sim
                    .clients
                    .iter()
                    .filter(|m| m.kind == Kind::Member && m.addr != c.addr)
                {
                    let (heard, said) = (heard_from(&c.got, m.addr), said_by(m.addr, &m.input));
                    if heard != said {
                        let same = heard.iter().zip(&said).take_while(|(a, b)| a == b).count();
                        return Err(format!(
                            "{who}: the lines of {} not each once and in order: heard {} bytes, said {} (first difference at byte {same})",
                            m.addr,
                            heard.len(),
                            said.len()
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    for c in &sim.udp {
        // docs/protocol.md: nothing to (so nothing from) port 0 or a small
        // service's port; a reply over 65,507 bytes (IPv4) becomes
        // `ERR reply too long`.
        let guarded = c.guarded();
        let want: Vec<Vec<u8>> = c
            .datagrams
            .iter()
            .filter(|_| !guarded)
            .map(|d| oracle::answer(sim.service, d))
            .map(|a| {
                if a.len() > 65_507 {
                    b"ERR reply too long".to_vec()
                } else {
                    a
                }
            })
            .collect();
        let got: Vec<Vec<u8>> = net
            .inbox
            .get(&c.addr)
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default();
        if got != want {
            return Err(format!(
                "udp {}: {} answers, want {} (or out of order)",
                c.addr,
                got.len(),
                want.len()
            ));
        }
    }
    // A guarded source's datagram is dropped as it comes, never handed to
    // the service (docs/protocol.md; `frames_received_total` counts what
    // is): the reply guard alone would hide a switched-off receive guard
    // from echo, upper and count, not from a chat room.
    if sim.family == Family::Udp {
        let handed: usize = sim
            .udp
            .iter()
            .filter(|c| !c.guarded())
            .map(|c| c.datagrams.len())
            .sum();
        let frames_in = sim.server.all.snapshot().frames_in;
        if frames_in != handed as u64 {
            return Err(format!(
                "{frames_in} datagrams handed to the service, want {handed} (those from unguarded ports)"
            ));
        }
    }
    if sim.family == Family::Flood && sim.server.all.snapshot().peak_conn_pending == 0 {
        return Err("the flood never reached a member".into());
    }
    Ok(())
}
