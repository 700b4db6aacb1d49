//! Accepting connections: how many, from whom, and for how long.
//!
//! A public server meets clients that open connections and never finish a request (one header
//! line every few seconds), clients that open thousands and send nothing, and clients that stop
//! reading our answer. Each would otherwise hold a task and a socket forever. Here:
//! - a request's head must arrive within `header_read_timeout`, counted from the connection's
//!   start or from the end of its previous response, so an idle keep-alive connection is closed
//!   after the same time;
//! - an answer that makes no progress for `write_timeout` (the client stopped reading) ends
//!   its connection;
//! - at most `max_connections` connections are open, and at most `max_connections_per_address`
//!   from one address (a trusted proxy excepted); a connection over either cap gets a
//!   one-line 503 and is closed at once, before any of its bytes are read.
//!
//! Only HTTP/1.1 is served: every client of the gateway speaks it, and one protocol is one set
//! of limits to get right.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::config::HttpConfig;
use crate::egress::Cidr;

/// What a connection over a cap is told before it is closed.
const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 77\r\n\r\n{\"error\":{\"code\":\"overloaded\",\"message\":\"too many connections; retry later\"}}";

#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub write_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub trusted_proxies: Vec<Cidr>,
}

impl ConnectionLimits {
    pub fn from_config(c: &HttpConfig) -> Self {
        Self {
            header_read_timeout: c.header_read_timeout,
            write_timeout: c.write_timeout,
            max_connections: c.max_connections,
            max_connections_per_address: c.max_connections_per_address,
            trusted_proxies: c.trusted_proxies.clone(),
        }
    }
}

/// Open connections per source address.
#[derive(Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

/// A connection's place in `PerAddress`, given back when the connection ends.
struct AddressSlot {
    book: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    fn admit(book: &Arc<Self>, ip: IpAddr, max: usize) -> Option<AddressSlot> {
        let mut open = book.0.lock().expect("connection book lock");
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            book: book.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.book.0.lock().expect("connection book lock");
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// What keeps a connection admitted; dropped when it closes.
struct Admitted {
    _total: OwnedSemaphorePermit,
    _address: Option<AddressSlot>,
}

/// Serves `router` on `listener` until `shutdown` fires, then lets open requests finish and
/// returns once every connection has closed (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let total = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_address = Arc::new(PerAddress::default());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors or memory for a moment: the connections that
                    // hold them will end; spinning on the error would not help them.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let Some(admitted) = admit(&total, &per_address, &limits, peer.ip()) else {
            refuse(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(StallGuard::new(stream, limits.write_timeout));
        let service = router
            .clone()
            .map_request(move |mut req: axum::http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req.map(Body::new)
            });
        let conn = builder.serve_connection(io, TowerToHyperService::new(service));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // Errors here are the client's doing (reset, timeout, garbage): nothing to report.
            let _ = conn.await;
            drop(admitted);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

fn admit(
    total: &Arc<Semaphore>,
    per_address: &Arc<PerAddress>,
    limits: &ConnectionLimits,
    ip: IpAddr,
) -> Option<Admitted> {
    let Ok(permit) = total.clone().try_acquire_owned() else {
        metrics::counter!("gateway_http_connections_refused_total", "cap" => "total").increment(1);
        return None;
    };
    let address = if limits.trusted_proxies.iter().any(|c| c.contains(ip)) {
        None
    } else {
        match PerAddress::admit(per_address, ip, limits.max_connections_per_address) {
            Some(slot) => Some(slot),
            None => {
                metrics::counter!("gateway_http_connections_refused_total", "cap" => "address")
                    .increment(1);
                return None;
            }
        }
    };
    Some(Admitted {
        _total: permit,
        _address: address,
    })
}

/// Tells a connection over a cap why it is closed, without waiting on it.
fn refuse(stream: TcpStream) {
    let _ = stream.try_write(OVER_CAPACITY);
}

/// A socket whose writes fail once they have made no progress for `timeout`.
struct StallGuard<S> {
    inner: S,
    timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> StallGuard<S> {
    fn new(inner: S, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            stalled: None,
        }
    }

    fn on_write<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match r {
            Poll::Ready(out) => {
                self.stalled = None;
                Poll::Ready(out)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let sleep = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                ready!(sleep.as_mut().poll(cx));
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client stopped reading the response",
                )))
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for StallGuard<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for StallGuard<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.on_write(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.on_write(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.on_write(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_write_the_client_never_reads_fails_after_the_timeout() {
        use tokio::io::AsyncWriteExt;
        let (ours, _theirs) = tokio::io::duplex(64);
        let mut guarded = StallGuard::new(ours, Duration::from_secs(30));
        let started = tokio::time::Instant::now();
        // 64 bytes fit in the pipe; the rest waits for a reader that never comes.
        let err = guarded.write_all(&[0u8; 1024]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_but_steady_reader_is_not_cut_off() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut guarded = StallGuard::new(ours, Duration::from_secs(30));
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let mut total = 0;
            while total < 1024 {
                tokio::time::sleep(Duration::from_secs(20)).await;
                total += theirs.read(&mut buf).await.unwrap();
            }
        });
        guarded.write_all(&[0u8; 1024]).await.unwrap();
        reader.await.unwrap();
    }

    #[test]
    fn the_refusal_is_a_whole_http_response() {
        let text = std::str::from_utf8(OVER_CAPACITY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "overloaded");
    }

    #[test]
    fn an_address_gets_its_slots_back_when_connections_end() {
        let book = Arc::new(PerAddress::default());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let a = PerAddress::admit(&book, ip, 2).unwrap();
        let _b = PerAddress::admit(&book, ip, 2).unwrap();
        assert!(PerAddress::admit(&book, ip, 2).is_none());
        assert!(PerAddress::admit(&book, "192.0.2.2".parse().unwrap(), 2).is_some());
        drop(a);
        assert!(PerAddress::admit(&book, ip, 2).is_some());
    }
}
