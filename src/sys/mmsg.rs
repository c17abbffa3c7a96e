//! Many datagrams per syscall: `recvmmsg(2)` and `sendmmsg(2)`.
//!
//! A UDP server that calls `recvfrom` and `sendto` once per datagram pays
//! two syscalls per datagram. Linux takes a vector of message headers
//! instead: one call receives up to [`BATCH`] datagrams (each into its own
//! slot, with its sender's address), and one call sends up to [`BATCH`]
//! (each to its own address). quinn-udp batches the same way, and 32 is
//! its figure too.
//!
//! That alone saves less than it seems (BENCHMARKS.md: 1.1 × a
//! one-datagram-a-call server): most of the cost is the kernel's work per
//! datagram — a route lookup, a buffer, a delivery, a wake-up — whichever
//! call asked for it. So Linux can also carry several datagrams for one
//! peer as one: UDP GSO
//! (`UDP_SEGMENT`) sends a run of equal-sized datagrams to one address as
//! one buffer that the kernel cuts up as late as it can — on loopback, not
//! at all until the receiving socket — and UDP GRO (`UDP_GRO`) hands such
//! a run to the receiver as one buffer with its segment size. The batches
//! here do both where the kernel allows: [`SendBatch::push`] appends a
//! datagram to the one before when it goes to the same address and has the
//! same size, and [`RecvBatch::datagrams`] cuts a coalesced buffer back
//! into its datagrams. Datagram boundaries are kept exactly either way.
//!
//! The two batches here own every buffer they use and reuse them from call
//! to call: after the first call, receiving and sending allocate nothing.
//! The headers handed to the kernel point into those buffers, so they are
//! rebuilt right before each call rather than kept (a pointer kept in a
//! struct that moves is a pointer into the past).
//!
//! Elsewhere than Linux and Android the same two types fall back to one
//! `recv_from` / `send_to` per datagram, with the same results.

use std::io;
use std::net::SocketAddr;

use mio::net::UdpSocket;

/// Datagrams per call, received or sent.
pub(crate) const BATCH: usize = 32;

/// Bytes per receive slot: the largest UDP payload (65,507 bytes over IPv4;
/// 65,527 over IPv6 without jumbograms) arrives whole.
const SLOT: usize = 65_536;

/// Up to [`BATCH`] received datagrams: what [`RecvBatch::recv`] returned.
///
/// The slots take 2 MiB of address space, allocated zeroed, so the
/// operating system maps a page only when a datagram is first written to
/// it: with 64-byte datagrams the batch is resident in 32 pages.
#[doc(hidden)]
#[allow(unreachable_pub)] // named by the server's World seam (server/world.rs)
pub struct RecvBatch {
    bufs: Box<[u8]>,
    got: Vec<Got>,
}

/// What one slot received: the sender (`None` if the kernel gave an
/// address of a family we do not know), the bytes, — if GRO coalesced
/// several datagrams — the size of each (the last may be shorter), and
/// when they arrived, if the socket asked for stamps (sys/stamp.rs).
#[derive(Clone, Copy, Debug)]
struct Got {
    from: Option<SocketAddr>,
    len: usize,
    segment: Option<usize>,
    stamp: Option<u64>,
}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch {
            bufs: vec![0u8; BATCH * SLOT].into_boxed_slice(),
            got: Vec::with_capacity(BATCH),
        }
    }
}

impl RecvBatch {
    /// The datagrams of the last call, in order, each with its sender
    /// (`None` if the kernel gave an address of a family we do not know);
    /// a GRO buffer is cut back into the datagrams it carries.
    pub(crate) fn datagrams(&self) -> impl Iterator<Item = (Option<SocketAddr>, &[u8])> + '_ {
        self.each().map(|(g, d)| (g.from, d))
    }

    /// The same datagrams, each with when it arrived (ns since the epoch,
    /// real-time clock) if the socket asked for stamps; a GRO run shares
    /// one.
    pub(crate) fn stamped(&self) -> impl Iterator<Item = (Option<u64>, &[u8])> + '_ {
        self.each().map(|(g, d)| (g.stamp, d))
    }

    fn each(&self) -> impl Iterator<Item = (&Got, &[u8])> + '_ {
        self.got.iter().enumerate().flat_map(move |(i, g)| {
            let bytes = &self.bufs[i * SLOT..i * SLOT + g.len];
            cut_into_datagrams(bytes, g.segment.unwrap_or(g.len)).map(move |d| (g, d))
        })
    }

    /// Receive up to [`BATCH`] buffers in one call (each one datagram, or
    /// with GRO a run of them). `WouldBlock` if none waits. Fewer than
    /// [`BATCH`] means the socket was drained when the kernel looked
    /// (nothing more had arrived by the last slot).
    pub(crate) fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.got.clear();
        imp::recv(socket, &mut self.bufs, &mut self.got)?;
        Ok(self.got.len())
    }

    /// Fill the batch as a receive call would, from the simulated world
    /// (`server/sim/`): one datagram a slot, at most [`BATCH`].
    #[cfg(test)]
    pub(crate) fn fill(&mut self, datagrams: impl Iterator<Item = (SocketAddr, Vec<u8>)>) -> usize {
        self.got.clear();
        for (i, (from, d)) in datagrams.take(BATCH).enumerate() {
            let len = d.len().min(SLOT);
            self.bufs[i * SLOT..i * SLOT + len].copy_from_slice(&d[..len]);
            self.got.push(Got {
                from: Some(from),
                len,
                segment: None,
                stamp: None,
            });
        }
        self.got.len()
    }
}

/// Ask the kernel to deliver runs of datagrams from one sender as one
/// buffer (UDP GRO). Returns whether it will; either way
/// [`RecvBatch::datagrams`] yields single datagrams.
pub(crate) fn enable_gro(socket: &UdpSocket) -> bool {
    imp::enable_gro(socket)
}

/// Whether [`SendBatch::push`] may build GSO runs here.
pub(crate) const GSO: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// Datagrams waiting to go out in one call: each payload copied into one
/// reused arena, so queueing one allocates nothing once the arena has
/// grown to a batch's size.
#[derive(Default)]
#[doc(hidden)]
#[allow(unreachable_pub)] // named by the server's World seam (server/world.rs)
pub struct SendBatch {
    arena: Vec<u8>,
    items: Vec<Item>,
    /// The kernel refused a run once (no GSO on that route): single
    /// datagrams from then on.
    gso_off: bool,
}

/// One message in a [`SendBatch`]: a datagram, or with GSO a run of
/// datagrams of `segment` bytes each (the last may be shorter) to one
/// address.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Item {
    /// Its destination.
    pub to: SocketAddr,
    start: usize,
    len: usize,
    /// The size of each datagram in the run.
    segment: usize,
    /// A relay to another member (dropped, not queued, if the socket is
    /// full) rather than a reply to the sender.
    pub relay: bool,
}

impl Item {
    /// Whether this message carries several datagrams (GSO).
    pub(crate) fn is_run(&self) -> bool {
        self.len > self.segment
    }
}

/// A GSO run's datagrams are at most this big, so that one never exceeds
/// an Ethernet path's MTU (1,500 bytes less the IPv6 and UDP headers):
/// the kernel refuses a segment bigger than the route allows.
const GSO_MAX_SEGMENT: usize = 1_452;

/// At most this many datagrams in a run (the kernel's `UDP_MAX_SEGMENTS`
/// was 64 before Linux 6.1) and this many bytes (a UDP payload's limit).
const GSO_MAX_SEGMENTS: usize = 64;
const GSO_MAX_BYTES: usize = 65_000;

impl SendBatch {
    /// Add a datagram. Where there is GSO, one for the same address, of
    /// the same size as the run before it (or shorter, ending it), joins
    /// that run. The caller sends the batch when it is full.
    pub(crate) fn push(&mut self, to: SocketAddr, payload: &[u8], relay: bool) {
        let start = self.arena.len();
        self.arena.extend_from_slice(payload);
        if let Some(last) = self.items.last_mut() {
            if GSO
                && !self.gso_off
                && last.to == to
                && last.relay == relay
                && !payload.is_empty()
                && last.len > 0
                && payload.len() <= last.segment
                && last.segment <= GSO_MAX_SEGMENT
                && last.len % last.segment == 0
                && last.len / last.segment < GSO_MAX_SEGMENTS
                && last.len + payload.len() <= GSO_MAX_BYTES
            {
                last.len += payload.len();
                return;
            }
        }
        self.items.push(Item {
            to,
            start,
            len: payload.len(),
            segment: payload.len().max(1),
            relay,
        });
    }

    /// Item `i` cut back into single datagrams (the kernel refused the run:
    /// no GSO on that route). The items after it move up.
    fn unbundle(&mut self, i: usize) {
        let it = self.items[i];
        let singles: Vec<Item> = (it.start..it.start + it.len)
            .step_by(it.segment)
            .map(|start| Item {
                start,
                len: it.segment.min(it.start + it.len - start),
                ..it
            })
            .collect();
        self.items.splice(i..=i, singles);
    }

    /// How many datagrams item `i` carries (more than one: a GSO run).
    pub(crate) fn count(&self, i: usize) -> usize {
        let it = self.items[i];
        it.len.div_ceil(it.segment).max(1)
    }

    /// The datagrams of item `i` (one, or a run's).
    pub(crate) fn datagrams_of(&self, i: usize) -> impl Iterator<Item = &[u8]> + '_ {
        let it = self.items[i];
        cut_into_datagrams(&self.arena[it.start..it.start + it.len], it.segment)
    }

    /// Messages in the batch (a GSO run is one).
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether one call's worth is waiting.
    pub(crate) fn is_full(&self) -> bool {
        self.items.len() >= BATCH
    }

    /// Message `i`: where it goes and its bytes (a run's, end to end).
    pub(crate) fn get(&self, i: usize) -> (Item, &[u8]) {
        let it = self.items[i];
        (it, &self.arena[it.start..it.start + it.len])
    }

    /// Empty the batch, keeping its memory.
    pub(crate) fn clear(&mut self) {
        self.arena.clear();
        self.items.clear();
    }

    /// Send messages `from..` (at most [`BATCH`]) in one call. Returns
    /// how many the kernel took, at least one; an error is the first
    /// message's (`WouldBlock`: the send buffer is full).
    ///
    /// If the kernel refuses a GSO run (`EIO`: the route cannot offload
    /// it; `EINVAL`: a segment is bigger than the route's MTU allows), the
    /// run is cut back into single datagrams, GSO is off for this batch
    /// from then on, and the call is made again.
    pub(crate) fn send(&mut self, socket: &UdpSocket, from: usize) -> io::Result<usize> {
        let upto = self.items.len().min(from + BATCH);
        match imp::send(socket, &self.arena, &self.items[from..upto]) {
            Err(e)
                if self.items[from].is_run()
                    && matches!(e.raw_os_error(), Some(libc::EIO | libc::EINVAL)) =>
            {
                log::debug!(
                    "udp: the kernel refused a GSO run ({e}); single datagrams from now on"
                );
                self.gso_off = true;
                self.unbundle(from);
                self.send(socket, from)
            }
            r => r,
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux;
#[cfg(any(target_os = "linux", target_os = "android"))]
use linux as imp;

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod portable;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
use portable as imp;

/// `bytes` (one datagram, or a GSO/GRO run of them end to end) cut back
/// into its datagrams of `segment` bytes, the last maybe shorter. An empty
/// datagram is one datagram, not none — `chunks()` alone yields none, and
/// an empty reply requeued at `WouldBlock` was lost that way.
fn cut_into_datagrams(bytes: &[u8], segment: usize) -> impl Iterator<Item = &[u8]> + '_ {
    let empty = std::iter::once(bytes).filter(|b| b.is_empty());
    empty.chain(bytes.chunks(segment.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Send `datagrams` from a to b as one batch; what b receives, one
    /// entry per datagram, with b's GRO on or off.
    fn round_trip(host: &str, datagrams: &[Vec<u8>], gro: bool) -> Option<(usize, Vec<Vec<u8>>)> {
        let a = UdpSocket::bind(host.parse().unwrap()).ok()?; // no IPv6 here: skip
        let b = UdpSocket::bind(host.parse().unwrap()).unwrap();
        if gro {
            enable_gro(&b);
        }
        let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let mut out = SendBatch::default();
        for d in datagrams {
            out.push(b_addr, d, false);
        }
        let messages = out.len();
        let mut from = 0;
        while from < out.len() {
            from += out.send(&a, from).unwrap();
        }
        let mut inb = RecvBatch::default();
        let mut seen = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while seen.len() < datagrams.len() && std::time::Instant::now() < deadline {
            match inb.recv(&b) {
                Ok(_) => {
                    for (from, bytes) in inb.datagrams() {
                        assert_eq!(from, Some(a_addr));
                        seen.push(bytes.to_vec());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("recv: {e}"),
            }
        }
        assert!(matches!(inb.recv(&b), Err(e) if e.kind() == io::ErrorKind::WouldBlock));
        Some((messages, seen))
    }

    /// With stamps asked for, every datagram comes with when it arrived,
    /// a GRO run too (all of it with one); without, none does.
    #[cfg(target_os = "linux")]
    #[test]
    fn datagrams_come_stamped_when_asked_with_gro_and_without() {
        use crate::sys::stamp;
        for (gro, stamped) in [(false, true), (true, true), (true, false)] {
            let a = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let b = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            if gro {
                enable_gro(&b);
            }
            if stamped {
                stamp::enable(&b).unwrap();
            }
            let to = b.local_addr().unwrap();
            let mut inb = RecvBatch::default();
            let mut recv = |n: usize| {
                let mut got = Vec::new();
                while got.len() < n {
                    match inb.recv(&b) {
                        Ok(_) => got.extend(inb.stamped().map(|(at, d)| (at, d.len()))),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            std::thread::sleep(std::time::Duration::from_millis(1))
                        }
                        Err(e) => panic!("recv: {e}"),
                    }
                }
                got
            };
            // Stamping is switched on for the stack a moment after the
            // first socket asks (sys/stamp.rs): wait for it. Until then a
            // datagram socket's bytes are stamped when read, so only a
            // stamp older than a wait says the stack stamps on arrival.
            let on = !stamped
                || (0..500).any(|_| {
                    a.send_to(b".", to).unwrap();
                    std::thread::sleep(std::time::Duration::from_millis(2));
                    let at = recv(1)[0].0.expect("a stamp, on arrival or at the read");
                    stamp::real_now() - at >= 2_000_000
                });
            assert!(on, "no receive stamp in a second");
            let mut out = SendBatch::default();
            for _ in 0..3 {
                out.push(to, &[7; 100], false);
            }
            let sent = stamp::real_now();
            assert_eq!(out.send(&a, 0).unwrap(), out.len());
            std::thread::sleep(std::time::Duration::from_millis(20));
            let got = recv(3);
            let waited = stamp::real_now() - sent;
            assert_eq!(got.len(), 3, "gro {gro}");
            for (at, len) in got {
                assert_eq!(len, 100);
                match at {
                    Some(at) => {
                        assert!(stamped, "gro {gro}: a stamp nobody asked for");
                        let age = stamp::real_now() - at;
                        assert!(
                            (20_000_000..=waited + 1_000_000).contains(&age),
                            "age {age}"
                        );
                    }
                    None => assert!(!stamped, "gro {gro}: no stamp"),
                }
            }
        }
    }

    #[test]
    fn an_empty_datagram_is_one_datagram_and_a_run_is_cut_at_its_segment() {
        let empty: Vec<&[u8]> = cut_into_datagrams(b"", 100).collect();
        assert_eq!(empty, [b"" as &[u8]]);
        let run: Vec<&[u8]> = cut_into_datagrams(b"aaabbbc", 3).collect();
        assert_eq!(run, [b"aaa" as &[u8], b"bbb", b"c"]);
        let mut q = SendBatch::default();
        q.push("127.0.0.1:9".parse().unwrap(), b"", false);
        assert_eq!(q.datagrams_of(0).count(), 1, "a queued empty reply is kept");
    }

    #[test]
    fn a_batch_goes_out_and_comes_back_whole_with_addresses() {
        // Sizes up to the largest datagram, which must arrive whole; an
        // empty one is a datagram too.
        let sizes = [0usize, 1, 64, 1500, 9000, 65_000];
        let datagrams: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| vec![i as u8; n])
            .collect();
        for host in ["127.0.0.1:0", "[::1]:0"] {
            for gro in [false, true] {
                if let Some((_, seen)) = round_trip(host, &datagrams, gro) {
                    assert_eq!(seen, datagrams, "{host}, gro {gro}");
                }
            }
        }
    }

    #[test]
    fn runs_to_one_address_go_as_one_message_and_arrive_as_datagrams() {
        // 40 of 100 bytes, one of 30 (ending that run), 5 of 100 again,
        // then 70 of 8 bytes: the runs break at 64 datagrams too.
        let mut datagrams: Vec<Vec<u8>> = (0..40).map(|i| vec![i as u8; 100]).collect();
        datagrams.push(vec![200; 30]);
        datagrams.extend((0..5).map(|i| vec![100 + i as u8; 100]));
        datagrams.extend((0..70).map(|i| vec![i as u8; 8]));
        for gro in [false, true] {
            let (messages, seen) = round_trip("127.0.0.1:0", &datagrams, gro).unwrap();
            assert_eq!(
                seen, datagrams,
                "gro {gro}: every datagram, in order, boundaries kept"
            );
            if GSO {
                // 40×100 + 30 | 5×100 + 8 (a shorter one ends a run) |
                // 64×8 (the most a run holds) | 5×8.
                assert_eq!(messages, 4, "messages for 116 datagrams");
            }
        }
    }

    #[test]
    fn a_refused_run_is_cut_back_into_datagrams() {
        let mut b = SendBatch::default();
        let to: SocketAddr = "127.0.0.1:9999".parse().unwrap();
        for i in 0..5u8 {
            b.push(to, &[i; 10], false);
        }
        b.push(to, &[9; 4], false);
        if !GSO {
            return;
        }
        assert_eq!(b.len(), 1);
        b.unbundle(0);
        assert_eq!(b.len(), 6);
        let back: Vec<Vec<u8>> = (0..6).map(|i| b.get(i).1.to_vec()).collect();
        let mut want: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 10]).collect();
        want.push(vec![9; 4]);
        assert_eq!(back, want);
    }
}
