//! Sign-in with username, password and, when enrolled, a TOTP or recovery code.
//!
//! Failures look alike: an unknown user, a wrong password, a disabled user and a user
//! without a password all return [`LoginError::InvalidCredentials`] after the same
//! Argon2 work. Only after a correct password does the caller learn that a second
//! factor is needed ([`LoginError::TotpRequired`]).
//!
//! Throttling is kept in the store so it holds across instances and restarts: per
//! account, once `account_max_failures` failures fall in `account_window`, each further
//! attempt waits a delay that doubles with every failure (capped); per client address,
//! at most `address_max_attempts` attempts per `address_window`. A throttled attempt
//! does no password work and is not recorded, so waiting always helps.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::UserId;
use super::password::{MAX_PASSWORD_CHARS, Password, PasswordError, PasswordHasher};
use super::totp::{self, SecretSealer, TotpError};
use crate::config::AuthConfig;
use crate::store::identity::{Membership, username_key};
use crate::store::{IdentityStore, StoreError};

/// Result alias of this module.
pub type Result<T, E = LoginError> = std::result::Result<T, E>;

/// Why sign-in did not succeed. The first four are for the person signing in; the rest
/// are internal faults to log (with their source) and show as a generic error.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("the username or password is not correct")]
    InvalidCredentials,
    #[error("a one-time code is required")]
    TotpRequired,
    #[error("the one-time code is not correct")]
    InvalidSecondFactor,
    #[error("too many sign-in attempts; try again in {} s", retry_after.as_secs())]
    Throttled { retry_after: Duration },
    #[error("sign-in failed: storage")]
    Store(#[from] StoreError),
    #[error("sign-in failed: password hashing")]
    Password(#[from] PasswordError),
    #[error("sign-in failed: second factor")]
    Totp(#[source] TotpError),
}

/// Throttling limits. Defaults: 5 failures per account per 5 minutes, then 30 s doubling
/// up to 15 min; 10 attempts per client address per minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginPolicy {
    /// Failures per account tolerated within `account_window` before delays start.
    pub account_max_failures: u32,
    /// How long a failure counts against an account.
    pub account_window: Duration,
    /// Delay after the failure that reaches the limit; doubles with each further one.
    pub account_base_delay: Duration,
    /// Longest delay per account.
    pub account_max_delay: Duration,
    /// Attempts per client address within `address_window`.
    pub address_max_attempts: u32,
    /// Window of the per-address limit.
    pub address_window: Duration,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        Self::from(&AuthConfig::default())
    }
}

impl From<&AuthConfig> for LoginPolicy {
    fn from(config: &AuthConfig) -> Self {
        Self {
            account_max_failures: config.account_max_failures,
            account_window: Duration::from_secs(config.account_window_secs),
            account_base_delay: Duration::from_secs(config.account_base_delay_secs),
            account_max_delay: Duration::from_secs(config.account_max_delay_secs),
            address_max_attempts: config.address_max_attempts,
            address_window: Duration::from_secs(config.address_window_secs),
        }
    }
}

impl LoginPolicy {
    /// How long an account must wait after its latest failure, given its failures in
    /// the window; `None` below the limit.
    pub fn account_delay(&self, failures: u32) -> Option<Duration> {
        let over = failures.checked_sub(self.account_max_failures)?;
        let factor = 2_u32.checked_pow(over).unwrap_or(u32::MAX);
        Some(
            self.account_base_delay
                .checked_mul(factor)
                .map_or(self.account_max_delay, |d| d.min(self.account_max_delay)),
        )
    }
}

/// The second factor as typed: a 6-digit TOTP code or a recovery code. Zeroed on drop.
#[derive(Clone)]
pub struct SecondFactor(Zeroizing<String>);

impl SecondFactor {
    pub fn new(code: impl Into<String>) -> Self {
        Self(Zeroizing::new(code.into()))
    }
}

impl std::fmt::Debug for SecondFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecondFactor(***)")
    }
}

/// One sign-in attempt as submitted.
#[derive(Debug, Clone)]
pub struct LoginAttempt {
    pub username: String,
    pub password: Password,
    pub second_factor: Option<SecondFactor>,
    /// The client's address, as the server's trusted proxy configuration determines it.
    pub client_addr: IpAddr,
}

/// A user who has just proven who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedUser {
    pub user_id: UserId,
    pub username: String,
    pub display_name: String,
    pub instance_admin: bool,
    pub memberships: Vec<Membership>,
    /// When authentication happened: the start of the absolute session timeout.
    pub auth_time: OffsetDateTime,
    /// A recovery code was spent; the UI should suggest issuing new ones.
    pub used_recovery_code: bool,
}

/// Signs users in. Cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    pub hasher: PasswordHasher,
    pub sealer: Arc<dyn SecretSealer>,
    pub policy: LoginPolicy,
}

impl Authenticator {
    /// Checks an attempt at time `now` and records its outcome for throttling.
    #[tracing::instrument(name = "login.authenticate", skip_all, fields(client = %attempt.client_addr))]
    pub async fn authenticate(
        &self,
        store: &dyn IdentityStore,
        attempt: &LoginAttempt,
        now: OffsetDateTime,
    ) -> Result<AuthenticatedUser> {
        let account_key = format!("account:{}", username_key(&attempt.username));
        let address_key = format!("addr:{}", address_bucket(attempt.client_addr));
        self.check_throttle(store, &account_key, &address_key, now)
            .await?;
        let keys = [account_key.as_str(), address_key.as_str()];

        let user = if attempt.password.expose().chars().count() > MAX_PASSWORD_CHARS {
            None
        } else {
            match store.user_by_username(&attempt.username).await {
                Ok(user) => Some(user),
                Err(StoreError::NotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            }
        };
        let stored_hash = user.as_ref().and_then(|u| u.password_hash.as_deref());
        let password_ok = self.hasher.verify(&attempt.password, stored_hash).await?;
        let user = match user {
            Some(user) if password_ok && !user.disabled => user,
            _ => {
                store.record_login_attempt(&keys, now, true).await?;
                tracing::info!(outcome = "invalid_credentials", "sign-in refused");
                return Err(LoginError::InvalidCredentials);
            }
        };

        let mut used_recovery_code = false;
        if user.totp_enabled {
            let Some(code) = &attempt.second_factor else {
                store.record_login_attempt(&keys[1..], now, false).await?;
                return Err(LoginError::TotpRequired);
            };
            let accepted = if totp::looks_like_recovery_code(&code.0) {
                used_recovery_code = true;
                totp::use_recovery_code(store, user.id, &code.0, now).await
            } else if let Some(sealed) = &user.totp_secret {
                totp::verify_code(store, self.sealer.as_ref(), user.id, sealed, &code.0, now).await
            } else {
                Ok(false)
            }
            .map_err(LoginError::Totp)?;
            if !accepted {
                store.record_login_attempt(&keys, now, true).await?;
                tracing::info!(outcome = "invalid_second_factor", user = %user.id, "sign-in refused");
                return Err(LoginError::InvalidSecondFactor);
            }
        }

        store.record_login_attempt(&keys[1..], now, false).await?;
        store.clear_login_failures(&account_key).await?;
        store.set_last_login(user.id, now).await?;
        let memberships = store.memberships_of(user.id).await?;
        tracing::info!(outcome = "success", user = %user.id, used_recovery_code, "signed in");
        Ok(AuthenticatedUser {
            user_id: user.id,
            username: user.username,
            display_name: user.display_name,
            instance_admin: user.instance_admin,
            memberships,
            auth_time: now,
            used_recovery_code,
        })
    }

    async fn check_throttle(
        &self,
        store: &dyn IdentityStore,
        account_key: &str,
        address_key: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        let policy = &self.policy;
        let address = store
            .login_attempt_stats(address_key, now - policy.address_window)
            .await?;
        if address.attempts >= policy.address_max_attempts {
            let free_at = address.oldest_attempt.unwrap_or(now) + policy.address_window;
            return Err(throttled(free_at, now, "address"));
        }
        let account = store
            .login_attempt_stats(account_key, now - policy.account_window)
            .await?;
        if let (Some(delay), Some(latest)) = (
            policy.account_delay(account.failures),
            account.latest_failure,
        ) {
            let free_at = latest + delay;
            if now < free_at {
                return Err(throttled(free_at, now, "account"));
            }
        }
        Ok(())
    }
}

fn throttled(free_at: OffsetDateTime, now: OffsetDateTime, scope: &'static str) -> LoginError {
    let retry_after = Duration::try_from(free_at - now)
        .unwrap_or_default()
        .max(Duration::from_secs(1));
    tracing::warn!(
        scope,
        retry_after_secs = retry_after.as_secs(),
        "sign-in throttled"
    );
    LoginError::Throttled { retry_after }
}

/// IPv4 addresses count one by one; IPv6 by /64, since one client usually holds a whole /64.
fn address_bucket(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Forgets attempts older than the longest throttle window; run periodically.
pub async fn prune_attempts(
    store: &dyn IdentityStore,
    policy: &LoginPolicy,
    now: OffsetDateTime,
) -> Result<u64> {
    let longest = policy.account_window.max(policy.address_window);
    Ok(store.prune_login_attempts(now - longest).await?)
}

/// Prunes old attempts every `period` until dropped or storage fails. Spawn it at start.
pub async fn prune_attempts_every(
    store: Arc<dyn IdentityStore>,
    policy: LoginPolicy,
    clock: super::sessions::Clock,
    period: Duration,
) -> Result<()> {
    let mut interval = tokio::time::interval(period);
    loop {
        interval.tick().await;
        let pruned = prune_attempts(store.as_ref(), &policy, clock.now()).await?;
        tracing::debug!(pruned, "old sign-in attempts pruned");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_start_at_the_limit_double_and_stop_at_the_cap() {
        let policy = LoginPolicy::default();
        assert_eq!(policy.account_delay(4), None);
        assert_eq!(policy.account_delay(5), Some(Duration::from_secs(30)));
        assert_eq!(policy.account_delay(6), Some(Duration::from_secs(60)));
        assert_eq!(policy.account_delay(7), Some(Duration::from_secs(120)));
        assert_eq!(policy.account_delay(10), Some(Duration::from_secs(900)));
        assert_eq!(
            policy.account_delay(u32::MAX),
            Some(Duration::from_secs(900))
        );
    }

    #[test]
    fn ipv6_clients_are_bucketed_by_their_64_bit_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(address_bucket(a), address_bucket(b));
        assert_eq!(
            address_bucket("::ffff:10.0.0.1".parse().unwrap()),
            "10.0.0.1"
        );
        assert_ne!(
            address_bucket("10.0.0.1".parse().unwrap()),
            address_bucket("10.0.0.2".parse().unwrap())
        );
    }

    #[test]
    fn second_factors_never_print() {
        assert_eq!(
            format!("{:?}", SecondFactor::new("123456")),
            "SecondFactor(***)"
        );
    }
}
