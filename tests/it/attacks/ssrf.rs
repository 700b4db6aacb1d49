//! Vendors' URLs that point at the gateway's own network: refused when registered, and
//! refused again at every connection.
//!
//! The world's receivers listen on 127.0.0.1, which the tests' configuration allows on purpose
//! (`webhooks.allow_private`). A second replica on the same database runs with the default
//! policy, which allows nothing private: it plays the production gateway.

use serde_json::{Value, json};

use super::{HEALTHY, HealthWatch};
use crate::helpers::{TestApp, TestDb, TestOptions, test_config};
use crate::messaging::{BEN, World, message};

async fn default_policy_replica(w: &World) -> TestApp {
    let mut config = test_config();
    config.webhooks.allow_private = Vec::new();
    let db = TestDb {
        name: w.f.app.db.name.clone(),
        url: w.f.app.db.url.clone(),
        pool: w.f.app.db.second_pool().await,
    };
    TestApp::spawn_on(
        db,
        TestOptions {
            config,
            ..Default::default()
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_a_local_or_private_url_is_refused_with_the_field_named() {
    let w = World::new().await;
    let prod = default_policy_replica(&w).await;
    let before: Value = w
        .get_as(&w.vendor_b, &format!("/api/v1/messaging/endpoints/{BEN}"))
        .await
        .json()
        .await
        .unwrap();
    let watch = HealthWatch::start(prod.url("/healthz"));
    // The gateway's own admin routes, spelled every way a URL may spell loopback, and the
    // cloud metadata service.
    let admin = format!("{}/api/v1/clients", prod.addr.port());
    for (field, url) in [
        ("inboundUrl", format!("http://127.0.0.1:{admin}")),
        ("inboundUrl", format!("http://[::1]:{admin}")),
        ("dsnUrl", format!("http://0.0.0.0:{admin}")),
        ("dsnUrl", format!("http://2130706433:{admin}")),
        ("inboundUrl", format!("http://0x7f.1:{admin}")),
        ("inboundUrl", format!("http://[::ffff:127.0.0.1]:{admin}")),
        (
            "dsnUrl",
            "http://169.254.169.254/latest/meta-data/".to_owned(),
        ),
        ("inboundUrl", "http://10.1.2.3/inbound".to_owned()),
        ("inboundUrl", "http://100.64.0.9/inbound".to_owned()),
        ("dsnUrl", "http://[fd00::1]/dsn".to_owned()),
        ("inboundUrl", format!("http://localhost:{admin}")),
    ] {
        let r = prod
            .http
            .put(prod.url(&format!("/api/v1/messaging/endpoints/{BEN}")))
            .basic_auth(w.vendor_b.0, Some(&w.vendor_b.1))
            .json(&json!({ field: url }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{url}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["field"], field, "{url}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("outbound pushes may not reach"),
            "{url}: {v}"
        );
    }
    // Nothing of any refused registration was written.
    let after: Value = w
        .get_as(&w.vendor_b, &format!("/api/v1/messaging/endpoints/{BEN}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(before, after);
    let slowest = watch.finish().await;
    assert!(slowest < HEALTHY, "/healthz took {slowest:?}");
}

/// URLs already stored (registered when allowed, or when a name resolved elsewhere) are
/// checked again on the address each push connects to: the default-policy replica delivers
/// nothing to loopback, neither to an address nor to a name that resolves there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_to_loopback_are_refused_at_connect_time() {
    let w = World::new().await;
    let prod = default_policy_replica(&w).await;
    // B's endpoint for cy: a name (not an address) that resolves to 127.0.0.1.
    let by_name = format!("http://localhost:{}/inbound", w.inbox.addr.port());
    sqlx::query(
        "UPDATE address_endpoints SET inbound_url = $1 \
         WHERE address_id = (SELECT id FROM direct_addresses WHERE username = 'cy')",
    )
    .bind(&by_name)
    .execute(&w.f.app.db.pool)
    .await
    .unwrap();
    let to_both = message("ssrf-1", &format!("{BEN},{}", crate::messaging::CY), false);
    w.send_ok(&to_both).await;
    prod.worker.run_until_idle().await.unwrap();

    assert!(w.inbox.received().is_empty(), "the inbound push went out");
    assert!(w.dsn.received().is_empty(), "a notification went out");
    let errors: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT kind, last_error FROM jobs WHERE kind LIKE 'messaging.%' AND attempts > 0",
    )
    .fetch_all(&prod.db.pool)
    .await
    .unwrap();
    assert!(!errors.is_empty());
    for (kind, error) in &errors {
        let error = error.as_deref().unwrap_or_default();
        assert!(
            error.contains("127.0.0.1") && error.contains("loopback"),
            "{kind}: {error}"
        );
    }
    // The same jobs, run by the replica that allows 127.0.0.1, do reach the receivers: the
    // refusal was the policy, not the network.
    sqlx::query(
        "UPDATE jobs SET run_at = now() \
         WHERE state = 'queued' AND kind IN ('messaging.deliver', 'messaging.notify')",
    )
    .execute(&w.f.app.db.pool)
    .await
    .unwrap();
    w.drain().await;
    let jobs: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT kind, state, last_error FROM jobs ORDER BY id")
            .fetch_all(&w.f.app.db.pool)
            .await
            .unwrap();
    assert_eq!(w.inbox.accepted().len(), 2, "{jobs:?}");
    assert!(
        w.notifications("ssrf-1")
            .iter()
            .any(|n| n["Recipient"] == BEN)
    );
}
