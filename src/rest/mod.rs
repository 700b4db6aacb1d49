//! The REST front doors: `/api/v1` (ops, resellers, vendors' set-up), the MedAllies-style
//! messaging API (`/MessagingAPI`, `/oauth2/token`) and the public PKI files (`/pki`).

mod accounts;
mod admission;
mod certificate_applications;
mod clients;
mod credentialing;
mod errors;
mod extract;
pub mod mailbox;
pub mod messaging;
pub mod openapi;
mod pki;
mod registry;
mod transport;
mod trust;

use axum::Router;
use axum::routing::{get, post};

use crate::http::door::DoorLimits;
use crate::state::AppState;

pub use extract::JsonBody;

/// The REST routes with their limits: send_ccda carries whole documents and has its own body
/// limit and admission, the mailbox listing may wait for mail; every error is JSON.
pub fn router(state: &AppState) -> Router<AppState> {
    let limits = |body_bytes| DoorLimits {
        body_bytes,
        timeout: state.config.http.request_timeout,
        render: errors::render,
    };
    let admit = axum::middleware::from_fn_with_state(state.clone(), admission::admit_sends);
    let send = Router::new().route(
        messaging::SEND_PATH,
        post(messaging::send_ccda).route_layer(admit),
    );
    let send = limits(state.config.messaging.body_limit_bytes).apply(send);
    // A listing may wait for mail up to its own limit, on top of the usual time to answer.
    let inbox = DoorLimits {
        body_bytes: state.config.http.body_limit_bytes,
        timeout: state.config.http.request_timeout + crate::service::messaging::mailbox::MAX_WAIT,
        render: errors::render,
    }
    .apply(Router::new().route(mailbox::INBOX_PATH, get(mailbox::list)));
    limits(state.config.http.body_limit_bytes)
        .apply(routes())
        .merge(send)
        .merge(inbox)
        .layer(axum::middleware::from_fn(crate::error::json_errors))
}

fn routes() -> Router<AppState> {
    Router::new()
        .route("/MessagingAPI/dirmsg/status", get(messaging::status))
        .route(
            "/MessagingAPI/dirmsg/messages",
            get(messaging::list_messages),
        )
        .route("/MessagingAPI/dirmsg/inbox/{id}", get(mailbox::fetch))
        .route(
            "/MessagingAPI/dirmsg/inbox/{id}/acknowledge",
            post(mailbox::acknowledge),
        )
        .route("/MessagingAPI/dirmsg/receipt", post(mailbox::receipt))
        .route("/oauth2/token", post(messaging::token))
        .route(
            "/api/v1/messaging/endpoints/{address}",
            get(messaging::get_endpoint).put(messaging::put_endpoint),
        )
        .route(
            "/api/v1/messaging/signing-secret",
            get(messaging::signing_secret),
        )
        .route(
            "/api/v1/messaging/signing-secret/rotate",
            post(messaging::rotate_signing_secret),
        )
        .route(
            "/api/v1/messaging/grants",
            get(messaging::list_grants).post(messaging::create_grant),
        )
        .route(
            "/api/v1/messaging/grants/{client_id}/{domain}",
            axum::routing::delete(messaging::delete_grant),
        )
        .route(
            "/api/v1/addresses/{address}/status",
            axum::routing::put(messaging::put_address_status),
        )
        .route("/api/v1/reports/messages", get(messaging::message_report))
        .route("/api/v1/transport/inbound", get(transport::list_inbound))
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
        .route(
            "/api/v1/trust/anchors",
            get(trust::list_anchors).post(trust::add_anchors),
        )
        .route(
            "/api/v1/trust/anchors/{id}",
            axum::routing::delete(trust::remove_anchor),
        )
        .route(
            "/api/v1/trust/peer-certificates",
            get(trust::list_peers).post(trust::add_peers),
        )
        .route(
            "/api/v1/trust/peer-certificates/{id}",
            axum::routing::delete(trust::remove_peer),
        )
        .route(
            "/api/v1/trust/bundles",
            get(trust::list_bundles).post(trust::add_bundle),
        )
        .route(
            "/api/v1/trust/bundles/{id}",
            axum::routing::delete(trust::remove_bundle),
        )
        .route(
            "/api/v1/trust/bundles/{id}/refresh",
            post(trust::refresh_bundle),
        )
        .route(
            "/api/v1/certificate-applications",
            get(certificate_applications::list).post(certificate_applications::submit),
        )
        .route(
            "/api/v1/certificate-applications/{id}",
            get(certificate_applications::get),
        )
        .route(
            "/api/v1/certificate-applications/{id}/approve",
            post(certificate_applications::approve),
        )
        .route(
            "/api/v1/certificate-applications/{id}/reject",
            post(certificate_applications::reject),
        )
        .route(
            "/api/v1/trusted-agents",
            get(certificate_applications::list_trusted_agents),
        )
        .route(
            "/api/v1/trusted-agents/{client_id}",
            axum::routing::put(certificate_applications::link_trusted_agent),
        )
        .route(
            "/api/v1/credentialing/sources",
            get(credentialing::list_sources).post(credentialing::register_source),
        )
        .route(
            "/api/v1/credentialing/individuals/{idp_id}",
            get(credentialing::get_individual),
        )
        .route(
            "/api/v1/credentialing/standings",
            get(credentialing::list_standings),
        )
        .route(
            "/api/v1/credentialing/providers/unlinked",
            get(credentialing::list_unlinked),
        )
        .route(
            "/api/v1/credentialing/providers/{provider_id}/link",
            post(credentialing::link_provider),
        )
        .route(
            "/api/v1/hl7/subscribers",
            get(registry::list_subscribers).post(registry::add_subscriber),
        )
        .route(
            "/api/v1/hl7/subscribers/{id}",
            axum::routing::delete(registry::remove_subscriber),
        )
        .route("/pki/root.crt", get(pki::root_der))
        .route("/pki/root.pem", get(pki::root_pem))
        .route("/pki/issuing.crt", get(pki::issuing_der))
        .route("/pki/issuing.pem", get(pki::issuing_pem))
        .route("/pki/root.crl", get(pki::root_crl))
        .route("/pki/issuing.crl", get(pki::issuing_crl))
        .route("/pki/anchors.pem", get(pki::anchors))
        .merge(openapi::router())
}
