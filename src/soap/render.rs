//! Response XML of the service's types, element order as in `wsdl/OrganizationRegistration.xsd`.

use super::NS;
use crate::domain::offer::Cents;
use crate::error::AppError;
use crate::service::provisioning::{ItemResult, OrganizationDetail, Payment, SubmitResult};
use crate::service::reports::StatusRow;
use crate::service::reports::{sent_time, status_word};
use crate::xml::leaf;

/// The `ResellerAPIResponse.code` for an error of the service layer.
pub fn code_of(e: &AppError) -> &'static str {
    match e {
        AppError::Invalid(_) | AppError::BadRequest(_) | AppError::Malformed(_) => "010",
        AppError::Unauthorized | AppError::Throttled { .. } => "011",
        AppError::Forbidden(_) => "013",
        // "organization missing": the only NotFound on a SOAP path is the certificate
        // request's lookup of the organization just inserted, so this cannot occur; callers'
        // unknown domains are the more precise 208 (docs/api.md, SOAP response codes).
        AppError::NotFound(_) => "012",
        AppError::Refused(r) => r.code(),
        AppError::Conflict(_)
        | AppError::PayloadTooLarge { .. }
        | AppError::TooManyRequests { .. } => "099",
        AppError::Timeout(_)
        | AppError::Unavailable
        | AppError::Overloaded { .. }
        | AppError::Internal(_) => "999",
    }
}

/// The message callers see: ours for internal errors (details go to the log only).
pub fn message_of(e: &AppError) -> String {
    match e {
        AppError::Internal(inner) => {
            tracing::error!(error = %format!("{inner:#}"), "internal error in a SOAP operation");
            "internal error".to_owned()
        }
        AppError::Unauthorized => {
            "authentication failed: unknown credentials, or the sessionId is unknown or expired"
                .into()
        }
        other => other.to_string(),
    }
}

/// `<ns:OpResponse><return>…</return></ns:OpResponse>` around `body`.
pub fn wrap(operation: &str, body: &str) -> String {
    format!(
        r#"<ns:{operation}Response xmlns:ns="{NS}"><return>{body}</return></ns:{operation}Response>"#
    )
}

/// The ResellerAPIResponse fields: code, success, errorMessage.
pub fn status(out: &mut String, error: Option<&AppError>) {
    match error {
        None => {
            leaf(out, "code", "000");
            leaf(out, "success", "true");
        }
        Some(e) => {
            leaf(out, "code", code_of(e));
            leaf(out, "success", "false");
            leaf(out, "errorMessage", &message_of(e));
        }
    }
}

fn money(c: Cents) -> String {
    c.to_string()
}

fn payment(out: &mut String, p: &Payment) {
    out.push_str("<paymentConfirmation>");
    leaf(out, "orderId", &p.order_id.to_string());
    leaf(out, "amount", &money(p.amount));
    leaf(
        out,
        "orderTime",
        &p.order_time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    );
    for pr in &p.products {
        out.push_str("<products>");
        leaf(out, "name", &pr.name);
        leaf(out, "description", &pr.description);
        leaf(out, "quantity", &pr.quantity.to_string());
        leaf(out, "offerPrice", &money(pr.offer_price));
        leaf(out, "salePrice", &money(pr.sale_price));
        leaf(out, "amount", &money(pr.amount));
        leaf(out, "startDate", &pr.start_date.to_string());
        leaf(out, "expireDate", &pr.expire_date.to_string());
        out.push_str("</products>");
    }
    leaf(out, "detail", &p.detail);
    out.push_str("</paymentConfirmation>");
}

fn item(out: &mut String, element: &str, key_element: &str, i: &ItemResult) {
    out.push('<');
    out.push_str(element);
    out.push('>');
    leaf(out, "status", i.status.as_str());
    leaf(out, "message", &i.message);
    leaf(out, "success", if i.success() { "true" } else { "false" });
    // idp_id is an xs:long: an item without a numeric id leaves it out.
    if key_element != "idp_id" || i.key.parse::<i64>().is_ok() {
        leaf(out, key_element, &i.key);
    }
    out.push_str("</");
    out.push_str(element);
    out.push('>');
}

pub fn submit(r: &SubmitResult) -> String {
    let mut out = String::new();
    status(&mut out, r.error.as_ref());
    if let Some(p) = &r.payment {
        payment(&mut out, p);
    }
    for a in &r.addresses {
        item(&mut out, "updatedAddresses", "username", a);
    }
    for u in &r.users {
        item(&mut out, "updatedAuthorizedUsers", "idp_id", u);
    }
    out
}

fn setting_list(out: &mut String, element: &str, s: &crate::domain::provisioning::Settings) {
    for (name, value) in &s.0 {
        out.push('<');
        out.push_str(element);
        out.push('>');
        leaf(out, "settingName", name);
        leaf(out, "settingValue", if *value { "true" } else { "false" });
        out.push_str("</");
        out.push_str(element);
        out.push('>');
    }
}

fn opt(out: &mut String, name: &str, v: &Option<String>) {
    if let Some(v) = v {
        leaf(out, name, v);
    }
}

pub fn organization(out: &mut String, o: &OrganizationDetail, other_info: bool) {
    out.push_str("<organizations>");
    if let Some(id) = o.certified_id {
        leaf(out, "certified_id", &id.to_string());
    }
    leaf(out, "directDomain", &o.domain);
    leaf(out, "name", &o.name);
    leaf(out, "createdDate", &o.created_date.to_string());
    leaf(out, "numOfAddresses", &o.addresses.len().to_string());
    leaf(
        out,
        "numOfAuthorizedUsers",
        &o.authorized_users.len().to_string(),
    );
    opt(out, "taxid", &o.tax_id);
    opt(out, "npi", &o.npi);
    opt(out, "address", &o.address);
    opt(out, "city", &o.city);
    opt(out, "state", &o.state);
    if o.address.is_some() {
        leaf(out, "country", "US");
    }
    opt(out, "zipcode", &o.zipcode);
    leaf(out, "organizationStatus", &o.status);
    leaf(
        out,
        "certificateCategory",
        o.category.as_deref().unwrap_or("CoveredEntity"),
    );
    for u in &o.authorized_users {
        out.push_str("<authorizedUsers>");
        if let Some(id) = u.idp_id {
            leaf(out, "idp_id", &id.to_string());
        }
        leaf(out, "firstName", &u.first_name);
        leaf(out, "lastName", &u.last_name);
        out.push_str("</authorizedUsers>");
    }
    for a in &o.addresses {
        out.push_str("<directAddresses>");
        if let Some(id) = a.idp_id {
            leaf(out, "idp_id", &id.to_string());
        }
        opt(out, "firstName", &a.first_name);
        opt(out, "lastName", &a.last_name);
        leaf(out, "username", &a.username);
        leaf(out, "userType", &a.user_type);
        setting_list(out, "addressSettings", &a.settings);
        out.push_str("</directAddresses>");
    }
    setting_list(out, "organizationDefaultSettings", &o.default_settings);
    if other_info {
        out.push_str("<otherInfo><entry>");
        leaf(out, "key", "hasTrustedAgent");
        leaf(out, "value", if o.has_trusted_agent { "1" } else { "0" });
        out.push_str("</entry></otherInfo>");
    }
    out.push_str("</organizations>");
}

pub fn message_log(out: &mut String, r: &StatusRow) {
    out.push_str("<messageLog>");
    leaf(out, "from", &r.from_address);
    leaf(out, "to", &r.recipient);
    leaf(out, "messageId", &r.smtp_message_id);
    leaf(out, "messageSize", &r.size_bytes.to_string());
    leaf(
        out,
        "status",
        status_word(&r.status, r.failure_origin.as_deref()),
    );
    opt(out, "statusDetails", &r.failure_reason);
    leaf(out, "ts", &sent_time(r.sent_at));
    opt(out, "xdrId", &r.xdr_message_id);
    opt(out, "sourceId", &r.xdr_source_id);
    opt(out, "uniqueId", &r.xdr_unique_id);
    opt(out, "patientId", &r.xdr_patient_id);
    out.push_str("</messageLog>");
}
