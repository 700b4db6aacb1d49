//! The Direct message formats, free of I/O and database: the RFC 5322/MIME message we build
//! and read (`mime`), the IHE XDM package (`xdm`), and whether a peer's certificate may be
//! used (`validate`).

pub mod mime;
pub mod validate;
pub mod xdm;
