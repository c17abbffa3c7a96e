//! Addresses as the command line writes them: `PROTO://HOST:PORT`, and a
//! listener spec `SERVICE=PROTO://HOST:PORT[?framing=F]`.
//!
//! IPv6 hosts are written in brackets (`tcp://[::1]:7321`), the way
//! `SocketAddr` prints them, so what sockloop prints can be pasted back.
//! A host name (`localhost`) is resolved once, here, to its first address.
//!
//! A string that is not an address gives an [`AddrError`], a real error
//! type: `?` works on it in a `main` returning `Result<_, Box<dyn Error>>`
//! (it implements [`std::error::Error`]) or `io::Result` (it converts into
//! an [`io::Error`] of kind `InvalidInput`).

use std::fmt;
use std::io;
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

/// Why a string is not an [`Endpoint`] or a [`ListenSpec`]. Its `Display`
/// is the message the command line prints: what is wrong, in the string
/// as typed, and how it should look.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddrError {
    /// No `PROTO://` in front (`input`: the whole string).
    NotAnEndpoint {
        /// The string as typed.
        input: String,
    },
    /// A protocol other than `tcp` or `udp`.
    UnknownProtocol {
        /// The protocol as typed.
        proto: String,
        /// The string as typed.
        input: String,
    },
    /// No `:PORT`, or an IPv6 address without brackets.
    NotHostPort {
        /// The string as typed.
        input: String,
    },
    /// A port that is not 0 to 65535.
    BadPort {
        /// The port as typed.
        port: String,
        /// The string as typed.
        input: String,
    },
    /// A host that is empty or badly written.
    BadHost {
        /// The host as typed.
        host: String,
        /// The string as typed.
        input: String,
    },
    /// A host name that does not resolve (`reason`: the resolver's word).
    CannotResolve {
        /// The host as typed.
        host: String,
        /// Why.
        reason: String,
    },
    /// No `SERVICE=` in front of a listener.
    NotListenSpec {
        /// The string as typed.
        input: String,
    },
    /// `=` with nothing before it.
    NoService {
        /// The string as typed.
        input: String,
    },
    /// Something after `?` other than `framing=`.
    UnknownOption {
        /// The option as typed.
        option: String,
        /// The string as typed.
        input: String,
    },
    /// A framing that is not raw, line or len32 (`reason`: the message).
    BadFraming {
        /// Why.
        reason: String,
    },
    /// `?framing=` on a UDP listener.
    FramingOnUdp {
        /// The string as typed.
        input: String,
    },
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use AddrError::*;
        match self {
            NotAnEndpoint { input } => write!(
                f,
                "'{input}' is not PROTO://HOST:PORT (for example tcp://127.0.0.1:12000)"
            ),
            UnknownProtocol { proto, input } => write!(
                f,
                "unknown protocol '{proto}' in '{input}' (expected tcp or udp)"
            ),
            NotHostPort { input } => write!(
                f,
                "'{input}' is not HOST:PORT (IPv6 in brackets: [::1]:7000)"
            ),
            BadPort { port, input } => {
                write!(f, "bad port '{port}' in '{input}' (expected 0 to 65535)")
            }
            BadHost { host, input } => write!(
                f,
                "bad host '{host}' in '{input}' (IPv6 in brackets: [::1]:7000)"
            ),
            CannotResolve { host, reason } => write!(f, "cannot resolve host '{host}': {reason}"),
            NotListenSpec { input } => write!(f, "'{input}' is not SERVICE=PROTO://HOST:PORT"),
            NoService { input } => {
                write!(f, "'{input}' names no service (SERVICE=PROTO://HOST:PORT)")
            }
            UnknownOption { option, input } => write!(
                f,
                "unknown option '{option}' in '{input}' (expected framing=raw|line|len32)"
            ),
            BadFraming { reason } => f.write_str(reason),
            FramingOnUdp { input } => write!(
                f,
                "'{input}': framing applies to tcp listeners only (a datagram is its own frame)"
            ),
        }
    }
}

impl std::error::Error for AddrError {}

impl From<AddrError> for io::Error {
    /// `InvalidInput`, with the same message.
    fn from(e: AddrError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, e)
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
    type Err = AddrError;
    fn from_str(s: &str) -> Result<Self, AddrError> {
        let (proto, rest) = s
            .split_once("://")
            .ok_or_else(|| AddrError::NotAnEndpoint { input: s.into() })?;
        let proto = match proto {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            other => {
                return Err(AddrError::UnknownProtocol {
                    proto: other.into(),
                    input: s.into(),
                })
            }
        };
        Ok(Endpoint {
            proto,
            addr: parse_host_port(rest)?,
        })
    }
}

/// `HOST:PORT` to a socket address: an IP literal, or a name resolved now.
pub fn parse_host_port(s: &str) -> Result<SocketAddr, AddrError> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(AddrError::NotHostPort { input: s.into() });
    };
    if port.parse::<u16>().is_err() {
        return Err(AddrError::BadPort {
            port: port.into(),
            input: s.into(),
        });
    }
    if host.is_empty() || host.contains(':') || host.contains('[') {
        return Err(AddrError::BadHost {
            host: host.into(),
            input: s.into(),
        });
    }
    let unresolved = |reason: String| AddrError::CannotResolve {
        host: host.into(),
        reason,
    };
    match s.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| unresolved("it has no address".into())),
        Err(e) => Err(unresolved(e.to_string())),
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
    type Err = AddrError;
    fn from_str(s: &str) -> Result<Self, AddrError> {
        let (service, rest) = s
            .split_once('=')
            .ok_or_else(|| AddrError::NotListenSpec { input: s.into() })?;
        if service.is_empty() {
            return Err(AddrError::NoService { input: s.into() });
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
                    .ok_or_else(|| AddrError::UnknownOption {
                        option: q.into(),
                        input: s.into(),
                    })?
                    .parse::<Framing>()
                    .map_err(|reason| AddrError::BadFraming { reason })?;
                if endpoint.proto == Proto::Udp {
                    return Err(AddrError::FramingOnUdp { input: s.into() });
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
    fn parse_errors_work_with_question_mark_in_io_and_boxed_mains() {
        fn io_main() -> io::Result<ListenSpec> {
            Ok("echo=tcp://127.0.0.1".parse::<ListenSpec>()?)
        }
        fn boxed_main() -> Result<Endpoint, Box<dyn std::error::Error + Send + Sync>> {
            Ok("tcp://[::1".parse::<Endpoint>()?)
        }
        let e = io_main().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("not HOST:PORT"), "{e}");
        let e = boxed_main().unwrap_err();
        assert!(e.downcast_ref::<AddrError>().is_some(), "{e}");
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
            let err = bad.parse::<ListenSpec>().unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
