//! One datagram per call, where there is no `recvmmsg`/`sendmmsg`: the
//! same results as the Linux side of [`super`], without GSO or GRO.

use std::io;
use std::net::SocketAddr;

use mio::net::UdpSocket;

use super::{Got, Item, BATCH, SLOT};

pub(super) fn enable_gro(_socket: &UdpSocket) -> bool {
    false
}

pub(super) fn recv(socket: &UdpSocket, bufs: &mut [u8], got: &mut Vec<Got>) -> io::Result<()> {
    for slot in bufs.chunks_exact_mut(SLOT).take(BATCH) {
        match socket.recv_from(slot) {
            Ok((len, from)) => got.push(Got {
                from: Some(from),
                len,
                segment: None,
                stamp: None,
            }),
            Err(e) if got.is_empty() => return Err(e),
            Err(_) => break,
        }
    }
    Ok(())
}

pub(super) fn send(socket: &UdpSocket, arena: &[u8], items: &[Item]) -> io::Result<usize> {
    let mut sent = 0;
    // No GSO here: SendBatch::push is never asked for runs.
    for it in items.iter().take(BATCH) {
        match socket.send_to(&arena[it.start..it.start + it.len], it.to) {
            Ok(_) => sent += 1,
            Err(e) if sent == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(sent)
}
