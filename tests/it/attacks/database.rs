//! The database going away under a running gateway: 503 with Retry-After (never 500) while it
//! is gone, and service again once it is back, by itself.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use hisp_gateway::domain::client::ClientKind;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::binary::{StopClusterOnDrop, embedded, ops_credentials};
use crate::helpers::TestOptions;
use crate::helpers::process::{GatewayProcess, tail, wait_ready};

/// The first line of `postmaster.pid`, if the file is there and holds one yet.
fn postmaster_pid(data: &Path) -> Option<i32> {
    fs::read_to_string(data.join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// The last lines of the cluster's own log, for failure messages.
fn server_log_tail(data: &Path) -> String {
    tail(
        &fs::read_to_string(data.join("server.log")).unwrap_or_default(),
        8,
    )
}

/// The child of `parent` whose process title holds `title` ("checkpointer").
fn child_titled(parent: i32, title: &str) -> Option<i32> {
    fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
        let stat = fs::read_to_string(entry.path().join("stat")).ok()?;
        // "PID (NAME) STATE PPID ...": the name may hold spaces.
        let ppid: i32 = stat
            .rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        let cmdline = fs::read_to_string(entry.path().join("cmdline")).ok()?;
        (ppid == parent && cmdline.contains(title)).then_some(pid)
    })
}

/// A process kept stopped (SIGSTOP) until released; released on drop too, so a failing test
/// leaves no stopped process behind.
struct Stopped(Option<i32>);

impl Stopped {
    fn hold(pid: i32) -> Self {
        kill(Pid::from_raw(pid), Signal::SIGSTOP).unwrap();
        Self(Some(pid))
    }

    fn release(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGCONT);
        }
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        self.release();
    }
}

/// After SIGKILL of the embedded postmaster the gateway stayed up, never became ready again,
/// and the request in flight got 500. Now it starts the cluster again (crash recovery), retries
/// while PostgreSQL refuses, says 503 with Retry-After meanwhile, and serves again.
///
/// CI shows only the start of a failure, so every message leads with the facts (what was
/// answered, when after the kill) and ends with a short tail of the gateway's log.
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

    let killed = postmaster_pid(&data).expect("postmaster.pid of the first cluster");
    // A process of the dead cluster that lingers (a backend stuck on I/O) keeps its shared
    // memory attached, and PostgreSQL refuses to start until it is gone. A stopped checkpointer
    // holds the outage open until the answers during it have been seen: a restart quick enough
    // to fall within one request's wait for a connection (`acquire_timeout`) shows none, and
    // the test passed or failed by the machine's speed.
    let checkpointer = child_titled(killed, "checkpointer").expect("the cluster's checkpointer");
    let mut lingering = Stopped::hold(checkpointer);
    kill(Pid::from_raw(killed), Signal::SIGKILL).unwrap();
    let killed_at = Instant::now();
    let ms = || killed_at.elapsed().as_millis();
    // (ms after the kill, /readyz, whoami, the write)
    let mut answers: Vec<(u128, u16, u16, u16)> = Vec::new();
    let last = |a: &[(u128, u16, u16, u16)]| format!("{:?}", &a[a.len().saturating_sub(8)..]);
    let (mut ready_503, mut whoami_503, mut released_at) = (false, false, None);
    loop {
        assert!(
            killed_at.elapsed() < Duration::from_secs(90),
            "not serving 90 s after the kill (checkpointer released at {released_at:?} ms); \
             last (ms, readyz, whoami, write): {}\ngateway: {}\npostgres: {}",
            last(&answers),
            gw.stderr_tail(12),
            server_log_tail(&data)
        );
        let failed = |what: &str, e: reqwest::Error| -> ! {
            panic!(
                "{what} at {} ms after the kill: {e}\ngateway: {}",
                ms(),
                gw.stderr_tail(12)
            )
        };
        let ready = match http.get(gw.url("/readyz")).send().await {
            Ok(r) => r.status().as_u16(),
            Err(e) => failed("/readyz", e),
        };
        let r = whoami().await.unwrap_or_else(|e| failed("whoami", e));
        let status = r.status().as_u16();
        if status == 503 {
            let retry = r.headers().get("retry-after").cloned();
            let body = r
                .text()
                .await
                .unwrap_or_else(|e| failed("whoami's body", e));
            let code = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
            assert!(
                code.as_deref() == Some("unavailable") && retry.is_some(),
                "whoami 503 at {} ms with code {code:?}, Retry-After {retry:?} (want \
                 unavailable + Retry-After): {body}\ngateway: {}",
                ms(),
                gw.stderr_tail(12)
            );
        }
        let write = http
            .post(gw.url("/api/v1/clients"))
            .basic_auth(&id, Some(&secret))
            .json(&serde_json::json!({"kind": "vendor", "name": "During the outage"}))
            .send()
            .await
            .unwrap_or_else(|e| failed("the write", e))
            .status()
            .as_u16();
        answers.push((ms(), ready, status, write));
        if [status, write].contains(&500) {
            let log = gw.stderr();
            let internal: Vec<&str> = log
                .lines()
                .filter(|l| l.contains("internal error"))
                .collect();
            panic!(
                "a 500 at {} ms after the kill (whoami {status}, write {write}): {}\n\
                 last (ms, readyz, whoami, write): {}\ngateway: {}",
                ms(),
                tail(&internal.join("\n"), 3),
                last(&answers),
                gw.stderr_tail(8)
            );
        }
        ready_503 |= ready == 503;
        whoami_503 |= status == 503;
        if released_at.is_none() {
            // Both probes said 503 and the supervisor met PostgreSQL's refusal: let it succeed.
            if ready_503
                && whoami_503
                && gw
                    .stderr()
                    .contains("starting the embedded PostgreSQL failed")
            {
                lingering.release();
                released_at = Some(ms());
            }
        } else if ready == 200 && status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let now = postmaster_pid(&data);
    assert!(
        now.is_some_and(|p| p != killed),
        "postmaster.pid names {now:?} after recovery, the killed one was {killed}\n\
         gateway: {}",
        gw.stderr_tail(12)
    );
    // The supervisor says "running again" when `pg_ctl start -w` returns, which can be a moment
    // after the server's first answers.
    let said_by = Instant::now() + Duration::from_secs(30);
    let mut log = gw.stderr();
    while !log.contains("running again") && Instant::now() < said_by {
        tokio::time::sleep(Duration::from_millis(100)).await;
        log = gw.stderr();
    }
    for said in ["starting it again", "running again"] {
        assert!(
            log.contains(said),
            "the gateway never said {said:?}\ngateway: {}",
            tail(&log, 12)
        );
    }
    // It still stops the cluster it restarted when it exits.
    let (status, log) = gw.terminate();
    assert!(
        status.success(),
        "the gateway exited with {status} after the restart\ngateway: {}\npostgres: {}",
        tail(&log, 12),
        server_log_tail(&data)
    );
    assert!(
        !data.join("postmaster.pid").exists(),
        "postmaster.pid ({:?}) left after the gateway exited\ngateway: {}\npostgres: {}",
        postmaster_pid(&data),
        tail(&log, 12),
        server_log_tail(&data)
    );
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
    // With a timeout it waits until each backend has exited; without, it only signals them, and
    // a backend that had not yet acted on the signal could still answer the next request.
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity \
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
    let (status, retry) = (first.status(), first.headers().get("retry-after").cloned());
    let body = first.text().await.unwrap();
    assert!(
        status == 503 && retry.is_some(),
        "the request meeting ended connections got {status}, Retry-After {retry:?}: {body}"
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "unavailable", "{body}");
    let mut answers = Vec::new();
    for _ in 0..10 {
        let r = whoami().await.unwrap();
        answers.push(r.status().as_u16());
        if r.status() == 200 {
            return;
        }
        assert_eq!(r.status(), 503, "answers after the first: {answers:?}");
    }
    panic!("the pool did not recover: answers after the first {answers:?}");
}
