//! `hisp-gateway ca`: the certificate authority and Direct certificates.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use clap::Subcommand;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::PKey;
use openssl::x509::X509;

use super::Ctx;
use crate::jobs::Worker;
use crate::service;
use crate::service::pki::PkiContext;

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create a root and an issuing CA, or import an existing CA (PEM certificate + key, or
    /// PKCS#12 whose password is read from the variable GW_CA_IMPORT_PASSWORD).
    Init {
        #[arg(
            long,
            value_name = "CERT.pem",
            requires = "import_key",
            conflicts_with = "import_p12"
        )]
        import_cert: Option<PathBuf>,
        #[arg(long, value_name = "KEY.pem")]
        import_key: Option<PathBuf>,
        #[arg(long, value_name = "CA.p12")]
        import_p12: Option<PathBuf>,
        /// The root certificate above an imported CA that is not self-signed.
        #[arg(long, value_name = "ROOT.pem")]
        import_root: Option<PathBuf>,
    },
    /// Issue a Direct certificate: domain-bound for the organization, or address-bound.
    Issue {
        /// The organization's Direct domain.
        #[arg(long, value_name = "DOMAIN")]
        org: String,
        /// A Direct address in that domain, for an address-bound certificate.
        #[arg(long)]
        address: Option<String>,
        /// CoveredEntity, BusinessAssociate, HealthEntity or Patient (default: the
        /// organization's category).
        #[arg(long)]
        category: Option<String>,
        #[arg(long, default_value_t = 1)]
        years: i64,
        #[arg(long)]
        no_auto_renew: bool,
    },
    /// Revoke a certificate and publish a new CRL.
    Revoke {
        serial: String,
        #[arg(long, default_value = "unspecified")]
        reason: String,
    },
    /// Publish a fresh CRL and print it (PEM).
    Crl {
        /// The root's CRL instead of the issuing CA's.
        #[arg(long)]
        root: bool,
    },
    /// List certificates.
    List {
        #[arg(long, value_name = "DOMAIN")]
        org: Option<String>,
    },
}

pub async fn run(command: CaCommand, ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let (config, db, actor) = (ctx.config, ctx.pool, &ctx.actor);
    let pki = &Arc::new(PkiContext::from_config(config));
    let now = Utc::now();
    match command {
        CaCommand::Init {
            import_cert,
            import_key,
            import_p12,
            import_root,
        } => {
            let root = import_root.map(|p| read_pem_cert(&p)).transpose()?;
            let summary = match (import_cert, import_key, import_p12) {
                (Some(c), Some(k), None) => {
                    let cert = read_pem_cert(&c)?;
                    let key = PKey::private_key_from_pem(&std::fs::read(&k)?)
                        .with_context(|| format!("{} is not a PEM private key", k.display()))?;
                    service::pki::import_ca(db, pki, cert, key, root, actor, now).await?
                }
                (None, None, Some(p)) => {
                    let password = std::env::var("GW_CA_IMPORT_PASSWORD").unwrap_or_default();
                    let parsed = Pkcs12::from_der(&std::fs::read(&p)?)
                        .and_then(|p12| p12.parse2(&password))
                        .with_context(|| {
                            format!(
                                "{} cannot be opened (is GW_CA_IMPORT_PASSWORD right?)",
                                p.display()
                            )
                        })?;
                    let (Some(cert), Some(key)) = (parsed.cert, parsed.pkey) else {
                        anyhow::bail!("{} holds no certificate with its key", p.display());
                    };
                    service::pki::import_ca(db, pki, cert, key, root, actor, now).await?
                }
                (None, None, None) => service::pki::init_ca(db, pki, actor, now).await?,
                _ => anyhow::bail!("give --import-cert with --import-key, or --import-p12"),
            };
            println!(
                "root: {}\nissuing: {}\nissuing valid until: {}",
                summary.root_subject, summary.issuing_subject, summary.issuing_not_after
            );
            println!(
                "trust anchor: {}",
                crate::ca::root_cert_url(&config.http.public_base_url)
            );
        }
        CaCommand::Issue {
            org,
            address,
            category,
            years,
            no_auto_renew,
        } => {
            let req = service::pki::CertificateRequest {
                organization: org,
                address,
                category,
                years,
                auto_renew: !no_auto_renew,
            };
            let ids = service::pki::request_certificate(db, pki, &req, actor).await?;
            // Issue now rather than waiting for a server's worker.
            let registry = crate::state::AppState::new(config.clone(), db.clone()).job_registry();
            let worker = Worker::new(db.clone(), registry, &config.jobs);
            worker.run_until_idle().await?;
            let mut conn = db.acquire().await?;
            for id in ids {
                let c = crate::store::pki::get(&mut conn, id).await?;
                println!(
                    "serial: {}\nstatus: {}\nnot_after: {}",
                    c.serial.as_deref().unwrap_or("-"),
                    c.status.as_str(),
                    c.not_after.map(|t| t.to_rfc3339()).unwrap_or_default()
                );
            }
        }
        CaCommand::Revoke { serial, reason } => {
            let c = service::pki::revoke(db, pki, &serial, &reason, actor, now).await?;
            println!(
                "revoked {} ({}); the CRL is published",
                c.serial.as_deref().unwrap_or("-"),
                c.subject_name
            );
        }
        CaCommand::Crl { root } => {
            let role = if root {
                service::pki::ROOT
            } else {
                service::pki::ISSUING
            };
            let crl = service::pki::publish_crl_now(db, pki, role, now).await?;
            print!("{}", String::from_utf8_lossy(&crl.to_pem()?));
        }
        CaCommand::List { org } => {
            let q = service::pki::CertificateQuery {
                organization: org.as_deref(),
                address: None,
            };
            println!(
                "{:<34}  {:<10}  {:<8}  {:<17}  {:<10}  subject",
                "serial", "status", "binding", "category", "not_after"
            );
            for c in service::pki::list(db, &q).await? {
                println!(
                    "{:<34}  {:<10}  {:<8}  {:<17}  {:<10}  {}",
                    c.serial.as_deref().unwrap_or("-"),
                    c.status.as_str(),
                    c.binding,
                    c.category.as_str(),
                    c.not_after
                        .map(|t| t.format("%Y-%m-%d").to_string())
                        .unwrap_or_default(),
                    c.subject_name
                );
            }
        }
    }
    Ok(())
}

fn read_pem_cert(path: &std::path::Path) -> anyhow::Result<X509> {
    X509::from_pem(&std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
        .with_context(|| format!("{} is not a PEM certificate", path.display()))
}
