//! SQLite implementation of [`Store`]: one file, WAL mode, foreign keys on.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{FromRow, SqlitePool};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::leases::{LeaseKey, LeaseStore};
use super::{DatabaseKind, Result, Store, StoreError};
use crate::config::DatabaseConfig;
use crate::orgs::{NewOrganization, OrgId, Organization};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a writer waits for the file lock before giving up.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub struct SqliteStore {
    pub(super) pool: SqlitePool,
    /// One connection of its own for the device pages a sync reads and writes. SQLite
    /// drops a connection's page cache whenever another connection has written, so a page
    /// stored from any pooled connection found the mirror's pages cold; a sync's own
    /// connection keeps what it probes and inserts into, page after page, in its cache.
    pub(super) sync_pool: SqlitePool,
}

/// A transaction on `pool` that takes the write lock at once (`BEGIN IMMEDIATE`): one that
/// reads before writing would otherwise fail with SQLITE_BUSY when another writer went first.
pub(super) async fn immediate(
    pool: &SqlitePool,
) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
    pool.begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(StoreError::Database)
}

impl SqliteStore {
    /// Opens (creating if missing) the database file and applies pending migrations.
    pub async fn connect(config: &DatabaseConfig) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(&config.url)
            .map_err(StoreError::Database)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            // Checkpoints every 16 MiB of log rather than 4: a sync's pages touch many of the
            // same table pages, which are then copied back to the database file once.
            .pragma("wal_autocheckpoint", "4096");
        let file = options.get_filename();
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
                path: dir.display().to_string(),
                source,
            })?;
        }
        // No ping before handing out a connection (sqlx's default): an embedded database
        // has no other end to lose, and the ping is a round trip to the connection's thread.
        let pool = SqlitePoolOptions::new()
            .max_connections(config.max_connections)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(StoreError::Database)?;
        MIGRATOR.run(&pool).await.map_err(StoreError::Migrate)?;
        let sync_pool = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            // Up to 32 MiB of pages (the default is 2 MiB), allocated as they are read: the
            // part of a large mirror a sync probes and inserts into stays in memory.
            .connect_with(options.pragma("cache_size", "-32768"))
            .await
            .map_err(StoreError::Database)?;
        Ok(Self { pool, sync_pool })
    }
}

#[derive(FromRow)]
struct OrganizationRow {
    id: String,
    slug: String,
    name: String,
    created_at: String,
}

impl TryFrom<OrganizationRow> for Organization {
    type Error = StoreError;

    fn try_from(row: OrganizationRow) -> Result<Self> {
        Ok(Self {
            id: OrgId(
                Uuid::parse_str(&row.id)
                    .map_err(|e| StoreError::Corrupt(format!("organizations.id: {e}")))?,
            ),
            slug: row.slug,
            name: row.name,
            created_at: OffsetDateTime::parse(&row.created_at, &Rfc3339)
                .map_err(|e| StoreError::Corrupt(format!("organizations.created_at: {e}")))?,
        })
    }
}

fn timestamp(at: OffsetDateTime) -> Result<String> {
    at.format(&Rfc3339)
        .map_err(|e| StoreError::Corrupt(format!("timestamp {at}: {e}")))
}

/// Second precision keeps round trips exact on both databases.
fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

#[async_trait]
impl Store for SqliteStore {
    fn kind(&self) -> DatabaseKind {
        DatabaseKind::Sqlite
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(StoreError::Database)
    }

    async fn close(&self) {
        self.sync_pool.close().await;
        self.pool.close().await;
    }

    async fn create_organization(&self, new: &NewOrganization) -> Result<Organization> {
        let org = Organization {
            id: OrgId::random(),
            slug: new.slug().to_owned(),
            name: new.name().to_owned(),
            created_at: now(),
        };
        sqlx::query("INSERT INTO organizations (id, slug, name, created_at) VALUES (?, ?, ?, ?)")
            .bind(org.id.0.to_string())
            .bind(&org.slug)
            .bind(&org.name)
            .bind(timestamp(org.created_at)?)
            .execute(&self.pool)
            .await
            .map_err(|e| StoreError::from_sqlx("organization", e))?;
        Ok(org)
    }

    async fn organization(&self, id: OrgId) -> Result<Organization> {
        sqlx::query_as::<_, OrganizationRow>(
            "SELECT id, slug, name, created_at FROM organizations WHERE id = ?",
        )
        .bind(id.0.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx("organization", e))?
        .try_into()
    }

    async fn list_organizations(&self) -> Result<Vec<Organization>> {
        sqlx::query_as::<_, OrganizationRow>(
            "SELECT id, slug, name, created_at FROM organizations ORDER BY name, id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx("organization", e))?
        .into_iter()
        .map(Organization::try_from)
        .collect()
    }
}

#[async_trait]
impl LeaseStore for SqliteStore {
    async fn acquire_lease(
        &self,
        key: LeaseKey,
        holder: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<bool> {
        let taken = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at <= ?",
        )
        .bind(key.name())
        .bind(holder)
        .bind(expires_at)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(StoreError::Database)?;
        Ok(taken.rows_affected() == 1)
    }

    async fn release_lease(&self, key: LeaseKey, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM leases WHERE name = ? AND holder = ?")
            .bind(key.name())
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(StoreError::Database)?;
        Ok(())
    }
}
