//! Sessions: tower-sessions records in Orchard's own database, and the typed bucket
//! holding who is signed in.
//!
//! [`DbSessionStore`] implements `tower_sessions_core::SessionStore` over
//! [`IdentityStore`], so sessions survive restarts and are shared by every instance on
//! PostgreSQL. Records are JSON. Idle (30 min) and absolute (12 h) timeouts are checked
//! by [`SessionTimeouts::check`], a pure function of the bucket and the time; the
//! cookie's own expiry is only an upper bound.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;
use tower_sessions_core::Session;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store::{self, ExpiredDeletion, SessionStore};

use super::UserId;
use crate::config::AuthConfig;
use crate::store::IdentityStore;

/// Session key of the signed-in user's id.
pub const USER_ID_KEY: &str = "auth.user_id";
/// Session key of the time the user authenticated (Unix seconds).
pub const AUTH_TIME_KEY: &str = "auth.auth_time";
/// Session key of the time of the user's latest request (Unix seconds).
pub const LAST_SEEN_KEY: &str = "auth.last_seen";

/// Result alias of this module.
pub type Result<T, E = SessionError> = std::result::Result<T, E>;

/// Why reading or writing the session bucket failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("session storage failed")]
    Session(#[from] tower_sessions_core::session::Error),
    #[error("a session timestamp is out of range")]
    Timestamp,
}

/// Source of the current time; tests substitute a fixed or stepping clock.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> OffsetDateTime + Send + Sync>);

impl Clock {
    /// The system clock, in whole seconds.
    pub fn system() -> Self {
        Self(Arc::new(super::now_utc))
    }

    pub fn from_fn(now: impl Fn() -> OffsetDateTime + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    pub fn now(&self) -> OffsetDateTime {
        (self.0)()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Clock")
    }
}

/// tower-sessions storage on top of Orchard's [`IdentityStore`].
#[derive(Clone)]
pub struct DbSessionStore {
    store: Arc<dyn IdentityStore>,
    clock: Clock,
}

impl fmt::Debug for DbSessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DbSessionStore")
    }
}

impl DbSessionStore {
    pub fn new(store: Arc<dyn IdentityStore>, clock: Clock) -> Self {
        Self { store, clock }
    }
}

fn backend(err: crate::store::StoreError) -> session_store::Error {
    session_store::Error::Backend(err.to_string())
}

fn encode(record: &Record) -> session_store::Result<Vec<u8>> {
    serde_json::to_vec(record).map_err(|e| session_store::Error::Encode(e.to_string()))
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        loop {
            let data = encode(record)?;
            let inserted = self
                .store
                .insert_session(&record.id.to_string(), &data, record.expiry_date)
                .await
                .map_err(backend)?;
            if inserted {
                return Ok(());
            }
            // A 128-bit id collided: astronomically rare, so simply draw another.
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.store
            .save_session(&record.id.to_string(), &encode(record)?, record.expiry_date)
            .await
            .map_err(backend)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let Some(data) = self
            .store
            .load_session(&id.to_string(), self.clock.now())
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| session_store::Error::Decode(e.to_string()))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.store
            .delete_session(&id.to_string())
            .await
            .map_err(backend)
    }
}

#[async_trait]
impl ExpiredDeletion for DbSessionStore {
    async fn delete_expired(&self) -> session_store::Result<()> {
        let deleted = self
            .store
            .delete_expired_sessions(self.clock.now())
            .await
            .map_err(backend)?;
        tracing::debug!(deleted, "expired sessions deleted");
        Ok(())
    }
}

/// Deletes expired sessions every `period` until the task is dropped or storage fails.
/// Spawn it at start: `tokio::spawn(delete_expired_sessions_every(store, period))`.
pub async fn delete_expired_sessions_every(
    store: DbSessionStore,
    period: Duration,
) -> session_store::Result<()> {
    store.continuously_delete_expired(period).await
}

/// Who is signed in, as kept in the session under the `auth.*` keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionData {
    pub user_id: UserId,
    /// When the user authenticated; the absolute timeout counts from here.
    pub auth_time: OffsetDateTime,
    /// The latest request; the idle timeout counts from here.
    pub last_seen: OffsetDateTime,
}

impl SessionData {
    /// A bucket for a user who authenticated at `now`.
    pub fn new(user_id: UserId, now: OffsetDateTime) -> Self {
        Self {
            user_id,
            auth_time: now,
            last_seen: now,
        }
    }

    /// Reads the bucket; `None` when nobody is signed in (or the bucket is partial).
    pub async fn load(session: &Session) -> Result<Option<Self>> {
        let user_id: Option<UserId> = session.get(USER_ID_KEY).await?;
        let auth_time: Option<i64> = session.get(AUTH_TIME_KEY).await?;
        let last_seen: Option<i64> = session.get(LAST_SEEN_KEY).await?;
        let (Some(user_id), Some(auth_time), Some(last_seen)) = (user_id, auth_time, last_seen)
        else {
            return Ok(None);
        };
        let at =
            |secs| OffsetDateTime::from_unix_timestamp(secs).map_err(|_| SessionError::Timestamp);
        Ok(Some(Self {
            user_id,
            auth_time: at(auth_time)?,
            last_seen: at(last_seen)?,
        }))
    }

    /// Writes the bucket. On sign-in call `session.cycle_id()` first (session fixation).
    pub async fn store(&self, session: &Session) -> Result<()> {
        session.insert(USER_ID_KEY, self.user_id).await?;
        session
            .insert(AUTH_TIME_KEY, self.auth_time.unix_timestamp())
            .await?;
        session
            .insert(LAST_SEEN_KEY, self.last_seen.unix_timestamp())
            .await?;
        Ok(())
    }
}

/// Session lifetime limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimeouts {
    /// Longest gap between requests (default 30 min).
    pub idle: Duration,
    /// Longest time since authentication, however active (default 12 h).
    pub absolute: Duration,
}

impl From<&AuthConfig> for SessionTimeouts {
    fn from(config: &AuthConfig) -> Self {
        Self {
            idle: Duration::from_secs(config.idle_timeout_secs),
            absolute: Duration::from_secs(config.absolute_timeout_secs),
        }
    }
}

impl Default for SessionTimeouts {
    fn default() -> Self {
        Self::from(&AuthConfig::default())
    }
}

/// Whether a session may still be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionValidity {
    Valid,
    /// No request for longer than the idle timeout.
    IdleExpired,
    /// Authenticated longer ago than the absolute timeout.
    AbsoluteExpired,
}

impl SessionTimeouts {
    /// Judges a session at `now`. A session whose times lie in the future (clock skew
    /// between instances) is judged by its recorded times, never extended.
    pub fn check(&self, data: &SessionData, now: OffsetDateTime) -> SessionValidity {
        if now >= data.auth_time + self.absolute {
            SessionValidity::AbsoluteExpired
        } else if now >= data.last_seen + self.idle {
            SessionValidity::IdleExpired
        } else {
            SessionValidity::Valid
        }
    }

    /// The cookie/record expiry to set at `now`: the sooner of idle and absolute end.
    pub fn expiry(&self, data: &SessionData, now: OffsetDateTime) -> OffsetDateTime {
        (now + self.idle).min(data.auth_time + self.absolute)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use time::macros::datetime;

    use super::*;

    const T0: OffsetDateTime = datetime!(2026-01-01 09:00 UTC);

    fn data() -> SessionData {
        SessionData::new(UserId::random(), T0)
    }

    #[test]
    fn a_fresh_session_is_valid() {
        assert_eq!(
            SessionTimeouts::default().check(&data(), T0),
            SessionValidity::Valid
        );
    }

    #[test]
    fn thirty_idle_minutes_end_a_session() {
        let timeouts = SessionTimeouts::default();
        let data = data();
        let just_before = T0 + Duration::from_secs(29 * 60 + 59);
        assert_eq!(timeouts.check(&data, just_before), SessionValidity::Valid);
        assert_eq!(
            timeouts.check(&data, T0 + Duration::from_secs(30 * 60)),
            SessionValidity::IdleExpired
        );
    }

    #[test]
    fn twelve_hours_end_even_an_active_session() {
        let timeouts = SessionTimeouts::default();
        let mut data = data();
        let now = T0 + Duration::from_secs(12 * 3600);
        data.last_seen = now - Duration::from_secs(60);
        assert_eq!(timeouts.check(&data, now), SessionValidity::AbsoluteExpired);
        assert_eq!(
            timeouts.check(&data, now - Duration::from_secs(1)),
            SessionValidity::Valid
        );
    }

    #[test]
    fn the_record_expires_at_the_sooner_of_idle_and_absolute_end() {
        let timeouts = SessionTimeouts::default();
        let data = data();
        assert_eq!(timeouts.expiry(&data, T0), T0 + Duration::from_secs(1800));
        let late = T0 + Duration::from_secs(12 * 3600 - 600);
        assert_eq!(
            timeouts.expiry(&data, late),
            T0 + Duration::from_secs(12 * 3600)
        );
    }

    #[test]
    fn timeouts_come_from_the_auth_configuration() {
        let config = AuthConfig {
            idle_timeout_secs: 60,
            absolute_timeout_secs: 120,
            ..AuthConfig::default()
        };
        let timeouts = SessionTimeouts::from(&config);
        assert_eq!(timeouts.idle, Duration::from_secs(60));
        assert_eq!(timeouts.absolute, Duration::from_secs(120));
    }

    /// A session bucket written to a real `Session` reads back equal under namespaced keys.
    #[tokio::test]
    async fn the_bucket_round_trips_through_a_session_under_auth_keys() {
        let store = Arc::new(MemoryOnce::default());
        let session = Session::new(None, store, None);
        let data = data();
        data.store(&session).await.unwrap();
        assert_eq!(SessionData::load(&session).await.unwrap(), Some(data));
        let raw: Option<UserId> = session.get(USER_ID_KEY).await.unwrap();
        assert_eq!(raw, Some(data.user_id));
        session.remove_value(AUTH_TIME_KEY).await.unwrap();
        assert_eq!(SessionData::load(&session).await.unwrap(), None);
    }

    /// Minimal store for the bucket test; storage itself is tested on both databases.
    #[derive(Debug, Default)]
    struct MemoryOnce(AtomicU64);

    #[async_trait]
    impl SessionStore for MemoryOnce {
        async fn save(&self, _: &Record) -> session_store::Result<()> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        async fn load(&self, _: &Id) -> session_store::Result<Option<Record>> {
            Ok(None)
        }
        async fn delete(&self, _: &Id) -> session_store::Result<()> {
            Ok(())
        }
    }
}
