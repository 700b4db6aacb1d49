//! The REST front door (`/api/v1`) and the public PKI files (`/pki`). Messaging routes join it
//! in later issues.

mod accounts;
mod clients;
mod extract;
mod pki;

use axum::Router;
use axum::routing::{get, post};

use crate::app::AppState;

pub use extract::JsonBody;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/whoami", get(clients::whoami))
        .route(
            "/api/v1/clients",
            get(clients::list_clients).post(clients::create_client),
        )
        .route(
            "/api/v1/clients/{id}/disable",
            post(clients::disable_client),
        )
        .route("/api/v1/accounts/{reseller_id}", get(accounts::ledger))
        .route(
            "/api/v1/accounts/{reseller_id}/credits",
            post(accounts::credit),
        )
        .route(
            "/api/v1/accounts/{reseller_id}/hold",
            axum::routing::put(accounts::put_hold).delete(accounts::release_hold),
        )
        .route("/api/v1/certificates", get(pki::list_certificates))
        .route("/api/v1/certificates/{serial}", get(pki::get_certificate))
        .route(
            "/api/v1/certificates/{serial}/pem",
            get(pki::certificate_pem),
        )
        .route(
            "/api/v1/certificates/{serial}/der",
            get(pki::certificate_der),
        )
        .route(
            "/api/v1/certificates/{serial}/revoke",
            post(pki::revoke_certificate),
        )
        .route(
            "/api/v1/certificates/{serial}/pkcs12",
            post(pki::certificate_pkcs12),
        )
        .route("/pki/root.crt", get(pki::root_der))
        .route("/pki/root.pem", get(pki::root_pem))
        .route("/pki/issuing.crt", get(pki::issuing_der))
        .route("/pki/issuing.pem", get(pki::issuing_pem))
        .route("/pki/root.crl", get(pki::root_crl))
        .route("/pki/issuing.crl", get(pki::issuing_crl))
        .route("/pki/anchors.pem", get(pki::anchors))
}
