//! Setting messaging up: ops grants vendors organizations, vendors register endpoints for
//! their addresses and fetch their signing secret, and OAuth2 tokens are issued and checked.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use super::MessagingContext;
use super::delivery::{AUTH_PURPOSE, SIGNING_PURPOSE};
use super::inbound::{Shape, XdmDelivery};
use super::{ADDRESS_ACTIVE, ADDRESS_DISABLED};
use crate::auth::secrets;
use crate::domain::Invalid;
use crate::domain::client::{Client, ClientKind, ClientStatus};
use crate::domain::pki::DirectAddress;
use crate::error::{AppError, AppResult};
use crate::service::Actor;
/// A vendor's grant of an organization, as listed.
pub use crate::store::messaging::GrantRow;
use crate::store::{self, messaging as sql};
use crate::webhooks::{EndpointAuth, SigningKey, parse_endpoint_url};

fn seal_key(ctx: &MessagingContext, key: &SigningKey) -> AppResult<Vec<u8>> {
    Ok(ctx.kek.seal_bytes(SIGNING_PURPOSE, key.as_bytes())?)
}

/// Grants vendor `client` the addresses of the organization of `domain`. Idempotent.
pub async fn grant(
    db: &PgPool,
    ctx: &MessagingContext,
    client: Uuid,
    domain: &str,
    actor: &Actor,
) -> AppResult<sql::GrantRow> {
    let (vendor, _) = store::clients::find_with_hash(db, client)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("client {client}")))?;
    if vendor.kind != ClientKind::Vendor {
        return Err(AppError::Invalid(Invalid::new(
            "clientId",
            format!("client {client} is a {} client, not a vendor", vendor.kind),
        )));
    }
    let mut tx = db.begin().await?;
    let org = sql::organization_by_domain(&mut tx, domain)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("organization {domain}")))?;
    sql::insert_grant(&mut tx, client, org).await?;
    sql::ensure_signing_key(&mut tx, client, &seal_key(ctx, &SigningKey::generate())?).await?;
    let object = format!("{client}:{org}");
    store::audit::record(
        &mut tx,
        actor.audit("messaging.grant", "messaging_grant", &object),
    )
    .await?;
    tx.commit().await?;
    sql::list_grants(db, Some(client))
        .await?
        .into_iter()
        .find(|g| g.organization_id == org)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("grant vanished after commit")))
}

pub async fn revoke(db: &PgPool, client: Uuid, domain: &str, actor: &Actor) -> AppResult<()> {
    let mut tx = db.begin().await?;
    let org = sql::organization_by_domain(&mut tx, domain)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("organization {domain}")))?;
    if !sql::delete_grant(&mut tx, client, org).await? {
        return Err(AppError::NotFound(format!("grant of {domain} to {client}")));
    }
    let object = format!("{client}:{org}");
    store::audit::record(
        &mut tx,
        actor.audit("messaging.revoke", "messaging_grant", &object),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn grants(db: &PgPool, client: Option<Uuid>) -> AppResult<Vec<sql::GrantRow>> {
    Ok(sql::list_grants(db, client).await?)
}

/// Enables or disables a hosted address for messaging (ops).
pub async fn set_address_enabled(
    db: &PgPool,
    address: &str,
    enabled: bool,
    actor: &Actor,
) -> AppResult<()> {
    let a = DirectAddress::parse(address)?;
    let row = sql::find_address(db, &a.to_string(), Uuid::nil())
        .await?
        .ok_or_else(|| AppError::NotFound(format!("address {a}")))?;
    let mut tx = db.begin().await?;
    let status = if enabled {
        ADDRESS_ACTIVE
    } else {
        ADDRESS_DISABLED
    };
    sql::set_address_status(&mut tx, row.id, status).await?;
    let action = if enabled {
        "address.enable"
    } else {
        "address.disable"
    };
    store::audit::record(
        &mut tx,
        actor.audit(action, "direct_address", &row.id.to_string()),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// What a vendor registers for one address. Credentials are write-only.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointRequest {
    pub inbound_url: Option<String>,
    pub inbound_auth: Option<EndpointAuth>,
    #[serde(default)]
    pub inbound_shape: Option<String>,
    #[serde(default)]
    pub xdm_delivery: Option<String>,
    pub dsn_url: Option<String>,
    pub dsn_auth: Option<EndpointAuth>,
}

/// An endpoint as shown back: which kind of credentials, never their values.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointView {
    pub address: String,
    pub inbound_url: Option<String>,
    pub inbound_auth: &'static str,
    pub inbound_shape: String,
    pub xdm_delivery: String,
    pub dsn_url: Option<String>,
    pub dsn_auth: &'static str,
    pub updated_at: DateTime<Utc>,
}

fn auth_kind(a: &Option<EndpointAuth>) -> &'static str {
    match a {
        None | Some(EndpointAuth::None) => "none",
        Some(EndpointAuth::Basic { .. }) => "basic",
        Some(EndpointAuth::Header { .. }) => "header",
    }
}

fn check_auth(field: &'static str, a: &Option<EndpointAuth>) -> AppResult<()> {
    let bad = |m: &str| Err(AppError::BadRequest(Invalid::new(field, m)));
    match a {
        Some(EndpointAuth::Basic { username, password })
            if username.is_empty() || username.contains(':') || password.is_empty() =>
        {
            return bad("basic credentials need a username without ':' and a password");
        }
        Some(EndpointAuth::Header { name, value }) => {
            let token = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token || value.is_empty() || value.contains(['\r', '\n']) {
                return bad("a header needs a valid name and a non-empty value");
            }
            let reserved = ["content-type", "content-length", "host", "idempotency-key"];
            if reserved.contains(&name.to_ascii_lowercase().as_str())
                || name.to_ascii_lowercase().starts_with("webhook-")
            {
                return bad("that header is set by the gateway itself");
            }
        }
        _ => {}
    }
    Ok(())
}

/// The address (hosted, granted to `client`) a vendor manages.
pub(super) async fn granted_address(
    db: &PgPool,
    client: Uuid,
    address: &str,
) -> AppResult<(i64, String)> {
    let a = DirectAddress::parse(address)?;
    let row = sql::find_address(db, &a.to_string(), client)
        .await?
        .filter(|r| r.granted)
        // An address of another vendor's organization is "not found" like an unknown one.
        .ok_or_else(|| AppError::NotFound(format!("address {a} among this client's addresses")))?;
    Ok((row.id, row.address))
}

pub async fn put_endpoint(
    db: &PgPool,
    ctx: &MessagingContext,
    client: Uuid,
    address: &str,
    req: EndpointRequest,
    actor: &Actor,
) -> AppResult<EndpointView> {
    let (address_id, address) = granted_address(db, client, address).await?;
    let url = |field: &'static str, u: &Option<String>| -> AppResult<Option<String>> {
        u.as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                parse_endpoint_url(s, &ctx.egress)
                    .map_err(|m| AppError::BadRequest(Invalid::new(field, m)))
            })
            .transpose()
    };
    let inbound_url = url("inboundUrl", &req.inbound_url)?;
    let dsn_url = url("dsnUrl", &req.dsn_url)?;
    check_auth("inboundAuth", &req.inbound_auth)?;
    check_auth("dsnAuth", &req.dsn_auth)?;
    let shape = match req.inbound_shape.as_deref() {
        None => Shape::Flat,
        Some(s) => Shape::parse(s).ok_or_else(|| {
            AppError::BadRequest(Invalid::new("inboundShape", "must be flat or envelope"))
        })?,
    };
    let xdm = match req.xdm_delivery.as_deref() {
        None => XdmDelivery::Zip,
        Some(s) => XdmDelivery::parse(s).ok_or_else(|| {
            AppError::BadRequest(Invalid::new("xdmDelivery", "must be zip or unpacked"))
        })?,
    };
    let seal = |a: &Option<EndpointAuth>| -> AppResult<Option<Vec<u8>>> {
        match a {
            None | Some(EndpointAuth::None) => Ok(None),
            Some(a) => Ok(Some(ctx.kek.seal_bytes(
                AUTH_PURPOSE,
                &serde_json::to_vec(a).map_err(anyhow::Error::from)?,
            )?)),
        }
    };
    let row = sql::EndpointRow {
        address_id,
        client_id: client,
        inbound_url,
        inbound_auth: seal(&req.inbound_auth)?,
        inbound_shape: shape.as_str().into(),
        inbound_xdm: xdm.as_str().into(),
        dsn_url,
        dsn_auth: seal(&req.dsn_auth)?,
        updated_at: Utc::now(),
    };
    let mut tx = db.begin().await?;
    sql::upsert_endpoint(&mut tx, &row).await?;
    store::audit::record(
        &mut tx,
        actor.audit("endpoint.put", "direct_address", &address_id.to_string()),
    )
    .await?;
    tx.commit().await?;
    Ok(EndpointView {
        address,
        inbound_url: row.inbound_url,
        inbound_auth: auth_kind(&req.inbound_auth),
        inbound_shape: row.inbound_shape,
        xdm_delivery: row.inbound_xdm,
        dsn_url: row.dsn_url,
        dsn_auth: auth_kind(&req.dsn_auth),
        updated_at: row.updated_at,
    })
}

pub async fn get_endpoint(
    db: &PgPool,
    ctx: &MessagingContext,
    client: Uuid,
    address: &str,
) -> AppResult<EndpointView> {
    let (address_id, address) = granted_address(db, client, address).await?;
    let row = sql::endpoint_of(db, address_id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("endpoint of {address}")))?;
    let kind = |sealed: &Option<Vec<u8>>| -> AppResult<&'static str> {
        Ok(match sealed {
            None => "none",
            Some(s) => auth_kind(&Some(
                serde_json::from_slice(&ctx.kek.open_bytes(AUTH_PURPOSE, s)?)
                    .map_err(anyhow::Error::from)?,
            )),
        })
    };
    Ok(EndpointView {
        address,
        inbound_auth: kind(&row.inbound_auth)?,
        dsn_auth: kind(&row.dsn_auth)?,
        inbound_url: row.inbound_url,
        inbound_shape: row.inbound_shape,
        xdm_delivery: row.inbound_xdm,
        dsn_url: row.dsn_url,
        updated_at: row.updated_at,
    })
}

/// The vendor's Standard Webhooks secret (`whsec_…`), made on first use; `rotate` replaces it.
pub async fn signing_secret(
    db: &PgPool,
    ctx: &MessagingContext,
    client: Uuid,
    rotate: bool,
    actor: &Actor,
) -> AppResult<String> {
    let fresh = SigningKey::generate();
    let sealed_fresh = seal_key(ctx, &fresh)?;
    let mut tx = db.begin().await?;
    let sealed = if rotate {
        sql::replace_signing_key(&mut tx, client, &sealed_fresh).await?;
        store::audit::record(
            &mut tx,
            actor.audit("signing_secret.rotate", "api_client", &client.to_string()),
        )
        .await?;
        sealed_fresh
    } else {
        sql::ensure_signing_key(&mut tx, client, &sealed_fresh).await?
    };
    tx.commit().await?;
    let raw = ctx.kek.open_bytes(SIGNING_PURPOSE, &sealed)?;
    Ok(SigningKey::from_bytes(raw).to_whsec())
}

/// An issued access token.
#[derive(Debug, Serialize)]
pub struct Token {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
}

/// Issues a Bearer token to an authenticated vendor client.
pub async fn issue_token(
    db: &PgPool,
    ctx: &MessagingContext,
    client: &Client,
    now: DateTime<Utc>,
) -> AppResult<Token> {
    if client.kind != ClientKind::Vendor {
        return Err(AppError::Forbidden(
            "only vendor clients get messaging tokens".into(),
        ));
    }
    let token = secrets::generate_secret();
    let ttl = ctx.config.token_ttl;
    let expires = now + ttl;
    sql::insert_token(
        db,
        &secrets::sha256_hex(token.as_bytes()),
        client.id,
        expires,
        now,
    )
    .await?;
    Ok(Token {
        access_token: token,
        token_type: "Bearer",
        expires_in: ttl.as_secs(),
    })
}

/// The active client a Bearer token stands for.
pub async fn client_for_token(db: &PgPool, token: &str, now: DateTime<Utc>) -> AppResult<Client> {
    let id = sql::token_client(db, &secrets::sha256_hex(token.as_bytes()), now)
        .await?
        .ok_or(AppError::Unauthorized)?;
    let (client, _) = store::clients::find_with_hash(db, id)
        .await?
        .ok_or(AppError::Unauthorized)?;
    if client.status != ClientStatus::Active {
        return Err(AppError::Unauthorized);
    }
    Ok(client)
}
