//! The WSDL, with the schema inlined and the endpoint address from the public base URL.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::PATH;
use crate::state::AppState;

const WSDL: &str = include_str!("../../wsdl/OrganizationRegistrationService.wsdl");
const XSD: &str = include_str!("../../wsdl/OrganizationRegistration.xsd");

/// The served document: the WSDL with its `{{SCHEMA}}` and `{{ADDRESS}}` filled in.
pub fn document(public_base_url: &str) -> String {
    let schema = XSD.split_once("?>").map_or(XSD, |(_, rest)| rest).trim();
    let address = format!("{}{PATH}", public_base_url.trim_end_matches('/'));
    WSDL.replace("{{SCHEMA}}", schema)
        .replace("{{ADDRESS}}", &crate::xml::escape(&address))
}

pub async fn serve(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        document(&state.config.http.public_base_url),
    )
}
