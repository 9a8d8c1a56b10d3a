//! peal-netem: a network path that is not loopback, for tests and benchmarks.
//!
//! Loopback hides loss, jitter and narrow links, and this kernel has no
//! `sch_netem`. So: two network namespaces (`a`, `b`), each with one veth
//! whose peer lives in a third namespace, where `peal-netem forward` moves
//! Ethernet frames between the two peers over `AF_PACKET` sockets and, on the
//! way, loses, delays, jitters and rate-limits them with a bounded queue.
//!
//! # Layout
//!
//! - [`impair`]: the path model, pure, time and randomness as inputs:
//!   frame in → dropped, or delivered at an instant.
//! - [`profile`]: a path's parameters, parsed from `loss=3%,delay=40ms,...`,
//!   and the named profiles the benchmark and tests use.
//! - [`forward`]: the forwarder's loop over two raw sockets (the only
//!   unsafe code: the socket calls, in `sys`; `no_sys` where there are none).
//! - [`topology`]: creates and removes the namespaces, veths, addresses,
//!   routes and the forwarder process; [`topology::Path::exec`] runs a
//!   command on either side.

pub mod forward;
pub mod impair;
pub mod profile;
// The raw sockets: Linux's AF_PACKET; elsewhere the same API refusing to
// open (the forwarder and the paths it makes are Linux-only, but what
// links this crate builds for Windows too).
#[cfg(target_os = "linux")]
mod sys;
#[cfg(not(target_os = "linux"))]
#[path = "no_sys.rs"]
mod sys;
pub mod topology;

pub use impair::{Impairment, Verdict};
pub use profile::{Profile, ProfileError};
pub use topology::{Path, Side};
