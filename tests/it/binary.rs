//! The built binary with no DATABASE_URL: its own PostgreSQL, kept across restarts.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::helpers::gateway_command;
use crate::helpers::process::{GatewayProcess, wait_ready};

pub fn embedded(data_dir: &Path) -> std::process::Command {
    let mut cmd = gateway_command();
    cmd.env("GW_DATABASE__EMBEDDED__DATA_DIR", data_dir)
        // Exercise the generated key of the embedded mode.
        .env_remove("GW_SECURITY__IDENTITY_HASH_KEY")
        .env_remove("GW_CA__KEY_ENCRYPTION_KEY");
    cmd
}

/// (id, secret) of the ops client from the first-start banner.
pub fn ops_credentials(banner: &str) -> (String, String) {
    credentials(banner, "ops")
}

/// (id, secret) of the demo client of `kind` ("reseller", "vendor", …) from the banner.
pub fn credentials(banner: &str, kind: &str) -> (String, String) {
    let line = banner
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{kind} ")))
        .unwrap_or_else(|| panic!("{banner}"));
    let id = line
        .split("id=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let secret = line.split("secret=").nth(1).unwrap().trim().to_owned();
    (id, secret)
}

/// Stops a cluster a failed test left running in `data`, so failures leave no orphans.
pub struct StopClusterOnDrop(pub std::path::PathBuf);

impl Drop for StopClusterOnDrop {
    fn drop(&mut self) {
        let pid = fs::read_to_string(self.0.join("postmaster.pid"))
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<i32>().ok()));
        if let Some(pid) = pid {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGINT,
            );
        }
    }
}

async fn whoami(p: &GatewayProcess, id: &str, secret: &str) -> reqwest::StatusCode {
    reqwest::Client::new()
        .get(p.url("/api/v1/whoami"))
        .basic_auth(id, Some(secret))
        .send()
        .await
        .unwrap()
        .status()
}

/// The settings of the running cluster of `data_dir`, each as SHOW prints it.
async fn settings_of(data_dir: &Path) -> std::collections::HashMap<String, String> {
    use sqlx::Connection;
    let options =
        hisp_gateway::store::embedded::EmbeddedPostgres::connect_options_at(data_dir, "postgres");
    let mut conn = sqlx::PgConnection::connect_with(&options).await.unwrap();
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT name, current_setting(name) FROM pg_settings")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    conn.close().await.unwrap();
    rows.into_iter().collect()
}

#[tokio::test]
async fn without_database_url_it_runs_its_own_postgres_and_keeps_the_data() {
    let dir = tempfile::Builder::new()
        .prefix("gw-embedded-")
        .tempdir()
        .unwrap();
    // When the tests run as root the database runs as the postgres user, who must reach it.
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("var/postgres");
    let _cleanup = StopClusterOnDrop(data.clone());

    // First start: initdb, migrate, seed the demo data and say how to try it.
    let first = GatewayProcess::start(embedded(&data));
    wait_ready(&first.url("/readyz")).await;
    let banner = first.stdout();
    assert!(banner.contains("Demo data seeded"), "{banner}");
    assert!(banner.contains("curl -u"), "{banner}");
    let (id, secret) = ops_credentials(&banner);
    assert_eq!(whoami(&first, &id, &secret).await, 200);
    let traced = reqwest::Client::new()
        .get(first.url("/healthz"))
        .header("x-request-id", "trace-embedded-42")
        .send()
        .await
        .unwrap();
    assert_eq!(traced.headers()["x-request-id"], "trace-embedded-42");
    let (status, log) = first.terminate();
    assert!(status.success(), "{status}: {log}");
    let access = log
        .lines()
        .find(|l| l.contains("trace-embedded-42"))
        .unwrap_or_else(|| panic!("{log}"));
    let access: serde_json::Value = serde_json::from_str(access).unwrap();
    assert_eq!(access["span"]["route"], "/healthz", "{access}");
    assert_eq!(access["status"], 200, "{access}");
    assert!(log.contains("embedded PostgreSQL stopped"), "{log}");
    assert!(
        !data.join("postmaster.pid").exists(),
        "the cluster was stopped"
    );
    assert!(!log.contains(&secret), "secrets never reach the log");

    // Second start: same data, no second seeding, the demo client still works.
    let second = GatewayProcess::start(embedded(&data));
    wait_ready(&second.url("/readyz")).await;
    assert_eq!(whoami(&second, &id, &secret).await, 200);
    assert!(!second.stdout().contains("Demo data seeded"));
    // The cluster runs with the gateway's settings for writing pages out steadily.
    let settings = settings_of(&data).await;
    for (name, value) in [
        ("shared_buffers", "128MB"),
        ("bgwriter_delay", "10ms"),
        ("bgwriter_lru_maxpages", "1000"),
        ("bgwriter_flush_after", "256kB"),
        ("backend_flush_after", "256kB"),
        ("autovacuum_vacuum_cost_delay", "10ms"),
        ("fsync", "on"),
        ("synchronous_commit", "on"),
    ] {
        assert_eq!(
            settings.get(name).map(String::as_str),
            Some(value),
            "{name}"
        );
    }
    // The gateway crashes; its database (own process group) keeps running, orphaned.
    second.crash();
    assert!(data.join("postmaster.pid").exists());

    // The next server adopts the orphan, and stops it when it exits.
    let adopter = GatewayProcess::start(embedded(&data));
    wait_ready(&adopter.url("/readyz")).await;
    assert_eq!(whoami(&adopter, &id, &secret).await, 200);
    let (status, log) = adopter.terminate();
    assert!(status.success(), "{log}");
    assert!(
        log.contains("adopting the running embedded PostgreSQL"),
        "{log}"
    );
    assert!(
        !data.join("postmaster.pid").exists(),
        "the adopted cluster was stopped: {log}"
    );

    // A crash left a postmaster.pid naming a live process that is not postgres (this test).
    let stale = format!("{}\n{}\n", std::process::id(), data.display());
    fs::write(data.join("postmaster.pid"), stale).unwrap();
    let third = GatewayProcess::start(embedded(&data));
    wait_ready(&third.url("/readyz")).await;
    assert_eq!(whoami(&third, &id, &secret).await, 200);
    let (status, log) = third.terminate();
    assert!(status.success(), "{log}");
    assert!(log.contains("removed a stale lock file"), "{log}");
}

#[tokio::test]
async fn an_unusable_bin_dir_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = gateway_command()
        .env("GW_DATABASE__EMBEDDED__DATA_DIR", dir.path().join("pg"))
        .env("GW_DATABASE__EMBEDDED__BIN_DIR", dir.path())
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("lacks initdb"), "{err}");
}

#[tokio::test]
async fn a_normal_user_runs_it_too() {
    use std::os::unix::process::CommandExt;
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!(
            "skipped: the tests already run as a normal user, which the other embedded test covers"
        );
        return;
    }
    // Run as a user that is not root; the postgres user exists wherever the server binaries do.
    let user = nix::unistd::User::from_name("postgres")
        .unwrap()
        .expect("a postgres OS user");
    let bin = env!("CARGO_BIN_EXE_hisp-gateway");
    let reachable = std::process::Command::new("test")
        .args(["-x", bin])
        .uid(user.uid.as_raw())
        .status()
        .unwrap();
    if !reachable.success() {
        eprintln!(
            "skipped: {bin} is not reachable by the postgres user (a parent folder is private)"
        );
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("gw-user-")
        .tempdir()
        .unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(dir.path(), Some(user.uid.as_raw()), Some(user.gid.as_raw())).unwrap();
    let data = dir.path().join("pg");
    let _cleanup = StopClusterOnDrop(data.clone());
    let mut cmd = embedded(&data);
    cmd.uid(user.uid.as_raw())
        .gid(user.gid.as_raw())
        .current_dir(dir.path());

    let gw = GatewayProcess::start(cmd);
    wait_ready(&gw.url("/readyz")).await;
    let (id, secret) = ops_credentials(&gw.stdout());
    assert_eq!(whoami(&gw, &id, &secret).await, 200);
    let (status, log) = gw.terminate();
    assert!(status.success(), "{log}");
    assert!(!data.join("postmaster.pid").exists());
}
