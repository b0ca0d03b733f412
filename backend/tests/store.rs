//! Storage tests, written once and run against both backends (harness in `common/`).

#[macro_use]
mod common;

use std::sync::Arc;

use backend::orgs::{NewOrganization, OrgId};
use backend::store::{DatabaseKind, Store, StoreError};
use common::{Ctx, replace_database};

both_backends!(
    a_fresh_database_answers_pings,
    created_organizations_read_back_equal,
    organizations_list_by_name,
    a_duplicate_slug_is_a_conflict_naming_the_constraint,
    a_missing_organization_is_not_found,
    a_closed_store_reports_database_errors,
    organizations_survive_a_reconnect,
);

async fn a_fresh_database_answers_pings(ctx: &Ctx) {
    let store = ctx.store.clone();
    store.ping().await.expect("ping");
    assert!(matches!(
        store.kind(),
        DatabaseKind::Sqlite | DatabaseKind::Postgres
    ));
}

async fn created_organizations_read_back_equal(ctx: &Ctx) {
    let store: Arc<dyn Store> = ctx.store.clone();
    let created = store
        .create_organization(&NewOrganization::parse("Acme Corp").unwrap())
        .await
        .unwrap();
    assert_eq!(created.slug, "acme-corp");
    let read = store.organization(created.id).await.unwrap();
    assert_eq!(read, created);
}

async fn organizations_list_by_name(ctx: &Ctx) {
    let store: Arc<dyn Store> = ctx.store.clone();
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

async fn a_duplicate_slug_is_a_conflict_naming_the_constraint(ctx: &Ctx) {
    let store: Arc<dyn Store> = ctx.store.clone();
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

async fn a_missing_organization_is_not_found(ctx: &Ctx) {
    let store: Arc<dyn Store> = ctx.store.clone();
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

async fn a_closed_store_reports_database_errors(ctx: &Ctx) {
    let store: Arc<dyn Store> = ctx.store.clone();
    store.close().await;
    let err = store.ping().await.unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
}

async fn organizations_survive_a_reconnect(ctx: &Ctx) {
    let created = ctx
        .store
        .create_organization(&NewOrganization::parse("Acme Corp").unwrap())
        .await
        .unwrap();
    let reopened = ctx.reconnect().await;
    assert_eq!(reopened.organization(created.id).await.unwrap(), created);
    reopened.close().await;
}

/// PostgreSQL only: an embedded SQLite has no server end to lose.
mod dropped {
    mod postgres {
        use backend::store::PING_IF_IDLE;

        use crate::common::{TestDb, run};

        /// The pool does not ping a connection in steady use, so one the server ended
        /// while it sat idle (a restart, an administrator) must still be caught before a
        /// query runs on it.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_connection_the_server_ended_while_idle_is_replaced_unseen() {
            run(TestDb::postgres().await, async |ctx| {
                ctx.store.list_organizations().await.expect("first read");
                ctx.execute_raw(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = current_database() AND pid <> pg_backend_pid()",
                )
                .await;
                tokio::time::sleep(PING_IF_IDLE + std::time::Duration::from_millis(200)).await;
                ctx.store
                    .list_organizations()
                    .await
                    .expect("read on a fresh connection");
            })
            .await;
        }
    }
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
