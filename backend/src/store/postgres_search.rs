//! PostgreSQL implementation of [`DeviceSearch`] (SQL shared in [`super::search`]).

use async_trait::async_trait;
use futures::TryStreamExt as _;
use sqlx::FromRow;
use sqlx::postgres::PgArguments;

use super::search::{
    Arg, CHANGED_SINCE, DEVICE_COLUMNS, DeviceRow, DeviceSearch, Dialect, LATEST_SYNC_RUNS,
    RunMarkRow, SqlQuery,
};
use super::{PostgresStore, Result, StoreError};
use crate::mirror::index::RunMark;
use crate::mirror::search::{DeviceQuery, MirrorSummary, SearchPage, ServiceName, sort_models};
use crate::mirror::{DeviceRecord, ServiceRecord};
use crate::orgs::OrgId;

#[derive(FromRow)]
struct ServiceRow {
    id: String,
    name: String,
    server_type: Option<String>,
    default_families: Option<String>,
    created_at: Option<i64>,
    updated_at: Option<i64>,
    absent_since: Option<i64>,
    device_count: i64,
}

fn db(e: sqlx::Error) -> StoreError {
    StoreError::from_sqlx("device", e)
}

fn bind_all<'q>(
    mut q: sqlx::query::QueryAs<'q, sqlx::Postgres, DeviceRow, PgArguments>,
    args: &'q [Arg],
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, DeviceRow, PgArguments> {
    for a in args {
        q = match a {
            Arg::Text(t) => q.bind(t.as_str()),
            Arg::Int(n) => q.bind(*n),
        };
    }
    q
}

#[async_trait]
impl DeviceSearch for PostgresStore {
    async fn search_devices(&self, org: OrgId, query: &DeviceQuery) -> Result<SearchPage> {
        let sql = SqlQuery::build(Dialect::Postgres, query);
        let org_text = org.0;
        let count_sql = format!(
            "SELECT COUNT(*) FROM mirror_devices WHERE org_id = $1{}",
            sql.conditions
        );
        let mut count = sqlx::query_scalar::<_, i64>(&count_sql).bind(org_text);
        for a in &sql.args[..sql.condition_args] {
            count = match a {
                Arg::Text(t) => count.bind(t.as_str()),
                Arg::Int(n) => count.bind(*n),
            };
        }
        let total = count.fetch_one(&self.pool).await.map_err(db)?;
        let limit = query.limit.max(1) as usize;
        let page_sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM mirror_devices WHERE org_id = $1{}{}{} LIMIT {}",
            sql.conditions,
            sql.keyset,
            sql.order,
            limit + 1
        );
        let rows = bind_all(
            sqlx::query_as::<_, DeviceRow>(&page_sql).bind(org_text),
            &sql.args,
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let devices = rows.into_iter().map(Into::into).collect();
        Ok(SearchPage::cut(query, devices, total as u64))
    }

    async fn device(&self, org: OrgId, serial: &str) -> Result<Option<DeviceRecord>> {
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM mirror_devices WHERE org_id = $1 AND serial = $2"
        );
        Ok(sqlx::query_as::<_, DeviceRow>(&sql)
            .bind(org.0)
            .bind(serial)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .map(Into::into))
    }

    async fn devices_by_serial(&self, org: OrgId, serials: &[String]) -> Result<Vec<DeviceRecord>> {
        // One index probe per distinct serial, whatever the planner believes of the table.
        // `serial = ANY($2)` plans and runs in half the time for a search page's twenty
        // serials, but on a table without statistics yet (during and just after a first
        // sync) PostgreSQL 15 read every row of the organization for an array of 1000
        // (92 ms at 500k devices; this join: 6 ms), as the sync and the job runner send.
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM (SELECT DISTINCT s FROM UNNEST($2::text[]) AS u (s)) AS wanted \
             JOIN mirror_devices ON org_id = $1 AND serial = wanted.s"
        );
        Ok(sqlx::query_as::<_, DeviceRow>(&sql)
            .bind(org.0)
            .bind(serials)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .into_iter()
            .map(DeviceRecord::from)
            .collect())
    }

    async fn for_each_device(
        &self,
        org: OrgId,
        each: &mut (dyn FnMut(DeviceRecord) + Send),
    ) -> Result<()> {
        // In serial order (the primary key's), as SQLite's scan: see the trait.
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM mirror_devices WHERE org_id = $1 ORDER BY serial"
        );
        let mut rows = sqlx::query_as::<_, DeviceRow>(&sql)
            .bind(org.0)
            .fetch(&self.pool);
        while let Some(row) = rows.try_next().await.map_err(db)? {
            each(row.into());
        }
        Ok(())
    }

    async fn for_each_device_changed(
        &self,
        org: OrgId,
        since: i64,
        each: &mut (dyn FnMut(DeviceRecord) + Send),
    ) -> Result<()> {
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM mirror_devices WHERE org_id = $1 AND {}",
            CHANGED_SINCE.replace("{since}", "$2")
        );
        let mut rows = sqlx::query_as::<_, DeviceRow>(&sql)
            .bind(org.0)
            .bind(since)
            .fetch(&self.pool);
        while let Some(row) = rows.try_next().await.map_err(db)? {
            each(row.into());
        }
        Ok(())
    }

    async fn latest_sync_runs(&self, org: OrgId) -> Result<Vec<RunMark>> {
        sqlx::query_as::<_, RunMarkRow>(&LATEST_SYNC_RUNS.replace("{org}", "$1"))
            .bind(org.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .into_iter()
            .map(RunMark::try_from)
            .collect()
    }

    async fn services(&self, org: OrgId) -> Result<Vec<ServiceRecord>> {
        let rows = sqlx::query_as::<_, ServiceRow>(
            "SELECT s.id, s.name, s.server_type, s.default_families, s.created_at, \
                    s.updated_at, s.absent_since, \
                    (SELECT COUNT(*) FROM mirror_devices d WHERE d.org_id = s.org_id \
                       AND d.service_id = s.id AND d.absent_since IS NULL) AS device_count \
             FROM mirror_services s WHERE s.org_id = $1 ORDER BY s.name COLLATE \"C\", s.id COLLATE \"C\"",
        )
        .bind(org.0)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx("service", e))?;
        Ok(rows
            .into_iter()
            .map(|r| ServiceRecord {
                id: r.id,
                name: r.name,
                server_type: r.server_type,
                default_families: r.default_families,
                created_at: r.created_at,
                updated_at: r.updated_at,
                absent_since: r.absent_since,
                device_count: r.device_count as u64,
            })
            .collect())
    }

    async fn service_names(&self, org: OrgId) -> Result<Vec<ServiceName>> {
        sqlx::query_as::<_, ServiceName>(
            "SELECT id, name, absent_since FROM mirror_services WHERE org_id = $1 \
             ORDER BY name, id",
        )
        .bind(org.0)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx("service", e))
    }

    async fn device_models(&self, org: OrgId) -> Result<Vec<String>> {
        let mut models: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT model FROM mirror_devices \
             WHERE org_id = $1 AND absent_since IS NULL AND model IS NOT NULL",
        )
        .bind(org.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        sort_models(&mut models);
        Ok(models)
    }

    async fn mirror_summary(&self, org: OrgId) -> Result<MirrorSummary> {
        let (devices, absent, newest): (i64, i64, Option<i64>) = sqlx::query_as(
            "SELECT COALESCE(CAST(SUM(CASE WHEN absent_since IS NULL THEN 1 ELSE 0 END) AS BIGINT), 0), \
                    COALESCE(CAST(SUM(CASE WHEN absent_since IS NULL THEN 0 ELSE 1 END) AS BIGINT), 0), \
                    MAX(changed_at) \
             FROM mirror_devices WHERE org_id = $1",
        )
        .bind(org.0)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        Ok(MirrorSummary {
            devices: devices as u64,
            absent: absent as u64,
            newest_change: newest,
        })
    }
}
