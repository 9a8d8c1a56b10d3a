//! Connections: who gets one, how long an idle one may live, and the accept
//! loop that serves the router on them.
//!
//! The server must always keep room to accept a real client, whatever others
//! do with their sockets:
//!
//! - at most [`ConnLimits::total`] connections at once, and at most
//!   [`ConnLimits::per_address`] from one source address; past either, a
//!   connection is accepted and closed at once (so the backlog keeps
//!   draining), and the refusals are counted in the log;
//! - a connection must complete a request's headers within
//!   [`ConnLimits::header_timeout`] of opening, and of its previous response
//!   (keep-alive idle): a socket that sends nothing, or half a request, is
//!   closed then;
//! - a TLS handshake must finish within [`HANDSHAKE_TIMEOUT`].
//!
//! A connection's place is held by its socket ([`Counted`]), so an event
//! socket that was upgraded from it keeps the place for as long as it lives.

use axum::extract::ConnectInfo;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

/// How long a client may take to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests get to finish once the server stops.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What the accept loop allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnLimits {
    /// Connections open at once (HTTP and event sockets alike).
    pub total: usize,
    /// Connections open at once from one source address.
    pub per_address: usize,
    /// From opening, or from the last response, to a request's complete headers.
    pub header_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            // Below a 20,000-file limit with room for the database and logs.
            total: 19_000,
            // An office behind one NAT address: two sockets a person.
            per_address: 1_000,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a connection was closed at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    Total,
    Address,
}

#[derive(Default)]
struct Counts {
    open: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// The connection counts, shared by the accept loop and every open socket.
pub struct Gate {
    limits: ConnLimits,
    counts: Mutex<Counts>,
}

impl Gate {
    pub fn new(limits: ConnLimits) -> Arc<Gate> {
        Arc::new(Gate {
            limits,
            counts: Mutex::new(Counts::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for a connection from `addr`, or why not.
    pub fn admit(self: &Arc<Self>, addr: IpAddr) -> Result<Ticket, Refused> {
        let mut c = self.lock();
        if c.open >= self.limits.total {
            return Err(Refused::Total);
        }
        let mine = c.by_address.entry(addr).or_insert(0);
        if *mine >= self.limits.per_address {
            return Err(Refused::Address);
        }
        *mine += 1;
        c.open += 1;
        Ok(Ticket {
            gate: self.clone(),
            addr,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().open
    }
}

/// One admitted connection's place; given back when dropped.
pub struct Ticket {
    gate: Arc<Gate>,
    addr: IpAddr,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut c = self.gate.lock();
        c.open = c.open.saturating_sub(1);
        if let Some(n) = c.by_address.get_mut(&self.addr) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.by_address.remove(&self.addr);
            }
        }
    }
}

/// A socket that holds its connection's place for as long as it lives.
pub struct Counted<IO> {
    io: IO,
    _ticket: Ticket,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Counted<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Counted<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// The client's address (the unspecified address when the router is driven
/// without a socket, as in-process tests do).
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |c| c.0.ip()),
        ))
    }
}

/// Refusals, logged at most every ten seconds with how many there were.
struct RefusalLog {
    total: u64,
    address: u64,
    last: Option<tokio::time::Instant>,
}

impl RefusalLog {
    fn note(&mut self, why: Refused, from: IpAddr, gate: &Gate) {
        match why {
            Refused::Total => self.total += 1,
            Refused::Address => self.address += 1,
        }
        let now = tokio::time::Instant::now();
        if self
            .last
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10))
        {
            tracing::warn!(
                at_total_limit = self.total,
                at_address_limit = self.address,
                last_from = %from,
                open = gate.open(),
                "connections refused (accepted and closed at once)"
            );
            self.last = Some(now);
            self.total = 0;
            self.address = 0;
        }
    }
}

/// Serves `app` on `listener` (over TLS with `tls`) until `stop` resolves;
/// then closes idle connections, lets in-flight requests finish (at most
/// [`DRAIN_TIMEOUT`]) and returns.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    gate: Arc<Gate>,
    stop: impl Future<Output = ()>,
) -> io::Result<()> {
    let (close_tx, close_rx) = watch::channel(false);
    // Every connection task holds a sender; all are gone when `recv` says None.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    let mut refusals = RefusalLog {
        total: 0,
        address: 0,
        last: None,
    };
    tokio::pin!(stop);
    loop {
        let (tcp, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off, don't spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let ticket = match gate.admit(addr.ip()) {
            Ok(t) => t,
            Err(why) => {
                refusals.note(why, addr.ip(), &gate);
                drop(tcp);
                continue;
            }
        };
        // Events are small frames that must leave now, not wait on Nagle for an ACK.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let (app, close, alive) = (app.clone(), close_rx.clone(), alive_tx.clone());
        let header_timeout = gate.limits.header_timeout;
        let tls = tls.clone();
        tokio::spawn(async move {
            let _alive = alive;
            connection(tcp, addr, ticket, tls, app, header_timeout, close).await;
        });
    }
    drop(listener);
    let _ = close_tx.send(true);
    drop(alive_tx);
    if tokio::time::timeout(DRAIN_TIMEOUT, alive_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!("some requests were still running when the server stopped");
    }
    Ok(())
}

async fn connection(
    tcp: TcpStream,
    addr: SocketAddr,
    ticket: Ticket,
    tls: Option<TlsAcceptor>,
    app: Router,
    header_timeout: Duration,
    close: watch::Receiver<bool>,
) {
    match tls {
        None => {
            let io = Counted {
                io: tcp,
                _ticket: ticket,
            };
            serve_http(io, addr, app, header_timeout, close).await;
        }
        Some(acceptor) => {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    let io = Counted {
                        io: tls,
                        _ticket: ticket,
                    };
                    serve_http(io, addr, app, header_timeout, close).await;
                }
                Ok(Err(e)) => tracing::debug!(%addr, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
            }
        }
    }
}

async fn serve_http<IO>(
    io: IO,
    addr: SocketAddr,
    app: Router,
    header_timeout: Duration,
    mut close: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(addr));
        let mut app = app.clone();
        async move { tower_service::Service::call(&mut app, req).await }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    let done = tokio::select! {
        r = conn.as_mut() => Some(r),
        _ = close.wait_for(|c| *c) => None,
    };
    let result = match done {
        Some(r) => r,
        None => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        // Header timeouts, resets, malformed requests: this connection only.
        tracing::debug!(%addr, error = %e, "connection closed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_address: usize) -> ConnLimits {
        ConnLimits {
            total,
            per_address,
            header_timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn one_address_past_its_share_is_refused_while_others_still_get_in() {
        let gate = Gate::new(limits(10, 2));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let t1 = gate.admit(a).unwrap();
        let _t2 = gate.admit(a).unwrap();
        assert!(matches!(gate.admit(a), Err(Refused::Address)));
        let _t3 = gate.admit(b).unwrap();
        assert_eq!(gate.open(), 3);
        drop(t1);
        assert_eq!(gate.open(), 2);
        assert!(
            gate.admit(a).is_ok(),
            "a closed socket gives its place back"
        );
    }

    #[test]
    fn past_the_total_everyone_is_refused_until_a_place_frees() {
        let gate = Gate::new(limits(2, 10));
        let t1 = gate.admit("192.0.2.1".parse().unwrap()).unwrap();
        let _t2 = gate.admit("192.0.2.2".parse().unwrap()).unwrap();
        assert!(matches!(
            gate.admit("192.0.2.3".parse().unwrap()),
            Err(Refused::Total)
        ));
        drop(t1);
        assert!(gate.admit("192.0.2.3".parse().unwrap()).is_ok());
    }
}
