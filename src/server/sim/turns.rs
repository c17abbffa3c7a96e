//! The loop that runs one seed, and its clock: the server's own textbook
//! loop with the world in place of the kernel. Clients due now act; one
//! poll's events (a few, so a turn may end before every ready socket was
//! seen) go to `handle_ready`; `on_timer` runs; checks.rs looks at the
//! turn. When nothing is ready, the clock jumps to the next deadline
//! (`next_timeout`), client action, or shutdown — time passes only between
//! turns, as for a real loop asleep in `epoll_wait`.

use super::checks;
use super::clients::Kind;
use super::scenario::Sim;
use crate::options::millis;
use crate::oracle;

/// `SOCKLOOP_SIM_TRACE`: print every turn (one seed, with --nocapture).
static TRACE: std::sync::LazyLock<bool> =
    std::sync::LazyLock::new(|| std::env::var_os("SOCKLOOP_SIM_TRACE").is_some());

impl Sim {
    /// What client `i` waits for before it half-closes: a good client's
    /// whole answer; for a member, 0 once it has every other member's
    /// lines (else more than it can get).
    fn expect_len(&mut self, i: usize) -> usize {
        if let Some(n) = self.clients[i].expect {
            return n;
        }
        let c = &self.clients[i];
        let n = match c.kind {
            Kind::Member => {
                if checks::member_has_all(self, i) {
                    0
                } else {
                    usize::MAX
                }
            }
            Kind::Trickler => oracle::replies(
                self.service,
                self.framing,
                &c.input[..c.partial_at],
                64,
                false,
            )
            .len(),
            _ => oracle::replies(self.service, self.framing, &c.input, 64, true).len(),
        };
        if c.kind != Kind::Member {
            self.clients[i].expect = Some(n);
        }
        n
    }

    /// Run until every client is done and the server holds nothing, or
    /// fail.
    pub(crate) fn run(&mut self) -> Result<(), String> {
        const LIMIT_MS: u64 = 60_000;
        loop {
            let now = self.world.0.borrow().now_ms;
            if self.stop_at.is_some_and(|t| t <= now) && !self.stopped {
                self.stopped = true;
                let net = self.world.0.borrow();
                self.read_at_stop = net
                    .pipes
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (i, p.read_total))
                    .collect();
                drop(net);
                self.server.shutdown(self.opts.grace);
            }
            self.clients_act(now);
            self.world.0.borrow_mut().turn += 1;
            let events = self.world.0.borrow_mut().poll(self.poll_max);
            for e in events {
                self.server.handle_ready(e);
            }
            self.server.on_timer();
            if *TRACE {
                let net = self.world.0.borrow();
                eprintln!(
                    "t={now} turn={} conns={} deferred={} next={:?} ends={:?}",
                    net.turn,
                    self.server.conns.len(),
                    self.server.queues.has_deferred(),
                    self.server.next_timeout(),
                    net.pipes
                        .iter()
                        .map(|p| (p.end, p.c2s.len(), p.s2c.len(), p.client_fin))
                        .collect::<Vec<_>>()
                );
            }
            checks::per_turn(self)?;
            if self.finished() {
                return Ok(());
            }
            if now > LIMIT_MS {
                return Err(format!(
                    "still running at {now} ms of simulated time: stuck"
                ));
            }
            self.advance(now);
        }
    }

    fn clients_act(&mut self, now: u64) {
        let everyone_in = self.clients.iter().all(|c| {
            c.pipe
                .is_some_and(|p| self.world.0.borrow().pipes[p].registered)
        });
        for i in 0..self.clients.len() {
            if !self.clients[i].active() || self.clients[i].next_at > now {
                continue;
            }
            if self.clients[i].kind == Kind::Member
                && everyone_in
                && self.clients[i].send_from == u64::MAX
            {
                self.clients[i].send_from = now;
            }
            if self.clients[i].kind == Kind::Member {
                self.clients[i].hear();
            }
            let expect = self.expect_len(i);
            let mut net = self.world.0.borrow_mut();
            self.clients[i].act(&mut net, 0, &mut self.rng, expect);
        }
        let mut net = self.world.0.borrow_mut();
        for c in &mut self.udp {
            if c.sent < c.datagrams.len() && c.next_at <= now {
                let to = net.udp_addr(0);
                let _ = to;
                net.send_datagram(0, c.addr, c.datagrams[c.sent].clone());
                c.sent += 1;
                c.next_at = now + self.rng.range(0, 5);
            }
        }
        if self.rng.chance(30) {
            net.unblock_udp();
        }
    }

    fn finished(&self) -> bool {
        let net = self.world.0.borrow();
        self.clients.iter().all(|c| !c.active())
            && self.server.conns.is_empty()
            && self.udp.iter().all(|c| {
                // A guarded source is owed nothing: done once the server
                // took all it was sent.
                let owed = if c.guarded() { 0 } else { c.datagrams.len() };
                c.sent == c.datagrams.len()
                    && net.inbox.get(&c.addr).map_or(0, |q| q.len()) >= owed
                    && net.udps.iter().all(|u| u.inq.is_empty())
            })
            && (!self.stopped || self.server.is_finished())
    }

    /// Nothing ready: move the clock to what comes next.
    fn advance(&mut self, now: u64) {
        if self.world.0.borrow().has_events() {
            return;
        }
        let mut next = u64::MAX;
        // A server whose shutdown is over has nothing more to do (the real
        // loop returns then; its grace deadline stays "due").
        let over = self.stopped && self.server.is_finished();
        match self.server.next_timeout().filter(|_| !over) {
            Some(d) if d.is_zero() => return,
            Some(d) => next = next.min(now + millis(d)),
            None => {}
        }
        for c in self.clients.iter().filter(|c| c.active()) {
            next = next.min(c.next_at);
        }
        for c in self.udp.iter().filter(|c| c.sent < c.datagrams.len()) {
            next = next.min(c.next_at);
        }
        if !self.stopped {
            next = next.min(self.stop_at.unwrap_or(u64::MAX));
        }
        if next == u64::MAX {
            // Only a full UDP send buffer can still move: free it.
            self.world.0.borrow_mut().unblock_udp();
            next = now + 1;
        }
        let mut net = self.world.0.borrow_mut();
        net.now_ms = net.now_ms.max(next);
    }
}
