//! The Direct message formats, free of I/O and database: the RFC 5322/MIME message we build
//! and read (`mime`), the IHE XDM package (`xdm`), S/MIME between HISPs (`smime`, over the
//! bounded MIME reader in `entity`), delivery notifications (`mdn`), and whether a peer's
//! certificate may be used (`validate`).

pub mod entity;
pub mod mdn;
pub mod mime;
pub mod smime;
pub mod validate;
pub mod xdm;
