//! The OpenAPI 3.1 description of every REST route, served as JSON at `/api-docs/openapi.json`,
//! and a Swagger UI over it at `/docs` (its assets are compiled in: no network at run time).
//!
//! The handlers and their request and response types live in their own modules and stay free
//! of documentation concerns: this module mirrors their wire shapes in `schemas` and describes
//! each route with a documentation-only stub in `operations`. Responses every route shares
//! (401, 413, 429, 500, 503) are added by `CommonResponses` from what an operation declares.
//! `tests/it/openapi.rs` snapshots the document and checks that each operation is routed, so a
//! new route without a description here (or a stale one) shows up in review.

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use utoipa::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{
    ClientCredentials, Flow, HttpAuthScheme, HttpBuilder, OAuth2, Scopes, SecurityRequirement,
    SecurityScheme,
};
use utoipa::openapi::{
    Content, ObjectBuilder, Ref, RefOr, Response as ApiResponse, ResponseBuilder, Type,
    header::HeaderBuilder,
};

use crate::error::AppError;
use crate::state::AppState;

/// Where the document is served.
pub const SPEC_PATH: &str = "/api-docs/openapi.json";
/// Where the Swagger UI is served.
pub const UI_PATH: &str = "/docs";

/// Names of the security schemes.
const BASIC: &str = "basicAuth";
const OAUTH2: &str = "oauth2";

/// Tags, in the order the UI lists them.
const TAG_MESSAGING: &str = "Messaging";
const TAG_OAUTH: &str = "OAuth2";
const TAG_VENDOR: &str = "Vendor set-up";
const TAG_MESSAGING_OPS: &str = "Messaging administration";
const TAG_TRANSPORT: &str = "Direct transport";
const TAG_CLIENTS: &str = "Clients";
const TAG_ACCOUNTS: &str = "Accounts";
const TAG_CERTIFICATES: &str = "Certificates";
const TAG_TRUST: &str = "Trust";
const TAG_HL7: &str = "HL7 v3 registry";
const TAG_PKI: &str = "Public PKI";
const TAG_HEALTH: &str = "Health";
const TAG_SOAP: &str = "SOAP";
const TAG_DOCS: &str = "Documentation";
const TAG_WEBHOOKS: &str = "Webhooks";
const TAG_APPLICATIONS: &str = "Certificate applications";
const TAG_CREDENTIALING: &str = "Credentialing";

/// The docs routes; they need no authentication.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(SPEC_PATH, get(spec))
        .route(UI_PATH, get(ui_page))
        .route("/docs/", get(ui_page))
        .route("/docs/{*file}", get(ui_asset))
}

/// The document, built from the descriptions below.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

async fn spec() -> Response {
    static JSON: OnceLock<Bytes> = OnceLock::new();
    let body = JSON.get_or_init(|| {
        Bytes::from(serde_json::to_vec(&document()).expect("the OpenAPI document serializes"))
    });
    ([(header::CONTENT_TYPE, "application/json")], body.clone()).into_response()
}

/// Our own page (rather than the bundled `index.html`) so that it names the document itself
/// and never asks the public validator about it.
const UI_HTML: &str = r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>hisp-gateway REST API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script>
    window.addEventListener("load", function () {
      window.ui = SwaggerUIBundle({
        url: "/api-docs/openapi.json",
        dom_id: "#swagger-ui",
        deepLinking: true,
        validatorUrl: null,
        presets: [SwaggerUIBundle.presets.apis],
        layout: "BaseLayout"
      });
    });
  </script>
</body>
</html>
"##;

async fn ui_page() -> Html<&'static str> {
    Html(UI_HTML)
}

async fn ui_asset(Path(file): Path<String>) -> Result<Response, AppError> {
    static CONFIG: OnceLock<Arc<utoipa_swagger_ui::Config<'static>>> = OnceLock::new();
    let config = CONFIG
        .get_or_init(|| Arc::new(utoipa_swagger_ui::Config::from(SPEC_PATH)))
        .clone();
    let asset = utoipa_swagger_ui::serve(&file, config)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("swagger-ui asset {file}: {e}")))?
        .ok_or_else(|| AppError::NotFound(format!("documentation file {file}")))?;
    let mut resp = (
        [(header::CONTENT_TYPE, asset.content_type)],
        Bytes::from(asset.bytes.into_owned()),
    )
        .into_response();
    if asset.gzpipped {
        resp.headers_mut().insert(
            header::CONTENT_ENCODING,
            header::HeaderValue::from_static("gzip"),
        );
    }
    Ok(resp)
}

// ---- the document ----------------------------------------------------------------------------

const DESCRIPTION: &str = r#"The REST doors of the HISP gateway: the MedAllies-style messaging API (`/MessagingAPI`, `/oauth2/token`), the set-up and operations API (`/api/v1`), the public PKI files (`/pki`) and the health probes.

**Authentication.** API clients authenticate with HTTP Basic, the client id (a UUID) as user name and the client secret as password. Vendor clients may instead present an OAuth2 Bearer token from `POST /oauth2/token` (client credentials grant) on the messaging routes and on `/api/v1/messaging/endpoints/…` and `/api/v1/messaging/signing-secret…`. What a client may do depends on its kind (vendor, ops, officer, reseller, trusted-agent, registry): a wrong kind gets 403. Failed authentications are throttled per source address and client id: after a few, further attempts get 429 `too_many_requests` with `Retry-After` (doubling with each further failure), without the credentials being checked.

**Errors.** Every error of these routes (except `/oauth2/token`, which answers RFC 6749 errors, and the SOAP service) has the body `{"error": {"code", "message", "field"}}`; `field` names the offending input where there is one. 401 carries `WWW-Authenticate`, 429 carries `Retry-After` (seconds). Bodies larger than the limit get 413 (`send_ccda` has a larger limit of its own); a request that does not complete in time, or finds the database unavailable, gets 503.

**Request ids.** Each response echoes `x-request-id` (the caller's, or a new UUID); quote it when reporting a problem.

**Webhooks.** The gateway POSTs JSON to URLs vendors register with `PUT /api/v1/messaging/endpoints/{address}`: delivery status notifications (signed per Standard Webhooks) and inbound messages. Both are described under `webhooks`.

**SOAP.** The Organization Registration service at `/registration/services/OrganizationRegistrationService` is a SOAP 1.1/1.2 service described by its WSDL (`GET …?wsdl`), not by this document; its path is listed here only to point there."#;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hisp-gateway",
        version = env!("CARGO_PKG_VERSION"),
        description = DESCRIPTION,
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        operations::send_ccda,
        operations::message_status,
        operations::list_messages,
        operations::list_inbox,
        operations::fetch_inbox_message,
        operations::acknowledge_inbox_message,
        operations::read_receipt,
        operations::oauth2_token,
        operations::get_endpoint,
        operations::put_endpoint,
        operations::get_signing_secret,
        operations::rotate_signing_secret,
        operations::list_grants,
        operations::create_grant,
        operations::delete_grant,
        operations::put_address_status,
        operations::message_report,
        operations::list_inbound_mail,
        operations::whoami,
        operations::list_clients,
        operations::create_client,
        operations::disable_client,
        operations::get_account,
        operations::credit_account,
        operations::put_hold,
        operations::release_hold,
        operations::list_certificates,
        operations::get_certificate,
        operations::get_certificate_pem,
        operations::get_certificate_der,
        operations::revoke_certificate,
        operations::export_pkcs12,
        operations::add_trust_anchors,
        operations::list_trust_anchors,
        operations::remove_trust_anchor,
        operations::add_peer_certificates,
        operations::list_peer_certificates,
        operations::remove_peer_certificate,
        operations::add_trust_bundle,
        operations::list_trust_bundles,
        operations::remove_trust_bundle,
        operations::refresh_trust_bundle,
        operations::root_certificate_der,
        operations::root_certificate_pem,
        operations::issuing_certificate_der,
        operations::issuing_certificate_pem,
        operations::root_crl,
        operations::issuing_crl,
        operations::trust_anchors,
        operations::healthz,
        operations::readyz,
        operations::metrics,
        operations::soap_wsdl,
        operations::soap_call,
        operations::add_hl7_subscriber,
        operations::list_hl7_subscribers,
        operations::remove_hl7_subscriber,
        operations::hl7_message,
        operations::openapi_document,
        operations::swagger_ui,
        operations::delivery_status_notification,
        operations::inbound_message,
        applications::submit_application,
        applications::list_applications,
        applications::get_application,
        applications::approve_application,
        applications::reject_application,
        applications::list_trusted_agents,
        applications::link_trusted_agent,
        operations::credentialing_webhook,
        operations::register_credentialing_source,
        operations::list_credentialing_sources,
        operations::get_credentialing_individual,
        operations::list_credentialing_standings,
        operations::list_unlinked_providers,
        operations::link_credentialing_provider,
        operations::credentialing_standing_changed,
    ),
    components(schemas(schemas::ErrorBody, schemas::OAuthError)),
    modifiers(&SecuritySchemes, &TaSecurity, &Webhooks, &CommonResponses),
    tags(
        (name = TAG_MESSAGING, description = "Sending Direct messages and following their delivery (vendor clients)."),
        (name = TAG_OAUTH, description = "Bearer tokens for vendor clients (client credentials grant)."),
        (name = TAG_VENDOR, description = "A vendor's webhook endpoints per Direct address and its webhook signing secret."),
        (name = TAG_MESSAGING_OPS, description = "Ops: which vendor may use which organization's addresses, address status and message reports."),
        (name = TAG_TRANSPORT, description = "Ops: mail from other HISPs over the Direct transport, and what became of it."),
        (name = TAG_CLIENTS, description = "The caller itself, and (ops) managing API clients."),
        (name = TAG_ACCOUNTS, description = "Ops: resellers' debit accounts."),
        (name = TAG_CERTIFICATES, description = "Ops and officers: the certificates the gateway's CA issued."),
        (name = TAG_TRUST, description = "Ops: which anchors each hosted domain trusts (uploads, trust bundles), and certificates of peers without DNS CERT."),
        (name = TAG_PKI, description = "Trust anchors and CRLs, public: what peers fetch through the AIA and CRL URLs of our certificates."),
        (name = TAG_HEALTH, description = "Probes and metrics for operators and load balancers."),
        (name = TAG_SOAP, description = "The Organization Registration SOAP service, described by its WSDL."),
        (name = TAG_DOCS, description = "This document and its browser."),
        (name = TAG_HL7, description = "The HL7 v3 organization registry (PRPM organization topic): its message endpoint, and (ops) the subscribers told of every change."),
        (name = TAG_WEBHOOKS, description = "What the gateway POSTs to vendors' registered endpoints (see `webhooks`)."),
        (name = TAG_APPLICATIONS, description = "Trusted Agents apply for patient, provider-address and organizational certificates; officers review; ops links TAs to organizations (DataMotion style)."),
        (name = TAG_CREDENTIALING, description = "Credentialing webhooks (Verifiable style) in, and (ops) sources, individuals' standings and provider links; see docs/credentialing.md."),
    ),
)]
struct ApiDoc;

/// HTTP Basic for every client; OAuth2 client credentials for vendors.
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BASIC,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "The API client's id (a UUID) as user name and its secret as password.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            OAUTH2,
            SecurityScheme::OAuth2(OAuth2::with_description(
                [Flow::ClientCredentials(ClientCredentials::new(
                    "/oauth2/token",
                    Scopes::new(),
                ))],
                "Vendor clients only: a Bearer token from `POST /oauth2/token`, presented as \
                 `Authorization: Bearer <token>` until it expires.",
            )),
        );
    }
}

/// The responses routes share, added where they apply so that no route can forget one:
/// 401 where credentials are required, 429 where the vendor rate limit applies (the routes that
/// accept Bearer tokens), 413 where there is a body, 500 and 503 everywhere. The SOAP service
/// answers faults instead and keeps its own.
struct CommonResponses;

const R_UNAUTHORIZED: &str = "Unauthorized";
const R_TOO_MANY: &str = "TooManyRequests";
const R_TOO_LARGE: &str = "PayloadTooLarge";
const R_UNAVAILABLE: &str = "Unavailable";
const R_INTERNAL: &str = "InternalError";

fn error_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
    )
}

fn integer_header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1)),
        ))
        .description(Some(description))
        .build()
}

fn string_header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .description(Some(description))
        .build()
}

impl utoipa::Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let shared: [(&str, ApiResponse); 5] = [
            (
                R_UNAUTHORIZED,
                error_response(
                    "Credentials are missing or wrong, the client is disabled, or the Bearer \
                     token is unknown or expired (`unauthorized`).",
                )
                .header(
                    "WWW-Authenticate",
                    string_header("`Basic realm=\"hisp-gateway\"`"),
                )
                .build(),
            ),
            (
                R_TOO_MANY,
                error_response(
                    "The vendor client is over its request rate, or too many authentications \
                     failed from this address or for this client id (`too_many_requests`); \
                     retry after the given number of seconds.",
                )
                .header(
                    "Retry-After",
                    integer_header("Seconds to wait before the next request."),
                )
                .build(),
            ),
            (
                R_TOO_LARGE,
                error_response(
                    "The body is larger than the limit (`payload_too_large`): the HTTP body limit, \
                     or the messaging body limit for `send_ccda`.",
                )
                .build(),
            ),
            (
                R_UNAVAILABLE,
                error_response(
                    "The request did not complete within the request timeout (`timeout`), the \
                     database is unavailable or restarting (`unavailable`), or a bounded \
                     resource stayed taken for as long as a request may wait (`overloaded`: \
                     `send_ccda`'s sends in progress, or the password checks in progress); \
                     nothing was written; safe to retry later.",
                )
                .header(
                    "Retry-After",
                    integer_header(
                        "With `unavailable` and `overloaded`: seconds to wait before retrying.",
                    ),
                )
                .build(),
            ),
            (
                R_INTERNAL,
                error_response(
                    "An unexpected error on our side (`internal`); the details are in our log \
                     under the request id.",
                )
                .build(),
            ),
        ];
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, response) in shared {
            components
                .responses
                .insert(name.to_owned(), RefOr::T(response));
        }

        let basic = SecurityRequirement::new(BASIC, Vec::<String>::new());
        let bearer = SecurityRequirement::new(OAUTH2, Vec::<String>::new());
        for item in openapi.paths.paths.values_mut() {
            for op in operations_of(item) {
                let tagged = |t: &str| op.tags.iter().flatten().any(|x| x == t);
                if tagged(TAG_SOAP) {
                    continue;
                }
                let security = op.security.clone().unwrap_or_default();
                let mut add = |status: &str, name: &str| {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
                };
                if security.contains(&basic) || security.contains(&bearer) {
                    add("401", R_UNAUTHORIZED);
                }
                if security.contains(&basic) || security.contains(&bearer) {
                    add("429", R_TOO_MANY);
                }
                if op.request_body.is_some() {
                    add("413", R_TOO_LARGE);
                }
                add("500", R_INTERNAL);
                add("503", R_UNAVAILABLE);
            }
        }
    }
}

fn operations_of(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
        item.head.as_mut(),
        item.options.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// What the gateway POSTs to vendors is described with the same stubs as the routes, under
/// names without a leading slash; this moves them from `paths` to the 3.1 `webhooks` map.
struct Webhooks;

impl utoipa::Modify for Webhooks {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let names: Vec<String> = openapi
            .paths
            .paths
            .keys()
            .filter(|k| !k.starts_with('/'))
            .cloned()
            .collect();
        let mut hooks = utoipa::openapi::Paths::new();
        for name in names {
            if let Some(item) = openapi.paths.paths.remove(&name) {
                hooks.paths.insert(name, item);
            }
        }
        if !hooks.paths.is_empty() {
            openapi.webhooks = Some(hooks);
        }
    }
}

// ---- wire shapes -----------------------------------------------------------------------------

/// Mirrors of the request and response bodies of the handlers, for documentation only.
mod schemas {
    #![allow(dead_code)]

    use chrono::{DateTime, Utc};
    use serde::Serialize;
    use utoipa::ToSchema;
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    use uuid::Uuid;

    // -- errors --

    /// The error body of every REST route.
    #[derive(Serialize, ToSchema)]
    #[schema(example = json!({"error": {"code": "invalid", "message": "is required", "field": "messageId"}}))]
    pub struct ErrorBody {
        pub error: ErrorDetail,
    }

    #[derive(Serialize, ToSchema)]
    pub struct ErrorDetail {
        pub code: ErrorCode,
        /// Human-readable; not for matching.
        pub message: String,
        /// The request field (body field, query parameter or path segment) at fault, when one is.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(nullable = false)]
        pub field: Option<String>,
    }

    /// A stable, machine-readable error code.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum ErrorCode {
        Invalid,
        Malformed,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        Refused,
        PayloadTooLarge,
        UnsupportedMediaType,
        TooManyRequests,
        Timeout,
        Unavailable,
        Overloaded,
        Internal,
    }

    /// An RFC 6749 error of the token endpoint.
    #[derive(Serialize, ToSchema)]
    #[schema(example = json!({"error": "invalid_client", "error_description": "unknown client or wrong secret"}))]
    pub struct OAuthError {
        pub error: OAuthErrorCode,
        pub error_description: String,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum OAuthErrorCode {
        InvalidRequest,
        InvalidClient,
        UnsupportedGrantType,
        UnauthorizedClient,
    }

    // -- field helpers --

    /// `true`/`false`, as a JSON boolean or a string.
    fn flag(description: &str) -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some(description))
            .item(ObjectBuilder::new().schema_type(Type::Boolean))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["true", "false"])),
            )
            .into()
    }

    pub fn xdm_flag() -> RefOr<Schema> {
        flag(
            "Wrap the documents into one XDM package (`<xdmFileName>-xdm.zip`). Default false. \
             A boolean, or the string `true` or `false`.",
        )
    }

    pub fn asm_flag() -> RefOr<Schema> {
        flag(
            "Ask for final delivery notification (Direct \"timely and reliable\"): the sender is \
             then also told when the message was dispatched. Default false, unless the sending \
             address has that setting on. A boolean, or the string `true` or `false`.",
        )
    }

    /// A string; numbers are accepted too and read as their decimal text.
    pub fn text_or_number() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some("A string, or a number read as its decimal text."))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .max_length(Some(1000)),
            )
            .item(ObjectBuilder::new().schema_type(Type::Number))
            .into()
    }

    // -- messaging --

    /// The patient, document and author fields of a message. On `send_ccda` they describe the
    /// XDM submission (when `xdm` is true) and travel with the message to a recipient hosted
    /// here; on an inbound message they are present when the sender is one of ours. Each holds
    /// at most 1000 characters without control characters, except `messageBody` (100000) and
    /// `patient_summary`, which may contain line breaks; a number is accepted where a string is
    /// expected.
    #[derive(Serialize, ToSchema)]
    #[allow(non_snake_case)]
    pub struct MessageMetadata {
        /// Subject line of the message.
        pub messageSubject: Option<String>,
        /// Plain-text body of the message (at most 100000 characters).
        #[schema(max_length = 100000)]
        pub messageBody: Option<String>,
        /// The Message-ID this message replies to (sets `In-Reply-To`).
        pub replyToMessageId: Option<String>,
        /// OID of the authority that assigned `patientId` (the patient id becomes `id^^^&oid&ISO`).
        #[schema(example = "2.16.840.1.113883.19.5")]
        pub assigning_authority: Option<String>,
        #[schema(schema_with = text_or_number)]
        pub patientId: Option<String>,
        pub patientIdType: Option<String>,
        pub patientAddressStreet1: Option<String>,
        pub patientAddressStreet2: Option<String>,
        pub patientAddressCity: Option<String>,
        pub patientAddressState: Option<String>,
        #[schema(schema_with = text_or_number)]
        pub patientAddressZip: Option<String>,
        /// Date of birth, `YYYYMMDD`.
        #[schema(pattern = "^[0-9]{8}$", example = "19160226")]
        pub patientDOB: Option<String>,
        pub patientGender: Option<String>,
        pub patientLastname: Option<String>,
        pub patientFirstname: Option<String>,
        pub patientMiddlename: Option<String>,
        /// Free text; line breaks allowed.
        pub patient_summary: Option<String>,
        /// LOINC display name of the document type.
        pub loincName: Option<String>,
        /// LOINC code of the document type.
        #[schema(example = "34133-9")]
        pub loincValue: Option<String>,
        pub authorPerson: Option<String>,
        pub authorInstitution: Option<String>,
    }

    /// One document of a message.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct EmailAttachment {
        /// Media type (`type/subtype`, parameters allowed); `application/octet-stream` when absent.
        #[schema(example = "text/xml")]
        pub attachment_class: Option<String>,
        /// The document, base64 (standard alphabet; padding optional, line breaks allowed).
        #[schema(content_encoding = "base64", example = "PENsaW5pY2FsRG9jdW1lbnQvPg==")]
        pub attachment_content: String,
        /// Title of the document.
        pub attachment_title: Option<String>,
        /// File name without path separators or quotes, at most 128 characters; the extension of
        /// the media type is added unless the name already ends with it. Defaults to
        /// `attachment<n>`.
        #[schema(max_length = 128)]
        pub attachment_file_name: Option<String>,
    }

    /// The body of `send_ccda`.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    #[schema(example = json!({
        "fromDirectAddress": "john@direct.clinic.example.org",
        "toDirectAddress": "smith@direct.hospital.example.org, jones@direct.lab.example.org",
        "messageId": "urn:uuid:a2d59543-91f4-45a4-99ef-72d70da1e454",
        "messageSubject": "Referral",
        "messageBody": "Please see the attached summary.",
        "emailAttachmentList": [
            {"attachmentClass": "text/xml", "attachmentContent": "PENsaW5pY2FsRG9jdW1lbnQvPg==", "attachmentTitle": "CCD", "attachmentFileName": "summary"}
        ],
        "xdm": true,
        "xdmFileName": "referral",
        "asmEnabled": false,
        "patientId": "22943847",
        "assigning_authority": "2.16.840.1.113883.19.5",
        "patientLastname": "Doe",
        "patientFirstname": "Jane",
        "patientDOB": "19160226",
        "patientGender": "F"
    }))]
    pub struct SendCcdaRequest {
        /// The sending Direct address: hosted here, granted to the calling vendor and active.
        #[schema(example = "john@direct.clinic.example.org")]
        pub from_direct_address: String,
        /// One or more recipient Direct addresses separated by `,` or `;` (at most 100;
        /// duplicates count once).
        #[schema(example = "smith@direct.hospital.example.org")]
        pub to_direct_address: String,
        /// The vendor's id of the message, at most 255 printable characters. Sending the same
        /// request again returns the first reply; the same id with another request is a conflict.
        #[schema(max_length = 255)]
        pub message_id: String,
        /// The documents (at least one; at most the configured maximum).
        #[schema(min_items = 1)]
        pub email_attachment_list: Vec<EmailAttachment>,
        #[schema(schema_with = xdm_flag)]
        pub xdm: Option<bool>,
        /// Name of the XDM package, without the `-xdm.zip` suffix we add; default `message`.
        #[schema(max_length = 128)]
        pub xdm_file_name: Option<String>,
        #[schema(schema_with = asm_flag)]
        pub asm_enabled: Option<bool>,
        #[serde(flatten)]
        pub metadata: MessageMetadata,
    }

    /// The synchronous reply of `send_ccda`: the message was accepted and will be delivered.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    #[schema(example = json!({"messageId": "urn:uuid:a2d59543-91f4-45a4-99ef-72d70da1e454", "status": "SUCCESS", "transactionId": "0b8e6f3e-7d7c-4c1e-9a51-0f3c2d1e4b5a", "result": "Message parse successfully"}))]
    pub struct SendReply {
        /// The request's `messageId`.
        pub message_id: String,
        pub status: SendStatus,
        /// Our id of this send.
        pub transaction_id: Uuid,
        pub result: String,
    }

    #[derive(Serialize, ToSchema)]
    pub enum SendStatus {
        #[serde(rename = "SUCCESS")]
        Success,
    }

    /// Delivery status of one recipient.
    #[derive(Serialize, ToSchema)]
    pub enum MessageStatus {
        /// Accepted by us, not yet processed for the recipient.
        #[serde(rename = "SMTPINIT")]
        SmtpInit,
        /// The recipient's system has the message.
        #[serde(rename = "PROCESSED")]
        Processed,
        /// Delivered to the recipient (final, may still become DISPLAYED).
        #[serde(rename = "DISPATCHED")]
        Dispatched,
        /// Displayed to the recipient (final).
        #[serde(rename = "DISPLAYED")]
        Displayed,
        /// Failed (final); see `failureReason`.
        #[serde(rename = "FAILED")]
        Failed,
        /// No final status within the delivery timeout (final).
        #[serde(rename = "FAILED-TO")]
        FailedTimeout,
    }

    /// The status of one recipient of a message.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct RecipientStatus {
        /// The sending address.
        pub sender: String,
        pub recipient: String,
        /// The vendor's `messageId`.
        pub xd_msg_id: String,
        /// When the message was accepted, `YYYY-MM-DD HH:MM:SS.f` (UTC).
        #[schema(example = "2026-11-21 10:15:30.1")]
        pub send_time: String,
        pub status: MessageStatus,
        /// Why delivery failed, coded (`9004: ERROR=DeliveryFailed`; the table is in the API
        /// guide); present only for FAILED and FAILED-TO.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(nullable = false)]
        pub failure_reason: Option<String>,
        /// Ours, beside the seed's fields: the `transactionId` of the `send_ccda` reply.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(nullable = false)]
        pub transaction_id: Option<Uuid>,
        /// Ours, beside the seed's fields: when the status last changed (RFC 3339,
        /// milliseconds).
        pub updated: DateTime<Utc>,
    }

    /// One recipient: its status; several: an array of them.
    #[derive(Serialize, ToSchema)]
    #[serde(untagged)]
    pub enum StatusReply {
        One(RecipientStatus),
        Several(Vec<RecipientStatus>),
    }

    /// A page of the vendor's sent messages, one item per recipient, newest first.
    #[derive(Serialize, ToSchema)]
    pub struct MessageListing {
        pub items: Vec<RecipientStatus>,
        /// Items matching the filters, over all pages.
        pub total: i64,
        pub limit: i64,
        pub offset: i64,
    }

    // -- OAuth2 --

    /// The token request (`application/x-www-form-urlencoded`). The client credentials go in
    /// the Basic header (preferred) or in the form.
    #[derive(Serialize, ToSchema)]
    pub struct TokenRequest {
        pub grant_type: GrantType,
        /// The vendor client's id, when not given in the Basic header.
        pub client_id: Option<Uuid>,
        /// The vendor client's secret, when not given in the Basic header.
        pub client_secret: Option<String>,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum GrantType {
        ClientCredentials,
    }

    /// An issued access token (the response has `Cache-Control: no-store`).
    #[derive(Serialize, ToSchema)]
    pub struct TokenResponse {
        pub access_token: String,
        pub token_type: TokenType,
        /// Lifetime in seconds.
        pub expires_in: u64,
    }

    #[derive(Serialize, ToSchema)]
    pub enum TokenType {
        Bearer,
    }

    // -- vendor set-up --

    /// Credentials the gateway presents to a vendor's endpoint.
    #[derive(Serialize, ToSchema)]
    #[serde(tag = "type", rename_all = "lowercase")]
    pub enum EndpointAuth {
        /// No credentials.
        None,
        /// HTTP Basic; the user name must not contain `:`.
        Basic { username: String, password: String },
        /// One header of the vendor's choosing (not `Content-Type`, `Content-Length`, `Host`,
        /// `Idempotency-Key` nor `webhook-*`).
        Header { name: String, value: String },
    }

    /// How inbound messages are shaped: `flat` (addresses at the top, as sent) or `envelope`
    /// (under `envelopeInfo`, recipients as an array).
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum InboundShape {
        Flat,
        Envelope,
    }

    /// How XDM packages are delivered: `zip` (the package as one attachment) or `unpacked`
    /// (its documents as attachments).
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum XdmDelivery {
        Zip,
        Unpacked,
    }

    /// What a vendor registers for one of its addresses. Replaces the whole registration;
    /// credentials are write-only.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    #[schema(example = json!({
        "inboundUrl": "https://ehr.example.org/direct/inbound",
        "inboundAuth": {"type": "header", "name": "X-Api-Key", "value": "s3cret"},
        "inboundShape": "flat",
        "xdmDelivery": "zip",
        "dsnUrl": "https://ehr.example.org/direct/status",
        "dsnAuth": {"type": "basic", "username": "gateway", "password": "s3cret"}
    }))]
    pub struct EndpointRequest {
        /// Where messages to this address are POSTed (absolute http(s) URL without
        /// credentials); none: messages to it fail.
        pub inbound_url: Option<String>,
        pub inbound_auth: Option<EndpointAuth>,
        /// Default `flat`.
        pub inbound_shape: Option<InboundShape>,
        /// Default `zip`.
        pub xdm_delivery: Option<XdmDelivery>,
        /// Where delivery status notifications of messages sent from this address are POSTed;
        /// none: the vendor polls `/MessagingAPI/dirmsg/status`.
        pub dsn_url: Option<String>,
        pub dsn_auth: Option<EndpointAuth>,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum AuthKind {
        None,
        Basic,
        Header,
    }

    /// An address's registration as shown back: which kind of credentials, never their values.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct EndpointView {
        pub address: String,
        pub inbound_url: Option<String>,
        pub inbound_auth: AuthKind,
        pub inbound_shape: InboundShape,
        pub xdm_delivery: XdmDelivery,
        pub dsn_url: Option<String>,
        pub dsn_auth: AuthKind,
        pub updated_at: DateTime<Utc>,
    }

    /// The vendor's Standard Webhooks signing secret.
    #[derive(Serialize, ToSchema)]
    pub struct SigningSecret {
        /// `whsec_` followed by the base64 of the key.
        #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
        pub secret: String,
    }

    // -- messaging administration --

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct GrantRequest {
        /// A vendor client. (`client_id` is accepted too, for older callers.)
        pub client_id: Uuid,
        /// The domain of the organization whose addresses the vendor may use.
        #[schema(example = "direct.clinic.example.org")]
        pub domain: String,
    }

    /// A vendor's grant of an organization's addresses.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct Grant {
        /// The vendor client.
        pub client_id: Uuid,
        pub organization_id: i64,
        #[schema(example = "direct.clinic.example.org")]
        pub domain: String,
        /// The organization's status: `Activated` once its certificate is issued, and only then
        /// may its addresses send.
        #[schema(example = "Activated")]
        pub organization_status: String,
        pub created_at: DateTime<Utc>,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum AddressStatus {
        Active,
        Disabled,
    }

    #[derive(Serialize, ToSchema)]
    pub struct AddressStatusRequest {
        pub status: AddressStatus,
    }

    /// The report's status words.
    #[derive(Serialize, ToSchema)]
    pub enum ReportStatus {
        Waiting,
        Delivered,
        #[serde(rename = "Locally Failed")]
        LocallyFailed,
        #[serde(rename = "Remotely Failed")]
        RemotelyFailed,
        #[serde(rename = "NO MDN Received")]
        NoMdnReceived,
    }

    /// One row of the message status report (the columns of the CSV form, in this order).
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct ReportRow {
        pub from: String,
        pub to: String,
        /// The SMTP Message-ID.
        pub message_id: String,
        /// Bytes of the MIME message.
        pub message_size: i64,
        pub status: ReportStatus,
        /// `YYYY-MM-DDTHH:MM:SSZ`.
        #[schema(example = "2026-11-21T10:15:30Z")]
        pub sent_time: String,
        pub xdr_message_id: Option<String>,
        pub xdr_source_id: Option<String>,
        pub xdr_unique_id: Option<String>,
        pub xdr_patient_id: Option<String>,
        /// For FAILED and FAILED-TO: the coded reason the sender read.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(nullable = false)]
        pub failure_reason: Option<String>,
        /// For operators only: the cause behind the code (an endpoint's error, a peer's reply).
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(nullable = false)]
        pub failure_detail: Option<String>,
    }

    /// One mail from another HISP, as our SMTP listener took it.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct InboundMail {
        pub id: uuid::Uuid,
        pub received_at: chrono::DateTime<chrono::Utc>,
        /// The connecting peer's IP address.
        pub peer: String,
        /// The name it gave in EHLO/HELO.
        pub helo: String,
        pub tls: bool,
        /// The envelope sender; empty for the null sender of MDNs and DSNs.
        pub mail_from: String,
        pub rcpt_to: Vec<String>,
        pub size: i64,
        /// `received` (not processed yet), `accepted` or `rejected`.
        pub state: String,
        /// Why it was rejected, or `notification` for an MDN or DSN that was applied.
        pub reason: Option<String>,
        pub processed_at: Option<chrono::DateTime<chrono::Utc>>,
    }

    // -- clients --

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "kebab-case")]
    pub enum ClientKind {
        Reseller,
        Vendor,
        TrustedAgent,
        Officer,
        Ops,
        Registry,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum ClientStatus {
        Active,
        Disabled,
    }

    /// An API client (never with its secret).
    #[derive(Serialize, ToSchema)]
    pub struct Client {
        pub id: Uuid,
        pub kind: ClientKind,
        pub name: String,
        pub status: ClientStatus,
        pub created_at: DateTime<Utc>,
    }

    #[derive(Serialize, ToSchema)]
    pub struct CreateClientRequest {
        pub kind: ClientKind,
        /// 1 to 200 characters, no control characters.
        #[schema(min_length = 1, max_length = 200)]
        pub name: String,
    }

    /// A new client with its secret, shown this once (only a hash is kept).
    #[derive(Serialize, ToSchema)]
    pub struct CreatedClient {
        pub id: Uuid,
        pub kind: ClientKind,
        pub name: String,
        pub status: ClientStatus,
        pub created_at: DateTime<Utc>,
        pub secret: String,
    }

    // -- accounts --

    #[derive(Serialize, ToSchema)]
    pub struct CreditRequest {
        /// US dollars as a string, at most two decimals, more than zero.
        #[schema(pattern = r"^[0-9]+(\.[0-9]{1,2})?$", example = "250.00")]
        pub amount: String,
        pub memo: Option<String>,
    }

    /// One ledger entry.
    #[derive(Serialize, ToSchema)]
    pub struct LedgerEntry {
        pub id: i64,
        /// `credit`, `hold`, `release`, `authorization` or `capture`.
        pub kind: String,
        pub amount_cents: i64,
        pub balance_after_cents: i64,
        pub order_id: Option<i64>,
        pub memo: Option<String>,
        /// Who made the entry.
        pub actor: String,
        pub at: DateTime<Utc>,
    }

    /// A reseller's debit account.
    #[derive(Serialize, ToSchema)]
    pub struct Account {
        pub reseller_id: Uuid,
        /// Dollars, e.g. `250.00`.
        pub balance: String,
        pub balance_cents: i64,
        /// Captures are refused while on hold.
        pub capture_hold: bool,
        pub ledger: Vec<LedgerEntry>,
    }

    // -- certificates --

    /// DirectTrust certificate category.
    #[derive(Serialize, ToSchema)]
    pub enum CertificateCategory {
        CoveredEntity,
        BusinessAssociate,
        HealthEntity,
        Patient,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum KeyUse {
        Dual,
        Signing,
        Encryption,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum CertificateStatus {
        Requested,
        Issued,
        Renewed,
        Expired,
        Revoked,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum Binding {
        Domain,
        Address,
    }

    /// A certificate the gateway's CA issued (or was asked to).
    #[derive(Serialize, ToSchema)]
    pub struct CertificateRecord {
        pub id: i64,
        pub organization_id: i64,
        pub organization_domain: String,
        pub binding: Binding,
        pub subject_name: String,
        pub category: CertificateCategory,
        pub key_use: KeyUse,
        pub validity_years: i32,
        pub auto_renew: bool,
        pub status: CertificateStatus,
        /// Upper-case hex; none until issued.
        pub serial: Option<String>,
        pub not_before: Option<DateTime<Utc>>,
        pub not_after: Option<DateTime<Utc>>,
        pub revoked_at: Option<DateTime<Utc>>,
        pub revocation_reason: Option<String>,
        /// The certificate this one renewed.
        pub predecessor_id: Option<i64>,
    }

    /// RFC 5280 revocation reason (case-insensitive).
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub enum RevocationReason {
        Unspecified,
        KeyCompromise,
        #[serde(rename = "cACompromise")]
        CaCompromise,
        AffiliationChanged,
        Superseded,
        CessationOfOperation,
        CertificateHold,
        PrivilegeWithdrawn,
    }

    #[derive(Serialize, ToSchema)]
    pub struct RevokeRequest {
        pub reason: RevocationReason,
    }

    #[derive(Serialize, ToSchema)]
    pub struct Pkcs12Request {
        /// Encrypts the PKCS#12 file; at least 8 characters.
        #[schema(min_length = 8)]
        pub password: String,
    }

    // -- health --

    #[derive(Serialize, ToSchema)]
    #[schema(example = json!({"status": "ok"}))]
    pub struct Liveness {
        pub status: String,
    }

    /// `ready`, or `not_ready` with the reason (`migrations pending`, `database unreachable`).
    #[derive(Serialize, ToSchema)]
    #[schema(example = json!({"status": "not_ready", "reason": "migrations pending"}))]
    pub struct Readiness {
        pub status: ReadinessStatus,
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(nullable = false)]
        pub reason: Option<String>,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum ReadinessStatus {
        Ready,
        NotReady,
    }

    // -- pull mailbox and read receipts --

    /// One message waiting in a mailbox.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct InboxItem {
        /// The mailbox's handle: fetch and acknowledge by it, page with `after`.
        pub id: i64,
        /// The sender's `messageId`.
        pub message_id: String,
        pub from_direct_address: String,
        pub to_direct_address: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(nullable = false)]
        pub message_subject: Option<String>,
        /// When the gateway accepted the message (RFC 3339, milliseconds).
        pub received_time: DateTime<Utc>,
        /// Size of the message as built (MIME), in bytes.
        pub size_bytes: i64,
    }

    /// The messages waiting for one address, oldest first.
    #[derive(Serialize, ToSchema)]
    pub struct Inbox {
        pub address: String,
        pub messages: Vec<InboxItem>,
        /// The `after` of the next page: the last id listed; null when none was.
        pub next: Option<i64>,
    }

    /// The answer to an acknowledgement.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct Acknowledged {
        pub id: i64,
        pub message_id: String,
        /// `DISPATCHED` (or `DISPLAYED` if a read receipt came since).
        pub status: MessageStatus,
    }

    /// A read receipt from the receiving side, naming the message as it was received.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct ReceiptRequest {
        /// The `messageId` of the inbound message.
        pub message_id: String,
        pub from_direct_address: String,
        /// The vendor's own address that received it.
        pub to_direct_address: String,
        /// `displayed`.
        #[schema(example = "displayed")]
        pub disposition: String,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct ReceiptReply {
        pub message_id: String,
        pub to_direct_address: String,
        /// `DISPLAYED`.
        pub status: MessageStatus,
    }

    // -- webhooks --

    /// A delivery status notification, POSTed to the sender's `dsnUrl` when a recipient's
    /// status changes (PROCESSED, DISPATCHED when final delivery was asked for, DISPLAYED,
    /// FAILED, FAILED-TO).
    #[derive(Serialize, ToSchema)]
    #[schema(example = json!({
        "Timestamp": "2026-11-21T10:15:31.123456z",
        "Id": "urn:uuid:a2d59543-91f4-45a4-99ef-72d70da1e454",
        "Status": "Success",
        "Description": "dispatched",
        "Disposition": "action/MDN-sent-automatically;dispatched",
        "Recipient": "smith@direct.hospital.example.org"
    }))]
    #[allow(non_snake_case)]
    pub struct DeliveryStatusNotification {
        /// When the status changed (UTC, microseconds).
        pub Timestamp: String,
        /// The `messageId` the vendor sent (our SMTP Message-ID for a message without one).
        pub Id: String,
        pub Status: NotificationStatus,
        /// The status word (`processed`, `dispatched`, `displayed`) or the coded failure
        /// reason (`9002: ERROR=NoTrustedRecipients`).
        pub Description: String,
        /// `action/MDN-sent-automatically;` followed by `processed`, `dispatched`,
        /// `displayed` or `failed`.
        pub Disposition: String,
        /// The recipient this notification is about.
        pub Recipient: String,
    }

    #[derive(Serialize, ToSchema)]
    pub enum NotificationStatus {
        Success,
        Error,
    }

    /// An inbound message in the `flat` shape.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct InboundMessageFlat {
        pub from_direct_address: String,
        /// The one recipient this delivery is for.
        pub to_direct_address: String,
        #[serde(flatten)]
        pub body: InboundCommon,
    }

    /// An inbound message in the `envelope` shape.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct InboundMessageEnvelope {
        pub envelope_info: EnvelopeInfo,
        #[serde(flatten)]
        pub body: InboundCommon,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct EnvelopeInfo {
        pub from_direct_address: String,
        /// The recipient this delivery is for (one element).
        pub to_direct_address: Vec<String>,
    }

    /// The fields of an inbound message besides its addresses.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct InboundCommon {
        /// The documents; an XDM package comes as its `-xdm.zip` file or, with `xdmDelivery`
        /// `unpacked`, as its documents.
        pub email_attachment_list: Vec<EmailAttachment>,
        /// The sender's `messageId` (the Message-ID of mail from another HISP): what replies
        /// name in `replyToMessageId`, and what a read receipt names.
        pub message_id: String,
        /// Whether the message carried an XDM package.
        pub xdm: bool,
        /// Whether the sender asked for final delivery notification.
        pub asm_enabled: bool,
        #[serde(flatten)]
        pub metadata: MessageMetadata,
    }

    /// An inbound message, in the shape the endpoint registered.
    #[derive(Serialize, ToSchema)]
    #[serde(untagged)]
    pub enum InboundMessage {
        Flat(InboundMessageFlat),
        Envelope(InboundMessageEnvelope),
    }

    // -- trust --

    #[derive(Serialize, ToSchema)]
    pub struct AnchorUpload {
        /// The hosted domain that is to trust these anchors.
        #[schema(example = "direct.clinic.example.org")]
        pub domain: String,
        /// One or more PEM CA certificates (`-----BEGIN CERTIFICATE-----`).
        pub pem: String,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum AnchorSource {
        Upload,
        Bundle,
    }

    /// A trust anchor of a domain.
    #[derive(Serialize, ToSchema)]
    pub struct TrustAnchor {
        pub id: i64,
        #[schema(example = "direct.clinic.example.org")]
        pub domain: String,
        /// SHA-256 of the DER, lower-case hex.
        pub fingerprint: String,
        pub subject: String,
        pub not_after: DateTime<Utc>,
        pub source: AnchorSource,
        /// The bundle it came from (source `bundle`).
        pub bundle_id: Option<i64>,
        pub created_at: DateTime<Utc>,
    }

    #[derive(Serialize, ToSchema)]
    pub struct PeerCertificateUpload {
        /// A peer domain, for domain-bound certificates (give this or `address`).
        #[schema(example = "direct.peer.example.com")]
        pub domain: Option<String>,
        /// A peer address, for address-bound certificates (give this or `domain`).
        #[schema(example = "dr.who@direct.peer.example.com")]
        pub address: Option<String>,
        /// One or more PEM certificates, each bound to the domain or address.
        pub pem: String,
    }

    /// A certificate configured for a peer that publishes none in DNS.
    #[derive(Serialize, ToSchema)]
    pub struct PeerCertificate {
        pub id: i64,
        pub domain: String,
        /// The address it is for; null for the whole domain.
        pub address: Option<String>,
        pub fingerprint: String,
        pub subject: String,
        pub not_after: DateTime<Utc>,
        pub created_at: DateTime<Utc>,
    }

    #[derive(Serialize, ToSchema)]
    pub struct SubscriberRequest {
        /// An http(s) URL; HL7 v3 notifications are POSTed to it as `application/hl7-v3+xml`.
        #[schema(example = "https://tracker.hospital.example.org/hl7v3")]
        pub url: String,
        /// The credentials the gateway presents to it; none by default.
        pub auth: Option<EndpointAuth>,
    }

    /// A system told of every change to a registry organization.
    #[derive(Serialize, ToSchema)]
    pub struct Hl7Subscriber {
        pub id: uuid::Uuid,
        pub url: String,
        /// `sealed` when credentials are kept (never shown), else `none`.
        pub auth: String,
        pub created_at: DateTime<Utc>,
    }

    #[derive(Serialize, ToSchema)]
    pub struct BundleRequest {
        #[schema(example = "direct.clinic.example.org")]
        pub domain: String,
        /// An http(s) URL of a PKCS#7 file (DER or PEM) of CA certificates.
        #[schema(example = "https://bundles.directtrust.org/bundles/accreditedCommunity.p7b")]
        pub url: String,
    }

    /// A trust bundle of a domain.
    #[derive(Serialize, ToSchema)]
    pub struct TrustBundle {
        pub id: i64,
        pub domain: String,
        pub url: String,
        pub created_at: DateTime<Utc>,
        /// The last successful fetch.
        pub refreshed_at: Option<DateTime<Utc>>,
        /// Why the last fetch failed; the anchors of the last good fetch stay in force.
        pub last_error: Option<String>,
        pub last_error_at: Option<DateTime<Utc>>,
        /// When the refresh job fetches it next.
        pub next_due: DateTime<Utc>,
        /// How many anchors it gives now.
        pub anchors: i64,
    }

    // -- credentialing --

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct CredentialingReceived {
        /// The stored event (the first one, for a repeated `X-TraceId`).
        pub event_id: Uuid,
        /// True when the trace id was seen before: nothing was stored or processed again.
        pub duplicate: bool,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct CredentialingSourceRequest {
        #[schema(example = "Verifiable production")]
        pub name: String,
        /// The id the credentialing service gave the webhook; it sends it as `X-WebhookId`.
        pub webhook_id: Uuid,
        /// What it sends as `X-Secret` (16–512 characters); generated and returned once when
        /// absent. Stored argon2id-hashed.
        pub secret: Option<String>,
        /// The event types it sends; all 13 when absent or empty.
        #[schema(example = json!(["LicenseExpired", "LicenseChanged"]))]
        pub event_types: Option<Vec<String>>,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct CredentialingSource {
        pub id: Uuid,
        pub name: String,
        pub webhook_id: Uuid,
        pub event_types: Vec<String>,
        /// `active` or `disabled`.
        pub status: String,
        pub created_at: DateTime<Utc>,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct NewCredentialingSource {
        pub id: Uuid,
        pub name: String,
        pub webhook_id: Uuid,
        pub event_types: Vec<String>,
        pub status: String,
        pub created_at: DateTime<Utc>,
        /// Only when generated: shown this once.
        pub secret: Option<String>,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct CredentialingFact {
        pub provider_id: Uuid,
        /// `license:<id>`, `scan:<dataset>`, `provider`, `credentialing-request:<id>`.
        pub key: String,
        /// `good`, `warning` or `restricted`.
        pub effect: String,
        #[schema(example = "license-expired")]
        pub reason: String,
        pub occurred_at: DateTime<Utc>,
        pub event_id: Uuid,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct StandingChange {
        pub old: String,
        pub new: String,
        pub reason: String,
        /// The event that caused the change (null when an ops link did, with no fact).
        pub event_id: Option<Uuid>,
        pub at: DateTime<Utc>,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct AffectedAddress {
        pub address: String,
        /// `active`, `suspended` (by credentialing) or `disabled` (by ops).
        pub status: String,
        pub suspension_reason: Option<String>,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct TimelineEvent {
        pub event_id: Uuid,
        pub event_type: String,
        pub trace_id: String,
        pub provider_id: Option<Uuid>,
        pub occurred_at: DateTime<Utc>,
        pub received_at: DateTime<Utc>,
        pub processed: bool,
        /// The body as stored: without SSNs, dates of birth or screenshots.
        #[schema(value_type = Object)]
        pub payload: serde_json::Value,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct IndividualStanding {
        pub idp_id: i64,
        /// `good`, `warning` or `restricted`.
        pub standing: String,
        #[schema(example = "license-expired")]
        pub reason: String,
        pub changed_at: Option<DateTime<Utc>>,
        /// The credentialing service's providers linked to this individual.
        pub providers: Vec<Uuid>,
        /// The latest fact of each kind.
        pub facts: Vec<CredentialingFact>,
        /// Changes of standing, newest first.
        pub changes: Vec<StandingChange>,
        /// The individual's Direct addresses.
        pub addresses: Vec<AffectedAddress>,
        /// Events of its providers, newest first (200 at most), redacted.
        pub timeline: Vec<TimelineEvent>,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct StandingSummary {
        pub idp_id: i64,
        pub standing: String,
        pub reason: String,
        pub event_id: Option<Uuid>,
        pub changed_at: DateTime<Utc>,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct UnlinkedProvider {
        pub provider_id: Uuid,
        pub npi: Option<String>,
        pub first_name: Option<String>,
        pub last_name: Option<String>,
        pub first_seen_at: DateTime<Utc>,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct LinkProviderRequest {
        #[schema(example = 8001)]
        pub idp_id: i64,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct NotifiedAddress {
        pub address: String,
        pub status: String,
    }

    /// What ops are POSTed when an individual's standing changes.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct CredentialingStandingChanged {
        #[schema(example = "credentialing.standing.changed")]
        pub r#type: String,
        pub idp_id: i64,
        pub old: String,
        pub new: String,
        pub reason: String,
        pub event_id: Option<Uuid>,
        pub event_type: Option<String>,
        pub at: DateTime<Utc>,
        pub addresses: Vec<NotifiedAddress>,
        /// The resellers owning the organizations of those addresses.
        pub resellers: Vec<Uuid>,
    }
}

// ---- operations ------------------------------------------------------------------------------

/// Documentation-only stubs: one per route and method, never called.
mod operations {
    #![allow(dead_code)]

    use super::TAG_CREDENTIALING;
    use super::TAG_HL7;
    use super::schemas::*;
    use super::{
        TAG_ACCOUNTS, TAG_CERTIFICATES, TAG_CLIENTS, TAG_DOCS, TAG_HEALTH, TAG_MESSAGING,
        TAG_MESSAGING_OPS, TAG_OAUTH, TAG_PKI, TAG_SOAP, TAG_TRANSPORT, TAG_TRUST, TAG_VENDOR,
        TAG_WEBHOOKS,
    };

    // -- messaging --

    /// Send a Direct message
    ///
    /// Validates the message, checks that the sender is an active address of an activated
    /// organization granted to the calling vendor, builds the MIME message (raw attachments, or
    /// one XDM package when `xdm` is true) and commits it with its recipients before answering.
    /// Delivery then proceeds in the background; follow it with `GET /MessagingAPI/dirmsg/status`
    /// or the delivery status notifications webhook. The body limit of this route is the
    /// messaging limit, larger than the general one.
    #[utoipa::path(
        post,
        path = "/MessagingAPI/dirmsg/send_ccda",
        tag = TAG_MESSAGING,
        request_body(content = SendCcdaRequest, content_type = "application/json"),
        responses(
            (status = 200, description = "Accepted (also the reply to a repeat of the same request).", body = SendReply),
            (status = 400, description = "The body is not JSON (`malformed`) or a field is invalid (`invalid`, with `field`: `fromDirectAddress`, `toDirectAddress`, `messageId`, `emailAttachmentList`, `attachmentClass`, `attachmentContent`, `attachmentTitle`, `attachmentFileName`, `xdm`, `xdmFileName`, `asmEnabled`, `patientDOB` or another metadata field; `body` when it is not an object).", body = ErrorBody),
            (status = 403, description = "Not a vendor client, or `fromDirectAddress` is not an address this vendor may send from, is disabled, or its organization is not activated.", body = ErrorBody),
            (status = 409, description = "`messageId` was already used for a different message.", body = ErrorBody),
        ),
        security(("basicAuth" = []), ("oauth2" = []))
    )]
    pub fn send_ccda() {}

    /// Delivery status of a sent message
    ///
    /// One object when the message has one recipient, an array when it has several.
    #[utoipa::path(
        get,
        path = "/MessagingAPI/dirmsg/status",
        tag = TAG_MESSAGING,
        params(
            ("xdMsgId" = String, Query, description = "The `messageId` of the send request."),
            ("fromDirectAddress" = String, Query, description = "The sending address."),
        ),
        responses(
            (status = 200, description = "The status of each recipient.", body = StatusReply),
            (status = 400, description = "`xdMsgId` or `fromDirectAddress` is missing (`invalid`, with `field`).", body = ErrorBody),
            (status = 403, description = "Not a vendor client.", body = ErrorBody),
            (status = 404, description = "No such message from that address sent by this client (another client's message is answered the same way).", body = ErrorBody),
        ),
        security(("basicAuth" = []), ("oauth2" = []))
    )]
    pub fn message_status() {}

    /// List sent messages
    ///
    /// The calling vendor's sent messages, one item per recipient, filtered and paged.
    #[utoipa::path(
        get,
        path = "/MessagingAPI/dirmsg/messages",
        tag = TAG_MESSAGING,
        params(
            ("from" = Option<String>, Query, description = "Sent at or after: `YYYY-MM-DD` (midnight UTC) or RFC 3339."),
            ("until" = Option<String>, Query, description = "Sent before: `YYYY-MM-DD` (midnight UTC) or RFC 3339."),
            ("status" = Option<MessageStatus>, Query, description = "Only recipients in this status (case-insensitive)."),
            ("sender" = Option<String>, Query, description = "Only messages from this address."),
            ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size, 1 to 1000; default 100."),
            ("offset" = Option<i64>, Query, minimum = 0, description = "Items to skip; default 0."),
        ),
        responses(
            (status = 200, description = "A page of recipients' statuses.", body = MessageListing),
            (status = 400, description = "A parameter is invalid (`invalid`, with `field`: `from`, `until`, `status`, `limit` or `offset`) or not a number (`malformed`).", body = ErrorBody),
            (status = 403, description = "Not a vendor client.", body = ErrorBody),
        ),
        security(("basicAuth" = []), ("oauth2" = []))
    )]
    pub fn list_messages() {}

    /// List a pull mailbox
    ///
    /// Messages for an address with no `inboundUrl` wait here (PROCESSED) until acknowledged.
    /// With `wait`, an empty mailbox answers as soon as a message arrives, or empty when the
    /// wait ends. Messages unacknowledged after `messaging.mailbox_hold` (default 7 days)
    /// become FAILED `9008: ERROR=NotRetrieved`.
    #[utoipa::path(
        get,
        path = "/MessagingAPI/dirmsg/inbox",
        tag = TAG_MESSAGING,
        params(
            ("address" = String, Query, description = "One of the vendor's addresses."),
            ("after" = Option<i64>, Query, minimum = 0, description = "Only ids above this (the previous page's `next`); default 0."),
            ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "Page size, 1 to 100; default 100."),
            ("wait" = Option<String>, Query, description = "Long poll: wait up to this long (`30s`, at most `60s`) for a message when none is waiting."),
        ),
        responses(
            (status = 200, description = "The waiting messages, oldest first.", body = Inbox),
            (status = 400, description = "A parameter is invalid (`invalid`, with `field`: `address`, `after`, `limit` or `wait`).", body = ErrorBody),
            (status = 403, description = "Not a vendor client.", body = ErrorBody),
            (status = 404, description = "The address is not among the vendor's addresses.", body = ErrorBody),
        ),
        security(("basicAuth" = []), ("oauth2" = []))
    )]
    pub fn list_inbox() {}

    /// Fetch a waiting message
    ///
    /// The message in the inbound JSON of a push (the address's `inboundShape` and
    /// `xdmDelivery` if it has an endpoint registration, else `flat` and `zip`).
    #[utoipa::path(
        get,
        path = "/MessagingAPI/dirmsg/inbox/{id}",
        tag = TAG_MESSAGING,
        params(("id" = i64, Path, description = "The mailbox id from the listing.")),
        responses(
            (status = 200, description = "The message.", body = InboundMessage),
            (status = 403, description = "Not a vendor client.", body = ErrorBody),
            (status = 404, description = "No such message in the vendor's mailboxes (another vendor's is answered the same way).", body = ErrorBody),
            (status = 409, description = "The message has left the mailbox (acknowledged or expired).", body = ErrorBody),
        ),
        security(("basicAuth" = []), ("oauth2" = []))
    )]
    pub fn fetch_inbox_message() {}

    /// Acknowledge a waiting message
    ///
    /// Takes the message out of the mailbox: the sender's recipient becomes DISPATCHED (and the
    /// sender is notified if it asked for final delivery). Acknowledging again answers the same.
    #[utoipa::path(
        post,
        path = "/MessagingAPI/dirmsg/inbox/{id}/acknowledge",
        tag = TAG_MESSAGING,
        params(("id" = i64, Path, description = "The mailbox id from the listing.")),
        responses(
            (status = 200, description = "Acknowledged.", body = Acknowledged),
            (status = 403, description = "Not a vendor client.", body = ErrorBody),
            (status = 404, description = "No such message in the vendor's mailboxes.", body = ErrorBody),
            (status = 409, description = "The message expired (FAILED) before it was acknowledged.", body = ErrorBody),
        ),
        security(("basicAuth" = []), ("oauth2" = []))
    )]
    pub fn acknowledge_inbox_message() {}

    /// Report a read receipt
    ///
    /// The receiving side reports that a message one of its addresses received was displayed.
    /// The sender's recipient becomes DISPLAYED (only from DISPATCHED) and the sender gets a
    /// `displayed` notification. Reporting again answers the same.
    #[utoipa::path(
        post,
        path = "/MessagingAPI/dirmsg/receipt",
        tag = TAG_MESSAGING,
        request_body(content = ReceiptRequest, content_type = "application/json"),
        responses(
            (status = 200, description = "Recorded.", body = ReceiptReply),
            (status = 400, description = "A field is missing or invalid (`invalid`, with `field`: `messageId`, `fromDirectAddress`, `toDirectAddress` or `disposition`), or the body is not JSON (`malformed`).", body = ErrorBody),
            (status = 403, description = "Not a vendor client.", body = ErrorBody),
            (status = 404, description = "No such message received by that address of the vendor.", body = ErrorBody),
            (status = 409, description = "The message is not DISPATCHED (not yet delivered, or failed).", body = ErrorBody),
        ),
        security(("basicAuth" = []), ("oauth2" = []))
    )]
    pub fn read_receipt() {}

    // -- OAuth2 --

    /// Get a Bearer token
    ///
    /// OAuth2 client credentials grant (RFC 6749 §4.4) for vendor clients. Errors use the RFC
    /// 6749 body, not the gateway's error body.
    #[utoipa::path(
        post,
        path = "/oauth2/token",
        tag = TAG_OAUTH,
        request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
        responses(
            (status = 200, description = "A token.", body = TokenResponse,
                headers(("Cache-Control" = String, description = "`no-store`"))),
            (status = 400, description = "Not a form (`invalid_request`), a grant type other than `client_credentials` (`unsupported_grant_type`), or not a vendor client (`unauthorized_client`).", body = OAuthError),
            (status = 401, description = "Missing credentials, or unknown client or wrong secret (`invalid_client`).", body = OAuthError,
                headers(("WWW-Authenticate" = String, description = "`Basic realm=\"hisp-gateway\"`"))),
            (status = 429, description = "Too many failed authentications from this address or for this client id (`too_many_requests`, the gateway's error body).", body = ErrorBody,
                headers(("Retry-After" = u64, description = "Seconds to wait."))),
        ),
        security(("basicAuth" = []), ())
    )]
    pub fn oauth2_token() {}

    // -- vendor set-up --

    /// Get an address's endpoints
    #[utoipa::path(
        get,
        path = "/api/v1/messaging/endpoints/{address}",
        tag = TAG_VENDOR,
        params(("address" = String, Path, description = "A Direct address of an organization granted to the vendor.", example = "john@direct.clinic.example.org")),
        responses(
            (status = 200, description = "The registration.", body = EndpointView),
            (status = 403, description = "Not a vendor client.", body = ErrorBody),
            (status = 404, description = "No endpoints registered for the address, or the address is not one of an organization granted to the vendor (answered alike).", body = ErrorBody),
            (status = 400, description = "The address is not a Direct address (`invalid`, `field`).", body = ErrorBody),
        ),
        security(("basicAuth" = []), ("oauth2" = []))
    )]
    pub fn get_endpoint() {}

    /// Register an address's endpoints
    ///
    /// Replaces the address's registration: where inbound messages and delivery status
    /// notifications are POSTed, and with which credentials.
    #[utoipa::path(
        put,
        path = "/api/v1/messaging/endpoints/{address}",
        tag = TAG_VENDOR,
        params(("address" = String, Path, description = "A Direct address of an organization granted to the vendor.", example = "john@direct.clinic.example.org")),
        request_body(content = EndpointRequest, content_type = "application/json"),
        responses(
            (status = 200, description = "The registration as stored.", body = EndpointView),
            (status = 400, description = "The body is not JSON of this shape, or has unknown fields (`malformed`); or a field is invalid (`invalid`, with `field`: `inboundUrl`, `dsnUrl`, `inboundAuth`, `dsnAuth`, `inboundShape`, `xdmDelivery`). A URL whose written address is loopback, private, link-local or otherwise not public, or a `localhost` name, is invalid. Or: The address is not a Direct address (`invalid`, `field`).", body = ErrorBody),
            (status = 403, description = "Not a vendor client.", body = ErrorBody),
            (status = 404, description = "The address is not one of an organization granted to the vendor (answered like an unknown address).", body = ErrorBody),
        ),
        security(("basicAuth" = []), ("oauth2" = []))
    )]
    pub fn put_endpoint() {}

    /// Get the webhook signing secret
    ///
    /// The vendor's Standard Webhooks secret, made on first use; delivery status notifications
    /// are signed with it.
    #[utoipa::path(
        get,
        path = "/api/v1/messaging/signing-secret",
        tag = TAG_VENDOR,
        responses(
            (status = 200, description = "The secret.", body = SigningSecret),
            (status = 403, description = "Not a vendor client.", body = ErrorBody),
        ),
        security(("basicAuth" = []), ("oauth2" = []))
    )]
    pub fn get_signing_secret() {}

    /// Rotate the webhook signing secret
    ///
    /// Replaces the secret; notifications from now on are signed with the new one.
    #[utoipa::path(
        post,
        path = "/api/v1/messaging/signing-secret/rotate",
        tag = TAG_VENDOR,
        responses(
            (status = 200, description = "The new secret.", body = SigningSecret),
            (status = 403, description = "Not a vendor client.", body = ErrorBody),
        ),
        security(("basicAuth" = []), ("oauth2" = []))
    )]
    pub fn rotate_signing_secret() {}

    // -- messaging administration --

    /// List grants
    #[utoipa::path(
        get,
        path = "/api/v1/messaging/grants",
        tag = TAG_MESSAGING_OPS,
        params(("clientId" = Option<uuid::Uuid>, Query, description = "Only this vendor's grants.")),
        responses(
            (status = 200, description = "The grants.", body = Vec<Grant>),
            (status = 400, description = "`clientId` is not a UUID (`malformed`).", body = ErrorBody),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn list_grants() {}

    /// Grant a vendor an organization
    ///
    /// The vendor may then send from and register endpoints for the organization's addresses.
    /// Idempotent.
    #[utoipa::path(
        post,
        path = "/api/v1/messaging/grants",
        tag = TAG_MESSAGING_OPS,
        request_body(content = GrantRequest, content_type = "application/json"),
        responses(
            (status = 201, description = "The grant.", body = Grant),
            (status = 400, description = "The body is not JSON of this shape (`malformed`). Or: The client is not a vendor (`invalid`, `field` = `clientId`).", body = ErrorBody),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
            (status = 404, description = "No such client, or no organization with that domain.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn create_grant() {}

    /// Revoke a grant
    #[utoipa::path(
        delete,
        path = "/api/v1/messaging/grants/{client_id}/{domain}",
        tag = TAG_MESSAGING_OPS,
        params(
            ("client_id" = uuid::Uuid, Path, description = "The vendor client.", example = "00000000-0000-0000-0000-000000000000"),
            ("domain" = String, Path, description = "The organization's domain.", example = "direct.clinic.example.org"),
        ),
        responses(
            (status = 204, description = "Revoked."),
            (status = 400, description = "`client_id` is not a UUID (`malformed`).", body = ErrorBody),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
            (status = 404, description = "No such organization, or no such grant.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn delete_grant() {}

    /// Enable or disable an address
    ///
    /// A disabled address may not send.
    #[utoipa::path(
        put,
        path = "/api/v1/addresses/{address}/status",
        tag = TAG_MESSAGING_OPS,
        params(("address" = String, Path, description = "A hosted Direct address.", example = "john@direct.clinic.example.org")),
        request_body(content = AddressStatusRequest, content_type = "application/json"),
        responses(
            (status = 204, description = "Done."),
            (status = 400, description = "The body is not JSON of this shape (`malformed`). Or: `status` is not `active` or `disabled`, or the address is not a Direct address (`invalid`, `field`).", body = ErrorBody),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
            (status = 404, description = "The address is not hosted here.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn put_address_status() {}

    /// Message status report
    ///
    /// The messages of a day, week or month with their delivery status: the rows the SOAP
    /// report operations return, as JSON or CSV (same columns).
    #[utoipa::path(
        get,
        path = "/api/v1/reports/messages",
        tag = TAG_MESSAGING_OPS,
        params(
            ("period" = Option<String>, Query, description = "`daily` (default), `weekly` or `monthly`."),
            ("date" = Option<String>, Query, description = "A day of the period, `YYYY-MM-DD`; default today (UTC)."),
            ("format" = Option<String>, Query, description = "`json` (default) or `csv`."),
            ("domain" = Option<String>, Query, description = "Only messages of this organization's domain."),
            ("resellerId" = Option<uuid::Uuid>, Query, description = "Only messages of this reseller's organizations."),
        ),
        responses(
            (status = 200, description = "The report.", content(
                (Vec<ReportRow> = "application/json"),
                (String = "text/csv"),
            )),
            (status = 400, description = "A parameter is invalid (`invalid`, with `field`: `period`, `date` or `format`) or `resellerId` is not a UUID (`malformed`).", body = ErrorBody),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn message_report() {}

    /// Inbound Direct mail
    ///
    /// Mail other HISPs handed to our SMTP listener, newest first, with its outcome: accepted
    /// (delivered, or an MDN that was applied) or rejected with the reason (`code: detail`,
    /// e.g. `untrusted-signer: …`, `bad-signature: …`). A rejected sender is told nothing.
    #[utoipa::path(
        get,
        path = "/api/v1/transport/inbound",
        tag = TAG_TRANSPORT,
        params(
            ("state" = Option<String>, Query, description = "Only `received`, `accepted` or `rejected` mail."),
            ("limit" = Option<i64>, Query, description = "At most this many, 1 to 500; default 100."),
        ),
        responses(
            (status = 200, description = "The mail, without its bytes.", body = Vec<InboundMail>),
            (status = 400, description = "`state` or `limit` is invalid (`invalid`, with `field`).", body = ErrorBody),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn list_inbound_mail() {}

    // -- clients --

    /// Who am I
    ///
    /// The authenticated client, of any kind.
    #[utoipa::path(
        get,
        path = "/api/v1/whoami",
        tag = TAG_CLIENTS,
        responses((status = 200, description = "The caller.", body = Client)),
        security(("basicAuth" = []))
    )]
    pub fn whoami() {}

    /// List API clients
    #[utoipa::path(
        get,
        path = "/api/v1/clients",
        tag = TAG_CLIENTS,
        responses(
            (status = 200, description = "Every client.", body = Vec<Client>),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn list_clients() {}

    /// Create an API client
    #[utoipa::path(
        post,
        path = "/api/v1/clients",
        tag = TAG_CLIENTS,
        request_body(content = CreateClientRequest, content_type = "application/json"),
        responses(
            (status = 201, description = "The client, with its secret (shown this once).", body = CreatedClient),
            (status = 400, description = "The body is not JSON of this shape (`malformed`). Or: Unknown `kind` or invalid `name` (`invalid`, with `field`).", body = ErrorBody),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn create_client() {}

    /// Disable an API client
    #[utoipa::path(
        post,
        path = "/api/v1/clients/{id}/disable",
        tag = TAG_CLIENTS,
        params(("id" = uuid::Uuid, Path, description = "The client.", example = "00000000-0000-0000-0000-000000000000")),
        responses(
            (status = 200, description = "The client, now disabled.", body = Client),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
            (status = 404, description = "No such client.", body = ErrorBody),
            (status = 400, description = "`id` is not a UUID (`invalid`, `field` = `id`).", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn disable_client() {}

    // -- accounts --

    /// A reseller's account and ledger
    #[utoipa::path(
        get,
        path = "/api/v1/accounts/{reseller_id}",
        tag = TAG_ACCOUNTS,
        params(("reseller_id" = uuid::Uuid, Path, description = "The reseller client.", example = "00000000-0000-0000-0000-000000000000")),
        responses(
            (status = 200, description = "The account (zero balance if never credited).", body = Account),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
            (status = 404, description = "No such client.", body = ErrorBody),
            (status = 400, description = "`reseller_id` is not a UUID or not a reseller (`invalid`, `field` = `reseller_id`).", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn get_account() {}

    /// Credit a reseller's account
    ///
    /// Opens the account on first credit.
    #[utoipa::path(
        post,
        path = "/api/v1/accounts/{reseller_id}/credits",
        tag = TAG_ACCOUNTS,
        params(("reseller_id" = uuid::Uuid, Path, description = "The reseller client.", example = "00000000-0000-0000-0000-000000000000")),
        request_body(content = CreditRequest, content_type = "application/json"),
        responses(
            (status = 200, description = "The account after the credit.", body = Account),
            (status = 400, description = "The body is not JSON of this shape (`malformed`). Or: `amount` is not a positive dollar amount, or `reseller_id` is not a UUID or not a reseller (`invalid`, with `field`).", body = ErrorBody),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
            (status = 404, description = "No such client.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn credit_account() {}

    /// Hold a reseller's captures
    ///
    /// Orders needing a capture are refused until the hold is released.
    #[utoipa::path(
        put,
        path = "/api/v1/accounts/{reseller_id}/hold",
        tag = TAG_ACCOUNTS,
        params(("reseller_id" = uuid::Uuid, Path, description = "The reseller client.", example = "00000000-0000-0000-0000-000000000000")),
        responses(
            (status = 200, description = "The account, on hold.", body = Account),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
            (status = 404, description = "No such client.", body = ErrorBody),
            (status = 400, description = "`reseller_id` is not a UUID or not a reseller (`invalid`, `field` = `reseller_id`).", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn put_hold() {}

    /// Release a reseller's hold
    #[utoipa::path(
        delete,
        path = "/api/v1/accounts/{reseller_id}/hold",
        tag = TAG_ACCOUNTS,
        params(("reseller_id" = uuid::Uuid, Path, description = "The reseller client.", example = "00000000-0000-0000-0000-000000000000")),
        responses(
            (status = 200, description = "The account, no longer on hold.", body = Account),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
            (status = 404, description = "No such client.", body = ErrorBody),
            (status = 400, description = "`reseller_id` is not a UUID or not a reseller (`invalid`, `field` = `reseller_id`).", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn release_hold() {}

    // -- certificates --

    /// List certificates
    #[utoipa::path(
        get,
        path = "/api/v1/certificates",
        tag = TAG_CERTIFICATES,
        params(
            ("organization" = Option<String>, Query, description = "Only this organization's (by domain)."),
            ("address" = Option<String>, Query, description = "Only certificates bound to this subject (Direct address or domain)."),
        ),
        responses(
            (status = 200, description = "The certificates.", body = Vec<CertificateRecord>),
            (status = 400, description = "An unknown query parameter (`malformed`).", body = ErrorBody),
            (status = 403, description = "Not an ops or officer client.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn list_certificates() {}

    /// Get a certificate
    #[utoipa::path(
        get,
        path = "/api/v1/certificates/{serial}",
        tag = TAG_CERTIFICATES,
        params(("serial" = String, Path, description = "Serial number in hex (`0x`, colons, case and leading zeros are ignored).", example = "01")),
        responses(
            (status = 200, description = "The certificate's record.", body = CertificateRecord),
            (status = 403, description = "Not an ops or officer client.", body = ErrorBody),
            (status = 404, description = "No issued certificate with that serial.", body = ErrorBody),
            (status = 400, description = "`serial` is not hex (`invalid`, `field` = `serial`).", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn get_certificate() {}

    /// Download a certificate (PEM)
    #[utoipa::path(
        get,
        path = "/api/v1/certificates/{serial}/pem",
        tag = TAG_CERTIFICATES,
        params(("serial" = String, Path, description = "Serial number in hex.", example = "01")),
        responses(
            (status = 200, description = "The certificate, PEM.", content(("application/x-pem-file"))),
            (status = 403, description = "Not an ops or officer client.", body = ErrorBody),
            (status = 404, description = "No issued certificate with that serial.", body = ErrorBody),
            (status = 400, description = "`serial` is not hex (`invalid`, `field` = `serial`).", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn get_certificate_pem() {}

    /// Download a certificate (DER)
    #[utoipa::path(
        get,
        path = "/api/v1/certificates/{serial}/der",
        tag = TAG_CERTIFICATES,
        params(("serial" = String, Path, description = "Serial number in hex.", example = "01")),
        responses(
            (status = 200, description = "The certificate, DER.", content(("application/pkix-cert"))),
            (status = 403, description = "Not an ops or officer client.", body = ErrorBody),
            (status = 404, description = "No issued certificate with that serial.", body = ErrorBody),
            (status = 400, description = "`serial` is not hex (`invalid`, `field` = `serial`).", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn get_certificate_der() {}

    /// Revoke a certificate
    ///
    /// Revokes a live certificate and re-publishes its issuer's CRL. Revoking an
    /// organization's last live domain certificate marks the organization certificate-revoked.
    #[utoipa::path(
        post,
        path = "/api/v1/certificates/{serial}/revoke",
        tag = TAG_CERTIFICATES,
        params(("serial" = String, Path, description = "Serial number in hex.", example = "01")),
        request_body(content = RevokeRequest, content_type = "application/json"),
        responses(
            (status = 200, description = "The certificate's record, revoked.", body = CertificateRecord),
            (status = 400, description = "The body is not JSON of this shape (`malformed`). Or: `serial` is not hex or `reason` is unknown (`invalid`, with `field`).", body = ErrorBody),
            (status = 403, description = "Not an ops or officer client.", body = ErrorBody),
            (status = 404, description = "No certificate with that serial.", body = ErrorBody),
            (status = 409, description = "The certificate is not live (already revoked or expired).", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn revoke_certificate() {}

    /// Export a certificate with its private key (PKCS#12)
    ///
    /// Ops only; the file is encrypted under the given password, and the export is audited.
    #[utoipa::path(
        post,
        path = "/api/v1/certificates/{serial}/pkcs12",
        tag = TAG_CERTIFICATES,
        params(("serial" = String, Path, description = "Serial number in hex.", example = "01")),
        request_body(content = Pkcs12Request, content_type = "application/json"),
        responses(
            (status = 200, description = "The certificate, its key and the CA chain.", content(("application/x-pkcs12"))),
            (status = 400, description = "The body is not JSON of this shape (`malformed`). Or: `serial` is not hex or `password` is shorter than 8 characters (`invalid`, with `field`).", body = ErrorBody),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
            (status = 404, description = "No issued certificate with that serial, or its key is not held here.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn export_pkcs12() {}

    // -- trust --

    /// Add trust anchors
    ///
    /// Every CA certificate of the PEM becomes an anchor of the domain, taking effect on the
    /// next message. Certificates the domain has already are skipped. Audited.
    #[utoipa::path(
        post,
        path = "/api/v1/trust/anchors",
        tag = TAG_TRUST,
        request_body(content = AnchorUpload, content_type = "application/json"),
        responses(
            (status = 201, description = "The anchors added.", body = Vec<TrustAnchor>),
            (status = 400, description = "Not JSON of this shape (`malformed`); a bad domain (`invalid`, `field` = `domain`); no readable PEM certificate, more than 500, or one that is not a CA (`invalid`, `field` = `pem`).", body = ErrorBody),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn add_trust_anchors() {}

    /// List trust anchors
    ///
    /// Uploaded and bundle anchors. Our own CA's root is an anchor of every hosted domain
    /// besides these (see `/pki/anchors.pem`).
    #[utoipa::path(
        get,
        path = "/api/v1/trust/anchors",
        tag = TAG_TRUST,
        params(("domain" = Option<String>, Query, description = "Only this domain's.")),
        responses(
            (status = 200, description = "The anchors.", body = Vec<TrustAnchor>),
            (status = 400, description = "An unknown query parameter (`malformed`) or a bad domain (`invalid`).", body = ErrorBody),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn list_trust_anchors() {}

    /// Remove a trust anchor
    ///
    /// Takes effect on the next message. Audited.
    #[utoipa::path(
        delete,
        path = "/api/v1/trust/anchors/{id}",
        tag = TAG_TRUST,
        params(("id" = i64, Path, description = "The anchor's id.")),
        responses(
            (status = 200, description = "The anchor removed.", body = TrustAnchor),
            (status = 400, description = "`id` is not a number (`malformed`).", body = ErrorBody),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
            (status = 404, description = "No such anchor.", body = ErrorBody),
            (status = 409, description = "The anchor comes from a trust bundle: remove the bundle instead.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn remove_trust_anchor() {}

    /// Add peer certificates
    ///
    /// Encryption certificates of a peer domain or address that publishes none in DNS. They
    /// are used only when they chain to the sending domain's anchors. Audited.
    #[utoipa::path(
        post,
        path = "/api/v1/trust/peer-certificates",
        tag = TAG_TRUST,
        request_body(content = PeerCertificateUpload, content_type = "application/json"),
        responses(
            (status = 201, description = "The certificates added.", body = Vec<PeerCertificate>),
            (status = 400, description = "Not JSON of this shape (`malformed`); neither or both of domain and address (`invalid`, `field` = `domain`); a bad address (`invalid`, `field` = `address`); no readable PEM certificate, or one not bound to the domain or address (`invalid`, `field` = `pem`).", body = ErrorBody),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn add_peer_certificates() {}

    /// List peer certificates
    #[utoipa::path(
        get,
        path = "/api/v1/trust/peer-certificates",
        tag = TAG_TRUST,
        params(("domain" = Option<String>, Query, description = "Only this peer domain's.")),
        responses(
            (status = 200, description = "The peer certificates.", body = Vec<PeerCertificate>),
            (status = 400, description = "An unknown query parameter (`malformed`) or a bad domain (`invalid`).", body = ErrorBody),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn list_peer_certificates() {}

    /// Remove a peer certificate
    #[utoipa::path(
        delete,
        path = "/api/v1/trust/peer-certificates/{id}",
        tag = TAG_TRUST,
        params(("id" = i64, Path, description = "The peer certificate's id.")),
        responses(
            (status = 200, description = "The certificate removed.", body = PeerCertificate),
            (status = 400, description = "`id` is not a number (`malformed`).", body = ErrorBody),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
            (status = 404, description = "No such peer certificate.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn remove_peer_certificate() {}

    /// Add a trust bundle
    ///
    /// The bundle is fetched at once (through the egress guard, within `trust.fetch_timeout`
    /// and `trust.max_fetch_bytes`) and again every `trust.bundle_refresh_interval`; each
    /// successful fetch replaces its anchors in one transaction. A failed fetch keeps the
    /// previous anchors and shows its error in `last_error`. Audited.
    #[utoipa::path(
        post,
        path = "/api/v1/trust/bundles",
        tag = TAG_TRUST,
        request_body(content = BundleRequest, content_type = "application/json"),
        responses(
            (status = 201, description = "The bundle, after its first fetch (see `last_error`).", body = TrustBundle),
            (status = 400, description = "Not JSON of this shape (`malformed`); a bad domain (`invalid`, `field` = `domain`); not an http(s) URL, or one the egress guard refuses (`invalid`, `field` = `url`).", body = ErrorBody),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
            (status = 409, description = "The domain has this bundle URL already.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn add_trust_bundle() {}

    /// List trust bundles
    #[utoipa::path(
        get,
        path = "/api/v1/trust/bundles",
        tag = TAG_TRUST,
        params(("domain" = Option<String>, Query, description = "Only this domain's.")),
        responses(
            (status = 200, description = "The bundles.", body = Vec<TrustBundle>),
            (status = 400, description = "An unknown query parameter (`malformed`) or a bad domain (`invalid`).", body = ErrorBody),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn list_trust_bundles() {}

    /// Remove a trust bundle
    ///
    /// Its anchors go with it. Audited.
    #[utoipa::path(
        delete,
        path = "/api/v1/trust/bundles/{id}",
        tag = TAG_TRUST,
        params(("id" = i64, Path, description = "The bundle's id.")),
        responses(
            (status = 200, description = "The bundle removed.", body = TrustBundle),
            (status = 400, description = "`id` is not a number (`malformed`).", body = ErrorBody),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
            (status = 404, description = "No such bundle.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn remove_trust_bundle() {}

    /// Refresh a trust bundle now
    #[utoipa::path(
        post,
        path = "/api/v1/trust/bundles/{id}/refresh",
        tag = TAG_TRUST,
        params(("id" = i64, Path, description = "The bundle's id.")),
        responses(
            (status = 200, description = "The bundle after the fetch: `refreshed_at` and `anchors` when it succeeded, `last_error` when it failed (the previous anchors then stay).", body = TrustBundle),
            (status = 400, description = "`id` is not a number (`malformed`).", body = ErrorBody),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
            (status = 404, description = "No such bundle.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn refresh_trust_bundle() {}

    // -- public PKI --

    /// Root CA certificate (DER)
    #[utoipa::path(
        get,
        path = "/pki/root.crt",
        tag = TAG_PKI,
        responses(
            (status = 200, description = "The root CA certificate.", content(("application/pkix-cert"))),
            (status = 404, description = "No root CA is set up.", body = ErrorBody),
        )
    )]
    pub fn root_certificate_der() {}

    /// Root CA certificate (PEM)
    #[utoipa::path(
        get,
        path = "/pki/root.pem",
        tag = TAG_PKI,
        responses(
            (status = 200, description = "The root CA certificate.", content(("application/x-pem-file"))),
            (status = 404, description = "No root CA is set up.", body = ErrorBody),
        )
    )]
    pub fn root_certificate_pem() {}

    /// Issuing CA certificate (DER)
    #[utoipa::path(
        get,
        path = "/pki/issuing.crt",
        tag = TAG_PKI,
        responses(
            (status = 200, description = "The issuing CA certificate.", content(("application/pkix-cert"))),
            (status = 404, description = "No issuing CA is set up.", body = ErrorBody),
        )
    )]
    pub fn issuing_certificate_der() {}

    /// Issuing CA certificate (PEM)
    #[utoipa::path(
        get,
        path = "/pki/issuing.pem",
        tag = TAG_PKI,
        responses(
            (status = 200, description = "The issuing CA certificate.", content(("application/x-pem-file"))),
            (status = 404, description = "No issuing CA is set up.", body = ErrorBody),
        )
    )]
    pub fn issuing_certificate_pem() {}

    /// Root CA's CRL
    #[utoipa::path(
        get,
        path = "/pki/root.crl",
        tag = TAG_PKI,
        responses(
            (status = 200, description = "The latest CRL of the root CA, DER.", content(("application/pkix-crl"))),
            (status = 404, description = "No CRL published yet.", body = ErrorBody),
        )
    )]
    pub fn root_crl() {}

    /// Issuing CA's CRL
    #[utoipa::path(
        get,
        path = "/pki/issuing.crl",
        tag = TAG_PKI,
        responses(
            (status = 200, description = "The latest CRL of the issuing CA, DER.", content(("application/pkix-crl"))),
            (status = 404, description = "No CRL published yet.", body = ErrorBody),
        )
    )]
    pub fn issuing_crl() {}

    /// Trust anchors
    ///
    /// Every trust anchor, concatenated PEM, for a peer's trust bundle.
    #[utoipa::path(
        get,
        path = "/pki/anchors.pem",
        tag = TAG_PKI,
        responses((status = 200, description = "The anchors (empty when none).", content(("application/x-pem-file"))))
    )]
    pub fn trust_anchors() {}

    // -- health --

    /// Liveness
    ///
    /// The process is up; says nothing about its dependencies.
    #[utoipa::path(
        get,
        path = "/healthz",
        tag = TAG_HEALTH,
        responses((status = 200, description = "Up.", body = Liveness))
    )]
    pub fn healthz() {}

    /// Readiness
    ///
    /// The database answers and carries every migration this build expects.
    #[utoipa::path(
        get,
        path = "/readyz",
        tag = TAG_HEALTH,
        responses(
            (status = 200, description = "Ready.", body = Readiness),
            (status = 503, description = "Not ready: migrations pending or database unreachable.", body = Readiness),
        )
    )]
    pub fn readyz() {}

    /// Prometheus metrics
    ///
    /// The process's counters and histograms, then gauges read from the database.
    #[utoipa::path(
        get,
        path = "/metrics",
        tag = TAG_HEALTH,
        responses((status = 200, description = "Prometheus text exposition format 0.0.4.", body = String, content_type = "text/plain; version=0.0.4"))
    )]
    pub fn metrics() {}

    // -- SOAP --

    /// The WSDL of the Organization Registration service
    ///
    /// `GET /registration/services/OrganizationRegistrationService?wsdl`. The SOAP service is
    /// described there, not here.
    #[utoipa::path(
        get,
        path = "/registration/services/OrganizationRegistrationService",
        tag = TAG_SOAP,
        responses((status = 200, description = "The WSDL.", body = String, content_type = "text/xml"))
    )]
    pub fn soap_wsdl() {}

    /// Call the Organization Registration service
    ///
    /// SOAP 1.1 or 1.2, plain or MTOM, document/literal wrapped, authenticated inside the
    /// envelope; see the WSDL (`?wsdl`) for operations, messages and faults. Errors are SOAP
    /// faults, not the JSON error body.
    #[utoipa::path(
        post,
        path = "/registration/services/OrganizationRegistrationService",
        tag = TAG_SOAP,
        request_body(description = "A SOAP envelope.", content(("text/xml"), ("application/soap+xml"), ("multipart/related"))),
        responses(
            (status = 200, description = "The SOAP response.", content(("text/xml"), ("application/soap+xml"), ("multipart/related"))),
            (status = "4XX", description = "A SOAP fault (sender).", content(("text/xml"), ("application/soap+xml"))),
            (status = "5XX", description = "A SOAP fault (receiver).", content(("text/xml"), ("application/soap+xml"))),
        )
    )]
    pub fn soap_call() {}

    // -- HL7 v3 organization registry --

    /// Send an HL7 v3 message to the organization registry
    ///
    /// One endpoint for the 12 PRPM organization interactions the registry receives; the root
    /// element names the interaction. Plain (`application/hl7-v3+xml`, `text/xml`) or in a SOAP
    /// 1.2 envelope (`application/soap+xml`), answered in the same form: the interaction's
    /// response, or an `MCCI_IN000002UV01` acknowledgement (AA for a notification; AE or AR
    /// with a detail naming the element for a refusal). HTTP Basic: registry and ops clients
    /// may send any, vendor clients queries only. See docs/hl7.md.
    #[utoipa::path(
        post,
        path = "/hl7v3/organizations",
        tag = TAG_HL7,
        request_body(description = "An HL7 v3 message (or a SOAP 1.2 envelope around one).", content(("application/hl7-v3+xml"), ("text/xml"), ("application/soap+xml"))),
        responses(
            (status = 200, description = "The response, or an acknowledgement AA or AE.", content(("application/hl7-v3+xml"), ("text/xml"), ("application/soap+xml"))),
            (status = "4XX", description = "An AR acknowledgement: unreadable, missing structure, unsupported interaction or processing code, not authenticated (401), a client kind that may not send it (403), throttled (429), unsupported media type (415).", content(("application/hl7-v3+xml"), ("text/xml"), ("application/soap+xml"))),
        ),
        security(("basicAuth" = []))
    )]
    pub fn hl7_message() {}

    /// Add a registry subscriber
    ///
    /// Every change to a registry organization (over HL7, by SOAP provisioning, by the CA, by
    /// the CLI) is then pushed to `url` as the matching HL7 v3 notification, in order per
    /// organization, retried, dead-lettered visibly. The URL goes through the egress guard;
    /// `auth` is sealed at rest. Audited.
    #[utoipa::path(
        post,
        path = "/api/v1/hl7/subscribers",
        tag = TAG_HL7,
        request_body(content = SubscriberRequest, content_type = "application/json"),
        responses(
            (status = 201, description = "The subscriber.", body = Hl7Subscriber),
            (status = 400, description = "Not JSON of this shape (`malformed`); a URL that is not http(s) or that the egress guard refuses (`invalid`, `field` = `url`).", body = ErrorBody),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn add_hl7_subscriber() {}

    /// List registry subscribers
    #[utoipa::path(
        get,
        path = "/api/v1/hl7/subscribers",
        tag = TAG_HL7,
        responses(
            (status = 200, description = "The active subscribers.", body = Vec<Hl7Subscriber>),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn list_hl7_subscribers() {}

    /// Remove a registry subscriber
    ///
    /// Notifications still queued for it are dropped when their turn comes. Audited.
    #[utoipa::path(
        delete,
        path = "/api/v1/hl7/subscribers/{id}",
        tag = TAG_HL7,
        params(("id" = String, Path, description = "The subscriber's id (a UUID).")),
        responses(
            (status = 204, description = "Removed."),
            (status = 400, description = "`id` is not a UUID (`malformed`).", body = ErrorBody),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
            (status = 404, description = "No such active subscriber.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn remove_hl7_subscriber() {}

    // -- documentation --

    /// This document
    #[utoipa::path(
        get,
        path = "/api-docs/openapi.json",
        tag = TAG_DOCS,
        responses((status = 200, description = "The OpenAPI 3.1 document.", content(("application/json"))))
    )]
    pub fn openapi_document() {}

    /// Swagger UI
    ///
    /// A browser for this document; its assets are served under `/docs/`.
    #[utoipa::path(
        get,
        path = "/docs",
        tag = TAG_DOCS,
        responses((status = 200, description = "An HTML page.", body = String, content_type = "text/html"))
    )]
    pub fn swagger_ui() {}

    // -- webhooks (moved from `paths` to `webhooks` by `super::Webhooks`) --

    /// Delivery status notification
    ///
    /// POSTed to the sender's `dsnUrl` (see `PUT /api/v1/messaging/endpoints/{address}`) each
    /// time a recipient's status changes in a way the sender hears of. Signed per Standard
    /// Webhooks with the vendor's signing secret (`GET /api/v1/messaging/signing-secret`):
    /// `webhook-signature` is `v1,` followed by the base64 HMAC-SHA256, keyed with the secret's
    /// base64-decoded bytes after `whsec_`, of `{webhook-id}.{webhook-timestamp}.{body}`; it may
    /// list several space-separated signatures. The registered `dsnAuth` credentials are sent
    /// too. Any 2xx answer counts as delivered; anything else, or no answer within the delivery
    /// timeout, is retried on the delivery retry schedule and dropped after the last attempt.
    /// Redirects are not followed. Deduplicate on `webhook-id`.
    #[utoipa::path(
        post,
        path = "deliveryStatusNotification",
        tag = TAG_WEBHOOKS,
        params(
            ("webhook-id" = String, Header, description = "Unique id of this notification (`msg_…`), the same on every retry."),
            ("webhook-timestamp" = i64, Header, description = "Unix time (seconds) of this attempt; reject values far from now."),
            ("webhook-signature" = String, Header, description = "`v1,<base64 HMAC-SHA256>` (space-separated list)."),
            ("Idempotency-Key" = String, Header, description = "Equal to `webhook-id`."),
        ),
        request_body(content = DeliveryStatusNotification, content_type = "application/json"),
        responses(
            (status = "2XX", description = "Received; not sent again."),
            (status = "default", description = "Not received; retried."),
        )
    )]
    pub fn delivery_status_notification() {}

    /// Inbound message
    ///
    /// POSTed to the recipient address's `inboundUrl` (see
    /// `PUT /api/v1/messaging/endpoints/{address}`) for each message to an address hosted here,
    /// whether sent through this API or received from another HISP, in the registered
    /// `inboundShape`. The registered `inboundAuth` credentials are sent, and the body is
    /// signed like the delivery status notification (Standard Webhooks headers, the receiving
    /// vendor's signing secret). Any 2xx answer makes the recipient DISPATCHED; anything else, or no answer
    /// within the delivery timeout, is retried on the delivery retry schedule, and the
    /// recipient becomes FAILED after the last attempt. Redirects are not followed.
    /// Deduplicate on `Idempotency-Key`.
    #[utoipa::path(
        post,
        path = "inboundMessage",
        tag = TAG_WEBHOOKS,
        params(
            ("Idempotency-Key" = String, Header, description = "`{our message UUID}:{recipient in lower case}`, the same on every retry."),
            ("webhook-id" = String, Header, description = "Same value as `Idempotency-Key`."),
            ("webhook-timestamp" = i64, Header, description = "Unix seconds when this attempt was signed."),
            ("webhook-signature" = String, Header, description = "`v1,<base64 HMAC-SHA256>` of `id.timestamp.body` with the receiving vendor's signing secret."),
        ),
        request_body(content = InboundMessage, content_type = "application/json"),
        responses(
            (status = "2XX", description = "Received; the recipient becomes DISPATCHED."),
            (status = "default", description = "Not received; retried, then FAILED."),
        )
    )]
    pub fn inbound_message() {}

    // -- credentialing --

    /// Credentialing webhook (intake)
    ///
    /// Where a registered credentialing service delivers its events, Verifiable style: the
    /// body is the event type's model (LicenseModel, ProviderModel, DatasetScanModel,
    /// CredentialingRequestModel, ConfigurableReportModel, ProviderProfileImportModel or the
    /// NPDB rejection). The event is committed, redacted (no SSN, date of birth or screenshot
    /// is kept), before the 200; a repeated `X-TraceId` answers 200 again and is not processed
    /// again. See docs/credentialing.md.
    #[utoipa::path(
        post,
        path = "/credentialing/webhooks",
        tag = TAG_CREDENTIALING,
        params(
            ("X-WebhookType" = String, Header, description = "One of the 13 event types, e.g. `LicenseExpired`."),
            ("X-WebhookId" = String, Header, description = "The webhook id the source was registered with."),
            ("X-Secret" = String, Header, description = "The source's secret."),
            ("X-TraceId" = String, Header, description = "Stable across retries of one delivery."),
        ),
        request_body(content = Object, content_type = "application/json"),
        responses(
            (status = 200, description = "Stored (or stored before, `duplicate`).", body = CredentialingReceived),
            (status = 400, description = "An unknown or unregistered `X-WebhookType`, no `X-TraceId`, a body that is not JSON or not the type's model (`invalid`, `field` names the header or property).", body = ErrorBody),
            (status = 401, description = "Unknown webhook id, wrong secret or disabled source (`unauthorized`).", body = ErrorBody),
            (status = 429, description = "Too many failed authentications from this address (`too_many_requests`).", body = ErrorBody),
        )
    )]
    pub fn credentialing_webhook() {}

    /// Register a credentialing source
    ///
    /// Audited. The secret is stored argon2id-hashed and compared in constant time.
    #[utoipa::path(
        post,
        path = "/api/v1/credentialing/sources",
        tag = TAG_CREDENTIALING,
        request_body(content = CredentialingSourceRequest, content_type = "application/json"),
        responses(
            (status = 201, description = "Registered.", body = NewCredentialingSource),
            (status = 400, description = "Not JSON of this shape (`malformed`), or a bad field (`invalid`).", body = ErrorBody),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
            (status = 409, description = "The webhook id is registered already.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn register_credentialing_source() {}

    /// List credentialing sources
    #[utoipa::path(
        get,
        path = "/api/v1/credentialing/sources",
        tag = TAG_CREDENTIALING,
        responses(
            (status = 200, description = "The sources.", body = Vec<CredentialingSource>),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn list_credentialing_sources() {}

    /// An individual's credentialing standing
    ///
    /// The standing with its facts, changes, affected addresses and redacted timeline.
    #[utoipa::path(
        get,
        path = "/api/v1/credentialing/individuals/{idp_id}",
        tag = TAG_CREDENTIALING,
        params(("idp_id" = i64, Path, description = "The verified individual's id.", example = 8001)),
        responses(
            (status = 200, description = "The standing.", body = IndividualStanding),
            (status = 400, description = "`idp_id` is not a positive number (`invalid`).", body = ErrorBody),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
            (status = 404, description = "No such verified individual.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn get_credentialing_individual() {}

    /// Individuals in warning or restricted standing
    #[utoipa::path(
        get,
        path = "/api/v1/credentialing/standings",
        tag = TAG_CREDENTIALING,
        params(("standing" = Option<String>, Query, description = "`good`, `warning` or `restricted`; both of the last when absent.")),
        responses(
            (status = 200, description = "Newest change first, 1000 at most.", body = Vec<StandingSummary>),
            (status = 400, description = "An unknown standing (`invalid`) or query parameter (`malformed`).", body = ErrorBody),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn list_credentialing_standings() {}

    /// Providers waiting for a link
    ///
    /// Providers matched to no verified individual by NPI or by name, date of birth and SSN
    /// last four.
    #[utoipa::path(
        get,
        path = "/api/v1/credentialing/providers/unlinked",
        tag = TAG_CREDENTIALING,
        responses(
            (status = 200, description = "Oldest first, 1000 at most.", body = Vec<UnlinkedProvider>),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn list_unlinked_providers() {}

    /// Link a provider to a verified individual
    ///
    /// The individual's standing (and the previous one's, when moved) is computed again at
    /// once from the provider's facts. Audited.
    #[utoipa::path(
        post,
        path = "/api/v1/credentialing/providers/{provider_id}/link",
        tag = TAG_CREDENTIALING,
        params(("provider_id" = String, Path, description = "The credentialing service's provider id.", example = "4834bcdc-4a64-444d-966b-1a6fe381da24")),
        request_body(content = LinkProviderRequest, content_type = "application/json"),
        responses(
            (status = 200, description = "Linked; the individual's standing.", body = IndividualStanding),
            (status = 400, description = "Not a UUID or not JSON of this shape.", body = ErrorBody),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
            (status = 404, description = "No such provider or verified individual.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn link_credentialing_provider() {}

    /// Credentialing standing changed (to ops)
    ///
    /// POSTed to `credentialing.ops_webhook_url` on every change of an individual's standing,
    /// signed per Standard Webhooks with `credentialing.ops_webhook_secret`. Retried on the
    /// delivery retry schedule; redirects are not followed.
    #[utoipa::path(
        post,
        path = "credentialingStandingChanged",
        tag = TAG_WEBHOOKS,
        params(
            ("webhook-id" = String, Header, description = "`cred_…`, the same on every retry."),
            ("webhook-timestamp" = i64, Header, description = "Unix seconds of this attempt."),
            ("webhook-signature" = String, Header, description = "`v1,<base64 HMAC-SHA256>`."),
        ),
        request_body(content = CredentialingStandingChanged, content_type = "application/json"),
        responses(
            (status = "2XX", description = "Received."),
            (status = "default", description = "Not received; retried."),
        )
    )]
    pub fn credentialing_standing_changed() {}
}

/// Trusted-Agent certificate applications (DataMotion style): their wire shapes and routes.
/// The vendor publishes no JSON names; these are ours, and stable.
mod applications {
    #![allow(dead_code)]

    use chrono::{DateTime, Utc};
    use serde::Serialize;
    use utoipa::ToSchema;
    use uuid::Uuid;

    use super::TAG_APPLICATIONS;
    use super::schemas::ErrorBody;

    /// What is applied for.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum ApplicationKind {
        Patient,
        Address,
        Organization,
    }

    /// Submitted, Approved and Rejected are the officer's decision; CertificateIssued,
    /// Provisioned, Revoked and Expired follow the current certificate and the address.
    #[derive(Serialize, ToSchema)]
    pub enum ApplicationStatus {
        Submitted,
        Approved,
        Rejected,
        CertificateIssued,
        Provisioned,
        Revoked,
        Expired,
    }

    /// A certificate application. Every field of the DataMotion patient application, plus
    /// `kind` for the two sibling applications (a provider's address certificate and an
    /// organization's domain-bound certificate). Validation names the first bad field.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    #[schema(example = json!({
        "trustedAgentName": "Tess Agent",
        "organizationName": "Lakeside Pediatrics",
        "hipaaType": "4",
        "firstName": "Pat",
        "lastName": "Doe",
        "city": "Albany",
        "state": "NY",
        "country": "US",
        "durationYears": 2,
        "certificateName": "Pat Doe",
        "directAddress": "pat.doe@lakeside.direct.example.org",
        "autoRenew": true,
        "identityAttestation": "yes",
        "notificationEmail": "pat.doe@example.com",
        "notes": "Identity checked in clinic with two documents."
    }))]
    pub struct CertificateApplicationRequest {
        /// `patient` (the default: a patient certificate, HIPAA type 4), `address` (a
        /// provider's address certificate, HIPAA types 1–3) or `organization` (the
        /// organization's domain-bound certificate, HIPAA types 1–3).
        #[schema(nullable = false)]
        pub kind: Option<ApplicationKind>,
        /// The TA to be named on the certificate application.
        pub trusted_agent_name: String,
        /// The legal business name of the organization the patient (or provider) belongs to, as
        /// established with the HISP: must match the TA's linked organization.
        pub organization_name: String,
        /// The HIPAA-compliance type: 1 Other, 2 Covered Entity, 3 Business Associate,
        /// 4 Patient (number or string). Must be 4 for `patient`, 1–3 otherwise. It decides the
        /// certificate category: 4 → Patient (1.3.6.1.4.1.41179.2.4), 2 → Covered Entity
        /// (.2.1), 3 → Business Associate (.2.2), 1 → Healthcare Entity (.2.3).
        #[schema(value_type = String, example = "4")]
        pub hipaa_type: String,
        /// The first name of the patient (or provider); not for `organization`. The only
        /// personal detail the notification e-mails carry.
        #[schema(nullable = false)]
        pub first_name: Option<String>,
        /// The last name of the patient (or provider); not for `organization`.
        #[schema(nullable = false)]
        pub last_name: Option<String>,
        /// The city where the patient (provider, organization) is located.
        pub city: String,
        /// The state where the patient is located.
        pub state: String,
        /// The country where the patient is located.
        pub country: String,
        /// The duration of the certificate: 1, 2 or 3 years.
        #[schema(minimum = 1, maximum = 3)]
        pub duration_years: i32,
        /// The full name for the certificate (the patient's first and last name).
        pub certificate_name: String,
        /// The Direct address to create, in the TA's organization's domain; not for
        /// `organization` (its certificate is bound to the domain). 409 when the address exists
        /// or an open application holds it.
        #[schema(nullable = false)]
        pub direct_address: Option<String>,
        /// `address` applications only: the address's password (8 to 128 characters), kept as
        /// an argon2id hash.
        #[schema(nullable = false)]
        pub address_password: Option<String>,
        /// Whether the certificate is renewed automatically before it expires.
        pub auto_renew: bool,
        /// The TA accepts responsibility that the identity of the person covered by this
        /// certificate has been fully vetted to IAL2: must be affirmative (`true`, `yes`, `y`,
        /// `1`, `accept`, `accepted`, `agree`, `agreed`, any case, or JSON `true`).
        #[schema(value_type = String, example = "yes")]
        pub identity_attestation: String,
        /// Where notifications (submission, approval, rejection, provisioning) are e-mailed.
        /// Not the Direct address.
        #[schema(format = "email")]
        pub notification_email: String,
        /// Notes for the officer reviewing the application (at most 4000 characters).
        #[schema(nullable = false)]
        pub notes: Option<String>,
    }

    /// An application with its status, the time of each step and the current certificate.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct CertificateApplication {
        pub id: Uuid,
        pub kind: ApplicationKind,
        pub status: ApplicationStatus,
        /// The trusted-agent client that applied.
        pub trusted_agent_id: Uuid,
        pub trusted_agent_name: String,
        pub organization_name: String,
        pub organization_domain: String,
        #[schema(minimum = 1, maximum = 4)]
        pub hipaa_type: i32,
        /// The DirectTrust category of the certificate: Patient, CoveredEntity,
        /// BusinessAssociate or HealthEntity.
        pub certificate_category: String,
        /// Its policy OID, e.g. `1.3.6.1.4.1.41179.2.4`.
        pub category_oid: String,
        pub first_name: Option<String>,
        pub last_name: Option<String>,
        pub city: String,
        pub state: String,
        pub country: String,
        pub duration_years: i32,
        pub certificate_name: String,
        /// The Direct address (none for `organization`).
        pub direct_address: Option<String>,
        pub auto_renew: bool,
        pub identity_attestation: String,
        pub notification_email: String,
        /// The TA's notes to the officer.
        pub notes: Option<String>,
        pub submitted_at: DateTime<Utc>,
        pub approved_at: Option<DateTime<Utc>>,
        pub rejected_at: Option<DateTime<Utc>>,
        /// `client:{id}` of the officer, or `cli`.
        pub reviewed_by: Option<String>,
        /// The officer's reason (required for a rejection).
        pub review_reason: Option<String>,
        /// When the first certificate was issued.
        pub certificate_issued_at: Option<DateTime<Utc>>,
        /// When the address went live (the organization's certificate, for `organization`).
        pub provisioned_at: Option<DateTime<Utc>>,
        pub revoked_at: Option<DateTime<Utc>>,
        /// When the certificate expired (its notAfter), with status Expired.
        pub expired_at: Option<DateTime<Utc>>,
        /// The current certificate's serial, upper-case hex; a renewal's replaces it.
        pub serial_number: Option<String>,
        pub certificate_not_after: Option<DateTime<Utc>>,
    }

    #[derive(Serialize, ToSchema)]
    pub struct ReviewRequest {
        /// Why; required to reject, optional to approve (at most 1000 characters).
        #[schema(nullable = false)]
        pub reason: Option<String>,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct LinkTrustedAgentRequest {
        /// The Direct domain of the provisioned organization the TA belongs to.
        pub organization_domain: String,
    }

    /// A trusted agent and the organization it acts for.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct TrustedAgentLink {
        pub client_id: Uuid,
        pub client_name: String,
        pub organization_id: i64,
        pub organization_domain: String,
        pub organization_name: String,
        pub linked_at: DateTime<Utc>,
    }

    /// Apply for a certificate (Trusted Agents)
    ///
    /// The DataMotion "submit a certificate application": the TA's credentials in
    /// `X-TA-Username` (client id) and `X-TA-Password` (client secret), or HTTP Basic. Checked
    /// against the TA's organization (legal name, domain); stored as `Submitted` with its
    /// notification e-mail queued. Nothing is written on a refusal. Audited.
    #[utoipa::path(
        post,
        path = "/api/v1/certificate-applications",
        tag = TAG_APPLICATIONS,
        request_body(content = CertificateApplicationRequest, content_type = "application/json"),
        responses(
            (status = 201, description = "The application, `Submitted`.", body = CertificateApplication),
            (status = 400, description = "The body is not JSON (`malformed`). Or: a field is missing or bad (`invalid`, `field` names it: e.g. `hipaaType` not 4 for a patient, `durationYears` outside 1–3, `directAddress` outside the organization's domain, `identityAttestation` not affirmative, `notificationEmail` not an e-mail address, `organizationName` not the TA's organization's legal name; an unknown field is `body`).", body = ErrorBody),
            (status = 403, description = "Not a trusted-agent client, or the TA is not linked to an organization.", body = ErrorBody),
            (status = 409, description = "The Direct address exists, or another open application holds it.", body = ErrorBody),
        ),
        security(("basicAuth" = []), ("taUsername" = [], "taPassword" = []))
    )]
    pub fn submit_application() {}

    /// List applications
    ///
    /// By `address` (the spec's provisioning status check) and/or `status`; with neither, the
    /// pending (`Submitted`) ones, oldest first, at most 500. Officers and ops see every
    /// organization's; a trusted agent its organization's.
    #[utoipa::path(
        get,
        path = "/api/v1/certificate-applications",
        tag = TAG_APPLICATIONS,
        params(
            ("address" = Option<String>, Query, description = "Only applications for this Direct address."),
            ("status" = Option<ApplicationStatus>, Query, description = "Only applications in this status."),
        ),
        responses(
            (status = 200, description = "The applications.", body = Vec<CertificateApplication>),
            (status = 400, description = "An unknown query parameter (`malformed`), or a bad `status` or `address` (`invalid`, with `field`).", body = ErrorBody),
            (status = 403, description = "Not a trusted-agent, officer or ops client, or a TA not linked to an organization.", body = ErrorBody),
        ),
        security(("basicAuth" = []), ("taUsername" = [], "taPassword" = []))
    )]
    pub fn list_applications() {}

    /// Check an application's provisioning status
    ///
    /// For the TA that applied, the other TAs of its organization, officers and ops. Another
    /// organization's TA gets 404, as for an unknown id.
    #[utoipa::path(
        get,
        path = "/api/v1/certificate-applications/{id}",
        tag = TAG_APPLICATIONS,
        params(("id" = Uuid, Path, description = "The application.")),
        responses(
            (status = 200, description = "The application.", body = CertificateApplication),
            (status = 403, description = "Not a trusted-agent, officer or ops client, or a TA not linked to an organization.", body = ErrorBody),
            (status = 404, description = "No such application visible to the caller.", body = ErrorBody),
        ),
        security(("basicAuth" = []), ("taUsername" = [], "taPassword" = []))
    )]
    pub fn get_application() {}

    /// Approve an application (officers)
    ///
    /// In one transaction: the decision, the Direct address (status `pending` until the
    /// certificate is issued, then `active`), the certificate request to the CA through the
    /// outbox (category from the HIPAA type, auto-renew kept) and the e-mail. Only a
    /// `Submitted` application can be approved: of two officers racing, one gets 200 and the
    /// other 409. The body is optional.
    #[utoipa::path(
        post,
        path = "/api/v1/certificate-applications/{id}/approve",
        tag = TAG_APPLICATIONS,
        params(("id" = Uuid, Path, description = "The application.")),
        request_body(content = ReviewRequest, content_type = "application/json"),
        responses(
            (status = 200, description = "The application, `Approved`.", body = CertificateApplication),
            (status = 400, description = "The body is not JSON of this shape (`malformed`), or `reason` is too long (`invalid`).", body = ErrorBody),
            (status = 403, description = "Not an officer client.", body = ErrorBody),
            (status = 404, description = "No such application.", body = ErrorBody),
            (status = 409, description = "Already reviewed, the address was taken meanwhile, or there is no CA yet.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn approve_application() {}

    /// Reject an application (officers)
    #[utoipa::path(
        post,
        path = "/api/v1/certificate-applications/{id}/reject",
        tag = TAG_APPLICATIONS,
        params(("id" = Uuid, Path, description = "The application.")),
        request_body(content = ReviewRequest, content_type = "application/json"),
        responses(
            (status = 200, description = "The application, `Rejected`, with the reason.", body = CertificateApplication),
            (status = 400, description = "The body is not JSON of this shape (`malformed`), or `reason` is missing or too long (`invalid`, `field` = `reason`).", body = ErrorBody),
            (status = 403, description = "Not an officer client.", body = ErrorBody),
            (status = 404, description = "No such application.", body = ErrorBody),
            (status = 409, description = "Already reviewed.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn reject_application() {}

    /// List trusted agents (ops)
    #[utoipa::path(
        get,
        path = "/api/v1/trusted-agents",
        tag = TAG_APPLICATIONS,
        responses(
            (status = 200, description = "Every linked trusted agent.", body = Vec<TrustedAgentLink>),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn list_trusted_agents() {}

    /// Link a trusted agent to its organization (ops)
    ///
    /// A TA belongs to one organization (linking again moves it). The organization's
    /// `hasTrustedAgent` becomes 1 in the SOAP `CheckProvisionedOrganizationWithOtherInfo`
    /// answer. Audited.
    #[utoipa::path(
        put,
        path = "/api/v1/trusted-agents/{client_id}",
        tag = TAG_APPLICATIONS,
        params(("client_id" = Uuid, Path, description = "The trusted-agent client.")),
        request_body(content = LinkTrustedAgentRequest, content_type = "application/json"),
        responses(
            (status = 200, description = "The link.", body = TrustedAgentLink),
            (status = 400, description = "The body is not JSON of this shape (`malformed`). Or: `clientId` is not a UUID or not a trusted-agent client, or `organizationDomain` is not a domain (`invalid`, with `field`).", body = ErrorBody),
            (status = 403, description = "Not an ops client.", body = ErrorBody),
            (status = 404, description = "No such client, or no organization with that domain.", body = ErrorBody),
        ),
        security(("basicAuth" = []))
    )]
    pub fn link_trusted_agent() {}
}

/// The TA's two request headers of the DataMotion API, as two API-key schemes used together.
struct TaSecurity;

impl utoipa::Modify for TaSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "taUsername",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-TA-Username",
                "The Trusted Agent's username: its client id (a UUID). Goes with X-TA-Password.",
            ))),
        );
        components.add_security_scheme(
            "taPassword",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-TA-Password",
                "The Trusted Agent's password: its client secret. Goes with X-TA-Username.",
            ))),
        );
    }
}
