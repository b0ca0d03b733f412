//! The "Done when": a 10,000-device job against the simulator while the `orchard`
//! process is killed with SIGKILL 20 times at random moments, restarted each time on the same
//! SQLite data folder. The simulator lives in this test process and survives the kills; at
//! the end every serial must have been in exactly one activity and be assigned as intended.
//!
//! The kill moments mix three kinds (seeded; the seed is printed, `ORCHARD_SIGKILL_SEED`
//! replays it): at a random time, right after the database shows a chunk `sending` (before
//! Apple has it: the simulator delays every request), and right after the simulator has
//! accepted an activity (before the server could record it). The last two are the
//! reconciliation's cases.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backend::Store;
use backend::accounts::{self, AccountKind, AccountUrls, NewApiAccount};
use backend::audit::Actor;
use backend::config::DatabaseConfig;
use backend::jobs::{
    self, ChunkState, ItemFilter, ItemOutcome, JobAction, JobId, JobStatus, NewJob,
};
use backend::orgs::NewOrganization;
use backend::vault::{MasterKey, Vault};
use rand::{Rng, SeedableRng};
use serde_json::Value;
use simulator::{FaultConfig, RunningSimulator, Simulator};

const KILLS: usize = 20;
const DEVICES: usize = 10_000;
const POST_ROUTE: &str = "POST /v1/orgDeviceActivities";

fn start_server(dir: &Path, run: usize) -> Child {
    let log = std::fs::File::create(dir.join(format!("orchard-{run}.log"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_orchard"))
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "ORCHARD_DATABASE__URL",
            format!("sqlite://{}", dir.join("orchard.db").display()),
        )
        .env("ORCHARD_VAULT__KEY_FILE", dir.join("master.key"))
        .env("ORCHARD_SERVER__LISTEN", "127.0.0.1:0")
        .env("ORCHARD_DEMO__ENABLED", "off")
        .env("ORCHARD_MIRROR__SCHEDULE", "false")
        .env("ORCHARD_SITE__ROOT", dir.join("site"))
        .env("ORCHARD_LOG__FILTER", "warn,backend::jobs=info")
        .env("ORCHARD_BUDGET__READS_PER_MINUTE", "1000000")
        .env("ORCHARD_BUDGET__WRITES_PER_HOUR", "1000000")
        // Apple's 10 s of phases and 30 s of lag take 1.3 s in the simulator below.
        .env("ORCHARD_JOBS__LEASE_SECS", "2")
        .env("ORCHARD_JOBS__TICK_MS", "100")
        .env("ORCHARD_JOBS__POLL_FIRST_MS", "150")
        .env("ORCHARD_JOBS__POLL_MAX_MS", "500")
        .env("ORCHARD_JOBS__ASSIGNMENT_LAG_MS", "1200")
        .env("ORCHARD_JOBS__RECONCILE_AFTER_MS", "2500")
        .env("ORCHARD_JOBS__MAX_ATTEMPTS", "25")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start the orchard binary")
}

fn kill(child: &mut Child) {
    // `Child::kill` is SIGKILL on Unix.
    child.kill().unwrap();
    child.wait().unwrap();
}

fn posts_accepted(sim: &RunningSimulator) -> u64 {
    sim.stats()
        .requests
        .get(POST_ROUTE)
        .and_then(|by_status| by_status.get(&201))
        .copied()
        .unwrap_or(0)
}

async fn chunk_states(store: &Arc<dyn Store>, job: JobId) -> Vec<ChunkState> {
    store
        .job_chunks(job)
        .await
        .unwrap()
        .iter()
        .map(|c| c.state)
        .collect()
}

/// When each chunk's last POST was started (`sending` is persisted just before it).
async fn sends(store: &Arc<dyn Store>, job: JobId) -> Vec<Option<i64>> {
    store
        .job_chunks(job)
        .await
        .unwrap()
        .iter()
        .map(|c| c.sending_at_ms)
        .collect()
}

async fn devices_and_service(sim: &RunningSimulator) -> (String, Vec<String>) {
    let body = reqwest::get(format!("{}/_sim/truth", sim.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<Value> = body
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The emptiest MDM service.
    let service = lines[0]["servers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["serverType"] == "MDM")
        .min_by_key(|s| s["deviceCount"].as_u64())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let devices = lines[1..]
        .iter()
        .filter(|d| d["released"] != true && d["assignedServerId"] != service.as_str())
        .map(|d| d["serialNumber"].as_str().unwrap().to_owned())
        .take(DEVICES)
        .collect();
    (service, devices)
}

async fn assignment(sim: &RunningSimulator) -> std::collections::HashMap<String, String> {
    let body = reqwest::get(format!("{}/_sim/truth", sim.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    body.lines()
        .skip(1)
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|d| {
            Some((
                d["serialNumber"].as_str()?.to_owned(),
                d["assignedServerId"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10k_job_survives_20_sigkills_without_a_lost_or_duplicated_device() {
    let seed: u64 = std::env::var("ORCHARD_SIGKILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("SIGKILL test seed: {seed} (replay with ORCHARD_SIGKILL_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    // Every request waits 120 ms at "Apple", which keeps a POST in flight long enough to
    // be killed while `sending`.
    let sim = Simulator::builder()
        .seed(seed)
        .devices(12_000)
        .time_scale(30.0)
        .faults(FaultConfig {
            latency_ms: 120,
            ..FaultConfig::default()
        })
        .spawn()
        .await
        .unwrap();
    let (service, devices) = devices_and_service(&sim).await;
    assert_eq!(devices.len(), DEVICES);

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("site/pkg")).unwrap();
    let key = MasterKey::generate();
    std::fs::write(dir.path().join("master.key"), key.to_hex().as_bytes()).unwrap();
    let store = backend::store::connect(&DatabaseConfig {
        url: format!("sqlite://{}", dir.path().join("orchard.db").display()),
        max_connections: 4,
    })
    .await
    .unwrap();
    let vault = Vault::new(&key);
    let org = store
        .create_organization(&NewOrganization::parse("Killed").unwrap())
        .await
        .unwrap()
        .id;
    let creds = sim.credentials();
    let account = accounts::add_account(
        store.as_ref(),
        &vault,
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
    let actor = Actor::system();
    let job = jobs::create_job(
        store.as_ref(),
        &actor,
        NewJob {
            org,
            account,
            action: JobAction::Assign {
                service_id: service.clone(),
            },
            to_send: devices.clone(),
            skipped: Vec::new(),
            retry_of: None,
            chunk_size: 1000,
        },
    )
    .await
    .unwrap();
    jobs::confirm_job(store.as_ref(), &actor, org, job)
        .await
        .unwrap();

    let started = Instant::now();
    let mut kinds = [0usize; 3];
    let mut killed_while_sending = 0;
    let mut killed_after_accept = 0;
    for run in 0..KILLS {
        let mut child = start_server(dir.path(), run);
        // The first kills land in the sending window (a job left alone finishes in a few
        // seconds, so "any moment" kills first could let it end before the window is hit);
        // then any kind.
        let kind = if run < 6 {
            1 + run % 2
        } else {
            rng.gen_range(0..3)
        };
        kinds[kind] += 1;
        let patience = Instant::now() + Duration::from_secs(8);
        match kind {
            // Any moment.
            0 => tokio::time::sleep(Duration::from_millis(rng.gen_range(0..2500))).await,
            // Right after this process persisted a new `sending`: the POST has not reached
            // Apple yet (every request waits there).
            1 => {
                let before = sends(&store, job).await;
                while Instant::now() < patience && sends(&store, job).await == before {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                if Instant::now() < patience {
                    killed_while_sending += 1;
                }
            }
            // Right after Apple accepted an activity: the server has not recorded it yet.
            _ => {
                let before = posts_accepted(&sim);
                while Instant::now() < patience && posts_accepted(&sim) == before {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                if Instant::now() < patience {
                    killed_after_accept += 1;
                }
            }
        }
        kill(&mut child);
        let states = chunk_states(&store, job).await;
        let done = store.job(job).await.unwrap().status.is_finished();
        eprintln!(
            "kill {run:2} (kind {kind}) at {:5.1} s: chunks {:?}{}",
            started.elapsed().as_secs_f64(),
            states,
            if done { " (job already finished)" } else { "" }
        );
    }
    // The last start runs the job to its end.
    let mut child = start_server(dir.path(), KILLS);
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        let status = store.job(job).await.unwrap().status;
        if status.is_finished() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the job did not finish after the kills"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    kill(&mut child);
    eprintln!(
        "finished {status:?} after {:.1} s; kills by kind {kinds:?}: {killed_while_sending} right \
         after a new `sending`, {killed_after_accept} right after Apple accepted",
        started.elapsed().as_secs_f64()
    );
    assert!(
        killed_while_sending + killed_after_accept >= 4,
        "the kills missed the sending window"
    );
    assert_eq!(status, JobStatus::Completed);

    // Apple saw every serial in exactly one activity, and nothing else.
    let stats = sim.stats();
    let wrong: Vec<(&String, Option<&u64>)> = devices
        .iter()
        .map(|s| (s, stats.activities_per_serial.get(s)))
        .filter(|(_, n)| *n != Some(&1))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} serials not in exactly one activity, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert_eq!(stats.activities_per_serial.len(), DEVICES);
    // The final assignment is the intent.
    let assigned = assignment(&sim).await;
    let off: Vec<&String> = devices
        .iter()
        .filter(|s| assigned.get(*s) != Some(&service))
        .collect();
    assert!(off.is_empty(), "{} devices not on the service", off.len());
    // And Orchard reports every device as succeeded.
    let page = jobs::job_items(
        store.as_ref(),
        org,
        job,
        &ItemFilter {
            outcome: Some(ItemOutcome::Succeeded),
            after: None,
            limit: 1,
        },
    )
    .await
    .unwrap();
    assert_eq!(page.items.len(), 1);
    let counts = store.job(job).await.unwrap().counts;
    assert_eq!((counts.succeeded, counts.failed), (DEVICES as u64, 0));
    store.close().await;
}
