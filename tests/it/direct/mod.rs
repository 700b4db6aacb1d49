//! The pure Direct formats judged by outside tools: S/MIME against the `openssl cms` CLI, and
//! delivery notifications against hand-written peer fixtures.

mod mdn;
mod pki;
mod smime;
