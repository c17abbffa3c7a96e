//! Hosts for tests: network namespaces this test creates, joined by a
//! bridge, with addresses only inside them (10.200.0.0/24), removed when
//! the guard drops — also when the test fails.
//!
//! ```text
//!   <prefix>-srv  10.200.0.1 ─┐
//!   <prefix>-h0   10.200.0.10 ┼─ br0 in <prefix>-sw
//!   <prefix>-h1   10.200.0.11 ┘   (nothing in the machine's own namespace)
//! ```

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The namespaces of one test, deleted on drop (which also deletes the
/// veth pairs and the bridge inside them).
pub struct Net {
    pub prefix: String,
    names: Vec<String>,
}

/// The server's address.
pub const SERVER: &str = "10.200.0.1";

/// Host `k`'s address.
pub fn host_addr(k: usize) -> String {
    format!("10.200.0.{}", 10 + k)
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` (iproute2): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Net {
    /// A server namespace and `hosts` host namespaces on one bridge. Panics
    /// with the reason when namespaces cannot be made (not root, no
    /// iproute2): this test cannot run then, and must not pass.
    pub fn new(hosts: usize) -> Net {
        static RUN: AtomicUsize = AtomicUsize::new(0);
        // Unique per test run (pid) and per test in it (counter).
        let prefix = format!(
            "sl{}x{}",
            std::process::id(),
            RUN.fetch_add(1, Ordering::Relaxed)
        );
        let mut net = Net {
            prefix,
            names: Vec::new(),
        };
        if let Err(e) = net.build(hosts) {
            panic!(
                "cannot build the test's network namespaces ({e}); this test needs root and iproute2 (`ip netns`), as CI has (.ci/run installs iproute2)"
            );
        }
        net
    }

    fn add(&mut self, name: &str) -> Result<String, String> {
        let full = format!("{}-{name}", self.prefix);
        ip(&["netns", "add", &full])?;
        // Recorded at once, so Drop removes it whatever fails next.
        self.names.push(full.clone());
        ip(&["-n", &full, "link", "set", "lo", "up"])?;
        Ok(full)
    }

    fn build(&mut self, hosts: usize) -> Result<(), String> {
        let sw = self.add("sw")?;
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        let mut members = vec![("srv".to_string(), SERVER.to_string())];
        members.extend((0..hosts).map(|k| (format!("h{k}"), host_addr(k))));
        for (k, (name, addr)) in members.iter().enumerate() {
            let ns = self.add(name)?;
            let port = format!("p{k}");
            ip(&[
                "link", "add", "name", "eth0", "netns", &ns, "type", "veth", "peer", "name", &port,
                "netns", &sw,
            ])?;
            ip(&["-n", &sw, "link", "set", &port, "master", "br0", "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            // A host's whole ephemeral range, as a load host would be
            // set up (one host with 18,000 connections to one address
            // needs more than the default 28,000 ports' half).
            ip(&[
                "netns",
                "exec",
                &ns,
                "sh",
                "-c",
                "echo 1024 65535 > /proc/sys/net/ipv4/ip_local_port_range",
            ])?;
        }
        Ok(())
    }

    /// The namespace of member `name` (`srv`, `h0`, …).
    pub fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// `program args…` to run inside namespace `name`.
    pub fn command(&self, name: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(name), program]);
        c
    }

    /// Whether namespace `full` still exists.
    pub fn exists(full: &str) -> bool {
        Command::new("ip")
            .args(["netns", "list"])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|l| l.split_whitespace().next() == Some(full))
            })
            .unwrap_or(false)
    }

    /// Every namespace this guard made.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for n in self.names.iter().rev() {
            let _ = ip(&["netns", "del", n]);
        }
    }
}
