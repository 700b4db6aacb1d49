//! Who is calling: API client credentials (HTTP Basic) and the secrets behind them.

pub mod basic;
pub mod secrets;

pub use basic::{Authenticated, Verifier};
