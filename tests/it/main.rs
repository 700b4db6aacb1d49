//! One integration-test binary: the whole gateway over a real PostgreSQL, real HTTP on
//! 127.0.0.1 and the real built binary.

mod helpers;

mod attacks;
mod auth;
mod binary;
mod certificate_applications;
mod credentialing;
mod direct;
mod dns;
mod docs;
mod first_run;
mod health;
mod hl7;
mod identity;
mod jobs;
mod layers;
mod limits;
mod messaging;
mod openapi;
mod pki;
mod shutdown;
mod smtp;
mod soap;
mod transport;
mod trust;
