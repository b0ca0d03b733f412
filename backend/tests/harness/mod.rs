//! The storage test harness shared by `store.rs` and `identity.rs`.
//!
//! Every test gets a fresh database: a new SQLite file, or a new PostgreSQL database
//! created on the server named by `ORCHARD_TEST_POSTGRES_URL` (dropped afterwards).
//! The `postgres::` tests fail when that variable is unset; `make test` sets it when
//! the server answers and otherwise skips them by name, saying so.

use std::future::Future;
use std::sync::Arc;

use backend::config::DatabaseConfig;
use backend::store::{self, Store};

/// What a test gets: the store, and its URL to open a second connection (a "restart").
#[derive(Clone)]
pub struct Ctx {
    pub store: Arc<dyn Store>,
    pub url: String,
}

impl Ctx {
    /// Opens a new, independent store on the same database, as a restarted server would.
    pub async fn reconnect(&self) -> Arc<dyn Store> {
        store::connect(&database_config(self.url.clone()))
            .await
            .expect("reconnect")
    }
}

/// A throw-away database for one test.
pub struct TestDb {
    store: Arc<dyn Store>,
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(
        #[expect(dead_code, reason = "held so the folder lives as long as the test")]
        tempfile::TempDir,
    ),
    Postgres {
        admin_url: String,
        database: String,
    },
}

impl TestDb {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let url = format!("sqlite://{}/nested/orchard.db", dir.path().display());
        let store = store::connect(&database_config(url.clone()))
            .await
            .expect("sqlite store");
        Self {
            store,
            url,
            cleanup: Cleanup::Sqlite(dir),
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
        Self {
            store,
            url,
            cleanup: Cleanup::Postgres {
                admin_url,
                database,
            },
        }
    }

    async fn finish(self) {
        self.store.close().await;
        if let Cleanup::Postgres {
            admin_url,
            database,
        } = self.cleanup
        {
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

/// Runs one test on a fresh database, then drops it.
pub async fn run<F, Fut>(db: TestDb, test: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    test(Ctx {
        store: db.store.clone(),
        url: db.url.clone(),
    })
    .await;
    db.finish().await;
}

/// Declares each test (an `async fn(Ctx)`) once and runs it on both backends.
macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    crate::harness::run(crate::harness::TestDb::sqlite().await, super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    crate::harness::run(crate::harness::TestDb::postgres().await, super::$name).await;
                }
            )*
        }
    };
}
