//! Password guessing: throttled per address and client id, bounded in memory, never logged.

use std::time::Duration;

use hisp_gateway::domain::client::ClientKind;
use uuid::Uuid;

use super::{ATTACKER, BYSTANDER, HEALTHY, HealthWatch, client_from, gateway_on};
use crate::helpers::TestApp;
use crate::soap::{self, Fixture, Mode};

async fn whoami(
    http: &reqwest::Client,
    app: &TestApp,
    id: Uuid,
    secret: &str,
) -> reqwest::Response {
    http.get(app.url("/api/v1/whoami"))
        .basic_auth(id, Some(secret))
        .send()
        .await
        .unwrap()
}

fn retry_after(r: &reqwest::Response) -> u64 {
    r.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After header in seconds")
}

/// 400 wrong secrets in 5.7 s all got 401. Now five failures are free, the sixth blocks the
/// address, and later guesses get 429 with a Retry-After that doubles with each further
/// failure; the real client, from another address, is not locked out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secrets_are_throttled_per_address_and_the_real_client_still_works() {
    let app = TestApp::spawn().await;
    let (id, secret) = app.create_client(ClientKind::Vendor).await;
    let attacker = client_from(ATTACKER);
    let watch = HealthWatch::start(app.url("/healthz"));
    let mut codes = Vec::new();
    for i in 0..30 {
        let r = whoami(&attacker, &app, id, &format!("guess-{i}")).await;
        codes.push(r.status().as_u16());
        if r.status() == 429 {
            assert_eq!(retry_after(&r), 1);
            let v: serde_json::Value = r.json().await.unwrap();
            assert_eq!(v["error"]["code"], "too_many_requests");
        }
    }
    assert_eq!(&codes[..6], &[401; 6], "{codes:?}");
    assert!(codes[6..].iter().all(|c| *c == 429), "{codes:?}");
    // The right secret from elsewhere works while the attacker is blocked, on its first try
    // (nothing was remembered for it).
    let r = whoami(&client_from(BYSTANDER), &app, id, &secret).await;
    assert_eq!(r.status(), 200);
    // Once the block has passed, one more failure blocks for twice as long.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(whoami(&attacker, &app, id, "guess-31").await.status(), 401);
    let r = whoami(&attacker, &app, id, "guess-32").await;
    assert_eq!(r.status(), 429);
    assert_eq!(retry_after(&r), 2);
    // The token endpoint refuses the blocked address before checking anything, in the
    // gateway's error form.
    let r = attacker
        .post(app.url("/oauth2/token"))
        .basic_auth(id, Some("guess-token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(retry_after(&r) >= 1);
    // Bearer tokens are guesses too: another address presenting made-up tokens is blocked
    // after the same allowance.
    let token_guesser = client_from(std::net::Ipv4Addr::new(127, 0, 0, 3));
    let mut codes = Vec::new();
    for i in 0..8 {
        let r = token_guesser
            .get(app.url("/MessagingAPI/dirmsg/messages"))
            .bearer_auth(format!("made-up-token-{i}"))
            .send()
            .await
            .unwrap();
        codes.push(r.status().as_u16());
    }
    assert_eq!(codes, [401, 401, 401, 401, 401, 401, 429, 429]);
    // Counted where operators look.
    let metrics = app.get_text("/metrics").await;
    assert!(metrics.contains("gateway_auth_failures_total"), "{metrics}");
    assert!(
        metrics.contains("gateway_auth_throttled_total{scope=\"address\"}"),
        "{metrics}"
    );
    let slowest = watch.finish().await;
    assert!(slowest < HEALTHY, "/healthz took {slowest:?}");
}

/// 30 wrong SOAP Logins all got 011. Now those after the sixth failure say why, with the same
/// code.
#[tokio::test]
async fn wrong_soap_logins_are_throttled_with_code_011_and_a_reason() {
    let f = Fixture::new().await;
    let (id, _) = &f.reseller;
    let mut messages = Vec::new();
    for i in 0..8 {
        let r = soap::call(
            &f.app,
            Mode::Soap12,
            "Login",
            &format!("<username>{id}</username><password>guess-{i}</password>"),
        )
        .await;
        assert_eq!(r.code(), "011", "{}", r.raw);
        messages.push(r.error_message().to_owned());
    }
    assert!(
        messages[..6]
            .iter()
            .all(|m| m.starts_with("authentication failed")),
        "{messages:?}"
    );
    assert!(
        messages[6..]
            .iter()
            .all(|m| m.contains("too many failed authentications")),
        "{messages:?}"
    );
    // Unknown session ids are guesses too.
    let r = soap::call(
        &f.app,
        Mode::Soap12,
        "ListProvisionedOrganizations",
        "<sessionId>not-a-session</sessionId>",
    )
    .await;
    assert_eq!(r.code(), "011");
    assert!(r.error_message().contains("too many failed"), "{}", r.raw);
}

/// 300 concurrent wrong secrets took the gateway from 114 MiB to 5.7 GiB, and it stayed there.
/// Now argon2 runs one check per core in memory allocated once; the rest wait briefly, then
/// get 503 with Retry-After. The real binary, with the per-address throttle opened wide so
/// every guess reaches argon2, and 500 guesses at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guessing_storm_leaves_memory_bounded_and_secrets_unlogged() {
    let app = TestApp::spawn().await;
    let (id, _) = app.create_client(ClientKind::Vendor).await;
    let gw = gateway_on(
        &app,
        &[
            ("GW_SECURITY__FAILED_AUTH_PER_ADDRESS", "100000"),
            ("GW_SECURITY__FAILED_AUTH_PER_CLIENT", "100000"),
            ("GW_HTTP__MAX_CONNECTIONS_PER_ADDRESS", "1000"),
        ],
    )
    .await;
    let baseline = gw.peak_rss();
    let watch = HealthWatch::start(gw.url("/healthz"));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let secret = |i: usize| format!("storm-secret-{i:04}-{}", "x".repeat(20));
    let guesses = (0..500).map(|i| {
        // A few unknown client ids among them: those cost the same (a decoy hash).
        let who = if i % 10 == 0 { Uuid::new_v4() } else { id };
        http.get(gw.url("/api/v1/whoami"))
            .basic_auth(who, Some(secret(i)))
            .send()
    });
    let mut busy = 0;
    for r in futures_util::future::join_all(guesses).await {
        let r = r.unwrap();
        match r.status().as_u16() {
            401 => {}
            503 => {
                busy += 1;
                assert!(retry_after(&r) >= 1);
                let v: serde_json::Value = r.json().await.unwrap();
                assert_eq!(v["error"]["code"], "overloaded", "{v}");
            }
            other => panic!("unexpected {other}"),
        }
    }
    let grown = gw.peak_rss().saturating_sub(baseline);
    assert!(
        grown < 150 * 1024 * 1024,
        "peak RSS grew by {} MiB (from {} MiB)",
        grown / (1024 * 1024),
        baseline / (1024 * 1024)
    );
    let slowest = watch.finish().await;
    assert!(slowest < HEALTHY, "/healthz took {slowest:?}");
    let log = gw.stderr();
    assert!(log.contains("authentication failed"), "failures are logged");
    for i in 0..500 {
        assert!(
            !log.contains(&secret(i)),
            "a presented secret reached the log"
        );
    }
    eprintln!(
        "500 guesses: {busy} answered busy; peak RSS {} MiB (+{} MiB)",
        gw.peak_rss() / (1024 * 1024),
        grown / (1024 * 1024)
    );
}
