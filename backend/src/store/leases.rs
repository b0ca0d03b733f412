//! Leases: one holder at a time for a piece of background work across every instance (a
//! sync of an API account, the run of a job). See [`crate::lease::Lease`] for the holder's
//! side (renewal, loss).
//!
//! SQLite keeps a row per lease with an expiry that the holder renews; a holder killed with
//! its process stops renewing and the lease expires. PostgreSQL uses a session advisory
//! lock held on a connection kept aside: when the process dies, the session ends and the
//! lock is free at once.

use async_trait::async_trait;

use super::Result;
use crate::accounts::ApiAccountId;
use crate::jobs::JobId;

/// What a lease guards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeaseKey {
    /// The sync of an API account's devices.
    Sync(ApiAccountId),
    /// The run of a bulk-assignment job.
    Job(JobId),
}

impl LeaseKey {
    /// The stored name (SQLite's `leases.name`).
    pub fn name(&self) -> String {
        match self {
            Self::Sync(account) => format!("sync:{}", account.0),
            Self::Job(job) => format!("job:{}", job.0),
        }
    }
}

#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes the lease for `holder` until `expires_at` (Unix seconds) if it is free, expired
    /// or already `holder`'s (renewal). Returns whether `holder` holds it now.
    async fn acquire_lease(
        &self,
        key: LeaseKey,
        holder: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<bool>;

    /// Gives the lease back (only if `holder` holds it).
    async fn release_lease(&self, key: LeaseKey, holder: &str) -> Result<()>;
}
