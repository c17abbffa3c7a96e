//! Where connections come from: one source address, or several once one
//! address's ephemeral ports run short, and the nonblocking connect.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use mio::net::TcpStream;

use super::PORT_MARGIN;

/// How many connections one source address is given: half its ephemeral
/// port range. The kernel finds a free port for each connect by probing
/// the range; past about half full the probing dominates the ramp (seen
/// here: 19,000 connections from one address ramped at 2,800/s instead of
/// 5,000/s), so more addresses are used before then.
fn ports_per_source() -> usize {
    ephemeral_ports() / 2
}

/// The ephemeral port range's size, less a margin.
fn ephemeral_ports() -> usize {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|p| p.parse::<usize>().ok());
            Some(it.next()??..=it.next()??)
        })
        .map_or(28_000, |r| r.count())
        .saturating_sub(PORT_MARGIN)
        .max(1)
}

/// The source addresses `n` connections to `target` need: none (let the
/// kernel choose) if one address has ports enough, else 127.0.0.1, .2, …
pub(crate) fn source_addrs(target: SocketAddr, n: usize) -> Result<Vec<IpAddr>, String> {
    let per = ports_per_source();
    if n <= per {
        return Ok(Vec::new());
    }
    let needed = n.div_ceil(per);
    match target.ip() {
        IpAddr::V4(ip) if ip.is_loopback() && needed < 250 => {
            Ok((1..=needed as u8).map(|k| IpAddr::V4(Ipv4Addr::new(127, 0, 0, k))).collect())
        }
        _ => Err(format!(
            "{n} connections need {needed} source addresses ({per} ports each); only a 127.x.x.x target can spread over 127.0.0.1, .2, …"
        )),
    }
}

pub(crate) fn connect_from(src: Option<IpAddr>, target: SocketAddr) -> io::Result<TcpStream> {
    let Some(src) = src else {
        return TcpStream::connect(target);
    };
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(target), Type::STREAM, None)?;
    s.set_nonblocking(true)?;
    crate::sys::set_bind_address_no_port(&s)?;
    s.bind(&SocketAddr::new(src, 0).into())?;
    match s.connect(&target.into()) {
        Ok(()) => {}
        // A nonblocking connect answers "in progress"; writability (or an
        // error) tells the outcome later.
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(s.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_spread_only_when_needed() {
        let target: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert!(source_addrs(target, 100).unwrap().is_empty());
        let per = ports_per_source();
        let spread = source_addrs(target, per * 3 + 1).unwrap();
        assert_eq!(spread.len(), 4);
        assert_eq!(spread[3], IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4)));
        assert!(source_addrs("[::1]:9".parse().unwrap(), per * 2).is_err());
    }
}
