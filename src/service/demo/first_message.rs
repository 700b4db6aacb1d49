//! The demo's first message: demo organization 90001 provisioned by the demo reseller (as a
//! reseller would over SOAP) with two Direct addresses, granted to the demo vendor, and the
//! `curl` lines that send a message from one address to the other, read it from the
//! recipient's mailbox, acknowledge it and show it DISPATCHED.
//!
//! Every step is safe to repeat: an existing organization and grant are reused, and each run
//! prints a fresh `messageId` (a repeated one would only replay the first answer).

use std::fmt::Write;
use std::time::Duration;

use chrono::Utc;
use sqlx::PgPool;
use uuid::Uuid;

use crate::config::OffersConfig;
use crate::domain::pki::organization_status;
use crate::error::{AppError, AppResult};
use crate::service::clients::CreatedClient;
use crate::service::messaging::MessagingContext;
use crate::service::pki::PkiContext;
use crate::service::provisioning::{self, AddressInput, DirectForm, OrganizationInput};
use crate::service::{Actor, messaging::admin};
use crate::store;

/// A verified healthcare provider of the demo identities.
pub const CERTIFIED_ID: i64 = 90001;
pub const DOMAIN: &str = "direct.demo-family-practice.example";
/// Two addresses: the sender and the recipient.
pub const OFFER: &str = "CDO2";
pub const SENDER: &str = "alice";
pub const RECIPIENT: &str = "bob";
/// Each address belongs to a verified demo individual.
const HOLDERS: [(&str, i64); 2] = [(SENDER, 80001), (RECIPIENT, 80002)];
/// For the banner.
pub const SUMMARY: &str = "alice@ and bob@ of demo organization 90001";

pub fn address(user: &str) -> String {
    format!("{user}@{DOMAIN}")
}

/// Provisions the demo organization for `reseller`, unless its domain exists already. True
/// when it was provisioned now. Its domain certificate is requested in the same transaction;
/// the outbox issues it, and then the organization is Activated.
pub async fn provision(
    db: &PgPool,
    pki: &PkiContext,
    offers: &OffersConfig,
    identity_key: &[u8],
    reseller: Uuid,
    actor: &Actor,
) -> AppResult<bool> {
    if exists(db).await? {
        return Ok(false);
    }
    let form = DirectForm {
        organization: Some(OrganizationInput {
            certified_id: Some(CERTIFIED_ID.to_string()),
            ..Default::default()
        }),
        addresses: HOLDERS
            .iter()
            .map(|(user, idp)| AddressInput {
                person: provisioning::PersonInput {
                    idp_id: Some(idp.to_string()),
                    ..Default::default()
                },
                username: Some((*user).to_owned()),
                // Nobody logs in with it in the demo, so nobody needs to know it.
                password: Some(crate::auth::secrets::generate_secret()),
                user_type: Some("SMTP".into()),
                settings: Vec::new(),
            })
            .collect(),
        organization_type: Some("CoveredEntity".into()),
        ..Default::default()
    };
    let ctx = provisioning::Ctx {
        db,
        pki,
        offers,
        identity_key,
        actor: actor.clone(),
        reseller,
        now: Utc::now(),
    };
    let outcome = provisioning::provision(&ctx, Some(DOMAIN), Some(OFFER), Some(&form)).await;
    match outcome {
        Ok(r) => match r.error {
            None => Ok(true),
            Some(e) => Err(e),
        },
        // A `demo` running at the same time provisioned it first.
        Err(_) if exists(db).await? => Ok(false),
        Err(e) => Err(e),
    }
}

async fn status(db: &PgPool) -> AppResult<Option<String>> {
    let mut conn = db.acquire().await?;
    Ok(store::organizations::find_by_domain(&mut conn, DOMAIN)
        .await?
        .map(|o| o.status))
}

async fn exists(db: &PgPool) -> AppResult<bool> {
    Ok(status(db).await?.is_some())
}

/// Waits until the organization's certificate is issued (by this process's worker or a
/// server's), which Activates it: only then may its addresses send. False after `limit`.
pub async fn wait_until_activated(db: &PgPool, limit: Duration) -> AppResult<bool> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if status(db).await?.as_deref() == Some(organization_status::ACTIVATED) {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Grants the vendor the demo organization (idempotent) and gives it a new secret, which is
/// returned. Secrets are stored hashed, so a working `curl` needs a secret made now; the one
/// printed when the demo data was seeded stops working.
pub async fn grant_and_renew_secret(
    db: &PgPool,
    messaging: &MessagingContext,
    vendor: Uuid,
    actor: &Actor,
) -> AppResult<CreatedClient> {
    admin::grant(db, messaging, vendor, DOMAIN, actor).await?;
    crate::service::clients::replace_secret(db, vendor, actor).await
}

/// The lines to paste into a shell: send, see it in the mailbox, acknowledge, see DISPATCHED.
/// Each `curl` is followed by `echo` so every answer ends its own line.
pub fn curls(vendor: &CreatedClient, base_url: &str, message_id: &str) -> String {
    let base = base_url.trim_end_matches('/');
    let auth = format!("{}:{}", vendor.client.id, vendor.secret);
    let (from, to) = (address(SENDER), address(RECIPIENT));
    // Written out rather than serialized, to read in the order a person would: who to whom,
    // which message, what it says (the attachment is "Hello, Direct!"). None of the values
    // needs escaping.
    let body = format!(
        r#"{{"fromDirectAddress": "{from}", "toDirectAddress": "{to}", "messageId": "{message_id}", "messageSubject": "A first Direct message", "messageBody": "Hello Bob, this is Alice.", "emailAttachmentList": [{{"attachmentClass": "text/plain", "attachmentTitle": "hello.txt", "attachmentContent": "SGVsbG8sIERpcmVjdCE="}}]}}"#
    );
    let inbox = format!("{base}/MessagingAPI/dirmsg/inbox?address={to}");
    let mut s = String::new();
    let _ = writeln!(s, "# 1. {SENDER} sends {RECIPIENT} a message");
    let _ = writeln!(
        s,
        "curl -u {auth} -H 'content-type: application/json' '{base}/MessagingAPI/dirmsg/send_ccda' -d '{body}'; echo"
    );
    let _ = writeln!(
        s,
        "# 2. it waits in {RECIPIENT}'s mailbox (no inbound URL is registered for {RECIPIENT})"
    );
    let _ = writeln!(s, "curl -u {auth} '{inbox}&wait=10s'; echo");
    let _ = writeln!(
        s,
        "# 3. {RECIPIENT}'s side acknowledges it, by its id in the mailbox"
    );
    // The mailbox's answer split at each object: the line with our messageId holds its id.
    let _ = writeln!(
        s,
        "ID=$(curl -s -u {auth} '{inbox}' | tr '{{' '\\n' | grep '{message_id}' | grep -o '\"id\": *[0-9]*' | tr -dc 0-9)"
    );
    let _ = writeln!(
        s,
        "curl -u {auth} -X POST \"{base}/MessagingAPI/dirmsg/inbox/$ID/acknowledge\"; echo"
    );
    let _ = writeln!(s, "# 4. {SENDER}'s status shows it DISPATCHED");
    let _ = writeln!(
        s,
        "curl -u {auth} '{base}/MessagingAPI/dirmsg/status?xdMsgId={message_id}&fromDirectAddress={from}'; echo"
    );
    s
}

/// A `messageId` of the form the spec shows.
pub fn new_message_id() -> String {
    format!("urn:uuid:{}", Uuid::new_v4())
}

/// Why the demo cannot go on without a CA.
pub fn no_ca() -> AppError {
    AppError::Conflict(
        "no CA yet: run `hisp-gateway ca init` first, then `hisp-gateway demo` again".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::client::{Client, ClientKind, ClientStatus};

    #[test]
    fn the_curls_carry_the_credentials_and_the_message() {
        let vendor = CreatedClient {
            client: Client {
                id: Uuid::nil(),
                kind: ClientKind::Vendor,
                name: "Demo vendor".into(),
                status: ClientStatus::Active,
                created_at: Utc::now(),
            },
            secret: "s3cret".into(),
        };
        let c = curls(&vendor, "http://gw:8080/", "urn:uuid:m1");
        let commands: Vec<&str> = c.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(commands.len(), 5, "{c}");
        let auth = format!("-u {}:s3cret ", Uuid::nil());
        assert!(commands.iter().all(|l| l.contains(&auth)), "{c}");
        assert!(commands[0].contains("'http://gw:8080/MessagingAPI/dirmsg/send_ccda'"));
        let body = commands[0].split(" -d '").nth(1).unwrap();
        let body: serde_json::Value =
            serde_json::from_str(body.trim_end_matches("'; echo")).unwrap();
        assert_eq!(body["fromDirectAddress"], address(SENDER));
        assert_eq!(body["toDirectAddress"], address(RECIPIENT));
        assert_eq!(body["messageId"], "urn:uuid:m1");
        assert!(commands[4].contains("xdMsgId=urn:uuid:m1&fromDirectAddress=alice@"));
    }
}
