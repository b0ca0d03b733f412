//! SQLite implementation of [`DeviceSearch`] (SQL shared in [`super::search`]).

use async_trait::async_trait;
use futures::TryStreamExt as _;
use sqlx::FromRow;
use sqlx::sqlite::SqliteArguments;

use super::search::{Arg, DEVICE_COLUMNS, DeviceRow, DeviceSearch, Dialect, SqlQuery};
use super::{Result, SqliteStore, StoreError};
use crate::mirror::search::{DeviceQuery, MirrorSummary, SearchPage, ServiceName, sort_models};
use crate::mirror::{DeviceRecord, ServiceRecord};
use crate::orgs::OrgId;

/// Serials per `IN (…)` list, well under SQLite's parameter limit.
const SERIAL_CHUNK: usize = 500;

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
    mut q: sqlx::query::QueryAs<'q, sqlx::Sqlite, DeviceRow, SqliteArguments<'q>>,
    args: &'q [Arg],
) -> sqlx::query::QueryAs<'q, sqlx::Sqlite, DeviceRow, SqliteArguments<'q>> {
    for a in args {
        q = match a {
            Arg::Text(t) => q.bind(t.as_str()),
            Arg::Int(n) => q.bind(*n),
        };
    }
    q
}

#[async_trait]
impl DeviceSearch for SqliteStore {
    async fn search_devices(&self, org: OrgId, query: &DeviceQuery) -> Result<SearchPage> {
        let sql = SqlQuery::build(Dialect::Sqlite, query);
        let org_text = org.0.to_string();
        let count_sql = format!(
            "SELECT COUNT(*) FROM mirror_devices WHERE org_id = ?{}",
            sql.conditions
        );
        let mut count = sqlx::query_scalar::<_, i64>(&count_sql).bind(&org_text);
        for a in &sql.args[..sql.condition_args] {
            count = match a {
                Arg::Text(t) => count.bind(t.as_str()),
                Arg::Int(n) => count.bind(*n),
            };
        }
        let total = count.fetch_one(&self.pool).await.map_err(db)?;
        let limit = query.limit.max(1) as usize;
        let page_sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM mirror_devices WHERE org_id = ?{}{}{} LIMIT {}",
            sql.conditions,
            sql.keyset,
            sql.order,
            limit + 1
        );
        let rows = bind_all(
            sqlx::query_as::<_, DeviceRow>(&page_sql).bind(&org_text),
            &sql.args,
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let devices = rows.into_iter().map(Into::into).collect();
        Ok(SearchPage::cut(query, devices, total as u64))
    }

    async fn device(&self, org: OrgId, serial: &str) -> Result<Option<DeviceRecord>> {
        let sql =
            format!("SELECT {DEVICE_COLUMNS} FROM mirror_devices WHERE org_id = ? AND serial = ?");
        Ok(sqlx::query_as::<_, DeviceRow>(&sql)
            .bind(org.0.to_string())
            .bind(serial)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .map(Into::into))
    }

    async fn devices_by_serial(&self, org: OrgId, serials: &[String]) -> Result<Vec<DeviceRecord>> {
        let org_text = org.0.to_string();
        let mut out = Vec::with_capacity(serials.len());
        for chunk in serials.chunks(SERIAL_CHUNK) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = format!(
                "SELECT {DEVICE_COLUMNS} FROM mirror_devices WHERE org_id = ? AND serial IN ({marks})"
            );
            let mut q = sqlx::query_as::<_, DeviceRow>(&sql).bind(&org_text);
            for s in chunk {
                q = q.bind(s.as_str());
            }
            out.extend(
                q.fetch_all(&self.pool)
                    .await
                    .map_err(db)?
                    .into_iter()
                    .map(DeviceRecord::from),
            );
        }
        Ok(out)
    }

    async fn for_each_device(
        &self,
        org: OrgId,
        each: &mut (dyn FnMut(DeviceRecord) + Send),
    ) -> Result<()> {
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM mirror_devices WHERE org_id = ?");
        let org_text = org.0.to_string();
        let mut rows = sqlx::query_as::<_, DeviceRow>(&sql)
            .bind(&org_text)
            .fetch(&self.pool);
        while let Some(row) = rows.try_next().await.map_err(db)? {
            each(row.into());
        }
        Ok(())
    }

    async fn services(&self, org: OrgId) -> Result<Vec<ServiceRecord>> {
        let rows = sqlx::query_as::<_, ServiceRow>(
            "SELECT s.id, s.name, s.server_type, s.default_families, s.created_at, \
                    s.updated_at, s.absent_since, \
                    (SELECT COUNT(*) FROM mirror_devices d WHERE d.org_id = s.org_id \
                       AND d.service_id = s.id AND d.absent_since IS NULL) AS device_count \
             FROM mirror_services s WHERE s.org_id = ? ORDER BY s.name, s.id",
        )
        .bind(org.0.to_string())
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
            "SELECT id, name, absent_since FROM mirror_services WHERE org_id = ? \
             ORDER BY name, id",
        )
        .bind(org.0.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx("service", e))
    }

    async fn device_models(&self, org: OrgId) -> Result<Vec<String>> {
        let mut models: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT model FROM mirror_devices \
             WHERE org_id = ? AND absent_since IS NULL AND model IS NOT NULL",
        )
        .bind(org.0.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        sort_models(&mut models);
        Ok(models)
    }

    async fn mirror_summary(&self, org: OrgId) -> Result<MirrorSummary> {
        let (devices, absent, newest): (i64, i64, Option<i64>) = sqlx::query_as(
            "SELECT COALESCE(SUM(CASE WHEN absent_since IS NULL THEN 1 ELSE 0 END), 0), \
                    COALESCE(SUM(CASE WHEN absent_since IS NULL THEN 0 ELSE 1 END), 0), \
                    MAX(changed_at) \
             FROM mirror_devices WHERE org_id = ?",
        )
        .bind(org.0.to_string())
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
