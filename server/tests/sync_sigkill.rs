//! The device mirror's "Done when": the `orchard` process is killed with SIGKILL three times
//! during the first sync of a 100,000-device organization and started again on the same
//! database. The interrupted run must go on from its saved page (no new run, at most one page
//! fetched twice per kill) and end with the mirror equal to the simulator's truth.
//!
//! The simulator lives in this test process and survives the kills. SQLite always;
//! PostgreSQL too when `ORCHARD_TEST_POSTGRES_URL` is set (in a database of its own).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backend::Store;
use backend::accounts::{self, AccountKind, AccountUrls, ApiAccountId, NewApiAccount};
use backend::audit::Actor;
use backend::config::DatabaseConfig;
use backend::mirror::search::DeviceQuery;
use backend::mirror::sync::{RunState, SyncRun};
use backend::orgs::{NewOrganization, OrgId};
use backend::vault::{MasterKey, Vault};
use serde_json::Value;
use simulator::{FaultConfig, RunningSimulator, Simulator};

const DEVICES: usize = 100_000;
/// Device pages (of 1000) each run gets through before its kill.
const PAGES_BETWEEN_KILLS: u64 = 20;
const KILLS: u64 = 3;
/// The sync lease the server is started with (SQLite: a killed holder's lease lasts this long;
/// renewed every quarter of it, which a long write transaction must not delay past its end).
const LEASE_SECS: u64 = 6;

fn start_server(dir: &Path, database_url: &str, run: u64) -> Child {
    let log = std::fs::File::create(dir.join(format!("orchard-{run}.log"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_orchard"))
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ORCHARD_DATABASE__URL", database_url)
        .env("ORCHARD_VAULT__KEY_FILE", dir.join("master.key"))
        .env("ORCHARD_SERVER__LISTEN", "127.0.0.1:0")
        .env("ORCHARD_DEMO__ENABLED", "off")
        .env("ORCHARD_JOBS__RUN", "false")
        .env("ORCHARD_SITE__ROOT", dir.join("site"))
        .env("ORCHARD_LOG__FILTER", "warn,backend::mirror=info")
        // The scheduler starts the never-synced account at once, and resumes its unfinished
        // run on every start.
        .env("ORCHARD_MIRROR__SCHEDULE", "true")
        .env("ORCHARD_MIRROR__LEASE_SECS", LEASE_SECS.to_string())
        .env("ORCHARD_BUDGET__READS_PER_MINUTE", "1000000")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start the orchard binary")
}

/// The organization and its account, connected to the simulator, written straight to the
/// database the server will open.
async fn connect(
    store: &Arc<dyn Store>,
    key: &MasterKey,
    sim: &RunningSimulator,
) -> (OrgId, ApiAccountId) {
    let org = store
        .create_organization(&NewOrganization::parse("Killed mid-sync").unwrap())
        .await
        .unwrap()
        .id;
    let creds = sim.credentials();
    let account = accounts::add_account(
        store.as_ref(),
        &Vault::new(key),
        &Actor::system(),
        org,
        NewApiAccount::parse(
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
        .unwrap(),
    )
    .await
    .unwrap()
    .id;
    (org, account)
}

/// What the test compares of each device: status, service, family, Apple's update time,
/// and whether Apple still returns it.
type Facts = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    bool,
);

async fn truth(sim: &RunningSimulator) -> BTreeMap<String, Facts> {
    let body = reqwest::get(format!("{}/_sim/truth", sim.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    body.lines()
        .skip(1) // the summary
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            let text = |k: &str| v[k].as_str().map(str::to_owned);
            let updated = text("updatedDateTime").map(|t| {
                time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
                    .unwrap()
                    .unix_timestamp()
            });
            (
                text("serialNumber").unwrap(),
                (
                    text("status"),
                    text("assignedServerId"),
                    text("productFamily"),
                    updated,
                    v["released"] == true,
                ),
            )
        })
        .collect()
}

/// The whole mirror, read page by page through the search API (released devices included).
async fn mirror(store: &Arc<dyn Store>, org: OrgId) -> BTreeMap<String, Facts> {
    let mut out = BTreeMap::new();
    let mut query = DeviceQuery::text("");
    query.filters.include_absent = true;
    query.limit = 500;
    loop {
        let page = store.search_devices(org, &query).await.unwrap();
        for d in page.devices {
            let facts = (
                d.status,
                d.service_id,
                d.product_family,
                d.apple_updated_at,
                d.absent_since.is_some(),
            );
            out.insert(d.serial, facts);
        }
        match page.next {
            Some(next) => {
                query = DeviceQuery::from_params([
                    ("absent", "1"),
                    ("limit", "500"),
                    ("after", next.as_str()),
                ])
                .unwrap();
            }
            None => return out,
        }
    }
}

async fn running(store: &Arc<dyn Store>, account: ApiAccountId) -> Option<SyncRun> {
    store.running_sync_run(account).await.unwrap()
}

async fn kill_a_syncing_server(database_url: &str, kind: &str) {
    let sim = Simulator::builder()
        .seed(7_100)
        .devices(DEVICES)
        // Slow pages, so every kill lands inside the device list.
        .faults(FaultConfig {
            latency_ms: 30,
            ..FaultConfig::default()
        })
        .spawn()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("site/pkg")).unwrap();
    let key = MasterKey::generate();
    std::fs::write(dir.path().join("master.key"), key.to_hex().as_bytes()).unwrap();
    let store = backend::store::connect(&DatabaseConfig {
        url: database_url.to_owned(),
        max_connections: 2,
    })
    .await
    .unwrap();
    let (org, account) = connect(&store, &key, &sim).await;

    let started = Instant::now();
    let mut run_id = None;
    let mut pages_at_kill = 0;
    for run in 0..KILLS {
        let mut child = start_server(dir.path(), database_url, run);
        let deadline = Instant::now() + Duration::from_secs(120);
        let target = pages_at_kill + PAGES_BETWEEN_KILLS;
        let progress = loop {
            assert!(
                Instant::now() < deadline,
                "{kind}: start {run} did not reach page {target} (see orchard-{run}.log)"
            );
            if let Some(progress) = running(&store, account).await
                && progress.pages >= target
            {
                break progress;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        // `Child::kill` is SIGKILL on Unix.
        child.kill().unwrap();
        child.wait().unwrap();
        let after = running(&store, account)
            .await
            .expect("the run is left unfinished");
        eprintln!(
            "{kind}: kill {run} at {:.1} s, {} pages saved, {} rows written",
            started.elapsed().as_secs_f64(),
            after.pages,
            after.written
        );
        assert!(
            after.pages < 100,
            "{kind}: killed after the device list ended"
        );
        assert_eq!(
            *run_id.get_or_insert(progress.id),
            after.id,
            "{kind}: a new run started"
        );
        pages_at_kill = after.pages;
        // SQLite: the killed holder's lease runs out (timestamps are whole seconds).
        // PostgreSQL's advisory lock ended with the process.
        if kind == "SQLite" {
            tokio::time::sleep(Duration::from_secs(LEASE_SECS + 1)).await;
        }
    }

    let mut child = start_server(dir.path(), database_url, KILLS);
    let deadline = Instant::now() + Duration::from_secs(180);
    let finished = loop {
        let last = store.sync_runs(account, 1).await.unwrap().pop().unwrap();
        if last.state != RunState::Running {
            break last;
        }
        if Instant::now() >= deadline {
            let log = std::fs::read_to_string(dir.path().join(format!("orchard-{KILLS}.log")));
            panic!("{kind}: the resumed sync did not finish: {last:?}\nits log:\n{log:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    child.kill().unwrap();
    child.wait().unwrap();
    eprintln!(
        "{kind}: finished {:?} at {:.1} s: {} pages, {} rows written",
        finished.state,
        started.elapsed().as_secs_f64(),
        finished.pages,
        finished.written
    );
    assert_eq!(finished.state, RunState::Succeeded, "{kind}: {finished:?}");
    assert_eq!(
        Some(finished.id),
        run_id,
        "{kind}: the killed run went on, no new run"
    );
    assert_eq!(store.sync_runs(account, 10).await.unwrap().len(), 1);
    assert_eq!(finished.written, DEVICES as u64, "{kind}: {finished:?}");

    let twice = sim.stats().pages_fetched_twice();
    assert!(
        twice <= KILLS,
        "{kind}: at most the page in flight is fetched again per kill, {twice} were"
    );
    let (truth, mirror) = (truth(&sim).await, mirror(&store, org).await);
    let mut differences = truth
        .iter()
        .filter(|(serial, facts)| match mirror.get(*serial) {
            // A device released before the first sync was never seen: nothing to mark.
            None => !facts.4,
            Some(row) if facts.4 => !row.4,
            Some(row) => row != *facts,
        })
        .map(|(serial, facts)| {
            format!("{serial}: truth {facts:?}, mirror {:?}", mirror.get(serial))
        })
        .chain(
            mirror
                .keys()
                .filter(|s| !truth.contains_key(*s))
                .map(|s| format!("{s}: in the mirror, unknown to Apple")),
        )
        .peekable();
    assert!(
        differences.peek().is_none(),
        "{kind}: the mirror differs from the truth: {:#?}",
        differences.take(10).collect::<Vec<_>>()
    );
    store.close().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_three_times_resumes_and_ends_equal_to_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("orchard.db").display());
    kill_a_syncing_server(&url, "SQLite").await;

    let Ok(admin_url) = std::env::var("ORCHARD_TEST_POSTGRES_URL") else {
        eprintln!("PostgreSQL: skipped (ORCHARD_TEST_POSTGRES_URL not set)");
        return;
    };
    let admin = sqlx::PgPool::connect(&admin_url).await.expect("PostgreSQL");
    let database = format!("orchard_sigkill_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE \"{database}\""))
        .execute(&admin)
        .await
        .unwrap();
    kill_a_syncing_server(
        &backend::store::with_database(&admin_url, &database),
        "PostgreSQL",
    )
    .await;
    sqlx::query(&format!("DROP DATABASE \"{database}\" WITH (FORCE)"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
}
