//! What every answer of the device list repeats besides its rows: the organization itself
//! (its name), the names of its device management services (to label the rows) and the
//! recent sync runs of its API accounts (for the "synced 3 min ago" line).
//!
//! The list answers on every pause in typing, and these reads were most of its database
//! round trips: four or more per keystroke, for facts that change a few times an hour. An
//! [`Overviews`] keeps them per organization for [`MAX_AGE`], so a person typing (or a
//! hundred people) costs one read of them a second. Nothing is invalidated: a sync on this
//! instance or another, or a renamed service, shows within [`MAX_AGE`], the same on every
//! instance (a deleted organization, too, is still listed for that long). Pages that act on
//! these facts (Settings, the assignment wizard) read the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::search::ServiceName;
use super::sync::SyncRun;
use crate::accounts::ApiAccountId;
use crate::orgs::{OrgId, Organization};
use crate::store::{Result, Store};

/// How long an organization's overview is reused.
pub const MAX_AGE: Duration = Duration::from_secs(1);

/// Recent sync runs read per API account: enough to find the last finished device phase
/// behind a few failed runs.
pub const RUNS_PER_ACCOUNT: u32 = 20;

/// One organization, its service names and recent sync runs, as read at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overview {
    pub organization: Organization,
    /// By name, absent services included.
    pub services: Vec<ServiceName>,
    /// Each API account with its latest runs, newest first.
    pub accounts: Vec<(ApiAccountId, Vec<SyncRun>)>,
}

impl Overview {
    /// Reads the overview from the store now (`NotFound` for an organization that does not
    /// exist).
    pub async fn read(store: &dyn Store, org: OrgId) -> Result<Self> {
        let organization = store.organization(org).await?;
        let services = store.service_names(org).await?;
        let mut accounts = Vec::new();
        for account in store.list_api_accounts(org).await? {
            let id = account.view.id;
            accounts.push((id, store.sync_runs(id, RUNS_PER_ACCOUNT).await?));
        }
        Ok(Self {
            organization,
            services,
            accounts,
        })
    }

    /// The name of the service `id`, if the organization has (or had) it.
    pub fn service_name(&self, id: &str) -> Option<&str> {
        self.services
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.name.as_str())
    }
}

/// The overviews of the organizations listed lately, on this instance.
pub struct Overviews {
    max_age: Duration,
    entries: Mutex<HashMap<OrgId, (Instant, Arc<Overview>)>>,
}

impl Default for Overviews {
    fn default() -> Self {
        Self::with_max_age(MAX_AGE)
    }
}

impl Overviews {
    /// Overviews reused for [`MAX_AGE`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Overviews reused for `max_age` (zero: read every time).
    pub fn with_max_age(max_age: Duration) -> Self {
        Self {
            max_age,
            entries: Mutex::default(),
        }
    }

    /// The organization's overview, read again when the kept one is `max_age` old.
    /// Requests that miss at the same moment each read it; the last one read is kept.
    pub async fn get(&self, store: &dyn Store, org: OrgId) -> Result<Arc<Overview>> {
        let now = Instant::now();
        if let Some((at, kept)) = self.lock().get(&org)
            && now.duration_since(*at) < self.max_age
        {
            return Ok(kept.clone());
        }
        let fresh = Arc::new(Overview::read(store, org).await?);
        let mut entries = self.lock();
        // Organizations nobody lists any more leave with the next read of another.
        let keep = self.max_age.saturating_mul(60);
        entries.retain(|_, (at, _)| now.duration_since(*at) < keep);
        entries.insert(org, (now, fresh.clone()));
        Ok(fresh)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<OrgId, (Instant, Arc<Overview>)>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
