//! A device's AppleCare coverage and Activation Lock, on SQLite and PostgreSQL, against the
//! simulator over HTTP: fetched once and cached (a second read costs Apple nothing), fetched
//! again on demand, and each of Apple's refusals named.

mod common;

use std::sync::Arc;
use std::time::Duration;

use backend::accounts::{ApiAccountId, Clients};
use backend::audit::Actor;
use backend::mirror::AppleCareState;
use backend::mirror::coverage::{self, ActivationLock, CoverageError};
use backend::mirror::index::DeviceIndex;
use backend::mirror::refresh;
use backend::mirror::search::{AppleCareFilter, DeviceQuery};
use backend::mirror::sync::{SyncCause, SyncEngine};
use backend::orgs::OrgId;
use common::Ctx;
use simulator::{RunningSimulator, Simulator};

both_backends!(
    coverage_is_fetched_once_then_cached_and_refetched_on_demand,
    apples_refusals_are_named,
    refresh_reads_the_record_service_and_events_now,
);

struct Setup {
    sim: RunningSimulator,
    org: OrgId,
    account: ApiAccountId,
    clients: Arc<Clients>,
}

/// A simulated organization of 30 devices, mirrored.
async fn setup(ctx: &Ctx) -> Setup {
    let sim = Simulator::builder()
        .seed(11)
        .devices(30)
        .spawn()
        .await
        .unwrap();
    let (org, account, vault) = common::connect_simulator(ctx, &sim, "Covered").await;
    let budget = apple::BudgetConfig {
        reads: apple::Rate {
            count: 100_000,
            per: Duration::from_secs(1),
        },
        ..apple::BudgetConfig::default()
    };
    let clients = Clients::with_budget_config(ctx.store.clone(), vault, budget);
    SyncEngine::new(
        ctx.store.clone(),
        clients.clone(),
        Arc::new(DeviceIndex::new()),
    )
    .sync_account(org, account, SyncCause::Manual)
    .await
    .unwrap();
    Setup {
        sim,
        org,
        account,
        clients,
    }
}

/// Calls the simulator answered for the endpoint whose route contains `part`.
fn calls(sim: &RunningSimulator, part: &str) -> u64 {
    sim.stats()
        .requests
        .iter()
        .filter(|(route, _)| route.contains(part))
        .flat_map(|(_, statuses)| statuses.values())
        .sum()
}

/// The serial numbers of the devices in the organization at Apple, all mirrored.
async fn serials(ctx: &Ctx, s: &Setup) -> Vec<String> {
    let truth = reqwest::get(format!("{}/_sim/truth", s.sim.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut out: Vec<String> = truth
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["released"] != true)
        .filter_map(|v| v["serialNumber"].as_str().map(str::to_owned))
        .collect();
    out.sort();
    assert!(out.len() >= 3, "truth lists the devices");
    let mirrored = ctx.store.devices_by_serials(s.org, &out).await.unwrap();
    assert_eq!(mirrored.len(), out.len(), "every device is mirrored");
    out
}

async fn coverage_is_fetched_once_then_cached_and_refetched_on_demand(ctx: &Ctx) {
    let s = setup(ctx).await;
    let serial = serials(ctx, &s).await.remove(0);
    let store = ctx.store.as_ref();

    assert_eq!(coverage::cached(store, s.org, &serial).await.unwrap(), None);
    let unchecked = store.device(s.org, &serial).await.unwrap().unwrap();
    assert_eq!(unchecked.applecare, None);
    let fetched = coverage::fetch(store, &s.clients, s.org, &serial, 1_800_000_000)
        .await
        .unwrap();
    assert_eq!(fetched.fetched_at, 1_800_000_000);
    // Every device has at least Apple's Limited Warranty.
    assert!(
        fetched
            .coverage
            .iter()
            .any(|c| c.description.as_deref() == Some("Limited Warranty")
                && c.payment_type.as_deref() == Some("NONE")
                && c.starts_at.is_some()),
        "{fetched:?}"
    );
    assert!(matches!(
        fetched.activation_lock,
        ActivationLock::Known { .. }
    ));
    assert_eq!(calls(&s.sim, "appleCareCoverage"), 1);
    assert_eq!(calls(&s.sim, "activationLockStatus"), 1);
    // The device list's AppleCare filter now knows the device: covered when an item is
    // active and not canceled.
    let covered = fetched
        .coverage
        .iter()
        .any(|c| c.status.as_deref() == Some("ACTIVE") && c.canceled != Some(true));
    let state = if covered {
        AppleCareState::Covered
    } else {
        AppleCareState::NotCovered
    };
    let device = store.device(s.org, &serial).await.unwrap().unwrap();
    assert_eq!(device.applecare, Some(state));
    let mut query = DeviceQuery::text(serial.as_str());
    query.filters.applecare = Some(AppleCareFilter::Is(state));
    let found = store.search_devices(s.org, &query).await.unwrap();
    assert_eq!(found.devices, [device]);
    query.filters.applecare = Some(AppleCareFilter::Unchecked);
    assert_eq!(store.search_devices(s.org, &query).await.unwrap().total, 0);

    // Cached: the same facts, and Apple is not asked.
    let cached = coverage::cached(store, s.org, &serial).await.unwrap();
    assert_eq!(cached.as_ref(), Some(&fetched));
    assert_eq!(calls(&s.sim, "appleCareCoverage"), 1);

    // On demand again: replaces the cache.
    let again = coverage::fetch(store, &s.clients, s.org, &serial, 1_800_000_100)
        .await
        .unwrap();
    assert_eq!(again.fetched_at, 1_800_000_100);
    assert_eq!(calls(&s.sim, "appleCareCoverage"), 2);
    assert_eq!(
        coverage::cached(store, s.org, &serial)
            .await
            .unwrap()
            .map(|c| c.fetched_at),
        Some(1_800_000_100)
    );
    // A sync rewrites Apple's attributes, and keeps the state.
    mutate(
        &s.sim,
        serde_json::json!({"op": "setAttributes", "serials": [&serial], "attributes": {"color": "ORCHARD GREEN"}}),
    )
    .await;
    SyncEngine::new(
        ctx.store.clone(),
        s.clients.clone(),
        Arc::new(DeviceIndex::new()),
    )
    .sync_account(s.org, s.account, SyncCause::Manual)
    .await
    .unwrap();
    let device = store.device(s.org, &serial).await.unwrap().unwrap();
    assert_eq!(device.color.as_deref(), Some("ORCHARD GREEN"));
    assert_eq!(device.applecare, Some(again.state()));
    // Organizations do not share their caches.
    let other = ctx
        .store
        .create_organization(&backend::orgs::NewOrganization::parse("Other").unwrap())
        .await
        .unwrap()
        .id;
    assert_eq!(coverage::cached(store, other, &serial).await.unwrap(), None);
}

async fn apples_refusals_are_named(ctx: &Ctx) {
    let s = setup(ctx).await;
    let serials = serials(ctx, &s).await;
    let store = ctx.store.as_ref();

    // Not in Orchard's copy: Apple is not asked.
    let err = coverage::fetch(store, &s.clients, s.org, "NOTMIRRORED1", 1)
        .await
        .unwrap_err();
    assert!(matches!(err, CoverageError::NotMirrored), "{err:?}");
    assert_eq!(calls(&s.sim, "appleCareCoverage"), 0);

    // Released at Apple since the last sync: Apple answers 404.
    let released = reqwest::Client::new()
        .post(format!("{}/_sim/mutate", s.sim.base_url()))
        .json(&serde_json::json!({ "op": "releaseDevices", "serials": [serials[1]] }))
        .send()
        .await
        .unwrap();
    assert!(released.status().is_success());
    let err = coverage::fetch(store, &s.clients, s.org, &serials[1], 1)
        .await
        .unwrap_err();
    assert!(matches!(err, CoverageError::NotAtApple), "{err:?}");
    assert_eq!(
        err.to_string(),
        "Apple does not know this device in the organization any more"
    );
    assert_eq!(
        coverage::cached(store, s.org, &serials[1]).await.unwrap(),
        None
    );

    // A revoked account sends nothing.
    backend::accounts::revoke(store, &s.clients, &Actor::system(), s.account)
        .await
        .unwrap();
    let before = calls(&s.sim, "appleCareCoverage");
    let err = coverage::fetch(store, &s.clients, s.org, &serials[2], 1)
        .await
        .unwrap_err();
    assert!(matches!(err, CoverageError::AccountRevoked), "{err:?}");
    assert_eq!(calls(&s.sim, "appleCareCoverage"), before);
}

async fn mutate(sim: &RunningSimulator, body: serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/_sim/mutate", sim.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{body}");
}

/// The id of a device management service of the simulator's organization, other than
/// `not`.
async fn a_service(sim: &RunningSimulator, not: Option<&str>) -> String {
    let body = reqwest::get(format!("{}/_sim/truth", sim.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let summary: serde_json::Value = serde_json::from_str(body.lines().next().unwrap()).unwrap();
    summary["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["serverType"] == "MDM" && s["id"].as_str() != not)
        .and_then(|s| s["id"].as_str())
        .unwrap()
        .to_owned()
}

async fn refresh_reads_the_record_service_and_events_now(ctx: &Ctx) {
    let s = setup(ctx).await;
    let store = ctx.store.as_ref();
    let index = DeviceIndex::new();
    let history = Duration::from_secs(90 * 86_400);
    let all = serials(ctx, &s).await;
    let (moved, released) = (all[0].clone(), all[1].clone());
    let now = || time::OffsetDateTime::now_utc().unix_timestamp();

    // Unchanged at Apple: nothing is rewritten.
    let same = refresh::device(store, &s.clients, &index, s.org, &moved, history, now())
        .await
        .unwrap();
    assert!(!same.changed && !same.released, "{same:?}");

    // Apple moves one device to a service and lets the other go, after the last sync.
    let current = store
        .devices_by_serial(s.org, std::slice::from_ref(&moved))
        .await
        .unwrap()[0]
        .service_id
        .clone();
    let service = a_service(&s.sim, current.as_deref()).await;
    mutate(
        &s.sim,
        serde_json::json!({"op": "reassignDevices", "serials": [&moved], "serverId": &service}),
    )
    .await;
    mutate(
        &s.sim,
        serde_json::json!({"op": "releaseDevices", "serials": [&released]}),
    )
    .await;

    let r = refresh::device(store, &s.clients, &index, s.org, &moved, history, now())
        .await
        .unwrap();
    assert!(r.changed && !r.released && r.new_events >= 1, "{r:?}");
    let row = &store
        .devices_by_serial(s.org, std::slice::from_ref(&moved))
        .await
        .unwrap()[0];
    assert_eq!(row.service_id.as_deref(), Some(service.as_str()));
    assert_eq!(row.status.as_deref(), Some("ASSIGNED"));
    let events = store.device_audit_events(s.org, &moved, 10).await.unwrap();
    assert_eq!(
        events[0].event_type, "DEVICE_ASSIGNED_TO_SERVER",
        "{events:?}"
    );
    assert!(events[0].describe().starts_with("Assigned to "));

    let r = refresh::device(store, &s.clients, &index, s.org, &released, history, now())
        .await
        .unwrap();
    assert!(r.released, "{r:?}");
    let row = &store
        .devices_by_serial(s.org, std::slice::from_ref(&released))
        .await
        .unwrap()[0];
    assert!(
        row.absent_since.is_some() && row.service_id.is_none(),
        "{row:?}"
    );
    let events = store
        .device_audit_events(s.org, &released, 10)
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "DEVICE_REMOVED_FROM_ORG"),
        "{events:?}"
    );

    // A device Orchard never saw has no account to ask through.
    let unknown = refresh::device(
        store,
        &s.clients,
        &index,
        s.org,
        "NOTMIRRORED1",
        history,
        now(),
    )
    .await
    .unwrap_err();
    assert!(matches!(unknown, CoverageError::NotMirrored), "{unknown:?}");
    s.sim.shutdown().await;
}
