//! Where there are no `AF_PACKET` sockets (not Linux): the forwarder's
//! sockets with the same API, which refuse to open, so `peal-netem` and
//! what links it build everywhere and say why they cannot forward.

use std::io;
use std::time::Duration;

/// Never made: [`RawSocket::bind`] always refuses.
pub enum RawSocket {}

impl RawSocket {
    pub fn bind(_ifname: &str) -> io::Result<RawSocket> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "forwarding between network namespaces needs Linux (AF_PACKET sockets)",
        ))
    }

    pub fn recv(&self, _buf: &mut [u8]) -> io::Result<Option<(usize, bool)>> {
        match *self {}
    }

    pub fn send(&self, _frame: &[u8]) -> io::Result<()> {
        match *self {}
    }
}

pub fn wait(sockets: [&RawSocket; 2], _timeout: Duration) -> io::Result<()> {
    match *sockets[0] {}
}
