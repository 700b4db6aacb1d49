//! Creating, listing and disabling API clients.

use sqlx::PgPool;
use uuid::Uuid;

use super::Actor;
use crate::auth::secrets;
use crate::domain::client::{Client, ClientKind, ClientName, ClientStatus};
use crate::error::{AppError, AppResult};
use crate::store::{self, audit::AuditEntry};

/// A new client and its secret. The secret exists only here: we keep its hash.
#[derive(Debug, serde::Serialize)]
pub struct CreatedClient {
    #[serde(flatten)]
    pub client: Client,
    pub secret: String,
}

pub async fn create(
    db: &PgPool,
    kind: ClientKind,
    name: &str,
    actor: &Actor,
) -> AppResult<CreatedClient> {
    let name = ClientName::parse(name)?;
    let secret = secrets::generate_secret();
    let hash = secrets::hash_secret(secret.clone()).await?;
    let id = Uuid::new_v4();
    let mut tx = db.begin().await?;
    let client = store::clients::insert(&mut tx, id, kind, &name, &hash).await?;
    let object_id = id.to_string();
    store::audit::record(&mut tx, audit(actor, "client.create", &object_id)).await?;
    tx.commit().await?;
    Ok(CreatedClient { client, secret })
}

/// Gives a client a new secret; the old one stops working at once. The new secret exists only
/// in the answer, as at creation.
pub async fn replace_secret(db: &PgPool, id: Uuid, actor: &Actor) -> AppResult<CreatedClient> {
    let secret = secrets::generate_secret();
    let hash = secrets::hash_secret(secret.clone()).await?;
    let mut tx = db.begin().await?;
    let client = store::clients::set_secret_hash(&mut tx, id, &hash)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("client {id}")))?;
    let object_id = id.to_string();
    store::audit::record(&mut tx, audit(actor, "client.replace_secret", &object_id)).await?;
    tx.commit().await?;
    Ok(CreatedClient { client, secret })
}

pub async fn list(db: &PgPool) -> AppResult<Vec<Client>> {
    Ok(store::clients::list(db).await?)
}

pub async fn disable(db: &PgPool, id: Uuid, actor: &Actor) -> AppResult<Client> {
    let mut tx = db.begin().await?;
    let client = store::clients::set_status(&mut tx, id, ClientStatus::Disabled)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("client {id}")))?;
    let object_id = id.to_string();
    store::audit::record(&mut tx, audit(actor, "client.disable", &object_id)).await?;
    tx.commit().await?;
    Ok(client)
}

fn audit<'a>(actor: &'a Actor, action: &'a str, object_id: &'a str) -> AuditEntry<'a> {
    AuditEntry {
        actor: &actor.name,
        action,
        object_type: "api_client",
        object_id,
        request_id: actor.request_id.as_deref(),
    }
}
