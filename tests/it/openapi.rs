//! The OpenAPI document: its snapshot, that what it documents is really routed, and its UI.

use std::path::PathBuf;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::TestApp;

const SPEC: &str = "/api-docs/openapi.json";

fn snapshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/openapi.json")
}

async fn fetch_document(app: &TestApp) -> Value {
    let r = app.http.get(app.url(SPEC)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    r.json().await.unwrap()
}

#[tokio::test]
async fn the_document_matches_its_snapshot() {
    let app = TestApp::spawn().await;
    let doc = fetch_document(&app).await;
    let version = doc["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3.1"), "openapi is {version:?}");

    let actual = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    let path = snapshot_path();
    if std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if actual != expected {
        let line = actual
            .lines()
            .zip(expected.lines())
            .position(|(a, e)| a != e)
            .map_or_else(
                || actual.lines().count().min(expected.lines().count()) + 1,
                |i| i + 1,
            );
        panic!(
            "the OpenAPI document differs from {} (first difference at line {line}).\n\
             If the change is intended, regenerate the snapshot with\n    \
             UPDATE_SNAPSHOTS=1 cargo test --test it openapi::the_document_matches_its_snapshot\n\
             and review the diff of the snapshot before committing it.",
            path.display()
        );
    }
}

#[tokio::test]
async fn the_document_is_deterministic() {
    // Built twice from scratch, it serializes the same, and it is what the server serves.
    let once = serde_json::to_string(&hisp_gateway::rest::openapi::document()).unwrap();
    let again = serde_json::to_string(&hisp_gateway::rest::openapi::document()).unwrap();
    assert_eq!(once, again);
    let app = TestApp::spawn().await;
    let served = app.http.get(app.url(SPEC)).send().await.unwrap();
    assert_eq!(served.text().await.unwrap(), once);
}

/// The path with each `{param}` replaced by its documented example, or a placeholder.
fn sample_path(template: &str, operation: &Value) -> String {
    let mut path = template.to_owned();
    while let Some(start) = path.find('{') {
        let end = start + path[start..].find('}').expect("a closed {param}");
        let name = &path[start + 1..end];
        let example = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["in"] == "path" && p["name"] == name)
            .and_then(|p| p["example"].as_str().or(p["schema"]["example"].as_str()))
            .unwrap_or("sample")
            .to_owned();
        path.replace_range(start..=end, &example);
    }
    path
}

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = TestApp::spawn().await;
    let doc = fetch_document(&app).await;
    let paths = doc["paths"].as_object().expect("paths");
    let mut checked = 0;
    let mut unrouted = Vec::new();
    for (template, item) in paths {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let path = sample_path(template, operation);
            let m = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            // No credentials and no body: 400, 401, 403, 415 or 422 all prove a handler ran.
            let r = app.http.request(m, app.url(&path)).send().await.unwrap();
            let status = r.status();
            checked += 1;
            if status == 405 {
                unrouted.push(format!("{method} {path}: 405"));
            } else if status == 404 {
                // A handler's 404 names the missing thing; the router's fallback names "route".
                let body: Value = r.json().await.unwrap_or(Value::Null);
                let fallback = body["error"]["code"] == "not_found"
                    && body["error"]["message"] == "route not found";
                if fallback {
                    unrouted.push(format!("{method} {path}: 404 (no such route)"));
                }
            }
        }
    }
    assert!(checked >= 40, "only {checked} operations documented");
    assert!(
        unrouted.is_empty(),
        "documented but not routed:\n{}",
        unrouted.join("\n")
    );
}

#[tokio::test]
async fn the_swagger_ui_is_served() {
    let app = TestApp::spawn().await;
    for page in ["/docs", "/docs/"] {
        let r = app.http.get(app.url(page)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{page}");
        let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(
            content_type.starts_with("text/html"),
            "{page}: {content_type}"
        );
        let html = r.text().await.unwrap();
        assert!(html.contains(SPEC), "{page} does not name {SPEC}:\n{html}");
        assert!(html.contains("/docs/swagger-ui-bundle.js"), "{html}");
    }
    // Its assets are compiled in.
    for (asset, kind) in [
        ("/docs/swagger-ui-bundle.js", "javascript"),
        ("/docs/swagger-ui.css", "text/css"),
    ] {
        let r = app.http.get(app.url(asset)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{asset}");
        let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.contains(kind), "{asset}: {content_type}");
        assert!(!r.bytes().await.unwrap().is_empty(), "{asset}");
    }
    let r = app
        .http
        .get(app.url("/docs/no-such-file.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
