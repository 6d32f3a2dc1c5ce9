//! The HTTP/1.1 connection loop, with the limits a server on the open internet
//! needs: a cap on open connections (in total and per client address), a deadline
//! for request headers (which also closes idle kept-alive connections), and a
//! deadline for responses to clients that stop reading. Request bodies are held
//! to a minimum rate by [`super::body_rate`].

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use ipnet::IpNet;
use poem::{Addr, Endpoint, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Sleep;

/// Connection limits, from `[server]` in the configuration.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_connections: usize,
    /// 0 means no per-address limit.
    pub max_per_ip: usize,
    pub header_timeout: Duration,
    pub send_timeout: Duration,
    /// Peers exempt from the per-address limit (the firm's reverse proxies, whose
    /// single address carries every client).
    pub exempt: Vec<IpNet>,
    /// How long open requests may finish after shutdown begins.
    pub shutdown_grace: Duration,
}

/// Serves `ep` on `listener` until `shutdown` resolves, then lets open requests
/// finish for up to `limits.shutdown_grace`.
pub async fn run<E>(
    listener: TcpListener,
    ep: E,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    E: Endpoint<Output = Response> + 'static,
{
    let ep = Arc::new(ep);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_address = Arc::new(PerAddress::default());
    let graceful = GracefulShutdown::new();
    let local = listener.local_addr()?;
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.map_err(io::Error::other)?,
            _ = &mut shutdown => break,
        };
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d: every check
        // and every handler sees the plain IPv4 address instead.
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        let exempt = super::listed(&limits.exempt, peer.ip());
        let claim = if exempt {
            None
        } else {
            match per_address.claim(peer.ip(), limits.max_per_ip) {
                Some(claim) => Some(claim),
                None => {
                    tracing::debug!(peer = %peer.ip(), "too many connections from one address; refused");
                    continue;
                }
            }
        };
        let _ = socket.set_nodelay(true);
        let conn = serve_connection(ep.clone(), socket, local, peer, &limits);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
            drop(claim);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!("requests still open at shutdown were cut off");
        }
    }
    Ok(())
}

fn serve_connection<E>(
    ep: Arc<E>,
    socket: TcpStream,
    local: SocketAddr,
    peer: SocketAddr,
    limits: &Limits,
) -> impl hyper_util::server::graceful::GracefulConnection<Error = hyper::Error> + use<E>
where
    E: Endpoint<Output = Response> + 'static,
{
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let ep = ep.clone();
        async move {
            let req = poem::Request::from((
                req,
                poem::web::LocalAddr(Addr::SocketAddr(local)),
                poem::web::RemoteAddr(Addr::SocketAddr(peer)),
                poem::http::uri::Scheme::HTTP,
            ));
            let resp: hyper::Response<
                http_body_util::combinators::BoxBody<bytes::Bytes, io::Error>,
            > = ep.get_response(req).await.into();
            Ok::<_, std::convert::Infallible>(resp)
        }
    });
    let io = TokioIo::new(StalledWriteGuard::new(socket, limits.send_timeout));
    http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        .serve_connection(io, service)
}

/// Open connections per client address (IPv6 counted per /64, the block one
/// subscriber usually gets).
#[derive(Default)]
struct PerAddress {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One counted connection; releases its count when dropped.
struct AddressClaim {
    owner: Arc<PerAddress>,
    key: IpAddr,
}

impl PerAddress {
    fn claim(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<AddressClaim> {
        let max = if max == 0 { usize::MAX } else { max };
        let key = super::network(ip);
        let mut open = self.open.lock().ok()?;
        let n = open.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(AddressClaim {
            owner: self.clone(),
            key,
        })
    }
}

impl Drop for AddressClaim {
    fn drop(&mut self) {
        if let Ok(mut open) = self.owner.open.lock()
            && let Some(n) = open.get_mut(&self.key)
        {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// A socket whose writes fail once they have made no progress for `timeout`: a
/// client that stops reading a response cannot hold the connection (and the
/// work behind it) forever.
struct StalledWriteGuard {
    inner: TcpStream,
    timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl StalledWriteGuard {
    fn new(inner: TcpStream, timeout: Duration) -> Self {
        StalledWriteGuard {
            inner,
            timeout,
            stalled: None,
        }
    }

    /// Called when a write is pending: starts the clock, or fails once it ran out.
    fn check_stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let timeout = self.timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading the response",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progress<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match poll {
            Poll::Pending => match self.check_stall(cx) {
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                _ => Poll::Pending,
            },
            ready => {
                self.stalled = None;
                ready
            }
        }
    }
}

impl AsyncRead for StalledWriteGuard {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for StalledWriteGuard {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.progress(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.progress(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.progress(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_counted_per_ipv4_address_and_ipv6_block() {
        let p = Arc::new(PerAddress::default());
        let a: IpAddr = "2001:db8:1:2:aaaa::1"
            .parse()
            .unwrap_or(IpAddr::from([0u8; 4]));
        let b: IpAddr = "2001:db8:1:2:bbbb::9"
            .parse()
            .unwrap_or(IpAddr::from([0u8; 4]));
        let first = p.claim(a, 2);
        let second = p.claim(b, 2);
        assert!(first.is_some() && second.is_some());
        assert!(p.claim(a, 2).is_none(), "the same /64 is one subscriber");
        assert!(p.claim("192.0.2.1".parse().unwrap_or(a), 2).is_some());
        drop(first);
        assert!(
            p.claim(b, 2).is_some(),
            "a closed connection frees its place"
        );
    }
}
