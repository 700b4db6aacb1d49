pub mod dns_source;
pub mod sources;
