//! The bulk-assignment wizard's storage and preview, on both databases: drafts (owner-only,
//! expiry, input and action updates), the mirror reads the preview makes, and a preview and
//! plan computed from a seeded mirror larger than one lookup batch.

#[macro_use]
mod common;

use backend::accounts::ApiAccountId;
use backend::identity::UserId;
use backend::jobs::JobAction;
use backend::jobs::drafts::{self, DRAFT_TTL_SECS, Draft, DraftId, DraftInput, DraftSource};
use backend::jobs::preview::{self, Group, LOOKUP_CHUNK};
use backend::orgs::{NewOrganization, OrgId};
use backend::store::identity::NewUser;
use backend::store::{DatabaseKind, Store, StoreError};
use common::Ctx;
use time::OffsetDateTime;

both_backends!(
    a_draft_is_read_only_by_its_creator_until_it_expires,
    a_draft_keeps_its_input_and_action_across_updates,
    expired_drafts_are_deleted,
    the_preview_reads_device_facts_in_batches,
    a_draft_becomes_a_plan_from_the_mirror,
);

const NOW: i64 = 1_800_000_000;

async fn new_org(store: &dyn Store, name: &str) -> OrgId {
    store
        .create_organization(&NewOrganization::parse(name).unwrap())
        .await
        .unwrap()
        .id
}

async fn new_user(store: &dyn Store, username: &str) -> UserId {
    let id = UserId::random();
    store
        .create_user(&NewUser {
            id,
            username: username.into(),
            display_name: username.into(),
            email: None,
            password_hash: None,
            instance_admin: false,
            oidc: None,
            created_at: OffsetDateTime::from_unix_timestamp(NOW).unwrap(),
        })
        .await
        .unwrap();
    id
}

fn paste(text: &str) -> DraftInput {
    DraftInput {
        source: DraftSource::Paste,
        text: text.into(),
        csv_column: None,
        label: "Pasted serial numbers".into(),
    }
}

fn is_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::NotFound { .. }))
}

async fn a_draft_is_read_only_by_its_creator_until_it_expires(ctx: &Ctx) {
    let store = ctx.store.as_ref();
    let org = new_org(store, "Acme").await;
    let ann = new_user(store, "ann").await;
    let bob = new_user(store, "bob").await;
    let draft = Draft::new(org, ann, paste("C02XL0GSJGH5"), NOW);
    store.create_draft(&draft).await.unwrap();

    assert_eq!(store.draft(draft.id, ann, NOW + 1).await.unwrap(), draft);
    assert!(is_not_found(store.draft(draft.id, bob, NOW + 1).await));
    assert!(is_not_found(store.draft(DraftId::random(), ann, NOW).await));
    assert!(is_not_found(
        store
            .set_draft_action(
                draft.id,
                bob,
                &JobAction::Assign {
                    service_id: "S1".into()
                },
                NOW
            )
            .await
    ));
    assert!(is_not_found(
        store
            .update_draft_input(draft.id, bob, &paste("X"), NOW)
            .await
    ));
    // Another user's delete changes nothing.
    store.delete_draft(draft.id, bob).await.unwrap();
    assert!(store.draft(draft.id, ann, NOW).await.is_ok());
    // Expired: gone for its creator too, and it cannot be renewed.
    let later = draft.expires_at;
    assert!(is_not_found(store.draft(draft.id, ann, later).await));
    assert!(is_not_found(
        store
            .update_draft_input(draft.id, ann, &paste("X"), later)
            .await
    ));
    store.delete_draft(draft.id, ann).await.unwrap();
    assert!(is_not_found(store.draft(draft.id, ann, NOW).await));
}

async fn a_draft_keeps_its_input_and_action_across_updates(ctx: &Ctx) {
    let store = ctx.store.as_ref();
    let org = new_org(store, "Acme").await;
    let ann = new_user(store, "ann").await;
    let draft = Draft::new(org, ann, paste("C02XL0GSJGH5"), NOW);
    store.create_draft(&draft).await.unwrap();

    let deadline = OffsetDateTime::from_unix_timestamp(NOW + 86_400).unwrap();
    let action = JobAction::AssignWithMigrationDeadline {
        service_id: "1F97349736CF4614A94F624E705841AD".into(),
        deadline,
    };
    let with_action = store
        .set_draft_action(draft.id, ann, &action, NOW + 10)
        .await
        .unwrap();
    assert_eq!(with_action.action.as_ref(), Some(&action));
    assert_eq!(with_action.updated_at, NOW + 10);
    assert_eq!(with_action.expires_at, NOW + 10 + DRAFT_TTL_SECS);
    assert_eq!(with_action.created_at, NOW);

    let csv = DraftInput {
        source: DraftSource::Csv,
        text: "name,serial\n\"Smith, Ann\",c02xl0gsjgh5\nÉtienne,DMPXK2LLKXKN\n".into(),
        csv_column: Some(2),
        label: "devices.csv".into(),
    };
    let updated = store
        .update_draft_input(draft.id, ann, &csv, NOW + 20)
        .await
        .unwrap();
    assert_eq!(updated.input, csv);
    assert_eq!(updated.action.as_ref(), Some(&action), "the action stays");
    assert_eq!(store.draft(draft.id, ann, NOW + 21).await.unwrap(), updated);

    // After a restart (a second connection), the same draft.
    let again = ctx.reconnect().await;
    assert_eq!(again.draft(draft.id, ann, NOW + 21).await.unwrap(), updated);
    again.close().await;
}

async fn expired_drafts_are_deleted(ctx: &Ctx) {
    let store = ctx.store.as_ref();
    let org = new_org(store, "Acme").await;
    let ann = new_user(store, "ann").await;
    let old = Draft::new(org, ann, paste("A"), NOW - DRAFT_TTL_SECS);
    let fresh = Draft::new(org, ann, paste("B"), NOW);
    store.create_draft(&old).await.unwrap();
    store.create_draft(&fresh).await.unwrap();
    assert_eq!(store.delete_expired_drafts(NOW).await.unwrap(), 1);
    assert_eq!(store.delete_expired_drafts(NOW).await.unwrap(), 0);
    assert!(store.draft(fresh.id, ann, NOW).await.is_ok());
    assert!(is_not_found(store.draft(old.id, ann, NOW - 10).await));
}

/// A mirrored device for [`seed`]: serial, service, absent, migration capable, status.
struct Seed<'a> {
    serial: String,
    service: Option<&'a str>,
    absent: bool,
    migration_capable: Option<bool>,
    migration_status: Option<&'a str>,
}

fn seed_device(serial: impl Into<String>, service: Option<&str>) -> Seed<'_> {
    Seed {
        serial: serial.into(),
        service,
        absent: false,
        migration_capable: Some(true),
        migration_status: None,
    }
}

/// Writes mirror rows and services with plain SQL (the sync is not under test here).
async fn seed(ctx: &Ctx, org: OrgId, account: ApiAccountId, devices: &[Seed<'_>]) {
    let (org_id, account_id) = match ctx.kind() {
        DatabaseKind::Sqlite => (format!("'{}'", org.0), format!("'{}'", account.0)),
        DatabaseKind::Postgres => (
            format!("'{}'::uuid", org.0),
            format!("'{}'::uuid", account.0),
        ),
    };
    let text = |v: Option<&str>| v.map_or("NULL".to_owned(), |v| format!("'{v}'"));
    let flag = |v: Option<bool>| match (ctx.kind(), v) {
        (_, None) => "NULL",
        (DatabaseKind::Sqlite, Some(true)) => "1",
        (DatabaseKind::Sqlite, Some(false)) => "0",
        (DatabaseKind::Postgres, Some(true)) => "TRUE",
        (DatabaseKind::Postgres, Some(false)) => "FALSE",
    };
    for chunk in devices.chunks(500) {
        let values: Vec<String> = chunk
            .iter()
            .map(|d| {
                format!(
                    "({org_id}, '{}', {account_id}, {}, {}, {}, {}, {}, 0, 1, 1)",
                    d.serial,
                    text(Some(if d.service.is_some() {
                        "ASSIGNED"
                    } else {
                        "UNASSIGNED"
                    })),
                    text(d.service),
                    flag(d.migration_capable),
                    text(d.migration_status),
                    if d.absent { "5" } else { "NULL" },
                )
            })
            .collect();
        ctx.execute_raw(&format!(
            "INSERT INTO mirror_devices (org_id, serial, account_id, status, service_id, \
             migration_capable, migration_status, absent_since, content_hash, first_seen_at, \
             changed_at) VALUES {}",
            values.join(", ")
        ))
        .await;
    }
    for (id, name) in [("S1", "Jamf Pro"), ("S2", "Intune")] {
        ctx.execute_raw(&format!(
            "INSERT INTO mirror_services (org_id, id, account_id, name, server_type, \
             content_hash) VALUES ({org_id}, '{id}', {account_id}, '{name}', 'MDM', 0)"
        ))
        .await;
    }
}

fn account(n: u128) -> ApiAccountId {
    ApiAccountId(uuid::Uuid::from_u128(n))
}

async fn the_preview_reads_device_facts_in_batches(ctx: &Ctx) {
    let store = ctx.store.as_ref();
    let org = new_org(store, "Acme").await;
    let other = new_org(store, "Other").await;
    let mut incapable = seed_device("INCAPABLE1", Some("S1"));
    incapable.migration_capable = Some(false);
    incapable.migration_status = Some("FAILED");
    let mut gone = seed_device("RELEASED01", None);
    gone.absent = true;
    seed(
        ctx,
        org,
        account(1),
        &[seed_device("ONSERVICE1", Some("S1")), incapable, gone],
    )
    .await;
    seed(ctx, other, account(2), &[seed_device("OTHERORG01", None)]).await;

    let wanted: Vec<String> = [
        "ONSERVICE1",
        "INCAPABLE1",
        "RELEASED01",
        "OTHERORG01",
        "NOPE000001",
    ]
    .map(String::from)
    .to_vec();
    let mut facts = store.devices_by_serials(org, &wanted).await.unwrap();
    facts.sort_by(|a, b| a.serial.cmp(&b.serial));
    let summary: Vec<_> = facts
        .iter()
        .map(|f| {
            (
                f.serial.as_str(),
                f.account_id,
                f.service_id.as_deref(),
                f.status.as_deref(),
                f.absent_since.is_some(),
                f.migration_capable,
                f.migration_status.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "INCAPABLE1",
                account(1),
                Some("S1"),
                Some("ASSIGNED"),
                false,
                Some(false),
                Some("FAILED")
            ),
            (
                "ONSERVICE1",
                account(1),
                Some("S1"),
                Some("ASSIGNED"),
                false,
                Some(true),
                None
            ),
            (
                "RELEASED01",
                account(1),
                None,
                Some("UNASSIGNED"),
                true,
                Some(true),
                None
            ),
        ]
    );
    assert!(store.devices_by_serials(org, &[]).await.unwrap().is_empty());
    // Case matters: the mirror stores Apple's spelling, the parser upper-cases.
    assert!(
        store
            .devices_by_serials(org, &["onservice1".into()])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.service_account(org, "S2").await.unwrap(),
        Some(account(1))
    );
    assert_eq!(store.service_account(org, "S9").await.unwrap(), None);
    assert_eq!(
        store.service_account(other, "S1").await.unwrap(),
        Some(account(2))
    );
}

async fn a_draft_becomes_a_plan_from_the_mirror(ctx: &Ctx) {
    let store = ctx.store.as_ref();
    let org = new_org(store, "Acme").await;
    let ann = new_user(store, "ann").await;
    // More devices than one lookup batch: every batch must be read.
    let n = LOOKUP_CHUNK * 2 + 17;
    let serials: Vec<String> = (0..n).map(|i| format!("SER{i:07}")).collect();
    let mut devices: Vec<Seed> = serials
        .iter()
        .enumerate()
        .map(|(i, s)| {
            seed_device(
                s.clone(),
                match i % 3 {
                    0 => None,
                    1 => Some("S1"),
                    _ => Some("S2"),
                },
            )
        })
        .collect();
    devices[4].absent = true;
    seed(ctx, org, account(1), &devices).await;

    let mut text = serials.join("\n");
    text.push_str("\nnot-a-serial\nser0000001\nZZZZZZZZ99\n");
    let draft = Draft::new(org, ann, paste(&text), NOW);
    store.create_draft(&draft).await.unwrap();

    // No action yet: a preview is not possible, and neither is a plan.
    let (read, none) = drafts::preview(store, &draft, NOW).await.unwrap();
    assert!(none.is_none());
    assert_eq!(read.parsed.entries.len(), n + 3);
    assert!(matches!(
        drafts::plan(store, &draft, NOW).await,
        Err(drafts::PlanError::NoAction)
    ));

    let action = JobAction::Assign {
        service_id: "S2".into(),
    };
    let draft = store
        .set_draft_action(draft.id, ann, &action, NOW)
        .await
        .unwrap();
    let plan = drafts::plan(store, &draft, NOW).await.unwrap();
    let count = |g: Group| {
        plan.preview
            .counts()
            .into_iter()
            .find(|(group, _)| *group == g)
            .map_or(0, |(_, c)| c)
    };
    // i % 3 == 0: no service; 1: on S1 (moves); 2: already on S2. Device 4 (i % 3 == 1) is
    // released.
    let none = (0..n).filter(|i| i % 3 == 0).count();
    let on_s1 = (0..n).filter(|i| i % 3 == 1).count() - 1;
    let on_s2 = (0..n).filter(|i| i % 3 == 2).count();
    assert_eq!(count(Group::Assign), none);
    assert_eq!(count(Group::Move), on_s1);
    assert_eq!(count(Group::AlreadyThere), on_s2);
    assert_eq!(count(Group::Released), 1);
    assert_eq!(count(Group::Malformed), 1);
    assert_eq!(count(Group::Duplicate), 1);
    assert_eq!(count(Group::NotInOrg), 1);
    assert_eq!(plan.to_send.len(), none + on_s1);
    assert_eq!(plan.to_send.len() + plan.skipped.len(), n + 3);
    assert_eq!(plan.to_send[0], "SER0000000");
    assert_eq!(plan.account, Some(account(1)));
    assert_eq!(plan.action, action);
    assert_eq!(plan.org, org);
    assert_eq!(
        plan.preview.moves(),
        vec![(Some("Jamf Pro".to_owned()), on_s1)]
    );
    assert!(
        plan.skipped
            .iter()
            .any(|(s, why)| s == "ZZZZZZZZ99" && why.starts_with("Not in the organization"))
    );

    // The action is checked again when planning: a vanished service stops the plan.
    let gone = store
        .set_draft_action(
            draft.id,
            ann,
            &JobAction::Assign {
                service_id: "S9".into(),
            },
            NOW,
        )
        .await
        .unwrap();
    assert!(matches!(
        drafts::plan(store, &gone, NOW).await,
        Err(drafts::PlanError::Action(_))
    ));
    let p = preview::build(
        store,
        org,
        &JobAction::Unassign {
            service_id: "S1".into(),
        },
        &read.parsed,
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(p.to_send().len(), on_s1);
}
