//! Certificates over HTTP: public trust anchors and CRLs (`/pki/...`, what peers fetch through
//! the AIA and CRL URLs in our certificates), and the ops/officer certificate API.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use openssl::x509::X509;
use serde::Deserialize;

use super::JsonBody;
use crate::auth::Authenticated;
use crate::domain::client::{Client, ClientKind};
use crate::error::{AppError, AppResult};
use crate::http::request_id::RequestId;
use crate::service::Actor;
use crate::service::pki::CertificateRecord;
use crate::service::pki::{self, CertificateQuery, ISSUING, ROOT};
use crate::state::AppState;

const PKIX_CERT: &str = "application/pkix-cert";
const PKIX_CRL: &str = "application/pkix-crl";
const PEM: &str = "application/x-pem-file";

fn body(content_type: &'static str, bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, content_type)], Bytes::from(bytes)).into_response()
}

async fn authority(state: &AppState, role: &str) -> AppResult<X509> {
    pki::authority_certificate(&state.db, role)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("{role} CA")))
}

fn der(cert: &X509) -> AppResult<Vec<u8>> {
    Ok(cert.to_der().map_err(anyhow::Error::from)?)
}

fn pem(cert: &X509) -> AppResult<Vec<u8>> {
    Ok(cert.to_pem().map_err(anyhow::Error::from)?)
}

pub async fn root_der(State(s): State<AppState>) -> AppResult<Response> {
    Ok(body(PKIX_CERT, der(&authority(&s, ROOT).await?)?))
}
pub async fn root_pem(State(s): State<AppState>) -> AppResult<Response> {
    Ok(body(PEM, pem(&authority(&s, ROOT).await?)?))
}
pub async fn issuing_der(State(s): State<AppState>) -> AppResult<Response> {
    Ok(body(PKIX_CERT, der(&authority(&s, ISSUING).await?)?))
}
pub async fn issuing_pem(State(s): State<AppState>) -> AppResult<Response> {
    Ok(body(PEM, pem(&authority(&s, ISSUING).await?)?))
}

async fn crl(s: &AppState, role: &str) -> AppResult<Response> {
    let der = pki::latest_crl_der(&s.db, role)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("{role} CRL")))?;
    Ok(body(PKIX_CRL, der))
}
pub async fn root_crl(State(s): State<AppState>) -> AppResult<Response> {
    crl(&s, ROOT).await
}
pub async fn issuing_crl(State(s): State<AppState>) -> AppResult<Response> {
    crl(&s, ISSUING).await
}

/// Every trust anchor, PEM, for a peer's trust bundle.
pub async fn anchors(State(s): State<AppState>) -> AppResult<Response> {
    let mut out = Vec::new();
    for a in pki::trust_anchors(&s.db).await? {
        out.extend(pem(&a)?);
    }
    Ok(body(PEM, out))
}

fn require(client: &Client, kinds: &[ClientKind]) -> AppResult<()> {
    if kinds.contains(&client.kind) {
        Ok(())
    } else {
        let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        Err(AppError::Forbidden(format!(
            "only {} clients may do this",
            names.join(" or ")
        )))
    }
}

const OPS_OR_OFFICER: &[ClientKind] = &[ClientKind::Ops, ClientKind::Officer];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    organization: Option<String>,
    address: Option<String>,
}

pub async fn list_certificates(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    Query(q): Query<ListQuery>,
) -> AppResult<Json<Vec<CertificateRecord>>> {
    require(&caller, OPS_OR_OFFICER)?;
    let q = CertificateQuery {
        organization: q.organization.as_deref(),
        address: q.address.as_deref(),
    };
    Ok(Json(pki::list(&s.db, &q).await?))
}

pub async fn get_certificate(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(serial): Path<String>,
) -> AppResult<Json<CertificateRecord>> {
    require(&caller, OPS_OR_OFFICER)?;
    Ok(Json(pki::by_serial(&s.db, &serial).await?.0))
}

pub async fn certificate_pem(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(serial): Path<String>,
) -> AppResult<Response> {
    require(&caller, OPS_OR_OFFICER)?;
    Ok(body(PEM, pem(&pki::by_serial(&s.db, &serial).await?.1)?))
}

pub async fn certificate_der(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(serial): Path<String>,
) -> AppResult<Response> {
    require(&caller, OPS_OR_OFFICER)?;
    Ok(body(
        PKIX_CERT,
        der(&pki::by_serial(&s.db, &serial).await?.1)?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    reason: String,
}

pub async fn revoke_certificate(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    RequestId(request_id): RequestId,
    Path(serial): Path<String>,
    JsonBody(req): JsonBody<RevokeRequest>,
) -> AppResult<Json<CertificateRecord>> {
    require(&caller, OPS_OR_OFFICER)?;
    let actor = Actor::client(caller.id, request_id);
    let revoked = pki::revoke(&s.db, &s.pki, &serial, &req.reason, &actor, Utc::now()).await?;
    Ok(Json(revoked))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs12Request {
    password: String,
}

/// The private key leaves the gateway only here, only for ops, only encrypted, and audited.
pub async fn certificate_pkcs12(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    RequestId(request_id): RequestId,
    Path(serial): Path<String>,
    JsonBody(req): JsonBody<Pkcs12Request>,
) -> AppResult<Response> {
    require(&caller, &[ClientKind::Ops])?;
    let actor = Actor::client(caller.id, request_id);
    let p12 = pki::export_pkcs12(&s.db, &s.pki, &serial, &req.password, &actor).await?;
    Ok(body("application/x-pkcs12", p12))
}
