//! [`DeviceSearch`]: reading the device mirror, plus the SQL both databases share for it.
//!
//! The WHERE, ORDER BY and keyset clauses are built once here from a [`DeviceQuery`] and
//! differ only in spelling per [`Dialect`] (placeholders, case folding, bytewise collation),
//! so the two backends cannot drift apart. The rules they implement are in
//! [`crate::mirror::search`]; `backend/tests/search.rs` checks both against a Rust oracle.

use async_trait::async_trait;
use sqlx::FromRow;

use super::Result;
use crate::accounts::ApiAccountId;
use crate::mirror::index::RunMark;
use crate::mirror::search::{
    AppleCareFilter, DeviceQuery, DeviceSort, MirrorSummary, SearchPage, ServiceFilter,
    ServiceName, SortKey, TEXT_FIELDS, is_substring_word,
};
use crate::mirror::sync::RunId;
use crate::mirror::{AppleCareState, DeviceRecord, ServiceRecord};
use crate::orgs::OrgId;

/// Reads of the device mirror for the device and service pages.
#[async_trait]
pub trait DeviceSearch: Send + Sync {
    /// One page of devices matching `query`, with the total count (SQL only; the in-memory
    /// [`crate::mirror::index::DeviceIndex`] answers the common cases faster and falls back here).
    async fn search_devices(&self, org: OrgId, query: &DeviceQuery) -> Result<SearchPage>;

    /// One device by serial (exact, case-sensitive), present or absent.
    async fn device(&self, org: OrgId, serial: &str) -> Result<Option<DeviceRecord>>;

    /// The devices with these serials (exact), each once and in no particular order;
    /// unknown serials are skipped.
    async fn devices_by_serial(&self, org: OrgId, serials: &[String]) -> Result<Vec<DeviceRecord>>;

    /// Calls `each` for every device of the organization, absent ones included, streaming
    /// (one row in memory at a time), from one consistent snapshot, in bytewise serial
    /// order. The search index numbers devices as they come: in serial order, a scan of
    /// its serial order reads memory in sequence (a full scan at 1M devices took 61-90 ms
    /// in the order PostgreSQL stores rows, 15 ms in serial order).
    async fn for_each_device(
        &self,
        org: OrgId,
        each: &mut (dyn FnMut(DeviceRecord) + Send),
    ) -> Result<()>;

    /// Calls `each` for every device of the organization written, or marked absent, at or
    /// after `since` (Unix seconds of the writing instance's clock), streaming: what another
    /// instance's syncs changed since an index last looked ([`crate::mirror::index`]).
    async fn for_each_device_changed(
        &self,
        org: OrgId,
        since: i64,
        each: &mut (dyn FnMut(DeviceRecord) + Send),
    ) -> Result<()>;

    /// The latest sync run of each of the organization's API accounts, as far as it got.
    async fn latest_sync_runs(&self, org: OrgId) -> Result<Vec<RunMark>>;

    /// The organization's device management services by name, with the number of present
    /// devices in each one's device list.
    async fn services(&self, org: OrgId) -> Result<Vec<ServiceRecord>>;

    /// The organization's services by name without device counts: what labels a page of
    /// results (cheap; [`Self::services`] counts every service's devices).
    async fn service_names(&self, org: OrgId) -> Result<Vec<ServiceName>>;

    /// The distinct models of the organization's present devices, in
    /// [`crate::mirror::search::sort_models`] order (devices without a model add none).
    /// Reads every present row: pages ask [`crate::mirror::index::DeviceIndex::models`],
    /// which answers from memory and comes here only while the index is being built.
    async fn device_models(&self, org: OrgId) -> Result<Vec<String>>;

    /// Device counts and the latest change, for "synced 3 min ago" lines.
    async fn mirror_summary(&self, org: OrgId) -> Result<MirrorSummary>;
}

/// The condition on `mirror_devices` of [`DeviceSearch::for_each_device_changed`], `{since}`
/// standing for its parameter (twice).
pub(crate) const CHANGED_SINCE: &str = "(changed_at >= {since} OR absent_since >= {since})";

/// [`DeviceSearch::latest_sync_runs`], `{org}` standing for its parameter: through the
/// accounts, so each account's latest run is one probe of `sync_runs_account_idx`.
pub(crate) const LATEST_SYNC_RUNS: &str = "SELECT CAST(r.account_id AS TEXT) AS account_id, \
    r.id, r.written, r.released, r.merged, r.started_at, r.updated_at FROM api_accounts a \
    JOIN sync_runs r ON r.id = (SELECT MAX(id) FROM sync_runs WHERE account_id = a.id) \
    WHERE a.org_id = {org}";

/// A row of [`LATEST_SYNC_RUNS`].
#[derive(FromRow)]
pub(crate) struct RunMarkRow {
    account_id: String,
    id: i64,
    written: i64,
    released: i64,
    merged: i64,
    started_at: i64,
    updated_at: i64,
}

impl TryFrom<RunMarkRow> for RunMark {
    type Error = super::StoreError;

    fn try_from(row: RunMarkRow) -> Result<Self> {
        let account = uuid::Uuid::parse_str(&row.account_id)
            .map_err(|e| super::StoreError::Corrupt(format!("sync_runs.account_id: {e}")))?;
        Ok(Self {
            account: ApiAccountId(account),
            run: RunId(row.id),
            written: super::count(row.written),
            released: super::count(row.released),
            merged: super::count(row.merged),
            started_at: row.started_at,
            updated_at: row.updated_at,
        })
    }
}

/// Columns of a [`DeviceRecord`], in `mirror_devices`.
pub(crate) const DEVICE_COLUMNS: &str = "serial, model, product_family, product_type, capacity, \
    part_number, order_number, color, status, service_id, purchase_source_id, \
    purchase_source_type, imei, meid, eid, wifi_mac, bluetooth_mac, ethernet_mac, \
    migration_capable, migration_status, added_at, ordered_at, apple_updated_at, \
    migration_deadline, first_seen_at, changed_at, absent_since, applecare";

/// A `mirror_devices` row, the same on both databases. SQLite can also hand rows over as
/// JSON arrays of [`DEVICE_COLUMNS`] (see `sqlite_search`), read in field order.
#[derive(FromRow, serde::Deserialize)]
pub(crate) struct DeviceRow {
    serial: String,
    model: Option<String>,
    product_family: Option<String>,
    product_type: Option<String>,
    capacity: Option<String>,
    part_number: Option<String>,
    order_number: Option<String>,
    color: Option<String>,
    status: Option<String>,
    service_id: Option<String>,
    purchase_source_id: Option<String>,
    purchase_source_type: Option<String>,
    imei: Option<String>,
    meid: Option<String>,
    eid: Option<String>,
    wifi_mac: Option<String>,
    bluetooth_mac: Option<String>,
    ethernet_mac: Option<String>,
    /// SQLite's 0/1 INTEGER decodes as a boolean too.
    #[serde(deserialize_with = "flag")]
    migration_capable: Option<bool>,
    migration_status: Option<String>,
    added_at: Option<i64>,
    ordered_at: Option<i64>,
    apple_updated_at: Option<i64>,
    migration_deadline: Option<i64>,
    first_seen_at: i64,
    changed_at: i64,
    absent_since: Option<i64>,
    applecare: Option<String>,
}

/// A boolean column in JSON: `true`/`false`, or SQLite's 0/1.
fn flag<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<bool>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Int(i64),
    }
    Ok(
        <Option<Flag> as serde::Deserialize>::deserialize(d)?.map(|f| match f {
            Flag::Bool(b) => b,
            Flag::Int(n) => n != 0,
        }),
    )
}

impl From<DeviceRow> for DeviceRecord {
    fn from(r: DeviceRow) -> Self {
        Self {
            serial: r.serial,
            model: r.model,
            product_family: r.product_family,
            product_type: r.product_type,
            capacity: r.capacity,
            part_number: r.part_number,
            order_number: r.order_number,
            color: r.color,
            status: r.status,
            service_id: r.service_id,
            purchase_source_id: r.purchase_source_id,
            purchase_source_type: r.purchase_source_type,
            imei: r.imei,
            meid: r.meid,
            eid: r.eid,
            wifi_mac: r.wifi_mac,
            bluetooth_mac: r.bluetooth_mac,
            ethernet_mac: r.ethernet_mac,
            migration_capable: r.migration_capable,
            migration_status: r.migration_status,
            added_at: r.added_at,
            ordered_at: r.ordered_at,
            apple_updated_at: r.apple_updated_at,
            migration_deadline: r.migration_deadline,
            first_seen_at: r.first_seen_at,
            changed_at: r.changed_at,
            absent_since: r.absent_since,
            // A state this version does not know reads as never asked: fetched again.
            applecare: r.applecare.as_deref().and_then(AppleCareState::parse),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A value bound to a placeholder of [`SqlQuery`].
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

/// The parts of a device search after `WHERE org_id = <org>` (placeholder 1).
#[derive(Debug)]
pub(crate) struct SqlQuery {
    /// ` AND …` conditions of text and filters (the count uses these).
    pub conditions: String,
    /// ` AND …` keyset condition of the cursor, or empty.
    pub keyset: String,
    /// ` ORDER BY …`.
    pub order: String,
    /// Arguments of `conditions` then `keyset`, in placeholder order.
    pub args: Vec<Arg>,
    /// How many of `args` belong to `conditions`.
    pub condition_args: usize,
}

struct Builder {
    dialect: Dialect,
    sql: String,
    args: Vec<Arg>,
}

impl Builder {
    fn arg(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        match self.dialect {
            Dialect::Sqlite => "?".to_owned(),
            // $1 is the organization.
            Dialect::Postgres => format!("${}", self.args.len() + 1),
        }
    }

    /// A column compared bytewise (PostgreSQL's default collation may follow a locale).
    fn bytewise(&self, expr: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => expr.to_owned(),
            Dialect::Postgres => format!("({expr}) COLLATE \"C\""),
        }
    }

    /// ASCII lower case on both (PostgreSQL folds only ASCII under the C collation).
    fn folded(&self, column: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => format!("lower({column})"),
            Dialect::Postgres => format!("lower({column} COLLATE \"C\")"),
        }
    }

    fn contains(&mut self, column: &str, word: &str) -> String {
        let hay = self.folded(column);
        let p = self.arg(Arg::Text(word.to_owned()));
        match self.dialect {
            Dialect::Sqlite => format!("instr({hay}, {p}) > 0"),
            Dialect::Postgres => format!("strpos({hay}, {p}) > 0"),
        }
    }

    fn push(&mut self, condition: &str) {
        self.sql.push_str(" AND ");
        self.sql.push_str(condition);
    }
}

impl SqlQuery {
    pub(crate) fn build(dialect: Dialect, query: &DeviceQuery) -> Self {
        let mut b = Builder {
            dialect,
            sql: String::new(),
            args: Vec::new(),
        };
        for word in query.words() {
            let n = word.chars().count() as i64;
            let serial = b.folded("serial");
            let p = b.arg(Arg::Text(word.clone()));
            let mut any = vec![format!("substr({serial}, 1, {n}) = {p}")];
            if is_substring_word(&word) {
                for column in std::iter::once("serial").chain(TEXT_FIELDS) {
                    any.push(b.contains(column, &word));
                }
            }
            b.push(&format!("({})", any.join(" OR ")));
        }
        let f = &query.filters;
        if !f.include_absent {
            b.push("absent_since IS NULL");
        }
        if !f.families.is_empty() {
            let list: Vec<String> = f
                .families
                .iter()
                .map(|v| b.arg(Arg::Text(v.clone())))
                .collect();
            b.push(&format!("product_family IN ({})", list.join(", ")));
        }
        for (column, value) in [
            ("model", &f.model),
            ("purchase_source_type", &f.purchase_source_type),
        ] {
            if let Some(v) = value {
                let p = b.arg(Arg::Text(v.clone()));
                b.push(&format!("{column} = {p}"));
            }
        }
        if let Some(status) = f.status {
            let p = b.arg(Arg::Text(status.as_str().to_owned()));
            b.push(&format!("status = {p}"));
        }
        match &f.service {
            None => {}
            Some(ServiceFilter::None) => b.push("service_id IS NULL"),
            Some(ServiceFilter::Id(id)) => {
                let p = b.arg(Arg::Text(id.clone()));
                b.push(&format!("service_id = {p}"));
            }
        }
        if let Some(from) = f.added_from {
            let p = b.arg(Arg::Int(from));
            b.push(&format!("added_at >= {p}"));
        }
        if let Some(until) = f.added_until {
            let p = b.arg(Arg::Int(until));
            b.push(&format!("added_at < {p}"));
        }
        match f.applecare {
            None => {}
            Some(AppleCareFilter::Unchecked) => b.push("applecare IS NULL"),
            Some(AppleCareFilter::Is(state)) => {
                let p = b.arg(Arg::Text(state.as_str().to_owned()));
                b.push(&format!("applecare = {p}"));
            }
        }
        let conditions = std::mem::take(&mut b.sql);
        let condition_args = b.args.len();

        let serial = b.bytewise("serial");
        let key = match query.sort {
            DeviceSort::Serial => None,
            DeviceSort::AddedNewest => {
                Some("COALESCE(added_at, -9223372036854775807 - 1)".to_owned())
            }
            DeviceSort::AddedOldest => Some("COALESCE(added_at, 9223372036854775807)".to_owned()),
            DeviceSort::Model => Some(b.bytewise("COALESCE(model, '')")),
            DeviceSort::LastChanged => Some("changed_at".to_owned()),
        };
        let direction = if query.sort.descending() {
            "DESC"
        } else {
            "ASC"
        };
        let order = match &key {
            None => format!(" ORDER BY {serial} ASC"),
            Some(k) => format!(" ORDER BY {k} {direction}, {serial} ASC"),
        };
        if let Some(cursor) = &query.after {
            let beyond = if query.sort.descending() { "<" } else { ">" };
            let bound = |b: &mut Builder| match &cursor.key {
                SortKey::Int(v) => (b.arg(Arg::Int(*v)), b.arg(Arg::Int(*v))),
                SortKey::Text(v) => (b.arg(Arg::Text(v.clone())), b.arg(Arg::Text(v.clone()))),
                SortKey::None => (String::new(), String::new()),
            };
            // Placeholders are pushed in the order they appear (SQLite's `?` are positional).
            let keyset = match &key {
                Some(k) if cursor.key != SortKey::None => {
                    let (p1, p2) = bound(&mut b);
                    let after = b.arg(Arg::Text(cursor.serial.clone()));
                    format!("({k} {beyond} {p1} OR ({k} = {p2} AND {serial} > {after}))")
                }
                _ => {
                    let after = b.arg(Arg::Text(cursor.serial.clone()));
                    format!("{serial} > {after}")
                }
            };
            b.push(&keyset);
        }
        Self {
            conditions,
            keyset: b.sql,
            order,
            args: b.args,
            condition_args,
        }
    }
}
