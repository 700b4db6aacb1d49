//! Who is calling: API client credentials (HTTP Basic) and the secrets behind them.

pub mod argon;
pub mod basic;
pub mod secrets;
pub mod source;
pub mod throttle;

pub use basic::{Authenticated, Verifier};
pub use source::ClientAddr;
