//! Slow and idle connections: a head must arrive in time, one address cannot hold every
//! connection, and a body that trickles in gets the door's own 503.

use std::time::{Duration, Instant};

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{ATTACKER, HEALTHY, HealthWatch, connect_from};
use crate::helpers::{TestApp, TestOptions, test_config};

async fn app_with(f: impl FnOnce(&mut hisp_gateway::config::Config)) -> TestApp {
    let mut config = test_config();
    f(&mut config);
    TestApp::spawn_with(TestOptions {
        config,
        ..Default::default()
    })
    .await
}

/// Reads until the server closes the connection (or `limit` passes); what it sent, and when
/// it closed.
async fn read_until_closed(mut s: TcpStream, limit: Duration) -> (String, Option<Instant>) {
    let mut got = Vec::new();
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (
                    String::from_utf8_lossy(&got).into_owned(),
                    Some(Instant::now()),
                );
            }
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), None),
        }
    }
}

/// 20 connections sending one header line every 2 s stayed open for 50 s and more. Now a
/// head must be complete within `http.header_read_timeout` (1 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_head_is_cut_off_at_the_header_timeout() {
    let app = app_with(|c| c.http.header_read_timeout = Duration::from_secs(1)).await;
    let watch = HealthWatch::start(app.url("/healthz"));
    let started = Instant::now();
    let mut tricklers = Vec::new();
    for _ in 0..20 {
        let mut s = connect_from(ATTACKER, app.addr).await.unwrap();
        tricklers.push(tokio::spawn(async move {
            s.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
            let (mut r, mut w) = s.into_split();
            let writer = tokio::spawn(async move {
                for i in 0..100 {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    if w.write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
            let mut buf = [0u8; 1024];
            let closed = tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    match r.read(&mut buf).await {
                        Ok(0) | Err(_) => return Instant::now(),
                        Ok(_) => {}
                    }
                }
            })
            .await;
            writer.abort();
            closed.expect("the server kept a trickling connection open for 10 s")
        }));
    }
    for t in tricklers {
        let closed = t.await.unwrap();
        let after = closed - started;
        assert!(
            after < Duration::from_secs(4),
            "closed only after {after:?}"
        );
    }
    let slowest = watch.finish().await;
    assert!(slowest < HEALTHY, "/healthz took {slowest:?}");
}

/// 2,000 idle connections were all kept. Now one address holds at most
/// `http.max_connections_per_address`; the rest are told 503 and closed at once, and the held
/// ones are closed when the header timeout passes. Others connect and are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_from_one_address_are_capped_and_expire() {
    let app = app_with(|c| {
        c.http.header_read_timeout = Duration::from_secs(2);
        c.http.max_connections_per_address = 20;
        c.http.max_connections = 500;
    })
    .await;
    let watch = HealthWatch::start(app.url("/healthz"));
    let started = Instant::now();
    let mut conns = Vec::new();
    for _ in 0..200 {
        conns.push(connect_from(ATTACKER, app.addr).await.unwrap());
    }
    let outcomes = futures_util::future::join_all(
        conns
            .into_iter()
            .map(|c| read_until_closed(c, Duration::from_secs(10))),
    )
    .await;
    let mut refused = 0;
    let mut expired = 0;
    for (text, closed) in outcomes {
        let closed = closed.expect("a connection was kept open for 10 s");
        if text.starts_with("HTTP/1.1 503") {
            assert!(text.contains("retry-after: 1"), "{text}");
            assert!(text.contains("too many connections"), "{text}");
            refused += 1;
        } else {
            // Held, sent nothing, and closed at the header timeout.
            let after = closed - started;
            assert!(
                after >= Duration::from_millis(1500) && after < Duration::from_secs(6),
                "an idle connection closed after {after:?}"
            );
            expired += 1;
        }
    }
    assert_eq!((expired, refused), (20, 180));
    let slowest = watch.finish().await;
    assert!(slowest < HEALTHY, "/healthz took {slowest:?}");
}

/// A body that stops arriving is answered by the request timeout in the door's own form: JSON
/// for REST and the credentialing door, a SOAP fault with 503 for SOAP 1.1 and 1.2 alike, an AR
/// acknowledgement for HL7 v3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_gets_503_in_each_doors_form() {
    let app = app_with(|c| c.http.request_timeout = Duration::from_secs(1)).await;
    let (id, secret) = app
        .create_client(hisp_gateway::domain::client::ClientKind::Ops)
        .await;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    for (path, content_type, expect) in [
        (
            "/api/v1/clients",
            "application/json",
            "\"code\":\"timeout\"",
        ),
        (
            hisp_gateway::soap::PATH,
            "text/xml; charset=utf-8",
            "soap:Server",
        ),
        (
            hisp_gateway::soap::PATH,
            "application/soap+xml",
            "soap:Receiver",
        ),
        (
            hisp_gateway::credentialing::PATH,
            "application/json",
            "\"code\":\"timeout\"",
        ),
        (
            hisp_gateway::hl7::PATH,
            "application/hl7-v3+xml",
            "typeCode=\"AR\"",
        ),
    ] {
        let mut s = connect_from(ATTACKER, app.addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: gw\r\nAuthorization: Basic {auth}\r\n\
             Content-Type: {content_type}\r\nContent-Length: 1000\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(b"<partial").await.unwrap();
        let started = Instant::now();
        let (text, _) = read_until_closed(s, Duration::from_secs(10)).await;
        assert!(
            text.starts_with("HTTP/1.1 503"),
            "{path} {content_type}: {text}"
        );
        assert!(text.contains(expect), "{path} {content_type}: {text}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
