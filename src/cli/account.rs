//! `hisp-gateway account`: resellers' debit accounts.

use chrono::Utc;
use clap::Subcommand;
use uuid::Uuid;

use super::Ctx;
use crate::service;

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Add money (US dollars, e.g. 250.00) to a reseller's account.
    Credit {
        reseller: Uuid,
        amount: String,
        #[arg(long)]
        memo: Option<String>,
    },
    /// Refuse captures (provisioning then fails with code 022) until released.
    Hold { reseller: Uuid },
    /// Release a hold on captures.
    Release { reseller: Uuid },
    /// Show the balance and every ledger entry.
    Ledger { reseller: Uuid },
}

pub async fn run(command: AccountCommand, ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let (pool, actor) = (ctx.pool, &ctx.actor);
    let now = Utc::now();
    let view = match command {
        AccountCommand::Credit {
            reseller,
            amount,
            memo,
        } => {
            let amount = crate::domain::offer::Cents::parse(&amount)?;
            service::accounts::credit(pool, reseller, amount, memo.as_deref(), actor, now).await?
        }
        AccountCommand::Hold { reseller } => {
            service::accounts::set_hold(pool, reseller, true, actor, now).await?
        }
        AccountCommand::Release { reseller } => {
            service::accounts::set_hold(pool, reseller, false, actor, now).await?
        }
        AccountCommand::Ledger { reseller } => service::accounts::view(pool, reseller).await?,
    };
    print_account(&view);
    Ok(())
}

fn print_account(v: &service::accounts::AccountView) {
    let money = |c: i64| crate::domain::offer::Cents(c).to_string();
    println!("reseller: {}", v.reseller_id);
    println!("balance: {}", v.balance);
    println!("capture_hold: {}", v.capture_hold);
    println!(
        "{:>6}  {:<20}  {:<13}  {:>12}  {:>12}  {:>8}  memo",
        "id", "at", "kind", "amount", "balance", "order"
    );
    for e in &v.ledger {
        println!(
            "{:>6}  {:<20}  {:<13}  {:>12}  {:>12}  {:>8}  {}",
            e.id,
            e.at.format("%Y-%m-%d %H:%M:%S"),
            e.kind,
            money(e.amount_cents),
            money(e.balance_after_cents),
            e.order_id.map(|o| o.to_string()).unwrap_or_default(),
            e.memo.as_deref().unwrap_or("")
        );
    }
}
