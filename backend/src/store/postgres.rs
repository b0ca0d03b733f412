//! PostgreSQL implementation of [`Store`], for several Orchard instances sharing one database.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::postgres::PgArguments;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection as _, FromRow, PgPool, Postgres};
use time::OffsetDateTime;
use uuid::Uuid;

use super::leases::{LeaseKey, LeaseStore};
use super::{DatabaseKind, Result, Store, StoreError};
use crate::config::DatabaseConfig;
use crate::orgs::{NewOrganization, OrgId, Organization};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PostgresStore {
    pub(super) pool: PgPool,
    /// Connections holding a lease's session advisory lock, by lease.
    lease_locks: tokio::sync::Mutex<
        std::collections::HashMap<LeaseKey, sqlx::pool::PoolConnection<sqlx::Postgres>>,
    >,
}

impl PostgresStore {
    /// Connects and applies pending migrations (sqlx serialises concurrent migrators
    /// with an advisory lock, so several instances may start at once).
    pub async fn connect(config: &DatabaseConfig) -> Result<Self> {
        let options = PgConnectOptions::from_str(&config.url).map_err(StoreError::Database)?;
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            // By default sqlx pings every connection before handing it out: a second round
            // trip per query. A connection in steady use has just answered; only one idle
            // for a while is pinged, and replaced if the server ended it meanwhile.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= super::PING_IF_IDLE {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await
            .map_err(StoreError::Database)?;
        MIGRATOR.run(&pool).await.map_err(StoreError::Migrate)?;
        Ok(Self {
            pool,
            lease_locks: Default::default(),
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
        // Held leases end with their sessions; the pool would otherwise wait for them.
        for (_, conn) in self.lease_locks.lock().await.drain() {
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

/// The advisory lock of a lease. A sync keeps its original single-key form (the account id's
/// first 8 bytes under a namespace), so instances of different versions agree; a job uses the
/// two-key form (class, job id), a key space PostgreSQL keeps apart from the single-key one.
fn lock_query(
    key: LeaseKey,
    lock: bool,
) -> sqlx::query::QueryScalar<'static, Postgres, bool, PgArguments> {
    match key {
        LeaseKey::Sync(account) => {
            const NAMESPACE: i64 = 0x4f52_4348; // "ORCH"
            let bytes = account.0.as_bytes();
            let mut high = [0u8; 8];
            high.copy_from_slice(&bytes[..8]);
            sqlx::query_scalar(sql_of(lock, false)).bind(i64::from_be_bytes(high) ^ NAMESPACE)
        }
        LeaseKey::Job(job) => {
            const JOB_CLASS: i32 = 0x4a4f_4200; // "JOB\0"
            // Job ids are sequential; wrapping past 2^32 jobs only risks a false "busy".
            sqlx::query_scalar(sql_of(lock, true))
                .bind(JOB_CLASS)
                .bind(job.0 as i32)
        }
    }
}

fn sql_of(lock: bool, two_keys: bool) -> &'static str {
    match (lock, two_keys) {
        (true, false) => "SELECT pg_try_advisory_lock($1)",
        (true, true) => "SELECT pg_try_advisory_lock($1, $2)",
        (false, false) => "SELECT pg_advisory_unlock($1)",
        (false, true) => "SELECT pg_advisory_unlock($1, $2)",
    }
}

#[async_trait]
impl LeaseStore for PostgresStore {
    async fn acquire_lease(
        &self,
        key: LeaseKey,
        _holder: &str,
        _now: i64,
        _expires_at: i64,
    ) -> Result<bool> {
        // The lock belongs to the session: this process holds it while the connection is
        // kept in `lease_locks`; renewing checks that the session is still alive, expiry is
        // the session's end.
        let mut locks = self.lease_locks.lock().await;
        if let Some(conn) = locks.get_mut(&key) {
            if sqlx::query("SELECT 1").execute(&mut **conn).await.is_ok() {
                return Ok(true);
            }
            if let Some(conn) = locks.remove(&key) {
                conn.detach();
            }
            return Ok(false);
        }
        let mut conn = self.pool.acquire().await.map_err(StoreError::Database)?;
        let taken = lock_query(key, true)
            .fetch_one(&mut *conn)
            .await
            .map_err(StoreError::Database)?;
        if taken {
            locks.insert(key, conn);
        }
        Ok(taken)
    }

    async fn release_lease(&self, key: LeaseKey, _holder: &str) -> Result<()> {
        let Some(mut conn) = self.lease_locks.lock().await.remove(&key) else {
            return Ok(());
        };
        if lock_query(key, false).fetch_one(&mut *conn).await.is_err() {
            // Closing the session frees the lock for sure.
            conn.detach();
        }
        Ok(())
    }
}
