//! The database going away under a running gateway: 503 with Retry-After (never 500) while it
//! is gone, and service again once it is back, by itself.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use hisp_gateway::domain::client::ClientKind;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::binary::{StopClusterOnDrop, embedded, ops_credentials};
use crate::helpers::TestOptions;
use crate::helpers::process::{GatewayProcess, wait_ready};

fn postmaster_pid(data: &std::path::Path) -> i32 {
    fs::read_to_string(data.join("postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// After SIGKILL of the embedded postmaster the gateway stayed up, never became ready again,
/// and the request in flight got 500. Now it starts the cluster again (crash recovery), says
/// 503 with Retry-After meanwhile, and serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_embedded_postgres_is_restarted_and_requests_meanwhile_get_503() {
    let dir = tempfile::Builder::new()
        .prefix("gw-killed-pg-")
        .tempdir()
        .unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("var/postgres");
    let _cleanup = StopClusterOnDrop(data.clone());
    let gw = GatewayProcess::start(embedded(&data));
    wait_ready(&gw.url("/readyz")).await;
    let (id, secret) = ops_credentials(&gw.stdout());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let whoami = || {
        http.get(gw.url("/api/v1/whoami"))
            .basic_auth(&id, Some(&secret))
            .send()
    };
    assert_eq!(whoami().await.unwrap().status(), 200);

    let killed = postmaster_pid(&data);
    kill(Pid::from_raw(killed), Signal::SIGKILL).unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    // The outage may be short (the supervisor looks every second and recovery is quick), so
    // either probe answering 503 shows it was seen.
    let (mut saw_outage, mut answers) = (false, Vec::new());
    loop {
        assert!(
            Instant::now() < deadline,
            "never ready again: {answers:?}\n{}",
            gw.stderr()
        );
        let ready = http.get(gw.url("/readyz")).send().await.unwrap().status();
        let r = whoami().await.unwrap();
        let status = r.status().as_u16();
        saw_outage |= ready == 503 || status == 503;
        if status == 503 {
            let retry = r.headers().get("retry-after").cloned();
            let v: serde_json::Value = r.json().await.unwrap();
            assert_eq!(v["error"]["code"], "unavailable", "{v}");
            assert!(retry.is_some(), "503 without Retry-After");
        }
        let write = http
            .post(gw.url("/api/v1/clients"))
            .basic_auth(&id, Some(&secret))
            .json(&serde_json::json!({"kind": "vendor", "name": "During the outage"}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        answers.push((ready.as_u16(), status, write));
        assert!(
            ![status, write].contains(&500),
            "a 500 while the database was away: {answers:?}"
        );
        if saw_outage && ready == 200 && status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(postmaster_pid(&data) != killed, "a new postmaster runs");
    let log = gw.stderr();
    assert!(log.contains("starting it again"), "{log}");
    assert!(log.contains("running again"), "{log}");
    // It still stops the cluster it restarted when it exits.
    let (status, log) = gw.terminate();
    assert!(status.success(), "{log}");
    assert!(!data.join("postmaster.pid").exists(), "{log}");
}

/// With an external database: the server ends every connection (a restart, a failover). The
/// request that meets a dead connection gets 503 with Retry-After, not 500, and the pool
/// replaces the connections by itself.
#[tokio::test]
async fn connections_ended_by_the_server_give_503_then_recover() {
    let app = crate::helpers::TestApp::spawn_with(TestOptions {
        db_proxy: true,
        ..Default::default()
    })
    .await;
    let ops = app.create_client(ClientKind::Ops).await;
    let whoami = || {
        app.http
            .get(app.url("/api/v1/whoami"))
            .basic_auth(ops.0, Some(&ops.1))
            .send()
    };
    assert_eq!(whoami().await.unwrap().status(), 200);
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert!(
        ended.iter().any(|e| *e),
        "no connection of the gateway was ended"
    );
    let first = whoami().await.unwrap();
    assert_eq!(first.status(), 503);
    assert!(first.headers().contains_key("retry-after"));
    let v: serde_json::Value = first.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unavailable");
    for _ in 0..10 {
        let r = whoami().await.unwrap();
        if r.status() == 200 {
            return;
        }
        assert_eq!(r.status(), 503);
    }
    panic!("the pool did not recover");
}
