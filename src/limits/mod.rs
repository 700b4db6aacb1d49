//! Bounds that protect the gateway's shared resources, whichever door a request came through:
//! a client's request rate (`rate`) and how many requests of a kind are worked on at once
//! (`admission`). Plain data structures; each door decides how it answers when one says no.

pub mod admission;
pub mod rate;

pub use admission::Admission;
pub use rate::RateLimiter;
