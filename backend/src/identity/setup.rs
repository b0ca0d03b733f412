//! First run: a one-time link creates the first administrator.
//!
//! While no user exists, the server creates a setup token (32 random bytes, base64url)
//! and prints the link to the console. Only the token's SHA-256 is stored, with an
//! expiry. Redeeming it creates the first instance administrator in one transaction
//! that also marks the token used and inserts the single `setup_completed` row, so of
//! several concurrent redemptions exactly one wins. There is no default password.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::UserId;
use super::password::{
    Password, PasswordError, PasswordHasher, PasswordRuleError, check_new_password,
};
use super::users::{UsernameError, parse_username};
use crate::store::identity::{NewUser, UserRow};
use crate::store::{IdentityStore, StoreError};

/// Result alias of this module.
pub type Result<T, E = SetupError> = std::result::Result<T, E>;

/// Why setup could not proceed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("setup is already complete")]
    AlreadyDone,
    #[error("the setup link is invalid, used or expired")]
    InvalidToken,
    #[error(transparent)]
    Username(#[from] UsernameError),
    #[error(transparent)]
    PasswordRule(#[from] PasswordRuleError),
    #[error("setup failed: password hashing")]
    Password(#[from] PasswordError),
    #[error("setup failed: storage")]
    Store(#[source] StoreError),
}

impl From<StoreError> for SetupError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound { .. } => Self::InvalidToken,
            StoreError::Conflict { constraint } if constraint == "setup_completed" => {
                Self::AlreadyDone
            }
            other => Self::Store(other),
        }
    }
}

/// A setup token in plaintext, to print once. Zeroed on drop, printed as `***` by `Debug`.
pub struct SetupToken(Zeroizing<String>);

impl SetupToken {
    /// The token for the setup link (base64url, 43 characters).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SetupToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetupToken(***)")
    }
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Creates a setup token valid for `ttl`, or `AlreadyDone` when users exist.
#[tracing::instrument(name = "setup.create_token", skip_all)]
pub async fn create_setup_token(
    store: &dyn IdentityStore,
    ttl: Duration,
    now: OffsetDateTime,
) -> Result<SetupToken> {
    if store.count_users().await? > 0 {
        return Err(SetupError::AlreadyDone);
    }
    let mut bytes = Zeroizing::new([0_u8; 32]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    let token = Zeroizing::new(URL_SAFE_NO_PAD.encode(bytes.as_ref()));
    store
        .insert_setup_token(&token_hash(&token), now, now + ttl)
        .await?;
    Ok(SetupToken(token))
}

/// Redeems a setup token: creates the first user, an instance administrator, exactly once.
#[tracing::instrument(name = "setup.redeem_token", skip_all)]
pub async fn redeem_setup_token(
    store: &dyn IdentityStore,
    hasher: &PasswordHasher,
    token: &str,
    username: &str,
    password: &Password,
    now: OffsetDateTime,
) -> Result<UserRow> {
    let username = parse_username(username)?;
    check_new_password(password, &username)?;
    let password_hash = hasher.hash(password).await?;
    let admin = NewUser {
        id: UserId::random(),
        display_name: username.clone(),
        username,
        email: None,
        password_hash: Some(password_hash),
        instance_admin: true,
        oidc: None,
        created_at: now,
    };
    let user = store
        .redeem_setup_token(&token_hash(token), now, &admin)
        .await?;
    tracing::info!(user = %user.id, "first administrator created");
    Ok(user)
}
