//! The sync engine against the simulator over real HTTP, on SQLite and PostgreSQL: the
//! mirror must end equal to the simulator's truth after a full sync, after changes, after a
//! sync killed mid-run and resumed, and under Apple-like limits without a single 429.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use backend::accounts::{ApiAccountId, Clients};
use backend::mirror::sync::{RunState, SyncCause, SyncEngine, SyncError};
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
    let resumed = loop {
        match engine
            .sync_account(s.org, s.account, SyncCause::Start)
            .await
        {
            Err(SyncError::Busy) => tokio::time::sleep(Duration::from_millis(200)).await,
            other => break other.unwrap(),
        }
    };
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
