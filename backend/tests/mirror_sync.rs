//! The sync engine against the simulator over real HTTP, on SQLite and PostgreSQL: the
//! mirror must end equal to the simulator's truth after a full sync, after changes, after a
//! sync killed mid-run and resumed, and under Apple-like limits without a single 429.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use apple::resources::audit_events;
use apple::resources::blueprints::{self, BlueprintRelationship};
use backend::accounts::{ApiAccountId, Clients};
use backend::mirror::directory::{AuditEventRecord, ObjectKind};
use backend::mirror::index::{DeviceIndex, SearchPath};
use backend::mirror::search::DeviceQuery;
use backend::mirror::sync::{RunState, SyncCause, SyncEngine, SyncError, SyncPhase};
use backend::orgs::OrgId;
use backend::store::{DatabaseKind, Store};
use backend::vault::{MasterKey, Vault};
use common::Ctx;
use serde_json::{Value, json};
use simulator::{FaultConfig, RunningSimulator, Simulator};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

both_backends!(
    a_full_sync_then_changes_and_a_second_sync_match_the_truth,
    a_sync_killed_mid_run_resumes_from_the_saved_page,
    apple_like_limits_are_never_exceeded,
    one_sync_per_account_at_a_time,
    the_directory_and_audit_events_follow_apple,
    a_page_is_stored_once_per_serial_and_compared_unless_the_mirror_was_empty,
    another_instances_syncs_reach_this_instances_index,
);

/// A simulator organization connected to Orchard as one API account.
struct Setup {
    sim: RunningSimulator,
    org: OrgId,
    account: ApiAccountId,
    clients: Arc<Clients>,
}

async fn setup(ctx: &Ctx, sim: RunningSimulator, budget: apple::BudgetConfig) -> Setup {
    let (org, account, vault) = common::connect_simulator(ctx, &sim, "Mirrored").await;
    let clients = Clients::with_budget_config(ctx.store.clone(), vault, budget);
    Setup {
        sim,
        org,
        account,
        clients,
    }
}

/// A budget far above anything the tests need: the simulator sets the pace.
fn unlimited() -> apple::BudgetConfig {
    apple::BudgetConfig {
        reads: apple::Rate {
            count: 100_000,
            per: Duration::from_secs(1),
        },
        max_in_flight: 4,
        ..apple::BudgetConfig::default()
    }
}

async fn simulator(seed: u64, devices: usize) -> RunningSimulator {
    Simulator::builder()
        .seed(seed)
        .devices(devices)
        .spawn()
        .await
        .unwrap()
}

/// One device as the simulator knows it (`/_sim/truth`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Known {
    status: Option<String>,
    family: Option<String>,
    updated_at: Option<i64>,
    service: Option<String>,
    released: bool,
}

async fn truth(sim: &RunningSimulator) -> BTreeMap<String, Known> {
    let body = reqwest::get(format!("{}/_sim/truth", sim.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut devices = BTreeMap::new();
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap();
        if v.get("kind").and_then(Value::as_str) == Some("summary") {
            continue;
        }
        let text = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
        devices.insert(
            text("serialNumber").unwrap(),
            Known {
                status: text("status"),
                family: text("productFamily"),
                updated_at: text("updatedDateTime").map(|t| {
                    OffsetDateTime::parse(&t, &Rfc3339)
                        .unwrap()
                        .unix_timestamp()
                }),
                service: text("assignedServerId"),
                released: v.get("released").and_then(Value::as_bool).unwrap_or(false),
            },
        );
    }
    devices
}

type MirrorRow = (
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    bool,
);

/// The mirror as stored, read with plain SQL on a separate connection.
async fn mirror(ctx: &Ctx) -> BTreeMap<String, Known> {
    const SQL: &str = "SELECT serial, status, product_family, apple_updated_at, service_id, \
        absent_since IS NOT NULL FROM mirror_devices";
    let rows: Vec<MirrorRow> = match ctx.kind() {
        DatabaseKind::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&ctx.url).await.unwrap();
            let rows = sqlx::query_as(SQL).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows
        }
        DatabaseKind::Postgres => {
            let pool = sqlx::PgPool::connect(&ctx.url).await.unwrap();
            let rows = sqlx::query_as(SQL).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows
        }
    };
    rows.into_iter()
        .map(|(serial, status, family, updated_at, service, absent)| {
            (
                serial,
                Known {
                    status,
                    family,
                    updated_at,
                    service,
                    released: absent,
                },
            )
        })
        .collect()
}

/// Every device the simulator knows is mirrored with the same facts; released devices are
/// marked absent if the mirror ever saw them, and the mirror holds nothing else.
async fn assert_mirror_matches_truth(ctx: &Ctx, sim: &RunningSimulator) {
    let truth = truth(sim).await;
    let mirror = mirror(ctx).await;
    let mut problems = Vec::new();
    for (serial, known) in &truth {
        match mirror.get(serial) {
            None if known.released => {}
            None => problems.push(format!("{serial}: missing from the mirror")),
            Some(row) if known.released => {
                if !row.released {
                    problems.push(format!("{serial}: released at Apple, not marked absent"));
                }
            }
            Some(row) => {
                if row != known {
                    problems.push(format!("{serial}: mirror {row:?} != truth {known:?}"));
                }
            }
        }
    }
    for serial in mirror.keys() {
        if !truth.contains_key(serial) {
            problems.push(format!("{serial}: in the mirror, unknown to Apple"));
        }
    }
    assert!(
        problems.is_empty(),
        "{} differences, first: {:#?}",
        problems.len(),
        &problems[..problems.len().min(10)]
    );
}

async fn mutate(sim: &RunningSimulator, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{}/_sim/mutate", sim.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{body}");
    response.json().await.unwrap()
}

/// Resumes the account's interrupted run once the killed one's lease has gone.
async fn resume(engine: &Arc<SyncEngine>, s: &Setup) -> backend::mirror::sync::SyncRun {
    loop {
        match engine
            .sync_account(s.org, s.account, SyncCause::Start)
            .await
        {
            Err(SyncError::Busy) => tokio::time::sleep(Duration::from_millis(200)).await,
            other => return other.unwrap(),
        }
    }
}

async fn stats(sim: &RunningSimulator) -> Value {
    reqwest::get(format!("{}/_sim/stats", sim.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn a_full_sync_then_changes_and_a_second_sync_match_the_truth(ctx: &Ctx) {
    let s = setup(ctx, simulator(501, 100_000).await, unlimited()).await;
    let engine = SyncEngine::new(ctx.store.clone(), s.clients.clone(), Default::default());

    let first = engine
        .sync_account(s.org, s.account, SyncCause::Manual)
        .await
        .unwrap();
    assert_eq!(first.state, RunState::Succeeded);
    assert_eq!(first.written, 100_000, "{first:?}");
    assert_eq!(first.released, 0);
    assert_mirror_matches_truth(ctx, &s.sim).await;

    // Changes at Apple: new devices, released ones, reassigned ones, changed attributes.
    let serials: Vec<String> = truth(&s.sim).await.into_keys().collect();
    let servers = stats_servers(&s.sim).await;
    mutate(
        &s.sim,
        json!({"op": "addDevices", "count": 250, "serverId": servers[0]}),
    )
    .await;
    mutate(
        &s.sim,
        json!({"op": "releaseDevices", "serials": &serials[0..40]}),
    )
    .await;
    mutate(
        &s.sim,
        json!({"op": "reassignDevices", "serials": &serials[100..160], "serverId": servers[1]}),
    )
    .await;
    mutate(
        &s.sim,
        json!({"op": "reassignDevices", "serials": &serials[200..220], "serverId": null}),
    )
    .await;
    mutate(
        &s.sim,
        json!({"op": "setAttributes", "serials": &serials[300..330], "attributes": {"color": "ORCHARD GREEN"}}),
    )
    .await;

    let second = engine
        .sync_account(s.org, s.account, SyncCause::Manual)
        .await
        .unwrap();
    assert_eq!(second.state, RunState::Succeeded);
    assert_eq!(second.released, 40, "{second:?}");
    // New, recoloured, and reassigned devices (Apple's status and updatedDateTime change).
    assert!(
        second.written >= 250 + 30 && second.written <= 250 + 30 + 80,
        "only changed devices are written: {second:?}"
    );
    assert_mirror_matches_truth(ctx, &s.sim).await;

    // Nothing changed: a third run reads everything and writes nothing.
    let third = engine
        .sync_account(s.org, s.account, SyncCause::Manual)
        .await
        .unwrap();
    assert_eq!((third.written, third.released), (0, 0), "{third:?}");
    assert_mirror_matches_truth(ctx, &s.sim).await;
    s.sim.shutdown().await;
}

/// The ids of the simulator's device management services.
async fn stats_servers(sim: &RunningSimulator) -> Vec<String> {
    let body = reqwest::get(format!("{}/_sim/truth", sim.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let summary: Value = serde_json::from_str(body.lines().next().unwrap()).unwrap();
    summary["servers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["serverType"] == "MDM")
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_sync_killed_mid_run_resumes_from_the_saved_page(ctx: &Ctx) {
    let s = setup(ctx, simulator(502, 100_000).await, unlimited()).await;
    // Slow pages, so the kill lands in the middle of the device list.
    s.sim.set_faults(FaultConfig {
        latency_ms: 40,
        ..FaultConfig::default()
    });
    let engine = SyncEngine::with_lease_ttl(
        ctx.store.clone(),
        s.clients.clone(),
        Default::default(),
        Duration::from_secs(2),
    );
    let task = tokio::spawn({
        let engine = engine.clone();
        let (org, account) = (s.org, s.account);
        async move { engine.sync_account(org, account, SyncCause::Manual).await }
    });
    let stored_pages = loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Some(run) = ctx.store.running_sync_run(s.account).await.unwrap()
            && run.pages >= 30
        {
            break run.pages;
        }
    };
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    drop(engine);
    assert!(stored_pages < 100, "killed before the device list ended");

    // "Restart": a new store connection, a new engine (another lease holder), no faults.
    s.sim.set_faults(FaultConfig::default());
    let store: Arc<dyn Store> = ctx.reconnect().await;
    let clients = Clients::with_budget_config(
        store.clone(),
        Arc::new(Vault::new(
            &MasterKey::from_hex(&"0123456789abcdef".repeat(4)).unwrap(),
        )),
        unlimited(),
    );
    if ctx.kind() == DatabaseKind::Postgres {
        // The killed sync's advisory lock lives on the first store's session; the process
        // dying ends it. (On SQLite the lease simply expires.)
        ctx.store.close().await;
    }
    let engine = SyncEngine::with_lease_ttl(
        store.clone(),
        clients,
        Default::default(),
        Duration::from_secs(2),
    );
    let resumed = resume(&engine, &s).await;
    assert_eq!(resumed.state, RunState::Succeeded);
    assert_eq!(
        resumed.cause,
        SyncCause::Manual,
        "the killed run went on, no new run"
    );
    assert_eq!(resumed.written, 100_000, "{resumed:?}");
    let stats = stats(&s.sim).await;
    assert!(
        stats["pagesFetchedTwice"].as_u64().unwrap() <= 1,
        "at most the page in flight is fetched again: {}",
        stats["pagesFetchedTwice"]
    );
    assert_mirror_matches_truth(ctx, &s.sim).await;
    store.close().await;
    s.sim.shutdown().await;
}

async fn apple_like_limits_are_never_exceeded(ctx: &Ctx) {
    // The simulator allows 20 GETs per Apple minute (one real second at this time scale) in
    // fixed windows; Orchard's budget is 20 per 1.3 s, a margin for the two clocks.
    let sim = Simulator::builder()
        .seed(503)
        .devices(12_000)
        .time_scale(60.0)
        .spawn()
        .await
        .unwrap();
    let budget = apple::BudgetConfig {
        reads: apple::Rate {
            count: 20,
            per: Duration::from_millis(1300),
        },
        ..apple::BudgetConfig::default()
    };
    let s = setup(ctx, sim, budget).await;
    s.sim.set_faults(FaultConfig {
        get_budget: Some(simulator::Budget {
            requests: 20,
            window_secs: 60.0,
        }),
        ..FaultConfig::default()
    });
    let engine = SyncEngine::new(ctx.store.clone(), s.clients.clone(), Default::default());
    let run = engine
        .sync_account(s.org, s.account, SyncCause::Manual)
        .await
        .unwrap();
    assert_eq!(run.state, RunState::Succeeded);
    assert_eq!(run.rate_limited, 0, "{run:?}");
    assert_eq!(s.sim.stats().rate_limited, 0);
    assert_mirror_matches_truth(ctx, &s.sim).await;
    s.sim.shutdown().await;
}

async fn one_sync_per_account_at_a_time(ctx: &Ctx) {
    let s = setup(ctx, simulator(504, 3_000).await, unlimited()).await;
    s.sim.set_faults(FaultConfig {
        latency_ms: 100,
        ..FaultConfig::default()
    });
    let first = SyncEngine::new(ctx.store.clone(), s.clients.clone(), Default::default());
    // A second instance: its own store connection and its own lease holder.
    let other_store = ctx.reconnect().await;
    let second = SyncEngine::new(other_store.clone(), s.clients.clone(), Default::default());
    let running = tokio::spawn({
        let first = first.clone();
        let (org, account) = (s.org, s.account);
        async move { first.sync_account(org, account, SyncCause::Manual).await }
    });
    while ctx
        .store
        .running_sync_run(s.account)
        .await
        .unwrap()
        .is_none()
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(matches!(
        second
            .sync_account(s.org, s.account, SyncCause::Manual)
            .await,
        Err(SyncError::Busy)
    ));
    let done = running.await.unwrap().unwrap();
    assert_eq!(done.state, RunState::Succeeded);
    // Free again once the first is done.
    let again = second
        .sync_account(s.org, s.account, SyncCause::Manual)
        .await
        .unwrap();
    assert_eq!(again.written, 0);
    other_store.close().await;
    s.sim.shutdown().await;
}

/// Every list of the directory as Apple serves it now (present objects: id → name) and the
/// members of every group, unit and Blueprint, read straight from the simulator.
async fn apple_directory(
    client: &apple::Client,
) -> (
    BTreeMap<(ObjectKind, String), String>,
    BTreeMap<(ObjectKind, String, &'static str), Vec<String>>,
) {
    let mut objects = BTreeMap::new();
    for kind in ObjectKind::ALL {
        for r in kind
            .list()
            .limit(1000)
            .collect_all(client, usize::MAX)
            .await
            .unwrap()
        {
            let o = backend::mirror::directory::DirectoryObject::from_apple(kind, &r);
            objects.insert((kind, o.id), o.name);
        }
    }
    let mut members = BTreeMap::new();
    for (kind, rels) in ObjectKind::OWNERS {
        let owners: Vec<String> = objects
            .keys()
            .filter(|(k, _)| *k == kind)
            .map(|(_, id)| id.clone())
            .collect();
        for owner in owners {
            for &rel in rels {
                let list = backend::mirror::directory::MemberList {
                    owner_kind: kind,
                    owner_id: owner.clone(),
                    rel,
                };
                let mut ids: Vec<String> = list
                    .request()
                    .limit(1000)
                    .collect_all(client, usize::MAX)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|m| m.id)
                    .collect();
                ids.sort();
                ids.dedup();
                members.insert((kind, owner.clone(), rel), ids);
            }
        }
    }
    (objects, members)
}

/// The mirror's directory equals Apple's: the same present objects with the same names, the
/// same members of each, and absent objects have no members left.
async fn assert_directory_matches_apple(ctx: &Ctx, s: &Setup, client: &apple::Client) {
    let (objects, members) = apple_directory(client).await;
    let store = ctx.store.as_ref();
    let mut problems = Vec::new();
    for kind in ObjectKind::ALL {
        let mirrored = store.objects(s.org, kind).await.unwrap();
        for o in &mirrored {
            let at_apple = objects.get(&(kind, o.id.clone()));
            match (at_apple, o.absent_since) {
                (Some(name), None) if *name == o.name => {}
                (None, Some(_)) => {}
                other => problems.push(format!("{kind:?} {}: {other:?} vs {o:?}", o.id)),
            }
            if o.absent_since.is_some() {
                for (owner_kind, rels) in ObjectKind::OWNERS {
                    for &rel in rels.iter().filter(|_| owner_kind == kind) {
                        let left = store.members(s.org, kind, &o.id, rel).await.unwrap();
                        if !left.is_empty() {
                            problems.push(format!("absent {} keeps {rel} members", o.id));
                        }
                    }
                }
            }
        }
        for (k, id) in objects.keys().filter(|(k, _)| *k == kind) {
            if !mirrored.iter().any(|o| &o.id == id) {
                problems.push(format!("{k:?} {id}: not mirrored"));
            }
        }
    }
    for ((kind, owner, rel), ids) in &members {
        let stored = store.members(s.org, *kind, owner, rel).await.unwrap();
        if &stored != ids {
            problems.push(format!(
                "{kind:?} {owner} {rel}: mirror {} members, Apple {}",
                stored.len(),
                ids.len()
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The ids of Apple's audit events about a device in the last 100 days.
async fn apple_device_events(client: &apple::Client, serial: &str) -> Vec<String> {
    let now = OffsetDateTime::now_utc();
    let mut ids: Vec<String> = audit_events::list(now - time::Duration::days(100), now)
        .subject_id(serial)
        .limit(1000)
        .collect_all(client, usize::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id.as_str().to_owned())
        .collect();
    ids.sort();
    ids
}

async fn mirrored_device_events(ctx: &Ctx, org: OrgId, serial: &str) -> Vec<String> {
    let mut ids: Vec<String> = ctx
        .store
        .device_audit_events(org, serial, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e: AuditEventRecord| e.id)
        .collect();
    ids.sort();
    ids
}

/// Sets every directory row's change time to 0, so a run that rewrites one shows.
async fn zero_change_times(ctx: &Ctx) {
    const SQL: &str = "UPDATE mirror_objects SET changed_at = 0";
    match ctx.kind() {
        DatabaseKind::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&ctx.url).await.unwrap();
            sqlx::query(SQL).execute(&pool).await.unwrap();
            pool.close().await;
        }
        DatabaseKind::Postgres => {
            let pool = sqlx::PgPool::connect(&ctx.url).await.unwrap();
            sqlx::query(SQL).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
}

async fn rewritten_objects(ctx: &Ctx) -> i64 {
    const SQL: &str = "SELECT COUNT(*) FROM mirror_objects WHERE changed_at <> 0";
    match ctx.kind() {
        DatabaseKind::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&ctx.url).await.unwrap();
            let n = sqlx::query_scalar(SQL).fetch_one(&pool).await.unwrap();
            pool.close().await;
            n
        }
        DatabaseKind::Postgres => {
            let pool = sqlx::PgPool::connect(&ctx.url).await.unwrap();
            let n = sqlx::query_scalar(SQL).fetch_one(&pool).await.unwrap();
            pool.close().await;
            n
        }
    }
}

async fn the_directory_and_audit_events_follow_apple(ctx: &Ctx) {
    let s = setup(ctx, simulator(505, 2_000).await, unlimited()).await;
    let client = s.clients.for_account(s.account).await.unwrap();

    // A first sync killed in the middle of the membership lists, then resumed.
    s.sim.set_faults(FaultConfig {
        latency_ms: 30,
        ..FaultConfig::default()
    });
    let engine = SyncEngine::with_lease_ttl(
        ctx.store.clone(),
        s.clients.clone(),
        Default::default(),
        Duration::from_secs(2),
    );
    let task = tokio::spawn({
        let engine = engine.clone();
        let (org, account) = (s.org, s.account);
        async move { engine.sync_account(org, account, SyncCause::Manual).await }
    });
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Some(run) = ctx.store.running_sync_run(s.account).await.unwrap()
            && run.phase == SyncPhase::Members
            && run.service_index >= 3
        {
            break;
        }
        assert!(!task.is_finished(), "the run ended before the kill");
    }
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    drop(engine);
    s.sim.set_faults(FaultConfig::default());
    let engine = SyncEngine::with_lease_ttl(
        ctx.store.clone(),
        s.clients.clone(),
        Default::default(),
        Duration::from_secs(2),
    );
    let first = resume(&engine, &s).await;
    assert_eq!(first.state, RunState::Succeeded);
    assert_eq!(first.cause, SyncCause::Manual, "the killed run went on");
    let stats = stats(&s.sim).await;
    assert!(
        stats["pagesFetchedTwice"].as_u64().unwrap() <= 1,
        "at most the page in flight is fetched again: {}",
        stats["pagesFetchedTwice"]
    );
    assert_directory_matches_apple(ctx, &s, &client).await;
    let counts = ctx.store.object_counts(s.org, s.account).await.unwrap();
    assert!(
        counts
            .iter()
            .any(|c| c.kind == ObjectKind::Users && c.present >= 12),
        "{counts:?}"
    );

    // A device in a Blueprint: the mirror knows the Blueprint from the device's side.
    let bp = ctx
        .store
        .objects(s.org, ObjectKind::Blueprints)
        .await
        .unwrap();
    assert_eq!(bp.len(), 3, "{bp:?}");
    let (keep, gone) = (&bp[0], &bp[1]);
    let devices = ctx
        .store
        .members(s.org, ObjectKind::Blueprints, &keep.id, "orgDevices")
        .await
        .unwrap();
    let serial = devices[0].clone();
    let of_device = ctx
        .store
        .owners_of(s.org, ObjectKind::Blueprints, "orgDevices", &serial)
        .await
        .unwrap();
    assert!(of_device.iter().any(|o| o.id == keep.id), "{of_device:?}");

    // Audit events: the device's are exactly Apple's.
    let events = mirrored_device_events(ctx, s.org, &serial).await;
    assert_eq!(events, apple_device_events(&client, &serial).await);

    // Changes at Apple: a member removed and one added, a Blueprint deleted, a device
    // reassigned (a new audit event).
    let keep_id = apple::BlueprintId::new(keep.id.as_str());
    blueprints::remove_members(&keep_id, BlueprintRelationship::OrgDevices, [&serial])
        .send(&client)
        .await
        .unwrap();
    let user = ctx.store.objects(s.org, ObjectKind::Users).await.unwrap()[0]
        .id
        .clone();
    blueprints::add_members(&keep_id, BlueprintRelationship::Users, [&user])
        .send(&client)
        .await
        .unwrap();
    blueprints::delete(&apple::BlueprintId::new(gone.id.as_str()))
        .send(&client)
        .await
        .unwrap();
    let servers = stats_servers(&s.sim).await;
    mutate(
        &s.sim,
        json!({"op": "reassignDevices", "serials": [&serial], "serverId": servers[1]}),
    )
    .await;

    let second = engine
        .sync_account(s.org, s.account, SyncCause::Manual)
        .await
        .unwrap();
    assert_eq!(second.state, RunState::Succeeded);
    assert_directory_matches_apple(ctx, &s, &client).await;
    let gone_now = ctx
        .store
        .objects(s.org, ObjectKind::Blueprints)
        .await
        .unwrap();
    assert!(
        gone_now
            .iter()
            .any(|o| o.id == gone.id && o.absent_since.is_some()),
        "a deleted Blueprint is kept, marked absent: {gone_now:?}"
    );
    let of_device = ctx
        .store
        .owners_of(s.org, ObjectKind::Blueprints, "orgDevices", &serial)
        .await
        .unwrap();
    assert!(!of_device.iter().any(|o| o.id == keep.id), "{of_device:?}");
    let after = mirrored_device_events(ctx, s.org, &serial).await;
    assert_eq!(after, apple_device_events(&client, &serial).await);
    assert!(
        after.len() > events.len(),
        "the reassignment's event arrived"
    );

    // Nothing changed since: a run rewrites no object.
    zero_change_times(ctx).await;
    let third = engine
        .sync_account(s.org, s.account, SyncCause::Manual)
        .await
        .unwrap();
    assert_eq!(third.state, RunState::Succeeded);
    assert_eq!(rewritten_objects(ctx).await, 0);
    assert_directory_matches_apple(ctx, &s, &client).await;
    s.sim.shutdown().await;
}

/// `store_devices` on its own: a first sync's pages skip the comparison (nothing is stored
/// yet) and, on SQLite, are staged until merged; a serial Apple returns twice is stored once
/// as last returned, within a page and across staged pages; and once the mirror holds
/// devices (or the walk resumed) the page is compared and an unchanged one writes nothing.
async fn a_page_is_stored_once_per_serial_and_compared_unless_the_mirror_was_empty(ctx: &Ctx) {
    use backend::mirror::DeviceAttributes;
    use backend::mirror::sync::{Known as Prior, Staging, store_devices};
    use backend::store::mirror::Checkpoint;

    let sim = simulator(7, 0).await;
    let (org, account, _) = common::connect_simulator(ctx, &sim, "Pages").await;
    let store = ctx.store.as_ref();
    assert_eq!(
        Prior::at_start(store, org, false).await.unwrap(),
        Prior::Nothing
    );
    assert_eq!(
        Prior::at_start(store, org, true).await.unwrap(),
        Prior::Maybe
    );

    let run = store
        .start_sync_run(org, account, SyncCause::Manual, 1)
        .await
        .unwrap();
    let checkpoint = |page: u32| Checkpoint {
        run: run.id,
        phase: SyncPhase::Devices,
        cursor: Some(format!("page-{page}")),
        service_index: 0,
        rate_limited: 0,
        budget_wait_ms: 0,
        now: 1_700_000_000,
    };
    let device = |serial: &str, model: &str| DeviceAttributes {
        serial: serial.to_owned(),
        model: Some(model.to_owned()),
        status: Some("UNASSIGNED".to_owned()),
        ..DeviceAttributes::default()
    };
    let page = vec![
        device("C02PAGE00001", "iMac"),
        device("C02PAGE00002", "iPad"),
        device("C02PAGE00001", "MacBook Air"),
    ];
    let first = store_devices(store, org, account, &checkpoint(1), &page, Prior::Nothing)
        .await
        .unwrap();
    let mut serials: Vec<&str> = first.written.iter().map(|d| d.serial.as_str()).collect();
    serials.sort_unstable();
    assert_eq!(serials, ["C02PAGE00001", "C02PAGE00002"]);
    // The same device again in the next page (Apple's list moved under the cursor).
    let moved = vec![device("C02PAGE00002", "iPad mini")];
    let second = store_devices(store, org, account, &checkpoint(2), &moved, Prior::Nothing)
        .await
        .unwrap();
    assert_eq!(first.staged, ctx.kind() == DatabaseKind::Sqlite);
    assert_eq!(second.staged, first.staged);
    let mut staging = Staging::default();
    for stored in [&first, &second] {
        staging.after_page(store, org, stored).await.unwrap();
    }
    if first.staged {
        assert_eq!(store.device(org, "C02PAGE00001").await.unwrap(), None);
        assert!(
            !store.has_devices(org).await.unwrap(),
            "staged, not merged yet"
        );
    }
    staging.finish(store, org).await.unwrap();
    assert_eq!(
        store.merge_staged_devices(org, 0).await.unwrap(),
        0,
        "merged once"
    );
    let stored = store.device(org, "C02PAGE00001").await.unwrap().unwrap();
    assert_eq!(
        stored.model.as_deref(),
        Some("MacBook Air"),
        "the last one returned"
    );
    let stored = store.device(org, "C02PAGE00002").await.unwrap().unwrap();
    assert_eq!(stored.model.as_deref(), Some("iPad mini"));

    let known = Prior::at_start(store, org, false).await.unwrap();
    assert_eq!(known, Prior::Maybe);
    let again = vec![
        device("C02PAGE00001", "MacBook Air"),
        device("C02PAGE00002", "iPad mini"),
    ];
    let stored = store_devices(store, org, account, &checkpoint(3), &again, known)
        .await
        .unwrap();
    assert!(stored.written.is_empty(), "unchanged: {stored:?}");
    assert!(!stored.staged);
    let changed = vec![device("C02PAGE00002", "iPad Air")];
    let stored = store_devices(store, org, account, &checkpoint(4), &changed, known)
        .await
        .unwrap();
    assert_eq!(stored.written, changed);
    assert_eq!(
        store
            .device(org, "C02PAGE00002")
            .await
            .unwrap()
            .unwrap()
            .model
            .as_deref(),
        Some("iPad Air")
    );
    let run = store.sync_run(run.id).await.unwrap();
    assert_eq!((run.pages, run.items, run.written), (4, 7, 4));
}

/// Two instances share the database, not their search indexes: one syncs (with its own
/// index), the other only searches. The searching one must answer like SQL after each of
/// the other's runs: its first (an account it has no mark of: rebuilt) and a later one
/// (new, released and recoloured devices: caught up from the rows changed since).
async fn another_instances_syncs_reach_this_instances_index(ctx: &Ctx) {
    let s = setup(ctx, simulator(504, 3_000).await, unlimited()).await;
    let store = ctx.store.as_ref();
    let syncing = SyncEngine::new(ctx.store.clone(), s.clients.clone(), Default::default());
    let here = DeviceIndex::with_check_every(Duration::ZERO);
    let everything = DeviceQuery::text("");
    let (empty, _) = here
        .search_with_path(store, s.org, &everything)
        .await
        .unwrap();
    assert_eq!(empty.total, 0);

    let first = syncing
        .sync_account(s.org, s.account, SyncCause::Manual)
        .await
        .unwrap();
    assert_eq!(first.state, RunState::Succeeded);
    let before: Vec<String> = truth(&s.sim).await.into_keys().collect();
    let answers = |text: &str| answer(&here, store, s.org, DeviceQuery::text(text));
    let (total, _) = answers("").await;
    assert_eq!(total, 3_000 - released(&s.sim).await);

    let servers = stats_servers(&s.sim).await;
    mutate(
        &s.sim,
        json!({"op": "addDevices", "count": 25, "serverId": servers[0]}),
    )
    .await;
    mutate(
        &s.sim,
        json!({"op": "releaseDevices", "serials": &before[0..10]}),
    )
    .await;
    mutate(
        &s.sim,
        json!({"op": "setAttributes", "serials": &before[20..30], "attributes": {"color": "ORCHARD GREEN"}}),
    )
    .await;
    let second = syncing
        .sync_account(s.org, s.account, SyncCause::Manual)
        .await
        .unwrap();
    assert_eq!(second.released, 10, "{second:?}");
    let added: Vec<String> = truth(&s.sim)
        .await
        .into_keys()
        .filter(|serial| !before.contains(serial))
        .collect();
    assert_eq!(added.len(), 25);

    // The default view is counted and paged by the index alone: it must know the new and
    // the released devices.
    let (total, path) = answers("").await;
    assert_eq!(path, SearchPath::Index);
    assert_eq!(total, 3_000 + 25 - released(&s.sim).await);
    let (total, path) = answers(&added[0][3..]).await;
    assert_eq!(
        (total, path),
        (1, SearchPath::Index),
        "a new device, by substring"
    );
    let (total, _) = answers(&before[0]).await;
    assert_eq!(total, 0, "a released device is left out");
    let (total, path) = answers("orchard green").await;
    assert_eq!(total, 10, "recoloured devices, by free text");
    assert_ne!(path, SearchPath::Sql);
    s.sim.shutdown().await;
}

/// The index's answer to `query`, checked against SQL: the total and the path.
async fn answer(
    index: &DeviceIndex,
    store: &dyn Store,
    org: OrgId,
    query: DeviceQuery,
) -> (u64, SearchPath) {
    let (page, path) = index.search_with_path(store, org, &query).await.unwrap();
    let sql = store.search_devices(org, &query).await.unwrap();
    assert_eq!(page, sql, "`{}`: the index and SQL differ", query.text);
    (page.total, path)
}

/// How many devices the simulator has released.
async fn released(sim: &RunningSimulator) -> u64 {
    truth(sim).await.values().filter(|d| d.released).count() as u64
}
