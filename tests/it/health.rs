use hisp_gateway::jobs::{self, JobError, JobRegistry};

use crate::helpers::{TestApp, TestOptions};

#[tokio::test]
async fn healthz_and_readyz_answer_and_echo_request_ids() {
    let app = TestApp::spawn().await;
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let generated = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");

    let r = app
        .http
        .get(app.url("/readyz"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "trace-me-42");
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["status"],
        "ready"
    );
}

#[tokio::test]
async fn readyz_is_503_when_migrations_are_missing() {
    let app = TestApp::spawn().await;
    sqlx::query("DELETE FROM _sqlx_migrations")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["reason"],
        "migrations pending"
    );
}

#[tokio::test]
async fn metrics_show_request_counters_and_job_gauges() {
    let mut registry = JobRegistry::new();
    registry.register("test.broken", |_| async {
        Err(JobError::Permanent("no".into()))
    });
    let app = TestApp::spawn_with(TestOptions {
        registry,
        ..Default::default()
    })
    .await;

    // A route template nobody else's test uses, so the counter is ours alone.
    for _ in 0..3 {
        app.http
            .get(app.url("/api/v1/clients/abc/disable"))
            .send()
            .await
            .unwrap();
    }
    let mut conn = app.db.pool.acquire().await.unwrap();
    for kind in ["test.broken", "test.broken", "test.later"] {
        jobs::enqueue(&mut conn, &app.state.retry, kind, serde_json::json!({}))
            .await
            .unwrap();
    }
    drop(conn);
    // test.later has no handler and is dead too; keep one queued by enqueuing after the run.
    app.worker.run_until_idle().await.unwrap();
    let mut conn = app.db.pool.acquire().await.unwrap();
    jobs::enqueue(
        &mut conn,
        &app.state.retry,
        "test.broken",
        serde_json::json!({}),
    )
    .await
    .unwrap();
    drop(conn);

    let text = app.get_text("/metrics").await;
    assert!(
        text.contains(r#"gateway_http_requests_total{route="/api/v1/clients/{id}/disable",method="GET",status="405"} 3"#),
        "{text}"
    );
    assert!(
        text.contains("gateway_http_request_duration_seconds_bucket{"),
        "{text}"
    );
    assert!(text.contains(r#"gateway_jobs{state="dead"} 3"#), "{text}");
    assert!(text.contains(r#"gateway_jobs{state="queued"} 1"#), "{text}");
    assert!(text.contains(r#"gateway_jobs{state="done"} 0"#), "{text}");
    assert!(
        text.contains("gateway_db_pool_max_connections 10"),
        "{text}"
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = TestApp::spawn().await;
    let r = app
        .http
        .get(app.url("/no/such/thing"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"]["code"],
        "not_found"
    );
    let r = app.http.delete(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"]["code"],
        "method_not_allowed"
    );
}

#[tokio::test]
async fn the_audit_log_refuses_changes() {
    let app = TestApp::spawn().await;
    app.create_client(hisp_gateway::domain::client::ClientKind::Vendor)
        .await;
    let err = sqlx::query("UPDATE audit_log SET actor = 'someone else'")
        .execute(&app.db.pool)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    let err = sqlx::query("DELETE FROM audit_log")
        .execute(&app.db.pool)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}
