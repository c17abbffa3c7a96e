//! Addresses as the command line writes them: `PROTO://HOST:PORT`, and a
//! listener spec `SERVICE=PROTO://HOST:PORT[?framing=F]`.
//!
//! IPv6 hosts are written in brackets (`tcp://[::1]:7321`), the way
//! `SocketAddr` prints them, so what sockloop prints can be pasted back.
//! A host name (`localhost`) is resolved once, here, to its first address.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;

use crate::framing::Framing;

/// TCP or UDP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// `tcp://`: a byte stream, framed per listener.
    Tcp,
    /// `udp://`: datagrams, each its own message.
    Udp,
}

impl Proto {
    /// `tcp` or `udp`.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `PROTO://HOST:PORT`: where a client connects or a listener binds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// TCP or UDP.
    pub proto: Proto,
    /// The address (resolved once, when parsed).
    pub addr: SocketAddr,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.proto, self.addr)
    }
}

impl FromStr for Endpoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (proto, rest) = s.split_once("://").ok_or_else(|| {
            format!("'{s}' is not PROTO://HOST:PORT (for example tcp://127.0.0.1:12000)")
        })?;
        let proto = match proto {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            other => {
                return Err(format!(
                    "unknown protocol '{other}' in '{s}' (expected tcp or udp)"
                ))
            }
        };
        Ok(Endpoint {
            proto,
            addr: parse_host_port(rest)?,
        })
    }
}

/// `HOST:PORT` to a socket address: an IP literal, or a name resolved now.
pub fn parse_host_port(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!(
            "'{s}' is not HOST:PORT (IPv6 in brackets: [::1]:7000)"
        ));
    };
    if port.parse::<u16>().is_err() {
        return Err(format!("bad port '{port}' in '{s}' (expected 0 to 65535)"));
    }
    if host.is_empty() || host.contains(':') || host.contains('[') {
        return Err(format!(
            "bad host '{host}' in '{s}' (IPv6 in brackets: [::1]:7000)"
        ));
    }
    match s.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("host '{host}' has no address")),
        Err(e) => Err(format!("cannot resolve host '{host}': {e}")),
    }
}

/// `SERVICE=PROTO://HOST:PORT[?framing=F]`: one `--listen`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenSpec {
    /// The service's name: one of [`crate::service::SERVICES`] for
    /// `sockloop serve`, any name for [`crate::server::Builder::listen_with`].
    pub service: String,
    /// Where it listens.
    pub endpoint: Endpoint,
    /// The framing asked for; `None` means the service's default. Only TCP
    /// has framing: a datagram is its own frame.
    pub framing: Option<Framing>,
}

impl FromStr for ListenSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (service, rest) = s
            .split_once('=')
            .ok_or_else(|| format!("'{s}' is not SERVICE=PROTO://HOST:PORT"))?;
        if service.is_empty() {
            return Err(format!(
                "'{s}' names no service (SERVICE=PROTO://HOST:PORT)"
            ));
        }
        let (addr, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        let endpoint: Endpoint = addr.parse()?;
        let framing = match query {
            None => None,
            Some(q) => {
                let f = q
                    .strip_prefix("framing=")
                    .ok_or_else(|| {
                        format!("unknown option '{q}' in '{s}' (expected framing=raw|line|len32)")
                    })?
                    .parse::<Framing>()?;
                if endpoint.proto == Proto::Udp {
                    return Err(format!("'{s}': framing applies to tcp listeners only (a datagram is its own frame)"));
                }
                Some(f)
            }
        };
        Ok(ListenSpec {
            service: service.to_string(),
            endpoint,
            framing,
        })
    }
}

impl fmt::Display for ListenSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.service, self.endpoint)?;
        if let Some(fr) = self.framing {
            write!(f, "?framing={fr}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listen_specs() {
        let s: ListenSpec = "count=tcp://127.0.0.1:0?framing=len32".parse().unwrap();
        assert_eq!(s.service, "count");
        assert_eq!(s.endpoint.proto, Proto::Tcp);
        assert_eq!(s.endpoint.addr, "127.0.0.1:0".parse().unwrap());
        assert_eq!(s.framing, Some(Framing::Len32));
        let v6: ListenSpec = "echo=udp://[::1]:7321".parse().unwrap();
        assert_eq!(v6.endpoint.addr, "[::1]:7321".parse().unwrap());
        assert_eq!(v6.to_string(), "echo=udp://[::1]:7321");
    }

    #[test]
    fn resolves_localhost() {
        let e: Endpoint = "tcp://localhost:80".parse().unwrap();
        assert!(e.addr.ip().is_loopback());
    }

    #[test]
    fn rejects_bad_specs_with_a_reason() {
        for (bad, why) in [
            ("upper", "not SERVICE="),
            ("=tcp://127.0.0.1:1", "names no service"),
            ("echo=sctp://127.0.0.1:1", "unknown protocol"),
            ("echo=tcp://127.0.0.1", "not HOST:PORT"),
            ("echo=tcp://127.0.0.1:99999", "bad port"),
            ("echo=tcp://::1:7", "bad host"),
            ("echo=tcp://127.0.0.1:1?framing=xml", "unknown framing"),
            ("echo=tcp://127.0.0.1:1?mode=x", "unknown option"),
            ("echo=udp://127.0.0.1:1?framing=line", "tcp listeners only"),
        ] {
            let err = bad.parse::<ListenSpec>().unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
