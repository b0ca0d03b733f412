//! SQLite implementation of [`MirrorStore`]. Lists of serials travel as one JSON array
//! parameter (`json_each`), so a 1000-device page is one statement, not 1000 placeholders.
//! Each page is one `BEGIN IMMEDIATE` transaction: rows, page serials and checkpoint together.

use async_trait::async_trait;
use sqlx::{FromRow, Sqlite, Transaction};
use uuid::Uuid;

use super::mirror::{
    CHANGE_BATCH, Checkpoint, DeviceChange, FACT_COLUMNS, FactsRow, MirrorStore, PresentDevice,
    StoredHash, push_device_columns,
};
use super::sqlite::immediate;
use super::{Result, SqliteStore, StoreError, count};
use crate::accounts::ApiAccountId;
use crate::jobs::preview::DeviceFacts;
use crate::mirror::sync::{RunId, RunState, SyncCause, SyncPhase, SyncRun};
use crate::mirror::{AppleCareState, DeviceAttributes, ServiceAttributes};
use crate::orgs::OrgId;

pub(super) const RUN_COLUMNS: &str = "id, org_id, account_id, cause, state, phase, cursor, \
    service_index, pages, items, written, released, rate_limited, budget_wait_ms, started_at, \
    updated_at, finished_at, error, devices_synced_at";

/// Devices per multi-row upsert (28 parameters each; SQLite allows 32766 per statement).
const UPSERT_ROWS: usize = 250;

/// The columns a sync writes but `changed_at`, in [`push_device_columns`] order after the
/// first three.
macro_rules! staged_columns {
    () => {
        "org_id, serial, account_id, model, product_family, product_type, capacity, \
         part_number, order_number, color, status, purchase_source_id, purchase_source_type, \
         imei, meid, eid, wifi_mac, bluetooth_mac, ethernet_mac, migration_capable, \
         migration_status, added_at, ordered_at, apple_updated_at, migration_deadline, \
         content_hash, first_seen_at"
    };
}

/// The columns a sync writes.
macro_rules! written_columns {
    () => {
        concat!(staged_columns!(), ", changed_at")
    };
}

/// The upsert of mirrored devices, around its `VALUES` rows (shared with PostgreSQL).
pub(super) const UPSERT_HEAD: &str =
    concat!("INSERT INTO mirror_devices (", written_columns!(), ") ");
/// The append of a first sync's devices to the inbox (migration 0014), before its rows.
const INBOX_HEAD: &str = concat!(
    "INSERT INTO mirror_devices_inbox (",
    written_columns!(),
    ") "
);
/// The move of an organization's staged devices into the mirror, sorted by serial (the
/// table's order), the last one staged winning; the upsert's tail follows. Rows change when
/// they join the mirror (the first parameter): other instances' indexes catch up on rows
/// changed since they last looked ([`crate::mirror::index`]), and staged rows were not
/// visible before.
const INBOX_MERGE: &str = concat!(
    "INSERT INTO mirror_devices (",
    written_columns!(),
    ") SELECT ",
    staged_columns!(),
    ", ? FROM mirror_devices_inbox WHERE org_id = ? ORDER BY serial, seq"
);
pub(super) const UPSERT_TAIL: &str = " ON CONFLICT (org_id, serial) DO UPDATE SET \
    account_id = excluded.account_id, model = excluded.model, \
    product_family = excluded.product_family, product_type = excluded.product_type, \
    capacity = excluded.capacity, part_number = excluded.part_number, \
    order_number = excluded.order_number, color = excluded.color, status = excluded.status, \
    purchase_source_id = excluded.purchase_source_id, \
    purchase_source_type = excluded.purchase_source_type, imei = excluded.imei, \
    meid = excluded.meid, eid = excluded.eid, wifi_mac = excluded.wifi_mac, \
    bluetooth_mac = excluded.bluetooth_mac, ethernet_mac = excluded.ethernet_mac, \
    migration_capable = excluded.migration_capable, migration_status = excluded.migration_status, \
    added_at = excluded.added_at, ordered_at = excluded.ordered_at, \
    apple_updated_at = excluded.apple_updated_at, migration_deadline = excluded.migration_deadline, \
    content_hash = excluded.content_hash, changed_at = excluded.changed_at, absent_since = NULL";
/// After [`UPSERT_TAIL`] where the stored row may be the same: an unchanged device is not
/// rewritten (a returning one is, to clear its absence).
pub(super) const UPSERT_IF_CHANGED: &str = " WHERE mirror_devices.content_hash <> \
    excluded.content_hash OR mirror_devices.absent_since IS NOT NULL";

#[derive(FromRow)]
struct RunRow {
    id: i64,
    org_id: String,
    account_id: String,
    cause: String,
    state: String,
    phase: String,
    cursor: Option<String>,
    service_index: i64,
    pages: i64,
    items: i64,
    written: i64,
    released: i64,
    rate_limited: i64,
    budget_wait_ms: i64,
    started_at: i64,
    updated_at: i64,
    finished_at: Option<i64>,
    error: Option<String>,
    devices_synced_at: Option<i64>,
}

fn corrupt(field: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("sync_runs.{field}: {e}"))
}

impl TryFrom<RunRow> for SyncRun {
    type Error = StoreError;

    fn try_from(row: RunRow) -> Result<Self> {
        Ok(Self {
            id: RunId(row.id),
            org: OrgId(Uuid::parse_str(&row.org_id).map_err(|e| corrupt("org_id", e))?),
            account: ApiAccountId(
                Uuid::parse_str(&row.account_id).map_err(|e| corrupt("account_id", e))?,
            ),
            cause: SyncCause::parse(&row.cause).ok_or_else(|| corrupt("cause", &row.cause))?,
            state: RunState::parse(&row.state).ok_or_else(|| corrupt("state", &row.state))?,
            phase: SyncPhase::parse(&row.phase).ok_or_else(|| corrupt("phase", &row.phase))?,
            cursor: row.cursor,
            service_index: u32::try_from(row.service_index).unwrap_or(0),
            pages: count(row.pages),
            items: count(row.items),
            written: count(row.written),
            released: count(row.released),
            rate_limited: count(row.rate_limited),
            budget_wait_ms: count(row.budget_wait_ms),
            started_at: row.started_at,
            updated_at: row.updated_at,
            finished_at: row.finished_at,
            error: row.error,
            devices_synced_at: row.devices_synced_at,
        })
    }
}

fn json_list(items: &[&str]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Adds newly absent devices to a running run's count, inside their transaction.
async fn add_released(tx: &mut Transaction<'_, Sqlite>, run: RunId, released: usize) -> Result<()> {
    let done = sqlx::query(
        "UPDATE sync_runs SET released = released + ? WHERE id = ? AND state = 'running'",
    )
    .bind(released as i64)
    .bind(run.0)
    .execute(&mut **tx)
    .await
    .map_err(StoreError::Database)?;
    super::still_running(done.rows_affected())
}

/// Advances a run's checkpoint inside the page's transaction.
pub(super) async fn advance(
    tx: &mut Transaction<'_, Sqlite>,
    checkpoint: &Checkpoint,
    items: usize,
    written: usize,
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE sync_runs SET phase = ?, cursor = ?, service_index = ?, pages = pages + 1, \
         items = items + ?, written = written + ?, rate_limited = rate_limited + ?, \
         budget_wait_ms = budget_wait_ms + ?, updated_at = ?, error = NULL \
         WHERE id = ? AND state = 'running'",
    )
    .bind(checkpoint.phase.as_str())
    .bind(&checkpoint.cursor)
    .bind(i64::from(checkpoint.service_index))
    .bind(items as i64)
    .bind(written as i64)
    .bind(signed(checkpoint.rate_limited))
    .bind(signed(checkpoint.budget_wait_ms))
    .bind(checkpoint.now)
    .bind(checkpoint.run.0)
    .execute(&mut **tx)
    .await
    .map_err(StoreError::Database)?;
    super::still_running(done.rows_affected())
}

async fn add_page(
    tx: &mut Transaction<'_, Sqlite>,
    run: RunId,
    service: Option<&str>,
    serials: &[&str],
) -> Result<()> {
    sqlx::query(
        "INSERT INTO sync_run_pages (run_id, seq, service_id, serials) VALUES \
         (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM sync_run_pages WHERE run_id = ?), ?, ?)",
    )
    .bind(run.0)
    .bind(run.0)
    .bind(service)
    .bind(serials.join("\n"))
    .execute(&mut **tx)
    .await
    .map_err(StoreError::Database)?;
    Ok(())
}

impl SqliteStore {
    /// One transaction of a device page: `devices` through the statement `into` (head
    /// before the `VALUES` rows, tail after), the page's serials, the checkpoint.
    async fn write_device_page(
        &self,
        (head, tail): (&str, &str),
        org: OrgId,
        account: ApiAccountId,
        checkpoint: &Checkpoint,
        page_serials: &[&str],
        devices: &[DeviceAttributes],
    ) -> Result<()> {
        let org = org.0.to_string();
        let account = account.0.to_string();
        let (org, account) = (org.as_str(), account.as_str());
        let mut tx = immediate(&self.sync_pool).await?;
        // A few multi-row statements per page rather than one per device: the per-statement
        // round trip, not the writing, is what a page of new devices costs.
        for rows in devices.chunks(UPSERT_ROWS) {
            let mut insert = sqlx::QueryBuilder::new(head);
            insert.push_values(rows, |mut row, d| {
                row.push_bind(org).push_bind(&d.serial).push_bind(account);
                push_device_columns!(row, d, checkpoint.now);
            });
            insert.push(tail);
            insert
                .build()
                .execute(&mut *tx)
                .await
                .map_err(StoreError::Database)?;
        }
        add_page(&mut tx, checkpoint.run, None, page_serials).await?;
        advance(&mut tx, checkpoint, page_serials.len(), devices.len()).await?;
        tx.commit().await.map_err(StoreError::Database)
    }
}

#[async_trait]
impl MirrorStore for SqliteStore {
    async fn start_sync_run(
        &self,
        org: OrgId,
        account: ApiAccountId,
        cause: SyncCause,
        now: i64,
    ) -> Result<SyncRun> {
        let row: RunRow = sqlx::query_as(&format!(
            "INSERT INTO sync_runs (org_id, account_id, cause, state, phase, started_at, updated_at) \
             VALUES (?, ?, ?, 'running', 'devices', ?, ?) RETURNING {RUN_COLUMNS}"
        ))
        .bind(org.0.to_string())
        .bind(account.0.to_string())
        .bind(cause.as_str())
        .bind(now)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx("sync run", e))?;
        row.try_into()
    }

    async fn running_sync_run(&self, account: ApiAccountId) -> Result<Option<SyncRun>> {
        let row: Option<RunRow> = sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE account_id = ? AND state = 'running'"
        ))
        .bind(account.0.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::Database)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn sync_run(&self, run: RunId) -> Result<SyncRun> {
        let row: RunRow =
            sqlx::query_as(&format!("SELECT {RUN_COLUMNS} FROM sync_runs WHERE id = ?"))
                .bind(run.0)
                .fetch_one(&self.pool)
                .await
                .map_err(|e| StoreError::from_sqlx("sync run", e))?;
        row.try_into()
    }

    async fn sync_runs(&self, account: ApiAccountId, limit: u32) -> Result<Vec<SyncRun>> {
        let rows: Vec<RunRow> = sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE account_id = ? ORDER BY id DESC LIMIT ?"
        ))
        .bind(account.0.to_string())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::Database)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn has_devices(&self, org: OrgId) -> Result<bool> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM mirror_devices WHERE org_id = ?)")
            .bind(org.0.to_string())
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::Database)
    }

    async fn device_hashes(
        &self,
        org: OrgId,
        serials: &[&str],
    ) -> Result<Vec<(String, StoredHash)>> {
        // One JSON text for the page rather than a row at a time: the driver hands each
        // row over from its worker thread, and a thousand hand-offs cost more than the probes.
        let json: String = sqlx::query_scalar(
            "SELECT json_group_array(json_array(serial, content_hash, absent_since IS NOT NULL)) \
             FROM mirror_devices WHERE org_id = ? AND serial IN (SELECT value FROM json_each(?))",
        )
        .bind(org.0.to_string())
        .bind(json_list(serials))
        .fetch_one(&self.sync_pool)
        .await
        .map_err(StoreError::Database)?;
        let rows: Vec<(String, i64, u8)> = serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("device hashes as JSON: {e}")))?;
        Ok(rows
            .into_iter()
            .map(|(serial, content_hash, absent)| {
                (
                    serial,
                    StoredHash {
                        content_hash,
                        absent: absent != 0,
                    },
                )
            })
            .collect())
    }

    async fn store_device_page(
        &self,
        org: OrgId,
        account: ApiAccountId,
        checkpoint: &Checkpoint,
        page_serials: &[&str],
        changed: &[DeviceAttributes],
    ) -> Result<()> {
        let into = (UPSERT_HEAD, UPSERT_TAIL);
        self.write_device_page(into, org, account, checkpoint, page_serials, changed)
            .await
    }

    async fn store_new_device_page(
        &self,
        org: OrgId,
        account: ApiAccountId,
        checkpoint: &Checkpoint,
        page_serials: &[&str],
        devices: &[DeviceAttributes],
    ) -> Result<bool> {
        let into = (INBOX_HEAD, "");
        self.write_device_page(into, org, account, checkpoint, page_serials, devices)
            .await?;
        Ok(true)
    }

    async fn merge_staged_devices(&self, org: OrgId, now: i64) -> Result<u64> {
        let org = org.0.to_string();
        // Every run asks (at its start and after its device list); most have staged nothing,
        // and the write lock is not taken for them.
        let staged: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM mirror_devices_inbox WHERE org_id = ?)",
        )
        .bind(&org)
        .fetch_one(&self.sync_pool)
        .await
        .map_err(StoreError::Database)?;
        if !staged {
            return Ok(0);
        }
        let mut tx = immediate(&self.sync_pool).await?;
        sqlx::query(&format!("{INBOX_MERGE}{UPSERT_TAIL}{UPSERT_IF_CHANGED}"))
            .bind(now)
            .bind(&org)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::Database)?;
        let staged = sqlx::query("DELETE FROM mirror_devices_inbox WHERE org_id = ?")
            .bind(&org)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::Database)?
            .rows_affected();
        // Staged by the organization's running runs (migration 0015).
        sqlx::query(
            "UPDATE sync_runs SET merged = merged + ? WHERE org_id = ? AND state = 'running'",
        )
        .bind(signed(staged))
        .bind(&org)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::Database)?;
        tx.commit().await.map_err(StoreError::Database)?;
        Ok(staged)
    }

    async fn store_services(
        &self,
        org: OrgId,
        account: ApiAccountId,
        checkpoint: &Checkpoint,
        services: &[ServiceAttributes],
    ) -> Result<()> {
        let org = org.0.to_string();
        let account = account.0.to_string();
        let mut tx = immediate(&self.pool).await?;
        for s in services {
            sqlx::query(
                "INSERT INTO mirror_services (org_id, id, account_id, name, server_type, \
                 default_families, created_at, updated_at, content_hash, absent_since) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL) \
                 ON CONFLICT (org_id, id) DO UPDATE SET account_id = excluded.account_id, \
                 name = excluded.name, server_type = excluded.server_type, \
                 default_families = excluded.default_families, created_at = excluded.created_at, \
                 updated_at = excluded.updated_at, content_hash = excluded.content_hash, \
                 absent_since = NULL \
                 WHERE mirror_services.content_hash <> excluded.content_hash \
                    OR mirror_services.absent_since IS NOT NULL \
                    OR mirror_services.account_id <> excluded.account_id",
            )
            .bind(&org)
            .bind(&s.id)
            .bind(&account)
            .bind(&s.name)
            .bind(&s.server_type)
            .bind(&s.default_families)
            .bind(s.created_at)
            .bind(s.updated_at)
            .bind(s.content_hash())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::Database)?;
        }
        let ids: Vec<&str> = services.iter().map(|s| s.id.as_str()).collect();
        sqlx::query(
            "UPDATE mirror_services SET absent_since = ? WHERE org_id = ? AND account_id = ? \
             AND absent_since IS NULL AND id NOT IN (SELECT value FROM json_each(?))",
        )
        .bind(checkpoint.now)
        .bind(&org)
        .bind(&account)
        .bind(json_list(&ids))
        .execute(&mut *tx)
        .await
        .map_err(StoreError::Database)?;
        advance(&mut tx, checkpoint, 0, 0).await?;
        tx.commit().await.map_err(StoreError::Database)
    }

    async fn present_service_ids(&self, org: OrgId, account: ApiAccountId) -> Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT id FROM mirror_services WHERE org_id = ? AND account_id = ? \
             AND absent_since IS NULL ORDER BY id",
        )
        .bind(org.0.to_string())
        .bind(account.0.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::Database)
    }

    async fn store_service_page(
        &self,
        checkpoint: &Checkpoint,
        service_id: &str,
        serials: &[&str],
    ) -> Result<()> {
        let mut tx = immediate(&self.pool).await?;
        add_page(&mut tx, checkpoint.run, Some(service_id), serials).await?;
        advance(&mut tx, checkpoint, serials.len(), 0).await?;
        tx.commit().await.map_err(StoreError::Database)
    }

    async fn sync_run_pages(&self, run: RunId) -> Result<Vec<(Option<String>, String)>> {
        sqlx::query_as(
            "SELECT service_id, serials FROM sync_run_pages WHERE run_id = ? ORDER BY seq",
        )
        .bind(run.0)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::Database)
    }

    async fn account_devices(
        &self,
        org: OrgId,
        account: ApiAccountId,
    ) -> Result<Vec<PresentDevice>> {
        let rows: Vec<(String, Option<String>, bool)> = sqlx::query_as(
            "SELECT serial, service_id, absent_since IS NOT NULL FROM mirror_devices \
             WHERE org_id = ? AND account_id = ?",
        )
        .bind(org.0.to_string())
        .bind(account.0.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::Database)?;
        Ok(rows
            .into_iter()
            .map(|(serial, service_id, absent)| PresentDevice {
                serial,
                service_id,
                absent,
            })
            .collect())
    }

    async fn finish_sync_run(
        &self,
        org: OrgId,
        run: RunId,
        changes: &[DeviceChange],
        now: i64,
        then: Option<SyncPhase>,
    ) -> Result<()> {
        let org = org.0.to_string();
        for batch in changes.chunks(CHANGE_BATCH) {
            let rows: Vec<(&str, Option<i64>, Option<&str>)> = batch
                .iter()
                .map(|c| (c.serial.as_str(), c.absent_since, c.service_id.as_deref()))
                .collect();
            let rows =
                serde_json::to_string(&rows).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let released = batch.iter().filter(|c| c.absent_since.is_some()).count();
            let mut tx = immediate(&self.pool).await?;
            // Materialized, so the batch drives the join (one primary-key probe per change);
            // otherwise the planner scans the organization's devices and the batch per row.
            sqlx::query(
                "WITH c AS MATERIALIZED (SELECT value ->> 0 AS serial, \
                     value ->> 1 AS absent_since, value ->> 2 AS service_id FROM json_each(?)) \
                 UPDATE mirror_devices SET \
                 absent_since = COALESCE(c.absent_since, mirror_devices.absent_since), \
                 service_id = c.service_id \
                 FROM c WHERE mirror_devices.org_id = ? AND mirror_devices.serial = c.serial",
            )
            .bind(rows)
            .bind(&org)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::Database)?;
            add_released(&mut tx, run, released).await?;
            tx.commit().await.map_err(StoreError::Database)?;
        }
        let mut tx = immediate(&self.pool).await?;
        sqlx::query("DELETE FROM sync_run_pages WHERE run_id = ?")
            .bind(run.0)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::Database)?;
        let done = sqlx::query(
            "UPDATE sync_runs SET state = ?, phase = ?, cursor = NULL, service_index = 0, \
             updated_at = ?, devices_synced_at = ?, finished_at = ?, error = NULL \
             WHERE id = ? AND state = 'running'",
        )
        .bind(if then.is_some() {
            "running"
        } else {
            "succeeded"
        })
        .bind(then.unwrap_or(SyncPhase::Finishing).as_str())
        .bind(now)
        .bind(now)
        .bind(then.is_none().then_some(now))
        .bind(run.0)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::Database)?;
        super::still_running(done.rows_affected())?;
        tx.commit().await.map_err(StoreError::Database)
    }

    async fn refresh_device(
        &self,
        org: OrgId,
        account: ApiAccountId,
        device: &DeviceAttributes,
        service_id: Option<&str>,
        now: i64,
    ) -> Result<bool> {
        let org = org.0.to_string();
        let account = account.0.to_string();
        let (org, account) = (org.as_str(), account.as_str());
        let mut tx = immediate(&self.pool).await?;
        let mut insert = sqlx::QueryBuilder::new(UPSERT_HEAD);
        insert.push_values([device], |mut row, d| {
            row.push_bind(org).push_bind(&d.serial).push_bind(account);
            push_device_columns!(row, d, now);
        });
        insert.push(UPSERT_TAIL);
        insert.push(UPSERT_IF_CHANGED);
        let written = insert
            .build()
            .execute(&mut *tx)
            .await
            .map_err(StoreError::Database)?
            .rows_affected();
        let moved = sqlx::query(
            "UPDATE mirror_devices SET service_id = ? WHERE org_id = ? AND serial = ? \
             AND service_id IS DISTINCT FROM ?",
        )
        .bind(service_id)
        .bind(org)
        .bind(&device.serial)
        .bind(service_id)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::Database)?
        .rows_affected();
        tx.commit().await.map_err(StoreError::Database)?;
        Ok(written + moved > 0)
    }

    async fn mark_device_absent(&self, org: OrgId, serial: &str, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE mirror_devices SET absent_since = ?, service_id = NULL \
             WHERE org_id = ? AND serial = ? AND absent_since IS NULL",
        )
        .bind(now)
        .bind(org.0.to_string())
        .bind(serial)
        .execute(&self.pool)
        .await
        .map_err(StoreError::Database)?;
        Ok(done.rows_affected() > 0)
    }

    async fn record_sync_error(&self, run: RunId, error: &str, now: i64) -> Result<()> {
        sqlx::query("UPDATE sync_runs SET error = ?, updated_at = ? WHERE id = ?")
            .bind(error)
            .bind(now)
            .bind(run.0)
            .execute(&self.pool)
            .await
            .map_err(StoreError::Database)?;
        Ok(())
    }

    async fn fail_sync_run(&self, run: RunId, error: &str, now: i64) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(StoreError::Database)?;
        sqlx::query("DELETE FROM sync_run_pages WHERE run_id = ?")
            .bind(run.0)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::Database)?;
        sqlx::query(
            "UPDATE sync_runs SET state = 'failed', error = ?, updated_at = ?, finished_at = ? \
             WHERE id = ?",
        )
        .bind(error)
        .bind(now)
        .bind(now)
        .bind(run.0)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::Database)?;
        tx.commit().await.map_err(StoreError::Database)
    }

    async fn devices_by_serials(&self, org: OrgId, serials: &[String]) -> Result<Vec<DeviceFacts>> {
        if serials.is_empty() {
            return Ok(Vec::new());
        }
        let serials: Vec<&str> = serials.iter().map(String::as_str).collect();
        let rows: Vec<FactsRow> = sqlx::query_as(&format!(
            "SELECT serial, account_id, {FACT_COLUMNS} FROM mirror_devices \
             WHERE org_id = ? AND serial IN (SELECT value FROM json_each(?))"
        ))
        .bind(org.0.to_string())
        .bind(json_list(&serials))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::Database)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn service_account(&self, org: OrgId, service_id: &str) -> Result<Option<ApiAccountId>> {
        let account: Option<String> = sqlx::query_scalar(
            "SELECT account_id FROM mirror_services WHERE org_id = ? AND id = ?",
        )
        .bind(org.0.to_string())
        .bind(service_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::Database)?;
        account
            .map(|a| {
                Uuid::parse_str(&a)
                    .map(ApiAccountId)
                    .map_err(|e| corrupt("account_id", e))
            })
            .transpose()
    }

    async fn device_coverage(&self, org: OrgId, serial: &str) -> Result<Option<(i64, String)>> {
        sqlx::query_as(
            "SELECT fetched_at, facts FROM device_coverage WHERE org_id = ? AND serial = ?",
        )
        .bind(org.0.to_string())
        .bind(serial)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::Database)
    }

    async fn put_device_coverage(
        &self,
        org: OrgId,
        serial: &str,
        fetched_at: i64,
        facts: &str,
        state: AppleCareState,
    ) -> Result<()> {
        let org = org.0.to_string();
        let mut tx = immediate(&self.pool).await?;
        sqlx::query(
            "INSERT INTO device_coverage (org_id, serial, fetched_at, facts) VALUES (?, ?, ?, ?) \
             ON CONFLICT (org_id, serial) DO UPDATE SET fetched_at = excluded.fetched_at, \
             facts = excluded.facts",
        )
        .bind(&org)
        .bind(serial)
        .bind(fetched_at)
        .bind(facts)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::Database)?;
        sqlx::query(
            "UPDATE mirror_devices SET applecare = ? WHERE org_id = ? AND serial = ? \
             AND applecare IS NOT ?",
        )
        .bind(state.as_str())
        .bind(&org)
        .bind(serial)
        .bind(state.as_str())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::Database)?;
        tx.commit().await.map_err(StoreError::Database)
    }
}
