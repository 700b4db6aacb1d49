//! The MedAllies-style messaging door (`/MessagingAPI/dirmsg/…`, `/oauth2/token`) and the
//! routes that set messaging up: vendors' endpoints and signing secret, ops' grants, address
//! status and status reports.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::JsonBody;
use super::clients::require_ops;
use crate::auth::basic::parse_basic;
use crate::auth::{Authenticated, ClientAddr};
use crate::domain::Invalid;
use crate::domain::client::{Client, ClientKind};
use crate::error::{AppError, AppResult};
use crate::http::request_id::RequestId;
use crate::service::Actor;
use crate::service::messaging::admin::GrantRow;
use crate::service::messaging::admin::{self, EndpointRequest, EndpointView};
use crate::service::messaging::{self, ListQuery, Listing, RecipientStatus, SendReply, Sent};
use crate::service::reports::{self as reports, Period};
use crate::state::AppState;

pub const SEND_PATH: &str = "/MessagingAPI/dirmsg/send_ccda";

/// Extractor: a vendor client, by HTTP Basic or an OAuth2 Bearer token, within its rate.
pub struct Vendor(pub Client);

impl FromRequestParts<AppState> for Vendor {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let Ok(ClientAddr(from)) = ClientAddr::from_request_parts(parts, state).await;
        let client = authenticate_vendor(state, &parts.headers, from).await?;
        within_rate(state, &client)?;
        Ok(Vendor(client))
    }
}

/// The vendor client of a request, its credentials checked against the database. Failures
/// are throttled per address (and client id) like every authentication.
async fn authenticate_vendor(
    state: &AppState,
    headers: &HeaderMap,
    from: IpAddr,
) -> AppResult<Client> {
    let client = match bearer_token(headers) {
        Some(token) => {
            state.verifier.check_throttle(from)?;
            match admin::client_for_token(&state.db, &token, state.clock.now()).await {
                Err(AppError::Unauthorized) => {
                    state.verifier.failed(from, None);
                    return Err(AppError::Unauthorized);
                }
                other => other?,
            }
        }
        None => {
            let (id, secret) = parse_basic(headers).ok_or(AppError::Unauthorized)?;
            state.verifier.verify(&state.db, id, &secret, from).await?
        }
    };
    vendor_only(client)
}

fn bearer_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned())
}

fn vendor_only(client: Client) -> AppResult<Client> {
    if client.kind != ClientKind::Vendor {
        return Err(AppError::Forbidden(
            "only vendor clients may use the messaging API".into(),
        ));
    }
    Ok(client)
}

fn within_rate(state: &AppState, client: &Client) -> AppResult<()> {
    state
        .limiter
        .check(client.id)
        .map_err(|retry_after| AppError::TooManyRequests { retry_after })
}

/// `send_ccda`. A vendor whose Basic credentials were verified recently is not read from the
/// database first: the send's one statement confirms the client is still active with the same
/// secret, and writes nothing when it is not. Then (rare) the credentials are checked in full,
/// which answers 401 when they no longer hold, and the send runs again.
pub async fn send_ccda(
    State(state): State<AppState>,
    ClientAddr(from): ClientAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> AppResult<Json<SendReply>> {
    let recalled = match bearer_token(&headers) {
        Some(_) => None,
        None => parse_basic(&headers).and_then(|(id, secret)| state.verifier.recall(id, &secret)),
    };
    let (client, confirm) = match recalled {
        Some((client, phc)) => (vendor_only(client)?, Some(phc)),
        None => (authenticate_vendor(&state, &headers, from).await?, None),
    };
    within_rate(&state, &client)?;
    let recalled = confirm.is_some();
    let prepared = match send_body(&state, body) {
        Ok(body) => messaging::prepare(&state.messaging, body).await,
        Err(e) => Err(e),
    };
    let prepared = match prepared {
        Ok(p) => p,
        Err(e) => return Err(refuse(&state, &headers, from, recalled, e).await),
    };
    let sent = match messaging::send(
        &state.db,
        &state.messaging,
        client.id,
        confirm.as_deref(),
        &prepared,
        state.clock.now(),
    )
    .await
    {
        Ok(sent) => sent,
        Err(e @ AppError::BadRequest(_)) => {
            return Err(refuse(&state, &headers, from, recalled, e).await);
        }
        Err(e) => return Err(e),
    };
    match sent {
        Sent::Accepted(reply) => Ok(Json(reply)),
        Sent::Unconfirmed => {
            state.verifier.forget(client.id);
            let client = authenticate_vendor(&state, &headers, from).await?;
            match messaging::send(
                &state.db,
                &state.messaging,
                client.id,
                None,
                &prepared,
                state.clock.now(),
            )
            .await?
            {
                Sent::Accepted(reply) => Ok(Json(reply)),
                Sent::Unconfirmed => Err(AppError::Unauthorized),
            }
        }
    }
}

/// The answer to a request that is wrong in itself. A client that was not read from the
/// database in this request is checked first: only a client whose credentials hold learns what
/// is wrong with its request.
async fn refuse(
    state: &AppState,
    headers: &HeaderMap,
    from: IpAddr,
    recalled: bool,
    e: AppError,
) -> AppError {
    if recalled && let Err(auth) = authenticate_vendor(state, headers, from).await {
        return auth;
    }
    e
}

fn send_body(state: &AppState, body: Result<Bytes, BytesRejection>) -> AppResult<Bytes> {
    body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::PayloadTooLarge {
                limit: state.config.messaging.body_limit_bytes,
            }
        } else {
            AppError::Malformed(r.body_text())
        }
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusQuery {
    xd_msg_id: Option<String>,
    from_direct_address: Option<String>,
}

/// One recipient: the spec's object; several: an array of them.
pub async fn status(
    State(state): State<AppState>,
    Vendor(client): Vendor,
    Query(q): Query<StatusQuery>,
) -> AppResult<Response> {
    let required = |v: Option<String>, field: &'static str| {
        v.filter(|s| !s.trim().is_empty())
            .ok_or_else(|| AppError::BadRequest(Invalid::new(field, "is required")))
    };
    let id = required(q.xd_msg_id, "xdMsgId")?;
    let from = required(q.from_direct_address, "fromDirectAddress")?;
    let mut rows: Vec<RecipientStatus> =
        messaging::status(&state.db, client.id, id.trim(), from.trim()).await?;
    Ok(if rows.len() == 1 {
        Json(rows.remove(0)).into_response()
    } else {
        Json(rows).into_response()
    })
}

#[derive(Deserialize)]
pub struct ListParams {
    from: Option<String>,
    until: Option<String>,
    status: Option<String>,
    sender: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// A date (`2026-11-21`, midnight UTC) or an RFC 3339 instant.
fn parse_instant(field: &'static str, s: &str) -> AppResult<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
        .map_err(|_| AppError::BadRequest(Invalid::new(field, "must be YYYY-MM-DD or RFC 3339")))
}

pub async fn list_messages(
    State(state): State<AppState>,
    Vendor(client): Vendor,
    Query(p): Query<ListParams>,
) -> AppResult<Json<Listing>> {
    let from = p
        .from
        .as_deref()
        .map(|s| parse_instant("from", s))
        .transpose()?;
    let until = p
        .until
        .as_deref()
        .map(|s| parse_instant("until", s))
        .transpose()?;
    let q = ListQuery {
        from,
        until,
        status: p.status.as_deref(),
        sender: p.sender.as_deref(),
        limit: p.limit.unwrap_or(100),
        offset: p.offset.unwrap_or(0),
    };
    Ok(Json(messaging::list(&state.db, client.id, &q).await?))
}

// ---- OAuth2 ----------------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// RFC 6749 errors: `{"error": …, "error_description": …}`.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut resp = (
        status,
        Json(serde_json::json!({ "error": error, "error_description": description })),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Basic realm=\"hisp-gateway\""),
        );
    }
    resp
}

/// Client credentials in the Basic header (preferred by RFC 6749) or in the form.
fn credentials(headers: &HeaderMap, form: &TokenForm) -> Option<(Uuid, String)> {
    parse_basic(headers).or_else(|| {
        let id = Uuid::parse_str(form.client_id.as_deref()?.trim()).ok()?;
        Some((id, form.client_secret.clone()?))
    })
}

pub async fn token(
    State(state): State<AppState>,
    ClientAddr(from): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        );
    }
    let Ok(form) = serde_urlencoded::from_bytes::<TokenForm>(&body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unreadable form",
        );
    };
    if form.grant_type.as_deref() != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only grant_type=client_credentials is supported",
        );
    }
    let Some((id, secret)) = credentials(&headers, &form) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client credentials are missing",
        );
    };
    let client = match state.verifier.verify(&state.db, id, &secret, from).await {
        Ok(c) => c,
        Err(AppError::Unauthorized) => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "unknown client or wrong secret",
            );
        }
        Err(e) => return e.into_response(),
    };
    if client.kind != ClientKind::Vendor {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "only vendor clients may use the messaging API",
        );
    }
    match admin::issue_token(&state.db, &state.messaging, &client, state.clock.now()).await {
        Ok(t) => {
            let mut resp = Json(t).into_response();
            resp.headers_mut().insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            resp
        }
        Err(e) => e.into_response(),
    }
}

// ---- vendor set-up ---------------------------------------------------------------------------

pub async fn put_endpoint(
    State(state): State<AppState>,
    Vendor(client): Vendor,
    RequestId(request_id): RequestId,
    Path(address): Path<String>,
    JsonBody(req): JsonBody<EndpointRequest>,
) -> AppResult<Json<EndpointView>> {
    let actor = Actor::client(client.id, request_id);
    Ok(Json(
        admin::put_endpoint(
            &state.db,
            &state.messaging,
            client.id,
            &address,
            req,
            &actor,
        )
        .await?,
    ))
}

pub async fn get_endpoint(
    State(state): State<AppState>,
    Vendor(client): Vendor,
    Path(address): Path<String>,
) -> AppResult<Json<EndpointView>> {
    Ok(Json(
        admin::get_endpoint(&state.db, &state.messaging, client.id, &address).await?,
    ))
}

#[derive(serde::Serialize)]
pub struct SigningSecret {
    secret: String,
}

pub async fn signing_secret(
    State(state): State<AppState>,
    Vendor(client): Vendor,
    RequestId(request_id): RequestId,
) -> AppResult<Json<SigningSecret>> {
    let actor = Actor::client(client.id, request_id);
    let secret =
        admin::signing_secret(&state.db, &state.messaging, client.id, false, &actor).await?;
    Ok(Json(SigningSecret { secret }))
}

pub async fn rotate_signing_secret(
    State(state): State<AppState>,
    Vendor(client): Vendor,
    RequestId(request_id): RequestId,
) -> AppResult<Json<SigningSecret>> {
    let actor = Actor::client(client.id, request_id);
    let secret =
        admin::signing_secret(&state.db, &state.messaging, client.id, true, &actor).await?;
    Ok(Json(SigningSecret { secret }))
}

// ---- ops -------------------------------------------------------------------------------------

/// camelCase like every REST body; `client_id` is read too, as the grant's answer spelled
/// it before.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantRequest {
    #[serde(alias = "client_id")]
    client_id: Uuid,
    domain: String,
}

pub async fn create_grant(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    RequestId(request_id): RequestId,
    JsonBody(req): JsonBody<GrantRequest>,
) -> AppResult<(StatusCode, Json<GrantRow>)> {
    require_ops(&caller)?;
    let actor = Actor::client(caller.id, request_id);
    let g = admin::grant(
        &state.db,
        &state.messaging,
        req.client_id,
        &req.domain,
        &actor,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(g)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantsQuery {
    client_id: Option<Uuid>,
}

pub async fn list_grants(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Query(q): Query<GrantsQuery>,
) -> AppResult<Json<Vec<GrantRow>>> {
    require_ops(&caller)?;
    Ok(Json(admin::grants(&state.db, q.client_id).await?))
}

pub async fn delete_grant(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    RequestId(request_id): RequestId,
    Path((client_id, domain)): Path<(Uuid, String)>,
) -> AppResult<StatusCode> {
    require_ops(&caller)?;
    let actor = Actor::client(caller.id, request_id);
    admin::revoke(&state.db, client_id, &domain, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressStatusRequest {
    status: String,
}

pub async fn put_address_status(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    RequestId(request_id): RequestId,
    Path(address): Path<String>,
    JsonBody(req): JsonBody<AddressStatusRequest>,
) -> AppResult<StatusCode> {
    require_ops(&caller)?;
    let enabled = match req.status.as_str() {
        messaging::ADDRESS_ACTIVE => true,
        messaging::ADDRESS_DISABLED => false,
        _ => {
            return Err(AppError::Invalid(Invalid::new(
                "status",
                "must be active or disabled",
            )));
        }
    };
    let actor = Actor::client(caller.id, request_id);
    admin::set_address_enabled(&state.db, &address, enabled, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportQuery {
    period: Option<String>,
    date: Option<String>,
    format: Option<String>,
    domain: Option<String>,
    reseller_id: Option<Uuid>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ReportRow {
    from: String,
    to: String,
    message_id: String,
    message_size: i64,
    status: &'static str,
    sent_time: String,
    xdr_message_id: Option<String>,
    xdr_source_id: Option<String>,
    xdr_unique_id: Option<String>,
    xdr_patient_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_reason: Option<String>,
    /// The cause behind the code, for operators only (this report is theirs).
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_detail: Option<String>,
}

/// The message status report of a day, week or month: the rows the SOAP report operations
/// return, as CSV (the same columns) or JSON.
pub async fn message_report(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Query(q): Query<ReportQuery>,
) -> AppResult<Response> {
    require_ops(&caller)?;
    let period = match q.period.as_deref().unwrap_or("daily") {
        "daily" => Period::Daily,
        "weekly" => Period::Weekly,
        "monthly" => Period::Monthly,
        _ => {
            return Err(AppError::BadRequest(Invalid::new(
                "period",
                "must be daily, weekly or monthly",
            )));
        }
    };
    let day = match q.date.as_deref() {
        None => state.clock.now().date_naive(),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| AppError::BadRequest(Invalid::new("date", "must be YYYY-MM-DD")))?,
    };
    let rows =
        reports::status_rows(&state.db, period, day, q.reseller_id, q.domain.as_deref()).await?;
    match q.format.as_deref().unwrap_or("json") {
        "csv" => Ok((
            [(CONTENT_TYPE, "text/csv; charset=utf-8")],
            reports::to_csv(&rows),
        )
            .into_response()),
        "json" => {
            let rows: Vec<ReportRow> = rows
                .into_iter()
                .map(|r| ReportRow {
                    status: reports::status_word(&r.status, r.failure_origin.as_deref()),
                    sent_time: reports::sent_time(r.sent_at),
                    from: r.from_address,
                    to: r.recipient,
                    message_id: r.smtp_message_id,
                    message_size: r.size_bytes,
                    xdr_message_id: r.xdr_message_id,
                    xdr_source_id: r.xdr_source_id,
                    xdr_unique_id: r.xdr_unique_id,
                    xdr_patient_id: r.xdr_patient_id,
                    failure_reason: r.failure_reason,
                    failure_detail: r.failure_detail,
                })
                .collect();
            Ok(Json(rows).into_response())
        }
        _ => Err(AppError::BadRequest(Invalid::new(
            "format",
            "must be csv or json",
        ))),
    }
}
