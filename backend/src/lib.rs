//! Orchard's server-side domain, free of Leptos and HTTP: configuration, storage,
//! organizations, the credential vault ([`vault`]), Apple API accounts ([`accounts`]),
//! Orchard's own audit log ([`audit`]) and demo mode ([`demo`]); identity, the device mirror
//! and the bulk-assignment job runner build on these.

pub mod accounts;
pub mod audit;
pub mod config;
pub mod demo;
pub mod identity;
pub mod jobs;
pub mod mirror;
pub mod oidc;
pub mod orgs;
pub mod store;
pub mod vault;

pub use config::Config;
pub use store::{Store, StoreError};
