//! hisp-gateway: a HISP for US Direct Secure Messaging. See README.md for the map.

pub mod app;
pub mod auth;
pub mod ca;
pub mod cli;
pub mod clock;
pub mod config;
pub mod cpu;
pub mod credentialing;
pub mod direct;
pub mod dns;
pub mod domain;
pub mod egress;
pub mod error;
#[cfg(test)]
pub mod fuzzing;
pub mod hl7;
pub mod http;
pub mod jobs;
pub mod limits;
pub mod memory;
pub mod ops;
pub mod rest;
pub mod service;
pub mod smtp;
pub mod soap;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod webhooks;
pub mod xml;

/// One rustls crypto provider for the whole process (sqlx, reqwest); installing twice is fine.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
