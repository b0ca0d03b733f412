//! Passwords: Argon2id hashing and the rules a new password must meet.
//!
//! Hashing costs ~19 MiB and tens of milliseconds of CPU by design, so it runs on
//! `spawn_blocking`, and a semaphore caps how many run at once: a burst of sign-ins
//! queues instead of exhausting memory or starving the runtime. When the user does not
//! exist, a dummy hash with the same parameters is verified so that the answer takes
//! the same time (no user enumeration by timing).

use std::fmt;
use std::sync::{Arc, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

/// Shortest accepted new password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest accepted password, in characters; caps the work an attacker can ask for.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Result alias of this module.
pub type Result<T, E = PasswordError> = std::result::Result<T, E>;

/// Why hashing or verifying failed (never because the password was wrong: that is `Ok(false)`).
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hash(argon2::password_hash::Error),
    #[error("the password hashing task did not finish")]
    Task(#[source] tokio::task::JoinError),
    #[error("the password hasher is shut down")]
    Closed,
}

/// A password as typed. Zeroed on drop, printed as `***`, and deliberately neither
/// `Serialize` nor `Display`, so it cannot end up in a log line or a response.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    pub fn new(password: impl Into<String>) -> Self {
        Self(Zeroizing::new(password.into()))
    }

    /// The plain text, for hashing and rule checks only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Password {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Why a new password is refused; the messages are shown to the person choosing it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRuleError {
    #[error("the password must be at least {MIN_PASSWORD_CHARS} characters long")]
    TooShort,
    #[error("the password must be at most {MAX_PASSWORD_CHARS} characters long")]
    TooLong,
    #[error("the password must not be the username")]
    SameAsUsername,
}

/// Checks a new password against Orchard's rules: length 12 to 1024 characters, not the
/// username (in any case). No composition rules, following NIST SP 800-63B.
pub fn check_new_password(password: &Password, username: &str) -> Result<(), PasswordRuleError> {
    let chars = password.expose().chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PasswordRuleError::TooShort);
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(PasswordRuleError::TooLong);
    }
    if password.expose().trim().to_lowercase() == username.trim().to_lowercase() {
        return Err(PasswordRuleError::SameAsUsername);
    }
    Ok(())
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashCost {
    /// Memory per hash, in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl HashCost {
    /// OWASP's recommendation for Argon2id: 19 MiB, 2 passes, 1 lane.
    pub const OWASP: Self = Self {
        memory_kib: 19_456,
        iterations: 2,
        parallelism: 1,
    };

    /// The cheapest cost Argon2 accepts. For tests only: never for stored passwords.
    pub const TEST_ONLY: Self = Self {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };

    fn argon2(self) -> Result<Argon2<'static>> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| PasswordError::Hash(e.into()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// Hashes and verifies passwords off the async runtime, a bounded number at a time.
/// Cheap to clone; clones share the limit.
#[derive(Clone)]
pub struct PasswordHasher {
    cost: HashCost,
    permits: Arc<Semaphore>,
    dummy: Arc<OnceLock<String>>,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("cost", &self.cost)
            .field("available", &self.permits.available_permits())
            .finish()
    }
}

impl PasswordHasher {
    /// OWASP cost, at most `max_concurrent` (at least 1) hashes at a time.
    pub fn new(max_concurrent: usize) -> Self {
        Self::with_cost(HashCost::OWASP, max_concurrent)
    }

    /// A chosen cost; production uses [`PasswordHasher::new`].
    pub fn with_cost(cost: HashCost, max_concurrent: usize) -> Self {
        Self {
            cost,
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            dummy: Arc::new(OnceLock::new()),
        }
    }

    /// Hashes a password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) with a fresh salt.
    #[tracing::instrument(name = "password.hash", skip_all)]
    pub async fn hash(&self, password: &Password) -> Result<String> {
        let cost = self.cost;
        let password = password.clone();
        self.blocking(move || hash_now(cost, &password)).await
    }

    /// Whether `password` matches `stored`. With `stored == None` (unknown user, SSO-only
    /// user) a dummy hash is verified instead and the answer is `false`, in the same time.
    #[tracing::instrument(name = "password.verify", skip_all)]
    pub async fn verify(&self, password: &Password, stored: Option<&str>) -> Result<bool> {
        let (phc, real) = match stored {
            Some(phc) => (phc.to_owned(), true),
            None => (self.dummy_hash()?, false),
        };
        let password = password.clone();
        let matches = self
            .blocking(move || {
                let parsed = PasswordHash::new(&phc).map_err(PasswordError::Hash)?;
                // Parameters come from the stored hash, so older costs keep verifying.
                Ok(Argon2::default()
                    .verify_password(password.expose().as_bytes(), &parsed)
                    .is_ok())
            })
            .await?;
        Ok(real && matches)
    }

    fn dummy_hash(&self) -> Result<String> {
        if let Some(hash) = self.dummy.get() {
            return Ok(hash.clone());
        }
        let hash = hash_now(self.cost, &Password::new("orchard-dummy-password"))?;
        Ok(self.dummy.get_or_init(|| hash).clone())
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PasswordError::Closed)?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(PasswordError::Task)?
    }
}

fn hash_now(cost: HashCost, password: &Password) -> Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Ok(cost
        .argon2()?
        .hash_password(password.expose().as_bytes(), &salt)
        .map_err(PasswordError::Hash)?
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> PasswordHasher {
        PasswordHasher::with_cost(HashCost::TEST_ONLY, 2)
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_no_other() {
        let hasher = hasher();
        let hash = hasher
            .hash(&Password::new("correct horse battery"))
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
        assert!(
            hasher
                .verify(&Password::new("correct horse battery"), Some(&hash))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(&Password::new("correct horse batterY"), Some(&hash))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn the_same_password_hashes_differently_each_time() {
        let hasher = hasher();
        let a = hasher
            .hash(&Password::new("same password here"))
            .await
            .unwrap();
        let b = hasher
            .hash(&Password::new("same password here"))
            .await
            .unwrap();
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn production_hashes_use_owasp_argon2id_parameters() {
        let hash = PasswordHasher::new(1)
            .hash(&Password::new("a long enough password"))
            .await
            .unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
    }

    #[tokio::test]
    async fn without_a_stored_hash_verification_fails_even_for_the_dummy_password() {
        let hasher = hasher();
        assert!(
            !hasher
                .verify(&Password::new("orchard-dummy-password"), None)
                .await
                .unwrap()
        );
        assert!(
            hasher.dummy.get().is_some(),
            "the dummy hash was computed and kept"
        );
    }

    #[tokio::test]
    async fn a_corrupt_stored_hash_is_an_error_not_a_match() {
        let err = hasher()
            .verify(
                &Password::new("whatever password"),
                Some("not-a-phc-string"),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, PasswordError::Hash(_)), "{err:?}");
    }

    #[test]
    fn at_least_one_concurrent_hash_is_always_allowed() {
        assert_eq!(PasswordHasher::new(0).permits.available_permits(), 1);
        assert_eq!(PasswordHasher::new(3).permits.available_permits(), 3);
    }

    #[test]
    fn password_rules_have_clear_messages() {
        let too_short = check_new_password(&Password::new("short pass"), "ann").unwrap_err();
        assert_eq!(
            too_short.to_string(),
            "the password must be at least 12 characters long"
        );
        assert_eq!(
            check_new_password(&Password::new("x".repeat(1025)), "ann"),
            Err(PasswordRuleError::TooLong)
        );
        assert_eq!(
            check_new_password(&Password::new("Administrator"), "administrator"),
            Err(PasswordRuleError::SameAsUsername)
        );
        assert_eq!(
            check_new_password(&Password::new("x".repeat(1024)), "ann"),
            Ok(())
        );
        assert_eq!(
            check_new_password(&Password::new("twelve chars"), "ann"),
            Ok(())
        );
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        assert_eq!(
            check_new_password(&Password::new("äöüäöüäöüäö"), "ann"),
            Err(PasswordRuleError::TooShort)
        );
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let printed = format!("{:?}", Password::new("canary-password-123"));
        assert_eq!(printed, "Password(***)");
    }
}
