//! PostgreSQL implementation of [`MirrorStore`]. Lists of serials travel as one `text[]`
//! parameter (`= ANY($n)`, or unnested and probed one by one where the table may not be
//! analysed yet: see `device_hashes`). Each page is one transaction: rows, page serials and
//! checkpoint together. One sync per account across instances is a lease (`super::leases`).

use async_trait::async_trait;
use sqlx::{FromRow, Postgres, Transaction};
use uuid::Uuid;

use super::mirror::{
    CHANGE_BATCH, Checkpoint, DeviceChange, FACT_COLUMNS, FactsRow, MirrorStore, PresentDevice,
    StoredHash, push_device_columns,
};
use super::{PostgresStore, Result, StoreError, count};
use crate::accounts::ApiAccountId;
use crate::jobs::preview::DeviceFacts;
use crate::mirror::sync::{RunId, RunState, SyncCause, SyncPhase, SyncRun};
use crate::mirror::{AppleCareState, DeviceAttributes, ServiceAttributes};
use crate::orgs::OrgId;

use super::sqlite_mirror::{RUN_COLUMNS, UPSERT_HEAD, UPSERT_IF_CHANGED, UPSERT_TAIL};

#[derive(FromRow)]
struct RunRow {
    id: i64,
    org_id: Uuid,
    account_id: Uuid,
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
            org: OrgId(row.org_id),
            account: ApiAccountId(row.account_id),
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

/// Adds newly absent devices to a running run's count, inside their transaction.
async fn add_released(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    run: RunId,
    released: usize,
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE sync_runs SET released = released + $1 WHERE id = $2 AND state = 'running'",
    )
    .bind(released as i64)
    .bind(run.0)
    .execute(&mut **tx)
    .await
    .map_err(StoreError::Database)?;
    super::still_running(done.rows_affected())
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Advances a run's checkpoint inside the page's transaction.
pub(super) async fn advance(
    tx: &mut Transaction<'_, Postgres>,
    checkpoint: &Checkpoint,
    items: usize,
    written: usize,
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE sync_runs SET phase = $1, cursor = $2, service_index = $3, pages = pages + 1, \
         items = items + $4, written = written + $5, rate_limited = rate_limited + $6, \
         budget_wait_ms = budget_wait_ms + $7, updated_at = $8, error = NULL \
         WHERE id = $9 AND state = 'running'",
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
    tx: &mut Transaction<'_, Postgres>,
    run: RunId,
    service: Option<&str>,
    serials: &[&str],
) -> Result<()> {
    sqlx::query(
        "INSERT INTO sync_run_pages (run_id, seq, service_id, serials) VALUES \
         ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM sync_run_pages WHERE run_id = $2), $3, $4)",
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

/// How a page's devices go into the mirror.
#[derive(Clone, Copy)]
enum DeviceWrite {
    /// Inserted, or updated where the serial is stored.
    Upsert,
    /// Only inserted: a serial already stored fails the statement with
    /// [`StoreError::Conflict`].
    Insert,
}

/// Writes a page of devices in one statement: one array per column, unnested into rows.
/// (A multi-row `VALUES` list binds 28 parameters a device; PostgreSQL spent more time
/// parsing those than writing the rows.) The serials must be distinct.
async fn write_devices(
    tx: &mut Transaction<'_, Postgres>,
    org: Uuid,
    account: Uuid,
    devices: &[DeviceAttributes],
    now: i64,
    write: DeviceWrite,
) -> Result<()> {
    fn text<'a>(
        devices: &'a [DeviceAttributes],
        field: impl Fn(&'a DeviceAttributes) -> &'a Option<String>,
    ) -> Vec<Option<&'a str>> {
        devices.iter().map(|d| field(d).as_deref()).collect()
    }
    fn number(
        devices: &[DeviceAttributes],
        field: impl Fn(&DeviceAttributes) -> Option<i64>,
    ) -> Vec<Option<i64>> {
        devices.iter().map(field).collect()
    }
    let sql = format!(
        "{UPSERT_HEAD} SELECT $1, serial, $2, model, product_family, product_type, capacity, \
         part_number, order_number, color, status, purchase_source_id, purchase_source_type, \
         imei, meid, eid, wifi_mac, bluetooth_mac, ethernet_mac, migration_capable, \
         migration_status, added_at, ordered_at, apple_updated_at, migration_deadline, \
         content_hash, $3, $3 FROM UNNEST($4::text[], $5::text[], $6::text[], $7::text[], \
         $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], \
         $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[], \
         $20::text[], $21::boolean[], $22::text[], $23::bigint[], $24::bigint[], \
         $25::bigint[], $26::bigint[], $27::bigint[]) AS page (serial, model, \
         product_family, product_type, capacity, part_number, order_number, color, status, \
         purchase_source_id, purchase_source_type, imei, meid, eid, wifi_mac, bluetooth_mac, \
         ethernet_mac, migration_capable, migration_status, added_at, ordered_at, \
         apple_updated_at, migration_deadline, content_hash){}",
        match write {
            DeviceWrite::Upsert => UPSERT_TAIL,
            DeviceWrite::Insert => "",
        }
    );
    let serials: Vec<&str> = devices.iter().map(|d| d.serial.as_str()).collect();
    sqlx::query(&sql)
        .bind(org)
        .bind(account)
        .bind(now)
        .bind(serials)
        .bind(text(devices, |d| &d.model))
        .bind(text(devices, |d| &d.product_family))
        .bind(text(devices, |d| &d.product_type))
        .bind(text(devices, |d| &d.capacity))
        .bind(text(devices, |d| &d.part_number))
        .bind(text(devices, |d| &d.order_number))
        .bind(text(devices, |d| &d.color))
        .bind(text(devices, |d| &d.status))
        .bind(text(devices, |d| &d.purchase_source_id))
        .bind(text(devices, |d| &d.purchase_source_type))
        .bind(text(devices, |d| &d.imei))
        .bind(text(devices, |d| &d.meid))
        .bind(text(devices, |d| &d.eid))
        .bind(text(devices, |d| &d.wifi_mac))
        .bind(text(devices, |d| &d.bluetooth_mac))
        .bind(text(devices, |d| &d.ethernet_mac))
        .bind(
            devices
                .iter()
                .map(|d| d.migration_capable)
                .collect::<Vec<_>>(),
        )
        .bind(text(devices, |d| &d.migration_status))
        .bind(number(devices, |d| d.added_at))
        .bind(number(devices, |d| d.ordered_at))
        .bind(number(devices, |d| d.apple_updated_at))
        .bind(number(devices, |d| d.migration_deadline))
        .bind(number(devices, |d| Some(d.content_hash())))
        .execute(&mut **tx)
        .await
        .map_err(|e| StoreError::from_sqlx("device", e))?;
    Ok(())
}

/// Writes a page of devices, adds it to the run's pages and advances the run, in one
/// transaction.
///
/// [`DeviceWrite::Insert`] is for a first sync's rows, which are new: `ON CONFLICT` checks
/// the primary key for every row before inserting it, which was 12% of PostgreSQL's time
/// in a first sync (ingest bench, 1M devices). A serial stored meanwhile (Apple's list
/// shifting under the cursor, or another account of the organization) fails the insert;
/// the page is then written again as an upsert, from a savepoint.
async fn store_page(
    pool: &sqlx::PgPool,
    org: OrgId,
    account: ApiAccountId,
    checkpoint: &Checkpoint,
    page_serials: &[&str],
    devices: &[DeviceAttributes],
    write: DeviceWrite,
) -> Result<()> {
    let (org, account, now) = (org.0, account.0, checkpoint.now);
    let mut tx = pool.begin().await.map_err(StoreError::Database)?;
    match write {
        _ if devices.is_empty() => {}
        DeviceWrite::Upsert => write_devices(&mut tx, org, account, devices, now, write).await?,
        DeviceWrite::Insert => {
            sqlx::query("SAVEPOINT new_devices")
                .execute(&mut *tx)
                .await
                .map_err(StoreError::Database)?;
            match write_devices(&mut tx, org, account, devices, now, write).await {
                Err(StoreError::Conflict { .. }) => {
                    sqlx::query("ROLLBACK TO SAVEPOINT new_devices")
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::Database)?;
                    let write = DeviceWrite::Upsert;
                    write_devices(&mut tx, org, account, devices, now, write).await?;
                }
                written => written?,
            }
        }
    }
    add_page(&mut tx, checkpoint.run, None, page_serials).await?;
    advance(&mut tx, checkpoint, page_serials.len(), devices.len()).await?;
    tx.commit().await.map_err(StoreError::Database)
}

#[async_trait]
impl MirrorStore for PostgresStore {
    async fn start_sync_run(
        &self,
        org: OrgId,
        account: ApiAccountId,
        cause: SyncCause,
        now: i64,
    ) -> Result<SyncRun> {
        let row: RunRow = sqlx::query_as(&format!(
            "INSERT INTO sync_runs (org_id, account_id, cause, state, phase, started_at, updated_at) \
             VALUES ($1, $2, $3, 'running', 'devices', $4, $5) RETURNING {RUN_COLUMNS}"
        ))
        .bind(org.0)
        .bind(account.0)
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
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE account_id = $1 AND state = 'running'"
        ))
        .bind(account.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::Database)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn sync_run(&self, run: RunId) -> Result<SyncRun> {
        let row: RunRow = sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE id = $1"
        ))
        .bind(run.0)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx("sync run", e))?;
        row.try_into()
    }

    async fn sync_runs(&self, account: ApiAccountId, limit: u32) -> Result<Vec<SyncRun>> {
        let rows: Vec<RunRow> = sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE account_id = $1 ORDER BY id DESC LIMIT $2"
        ))
        .bind(account.0)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::Database)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn has_devices(&self, org: OrgId) -> Result<bool> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM mirror_devices WHERE org_id = $1)")
            .bind(org.0)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::Database)
    }

    async fn device_hashes(
        &self,
        org: OrgId,
        serials: &[&str],
    ) -> Result<Vec<(String, StoredHash)>> {
        // One index probe per serial, whatever the planner believes of the table: with
        // `serial = ANY($2)`, a table not yet analysed (a first sync) was read whole for
        // every page, the array tested on each row (22 ms a page at 50k devices, seconds
        // at 200k).
        let rows: Vec<(String, i64, bool)> = sqlx::query_as(
            "SELECT d.serial, d.content_hash, d.absent_since IS NOT NULL \
             FROM UNNEST($2::text[]) AS wanted (s) CROSS JOIN LATERAL \
             (SELECT serial, content_hash, absent_since FROM mirror_devices \
              WHERE org_id = $1 AND serial = wanted.s LIMIT 1) AS d",
        )
        .bind(org.0)
        .bind(serials)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::Database)?;
        Ok(rows
            .into_iter()
            .map(|(serial, content_hash, absent)| {
                (
                    serial,
                    StoredHash {
                        content_hash,
                        absent,
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
        store_page(
            &self.pool,
            org,
            account,
            checkpoint,
            page_serials,
            changed,
            DeviceWrite::Upsert,
        )
        .await
    }

    /// Nothing is staged: the table's heap takes new rows in arrival order, and the page is
    /// one statement already. The rows are only inserted ([`DeviceWrite::Insert`]).
    async fn store_new_device_page(
        &self,
        org: OrgId,
        account: ApiAccountId,
        checkpoint: &Checkpoint,
        page_serials: &[&str],
        devices: &[DeviceAttributes],
    ) -> Result<bool> {
        store_page(
            &self.pool,
            org,
            account,
            checkpoint,
            page_serials,
            devices,
            DeviceWrite::Insert,
        )
        .await?;
        Ok(false)
    }

    async fn merge_staged_devices(&self, _org: OrgId, _now: i64) -> Result<u64> {
        Ok(0)
    }

    async fn store_services(
        &self,
        org: OrgId,
        account: ApiAccountId,
        checkpoint: &Checkpoint,
        services: &[ServiceAttributes],
    ) -> Result<()> {
        let org = org.0;
        let account = account.0;
        let mut tx = self.pool.begin().await.map_err(StoreError::Database)?;
        for s in services {
            sqlx::query(
                "INSERT INTO mirror_services (org_id, id, account_id, name, server_type, \
                 default_families, created_at, updated_at, content_hash, absent_since) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL) \
                 ON CONFLICT (org_id, id) DO UPDATE SET account_id = excluded.account_id, \
                 name = excluded.name, server_type = excluded.server_type, \
                 default_families = excluded.default_families, created_at = excluded.created_at, \
                 updated_at = excluded.updated_at, content_hash = excluded.content_hash, \
                 absent_since = NULL \
                 WHERE mirror_services.content_hash <> excluded.content_hash \
                    OR mirror_services.absent_since IS NOT NULL \
                    OR mirror_services.account_id <> excluded.account_id",
            )
            .bind(org)
            .bind(&s.id)
            .bind(account)
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
            "UPDATE mirror_services SET absent_since = $1 WHERE org_id = $2 AND account_id = $3 \
             AND absent_since IS NULL AND NOT (id = ANY($4))",
        )
        .bind(checkpoint.now)
        .bind(org)
        .bind(account)
        .bind(&ids)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::Database)?;
        advance(&mut tx, checkpoint, 0, 0).await?;
        tx.commit().await.map_err(StoreError::Database)
    }

    async fn present_service_ids(&self, org: OrgId, account: ApiAccountId) -> Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT id FROM mirror_services WHERE org_id = $1 AND account_id = $2 \
             AND absent_since IS NULL ORDER BY id",
        )
        .bind(org.0)
        .bind(account.0)
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
        let mut tx = self.pool.begin().await.map_err(StoreError::Database)?;
        add_page(&mut tx, checkpoint.run, Some(service_id), serials).await?;
        advance(&mut tx, checkpoint, serials.len(), 0).await?;
        tx.commit().await.map_err(StoreError::Database)
    }

    async fn sync_run_pages(&self, run: RunId) -> Result<Vec<(Option<String>, String)>> {
        sqlx::query_as(
            "SELECT service_id, serials FROM sync_run_pages WHERE run_id = $1 ORDER BY seq",
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
             WHERE org_id = $1 AND account_id = $2",
        )
        .bind(org.0)
        .bind(account.0)
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
        let org = org.0;
        for batch in changes.chunks(CHANGE_BATCH) {
            let serials: Vec<&str> = batch.iter().map(|c| c.serial.as_str()).collect();
            let absent: Vec<Option<i64>> = batch.iter().map(|c| c.absent_since).collect();
            let services: Vec<Option<&str>> =
                batch.iter().map(|c| c.service_id.as_deref()).collect();
            let released = batch.iter().filter(|c| c.absent_since.is_some()).count();
            let mut tx = self.pool.begin().await.map_err(StoreError::Database)?;
            sqlx::query(
                "UPDATE mirror_devices AS d SET \
                 absent_since = COALESCE(c.absent_since, d.absent_since), \
                 service_id = c.service_id \
                 FROM UNNEST($1::text[], $2::bigint[], $3::text[]) \
                      AS c (serial, absent_since, service_id) \
                 WHERE d.org_id = $4 AND d.serial = c.serial",
            )
            .bind(&serials)
            .bind(&absent)
            .bind(&services)
            .bind(org)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::Database)?;
            add_released(&mut tx, run, released).await?;
            tx.commit().await.map_err(StoreError::Database)?;
        }
        let mut tx = self.pool.begin().await.map_err(StoreError::Database)?;
        sqlx::query("DELETE FROM sync_run_pages WHERE run_id = $1")
            .bind(run.0)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::Database)?;
        let done = sqlx::query(
            "UPDATE sync_runs SET state = $1, phase = $2, cursor = NULL, service_index = 0, \
             updated_at = $3, devices_synced_at = $4, finished_at = $5, \
             error = NULL WHERE id = $6 AND state = 'running'",
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
        let (org, account) = (org.0, account.0);
        let mut tx = self.pool.begin().await.map_err(StoreError::Database)?;
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
            "UPDATE mirror_devices SET service_id = $1 WHERE org_id = $2 AND serial = $3 \
             AND service_id IS DISTINCT FROM $4",
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
            "UPDATE mirror_devices SET absent_since = $1, service_id = NULL \
             WHERE org_id = $2 AND serial = $3 AND absent_since IS NULL",
        )
        .bind(now)
        .bind(org.0)
        .bind(serial)
        .execute(&self.pool)
        .await
        .map_err(StoreError::Database)?;
        Ok(done.rows_affected() > 0)
    }

    async fn record_sync_error(&self, run: RunId, error: &str, now: i64) -> Result<()> {
        sqlx::query("UPDATE sync_runs SET error = $1, updated_at = $2 WHERE id = $3")
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
        sqlx::query("DELETE FROM sync_run_pages WHERE run_id = $1")
            .bind(run.0)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::Database)?;
        sqlx::query(
            "UPDATE sync_runs SET state = 'failed', error = $1, updated_at = $2, finished_at = $3 \
             WHERE id = $4",
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
        let rows: Vec<FactsRow> = sqlx::query_as(&format!(
            "SELECT serial, account_id::text AS account_id, {FACT_COLUMNS} \
             FROM (SELECT DISTINCT s FROM UNNEST($2::text[]) AS u (s)) AS wanted \
             JOIN mirror_devices ON org_id = $1 AND serial = wanted.s"
        ))
        .bind(org.0)
        .bind(serials)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::Database)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn service_account(&self, org: OrgId, service_id: &str) -> Result<Option<ApiAccountId>> {
        let account: Option<Uuid> = sqlx::query_scalar(
            "SELECT account_id FROM mirror_services WHERE org_id = $1 AND id = $2",
        )
        .bind(org.0)
        .bind(service_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::Database)?;
        Ok(account.map(ApiAccountId))
    }

    async fn device_coverage(&self, org: OrgId, serial: &str) -> Result<Option<(i64, String)>> {
        sqlx::query_as(
            "SELECT fetched_at, facts FROM device_coverage WHERE org_id = $1 AND serial = $2",
        )
        .bind(org.0)
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
        let mut tx = self.pool.begin().await.map_err(StoreError::Database)?;
        sqlx::query(
            "INSERT INTO device_coverage (org_id, serial, fetched_at, facts) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (org_id, serial) DO UPDATE SET fetched_at = excluded.fetched_at, \
             facts = excluded.facts",
        )
        .bind(org.0)
        .bind(serial)
        .bind(fetched_at)
        .bind(facts)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::Database)?;
        sqlx::query(
            "UPDATE mirror_devices SET applecare = $1 WHERE org_id = $2 AND serial = $3 \
             AND applecare IS DISTINCT FROM $1",
        )
        .bind(state.as_str())
        .bind(org.0)
        .bind(serial)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::Database)?;
        tx.commit().await.map_err(StoreError::Database)
    }
}
