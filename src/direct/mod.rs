//! The Direct message formats, free of I/O and database: the RFC 5322/MIME message we build
//! and read (`mime`), and the IHE XDM package (`xdm`).

pub mod mime;
pub mod xdm;
