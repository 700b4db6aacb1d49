//! The attacks and faults a public HISP meets, each reproduced on 127.0.0.1 against the whole
//! gateway, with the refusal asserted and a check that others are served meanwhile.
//!
//! Any 127.x.y.z address is this machine, so a test plays the attacker from 127.0.0.1 and an
//! innocent client from 127.0.0.2: per-address limits then tell them apart as they would tell
//! apart two hosts.

mod connections;
mod cpu;
mod database;
mod guessing;
mod ssrf;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::net::{TcpSocket, TcpStream};

use crate::helpers::process::{GatewayProcess, wait_ready};
use crate::helpers::{TestApp, gateway_command};
use tokio_util::sync::CancellationToken;

pub const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
pub const BYSTANDER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// An HTTP client whose connections come from `ip`.
pub fn client_from(ip: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(ip))
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A raw TCP connection to `to` from `from`.
pub async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0))?;
    socket.connect(to).await
}

/// Asks `/healthz` every 50 ms from the bystander's address while an attack runs, and keeps
/// the slowest answer (a failed or refused probe counts as a minute).
pub struct HealthWatch {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<(Duration, usize)>,
}

impl HealthWatch {
    pub fn start(url: String) -> Self {
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let http = client_from(BYSTANDER);
            let mut slowest = Duration::ZERO;
            let mut probes = 0;
            while !token.is_cancelled() {
                let started = Instant::now();
                let ok = tokio::time::timeout(Duration::from_secs(60), http.get(&url).send())
                    .await
                    .is_ok_and(|r| r.is_ok_and(|r| r.status() == 200));
                let took = if ok {
                    started.elapsed()
                } else {
                    Duration::from_secs(60)
                };
                slowest = slowest.max(took);
                probes += 1;
                tokio::select! {
                    _ = token.cancelled() => {}
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
            (slowest, probes)
        });
        Self { stop, task }
    }

    /// Stops probing; the slowest answer seen. At least one probe has been made.
    pub async fn finish(self) -> Duration {
        // Give the watch at least one full probe even when the attack was over at once.
        tokio::time::sleep(Duration::from_millis(120)).await;
        self.stop.cancel();
        let (slowest, probes) = self.task.await.unwrap();
        assert!(probes > 0, "no health probe was made");
        slowest
    }
}

/// The real binary on `app`'s database, with `env` set, once it is ready.
pub async fn gateway_on(app: &TestApp, env: &[(&str, &str)]) -> GatewayProcess {
    let mut cmd = gateway_command();
    cmd.env("DATABASE_URL", &app.db.url)
        .envs(env.iter().copied());
    let gw = GatewayProcess::start(cmd);
    wait_ready(&gw.url("/readyz")).await;
    gw
}

/// The slowest health probe an attack may cause. Generous for a shared 2-core machine running
/// other tests at the same time; the failures it catches are stalls of many seconds.
pub const HEALTHY: Duration = Duration::from_secs(2);
