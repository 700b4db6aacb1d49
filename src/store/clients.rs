//! API client rows.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::client::{Client, ClientKind, ClientName, ClientStatus};

#[derive(sqlx::FromRow)]
struct ClientRow {
    id: Uuid,
    kind: String,
    name: String,
    status: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<ClientRow> for Client {
    type Error = sqlx::Error;
    fn try_from(r: ClientRow) -> Result<Self, sqlx::Error> {
        let bad = |e: crate::domain::Invalid| sqlx::Error::Decode(Box::new(e));
        Ok(Client {
            id: r.id,
            kind: r.kind.parse().map_err(bad)?,
            name: r.name,
            status: r.status.parse().map_err(bad)?,
            created_at: r.created_at,
        })
    }
}

pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    kind: ClientKind,
    name: &ClientName,
    secret_hash: &str,
) -> Result<Client, sqlx::Error> {
    sqlx::query_as::<_, ClientRow>(
        "INSERT INTO api_clients (id, kind, name, secret_hash) VALUES ($1, $2, $3, $4)
         RETURNING id, kind, name, status, created_at",
    )
    .bind(id)
    .bind(kind.as_str())
    .bind(name.as_str())
    .bind(secret_hash)
    .fetch_one(conn)
    .await?
    .try_into()
}

/// The client and its argon2 PHC string, for authentication.
pub async fn find_with_hash(
    db: &PgPool,
    id: Uuid,
) -> Result<Option<(Client, String)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        client: ClientRow,
        secret_hash: String,
    }
    let row = sqlx::query_as::<_, Row>(
        "SELECT id, kind, name, status, created_at, secret_hash FROM api_clients WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?;
    row.map(|r| Ok((r.client.try_into()?, r.secret_hash)))
        .transpose()
}

pub async fn list(db: &PgPool) -> Result<Vec<Client>, sqlx::Error> {
    sqlx::query_as::<_, ClientRow>(
        "SELECT id, kind, name, status, created_at FROM api_clients ORDER BY created_at, id",
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(Client::try_from)
    .collect()
}

/// Replaces the secret's hash; `None` when no such client exists.
pub async fn set_secret_hash(
    conn: &mut PgConnection,
    id: Uuid,
    secret_hash: &str,
) -> Result<Option<Client>, sqlx::Error> {
    sqlx::query_as::<_, ClientRow>(
        "UPDATE api_clients SET secret_hash = $2, updated_at = now() WHERE id = $1
         RETURNING id, kind, name, status, created_at",
    )
    .bind(id)
    .bind(secret_hash)
    .fetch_optional(conn)
    .await?
    .map(Client::try_from)
    .transpose()
}

/// Sets the status; `None` when no such client exists.
pub async fn set_status(
    conn: &mut PgConnection,
    id: Uuid,
    status: ClientStatus,
) -> Result<Option<Client>, sqlx::Error> {
    sqlx::query_as::<_, ClientRow>(
        "UPDATE api_clients SET status = $2, updated_at = now() WHERE id = $1
         RETURNING id, kind, name, status, created_at",
    )
    .bind(id)
    .bind(status.as_str())
    .fetch_optional(conn)
    .await?
    .map(Client::try_from)
    .transpose()
}
