//! Orchard's server-side domain, free of Leptos and HTTP: configuration, storage and
//! organizations today; the credential vault, identity, the device mirror and the
//! bulk-assignment job runner build on these.

pub mod config;
pub mod identity;
pub mod orgs;
pub mod store;

pub use config::Config;
pub use store::{Store, StoreError};
