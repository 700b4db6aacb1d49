//! The only module that speaks SQL. Rows are private `XxxRow` types converted to domain types.

pub mod accounts;
pub mod audit;
pub mod certificate_applications;
pub mod clients;
pub mod credentialing;
pub mod embedded;
pub mod identities;
pub mod inbound_mail;
pub mod jobs;
pub mod liveness;
pub mod mailbox;
pub mod messaging;
pub mod organizations;
pub mod packed_mime;
pub mod pki;
pub mod provisioning;
pub mod registry;
pub mod reports;
pub mod sessions;
pub mod supervisor;
pub mod transport;
pub mod trust;

use std::str::FromStr;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool};

use crate::config::{Config, DatabaseConfig};
use embedded::{EmbeddedOptions, EmbeddedPostgres};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How the gateway's pool behaves. sqlx's default checks every acquire with a round trip,
/// one more per statement on the hot paths; here only the connections `liveness` suspects
/// are checked. A connection that dies while busy fails its statement and is dropped, and
/// the caller sees a 503 and retries.
pub fn pool_options(db: &DatabaseConfig) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(db.max_connections)
        .acquire_timeout(db.acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if liveness::needs_check(meta.idle_for) {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

/// The pool, plus the private cluster behind it when we run one.
pub struct Database {
    pub pool: PgPool,
    pub embedded: Option<EmbeddedPostgres>,
}

impl Database {
    /// Connects to `DATABASE_URL`, or starts the embedded cluster; then applies migrations.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        let (options, embedded) = if config.uses_embedded_database() {
            let opts = EmbeddedOptions {
                data_dir: config.database.embedded.data_dir.clone(),
                bin_dir: config.database.embedded.bin_dir.clone(),
                throwaway: false,
            };
            let pg = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&opts)).await??;
            pg.ensure_database(&config.database.embedded.database)
                .await?;
            (
                pg.connect_options(&config.database.embedded.database),
                Some(pg),
            )
        } else {
            let opts = PgConnectOptions::from_str(config.database.url.expose())
                .context("DATABASE_URL is not a valid PostgreSQL URL")?;
            (opts, None)
        };
        let pool = pool_options(&config.database)
            .connect_with(options)
            .await
            .context("connecting to PostgreSQL")?;
        MIGRATOR.run(&pool).await.context("applying migrations")?;
        Ok(Self { pool, embedded })
    }

    /// True on the very first start of a freshly created embedded cluster.
    pub fn is_first_start(&self) -> bool {
        self.embedded
            .as_ref()
            .is_some_and(EmbeddedPostgres::freshly_initialized)
    }

    /// Closes the pool, then stops the embedded cluster if we started it.
    pub async fn close(mut self) -> anyhow::Result<()> {
        self.pool.close().await;
        if let Some(mut pg) = self.embedded.take() {
            tokio::task::spawn_blocking(move || pg.stop()).await??;
        }
        Ok(())
    }
}

/// True when every migration this binary knows has been applied successfully.
pub async fn is_migrated(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    let applied: Option<i64> =
        sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await?;
    Ok(applied.unwrap_or(0) >= latest)
}
