//! The inbound SMTP front door: other HISPs deliver Direct messages here. This module holds
//! the listener and its connection caps; `session` the protocol, `tls` STARTTLS. A message is
//! answered 250 only once it and its processing job are committed (`service::mail_intake`).

pub mod session;
pub mod tls;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::state::AppState;

/// The bound listener, ready to serve.
pub struct Listener {
    listener: TcpListener,
    acceptor: TlsAcceptor,
}

impl Listener {
    /// Binds `smtp.listen` (port 0 picks a free one) and prepares the TLS certificate.
    pub async fn bind(config: &Config) -> anyhow::Result<Self> {
        let acceptor = tls::acceptor(&config.smtp, &session::hostname(config))?;
        let listener = TcpListener::bind(config.smtp.listen)
            .await
            .with_context(|| format!("binding SMTP listener on {}", config.smtp.listen))?;
        Ok(Self { listener, acceptor })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// Accepts sessions until `shutdown`, then stops accepting and gives sessions in a
    /// transaction up to `grace` to finish it (idle ones are told 421 at once).
    pub async fn serve(self, state: AppState, shutdown: CancellationToken, grace: Duration) {
        let c = &state.config.smtp;
        let caps = Arc::new(Caps::new(c.max_sessions, c.max_sessions_per_address));
        let ctx = Arc::new(session::Context::from_state(&state, shutdown.clone()));
        let sessions = TaskTracker::new();
        loop {
            let (stream, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: pause rather than spin.
                        tracing::warn!(error = %e, "smtp accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let Some(slot) = caps.take(peer.ip()) else {
                metrics::counter!("gateway_smtp_sessions_refused_total").increment(1);
                sessions.spawn(refuse(stream, ctx.hostname.clone()));
                continue;
            };
            let (ctx, acceptor) = (ctx.clone(), self.acceptor.clone());
            sessions.spawn(async move {
                connection(stream, peer, &ctx, &acceptor).await;
                drop(slot);
            });
        }
        drop(self.listener);
        sessions.close();
        if tokio::time::timeout(grace, sessions.wait()).await.is_err() {
            tracing::warn!(
                ?grace,
                "smtp sessions did not finish within the shutdown grace period"
            );
        }
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    ctx: &session::Context,
    acceptor: &TlsAcceptor,
) {
    let session::Outcome::StartTls(stream) = session::run(stream, ctx, peer, false).await else {
        return;
    };
    match tokio::time::timeout(ctx.command_timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => {
            // Over TLS a second STARTTLS is refused, so this session only ends.
            let _ = session::run(tls, ctx, peer, true).await;
        }
        Ok(Err(e)) => tracing::debug!(peer = %peer.ip(), error = %e, "smtp TLS handshake failed"),
        Err(_) => tracing::debug!(peer = %peer.ip(), "smtp TLS handshake timed out"),
    }
}

/// A connection over a cap: one line, then closed, with nothing read.
async fn refuse(mut stream: TcpStream, hostname: String) {
    let line = format!("421 4.7.0 {hostname} Too many connections, try again later\r\n");
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        stream.write_all(line.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

/// Open sessions, in all and per client address.
struct Caps {
    total: usize,
    per_address: usize,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// A session's place under the caps, given back when dropped.
struct Slot {
    caps: Arc<Caps>,
    ip: IpAddr,
}

impl Caps {
    fn new(total: usize, per_address: usize) -> Self {
        Self {
            total,
            per_address,
            open: Mutex::new((0, HashMap::new())),
        }
    }

    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let (all, by_ip) = &mut *open;
        let mine = by_ip.get(&ip).copied().unwrap_or(0);
        if *all >= self.total || mine >= self.per_address {
            return None;
        }
        *all += 1;
        by_ip.insert(ip, mine + 1);
        Some(Slot {
            caps: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.caps.open.lock().unwrap_or_else(|e| e.into_inner());
        let (all, by_ip) = &mut *open;
        *all -= 1;
        if let Some(n) = by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                by_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_in_all_and_per_address_and_free_on_drop() {
        let caps = Arc::new(Caps::new(3, 2));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let a1 = caps.take(a).unwrap();
        let _a2 = caps.take(a).unwrap();
        assert!(caps.take(a).is_none(), "per-address cap");
        let _b1 = caps.take(b).unwrap();
        assert!(caps.take(b).is_none(), "total cap");
        drop(a1);
        assert!(caps.take(b).is_some());
    }
}
