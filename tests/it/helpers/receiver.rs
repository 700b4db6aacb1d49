//! A vendor's server on 127.0.0.1 (an EHR's inbound endpoint, a DSN webhook receiver): it
//! records every request and answers with a status the test chooses.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// What we answered.
    pub status: u16,
    /// When it arrived.
    pub at: chrono::DateTime<chrono::Utc>,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header"))
    }
}

#[derive(Clone)]
struct Shared {
    log: Arc<Mutex<Vec<Received>>>,
    /// Pushes whose JSON disagrees with the OpenAPI document's webhooks (see `conformance`).
    violations: Arc<Mutex<Vec<String>>>,
    status: Arc<AtomicU16>,
    delay_ms: Arc<AtomicU64>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    shared: Shared,
    stop: CancellationToken,
}

impl Receiver {
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    /// Listens on a given address (to come back on the same port after `stop`).
    pub async fn start_on(addr: SocketAddr) -> Self {
        let shared = Shared {
            log: Arc::default(),
            violations: Arc::default(),
            status: Arc::new(AtomicU16::new(200)),
            delay_ms: Arc::default(),
        };
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(record).with_state(shared.clone());
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(s.cancelled_owned())
                .await
                .unwrap();
        });
        Self { addr, shared, stop }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The status every following request gets.
    pub fn answer(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    /// Each request is answered (and recorded) only after `d`: a slow EHR. A request whose
    /// sender vanishes meanwhile is never recorded.
    pub fn delay(&self, d: Duration) {
        self.shared
            .delay_ms
            .store(d.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Requests answered 2xx.
    pub fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .collect()
    }

    /// Waits until at least `n` requests were accepted.
    pub async fn wait_accepted(&self, n: usize, within: Duration) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let got = self.accepted();
            if got.len() >= n {
                return got;
            }
            assert!(
                start.elapsed() < within,
                "only {} of {n} requests arrived within {within:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
        let violations = std::mem::take(&mut *self.shared.violations.lock().unwrap());
        if !violations.is_empty() && !std::thread::panicking() {
            panic!(
                "{} push(es) disagree with the OpenAPI document's webhooks:\n{}",
                violations.len(),
                violations.join("\n")
            );
        }
    }
}

/// The documented webhook a push to `path` is, by the paths the tests register: inbound
/// messages at `…/inbound`, delivery status notifications at `…/dsn`.
fn webhook_of(path: &str) -> Option<&'static str> {
    if path.ends_with("/inbound") {
        Some("inboundMessage")
    } else if path.ends_with("/dsn") {
        Some("deliveryStatusNotification")
    } else {
        None
    }
}

async fn record(State(s): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    let delay = s.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let status = s.status.load(Ordering::SeqCst);
    if let Some(name) = webhook_of(uri.path())
        && let Err(why) = super::conformance::check_webhook(name, &body)
    {
        s.violations
            .lock()
            .unwrap()
            .push(format!("{} ({name}): {why}", uri.path()));
    }
    s.log.lock().unwrap().push(Received {
        path: uri.path().to_owned(),
        headers,
        body: body.to_vec(),
        status,
        at: chrono::Utc::now(),
    });
    StatusCode::from_u16(status).unwrap()
}
