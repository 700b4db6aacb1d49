//! The applicant's e-mails go through the outbox: a relay that is down gets the mail on a
//! later attempt, and a job that runs again after the mail went sends nothing more.

use std::time::Duration;

use hisp_gateway::domain::client::ClientKind;

use super::*;
use crate::messaging::World;

#[tokio::test]
async fn a_relay_that_is_down_gets_the_mail_on_a_retry_and_a_rerun_sends_nothing() {
    // A port nobody listens on yet: the first attempt is refused.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let relay = reserved.local_addr().unwrap();
    drop(reserved);
    let w = World::with(options(relay)).await;
    let ta = w.f.app.create_client(ClientKind::TrustedAgent).await;
    let r =
        w.f.app
            .http
            .put(w.url(&format!("/api/v1/trusted-agents/{}", ta.0)))
            .basic_auth(w.ops.0, Some(&w.ops.1))
            .json(&serde_json::json!({ "organizationDomain": DOMAIN_B }))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    let r = w.f.app.post_json_as(PATH, &ta, &patient("retried")).await;
    assert_eq!(r.status(), 201, "HTTP Basic works for TAs too");
    let id: serde_json::Value = r.json().await.unwrap();
    let id = id["id"].as_str().unwrap().to_owned();

    w.drain().await;
    let pool = &w.f.app.db.pool;
    let (state, attempts, error): (String, i32, Option<String>) = sqlx::query_as(
        "SELECT state, attempts, last_error FROM jobs WHERE kind = 'certificate_application.notify'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!((state.as_str(), attempts), ("queued", 1), "{error:?}");
    let error = error.unwrap_or_default();
    assert!(
        !error.contains("example.com"),
        "no applicant address in the job's error: {error}"
    );

    // The relay is up now; the retry (due 2 s later in the tests' schedule) delivers.
    let (sink, _) = crate::transport::SmtpSink::start_at(relay).await;
    w.f.app
        .worker
        .run_due_at(chrono::Utc::now() + Duration::from_secs(5))
        .await
        .unwrap();
    let mails = sink.captured();
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert!(String::from_utf8_lossy(&mails[0].data).contains(&id));

    // The same job again (a worker that died after the relay's 250 would run it again):
    // the step is marked sent, so nothing more goes.
    sqlx::query(
        "INSERT INTO jobs (kind, payload, max_attempts)
         SELECT kind, payload, max_attempts FROM jobs WHERE kind = 'certificate_application.notify'",
    )
    .execute(pool)
    .await
    .unwrap();
    w.drain().await;
    assert_eq!(sink.captured().len(), 1, "sent once");
    let states: Vec<String> = sqlx::query_scalar(
        "SELECT state FROM jobs WHERE kind = 'certificate_application.notify' ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(states, ["done", "done"]);

    // A relay that refuses the recipient for good: dead at once (visible to ops), and the
    // applicant's address, quoted in the relay's reply, is not kept in the job's error.
    sink.refuse.lock().unwrap().push((
        "gone@example.com".into(),
        "550 5.1.1 <gone@example.com> no such user".into(),
    ));
    let mut body = patient("refused");
    body["notificationEmail"] = serde_json::json!("gone@example.com");
    let r = w.f.app.post_json_as(PATH, &ta, &body).await;
    assert_eq!(r.status(), 201);
    w.drain().await;
    let (state, attempts, error): (String, i32, Option<String>) = sqlx::query_as(
        "SELECT state, attempts, last_error FROM jobs WHERE kind = 'certificate_application.notify'
         ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let error = error.unwrap_or_default();
    assert_eq!((state.as_str(), attempts), ("dead", 1), "{error}");
    assert!(error.contains("550"), "{error}");
    assert!(!error.contains("gone@"), "{error}");
    assert_eq!(sink.captured().len(), 1);
}

#[tokio::test]
async fn with_starttls_required_a_relay_without_it_gets_nothing() {
    let (sink, relay) = crate::transport::SmtpSink::start().await;
    let mut opts = options(relay);
    opts.config.notifications.smtp_relay.starttls = hisp_gateway::config::StartTls::Required;
    let w = World::with(opts).await;
    let ta = w.f.app.create_client(ClientKind::TrustedAgent).await;
    let r =
        w.f.app
            .http
            .put(w.url(&format!("/api/v1/trusted-agents/{}", ta.0)))
            .basic_auth(w.ops.0, Some(&w.ops.1))
            .json(&serde_json::json!({ "organizationDomain": DOMAIN_B }))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    let r = w.f.app.post_json_as(PATH, &ta, &patient("plain")).await;
    assert_eq!(r.status(), 201);
    w.drain().await;
    assert!(sink.captured().is_empty(), "nothing in plain text");
    let (state, error): (String, Option<String>) = sqlx::query_as(
        "SELECT state, last_error FROM jobs WHERE kind = 'certificate_application.notify'",
    )
    .fetch_one(&w.f.app.db.pool)
    .await
    .unwrap();
    assert_eq!(state, "queued", "retried later: {error:?}");
}
