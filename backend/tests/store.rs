//! Storage tests, written once and run against both backends.
//!
//! Every test gets a fresh database: a new SQLite file, or a new PostgreSQL database
//! created on the server named by `ORCHARD_TEST_POSTGRES_URL` (dropped afterwards).
//! The `postgres::` tests fail when that variable is unset; `make test` sets it when
//! the server answers and otherwise skips them by name, saying so.

use std::future::Future;
use std::sync::Arc;

use backend::config::DatabaseConfig;
use backend::orgs::{NewOrganization, OrgId};
use backend::store::{self, DatabaseKind, Store, StoreError};

/// A throw-away database for one test.
struct TestDb {
    store: Arc<dyn Store>,
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
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let url = format!("sqlite://{}/nested/orchard.db", dir.path().display());
        let store = store::connect(&database_config(url))
            .await
            .expect("sqlite store");
        Self {
            store,
            cleanup: Cleanup::Sqlite(dir),
        }
    }

    async fn postgres() -> Self {
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
        let store = store::connect(&database_config(url))
            .await
            .expect("postgres store");
        Self {
            store,
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
fn replace_database(url: &str, database: &str) -> String {
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

async fn run<F, Fut>(db: TestDb, test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    test(db.store.clone()).await;
    db.finish().await;
}

/// Declares each test once and runs it on both backends.
macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::run(super::TestDb::sqlite().await, super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::run(super::TestDb::postgres().await, super::$name).await;
                }
            )*
        }
    };
}

store_tests!(
    a_fresh_database_answers_pings,
    created_organizations_read_back_equal,
    organizations_list_by_name,
    a_duplicate_slug_is_a_conflict_naming_the_constraint,
    a_missing_organization_is_not_found,
    a_closed_store_reports_database_errors,
);

async fn a_fresh_database_answers_pings(store: Arc<dyn Store>) {
    store.ping().await.expect("ping");
    assert!(matches!(
        store.kind(),
        DatabaseKind::Sqlite | DatabaseKind::Postgres
    ));
}

async fn created_organizations_read_back_equal(store: Arc<dyn Store>) {
    let created = store
        .create_organization(&NewOrganization::parse("Acme Corp").unwrap())
        .await
        .unwrap();
    assert_eq!(created.slug, "acme-corp");
    let read = store.organization(created.id).await.unwrap();
    assert_eq!(read, created);
}

async fn organizations_list_by_name(store: Arc<dyn Store>) {
    for name in ["Zeta School", "Alpha Bank", "Mid Town MSP"] {
        store
            .create_organization(&NewOrganization::parse(name).unwrap())
            .await
            .unwrap();
    }
    let names: Vec<String> = store
        .list_organizations()
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(names, ["Alpha Bank", "Mid Town MSP", "Zeta School"]);
}

async fn a_duplicate_slug_is_a_conflict_naming_the_constraint(store: Arc<dyn Store>) {
    store
        .create_organization(&NewOrganization::parse("Acme Corp").unwrap())
        .await
        .unwrap();
    let err = store
        .create_organization(&NewOrganization::parse("ACME corp!").unwrap())
        .await
        .unwrap_err();
    match err {
        StoreError::Conflict { constraint } => {
            assert!(
                constraint == "organizations_slug_key" || constraint == "organization",
                "unexpected constraint {constraint}"
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(store.list_organizations().await.unwrap().len(), 1);
}

async fn a_missing_organization_is_not_found(store: Arc<dyn Store>) {
    let err = store.organization(OrgId::random()).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                entity: "organization"
            }
        ),
        "{err:?}"
    );
}

async fn a_closed_store_reports_database_errors(store: Arc<dyn Store>) {
    store.close().await;
    let err = store.ping().await.unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
}

#[test]
fn test_database_urls_keep_credentials_and_options() {
    assert_eq!(
        replace_database("postgres://postgres@127.0.0.1:5432/test", "t1"),
        "postgres://postgres@127.0.0.1:5432/t1"
    );
    assert_eq!(
        replace_database("postgres://u:p@h/test?sslmode=disable", "t2"),
        "postgres://u:p@h/t2?sslmode=disable"
    );
}
