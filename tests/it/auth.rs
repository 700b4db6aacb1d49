use hisp_gateway::domain::client::ClientKind;
use serde_json::Value;

use crate::helpers::{TestApp, count, field, stderr, stdout};

#[tokio::test]
async fn a_cli_created_client_authenticates_and_loses_access_when_disabled() {
    let app = TestApp::spawn().await;
    let out = app.cli(&["client", "create", "--kind", "vendor", "--name", "Acme EHR"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let (id, secret) = (field(&text, "id"), field(&text, "secret"));

    let r = app
        .http
        .get(app.url("/api/v1/whoami"))
        .basic_auth(&id, Some(&secret))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(
        (me["id"].as_str(), me["kind"].as_str(), me["name"].as_str()),
        (Some(&*id), Some("vendor"), Some("Acme EHR"))
    );
    assert_eq!(me["status"], "active");
    assert!(me.get("secret").is_none() && me.get("secret_hash").is_none());

    let r = app
        .http
        .get(app.url("/api/v1/whoami"))
        .basic_auth(&id, Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Basic realm=\"hisp-gateway\""
    );
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "unauthorized"
    );

    let listed = app.cli(&["client", "list"]);
    assert!(
        stdout(&listed)
            .lines()
            .any(|l| l.contains(&id) && l.contains("vendor") && l.contains("active"))
    );

    let out = app.cli(&["client", "disable", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The verification of this secret was cached a moment ago; disabling must still win.
    let r = app
        .http
        .get(app.url("/api/v1/whoami"))
        .basic_auth(&id, Some(&secret))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "unauthorized"
    );

    let stored: String =
        sqlx::query_scalar("SELECT secret_hash FROM api_clients WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert!(stored.starts_with("$argon2id$") && !stored.contains(&secret));
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE object_id = $1 ORDER BY id")
            .bind(&id)
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(actions, ["client.create", "client.disable"]);
}

#[tokio::test]
async fn missing_malformed_and_unknown_credentials_get_401() {
    let app = TestApp::spawn().await;
    let url = app.url("/api/v1/whoami");
    let r = app.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .http
        .get(&url)
        .header("authorization", "Basic !!!")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .http
        .get(&url)
        .basic_auth(uuid::Uuid::new_v4(), Some("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "unauthorized"
    );
}

#[tokio::test]
async fn only_ops_clients_manage_clients_and_bad_fields_are_named() {
    let app = TestApp::spawn().await;
    let (vid, vsec) = app.create_client(ClientKind::Vendor).await;
    let ops = app.create_client(ClientKind::Ops).await;
    let url = app.url("/api/v1/clients");

    let r = app
        .http
        .get(&url)
        .basic_auth(vid, Some(&vsec))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let before = count(&app.db.pool, "api_clients").await;
    let r = app
        .post_json_as(
            "/api/v1/clients",
            &ops,
            &serde_json::json!({"kind": "wizard", "name": "x"}),
        )
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["field"], "kind");
    assert_eq!(
        count(&app.db.pool, "api_clients").await,
        before,
        "nothing written"
    );

    let r = app
        .post_json_as(
            "/api/v1/clients",
            &ops,
            &serde_json::json!({"kind": "reseller", "name": "North Reseller"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let (id, secret) = (
        created["id"].as_str().unwrap(),
        created["secret"].as_str().unwrap(),
    );
    let r = app
        .http
        .get(app.url("/api/v1/whoami"))
        .basic_auth(id, Some(secret))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["kind"], "reseller");
}
