//! The holder's side of a lease ([`crate::store::leases`]): taken once, renewed in the
//! background every quarter of its time to live, and marked lost when a renewal fails, so
//! the work it guards stops before its next step instead of racing another instance.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::store::leases::LeaseKey;
use crate::store::{Store, StoreError};

/// A held lease; dropping it stops the renewal (the lease then expires), [`Lease::release`]
/// gives it back at once.
pub struct Lease {
    store: Arc<dyn Store>,
    key: LeaseKey,
    holder: String,
    lost: Arc<AtomicBool>,
    renewal: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("key", &self.key)
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A holder name unique to this process (and this call): `pid-uuid`.
pub fn holder_name() -> String {
    format!("{}-{}", std::process::id(), uuid::Uuid::new_v4())
}

impl Lease {
    /// Takes the lease for `holder` for `ttl` (at least a second). `None` when another
    /// holder has it.
    pub async fn take(
        store: Arc<dyn Store>,
        key: LeaseKey,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Self>, StoreError> {
        let secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 4).max(1);
        let at = now();
        if !store.acquire_lease(key, holder, at, at + secs).await? {
            return Ok(None);
        }
        let lost = Arc::new(AtomicBool::new(false));
        let every = (ttl / 4).max(Duration::from_millis(250));
        let renewal = tokio::spawn({
            let (store, lost, holder) = (store.clone(), lost.clone(), holder.to_owned());
            async move {
                loop {
                    tokio::time::sleep(every).await;
                    let at = now();
                    let renewed = store.acquire_lease(key, &holder, at, at + secs).await;
                    if !matches!(renewed, Ok(true)) {
                        lost.store(true, Ordering::SeqCst);
                        return;
                    }
                }
            }
        });
        Ok(Some(Self {
            store,
            key,
            holder: holder.to_owned(),
            lost,
            renewal,
        }))
    }

    /// Whether a renewal failed: another holder may have the lease now.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Gives the lease back.
    pub async fn release(self) {
        self.renewal.abort();
        if let Err(err) = self.store.release_lease(self.key, &self.holder).await {
            tracing::warn!(
                error = &err as &dyn std::error::Error,
                lease = %self.key.name(),
                "cannot release a lease"
            );
        }
    }
}

impl Drop for Lease {
    /// Work dropped mid-way (its task aborted) stops renewing; the lease then expires.
    fn drop(&mut self) {
        self.renewal.abort();
    }
}
