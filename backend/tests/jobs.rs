//! Bulk-assignment jobs on SQLite and PostgreSQL: the storage (one transaction per job,
//! conditional chunk moves, keyset pages, counts, cancel, leases) and the runner against the
//! simulator over real HTTP (a 10,000-device job, unknown serials, cancel, retry of failures,
//! Apple's maximum per activity, and the fault profile: 5xx, 429 with and without
//! Retry-After, connection resets).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backend::accounts::{ApiAccountId, Clients};
use backend::audit::{self, Actor, AuditFilter, AuditPage};
use backend::config::JobsConfig;
use backend::jobs::{
    self, ChunkState, ItemFilter, ItemOutcome, JobAction, JobError, JobId, JobRunner, JobStatus,
    NewJob,
};
use backend::mirror::index::DeviceIndex;
use backend::mirror::sync::{SyncCause, SyncEngine};
use backend::orgs::OrgId;
use backend::store::jobs::{ItemUpdate, NewJobRecord};
use backend::store::{LeaseKey, StoreError};
use backend::vault::{MasterKey, Vault};
use common::Ctx;
use serde_json::Value;
use simulator::{Behaviour, Budget, FaultConfig, RunningSimulator, Simulator};

both_backends!(
    a_job_is_written_whole_in_one_transaction,
    chunk_moves_are_conditional_and_persist,
    items_page_by_serial_and_count_per_outcome,
    jobs_list_newest_first_in_pages,
    cancel_skips_unsent_chunks_and_waits_for_those_in_flight,
    a_job_lease_has_one_holder_across_instances,
    a_10k_assign_job_completes_and_reports_every_serial,
    cancel_stops_chunks_not_yet_submitted,
    retry_failed_starts_a_linked_job_with_only_the_failures,
    a_chunk_above_apples_maximum_fails_with_apples_message,
    under_faults_nothing_is_lost_or_sent_twice_and_retry_after_holds,
    the_post_budget_holds_across_a_restart,
    a_revoked_account_ends_its_jobs_with_reasons,
    retries_are_listed_with_the_job_they_retry,
    unassign_and_migration_jobs_reach_apples_state,
    a_devices_history_lists_its_jobs_newest_first,
);

// ----- harness -----

/// An organization connected to a simulator through one API account.
struct Setup {
    sim: RunningSimulator,
    org: OrgId,
    account: ApiAccountId,
    clients: Arc<Clients>,
    index: Arc<DeviceIndex>,
    vault: Arc<Vault>,
}

/// Apple time runs this much faster in the simulator.
const TIME_SCALE: f64 = 30.0;

async fn setup(ctx: &Ctx, sim: RunningSimulator) -> Setup {
    let (org, account, vault) = common::connect_simulator(ctx, &sim, "Jobs").await;
    // The simulator sets the pace (and its faults the 429s), not Orchard's budget.
    let clients = Clients::with_budget_config(ctx.store.clone(), vault.clone(), free_budget());
    Setup {
        sim,
        org,
        account,
        clients,
        index: Arc::new(DeviceIndex::new()),
        vault,
    }
}

/// A budget that never holds a request back.
fn free_budget() -> apple::BudgetConfig {
    apple::BudgetConfig {
        reads: apple::Rate {
            count: 100_000,
            per: Duration::from_secs(1),
        },
        writes: apple::Rate::per_hour(100_000),
        max_in_flight: 4,
    }
}

/// A runner of its own process: a fresh client cache and budget (`writes` POSTs allowed).
fn process(ctx: &Ctx, s: &Setup, writes: apple::Rate) -> (Arc<JobRunner>, Arc<Clients>) {
    let budget = apple::BudgetConfig {
        writes,
        ..free_budget()
    };
    let clients = Clients::with_budget_config(ctx.store.clone(), s.vault.clone(), budget);
    let runner = JobRunner::new(ctx.store.clone(), clients.clone(), s.index.clone(), fast());
    (runner, clients)
}

/// Waits (at most 30 s) until `done` holds for the job's chunks.
async fn until_chunks(ctx: &Ctx, job: JobId, what: &str, done: impl Fn(&[jobs::Chunk]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done(&ctx.store.job_chunks(job).await.unwrap()) {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn simulator(devices: usize, faults: FaultConfig) -> RunningSimulator {
    Simulator::builder()
        .seed(6)
        .devices(devices)
        .time_scale(TIME_SCALE)
        .faults(faults)
        .spawn()
        .await
        .unwrap()
}

/// Runner settings for the time-scaled simulator: Apple's 10 s of phases and 30 s of lag
/// take about 1.3 s here; reconciliation waits a little more than that.
fn fast() -> JobsConfig {
    JobsConfig {
        lease_secs: 2,
        tick_ms: 100,
        poll_first_ms: 150,
        poll_max_ms: 600,
        assignment_lag_ms: 1_200,
        reconcile_after_ms: 2_500,
        max_attempts: 10,
        rate_limit_backoff_ms: 300,
        ..JobsConfig::default()
    }
}

fn runner(ctx: &Ctx, s: &Setup, config: JobsConfig) -> Arc<JobRunner> {
    JobRunner::new(
        ctx.store.clone(),
        s.clients.clone(),
        s.index.clone(),
        config,
    )
}

/// What the simulator knows: the MDM services (emptiest first) and each present device's
/// service.
struct Truth {
    services: Vec<String>,
    device_service: BTreeMap<String, Option<String>>,
}

async fn truth(sim: &RunningSimulator) -> Truth {
    let body = reqwest::get(format!("{}/_sim/truth", sim.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut services = Vec::new();
    let mut device_service = BTreeMap::new();
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap();
        if v["kind"] == "summary" {
            // MDM services, the emptiest first.
            let mut mdm: Vec<(u64, String)> = v["servers"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["serverType"] == "MDM")
                .map(|s| {
                    let count = s["deviceCount"].as_u64().unwrap_or(0);
                    (count, s["id"].as_str().unwrap().to_owned())
                })
                .collect();
            mdm.sort();
            services = mdm.into_iter().map(|(_, id)| id).collect();
        } else if v["released"] != true {
            device_service.insert(
                v["serialNumber"].as_str().unwrap().to_owned(),
                v["assignedServerId"].as_str().map(str::to_owned),
            );
        }
    }
    Truth {
        services,
        device_service,
    }
}

/// A service and `n` devices not on it.
async fn target_and_devices(sim: &RunningSimulator, n: usize) -> (String, Vec<String>) {
    let truth = truth(sim).await;
    let service = truth.services[0].clone();
    let devices: Vec<String> = truth
        .device_service
        .iter()
        .filter(|(_, s)| s.as_deref() != Some(service.as_str()))
        .map(|(serial, _)| serial.clone())
        .take(n)
        .collect();
    assert_eq!(devices.len(), n, "the simulated organization is too small");
    (service, devices)
}

fn user() -> Actor {
    Actor {
        user_id: Some(uuid::Uuid::new_v4()),
        client_addr: None,
    }
}

async fn create(
    ctx: &Ctx,
    s: &Setup,
    action: JobAction,
    to_send: Vec<String>,
    chunk_size: u32,
) -> JobId {
    jobs::create_job(
        ctx.store.as_ref(),
        &user(),
        NewJob {
            org: s.org,
            account: s.account,
            action,
            to_send,
            skipped: vec![("BAD SERIAL".into(), "malformed".into())],
            retry_of: None,
            chunk_size,
        },
    )
    .await
    .unwrap()
}

/// Runs the job in this process until it finishes (at most `limit`).
async fn run_to_end(runner: &Arc<JobRunner>, job: JobId, limit: Duration) -> JobStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = tokio::time::timeout(limit, runner.work(job))
            .await
            .expect("the job did not finish in time")
            .unwrap()
        {
            return status;
        }
        assert!(started.elapsed() < limit, "the job's lease never came free");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn all_items(ctx: &Ctx, s: &Setup, job: JobId) -> BTreeMap<String, jobs::JobItem> {
    let mut out = BTreeMap::new();
    let mut filter = ItemFilter {
        limit: 777,
        ..ItemFilter::default()
    };
    loop {
        let page = jobs::job_items(ctx.store.as_ref(), s.org, job, &filter)
            .await
            .unwrap();
        for item in page.items {
            assert!(
                out.insert(item.serial.clone(), item).is_none(),
                "paged twice"
            );
        }
        match page.next {
            Some(next) => filter.after = Some(next),
            None => return out,
        }
    }
}

/// Every serial in exactly one activity, and none other.
fn assert_each_sent_once(sim: &RunningSimulator, serials: &[String]) {
    let stats = sim.stats();
    let mut problems = Vec::new();
    for serial in serials {
        match stats.activities_per_serial.get(serial) {
            Some(1) => {}
            other => problems.push(format!("{serial}: {other:?}")),
        }
    }
    assert_eq!(
        stats.activities_per_serial.len(),
        serials.len(),
        "activities included other serials"
    );
    assert!(
        problems.is_empty(),
        "{} serials not sent exactly once, e.g. {:?}",
        problems.len(),
        &problems[..problems.len().min(5)]
    );
}

async fn assert_assigned(sim: &RunningSimulator, serials: &[String], service: &str) {
    let truth = truth(sim).await;
    let wrong: Vec<&String> = serials
        .iter()
        .filter(|s| truth.device_service.get(*s).cloned().flatten().as_deref() != Some(service))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} devices not on the target, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
}

fn serials(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:06}")).collect()
}

/// A job written straight through the store (no account checks), for the storage tests.
async fn stored_job(ctx: &Ctx, to_send: &[String], chunk_size: u32) -> (OrgId, JobId) {
    let sim = simulator(10, FaultConfig::default()).await;
    let s = setup(ctx, sim).await;
    let action = JobAction::Assign {
        service_id: "S1".into(),
    };
    let skipped = vec![("SKIP1".to_owned(), "already there".to_owned())];
    let id = ctx
        .store
        .create_job(&NewJobRecord {
            org: s.org,
            account: s.account,
            action: &action,
            created_by: None,
            retry_of: None,
            chunk_size,
            to_send,
            skipped: &skipped,
            now: 1_700_000_000,
        })
        .await
        .unwrap();
    (s.org, id)
}

// ----- storage -----

async fn a_job_is_written_whole_in_one_transaction(ctx: &Ctx) {
    let to_send = serials("A", 2500);
    let (org, id) = stored_job(ctx, &to_send, 1000).await;
    let job = ctx.store.job(id).await.unwrap();
    assert_eq!(job.org, org);
    assert_eq!(job.status, JobStatus::Planned);
    assert_eq!(job.confirmed_at, None);
    assert_eq!((job.chunk_size, job.chunks), (1000, 3));
    assert_eq!(
        (
            job.counts.devices,
            job.counts.pending,
            job.counts.skipped,
            job.counts.done()
        ),
        (2501, 2500, 1, 1)
    );
    let chunks = ctx.store.job_chunks(id).await.unwrap();
    let sizes: Vec<u32> = chunks.iter().map(|c| c.devices).collect();
    assert_eq!(sizes, [1000, 1000, 500]);
    assert!(chunks.iter().all(|c| c.state == ChunkState::Planned));
    let last = ctx.store.chunk_items(id, 2).await.unwrap();
    assert_eq!(last.len(), 500);
    assert_eq!(last[0].serial, "A002000");

    // A serial twice: the insert fails and nothing of the job remains.
    let mut dup = serials("B", 1500);
    dup.push("B000007".into());
    let action = JobAction::CancelMigration;
    let err = ctx
        .store
        .create_job(&NewJobRecord {
            org,
            account: job.account,
            action: &action,
            created_by: None,
            retry_of: None,
            chunk_size: 1000,
            to_send: &dup,
            skipped: &[],
            now: 1,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    let listed = ctx.store.list_jobs(org, None, 10).await.unwrap();
    assert_eq!(listed.len(), 1, "the failed job left rows behind");
    assert!(ctx.store.job(JobId(id.0 + 1)).await.is_err());
}

async fn chunk_moves_are_conditional_and_persist(ctx: &Ctx) {
    let to_send = serials("C", 10);
    let (_, id) = stored_job(ctx, &to_send, 4).await;
    let chunk = ctx.store.job_chunks(id).await.unwrap().remove(0);
    let mut sending = chunk.clone();
    sending.state = ChunkState::Sending;
    sending.attempts = 1;
    sending.sending_at_ms = Some(1_700_000_000_123);
    sending.next_at_ms = Some(1_700_000_900_000);
    assert!(
        ctx.store
            .update_chunk(&sending, ChunkState::Planned, &[], 1)
            .await
            .unwrap()
    );
    // A second mover that read `planned` loses.
    assert!(
        !ctx.store
            .update_chunk(&sending, ChunkState::Planned, &[], 1)
            .await
            .unwrap()
    );
    let mut done = sending.clone();
    done.state = ChunkState::Completed;
    done.activity_id = Some("act-1".into());
    done.apple_status = Some("COMPLETED".into());
    done.apple_sub_status = Some("COMPLETED_WITH_FAILURE".into());
    done.verify_at_ms = Some(5);
    done.note = Some("a note".into());
    let updates = vec![
        ItemUpdate {
            serial: "C000000".into(),
            outcome: ItemOutcome::Succeeded,
            reason: None,
            verified: true,
            activity_id: Some("act-1".into()),
        },
        ItemUpdate {
            serial: "C000001".into(),
            outcome: ItemOutcome::Failed,
            reason: Some("Device not found in organization".into()),
            verified: false,
            activity_id: Some("act-1".into()),
        },
    ];
    assert!(
        ctx.store
            .update_chunk(&done, ChunkState::Sending, &updates, 2)
            .await
            .unwrap()
    );
    // Read back through a new connection, as after a restart.
    let store = ctx.reconnect().await;
    let stored = store.job_chunks(id).await.unwrap().remove(0);
    assert_eq!(stored, done);
    let items = store.chunk_items(id, 0).await.unwrap();
    assert_eq!(items[0].outcome, ItemOutcome::Succeeded);
    assert!(items[0].verified);
    assert_eq!(
        items[1].reason.as_deref(),
        Some("Device not found in organization")
    );
    assert_eq!(items[1].activity_id.as_deref(), Some("act-1"));
    let counts = store.job(id).await.unwrap().counts;
    assert_eq!(
        (
            counts.pending,
            counts.succeeded,
            counts.failed,
            counts.skipped
        ),
        (8, 1, 1, 1)
    );
    store.close().await;
}

async fn items_page_by_serial_and_count_per_outcome(ctx: &Ctx) {
    let mut to_send = serials("D", 1200);
    to_send.reverse();
    let (org, id) = stored_job(ctx, &to_send, 500).await;
    let chunk = ctx.store.job_chunks(id).await.unwrap().remove(1);
    let mut done = chunk.clone();
    done.state = ChunkState::Failed;
    let failed: Vec<ItemUpdate> = ctx
        .store
        .chunk_items(id, 1)
        .await
        .unwrap()
        .into_iter()
        .map(|i| ItemUpdate {
            serial: i.serial,
            outcome: ItemOutcome::Failed,
            reason: Some("refused".into()),
            verified: false,
            activity_id: None,
        })
        .collect();
    assert!(
        ctx.store
            .update_chunk(&done, ChunkState::Planned, &failed, 3)
            .await
            .unwrap()
    );
    // All items, in pages of 333, bytewise by serial, each once.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = ctx
            .store
            .job_items(id, None, after.as_deref(), 333)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|i| i.serial.clone());
        seen.extend(page.into_iter().map(|i| i.serial));
    }
    let mut expected: Vec<String> = to_send.clone();
    expected.push("SKIP1".into());
    expected.sort();
    assert_eq!(seen, expected);
    // One outcome only, through the public API's pages.
    let mut failed_seen = BTreeSet::new();
    let mut filter = ItemFilter {
        outcome: Some(ItemOutcome::Failed),
        after: None,
        limit: 200,
    };
    loop {
        let page = jobs::job_items(ctx.store.as_ref(), org, id, &filter)
            .await
            .unwrap();
        assert!(page.items.iter().all(|i| i.outcome == ItemOutcome::Failed));
        failed_seen.extend(page.items.into_iter().map(|i| i.serial));
        match page.next {
            Some(next) => filter.after = Some(next),
            None => break,
        }
    }
    assert_eq!(failed_seen.len(), 500);
    let counts = ctx.store.job(id).await.unwrap().counts;
    assert_eq!(
        (
            counts.devices,
            counts.pending,
            counts.failed,
            counts.skipped
        ),
        (1201, 700, 500, 1)
    );
    // Another organization sees nothing.
    let other = OrgId(uuid::Uuid::new_v4());
    assert!(matches!(
        jobs::job_items(ctx.store.as_ref(), other, id, &filter).await,
        Err(JobError::NotFound)
    ));
}

async fn jobs_list_newest_first_in_pages(ctx: &Ctx) {
    let (org, first) = stored_job(ctx, &serials("E", 3), 10).await;
    let account = ctx.store.job(first).await.unwrap().account;
    let action = JobAction::CancelMigration;
    let mut ids = vec![first];
    for n in 0..4 {
        let to_send = serials(&format!("F{n}"), 2);
        ids.push(
            ctx.store
                .create_job(&NewJobRecord {
                    org,
                    account,
                    action: &action,
                    created_by: None,
                    retry_of: Some(first),
                    chunk_size: 10,
                    to_send: &to_send,
                    skipped: &[],
                    now: 1_700_000_100 + n,
                })
                .await
                .unwrap(),
        );
    }
    ids.reverse();
    let page1 = jobs::list_jobs(ctx.store.as_ref(), org, None, 3)
        .await
        .unwrap();
    let page2 = jobs::list_jobs(ctx.store.as_ref(), org, page1.last().map(|j| j.id), 3)
        .await
        .unwrap();
    let listed: Vec<JobId> = page1.iter().chain(&page2).map(|j| j.id).collect();
    assert_eq!(listed, ids);
    assert_eq!(page1[0].action, action);
    assert_eq!(page1[0].retry_of, Some(first));
}

async fn cancel_skips_unsent_chunks_and_waits_for_those_in_flight(ctx: &Ctx) {
    let (org, id) = stored_job(ctx, &serials("G", 30), 10).await;
    // Not confirmed: cancelled at once, everything skipped.
    assert_eq!(
        ctx.store.cancel_job(id, 9).await.unwrap(),
        Some(JobStatus::Cancelled)
    );
    let job = ctx.store.job(id).await.unwrap();
    assert_eq!((job.counts.skipped, job.counts.pending), (31, 0));
    assert_eq!(ctx.store.cancel_job(id, 10).await.unwrap(), None);

    // Confirmed with a chunk at Apple: cancelling until it finishes.
    let account = job.account;
    let action = JobAction::CancelMigration;
    let to_send = serials("H", 30);
    let id = ctx
        .store
        .create_job(&NewJobRecord {
            org,
            account,
            action: &action,
            created_by: None,
            retry_of: None,
            chunk_size: 10,
            to_send: &to_send,
            skipped: &[],
            now: 1,
        })
        .await
        .unwrap();
    assert!(ctx.store.confirm_job(id, None, 2).await.unwrap());
    assert!(!ctx.store.confirm_job(id, None, 2).await.unwrap(), "twice");
    assert_eq!(ctx.store.open_jobs().await.unwrap(), [id]);
    let mut sending = ctx.store.job_chunks(id).await.unwrap().remove(0);
    sending.state = ChunkState::Sending;
    assert!(
        ctx.store
            .update_chunk(&sending, ChunkState::Planned, &[], 3)
            .await
            .unwrap()
    );
    assert_eq!(
        ctx.store.cancel_job(id, 4).await.unwrap(),
        Some(JobStatus::Cancelling)
    );
    let states: Vec<ChunkState> = ctx
        .store
        .job_chunks(id)
        .await
        .unwrap()
        .iter()
        .map(|c| c.state)
        .collect();
    assert_eq!(
        states,
        [
            ChunkState::Sending,
            ChunkState::Cancelled,
            ChunkState::Cancelled
        ]
    );
    let items = ctx.store.chunk_items(id, 1).await.unwrap();
    assert!(
        items
            .iter()
            .all(|i| i.outcome == ItemOutcome::Skipped && i.reason.as_deref() == Some("cancelled"))
    );
    assert_eq!(ctx.store.job(id).await.unwrap().counts.pending, 10);
    // The runner's status updates never undo a cancel.
    assert!(
        !ctx.store
            .set_job_status(id, JobStatus::Running, None, 5)
            .await
            .unwrap()
    );
    assert!(
        ctx.store
            .finish_job(id, JobStatus::Cancelled, 6)
            .await
            .unwrap()
    );
    assert!(ctx.store.open_jobs().await.unwrap().is_empty());
}

async fn a_job_lease_has_one_holder_across_instances(ctx: &Ctx) {
    let other = ctx.reconnect().await;
    let key = LeaseKey::Job(JobId(42));
    assert!(ctx.store.acquire_lease(key, "a", 100, 160).await.unwrap());
    assert!(
        ctx.store.acquire_lease(key, "a", 110, 170).await.unwrap(),
        "renewal"
    );
    assert!(!other.acquire_lease(key, "b", 120, 180).await.unwrap());
    // Another job's lease is independent.
    assert!(
        other
            .acquire_lease(LeaseKey::Job(JobId(43)), "b", 120, 180)
            .await
            .unwrap()
    );
    ctx.store.release_lease(key, "a").await.unwrap();
    assert!(other.acquire_lease(key, "b", 130, 190).await.unwrap());
    other.close().await;
}

// ----- the runner against the simulator -----

async fn a_10k_assign_job_completes_and_reports_every_serial(ctx: &Ctx) {
    let sim = simulator(12_000, FaultConfig::default()).await;
    let s = setup(ctx, sim).await;
    // The mirror first, so the runner's verified assignments show in it.
    SyncEngine::new(ctx.store.clone(), s.clients.clone(), s.index.clone())
        .sync_account(s.org, s.account, SyncCause::Manual)
        .await
        .unwrap();
    let (service, mut devices) = target_and_devices(&s.sim, 9_998).await;
    let unknown = ["ZZNOTINORG01".to_owned(), "ZZNOTINORG02".to_owned()];
    devices.extend(unknown.iter().cloned());
    let action = JobAction::Assign {
        service_id: service.clone(),
    };
    let id = create(ctx, &s, action, devices.clone(), 1000).await;
    assert_eq!(ctx.store.job(id).await.unwrap().chunks, 10);
    let runner = runner(ctx, &s, fast());
    let started = Instant::now();
    let job = runner.confirm(&user(), s.org, id).await.unwrap();
    assert!(job.confirmed_at.is_some());
    let status = run_to_end(&runner, id, Duration::from_secs(120)).await;
    eprintln!("10k job: {:?} in {:?}", status, started.elapsed());
    assert_eq!(status, JobStatus::CompletedWithFailures);

    let items = all_items(ctx, &s, id).await;
    assert_eq!(items.len(), 10_001);
    for serial in &devices[..9_998] {
        let item = &items[serial];
        assert_eq!(item.outcome, ItemOutcome::Succeeded, "{serial}: {item:?}");
        assert!(item.verified, "{serial} not verified");
        assert!(item.activity_id.is_some());
    }
    for serial in &unknown {
        let item = &items[serial];
        assert_eq!(
            item.outcome,
            ItemOutcome::Failed,
            "{serial} must not succeed"
        );
        assert_eq!(
            item.reason.as_deref(),
            Some("Device not found in organization")
        );
    }
    assert_eq!(items["BAD SERIAL"].outcome, ItemOutcome::Skipped);
    let job = ctx.store.job(id).await.unwrap();
    assert_eq!(
        (job.counts.succeeded, job.counts.failed, job.counts.skipped),
        (9_998, 2, 1)
    );
    let progress = jobs::job_progress(ctx.store.as_ref(), s.org, id)
        .await
        .unwrap();
    assert_eq!(progress.chunks_completed, 10);
    assert_eq!(progress.devices_done, 10_001);
    assert_eq!(progress.apple_status.as_deref(), Some("COMPLETED"));

    assert_each_sent_once(&s.sim, &devices);
    assert_assigned(&s.sim, &devices[..9_998], &service).await;
    // The mirror and its search index know the new assignment.
    let rows = ctx
        .store
        .devices_by_serial(s.org, &devices[..9_998])
        .await
        .unwrap();
    assert_eq!(rows.len(), 9_998);
    assert!(
        rows.iter()
            .all(|r| r.service_id.as_deref() == Some(service.as_str())
                && r.status.as_deref() == Some("ASSIGNED"))
    );
    // Created, confirmed and finished are in the audit log.
    let entries = audit::list(
        ctx.store.as_ref(),
        &AuditFilter {
            subject: Some(format!("job:{id}")),
            ..AuditFilter::default()
        },
        AuditPage {
            before: None,
            limit: 10,
        },
    )
    .await
    .unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["job.finish", "job.confirm", "job.create"]);
    assert!(entries[0].details.contains("completed_with_failures"));
}

async fn cancel_stops_chunks_not_yet_submitted(ctx: &Ctx) {
    let sim = simulator(2_000, FaultConfig::default()).await;
    let s = setup(ctx, sim).await;
    let (service, devices) = target_and_devices(&s.sim, 500).await;
    let id = create(
        ctx,
        &s,
        JobAction::Assign {
            service_id: service.clone(),
        },
        devices.clone(),
        100,
    )
    .await;
    // One POST an hour: the first chunk goes, the others wait for the budget.
    let slow = Clients::with_budget_config(
        ctx.store.clone(),
        Arc::new(Vault::new(
            &MasterKey::from_hex(&"0123456789abcdef".repeat(4)).unwrap(),
        )),
        apple::BudgetConfig {
            writes: apple::Rate::per_hour(1),
            ..apple::BudgetConfig::default()
        },
    );
    let runner = JobRunner::new(ctx.store.clone(), slow, s.index.clone(), fast());
    runner.confirm(&user(), s.org, id).await.unwrap();
    let work = tokio::spawn({
        let runner = runner.clone();
        async move { runner.work(id).await }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let p = jobs::job_progress(ctx.store.as_ref(), s.org, id)
            .await
            .unwrap();
        if p.chunks_submitted + p.chunks_completed >= 1 && p.waiting_for_budget {
            assert!(p.next_slot_in_secs.unwrap() > 3000, "{p:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never waited for the budget: {p:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        runner.cancel(&user(), s.org, id).await.unwrap(),
        JobStatus::Cancelling
    );
    let status = tokio::time::timeout(Duration::from_secs(30), work)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(status, Some(JobStatus::Cancelled));
    let chunks = ctx.store.job_chunks(id).await.unwrap();
    assert_eq!(chunks[0].state, ChunkState::Completed);
    assert!(chunks[1..].iter().all(|c| c.state == ChunkState::Cancelled));
    let items = all_items(ctx, &s, id).await;
    for (i, serial) in devices.iter().enumerate() {
        let expected = if i < 100 {
            ItemOutcome::Succeeded
        } else {
            ItemOutcome::Skipped
        };
        assert_eq!(items[serial].outcome, expected, "{serial}");
    }
    assert_each_sent_once(&s.sim, &devices[..100]);
}

async fn retry_failed_starts_a_linked_job_with_only_the_failures(ctx: &Ctx) {
    let sim = simulator(1_000, FaultConfig::default()).await;
    let s = setup(ctx, sim).await;
    let (service, mut devices) = target_and_devices(&s.sim, 40).await;
    devices.extend([
        "ZZGONE1".to_owned(),
        "ZZGONE2".to_owned(),
        "ZZGONE3".to_owned(),
    ]);
    let action = JobAction::Assign {
        service_id: service,
    };
    let id = create(ctx, &s, action.clone(), devices, 20).await;
    let runner = runner(ctx, &s, fast());
    let actor = user();
    assert!(matches!(
        jobs::retry_failed(ctx.store.as_ref(), &actor, s.org, id).await,
        Err(JobError::WrongState { .. })
    ));
    runner.confirm(&actor, s.org, id).await.unwrap();
    assert_eq!(
        run_to_end(&runner, id, Duration::from_secs(60)).await,
        JobStatus::CompletedWithFailures
    );
    let retry = jobs::retry_failed(ctx.store.as_ref(), &actor, s.org, id)
        .await
        .unwrap();
    let job = jobs::get_job(ctx.store.as_ref(), s.org, retry)
        .await
        .unwrap();
    assert_eq!(job.retry_of, Some(id));
    assert_eq!(job.action, action);
    assert_eq!(job.created_by, actor.user_id);
    assert_eq!(job.status, JobStatus::Planned);
    let items: Vec<String> = all_items(ctx, &s, retry).await.into_keys().collect();
    assert_eq!(items, ["ZZGONE1", "ZZGONE2", "ZZGONE3"]);
    // And it runs like any job: they fail again, with Apple's reason.
    runner.confirm(&actor, s.org, retry).await.unwrap();
    assert_eq!(
        run_to_end(&runner, retry, Duration::from_secs(60)).await,
        JobStatus::Failed
    );
}

async fn a_chunk_above_apples_maximum_fails_with_apples_message(ctx: &Ctx) {
    let err = jobs::check_chunk_size(1001).unwrap_err();
    assert!(err.to_string().contains("maximum of 1000"), "{err}");
    let config = backend::Config::from_sources(
        None,
        [("ORCHARD_JOBS__CHUNK_SIZE".to_owned(), "5000".to_owned())],
    )
    .unwrap_err();
    assert!(config.to_string().contains("jobs.chunk_size"), "{config}");

    // A simulator (Apple) that takes fewer devices than the configured chunk.
    let sim = Simulator::builder()
        .seed(6)
        .devices(500)
        .time_scale(TIME_SCALE)
        .behaviour(Behaviour {
            max_devices_per_activity: 50,
            ..Behaviour::default()
        })
        .spawn()
        .await
        .unwrap();
    let s = setup(ctx, sim).await;
    let (service, devices) = target_and_devices(&s.sim, 80).await;
    let id = create(
        ctx,
        &s,
        JobAction::Assign {
            service_id: service,
        },
        devices.clone(),
        60,
    )
    .await;
    let runner = runner(ctx, &s, fast());
    runner.confirm(&user(), s.org, id).await.unwrap();
    assert_eq!(
        run_to_end(&runner, id, Duration::from_secs(60)).await,
        JobStatus::CompletedWithFailures
    );
    let items = all_items(ctx, &s, id).await;
    let first = &items[&devices[0]];
    assert_eq!(first.outcome, ItemOutcome::Failed);
    assert!(
        first
            .reason
            .as_deref()
            .unwrap()
            .contains("At most 50 devices"),
        "{first:?}"
    );
    assert_eq!(items[&devices[79]].outcome, ItemOutcome::Succeeded);
}

/// 5xx, 429 with and then without Retry-After, and connection resets on every `/v1` call.
async fn under_faults_nothing_is_lost_or_sent_twice_and_retry_after_holds(ctx: &Ctx) {
    let faults = FaultConfig {
        post_budget: Some(Budget {
            requests: 3,
            window_secs: 60.0,
        }),
        error_rate: 0.15,
        reset_rate: 0.15,
        ..FaultConfig::default()
    };
    let sim = simulator(12_000, faults.clone()).await;
    let s = setup(ctx, sim).await;
    let (service, devices) = target_and_devices(&s.sim, 10_000).await;
    let id = create(
        ctx,
        &s,
        JobAction::Assign {
            service_id: service.clone(),
        },
        devices.clone(),
        1000,
    )
    .await;
    let runner = runner(ctx, &s, fast());
    runner.confirm(&user(), s.org, id).await.unwrap();
    let started = Instant::now();
    let work = tokio::spawn({
        let runner = runner.clone();
        async move { run_to_end(&runner, id, Duration::from_secs(150)).await }
    });
    // Halfway, Apple stops sending Retry-After.
    let deadline = Instant::now() + Duration::from_secs(60);
    while ctx.store.job(id).await.unwrap().counts.pending > 5_000 {
        assert!(Instant::now() < deadline, "no progress under faults");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.sim.set_faults(FaultConfig {
        omit_retry_after: true,
        ..faults
    });
    let status = work.await.unwrap();
    let stats = s.sim.stats();
    eprintln!(
        "faulty 10k job: {status:?} in {:?}; 429s {}, 5xx {}, resets {}, undercuts {}",
        started.elapsed(),
        stats.rate_limited,
        stats.injected_errors,
        stats.connections_reset,
        stats.retry_after_undercut
    );
    assert_eq!(status, JobStatus::Completed);
    assert!(stats.rate_limited > 0 && stats.injected_errors > 0 && stats.connections_reset > 0);
    assert_eq!(stats.retry_after_undercut, 0, "Retry-After undercut");
    assert_each_sent_once(&s.sim, &devices);
    assert_assigned(&s.sim, &devices, &service).await;
    let items = all_items(ctx, &s, id).await;
    let outcomes: HashMap<ItemOutcome, usize> = items.values().fold(HashMap::new(), |mut m, i| {
        *m.entry(i.outcome).or_default() += 1;
        m
    });
    assert_eq!(outcomes.get(&ItemOutcome::Succeeded), Some(&10_000));
    let chunks = ctx.store.job_chunks(id).await.unwrap();
    let reconciled = chunks
        .iter()
        .filter(|c| {
            c.note
                .as_deref()
                .is_some_and(|n| n.starts_with("reconciled"))
        })
        .count();
    eprintln!("chunks reconciled after an unknown outcome: {reconciled}");
    assert!(
        reconciled > 0,
        "no POST went unanswered: the faults did not reach the POSTs"
    );
}

/// Three POSTs per 4 s: a restart (a new process with a full budget of its own) sends the
/// fourth chunk only once the first has left the window, from the POSTs recorded in the
/// database.
async fn the_post_budget_holds_across_a_restart(ctx: &Ctx) {
    let sim = simulator(200, FaultConfig::default()).await;
    let s = setup(ctx, sim).await;
    let (service, devices) = target_and_devices(&s.sim, 50).await;
    let action = JobAction::Assign {
        service_id: service.clone(),
    };
    let id = create(ctx, &s, action, devices.clone(), 10).await;
    let writes = apple::Rate {
        count: 3,
        per: Duration::from_secs(4),
    };
    let (first, _) = process(ctx, &s, writes);
    first.confirm(&user(), s.org, id).await.unwrap();
    let work = tokio::spawn({
        let first = first.clone();
        async move { first.work(id).await }
    });
    // Three chunks are out and the fourth waits for the budget: the process dies.
    until_chunks(ctx, id, "three chunks were sent", |chunks| {
        chunks
            .iter()
            .filter(|c| matches!(c.state, ChunkState::Submitted | ChunkState::Completed))
            .count()
            == 3
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while ctx.store.job(id).await.unwrap().status != JobStatus::Waiting {
        assert!(Instant::now() < deadline, "the fourth chunk never waited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    work.abort();
    let _ = work.await;

    let (second, _) = process(ctx, &s, writes);
    assert_eq!(
        run_to_end(&second, id, Duration::from_secs(60)).await,
        JobStatus::Completed
    );
    let mut sent: Vec<i64> = ctx
        .store
        .job_chunks(id)
        .await
        .unwrap()
        .iter()
        .map(|c| c.sending_at_ms.expect("every chunk was sent"))
        .collect();
    sent.sort_unstable();
    assert_eq!(sent.len(), 5);
    for four in sent.windows(4) {
        assert!(
            four[3] - four[0] >= 4_000,
            "four POSTs within 4 s across the restart: {sent:?}"
        );
    }
    assert_each_sent_once(&s.sim, &devices);
    assert_assigned(&s.sim, &devices, &service).await;
}

/// Revoking the account ends the job being worked (its sent chunk keeps Apple's outcome, the
/// others fail as not sent) and a job picked up afterwards, instead of retrying forever.
async fn a_revoked_account_ends_its_jobs_with_reasons(ctx: &Ctx) {
    let sim = simulator(200, FaultConfig::default()).await;
    let s = setup(ctx, sim).await;
    let (service, devices) = target_and_devices(&s.sim, 40).await;
    let action = JobAction::Assign {
        service_id: service.clone(),
    };
    let running = create(ctx, &s, action.clone(), devices[..30].to_vec(), 10).await;
    let later = create(ctx, &s, action, devices[30..].to_vec(), 10).await;
    // One POST a minute: the first chunk goes, the others wait.
    let (runner, clients) = process(ctx, &s, apple::Rate::per_minute(1));
    runner.confirm(&user(), s.org, running).await.unwrap();
    runner.confirm(&user(), s.org, later).await.unwrap();
    let work = tokio::spawn({
        let runner = runner.clone();
        async move { runner.work(running).await }
    });
    until_chunks(ctx, running, "the first chunk was verified", |chunks| {
        chunks[0].state == ChunkState::Completed && chunks[0].verify_at_ms.is_none()
    })
    .await;
    backend::accounts::revoke(ctx.store.as_ref(), &clients, &user(), s.account)
        .await
        .unwrap();

    let status = tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .expect("the job went on after the revocation")
        .unwrap()
        .unwrap();
    assert_eq!(status, Some(JobStatus::CompletedWithFailures));
    let items = all_items(ctx, &s, running).await;
    for serial in &devices[..10] {
        assert_eq!(items[serial].outcome, ItemOutcome::Succeeded, "{serial}");
    }
    for serial in &devices[10..30] {
        assert_eq!(items[serial].outcome, ItemOutcome::Failed, "{serial}");
        assert_eq!(
            items[serial].reason.as_deref(),
            Some(jobs::runner::REVOKED_NOT_SENT)
        );
    }
    assert_eq!(s.sim.stats().activities_per_serial.len(), 10);

    assert_eq!(
        run_to_end(&runner, later, Duration::from_secs(10)).await,
        JobStatus::Failed
    );
    let job = ctx.store.job(later).await.unwrap();
    assert_eq!((job.counts.failed, job.counts.pending), (10, 0));
    assert_eq!(
        s.sim.stats().activities_per_serial.len(),
        10,
        "nothing more sent"
    );
}

/// A job's retries, oldest first, and none for a job that was not retried.
async fn retries_are_listed_with_the_job_they_retry(ctx: &Ctx) {
    let sim = simulator(10, FaultConfig::default()).await;
    let s = setup(ctx, sim).await;
    let action = JobAction::Assign {
        service_id: "S1".into(),
    };
    let first = create(ctx, &s, action.clone(), serials("R", 3), 10).await;
    let mut retries = Vec::new();
    for _ in 0..2 {
        let id = jobs::create_job(
            ctx.store.as_ref(),
            &user(),
            NewJob {
                org: s.org,
                account: s.account,
                action: action.clone(),
                to_send: serials("R", 1),
                skipped: Vec::new(),
                retry_of: Some(first),
                chunk_size: 10,
            },
        )
        .await
        .unwrap();
        retries.push(id);
    }
    assert_eq!(ctx.store.job_retries(first).await.unwrap(), retries);
    assert_eq!(ctx.store.job_retries(retries[0]).await.unwrap(), []);
    assert_eq!(
        ctx.store.job(retries[1]).await.unwrap().retry_of,
        Some(first)
    );
}

/// The other actions against the simulator, one after the other on the same 30 devices:
/// unassign (verified off the service, mirror updated), assign with a migration deadline
/// (Apple refuses the devices that cannot migrate, with its reason), then cancel the
/// migrations that started.
async fn unassign_and_migration_jobs_reach_apples_state(ctx: &Ctx) {
    let sim = simulator(2_000, FaultConfig::default()).await;
    let s = setup(ctx, sim).await;
    SyncEngine::new(ctx.store.clone(), s.clients.clone(), s.index.clone())
        .sync_account(s.org, s.account, SyncCause::Manual)
        .await
        .unwrap();
    let before = truth(&s.sim).await;
    let service = before.services.last().unwrap().clone();
    let devices: Vec<String> = before
        .device_service
        .iter()
        .filter(|(_, on)| on.as_deref() == Some(service.as_str()))
        .map(|(serial, _)| serial.clone())
        .take(30)
        .collect();
    assert_eq!(devices.len(), 30, "the fullest service has 30 devices");
    let runner = runner(ctx, &s, fast());
    let run = |action: JobAction, serials: Vec<String>| {
        let runner = runner.clone();
        let s = &s;
        async move {
            let id = create(ctx, s, action, serials, 10).await;
            runner.confirm(&user(), s.org, id).await.unwrap();
            let status = run_to_end(&runner, id, Duration::from_secs(60)).await;
            (id, status)
        }
    };

    let (id, status) = run(
        JobAction::Unassign {
            service_id: service.clone(),
        },
        devices.clone(),
    )
    .await;
    assert_eq!(status, JobStatus::Completed);
    let after = truth(&s.sim).await;
    assert!(devices.iter().all(|d| after.device_service[d].is_none()));
    let items = all_items(ctx, &s, id).await;
    assert!(
        devices.iter().all(|d| items[d].verified),
        "unassignment verified"
    );
    let rows = ctx.store.devices_by_serial(s.org, &devices).await.unwrap();
    assert!(
        rows.iter().all(|r| r.service_id.is_none()),
        "mirror updated"
    );

    let deadline = time::OffsetDateTime::now_utc() + time::Duration::days(30);
    let (id, status) = run(
        JobAction::AssignWithMigrationDeadline {
            service_id: service.clone(),
            deadline,
        },
        devices.clone(),
    )
    .await;
    let capable: BTreeSet<String> = rows
        .iter()
        .filter(|r| r.migration_capable == Some(true))
        .map(|r| r.serial.clone())
        .collect();
    assert!(
        !capable.is_empty() && capable.len() < 30,
        "the sample mixes capable and incapable devices: {}",
        capable.len()
    );
    assert_eq!(status, JobStatus::CompletedWithFailures);
    let items = all_items(ctx, &s, id).await;
    let after = truth(&s.sim).await;
    for serial in &devices {
        let item = &items[serial];
        if capable.contains(serial) {
            assert_eq!(item.outcome, ItemOutcome::Succeeded, "{serial}: {item:?}");
            assert!(item.verified, "{serial}");
            assert_eq!(
                after.device_service[serial].as_deref(),
                Some(service.as_str())
            );
        } else {
            assert_eq!(item.outcome, ItemOutcome::Failed, "{serial}");
            assert_eq!(
                item.reason.as_deref(),
                Some("Device is not capable of MDM migration")
            );
            assert!(
                after.device_service[serial].is_none(),
                "{serial} was not moved"
            );
        }
    }

    let migrating: Vec<String> = capable.into_iter().collect();
    let (id, status) = run(JobAction::CancelMigration, migrating.clone()).await;
    assert_eq!(status, JobStatus::Completed);
    let items = all_items(ctx, &s, id).await;
    assert!(
        migrating
            .iter()
            .all(|d| items[d].outcome == ItemOutcome::Succeeded)
    );
    assert_eq!(
        s.sim.stats().activities_per_serial.values().max(),
        Some(&3),
        "each device in at most three activities, one per job"
    );
}

/// The jobs that included a serial, newest first, limited, within its organization only.
async fn a_devices_history_lists_its_jobs_newest_first(ctx: &Ctx) {
    let sim = simulator(10, FaultConfig::default()).await;
    let s = setup(ctx, sim).await;
    let action = JobAction::Assign {
        service_id: "S1".into(),
    };
    let first = create(ctx, &s, action.clone(), serials("H", 3), 10).await;
    let second = create(ctx, &s, action, vec!["H000001".to_owned()], 10).await;
    let store = ctx.store.as_ref();
    // The same serial in another organization's job.
    let other = simulator(10, FaultConfig::default()).await;
    let (other_org, other_account, _) = common::connect_simulator(ctx, &other, "Elsewhere").await;
    let other_job = store
        .create_job(&NewJobRecord {
            org: other_org,
            account: other_account,
            action: &JobAction::CancelMigration,
            created_by: None,
            retry_of: None,
            chunk_size: 10,
            to_send: &["H000001".to_owned()],
            skipped: &[],
            now: 1_700_000_000,
        })
        .await
        .unwrap();

    let history = jobs::device_history(store, s.org, "H000001", 10)
        .await
        .unwrap();
    let ids: Vec<JobId> = history.iter().map(|(job, _)| job.id).collect();
    assert_eq!(ids, [second, first]);
    assert!(
        history
            .iter()
            .all(|(_, item)| item.serial == "H000001" && item.outcome == ItemOutcome::Pending)
    );
    let latest = jobs::device_history(store, s.org, "H000001", 1)
        .await
        .unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].0.id, second);
    // Skipped entries count too, with Orchard's reason.
    let skipped = jobs::device_history(store, s.org, "BAD SERIAL", 10)
        .await
        .unwrap();
    assert_eq!(skipped.len(), 2);
    assert!(
        skipped
            .iter()
            .all(|(_, item)| item.outcome == ItemOutcome::Skipped
                && item.reason.as_deref() == Some("malformed"))
    );
    assert!(
        jobs::device_history(store, s.org, "H000002", 10)
            .await
            .unwrap()
            .iter()
            .map(|(job, _)| job.id)
            .eq([first])
    );
    let theirs = jobs::device_history(store, other_org, "H000001", 10)
        .await
        .unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].0.id, other_job);
    assert!(
        jobs::device_history(store, s.org, "NOBODY", 10)
            .await
            .unwrap()
            .is_empty()
    );
}
