//! Reseller debit accounts, their orders and ledger.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct AccountRow {
    pub balance_cents: i64,
    pub capture_hold: bool,
}

/// Locks the account for the rest of the transaction; `None` when the reseller has none.
pub async fn lock(
    conn: &mut PgConnection,
    reseller: Uuid,
) -> Result<Option<AccountRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT balance_cents, capture_hold FROM reseller_accounts WHERE reseller_id = $1 FOR UPDATE",
    )
    .bind(reseller)
    .fetch_optional(conn)
    .await
}

/// Creates the account on first use and locks it.
pub async fn lock_or_open(
    conn: &mut PgConnection,
    reseller: Uuid,
) -> Result<AccountRow, sqlx::Error> {
    sqlx::query("INSERT INTO reseller_accounts (reseller_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(reseller)
        .execute(&mut *conn)
        .await?;
    Ok(lock(conn, reseller).await?.expect("just opened"))
}

pub async fn set_balance(
    conn: &mut PgConnection,
    reseller: Uuid,
    cents: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE reseller_accounts SET balance_cents = $2, updated_at = now() WHERE reseller_id = $1")
        .bind(reseller)
        .bind(cents)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_hold(
    conn: &mut PgConnection,
    reseller: Uuid,
    hold: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE reseller_accounts SET capture_hold = $2, updated_at = now() WHERE reseller_id = $1",
    )
    .bind(reseller)
    .bind(hold)
    .execute(conn)
    .await?;
    Ok(())
}

pub struct Entry<'a> {
    pub reseller: Uuid,
    pub kind: &'a str,
    pub amount_cents: i64,
    pub balance_after_cents: i64,
    pub order_id: Option<i64>,
    pub memo: Option<&'a str>,
    pub actor: &'a str,
    pub at: DateTime<Utc>,
}

pub async fn add_entry(conn: &mut PgConnection, e: &Entry<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO ledger_entries (reseller_id, kind, amount_cents, balance_after_cents, order_id, memo, actor, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(e.reseller)
    .bind(e.kind)
    .bind(e.amount_cents)
    .bind(e.balance_after_cents)
    .bind(e.order_id)
    .bind(e.memo)
    .bind(e.actor)
    .bind(e.at)
    .execute(conn)
    .await?;
    Ok(())
}

pub struct NewOrder<'a> {
    pub reseller: Uuid,
    pub organization_id: i64,
    pub operation: &'a str,
    pub amount_cents: i64,
    pub products: serde_json::Value,
    pub detail: &'a str,
    pub at: DateTime<Utc>,
}

pub async fn insert_order(conn: &mut PgConnection, o: &NewOrder<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO orders (reseller_id, organization_id, operation, amount_cents, products, detail, ordered_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(o.reseller)
    .bind(o.organization_id)
    .bind(o.operation)
    .bind(o.amount_cents)
    .bind(&o.products)
    .bind(o.detail)
    .bind(o.at)
    .fetch_one(conn)
    .await
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct LedgerRow {
    pub id: i64,
    pub kind: String,
    pub amount_cents: i64,
    pub balance_after_cents: i64,
    pub order_id: Option<i64>,
    pub memo: Option<String>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

pub async fn ledger(db: &PgPool, reseller: Uuid) -> Result<Vec<LedgerRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, kind, amount_cents, balance_after_cents, order_id, memo, actor, at
         FROM ledger_entries WHERE reseller_id = $1 ORDER BY id",
    )
    .bind(reseller)
    .fetch_all(db)
    .await
}

pub async fn balance(db: &PgPool, reseller: Uuid) -> Result<Option<AccountRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT balance_cents, capture_hold FROM reseller_accounts WHERE reseller_id = $1",
    )
    .bind(reseller)
    .fetch_optional(db)
    .await
}
