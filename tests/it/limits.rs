use hisp_gateway::domain::client::ClientKind;
use serde_json::Value;

use crate::helpers::{TestApp, TestOptions, count, test_config};

async fn small_limit_app() -> TestApp {
    let mut config = test_config();
    config.http.body_limit_bytes = 1024;
    TestApp::spawn_with(TestOptions {
        config,
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn an_announced_body_over_the_limit_gets_413_and_writes_nothing() {
    let app = small_limit_app().await;
    let ops = app.create_client(ClientKind::Ops).await;
    let before = count(&app.db.pool, "api_clients").await;
    let body = serde_json::json!({"kind": "vendor", "name": "x".repeat(2000)});
    let r = app.post_json_as("/api/v1/clients", &ops, &body).await;
    assert_eq!(r.status(), 413);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"]["code"], "payload_too_large");
    assert!(err["error"]["message"].as_str().unwrap().contains("1024"));
    assert_eq!(count(&app.db.pool, "api_clients").await, before);
}

#[tokio::test]
async fn a_streamed_body_over_the_limit_gets_413_and_writes_nothing() {
    let app = small_limit_app().await;
    let (id, secret) = app.create_client(ClientKind::Ops).await;
    let before = count(&app.db.pool, "api_clients").await;
    let json = serde_json::json!({"kind": "vendor", "name": "y".repeat(3000)}).to_string();
    // No Content-Length: the limit must be enforced while the body streams in.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = json
        .into_bytes()
        .chunks(256)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let r = app
        .http
        .post(app.url("/api/v1/clients"))
        .basic_auth(id, Some(&secret))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_stream(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "payload_too_large"
    );
    assert_eq!(count(&app.db.pool, "api_clients").await, before);
}

fn futures_stream<T: Send + 'static>(
    items: Vec<T>,
) -> impl futures_core::Stream<Item = T> + Send + 'static {
    tokio_stream::iter(items)
}

#[tokio::test]
async fn malformed_json_is_a_400_with_a_reason() {
    let app = TestApp::spawn().await;
    let (id, secret) = app.create_client(ClientKind::Ops).await;
    let r = app
        .http
        .post(app.url("/api/v1/clients"))
        .basic_auth(id, Some(&secret))
        .header("content-type", "application/json")
        .body("{\"kind\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"]["code"], "malformed");
}

#[tokio::test]
async fn a_request_over_the_time_limit_gets_503_timeout() {
    let mut config = test_config();
    // A client's first request pays a full argon2id verification (about 20 ms even optimized).
    config.http.request_timeout = std::time::Duration::from_millis(5);
    let app = TestApp::spawn_with(TestOptions {
        config,
        ..Default::default()
    })
    .await;
    let (id, secret) = app.create_client(ClientKind::Vendor).await;
    let r = app
        .http
        .get(app.url("/api/v1/whoami"))
        .basic_auth(id, Some(&secret))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"]["code"], "timeout");
    // Fast routes are unaffected.
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}
