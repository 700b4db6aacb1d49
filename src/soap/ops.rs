//! The service's operations: each reads its request element, calls the service layer and
//! renders the `return` element. Errors of the service layer become response codes, never
//! faults (faults are for requests we cannot read).

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::NaiveDate;
use uuid::Uuid;

use super::mtom::{self, Attachment};
use super::render;
use crate::domain::Invalid;
use crate::error::AppError;
use crate::service::provisioning::{
    self as prov, AddressInput, Ctx, DirectForm, OrganizationInput, PersonInput,
};
use crate::service::reports::{self, Period};
use crate::service::{Actor, sessions};
use crate::state::AppState;
use crate::xml::{Element, leaf};

pub struct Reply {
    pub payload: String,
    pub attachments: Vec<Attachment>,
}

fn reply(operation: &str, body: String) -> Reply {
    Reply {
        payload: render::wrap(operation, &body),
        attachments: Vec::new(),
    }
}

fn error_body(e: &AppError) -> String {
    let mut out = String::new();
    render::status(&mut out, Some(e));
    out
}

/// Runs one operation; `None` when the service has no operation of that name.
pub async fn call(state: &AppState, name: &str, op: &Element, caller: &Caller) -> Option<Reply> {
    let body = match name {
        "Login" => login(state, op, caller).await,
        "ProvisionCertifiedProvider"
        | "AddDirectAddressesToCertifiedProvider"
        | "AddAuthorizedUsersToCertifiedProvider"
        | "UpdateDirectAddressPassword" => submit(state, name, op, caller).await,
        "ListProvisionedOrganizations"
        | "CheckProvisionedOrganization"
        | "CheckProvisionedOrganizationWithOtherInfo" => {
            organizations(state, name, op, caller).await
        }
        "GetMonthlyMessageStatusReport" => {
            return Some(report(state, name, op, caller, Period::Monthly).await);
        }
        "GetWeeklyMessageStatusReport" => {
            return Some(report(state, name, op, caller, Period::Weekly).await);
        }
        "GetDailyMessageStatusReport" => {
            return Some(report(state, name, op, caller, Period::Daily).await);
        }
        _ => return None,
    };
    Some(reply(name, body))
}

/// Who sent the request: its id for the audit log, its address for throttling, and whether
/// the answer goes back as MTOM (binary data as attachments) or plain (binary data inline).
pub struct Caller {
    pub request_id: Option<String>,
    pub from: IpAddr,
    pub mtom: bool,
}

async fn login(state: &AppState, op: &Element, caller: &Caller) -> String {
    let result = async {
        let username = op
            .child_text("username")
            .ok_or_else(|| Invalid::new("username", "is required"))?;
        let password = op
            .child("password")
            .map(|p| p.text.as_str())
            .filter(|p| !p.is_empty())
            .ok_or_else(|| Invalid::new("password", "is required"))?;
        sessions::login(
            &state.db,
            &state.verifier,
            username,
            password,
            caller.from,
            state.config.soap.session_ttl,
            state.clock.now(),
        )
        .await
    }
    .await;
    match result {
        Ok(session) => {
            let mut out = String::new();
            render::status(&mut out, None);
            leaf(&mut out, "sessionId", &session);
            out
        }
        Err(e) => error_body(&e),
    }
}

async fn reseller(state: &AppState, op: &Element, caller: &Caller) -> Result<Uuid, AppError> {
    let session = op
        .child_text("sessionId")
        .ok_or_else(|| Invalid::new("sessionId", "is required"))?;
    sessions::reseller_of(
        &state.db,
        &state.verifier,
        session,
        caller.from,
        state.clock.now(),
    )
    .await
}

// ---- request parsing -----------------------------------------------------------------------

fn owned(el: &Element, name: &str) -> Option<String> {
    el.child_text(name).map(str::to_owned)
}

fn person(el: &Element) -> PersonInput {
    PersonInput {
        idp_id: owned(el, "idp_id"),
        first_name: owned(el, "firstName"),
        last_name: owned(el, "lastName"),
        ssn4: owned(el, "ssn4"),
        dob: owned(el, "dob"),
    }
}

fn setting_pairs(el: &Element, name: &str) -> Vec<(String, String)> {
    el.children_named(name)
        .map(|s| {
            (
                s.child_text("settingName").unwrap_or_default().to_owned(),
                s.child_text("settingValue").unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The `form` element; `None` when absent or empty (code 209).
fn form(op: &Element) -> Option<DirectForm> {
    let f = op.child("form").filter(|f| !f.children.is_empty())?;
    Some(DirectForm {
        organization: f.child("organization").map(|o| OrganizationInput {
            certified_id: owned(o, "certified_id"),
            name: owned(o, "name"),
            taxid: owned(o, "taxid"),
            state: owned(o, "state"),
        }),
        department_name: owned(f, "departmentName"),
        administrators: f.children_named("administrators").map(person).collect(),
        authorized_users: f.children_named("authorizedUsers").map(person).collect(),
        addresses: f
            .children_named("directAddresses")
            .map(|a| AddressInput {
                person: person(a),
                username: owned(a, "username"),
                // Passwords are taken as sent: surrounding spaces may be part of one.
                password: a.child("password").map(|p| p.text.clone()),
                user_type: owned(a, "userType"),
                settings: setting_pairs(a, "addressSettings"),
            })
            .collect(),
        default_settings: setting_pairs(f, "organizationDefaultSettings"),
        organization_type: owned(f, "organizationType"),
    })
}

// ---- operations ----------------------------------------------------------------------------

async fn submit(state: &AppState, name: &str, op: &Element, caller: &Caller) -> String {
    let reseller = match reseller(state, op, caller).await {
        Ok(r) => r,
        Err(e) => return error_body(&e),
    };
    let ctx = Ctx {
        db: &state.db,
        pki: &state.pki,
        offers: &state.config.offers,
        identity_key: state.identity_key(),
        actor: Actor::client(reseller, caller.request_id.clone()),
        reseller,
        now: state.clock.now(),
    };
    let form = form(op);
    let domain = op.child_text("DirectDomain");
    let result = match name {
        "ProvisionCertifiedProvider" => {
            prov::provision(
                &ctx,
                domain,
                op.child_text("DirectOfferType"),
                form.as_ref(),
            )
            .await
        }
        "AddDirectAddressesToCertifiedProvider" => {
            prov::add_addresses(&ctx, domain, form.as_ref()).await
        }
        "AddAuthorizedUsersToCertifiedProvider" => {
            prov::add_users(&ctx, domain, form.as_ref()).await
        }
        _ => prov::update_passwords(&ctx, domain, form.as_ref()).await,
    };
    match result {
        Ok(r) => render::submit(&r),
        Err(e) => error_body(&e),
    }
}

async fn organizations(state: &AppState, name: &str, op: &Element, caller: &Caller) -> String {
    let result = async {
        let reseller = reseller(state, op, caller).await?;
        match name {
            "ListProvisionedOrganizations" => prov::list(&state.db, reseller).await,
            _ => Ok(vec![
                prov::check(&state.db, reseller, op.child_text("DirectDomain")).await?,
            ]),
        }
    }
    .await;
    match result {
        Ok(orgs) => {
            let mut out = String::new();
            render::status(&mut out, None);
            let other_info = name == "CheckProvisionedOrganizationWithOtherInfo";
            for o in &orgs {
                render::organization(&mut out, o, other_info);
            }
            out
        }
        Err(e) => error_body(&e),
    }
}

fn parse_flag(op: &Element, name: &'static str, default: bool) -> Result<bool, Invalid> {
    match op.child_text(name) {
        None => Ok(default),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(_) => Err(Invalid::new(name, "must be true or false")),
    }
}

async fn report(
    state: &AppState,
    name: &str,
    op: &Element,
    caller: &Caller,
    period: Period,
) -> Reply {
    let result = async {
        let reseller = reseller(state, op, caller).await?;
        let day = match op.child_text("reportDate") {
            None => state.clock.now().date_naive(),
            Some(d) => d
                .get(..10)
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                .ok_or_else(|| Invalid::new("reportDate", "must be a date YYYY-MM-DD"))?,
        };
        let csv = parse_flag(op, "hasCvData", true)?;
        // A domain filter must name one of the caller's organizations: an empty report for a
        // domain that is not there would read as "no messages" rather than "wrong domain".
        let domain = match op.child_text("DirectDomain") {
            None => None,
            Some(d) => Some(prov::own_domain(&state.db, reseller, Some(d)).await?),
        };
        let rows = reports::status_rows(
            &state.db,
            period,
            day,
            Some(reseller),
            domain.as_ref().map(|d| d.as_str()),
        )
        .await?;
        Ok::<_, AppError>((csv, rows))
    }
    .await;
    let mut out = String::new();
    let mut attachments = Vec::new();
    match result {
        Err(e) => {
            leaf(&mut out, "code", render::code_of(&e));
            leaf(&mut out, "success", "false");
            leaf(&mut out, "message", &render::message_of(&e));
            leaf(&mut out, "hasCvData", "false");
        }
        Ok((csv, rows)) => {
            leaf(&mut out, "code", "000");
            leaf(&mut out, "success", "true");
            leaf(&mut out, "hasCvData", if csv { "true" } else { "false" });
            if csv && !rows.is_empty() {
                let data = reports::to_csv(&rows);
                out.push_str("<csvData>");
                if caller.mtom {
                    let id = format!("{}@hisp-gateway", Uuid::new_v4());
                    out.push_str(&mtom::include(&id));
                    attachments.push(Attachment {
                        content_id: id,
                        content_type: "text/csv",
                        data,
                    });
                } else {
                    out.push_str(&STANDARD.encode(data));
                }
                out.push_str("</csvData>");
            } else if !csv && !rows.is_empty() {
                out.push_str("<messageLogs>");
                for r in &rows {
                    render::message_log(&mut out, r);
                }
                out.push_str("</messageLogs>");
            }
        }
    }
    Reply {
        payload: render::wrap(name, &out),
        attachments,
    }
}
