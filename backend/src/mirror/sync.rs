//! The sync engine: copies an API account's devices and device management services into
//! the mirror, within the account's request budget, resumable page by page.
//!
//! A run walks these phases, each checkpointed in `sync_runs` after every page:
//!
//! 1. `devices`: `GET /v1/orgDevices` 1000 at a time. Each page is compared with the stored
//!    hashes; only new or changed devices are written. The page's serials are kept with the
//!    run (`sync_run_pages`), in the same transaction as the cursor of the next page.
//! 2. `service_list`: `GET /v1/mdmServers` (a handful of services), stored the same way.
//! 3. `service_devices`: each service's device list (serials only, 1000 per call), so the
//!    service of every device is known in `devices / 1000` calls instead of one per device.
//! 4. `finishing`: from the stored pages, devices the run did not see are marked absent
//!    (with the date) and each device gets the service whose list holds it; then the pages
//!    are deleted. The device mirror is complete here.
//! 5. `directory`: users, user groups, organizational units, apps, packages,
//!    configurations and Blueprints, one list after the other (`service_index` = which);
//!    see [`super::directory`].
//! 6. `members`: the members of every group, unit and Blueprint (`service_index` = which
//!    list of the plan: the present owners by kind and id, each relationship in turn).
//! 7. `audit_events`: Apple's audit events since the previous run; then the run is marked
//!    succeeded.
//!
//! After a crash or restart the next run of the account picks up the unfinished one from its
//! checkpoint: the cursor saved with the last stored page, so at most the page that was in
//! flight is fetched again. Apple offers no change feed on these lists (SPEC §3.4: no filter,
//! no sort), so every run reads every page; an unchanged organization costs reads and no writes.
//!
//! One sync per account at a time, across instances: a lease in SQLite, a session advisory
//! lock on PostgreSQL ([`crate::lease::Lease`]). Every Apple call runs at
//! [`apple::Priority::Background`], so people's reads go first.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apple::resources::{mdm_servers, org_devices};
use apple::{Cursor, ListRequest, Page, Priority};
use futures::TryStreamExt as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::accounts::{AccountError, ApiAccountId, Clients, sanitize_error};
use crate::lease::Lease;
use crate::mirror::directory::{
    AUDIT_OVERLAP_SECS, AuditEventRecord, DEFAULT_AUDIT_HISTORY, DirectoryObject, MemberList,
    ObjectKind, audit_events_between,
};
use crate::mirror::index::DeviceIndex;
use crate::mirror::{DeviceAttributes, DeviceRecord, ServiceAttributes};
use crate::orgs::OrgId;
use crate::store::leases::LeaseKey;
use crate::store::mirror::{Checkpoint, DeviceChange, StoredHash};
use crate::store::{Store, StoreError};

/// Devices per `orgDevices` page (Apple's maximum).
pub const PAGE_SIZE: u32 = 1000;
/// How long a sync lease lasts without renewal (SQLite; renewed every quarter of it). A sync
/// killed with its process blocks the account's next sync for at most this long.
pub const LEASE_TTL: Duration = Duration::from_secs(120);
/// Pages any one list may have (1M devices = 1000 pages); a guard against a looping server.
const PAGE_CAP: u32 = 100_000;

/// Identifies a sync run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub i64);

/// Why a run started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncCause {
    /// The account's schedule.
    Schedule,
    /// Someone pressed "Sync now".
    Manual,
    /// Resuming or catching up at server start.
    Start,
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncPhase {
    Devices,
    ServiceList,
    ServiceDevices,
    Finishing,
    Directory,
    Members,
    AuditEvents,
}

/// How a run ended, or that it has not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    Succeeded,
    /// Abandoned: a resume was impossible (e.g. Apple refused the saved cursor); the next
    /// run starts over.
    Failed,
}

wire_names!(SyncCause { Schedule = "schedule", Manual = "manual", Start = "start" });
wire_names!(SyncPhase {
    Devices = "devices",
    ServiceList = "service_list",
    ServiceDevices = "service_devices",
    Finishing = "finishing",
    Directory = "directory",
    Members = "members",
    AuditEvents = "audit_events",
});
wire_names!(RunState { Running = "running", Succeeded = "succeeded", Failed = "failed" });

/// A sync run as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncRun {
    pub id: RunId,
    pub org: OrgId,
    pub account: ApiAccountId,
    pub cause: SyncCause,
    pub state: RunState,
    pub phase: SyncPhase,
    /// The next page of the current list (resume point).
    pub cursor: Option<String>,
    pub service_index: u32,
    pub pages: u64,
    /// Devices and service memberships read.
    pub items: u64,
    /// Device rows inserted or changed.
    pub written: u64,
    /// Devices newly marked absent.
    pub released: u64,
    pub rate_limited: u64,
    pub budget_wait_ms: u64,
    pub started_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    /// The last error the run met (it may have resumed since).
    pub error: Option<String>,
    /// When the run finished the devices (it may still be copying the directory).
    pub devices_synced_at: Option<i64>,
}

impl SyncRun {
    /// When the device mirror was complete as of this run, if it got that far (runs from
    /// before the directory was synced recorded only their end).
    pub fn devices_done_at(&self) -> Option<i64> {
        self.devices_synced_at.or(match self.state {
            RunState::Succeeded => self.finished_at,
            _ => None,
        })
    }
}

/// Why a sync did not complete.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("another sync of this account is running")]
    Busy,
    #[error("the sync lost its lease to another instance")]
    LeaseLost,
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error("Apple: {0}")]
    Apple(String),
    /// Apple refused the cursor a resumed run continued from (e.g. it expired); the run is
    /// abandoned and the next one starts over.
    #[error("Apple refused the saved position of the interrupted sync: {0}")]
    CursorRefused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SyncError {
    fn apple(err: &apple::Error) -> Self {
        Self::Apple(sanitize_error(&err.to_string()))
    }

    /// An error fetching a page; `resumed_first` when it was the first page fetched from a
    /// saved cursor.
    fn page(err: &apple::Error, resumed_first: bool) -> Self {
        if resumed_first && err.status() == Some(400) {
            Self::CursorRefused(sanitize_error(&err.to_string()))
        } else {
            Self::apple(err)
        }
    }
}

/// What a live run is doing, for the progress line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveProgress {
    pub run: RunId,
    pub phase: SyncPhase,
    pub pages: u64,
    pub items: u64,
    pub written: u64,
    /// Items per second since this process took the run up.
    pub rate: f64,
    /// Devices the previous successful run read: the best guess of the total.
    pub expected_items: Option<u64>,
    /// Seconds left at the current rate, when a total is known.
    pub eta_seconds: Option<u64>,
    /// The run is waiting for the account's request budget.
    pub waiting_for_budget: bool,
    pub rate_limited: u64,
}

/// Runs syncs and reports their progress. One per process, shared.
pub struct SyncEngine {
    store: Arc<dyn Store>,
    clients: Arc<Clients>,
    /// The search index the pages read; told about every row a run writes.
    index: Arc<DeviceIndex>,
    /// Identifies this process as a lease holder.
    holder: String,
    lease_ttl: Duration,
    /// How far back an account's first run reads Apple's audit events.
    audit_history: Duration,
    live: Mutex<HashMap<ApiAccountId, LiveProgress>>,
    /// Accounts with a sync task in this process (started by [`SyncEngine::request`]).
    tasks: Mutex<HashSet<ApiAccountId>>,
}

impl std::fmt::Debug for SyncEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncEngine")
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2)
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

impl SyncEngine {
    pub fn new(store: Arc<dyn Store>, clients: Arc<Clients>, index: Arc<DeviceIndex>) -> Arc<Self> {
        Self::with_lease_ttl(store, clients, index, LEASE_TTL)
    }

    /// An engine whose leases last `lease_ttl` (tests shorten it).
    pub fn with_lease_ttl(
        store: Arc<dyn Store>,
        clients: Arc<Clients>,
        index: Arc<DeviceIndex>,
        lease_ttl: Duration,
    ) -> Arc<Self> {
        Self::with_options(store, clients, index, lease_ttl, DEFAULT_AUDIT_HISTORY)
    }

    /// An engine whose leases last `lease_ttl` and whose first run of an account reads
    /// `audit_history` of Apple's audit events.
    pub fn with_options(
        store: Arc<dyn Store>,
        clients: Arc<Clients>,
        index: Arc<DeviceIndex>,
        lease_ttl: Duration,
        audit_history: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            clients,
            index,
            holder: crate::lease::holder_name(),
            lease_ttl,
            audit_history,
            live: Mutex::new(HashMap::new()),
            tasks: Mutex::new(HashSet::new()),
        })
    }

    /// Starts a sync of the account in the background. `false` when this process already
    /// runs one for it (another instance's run is refused later, by the lease).
    pub fn request(self: &Arc<Self>, org: OrgId, account: ApiAccountId, cause: SyncCause) -> bool {
        if !self.tasks_set().insert(account) {
            return false;
        }
        let engine = self.clone();
        tokio::spawn(async move {
            match engine.sync_account(org, account, cause).await {
                Ok(run) => tracing::debug!(account = %account, run = run.id.0, "sync done"),
                Err(SyncError::Busy) => {
                    tracing::debug!(account = %account, "sync skipped: another instance runs it");
                }
                // Already logged and recorded on the run.
                Err(_) => {}
            }
            engine.tasks_set().remove(&account);
        });
        true
    }

    /// Whether this process runs a sync of the account.
    pub fn is_running(&self, account: ApiAccountId) -> bool {
        self.tasks_set().contains(&account)
    }

    fn tasks_set(&self) -> std::sync::MutexGuard<'_, HashSet<ApiAccountId>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs forever: every `tick`, starts the syncs that are due. An account is due when it
    /// has an unfinished run (resume it: after a restart, that is at once), or its last
    /// successful run ended `interval` ago, or it never synced; a run that stopped on an
    /// error is retried after `retry`.
    pub async fn schedule(self: Arc<Self>, interval: Duration, retry: Duration, tick: Duration) {
        loop {
            if let Err(err) = self.start_due(interval, retry).await {
                tracing::warn!(error = &err as &dyn std::error::Error, "sync scheduler");
            }
            tokio::time::sleep(tick).await;
        }
    }

    /// One pass of the scheduler; returns the accounts it started.
    pub async fn start_due(
        self: &Arc<Self>,
        interval: Duration,
        retry: Duration,
    ) -> Result<Vec<ApiAccountId>, SyncError> {
        let now = now();
        let mut started = Vec::new();
        for org in self.store.list_organizations().await? {
            let accounts = crate::accounts::list_accounts(self.store.as_ref(), org.id).await?;
            for account in accounts.into_iter().filter(|a| a.revoked_at.is_none()) {
                if self.is_running(account.id) {
                    continue;
                }
                let runs = self.store.sync_runs(account.id, 1).await?;
                let due = match runs.first() {
                    None => true,
                    Some(run) if run.state == RunState::Running => {
                        run.error.is_none() || run.updated_at + secs(retry) <= now
                    }
                    Some(run) if run.state == RunState::Failed => {
                        run.updated_at + secs(retry) <= now
                    }
                    Some(run) => run.finished_at.unwrap_or(0) + secs(interval) <= now,
                };
                let cause = match runs.first() {
                    Some(run) if run.state == RunState::Running => SyncCause::Start,
                    _ => SyncCause::Schedule,
                };
                if due && self.request(org.id, account.id, cause) {
                    started.push(account.id);
                }
            }
        }
        Ok(started)
    }

    /// The live progress of the account's run in this process, if one is running here.
    pub fn progress(&self, account: ApiAccountId) -> Option<LiveProgress> {
        self.live_map().get(&account).cloned()
    }

    fn live_map(&self) -> std::sync::MutexGuard<'_, HashMap<ApiAccountId, LiveProgress>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs (or resumes) a sync of the account to the end. `Busy` when another sync of the
    /// account holds the lease, here or in another instance.
    pub async fn sync_account(
        self: &Arc<Self>,
        org: OrgId,
        account: ApiAccountId,
        cause: SyncCause,
    ) -> Result<SyncRun, SyncError> {
        let key = LeaseKey::Sync(account);
        let Some(lease) =
            Lease::take(self.store.clone(), key, &self.holder, self.lease_ttl).await?
        else {
            return Err(SyncError::Busy);
        };
        let result = self.run(org, account, cause, &lease).await;
        self.live_map().remove(&account);
        lease.release().await;
        result
    }

    async fn run(
        self: &Arc<Self>,
        org: OrgId,
        account: ApiAccountId,
        cause: SyncCause,
        lease: &Lease,
    ) -> Result<SyncRun, SyncError> {
        let run = match self.store.running_sync_run(account).await? {
            Some(run) => run,
            None => {
                self.store
                    .start_sync_run(org, account, cause, now())
                    .await?
            }
        };
        // Until this returns (or is dropped), the run's rows reach the index through
        // `apply`, not by reading them back.
        let _here = self.index.run_here(run.id);
        let expected_items = self
            .store
            .sync_runs(account, 10)
            .await?
            .into_iter()
            .find(|r| r.state == RunState::Succeeded)
            .map(|r| r.items);
        let mut walk = Walk {
            engine: self,
            org,
            account,
            client: self.clients.for_account(account).await?,
            counters: self.clients.counters(account),
            run: run.id,
            run_started_at: run.started_at,
            started: Instant::now(),
            items_at_start: run.items,
            progress: LiveProgress {
                run: run.id,
                phase: run.phase,
                pages: run.pages,
                items: run.items,
                written: run.written,
                rate: 0.0,
                expected_items,
                eta_seconds: None,
                waiting_for_budget: false,
                rate_limited: run.rate_limited,
            },
            lease,
        };
        walk.counters.take();
        walk.publish();
        let outcome = walk.phases(run).await;
        if let Err(err) = self.index.settle_local_runs(self.store.as_ref(), org).await {
            tracing::warn!(
                error = &err as &dyn std::error::Error,
                "search index: cannot note the run's end"
            );
        }
        match outcome {
            Ok(()) => Ok(self.store.sync_run(walk.run).await?),
            Err(err) => {
                let message = err.to_string();
                tracing::warn!(account = %account, run = walk.run.0, error = %message, "sync stopped");
                // Keep the run resumable unless resuming is impossible.
                let recorded = if matches!(err, SyncError::CursorRefused(_)) {
                    self.store.fail_sync_run(walk.run, &message, now()).await
                } else {
                    self.store
                        .record_sync_error(walk.run, &message, now())
                        .await
                };
                if let Err(store_err) = recorded {
                    tracing::warn!(
                        error = &store_err as &dyn std::error::Error,
                        "cannot record the sync error"
                    );
                }
                Err(err)
            }
        }
    }
}

/// What the mirror may already hold of the devices a run's device list returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// Devices may be stored already: each is compared with its stored hash.
    Maybe,
    /// The organization had no devices when the list was read from its first page (a first
    /// sync): every device is new, so there is nothing to read back and compare.
    Nothing,
}

impl Known {
    /// For a device list read from its first page, or `resumed` from a saved cursor (whose
    /// first page may have been stored before the restart: compared, so never rewritten).
    pub async fn at_start(
        store: &dyn Store,
        org: OrgId,
        resumed: bool,
    ) -> Result<Self, StoreError> {
        if resumed || store.has_devices(org).await? {
            Ok(Self::Maybe)
        } else {
            Ok(Self::Nothing)
        }
    }
}

/// What [`store_devices`] did with a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPage {
    /// The devices written (new, changed or returning), each as Apple last returned it.
    pub written: Vec<DeviceAttributes>,
    /// Staged by the store (a first sync on SQLite): in the mirror once [`Staging`] merges
    /// them. The search index may be told at once: it reads the rows of its candidates from
    /// the mirror, so a device it knows too early is not found yet, never found wrong.
    pub staged: bool,
}

/// Stores one `orgDevices` page the way every run does: reads the stored hashes of the
/// page's serials (unless the mirror is [`Known::Nothing`]), writes only the new, changed or
/// returning devices, and records the page with the checkpoint, all in one transaction.
/// Public for the ingest benchmark, which measures exactly this path (with [`Staging`]).
pub async fn store_devices(
    store: &dyn Store,
    org: OrgId,
    account: ApiAccountId,
    checkpoint: &Checkpoint,
    devices: &[DeviceAttributes],
    known: Known,
) -> Result<StoredPage, StoreError> {
    let serials: Vec<&str> = devices.iter().map(|d| d.serial.as_str()).collect();
    let stored: HashMap<String, _> = match known {
        Known::Maybe => store
            .device_hashes(org, &serials)
            .await?
            .into_iter()
            .collect(),
        Known::Nothing => HashMap::new(),
    };
    // A serial twice in one page (Apple's list shifting under the cursor) is written once,
    // as last returned: one statement cannot update a row twice.
    let last: HashMap<&str, usize> = serials.iter().enumerate().map(|(i, s)| (*s, i)).collect();
    let changed: Vec<DeviceAttributes> = devices
        .iter()
        .enumerate()
        .filter(|(i, d)| last[d.serial.as_str()] == *i)
        .map(|(_, d)| d)
        .filter(|d| {
            stored
                .get(&d.serial)
                .is_none_or(|s| s.absent || s.content_hash != d.content_hash())
        })
        .cloned()
        .collect();
    let staged = match known {
        Known::Maybe => {
            store
                .store_device_page(org, account, checkpoint, &serials, &changed)
                .await?;
            false
        }
        Known::Nothing => {
            store
                .store_new_device_page(org, account, checkpoint, &serials, &changed)
                .await?
        }
    };
    Ok(StoredPage {
        written: changed,
        staged,
    })
}

/// Rows staged before the first merge: small organizations merge once, at the end.
pub const MERGE_MIN: u64 = 50_000;

/// When a first sync's staged devices (see [`MirrorStore::store_new_device_page`]) join the
/// mirror: whenever they are at least as many as the rows merged before (and
/// [`MERGE_MIN`]), and at the end of the device list. Sorted merges that at least double
/// the organization's rows write each page of its table about once, in all twice the
/// table; devices become searchable in growing batches, all by the end of the list.
///
/// [`MirrorStore::store_new_device_page`]: crate::store::mirror::MirrorStore::store_new_device_page
#[derive(Debug, Default)]
pub struct Staging {
    staged: u64,
    merged: u64,
}

impl Staging {
    /// Notes a stored page and merges when due.
    pub async fn after_page(
        &mut self,
        store: &dyn Store,
        org: OrgId,
        page: &StoredPage,
    ) -> Result<(), StoreError> {
        if page.staged {
            self.staged += page.written.len() as u64;
            if self.staged >= MERGE_MIN.max(self.merged) {
                self.finish(store, org).await?;
            }
        }
        Ok(())
    }

    /// Merges whatever is staged.
    pub async fn finish(&mut self, store: &dyn Store, org: OrgId) -> Result<(), StoreError> {
        self.merged += store.merge_staged_devices(org, now()).await?;
        self.staged = 0;
        Ok(())
    }
}

/// The state of one run being walked by this process.
struct Walk<'a> {
    engine: &'a Arc<SyncEngine>,
    org: OrgId,
    account: ApiAccountId,
    client: apple::Client,
    counters: Arc<crate::accounts::AccountCounters>,
    run: RunId,
    /// When the run began (stored): the end of the audit-event window it reads.
    run_started_at: i64,
    started: Instant,
    items_at_start: u64,
    progress: LiveProgress,
    lease: &'a Lease,
}

impl Walk<'_> {
    fn store(&self) -> &dyn Store {
        self.engine.store.as_ref()
    }

    fn checkpoint(
        &mut self,
        phase: SyncPhase,
        cursor: Option<String>,
        service_index: u32,
    ) -> Result<Checkpoint, SyncError> {
        if self.lease.lost() {
            return Err(SyncError::LeaseLost);
        }
        let (rate_limited, budget_wait_ms) = self.counters.take();
        self.progress.rate_limited += rate_limited;
        Ok(Checkpoint {
            run: self.run,
            phase,
            cursor,
            service_index,
            rate_limited,
            budget_wait_ms,
            now: now(),
        })
    }

    /// Updates the live progress after a stored page.
    fn advance(&mut self, phase: SyncPhase, items: u64, written: u64) {
        let p = &mut self.progress;
        p.phase = phase;
        p.pages += 1;
        p.items += items;
        p.written += written;
        let elapsed = self.started.elapsed().as_secs_f64();
        if elapsed > 0.0 {
            p.rate = (p.items - self.items_at_start) as f64 / elapsed;
        }
        p.eta_seconds = match (p.expected_items, p.rate > 0.0) {
            (Some(total), true) if phase == SyncPhase::Devices => {
                Some((total.saturating_sub(p.items) as f64 / p.rate) as u64)
            }
            _ => None,
        };
        p.waiting_for_budget = false;
        self.publish();
    }

    fn publish(&self) {
        self.engine
            .live_map()
            .insert(self.account, self.progress.clone());
    }

    /// Marks the progress as waiting when the budget, not Apple, is what holds the run.
    fn note_budget(&mut self) {
        let status = self.client.budget().status();
        let waiting = status.reads_waiting_background > 0 || status.held_for.is_some();
        if waiting != self.progress.waiting_for_budget {
            self.progress.waiting_for_budget = waiting;
            self.publish();
        }
    }

    async fn phases(&mut self, run: SyncRun) -> Result<(), SyncError> {
        // Devices a run staged before it stopped (a crash before the end of its device list)
        // join the mirror before anything reads it. This process's index was not told about
        // them: it is rebuilt from the mirror when next used.
        if self.store().merge_staged_devices(self.org, now()).await? > 0 {
            self.engine.index.forget(self.org);
        }
        let mut phase = run.phase;
        let mut cursor = run.cursor;
        let mut service_index = run.service_index;
        loop {
            match phase {
                SyncPhase::Devices => {
                    self.devices(cursor.take()).await?;
                    phase = SyncPhase::ServiceList;
                }
                SyncPhase::ServiceList => {
                    self.service_list().await?;
                    phase = SyncPhase::ServiceDevices;
                    service_index = 0;
                }
                SyncPhase::ServiceDevices => {
                    self.service_devices(service_index, cursor.take()).await?;
                    phase = SyncPhase::Finishing;
                }
                SyncPhase::Finishing => {
                    self.finish().await?;
                    phase = SyncPhase::Directory;
                    service_index = 0;
                }
                SyncPhase::Directory => {
                    self.directory(service_index, cursor.take()).await?;
                    phase = SyncPhase::Members;
                    service_index = 0;
                }
                SyncPhase::Members => {
                    self.members(service_index, cursor.take()).await?;
                    phase = SyncPhase::AuditEvents;
                }
                SyncPhase::AuditEvents => return self.audit_events(cursor.take()).await,
            }
        }
    }

    async fn devices(&mut self, cursor: Option<String>) -> Result<(), SyncError> {
        let mut staging = Staging::default();
        let walked = self.device_pages(cursor, &mut staging).await;
        // However the walk ended, what it staged joins the mirror: a run that fails halfway
        // leaves the devices it read searchable.
        let merged = staging.finish(self.store(), self.org).await;
        walked?;
        Ok(merged?)
    }

    async fn device_pages(
        &mut self,
        cursor: Option<String>,
        staging: &mut Staging,
    ) -> Result<(), SyncError> {
        let known = Known::at_start(self.store(), self.org, cursor.is_some()).await?;
        let mut pager = Pager::open(org_devices::list(), &self.client, cursor);
        loop {
            self.note_budget();
            let Some(page) = pager.next().await.map_err(|e| pager.fail(&e))? else {
                return Ok(());
            };
            let devices: Vec<DeviceAttributes> = page
                .items
                .iter()
                .map(DeviceAttributes::from_apple)
                .collect();
            let next = page.next_cursor.as_ref().map(|c| c.as_str().to_owned());
            let phase = if next.is_some() {
                SyncPhase::Devices
            } else {
                SyncPhase::ServiceList
            };
            let checkpoint = self.checkpoint(phase, next, 0)?;
            let page = store_devices(
                self.store(),
                self.org,
                self.account,
                &checkpoint,
                &devices,
                known,
            )
            .await?;
            let written_count = page.written.len() as u64;
            staging.after_page(self.store(), self.org, &page).await?;
            let rows: Vec<DeviceRecord> = page
                .written
                .into_iter()
                .map(|d| d.into_written(checkpoint.now))
                .collect();
            self.engine.index.apply(self.org, &rows);
            self.advance(SyncPhase::Devices, devices.len() as u64, written_count);
        }
    }

    /// Tells the search index about rows just committed (read back as stored).
    async fn refresh_index(&self, serials: &[String]) -> Result<(), SyncError> {
        if serials.is_empty() {
            return Ok(());
        }
        let rows = self.store().devices_by_serial(self.org, serials).await?;
        self.engine.index.apply(self.org, &rows);
        Ok(())
    }

    async fn service_list(&mut self) -> Result<(), SyncError> {
        self.note_budget();
        let servers = mdm_servers::list()
            .limit(PAGE_SIZE)
            .priority(Priority::Background)
            .page_cap(PAGE_CAP)
            .collect_all(&self.client, usize::MAX)
            .await
            .map_err(|e| SyncError::apple(&e))?;
        let services: Vec<ServiceAttributes> =
            servers.iter().map(ServiceAttributes::from_apple).collect();
        let checkpoint = self.checkpoint(SyncPhase::ServiceDevices, None, 0)?;
        self.store()
            .store_services(self.org, self.account, &checkpoint, &services)
            .await?;
        self.advance(SyncPhase::ServiceList, 0, 0);
        Ok(())
    }

    async fn service_devices(
        &mut self,
        from: u32,
        cursor: Option<String>,
    ) -> Result<(), SyncError> {
        let ids = self
            .store()
            .present_service_ids(self.org, self.account)
            .await?;
        let mut cursor = cursor;
        for (index, id) in ids.iter().enumerate().skip(from as usize) {
            let index = index as u32;
            let request = mdm_servers::device_ids(&apple::MdmServerId::new(id.as_str()));
            let mut pager = Pager::open(request, &self.client, cursor.take());
            loop {
                self.note_budget();
                let Some(page) = pager.next().await.map_err(|e| pager.fail(&e))? else {
                    break;
                };
                let serials: Vec<&str> = page.items.iter().map(|d| d.id.as_str()).collect();
                let next = page.next_cursor.as_ref().map(|c| c.as_str().to_owned());
                let (phase, at) = match (&next, index + 1 == ids.len() as u32) {
                    (Some(_), _) => (SyncPhase::ServiceDevices, index),
                    (None, false) => (SyncPhase::ServiceDevices, index + 1),
                    (None, true) => (SyncPhase::Finishing, index + 1),
                };
                let checkpoint = self.checkpoint(phase, next, at)?;
                self.store()
                    .store_service_page(&checkpoint, id, &serials)
                    .await?;
                self.advance(SyncPhase::ServiceDevices, serials.len() as u64, 0);
            }
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<(), SyncError> {
        self.progress.phase = SyncPhase::Finishing;
        self.publish();
        let pages = self.store().sync_run_pages(self.run).await?;
        let mut seen: HashSet<&str> = HashSet::new();
        let mut service_of: HashMap<&str, &str> = HashMap::new();
        for (service, serials) in &pages {
            let serials = serials.split('\n').filter(|s| !s.is_empty());
            match service {
                None => seen.extend(serials),
                Some(service) => {
                    for serial in serials {
                        service_of.insert(serial, service.as_str());
                    }
                }
            }
        }
        let now = now();
        let mut released = 0;
        let mut changes = Vec::new();
        for device in self.store().account_devices(self.org, self.account).await? {
            if seen.contains(device.serial.as_str()) {
                let service = service_of.get(device.serial.as_str()).copied();
                if device.service_id.as_deref() != service {
                    changes.push(DeviceChange {
                        serial: device.serial,
                        absent_since: None,
                        service_id: service.map(str::to_owned),
                    });
                }
            } else if !device.absent {
                released += 1;
                changes.push(DeviceChange {
                    absent_since: Some(now),
                    service_id: device.service_id.clone(),
                    serial: device.serial,
                });
            }
        }
        if self.lease.lost() {
            return Err(SyncError::LeaseLost);
        }
        self.store()
            .finish_sync_run(
                self.org,
                self.run,
                &changes,
                now,
                Some(SyncPhase::Directory),
            )
            .await?;
        let changed: Vec<String> = changes.iter().map(|c| c.serial.clone()).collect();
        for chunk in changed.chunks(PAGE_SIZE as usize) {
            self.refresh_index(chunk).await?;
        }
        tracing::info!(
            account = %self.account,
            run = self.run.0,
            items = self.progress.items,
            written = self.progress.written,
            released,
            reassigned = changes.len() as u64 - released,
            "devices synced"
        );
        Ok(())
    }
}

/// Which list comes after a page: `(phase, index)` of the checkpoint, given the page's list
/// is `index` of `count` in `phase` and whether the page was its last.
fn after_page(
    phase: SyncPhase,
    next: SyncPhase,
    index: u32,
    count: usize,
    last: bool,
) -> (SyncPhase, u32) {
    match (last, index as usize + 1 == count) {
        (false, _) => (phase, index),
        (true, false) => (phase, index + 1),
        (true, true) => (next, 0),
    }
}

impl Walk<'_> {
    /// Phase `directory`: every list of [`ObjectKind::ALL`] from the `from`th, resuming the
    /// first at `cursor`.
    async fn directory(&mut self, from: u32, cursor: Option<String>) -> Result<(), SyncError> {
        let mut cursor = cursor;
        let count = ObjectKind::ALL.len();
        for (index, kind) in ObjectKind::ALL.into_iter().enumerate().skip(from as usize) {
            let index = index as u32;
            let mut pager = Pager::open(kind.list(), &self.client, cursor.take());
            loop {
                self.note_budget();
                let page = match pager.next().await {
                    Ok(Some(page)) => page,
                    Ok(None) => break,
                    Err(e) if pager.refused(&e) => {
                        let (phase, at) = after_page(
                            SyncPhase::Directory,
                            SyncPhase::Members,
                            index,
                            count,
                            true,
                        );
                        self.skip(phase, at, kind.as_str(), &e).await?;
                        break;
                    }
                    Err(e) => return Err(pager.fail(&e)),
                };
                let objects: Vec<DirectoryObject> = page
                    .items
                    .iter()
                    .map(|r| DirectoryObject::from_apple(kind, r))
                    .collect();
                let next = page.next_cursor.as_ref().map(|c| c.as_str().to_owned());
                let last = next.is_none();
                let (phase, at) =
                    after_page(SyncPhase::Directory, SyncPhase::Members, index, count, last);
                let checkpoint = self.checkpoint(phase, next, at)?;
                let ids: Vec<&str> = objects.iter().map(|o| o.id.as_str()).collect();
                let stored: HashMap<String, StoredHash> = self
                    .store()
                    .object_hashes(self.org, kind, &ids)
                    .await?
                    .into_iter()
                    .collect();
                let changed: Vec<DirectoryObject> = objects
                    .iter()
                    .filter(|o| {
                        stored
                            .get(&o.id)
                            .is_none_or(|s| s.absent || s.content_hash != o.content_hash)
                    })
                    .cloned()
                    .collect();
                self.store()
                    .store_object_page(
                        self.org,
                        self.account,
                        &checkpoint,
                        kind,
                        &ids,
                        &changed,
                        last,
                    )
                    .await?;
                self.advance(SyncPhase::Directory, 0, 0);
            }
        }
        Ok(())
    }

    /// Phase `members`: every membership list of the plan from the `from`th.
    async fn members(&mut self, from: u32, cursor: Option<String>) -> Result<(), SyncError> {
        let mut plan = Vec::new();
        for (kind, rels) in ObjectKind::OWNERS {
            for id in self
                .store()
                .present_object_ids(self.org, self.account, kind)
                .await?
            {
                plan.extend(rels.iter().map(|&rel| MemberList {
                    owner_kind: kind,
                    owner_id: id.clone(),
                    rel,
                }));
            }
        }
        let mut cursor = cursor;
        let count = plan.len();
        for (index, list) in plan.iter().enumerate().skip(from as usize) {
            let index = index as u32;
            let mut pager = Pager::open(list.request(), &self.client, cursor.take());
            loop {
                self.note_budget();
                let page = match pager.next().await {
                    Ok(Some(page)) => page,
                    Ok(None) => break,
                    // Refused, or the owner went away since the lists were read.
                    Err(e) if pager.refused(&e) || (pager.at_first && e.status() == Some(404)) => {
                        let (phase, at) = after_page(
                            SyncPhase::Members,
                            SyncPhase::AuditEvents,
                            index,
                            count,
                            true,
                        );
                        self.skip(phase, at, &list.key(), &e).await?;
                        break;
                    }
                    Err(e) => return Err(pager.fail(&e)),
                };
                let ids: Vec<&str> = page.items.iter().map(|m| m.id.as_str()).collect();
                let next = page.next_cursor.as_ref().map(|c| c.as_str().to_owned());
                let last = next.is_none();
                let (phase, at) = after_page(
                    SyncPhase::Members,
                    SyncPhase::AuditEvents,
                    index,
                    count,
                    last,
                );
                let checkpoint = self.checkpoint(phase, next, at)?;
                self.store()
                    .store_member_page(self.org, &checkpoint, list, &ids, last)
                    .await?;
                self.advance(SyncPhase::Members, 0, 0);
            }
        }
        if plan.len() <= from as usize {
            // Nothing to read (or all read before a restart): move on explicitly.
            let checkpoint = self.checkpoint(SyncPhase::AuditEvents, None, 0)?;
            self.store().skip_sync_list(&checkpoint, None).await?;
        }
        Ok(())
    }

    /// Phase `audit_events`: Apple's audit events from where the previous run stopped (or
    /// the configured history) until this run began; then the run succeeds.
    async fn audit_events(&mut self, cursor: Option<String>) -> Result<(), SyncError> {
        // Whole seconds, rounded up: Apple's end is inclusive and events carry fractions.
        let until = self.run_started_at + 1;
        let since = match self.store().audit_synced_until(self.account).await? {
            Some(t) => t - AUDIT_OVERLAP_SECS,
            None => until - secs(self.engine.audit_history),
        }
        .min(until);
        let request = audit_events_between(since, until);
        let mut pager = Pager::open(request, &self.client, cursor);
        let mut mirrored_until = Some(until);
        loop {
            self.note_budget();
            let page = match pager.next().await {
                Ok(Some(page)) => page,
                Ok(None) => break,
                Err(e) if pager.refused(&e) => {
                    tracing::info!(
                        account = %self.account,
                        error = %sanitize_error(&e.to_string()),
                        "audit events not mirrored: Apple refused the list"
                    );
                    mirrored_until = None;
                    break;
                }
                Err(e) => return Err(pager.fail(&e)),
            };
            let events: Vec<AuditEventRecord> = page
                .items
                .iter()
                .map(|e| AuditEventRecord::from_apple(e, since))
                .collect();
            let next = page.next_cursor.as_ref().map(|c| c.as_str().to_owned());
            let checkpoint = self.checkpoint(SyncPhase::AuditEvents, next, 0)?;
            self.store()
                .store_audit_page(self.org, self.account, Some(&checkpoint), &events)
                .await?;
            self.advance(SyncPhase::AuditEvents, 0, 0);
        }
        if self.lease.lost() {
            return Err(SyncError::LeaseLost);
        }
        self.store()
            .complete_sync_run(self.run, self.account, mirrored_until, now())
            .await?;
        tracing::info!(account = %self.account, run = self.run.0, "sync finished");
        Ok(())
    }

    /// Moves past a list Apple refused, leaving what the mirror holds of it as it was.
    async fn skip(
        &mut self,
        phase: SyncPhase,
        at: u32,
        list: &str,
        err: &apple::Error,
    ) -> Result<(), SyncError> {
        tracing::info!(
            account = %self.account,
            list,
            error = %sanitize_error(&err.to_string()),
            "list skipped: Apple refused it"
        );
        let checkpoint = self.checkpoint(phase, None, at)?;
        self.store().skip_sync_list(&checkpoint, Some(list)).await?;
        Ok(())
    }
}

/// One of Apple's lists being read by a run, from a saved cursor or the start, at
/// background priority.
struct Pager<T> {
    pages: std::pin::Pin<Box<dyn futures::Stream<Item = apple::Result<Page<T>>> + Send>>,
    /// No page answered yet.
    at_first: bool,
    /// No page answered yet, and the first asked for is a saved cursor.
    at_resumed_first: bool,
}

impl<T: serde::de::DeserializeOwned + Send + 'static> Pager<T> {
    fn open(request: ListRequest<T>, client: &apple::Client, cursor: Option<String>) -> Self {
        let mut request = request
            .limit(PAGE_SIZE)
            .priority(Priority::Background)
            .page_cap(PAGE_CAP);
        let resumed = cursor.is_some();
        if let Some(cursor) = cursor {
            request = request.cursor(Cursor::new(cursor));
        }
        Self {
            pages: Box::pin(request.pages(client)),
            at_first: true,
            at_resumed_first: resumed,
        }
    }

    async fn next(&mut self) -> apple::Result<Option<Page<T>>> {
        let page = self.pages.try_next().await?;
        self.at_first = false;
        self.at_resumed_first = false;
        Ok(page)
    }

    /// The run's error for a failed page.
    fn fail(&self, err: &apple::Error) -> SyncError {
        SyncError::page(err, self.at_resumed_first)
    }

    /// Apple refused the list itself (403 on its first page): not the account's to read.
    fn refused(&self, err: &apple::Error) -> bool {
        self.at_first && !self.at_resumed_first && err.status() == Some(403)
    }
}
