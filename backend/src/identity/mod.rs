//! Who may do what: Orchard's users, their roles per organization, and how they
//! prove who they are.
//!
//! - [`roles`]: the one table of what each role may do.
//! - [`password`]: Argon2id hashing off the async runtime, password rules.
//! - [`totp`]: RFC 6238 codes with replay protection, recovery codes.
//! - [`login`]: the sign-in service with persistent throttling.
//! - [`setup`]: the one-time link that creates the first administrator.
//! - [`sessions`]: tower-sessions storage on Orchard's database, the typed session bucket.
//! - [`users`]: user administration and SSO user provisioning.
//! - [`sso`]: group → role rules for single sign-on (configured and stored).
//!
//! Services here are plain async functions over [`crate::store::IdentityStore`]; they take
//! the current time as an argument so that tests control the clock.

pub mod login;
pub mod password;
pub mod roles;
pub mod sessions;
pub mod setup;
pub mod sso;
pub mod totp;
pub mod users;

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

pub use roles::{Permission, Role};

/// Identifies an Orchard user. Random (UUID v4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub Uuid);

impl UserId {
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Current time truncated to whole seconds, the precision both databases keep exactly.
pub fn now_utc() -> OffsetDateTime {
    truncate_to_seconds(OffsetDateTime::now_utc())
}

/// Drops the sub-second part, so values round-trip identically through either database.
pub fn truncate_to_seconds(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(0).unwrap_or(at)
}
