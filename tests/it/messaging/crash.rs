//! kill -9 in the middle of delivering: after a restart every accepted message reaches a
//! final status, none is lost and none is delivered twice.

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use super::*;
use crate::helpers::gateway_command;
use crate::helpers::process::{GatewayProcess, wait_ready};

const MESSAGES: usize = 500;
const WORKER_CONCURRENCY: usize = 8;

fn server(db_url: &str) -> Command {
    let mut cmd = gateway_command();
    cmd.env("DATABASE_URL", db_url)
        // A job of the killed process is taken over once its lease has run out.
        .env("GW_JOBS__LEASE", "3s")
        .env("GW_JOBS__CONCURRENCY", WORKER_CONCURRENCY.to_string())
        .env("GW_JOBS__POLL_INTERVAL", "200ms")
        .env("GW_MESSAGING__RATE_PER_SECOND", "100000")
        .env("GW_MESSAGING__RATE_BURST", "100000");
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_delivery_loses_and_duplicates_nothing() {
    let w = World::new().await;
    // A slow EHR, so that the kill lands while deliveries are in flight.
    w.inbox.delay(Duration::from_millis(15));
    let first = GatewayProcess::start(server(&w.f.app.db.url));
    wait_ready(&first.url("/readyz")).await;

    // 500 messages, each to one of B's two addresses, sent 16 at a time; all accepted.
    let http = reqwest::Client::new();
    let send_url = Arc::new(first.url(SEND));
    let body = Arc::new(message("template", BEN, false));
    let mut accepted = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..MESSAGES {
        if tasks.len() >= 16 {
            accepted.push(tasks.join_next().await.unwrap().unwrap());
        }
        let (http, url, vendor) = (http.clone(), send_url.clone(), w.vendor_a.clone());
        let mut b = (*body).clone();
        b["messageId"] = json!(format!("crash-{i}"));
        b["toDirectAddress"] = json!(if i % 2 == 0 { BEN } else { CY });
        tasks.spawn(async move {
            let r = http
                .post(url.as_str())
                .basic_auth(vendor.0, Some(&vendor.1))
                .json(&b)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            b["messageId"].as_str().unwrap().to_owned()
        });
    }
    while let Some(r) = tasks.join_next().await {
        accepted.push(r.unwrap());
    }
    assert_eq!(accepted.len(), MESSAGES);

    // Let some deliveries complete, then crash.
    w.inbox.wait_accepted(50, Duration::from_secs(120)).await;
    first.crash();
    let at_crash = w.inbox.accepted().len();
    assert!(
        at_crash < MESSAGES,
        "everything was delivered before the crash"
    );

    // A new process on the same database finishes the work.
    let second = GatewayProcess::start(server(&w.f.app.db.url));
    wait_ready(&second.url("/readyz")).await;
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM message_recipients WHERE status NOT IN ('DISPATCHED', 'FAILED', 'FAILED-TO')",
        )
        .fetch_one(&w.f.app.db.pool)
        .await
        .unwrap();
        let notifying: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM jobs WHERE kind LIKE 'messaging.%' AND kind <> 'messaging.timeout' AND state IN ('queued', 'running')",
        )
        .fetch_one(&w.f.app.db.pool)
        .await
        .unwrap();
        if waiting == 0 && notifying == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{waiting} recipients and {notifying} jobs still pending\n{}",
            second.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Every accepted message: DISPATCHED, none failed.
    let statuses: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.vendor_message_id, r.status FROM messages m JOIN message_recipients r ON r.message_id = m.id",
    )
    .fetch_all(&w.f.app.db.pool)
    .await
    .unwrap();
    assert_eq!(statuses.len(), MESSAGES);
    assert!(
        statuses.iter().all(|(_, s)| s == "DISPATCHED"),
        "{statuses:?}"
    );

    // The receiver's count: every message once. A push whose answer reached us just before
    // the kill is repeated with the same Idempotency-Key (an EHR drops the repeat), so it is
    // the same delivery; at most the pushes in flight at the kill can repeat.
    let pushes = w.inbox.accepted();
    let mut per_message: HashMap<String, Vec<String>> = HashMap::new();
    for p in &pushes {
        let id = p.json()["messageId"].as_str().unwrap().to_owned();
        per_message
            .entry(id)
            .or_default()
            .push(p.header("idempotency-key").to_owned());
    }
    assert_eq!(per_message.len(), MESSAGES, "every message reached the EHR");
    for (id, keys) in &per_message {
        assert!(
            keys.iter().all(|k| *k == keys[0]),
            "{id} pushed as different deliveries: {keys:?}"
        );
    }
    let repeats = pushes.len() - MESSAGES;
    assert!(
        repeats <= WORKER_CONCURRENCY,
        "{repeats} repeated pushes; at most {WORKER_CONCURRENCY} were in flight at the kill"
    );

    // Notifications: one processed and one dispatched per message (by webhook-id), signed.
    let mut notes: HashMap<(String, String), Vec<String>> = HashMap::new();
    for n in w.dsn.accepted() {
        assert_signed(&n, &w.signing_key);
        let v = n.json();
        notes
            .entry((
                v["Id"].as_str().unwrap().to_owned(),
                v["Description"].as_str().unwrap().to_owned(),
            ))
            .or_default()
            .push(n.header("webhook-id").to_owned());
    }
    for id in &accepted {
        for word in ["processed", "dispatched"] {
            let ids = notes
                .get(&(id.clone(), word.to_owned()))
                .unwrap_or_else(|| panic!("no {word} notification for {id}"));
            assert!(ids.iter().all(|i| *i == ids[0]), "{id} {word}: {ids:?}");
        }
    }
    assert_eq!(notes.len(), 2 * MESSAGES);
    eprintln!(
        "crash test: {at_crash} of {MESSAGES} delivered before the kill, {repeats} repeated pushes"
    );
    let (status, log) = second.terminate();
    assert!(status.success(), "{log}");
}
