//! Storage: one [`Store`] trait, one implementation per database.
//!
//! SQLite (embedded, the default) serves one instance up to millions of devices;
//! PostgreSQL serves several instances behind a load balancer. The backend is chosen
//! by the URL scheme, each has its own migration folder (`migrations/sqlite`,
//! `migrations/postgres`) embedded at build time and applied at start. Queries are
//! checked at run time (`query_as` with `FromRow` rows), so building needs no database.
//!
//! Errors are mapped to [`StoreError`] in one place per backend: a missing row becomes
//! `NotFound`, a unique-constraint violation becomes `Conflict` naming the constraint.

pub mod accounts;
pub mod directory;
pub mod drafts;
pub mod identity;
pub mod jobs;
pub mod leases;
pub mod mirror;
mod postgres;
mod postgres_accounts;
mod postgres_identity;
mod postgres_jobs;
mod postgres_mirror;
mod postgres_search;
pub mod search;
mod sqlite;
mod sqlite_accounts;
mod sqlite_identity;
mod sqlite_jobs;
mod sqlite_mirror;
mod sqlite_search;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::DatabaseConfig;
use crate::orgs::{NewOrganization, OrgId, Organization};

pub use accounts::{AccountStore, MAX_ACCOUNTS_CONSTRAINT};
pub use directory::DirectoryStore;
pub use drafts::DraftStore;
pub use identity::IdentityStore;
pub use jobs::JobStore;
pub use leases::{LeaseKey, LeaseStore};
pub use mirror::MirrorStore;
pub use postgres::PostgresStore;
pub use search::DeviceSearch;
pub use sqlite::SqliteStore;

/// How long a pooled PostgreSQL connection may sit unused before it is pinged on its next
/// use (and replaced if the server dropped it meanwhile); one in steady use is not.
pub const PING_IF_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// The check after a write to a sync run that must still be running (`… WHERE id = ? AND
/// state = 'running'`): no row touched means it finished, failed or never was.
pub(crate) fn still_running(rows_affected: u64) -> Result<()> {
    if rows_affected == 0 {
        return Err(StoreError::NotFound {
            entity: "running sync run",
        });
    }
    Ok(())
}

/// Result alias of storage operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The two supported databases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

impl DatabaseKind {
    /// Picks the backend from a database URL's scheme.
    pub fn from_url(url: &str) -> Result<Self> {
        let scheme = url.split_once(':').map_or("", |(s, _)| s);
        match scheme {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            other => Err(StoreError::UnsupportedUrl {
                scheme: other.to_owned(),
            }),
        }
    }

    /// Human name, shown on the status line and in logs.
    pub fn label(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }
}

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL scheme `{scheme}` is not supported: use sqlite://… or postgres://…")]
    UnsupportedUrl { scheme: String },
    #[error("{entity} not found")]
    NotFound { entity: &'static str },
    #[error("conflicts with an existing row ({constraint})")]
    Conflict { constraint: String },
    #[error("cannot prepare the database directory {path}: {source}")]
    Directory {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("database migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("a stored value is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Maps a driver error for an operation on `entity`: a missing row and a unique
    /// violation get their own variants, keyed on the constraint name, never on message text.
    pub(crate) fn from_sqlx(entity: &'static str, err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::RowNotFound => Self::NotFound { entity },
            sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation => {
                Self::Conflict {
                    constraint: db.constraint().unwrap_or(entity).to_owned(),
                }
            }
            other => Self::Database(other),
        }
    }
}

/// A stored count (never negative) as a number of things.
pub(crate) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Everything Orchard keeps in its database. Implementations must behave identically;
/// the storage tests in `backend/tests/store.rs` run against both.
#[async_trait]
pub trait Store:
    AccountStore
    + IdentityStore
    + MirrorStore
    + DeviceSearch
    + DirectoryStore
    + DraftStore
    + JobStore
    + LeaseStore
    + Send
    + Sync
    + 'static
{
    /// Which database this is.
    fn kind(&self) -> DatabaseKind;

    /// Succeeds when the database answers a trivial query (used by `/readyz`).
    async fn ping(&self) -> Result<()>;

    /// Closes every pooled connection; later calls fail with `Database`.
    async fn close(&self);

    /// Creates an organization. `Conflict` when another one has the same slug.
    async fn create_organization(&self, new: &NewOrganization) -> Result<Organization>;

    /// One organization by id. `NotFound` when there is none.
    async fn organization(&self, id: OrgId) -> Result<Organization>;

    /// All organizations, by name.
    async fn list_organizations(&self) -> Result<Vec<Organization>>;
}

/// Connects to the configured database, creating it (SQLite) and applying migrations.
pub async fn connect(config: &DatabaseConfig) -> Result<Arc<dyn Store>> {
    Ok(match DatabaseKind::from_url(&config.url)? {
        DatabaseKind::Sqlite => Arc::new(SqliteStore::connect(config).await?),
        DatabaseKind::Postgres => Arc::new(PostgresStore::connect(config).await?),
    })
}

/// The URL of another database on the same PostgreSQL server, credentials and options kept:
/// `postgres://u@h:5432/test?x=y` → `postgres://u@h:5432/<database>?x=y`. (Tests and
/// benchmarks create a database of their own next to the one they are given.)
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}
