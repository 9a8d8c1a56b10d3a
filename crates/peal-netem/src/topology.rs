//! A shaped path between two network namespaces:
//!
//! ```text
//!   ns A: eth0 10.77.0.1/24 ─ veth ─ a ┐ ns F: peal-netem forward a b PROFILE
//!   ns B: eth0 10.77.0.2/24 ─ veth ─ b ┘
//! ```
//!
//! Each side has a default route (through its eth0: no multicast-less
//! surprises) and IPv6 off; checksum and segmentation offloads are off on
//! every veth, or forwarded TCP would carry unfinished checksums and be
//! dropped. Interface names are local to their namespace, so paths made at
//! once by parallel tests never collide; namespace names carry the pid.
//! Dropping the [`Path`] stops the forwarder and removes all three.

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// One end of the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

/// Two namespaces joined through the forwarder (see the module docs).
pub struct Path {
    names: [String; 3],
    forwarder: Option<Child>,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

fn run(args: &[&str]) -> std::io::Result<()> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("{}: {e} (iproute2 and ethtool are needed)", args[0]),
            )
        })?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

impl Path {
    /// Makes the path with `profile` (as `peal-netem forward` takes it),
    /// running the forwarder binary at `netem`. Needs root (CAP_NET_ADMIN).
    pub fn create(profile: &str, netem: &std::path::Path) -> std::io::Result<Path> {
        Path::create_with(profile, netem, true)
    }

    /// As [`Path::create`]; `default_route: false` leaves both sides with
    /// only their subnet's route, as on an offline LAN or some VPNs: no
    /// route for multicast, so an mDNS socket can't join its group.
    pub fn create_with(
        profile: &str,
        netem: &std::path::Path,
        default_route: bool,
    ) -> std::io::Result<Path> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let base = format!("peal{}-{n}", std::process::id());
        let names = ["a", "b", "f"].map(|s| format!("{base}{s}"));
        let mut path = Path {
            names: names.clone(),
            forwarder: None,
        };
        let [a, b, f] = &names;
        for ns in &names {
            run(&["ip", "netns", "add", ns])?;
        }
        for (ns, peer, addr) in [(a, "a", "10.77.0.1/24"), (b, "b", "10.77.0.2/24")] {
            run(&[
                "ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", peer,
                "netns", f,
            ])?;
            run(&["ip", "-n", ns, "addr", "add", addr, "dev", "eth0"])?;
        }
        for ns in &names {
            run(&[
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ])?;
            run(&["ip", "-n", ns, "link", "set", "dev", "lo", "up"])?;
        }
        for (ns, dev) in [(a, "eth0"), (b, "eth0"), (f, "a"), (f, "b")] {
            run(&[
                "ip", "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off", "rx", "off", "tso",
                "off", "gso", "off", "gro", "off",
            ])?;
            run(&[
                "ip", "-n", ns, "link", "set", "dev", dev, "up", "promisc", "on",
            ])?;
        }
        for ns in [a, b].into_iter().filter(|_| default_route) {
            run(&["ip", "-n", ns, "route", "add", "default", "dev", "eth0"])?;
        }
        let mut child = Command::new("ip")
            .args(["netns", "exec", f])
            .arg(netem)
            .args(["forward", "a", "b", profile])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take();
        path.forwarder = Some(child);
        let mut line = String::new();
        if let Some(out) = stdout {
            BufReader::new(out).read_line(&mut line)?;
        }
        if line.trim() != "ready" {
            return Err(std::io::Error::other(format!(
                "peal-netem did not start (said {line:?}; its stderr is above)"
            )));
        }
        Ok(path)
    }

    /// The side's address (the server a test starts on side A listens here).
    pub fn addr(&self, side: Side) -> Ipv4Addr {
        match side {
            Side::A => Ipv4Addr::new(10, 77, 0, 1),
            Side::B => Ipv4Addr::new(10, 77, 0, 2),
        }
    }

    /// The namespace of a side, for `ip netns exec`.
    pub fn namespace(&self, side: Side) -> &str {
        match side {
            Side::A => &self.names[0],
            Side::B => &self.names[1],
        }
    }

    /// `program` to run on `side` (through `ip netns exec`).
    pub fn command(&self, side: Side, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.namespace(side)]).arg(program);
        c
    }
}

impl Drop for Path {
    fn drop(&mut self) {
        if let Some(mut c) = self.forwarder.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.names {
            let _ = run(&["ip", "netns", "del", ns]);
        }
    }
}
