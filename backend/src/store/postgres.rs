//! PostgreSQL implementation of [`Store`], for several Orchard instances sharing one database.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{FromRow, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{DatabaseKind, Result, Store, StoreError};
use crate::config::DatabaseConfig;
use crate::orgs::{NewOrganization, OrgId, Organization};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PostgresStore {
    pub(super) pool: PgPool,
    /// Connections holding a sync's advisory lock, by account (see `postgres_mirror.rs`).
    pub(super) sync_locks: tokio::sync::Mutex<
        std::collections::HashMap<
            crate::accounts::ApiAccountId,
            sqlx::pool::PoolConnection<sqlx::Postgres>,
        >,
    >,
}

impl PostgresStore {
    /// Connects and applies pending migrations (sqlx serialises concurrent migrators
    /// with an advisory lock, so several instances may start at once).
    pub async fn connect(config: &DatabaseConfig) -> Result<Self> {
        let options = PgConnectOptions::from_str(&config.url).map_err(StoreError::Database)?;
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .connect_with(options)
            .await
            .map_err(StoreError::Database)?;
        MIGRATOR.run(&pool).await.map_err(StoreError::Migrate)?;
        Ok(Self {
            pool,
            sync_locks: Default::default(),
        })
    }
}

#[derive(FromRow)]
struct OrganizationRow {
    id: Uuid,
    slug: String,
    name: String,
    created_at: OffsetDateTime,
}

impl From<OrganizationRow> for Organization {
    fn from(row: OrganizationRow) -> Self {
        Self {
            id: OrgId(row.id),
            slug: row.slug,
            name: row.name,
            created_at: row.created_at,
        }
    }
}

/// Second precision keeps round trips exact on both databases.
fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

#[async_trait]
impl Store for PostgresStore {
    fn kind(&self) -> DatabaseKind {
        DatabaseKind::Postgres
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(StoreError::Database)
    }

    async fn close(&self) {
        // Held sync locks end with their sessions; the pool would otherwise wait for them.
        for (_, conn) in self.sync_locks.lock().await.drain() {
            drop(conn.detach());
        }
        self.pool.close().await;
    }

    async fn create_organization(&self, new: &NewOrganization) -> Result<Organization> {
        let org = Organization {
            id: OrgId::random(),
            slug: new.slug().to_owned(),
            name: new.name().to_owned(),
            created_at: now(),
        };
        sqlx::query(
            "INSERT INTO organizations (id, slug, name, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(org.id.0)
        .bind(&org.slug)
        .bind(&org.name)
        .bind(org.created_at)
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx("organization", e))?;
        Ok(org)
    }

    async fn organization(&self, id: OrgId) -> Result<Organization> {
        sqlx::query_as::<_, OrganizationRow>(
            "SELECT id, slug, name, created_at FROM organizations WHERE id = $1",
        )
        .bind(id.0)
        .fetch_one(&self.pool)
        .await
        .map(Organization::from)
        .map_err(|e| StoreError::from_sqlx("organization", e))
    }

    async fn list_organizations(&self) -> Result<Vec<Organization>> {
        Ok(sqlx::query_as::<_, OrganizationRow>(
            "SELECT id, slug, name, created_at FROM organizations ORDER BY name, id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx("organization", e))?
        .into_iter()
        .map(Organization::from)
        .collect())
    }
}
