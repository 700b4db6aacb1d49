//! Every JSON answer the suite gets from an in-process gateway, checked against the OpenAPI
//! document for its route, method and status: an answer with a field, a status or a shape the
//! document does not describe fails the test that received it (at `TestApp`'s drop).
//!
//! The document is a hand-written mirror of the wire types (the send request is read field by
//! field from JSON, to name the first bad field as the spec does, so it has no type to derive a
//! schema from). This check is what keeps the mirror honest: the document's object schemas are
//! closed here (`unevaluatedProperties: false`), so a field added to an answer without the
//! document fails, as does an undocumented status.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Map, Value, json};

/// What went wrong, one line per answer.
pub type Violations = Arc<Mutex<Vec<String>>>;

/// The document with its object schemas closed.
fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(hisp_gateway::rest::openapi::document()).unwrap();
        let in_all_of = all_of_members(&doc);
        if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
            for (name, schema) in schemas.iter_mut() {
                if !in_all_of.contains(name) {
                    close(schema);
                }
            }
        }
        for path in doc["paths"].as_object_mut().unwrap().values_mut() {
            close_inline(path);
        }
        doc
    })
}

/// Names of schemas used as `allOf` members: closing them would refuse the properties the
/// other members add. The schemas that compose them are closed instead.
fn all_of_members(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::Array(members)) = m.get("allOf") {
                    for member in members {
                        if let Some(r) = member.get("$ref").and_then(Value::as_str) {
                            out.push(r.rsplit('/').next().unwrap().to_owned());
                        }
                    }
                }
                m.values().for_each(|x| walk(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(doc, &mut out);
    out
}

/// Closes an object schema and the object schemas nested in it (not through `$ref`).
fn close(schema: &mut Value) {
    let Value::Object(m) = schema else { return };
    let is_object = m.contains_key("properties") || m.contains_key("allOf");
    if is_object && !m.contains_key("additionalProperties") {
        m.insert("unevaluatedProperties".into(), Value::Bool(false));
    }
    for key in ["properties"] {
        if let Some(Value::Object(props)) = m.get_mut(key) {
            props.values_mut().for_each(close);
        }
    }
    if let Some(items) = m.get_mut("items") {
        close(items);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(a)) = m.get_mut(key) {
            a.iter_mut().for_each(close);
        }
    }
}

/// Closes the schemas written inline in the paths' responses.
fn close_inline(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(schema) = m.get_mut("schema") {
                close(schema);
            }
            m.values_mut().for_each(close_inline);
        }
        Value::Array(a) => a.iter_mut().for_each(close_inline),
        _ => {}
    }
}

/// The document's path template for a request path: literal segments must match, `{x}` takes
/// any one; the template with the most literal segments wins.
fn template_for(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').collect();
    document()["paths"]
        .as_object()?
        .keys()
        .filter_map(|t| {
            let ts: Vec<&str> = t.split('/').collect();
            if ts.len() != segments.len() {
                return None;
            }
            let mut literal = 0;
            for (a, b) in ts.iter().zip(&segments) {
                if a.starts_with('{') && a.ends_with('}') {
                    continue;
                }
                if a != b {
                    return None;
                }
                literal += 1;
            }
            Some((literal, t.clone()))
        })
        .max()
        .map(|(_, t)| t)
}

/// The schema of the JSON answer documented for (path template, method, status), or why
/// there is none.
fn schema_for(template: &str, method: &str, status: u16) -> Result<Option<Value>, String> {
    let doc = document();
    let Some(op) = doc["paths"][template].get(method.to_ascii_lowercase()) else {
        // A method the path does not have: the framework's 405, not an answer of ours.
        return Ok(None);
    };
    let responses = &op["responses"];
    let response = responses
        .get(status.to_string())
        .or_else(|| responses.get(format!("{}XX", status / 100)))
        .or_else(|| responses.get("default"))
        .ok_or_else(|| format!("status {status} is not documented"))?;
    let response = match response.get("$ref").and_then(Value::as_str) {
        Some(r) => &doc["components"]["responses"][r.rsplit('/').next().unwrap()],
        None => response,
    };
    let content = response["content"]
        .as_object()
        .ok_or_else(|| format!("status {status} is documented without a JSON body"))?;
    let schema = content
        .iter()
        .find(|(media, _)| media.starts_with("application/json"))
        .map(|(_, c)| c["schema"].clone())
        .ok_or_else(|| format!("status {status} is documented without a JSON body"))?;
    // JSON documented without a schema (the document itself): any JSON is right.
    Ok((!schema.is_null()).then_some(schema))
}

/// The validator of a documented answer, compiled once per (route, method, status).
fn validator(key: String, schema: &Value) -> Result<Arc<jsonschema::Validator>, String> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(v) = cache.lock().unwrap().get(&key) {
        return Ok(v.clone());
    }
    let compiled = Arc::new(compile(schema)?);
    cache.lock().unwrap().insert(key, compiled.clone());
    Ok(compiled)
}

fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    let mut root = match schema {
        Value::Object(m) => m.clone(),
        other => {
            let mut m = Map::new();
            m.insert("allOf".into(), json!([other]));
            m
        }
    };
    root.insert("components".into(), document()["components"].clone());
    jsonschema::draft202012::new(&Value::Object(root)).map_err(|e| format!("bad schema: {e}"))
}

/// Checks one answer; `Err` describes the disagreement.
pub fn check(method: &str, path: &str, status: u16, body: &[u8]) -> Result<(), String> {
    let Some(template) = template_for(path) else {
        return Ok(());
    };
    let Some(schema) = schema_for(&template, method, status)? else {
        return Ok(());
    };
    validate(format!("{method} {template} {status}"), &schema, body)
}

/// `body` against `schema` (compiled once under `key`); the first few disagreements.
fn validate(key: String, schema: &Value, body: &[u8]) -> Result<(), String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let validator = validator(key, schema)?;
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .take(5)
        .map(|e| format!("at {:?}: {e}", e.instance_path().as_str()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Checks a JSON body the gateway pushed to a vendor against the document's webhook of that
/// name (`inboundMessage`, `deliveryStatusNotification`).
pub fn check_webhook(name: &str, body: &[u8]) -> Result<(), String> {
    let schema = document()["webhooks"][name]["post"]["requestBody"]["content"]["application/json"]
        ["schema"]
        .clone();
    if schema.is_null() {
        return Err(format!("no webhook {name} is documented"));
    }
    validate(format!("webhook {name}"), &schema, body)
}

/// Wraps the gateway's router so that every JSON answer is checked; disagreements go to
/// `violations`.
pub fn layer(violations: Violations) -> hisp_gateway::app::OuterLayer {
    Box::new(move |router: Router| {
        router.layer(axum::middleware::from_fn(
            move |req: Request, next: Next| {
                let violations = violations.clone();
                async move {
                    let method = req.method().as_str().to_owned();
                    let path = req.uri().path().to_owned();
                    let resp = next.run(req).await;
                    let is_json = resp
                        .headers()
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.starts_with("application/json"));
                    if !is_json {
                        return resp;
                    }
                    let status = resp.status().as_u16();
                    let (parts, body) = resp.into_parts();
                    let bytes = to_bytes(body, usize::MAX).await.unwrap_or_default();
                    if let Err(why) = check(&method, &path, status, &bytes) {
                        let excerpt: String =
                            String::from_utf8_lossy(&bytes).chars().take(300).collect();
                        violations.lock().unwrap().push(format!(
                            "{method} {path} -> {status}: {why}\n    body: {excerpt}"
                        ));
                    }
                    Response::from_parts(parts, Body::from(bytes))
                }
            },
        ))
    })
}

#[test]
fn the_check_refuses_an_undocumented_field_and_status() {
    let ok = br#"{"error": {"code": "not_found", "message": "x"}}"#;
    assert_eq!(check("GET", "/api/v1/certificates/abc", 404, ok), Ok(()));
    let extra = br#"{"error": {"code": "not_found", "message": "x", "secret": 1}}"#;
    assert!(check("GET", "/api/v1/certificates/abc", 404, extra).is_err());
    assert!(check("GET", "/api/v1/certificates/abc", 418, ok).is_err());
    // Paths the document does not describe are not ours to judge.
    assert_eq!(check("GET", "/no/such/path", 404, ok), Ok(()));
}
