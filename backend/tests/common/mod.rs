//! Harness for storage tests written once and run on both backends.
//!
//! Every test gets a fresh database: a new SQLite file, or a new PostgreSQL database created
//! on the server named by `ORCHARD_TEST_POSTGRES_URL` (dropped afterwards). The `postgres::`
//! tests fail when that variable is unset; `make test` sets it when the server answers.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of this shared harness; `expect` would fail in the ones that use all of it"
)]

use std::path::PathBuf;
use std::sync::Arc;

use backend::config::DatabaseConfig;
use backend::store::{self, DatabaseKind, Store};

/// What a test gets: the store, plus raw access for tampering and byte-level checks.
pub struct Ctx {
    pub store: Arc<dyn Store>,
    /// The database URL (to open a second, raw connection).
    pub url: String,
    /// The SQLite file, when the backend is SQLite.
    pub sqlite_file: Option<PathBuf>,
    /// A scratch folder for key files and the like.
    pub dir: PathBuf,
}

impl Ctx {
    /// A second store on the same database, as after a server restart.
    pub async fn reconnect(&self) -> Arc<dyn Store> {
        store::connect(&database_config(self.url.clone()))
            .await
            .expect("reconnect")
    }

    pub fn kind(&self) -> DatabaseKind {
        self.store.kind()
    }

    /// Runs one raw SQL statement on a separate connection (to tamper with rows).
    pub async fn execute_raw(&self, sql: &str) {
        match self.kind() {
            DatabaseKind::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&self.url)
                    .await
                    .expect("raw sqlite");
                sqlx::query(sql)
                    .execute(&pool)
                    .await
                    .expect("raw statement");
                pool.close().await;
            }
            DatabaseKind::Postgres => {
                let pool = sqlx::PgPool::connect(&self.url)
                    .await
                    .expect("raw postgres");
                sqlx::query(sql)
                    .execute(&pool)
                    .await
                    .expect("raw statement");
                pool.close().await;
            }
        }
    }
}

impl Ctx {
    /// Every row of `table` as PostgreSQL's text form (bytea as hex), concatenated.
    pub async fn postgres_table_text(&self, table: &str) -> String {
        let pool = sqlx::PgPool::connect(&self.url)
            .await
            .expect("raw postgres");
        let text: Option<String> = sqlx::query_scalar(&format!(
            "SELECT string_agg(CAST(t AS TEXT), '') FROM {table} t"
        ))
        .fetch_one(&pool)
        .await
        .expect("dump table");
        pool.close().await;
        text.unwrap_or_default()
    }
}

/// A throw-away database for one test.
pub struct TestDb {
    ctx: Ctx,
    _dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

impl TestDb {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let file = dir.path().join("db/orchard.db");
        let url = format!("sqlite://{}", file.display());
        let store = store::connect(&database_config(url.clone()))
            .await
            .expect("sqlite store");
        Self {
            ctx: Ctx {
                store,
                url,
                sqlite_file: Some(file),
                dir: dir.path().to_owned(),
            },
            _dir: dir,
            postgres: None,
        }
    }

    pub async fn postgres() -> Self {
        let admin_url = std::env::var("ORCHARD_TEST_POSTGRES_URL").expect(
            "ORCHARD_TEST_POSTGRES_URL must point at a PostgreSQL server for the postgres:: \
             tests (make test sets it); skip them with `--skip postgres::`",
        );
        let database = format!("orchard_test_{}", uuid::Uuid::new_v4().simple());
        let admin = sqlx::PgPool::connect(&admin_url)
            .await
            .expect("connect to ORCHARD_TEST_POSTGRES_URL");
        sqlx::query(&format!("CREATE DATABASE \"{database}\""))
            .execute(&admin)
            .await
            .expect("create a test database");
        admin.close().await;
        let url = replace_database(&admin_url, &database);
        let store = store::connect(&database_config(url.clone()))
            .await
            .expect("postgres store");
        let dir = tempfile::tempdir().expect("temporary folder");
        Self {
            ctx: Ctx {
                store,
                url,
                sqlite_file: None,
                dir: dir.path().to_owned(),
            },
            _dir: dir,
            postgres: Some((admin_url, database)),
        }
    }

    async fn finish(self) {
        self.ctx.store.close().await;
        if let Some((admin_url, database)) = self.postgres {
            let admin = sqlx::PgPool::connect(&admin_url).await.expect("reconnect");
            sqlx::query(&format!(
                "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
            ))
            .execute(&admin)
            .await
            .expect("drop the test database");
            admin.close().await;
        }
    }
}

fn database_config(url: String) -> DatabaseConfig {
    DatabaseConfig {
        url,
        max_connections: 4,
    }
}

/// `postgres://u@h:5432/test?x=y` → `postgres://u@h:5432/<database>?x=y`.
pub fn replace_database(url: &str, database: &str) -> String {
    backend::store::with_database(url, database)
}

pub async fn run<F>(db: TestDb, test: F)
where
    F: AsyncFnOnce(&Ctx),
{
    test(&db.ctx).await;
    db.finish().await;
}

/// Declares each test once and runs it on both backends.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::common::run($crate::common::TestDb::sqlite().await, super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::common::run($crate::common::TestDb::postgres().await, super::$name).await;
                }
            )*
        }
    };
}

/// A new organization connected to `sim` through one API account, added as an administrator
/// would add it (the key sealed by a fixed test master key). Returns the organization, the
/// account and the vault that opens its key.
pub async fn connect_simulator(
    ctx: &Ctx,
    sim: &simulator::RunningSimulator,
    org_name: &str,
) -> (
    backend::orgs::OrgId,
    backend::accounts::ApiAccountId,
    Arc<backend::vault::Vault>,
) {
    use backend::accounts::{AccountKind, AccountUrls, NewApiAccount};
    let store = ctx.store.as_ref();
    let vault = Arc::new(backend::vault::Vault::new(
        &backend::vault::MasterKey::from_hex(&"0123456789abcdef".repeat(4)).unwrap(),
    ));
    let org = store
        .create_organization(&backend::orgs::NewOrganization::parse(org_name).unwrap())
        .await
        .unwrap()
        .id;
    let creds = sim.credentials();
    let new = NewApiAccount::parse(
        "Simulated",
        &creds.client_id,
        &creds.key_id,
        &creds.private_key_pem,
        AccountKind::Business,
        AccountUrls {
            api_base_url: sim.base_url().to_owned(),
            token_url: sim.token_url(),
            audience: sim.audience().to_owned(),
        },
    )
    .unwrap();
    let actor = backend::audit::Actor::system();
    let account = backend::accounts::add_account(store, &vault, &actor, org, new)
        .await
        .unwrap()
        .id;
    (org, account, vault)
}
