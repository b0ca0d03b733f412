//! Storage of the device mirror's writes: sync runs, their checkpoints, and the pages they
//! store. Reads for pages and search live in [`super::search`].
//!
//! Every method that stores a page also advances the run's checkpoint in the same
//! transaction: after a crash, the stored cursor is exactly the page after the last one
//! written, so a resumed run fetches at most the one page that was in flight.

use async_trait::async_trait;

use super::Result;
use crate::accounts::ApiAccountId;
use crate::jobs::preview::DeviceFacts;
use crate::mirror::sync::{RunId, SyncCause, SyncPhase, SyncRun};
use crate::mirror::{AppleCareState, DeviceAttributes, ServiceAttributes};
use crate::orgs::OrgId;

/// Where a run continues after the page being stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub run: RunId,
    pub phase: SyncPhase,
    /// Cursor of the next page of the current list; `None` when the list is done.
    pub cursor: Option<String>,
    /// Services phase: index of the service whose device list is being read.
    pub service_index: u32,
    /// 429s and time waiting for the budget since the previous checkpoint.
    pub rate_limited: u64,
    pub budget_wait_ms: u64,
    pub now: i64,
}

/// One stored device's change marker: its attribute hash and whether it is marked absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredHash {
    pub content_hash: i64,
    pub absent: bool,
}

/// End-of-run device changes per transaction: short enough that SQLite's one writer lock
/// is never held long (a lease renewal or a sign-in waits for it), whatever the fleet size.
pub const CHANGE_BATCH: usize = 5_000;

/// A device the end of a run changes: newly absent, back, or in another service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceChange {
    pub serial: String,
    /// `Some(t)`: mark absent since `t`; `None`: keep as is.
    pub absent_since: Option<i64>,
    /// New service (`None` = no service).
    pub service_id: Option<String>,
}

/// What the end of a run reads: one device as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentDevice {
    pub serial: String,
    pub service_id: Option<String>,
    pub absent: bool,
}

#[async_trait]
pub trait MirrorStore: Send + Sync {
    /// Starts a run in phase `devices`. `Conflict` when the account has a running one.
    async fn start_sync_run(
        &self,
        org: OrgId,
        account: ApiAccountId,
        cause: SyncCause,
        now: i64,
    ) -> Result<SyncRun>;

    /// The account's unfinished run, to resume.
    async fn running_sync_run(&self, account: ApiAccountId) -> Result<Option<SyncRun>>;

    /// One run by id.
    async fn sync_run(&self, run: RunId) -> Result<SyncRun>;

    /// The account's latest runs, newest first.
    async fn sync_runs(&self, account: ApiAccountId, limit: u32) -> Result<Vec<SyncRun>>;

    /// Whether the organization has any mirrored device (absent ones included).
    async fn has_devices(&self, org: OrgId) -> Result<bool>;

    /// Stored hashes of the given serials (absent from the result: not stored yet).
    async fn device_hashes(
        &self,
        org: OrgId,
        serials: &[&str],
    ) -> Result<Vec<(String, StoredHash)>>;

    /// In one transaction: inserts or updates `changed` (new or different devices; clears
    /// their absence), records the page's serials, and advances the checkpoint (pages + 1,
    /// items + `page_serials.len()`, written + `changed.len()`).
    async fn store_device_page(
        &self,
        org: OrgId,
        account: ApiAccountId,
        checkpoint: &Checkpoint,
        page_serials: &[&str],
        changed: &[DeviceAttributes],
    ) -> Result<()>;

    /// [`Self::store_device_page`] for devices the organization's mirror cannot have yet (its
    /// first sync), all of them written: PostgreSQL writes them at once and answers `false`;
    /// SQLite stages them (migration 0014) and answers `true`: they join the mirror, and the
    /// search, with [`Self::merge_staged_devices`].
    async fn store_new_device_page(
        &self,
        org: OrgId,
        account: ApiAccountId,
        checkpoint: &Checkpoint,
        page_serials: &[&str],
        devices: &[DeviceAttributes],
    ) -> Result<bool>;

    /// Moves the organization's staged devices into the mirror in one transaction (sorted,
    /// the last one staged for a serial winning), as changed at `now`; answers how many rows
    /// were staged.
    async fn merge_staged_devices(&self, org: OrgId, now: i64) -> Result<u64>;

    /// In one transaction: inserts or updates the services whose hash differs, marks the
    /// account's services missing from `services` absent (and clears the absence of those
    /// present), and advances the checkpoint.
    async fn store_services(
        &self,
        org: OrgId,
        account: ApiAccountId,
        checkpoint: &Checkpoint,
        services: &[ServiceAttributes],
    ) -> Result<()>;

    /// The services of the account that are not absent, by id: the order the services phase
    /// walks them in (stable across a restart).
    async fn present_service_ids(&self, org: OrgId, account: ApiAccountId) -> Result<Vec<String>>;

    /// In one transaction: records one page of a service's device list and advances the
    /// checkpoint (pages + 1).
    async fn store_service_page(
        &self,
        checkpoint: &Checkpoint,
        service_id: &str,
        serials: &[&str],
    ) -> Result<()>;

    /// The serials stored by the run: `(service id or None for orgDevices pages, serials
    /// separated by newlines)`, in page order.
    async fn sync_run_pages(&self, run: RunId) -> Result<Vec<(Option<String>, String)>>;

    /// Every device of the organization that the account last returned, with its service.
    async fn account_devices(
        &self,
        org: OrgId,
        account: ApiAccountId,
    ) -> Result<Vec<PresentDevice>>;

    /// Applies the end-of-run changes to the devices, [`CHANGE_BATCH`] per transaction (one
    /// statement each), each adding its newly absent devices (`absent_since` set) to the
    /// run's `released`; then, in a last one, deletes the run's pages and either moves the
    /// run on to phase `then` (still running) or, when `None`, marks it succeeded. A run
    /// stopped in between finishes again from the devices as stored: what was applied is no
    /// longer a change, and what was counted is not counted twice.
    async fn finish_sync_run(
        &self,
        org: OrgId,
        run: RunId,
        changes: &[DeviceChange],
        now: i64,
        then: Option<SyncPhase>,
    ) -> Result<()>;

    /// One device as Apple answered for it outside a sync run ("Refresh from Apple"), in one
    /// transaction: its attributes are written when their hash differs from the stored one
    /// (or it was absent), and its service is set when it differs. Returns whether anything
    /// was written.
    async fn refresh_device(
        &self,
        org: OrgId,
        account: ApiAccountId,
        device: &DeviceAttributes,
        service_id: Option<&str>,
        now: i64,
    ) -> Result<bool>;

    /// Marks a device Apple no longer knows absent since `now` (and in no service). Returns
    /// whether it was present until now.
    async fn mark_device_absent(&self, org: OrgId, serial: &str, now: i64) -> Result<bool>;

    /// Records the error a run stopped on; the run stays `running`, to be resumed.
    async fn record_sync_error(&self, run: RunId, error: &str, now: i64) -> Result<()>;

    /// Abandons a run that cannot be resumed: marks it failed with `error` and deletes its
    /// pages; the account's next run starts over.
    async fn fail_sync_run(&self, run: RunId, error: &str, now: i64) -> Result<()>;

    /// What the assignment preview needs of the devices with these serials (exact), in one
    /// query, absent ones included; unknown serials are left out. Callers send at most
    /// [`crate::jobs::preview::LOOKUP_CHUNK`] serials at a time.
    async fn devices_by_serials(&self, org: OrgId, serials: &[String]) -> Result<Vec<DeviceFacts>>;

    /// The API account that returned a device management service (`None`: not mirrored).
    async fn service_account(&self, org: OrgId, service_id: &str) -> Result<Option<ApiAccountId>>;

    /// A device's cached AppleCare coverage and Activation Lock: when fetched, and the JSON
    /// of [`crate::mirror::coverage::CoverageAndLock`].
    async fn device_coverage(&self, org: OrgId, serial: &str) -> Result<Option<(i64, String)>>;

    /// Stores (or replaces) a device's AppleCare coverage and Activation Lock, and sets the
    /// mirrored device's AppleCare state (`state`, what `facts` say) with it.
    async fn put_device_coverage(
        &self,
        org: OrgId,
        serial: &str,
        fetched_at: i64,
        facts: &str,
        state: AppleCareState,
    ) -> Result<()>;
}

/// The columns of [`DeviceFacts`], after `serial`; the account id as text on both databases.
pub(super) const FACT_COLUMNS: &str = "status, service_id, absent_since, migration_capable, \
    migration_status, migration_deadline";

/// A [`DeviceFacts`] row.
#[derive(sqlx::FromRow)]
pub(super) struct FactsRow {
    serial: String,
    account_id: String,
    status: Option<String>,
    service_id: Option<String>,
    absent_since: Option<i64>,
    /// SQLite's 0/1 INTEGER decodes as a boolean too.
    migration_capable: Option<bool>,
    migration_status: Option<String>,
    migration_deadline: Option<i64>,
}

impl TryFrom<FactsRow> for DeviceFacts {
    type Error = super::StoreError;

    fn try_from(r: FactsRow) -> Result<Self> {
        Ok(Self {
            account_id: ApiAccountId(uuid::Uuid::parse_str(&r.account_id).map_err(|e| {
                super::StoreError::Corrupt(format!("mirror_devices.account_id: {e}"))
            })?),
            serial: r.serial,
            status: r.status,
            service_id: r.service_id,
            absent_since: r.absent_since,
            migration_capable: r.migration_capable,
            migration_status: r.migration_status,
            migration_deadline: r.migration_deadline,
        })
    }
}

/// Binds a device's columns after `org_id, serial, account_id`, in the order of the upsert's
/// column list (`sqlite_mirror::UPSERT_HEAD`), for either database's query builder.
macro_rules! push_device_columns {
    ($row:ident, $d:ident, $now:expr) => {
        $row.push_bind(&$d.model)
            .push_bind(&$d.product_family)
            .push_bind(&$d.product_type)
            .push_bind(&$d.capacity)
            .push_bind(&$d.part_number)
            .push_bind(&$d.order_number)
            .push_bind(&$d.color)
            .push_bind(&$d.status)
            .push_bind(&$d.purchase_source_id)
            .push_bind(&$d.purchase_source_type)
            .push_bind(&$d.imei)
            .push_bind(&$d.meid)
            .push_bind(&$d.eid)
            .push_bind(&$d.wifi_mac)
            .push_bind(&$d.bluetooth_mac)
            .push_bind(&$d.ethernet_mac)
            .push_bind($d.migration_capable)
            .push_bind(&$d.migration_status)
            .push_bind($d.added_at)
            .push_bind($d.ordered_at)
            .push_bind($d.apple_updated_at)
            .push_bind($d.migration_deadline)
            .push_bind($d.content_hash())
            .push_bind($now)
            .push_bind($now);
    };
}
pub(super) use push_device_columns;
