//! SIGTERM while a request is still arriving: it completes, then the process exits 0.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::Engine;
use hisp_gateway::domain::client::ClientKind;

use crate::helpers::process::{GatewayProcess, wait_ready};
use crate::helpers::{TestApp, gateway_command};

#[tokio::test]
async fn sigterm_during_a_slow_request_lets_it_finish_and_exits_0() {
    let app = TestApp::spawn().await;
    let (id, secret) = app.create_client(ClientKind::Ops).await;
    let mut cmd = gateway_command();
    cmd.env("DATABASE_URL", &app.db.url);
    let gw = GatewayProcess::start(cmd);
    wait_ready(&gw.url("/readyz")).await;

    let body = br#"{"kind": "vendor", "name": "Slow Uploader"}"#;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let head = format!(
        "POST /api/v1/clients HTTP/1.1\r\nHost: gw\r\nAuthorization: Basic {auth}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let addr = gw.addr;
    let (half, rest) = body.split_at(10);
    let mut conn = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(half).unwrap();
        s
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;

    gw.signal_term();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let response = tokio::task::spawn_blocking(move || {
        conn.write_all(rest).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut buf = Vec::new();
        let _ = conn.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    assert!(response.contains("Slow Uploader"), "{response}");

    let (status, log) = gw.wait(Duration::from_secs(30));
    assert!(status.success(), "exit {status}: {log}");
    let created: i64 =
        sqlx::query_scalar("SELECT count(*) FROM api_clients WHERE name = 'Slow Uploader'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(created, 1);
}
