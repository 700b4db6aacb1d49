//! Reseller debit accounts: ops credit them; provisioning authorizes and captures an order's
//! amount inside the provisioning transaction, so a failed payment provisions nothing.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::Actor;
use crate::domain::Invalid;
use crate::domain::client::ClientKind;
use crate::domain::offer::Cents;
use crate::domain::provisioning::Refusal;
use crate::error::{AppError, AppResult};
use crate::store::{self, accounts::Entry, accounts::LedgerRow};

#[derive(Debug, serde::Serialize)]
pub struct AccountView {
    pub reseller_id: Uuid,
    pub balance: String,
    pub balance_cents: i64,
    pub capture_hold: bool,
    pub ledger: Vec<LedgerRow>,
}

async fn ensure_reseller(db: &PgPool, reseller: Uuid) -> AppResult<()> {
    match store::clients::find_with_hash(db, reseller).await? {
        Some((c, _)) if c.kind == ClientKind::Reseller => Ok(()),
        Some(_) => Err(Invalid::new("reseller_id", "that client is not a reseller").into()),
        None => Err(AppError::NotFound(format!("reseller {reseller}"))),
    }
}

/// Adds money to a reseller's account (opening it on first credit).
pub async fn credit(
    db: &PgPool,
    reseller: Uuid,
    amount: Cents,
    memo: Option<&str>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> AppResult<AccountView> {
    if amount.0 <= 0 {
        return Err(Invalid::new("amount", "must be more than zero").into());
    }
    ensure_reseller(db, reseller).await?;
    let mut tx = db.begin().await?;
    let account = store::accounts::lock_or_open(&mut tx, reseller).await?;
    let balance = account.balance_cents + amount.0;
    store::accounts::set_balance(&mut tx, reseller, balance).await?;
    let entry = Entry {
        reseller,
        kind: "credit",
        amount_cents: amount.0,
        balance_after_cents: balance,
        order_id: None,
        memo,
        actor: &actor.name,
        at: now,
    };
    store::accounts::add_entry(&mut tx, &entry).await?;
    let id = reseller.to_string();
    store::audit::record(
        &mut tx,
        actor.audit("account.credit", "reseller_account", &id),
    )
    .await?;
    tx.commit().await?;
    view(db, reseller).await
}

/// Puts captures on hold (or releases the hold).
pub async fn set_hold(
    db: &PgPool,
    reseller: Uuid,
    hold: bool,
    actor: &Actor,
    now: DateTime<Utc>,
) -> AppResult<AccountView> {
    ensure_reseller(db, reseller).await?;
    let mut tx = db.begin().await?;
    let account = store::accounts::lock_or_open(&mut tx, reseller).await?;
    store::accounts::set_hold(&mut tx, reseller, hold).await?;
    let kind = if hold { "hold" } else { "release" };
    let entry = Entry {
        reseller,
        kind,
        amount_cents: 0,
        balance_after_cents: account.balance_cents,
        order_id: None,
        memo: None,
        actor: &actor.name,
        at: now,
    };
    store::accounts::add_entry(&mut tx, &entry).await?;
    let id = reseller.to_string();
    let action = format!("account.{kind}");
    store::audit::record(&mut tx, actor.audit(&action, "reseller_account", &id)).await?;
    tx.commit().await?;
    view(db, reseller).await
}

pub async fn view(db: &PgPool, reseller: Uuid) -> AppResult<AccountView> {
    ensure_reseller(db, reseller).await?;
    let account = store::accounts::balance(db, reseller).await?;
    let (balance_cents, capture_hold) =
        account.map_or((0, false), |a| (a.balance_cents, a.capture_hold));
    Ok(AccountView {
        reseller_id: reseller,
        balance: Cents(balance_cents).to_string(),
        balance_cents,
        capture_hold,
        ledger: store::accounts::ledger(db, reseller).await?,
    })
}

/// Authorizes then captures `amount` for `order_id` in the caller's transaction. On a
/// refusal the caller rolls back, which undoes the authorization with everything else.
pub async fn charge(
    tx: &mut PgConnection,
    reseller: Uuid,
    amount: Cents,
    order_id: i64,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Result<(), Refusal>, sqlx::Error> {
    let Some(account) = store::accounts::lock(tx, reseller).await? else {
        if amount.0 == 0 {
            return Ok(Ok(()));
        }
        return Ok(Err(Refusal::InsufficientFunds(format!(
            "the order costs {amount} and this reseller has no debit account"
        ))));
    };
    if account.balance_cents < amount.0 {
        return Ok(Err(Refusal::InsufficientFunds(format!(
            "the order costs {amount}; the balance is {}",
            Cents(account.balance_cents)
        ))));
    }
    let mut entry = Entry {
        reseller,
        kind: "authorization",
        amount_cents: amount.0,
        balance_after_cents: account.balance_cents,
        order_id: Some(order_id),
        memo: None,
        actor: &actor.name,
        at: now,
    };
    store::accounts::add_entry(tx, &entry).await?;
    if account.capture_hold {
        return Ok(Err(Refusal::CaptureFailed(
            "captures on this account are on hold; contact the operator".into(),
        )));
    }
    let balance = account.balance_cents - amount.0;
    store::accounts::set_balance(tx, reseller, balance).await?;
    entry.kind = "capture";
    entry.balance_after_cents = balance;
    store::accounts::add_entry(tx, &entry).await?;
    Ok(Ok(()))
}
