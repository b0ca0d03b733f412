//! Orchard's server-side domain, free of Leptos and HTTP: configuration, storage,
//! organizations, the credential vault ([`vault`]), Apple API accounts ([`accounts`]),
//! Orchard's own audit log ([`audit`]) and demo mode ([`demo`]); identity, the device mirror
//! and the bulk-assignment job runner build on these.

/// `as_str` and `parse` between a unit enum and its stored names, e.g.
/// `wire_names!(State { Running = "running", Done = "done" });`.
macro_rules! wire_names {
    ($ty:ident { $($variant:ident = $wire:literal),+ $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $wire,)+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($wire => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}

pub mod accounts;
pub mod audit;
pub mod config;
pub mod demo;
pub mod identity;
pub mod jobs;
pub mod lease;
pub mod mirror;
pub mod oidc;
pub mod orgs;
pub mod store;
pub mod vault;

pub use config::Config;
pub use store::{Store, StoreError};
