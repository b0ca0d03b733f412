//! The job runner: sends confirmed jobs to Apple chunk by chunk, survives restarts and
//! `kill -9`, and never sends a device twice on a guess.
//!
//! # One runner per job
//!
//! Each process has one [`JobRunner`]. Every `tick` (and when woken by a confirm or a cancel)
//! it looks for confirmed, unfinished jobs and works each in its own task, under the job's
//! lease ([`crate::lease::Lease`]: a renewed row on SQLite, a session advisory lock on
//! PostgreSQL), so one instance at a time works a job. Every chunk move is also a
//! conditional update on the state the runner read, so even a runner that lost its lease
//! cannot move a chunk that someone else moved.
//!
//! # A chunk's states
//!
//! `planned` → `sending` → `submitted` (Apple's activity id) → `completed` | `failed`, or
//! `cancelled` before it left. `sending` is written (with the time and the attempt) *before*
//! the POST; each answer is written right after it:
//!
//! * 201: `submitted` with the activity id; polled with backoff from `poll_first_ms` (×1.5,
//!   capped at `poll_max_ms`). At `COMPLETED` the activity log CSV is downloaded and parsed:
//!   each serial succeeded or failed with Apple's reason; a serial missing from the log
//!   failed ("skipped by Apple"), never succeeded (SPEC §19.13). `FAILED`/`STOPPED` fail
//!   every device with Apple's status. After `assignment_lag_ms` the target service's device
//!   list is read once for all completed chunks due, devices found where they should be are
//!   marked `verified` and their mirror rows updated (service, status, search index).
//! * 429: Apple did not act. The chunk goes back to `planned` with `not_before` at least
//!   `Retry-After` away (never less; without it, exponential backoff from
//!   `rate_limit_backoff_ms`), persisted so a restart does not undercut it either. The
//!   client's budget also holds every request of the account for that long.
//! * 400/401/403/404/409/422: Apple refused the activity: the chunk fails, every device with
//!   Apple's message (e.g. a chunk above Apple's maximum: "At most 1000 devices…").
//! * A transport error, a timeout, a 5xx or an undecodable 201, or a crash while `sending`:
//!   the outcome is unknown, and the chunk is **not** re-sent. It stays `sending` until
//!   `reconcile_after_ms` after the send.
//!
//! # Reconciliation ("never twice, never lost")
//!
//! Apple has no idempotency key and no list of activities, so after an unknown outcome the
//! runner waits until an activity created by that POST would surely have been processed and
//! its effect become visible (`reconcile_after_ms`: Apple's phases plus its assignment lag,
//! with margin), then reads the target service's device list (one paged read, not one call
//! per device):
//!
//! * devices already in the intended state (on the service for assign; off it for unassign,
//!   and present in the mirror, since a device outside the organization is off it too) are
//!   marked succeeded and verified, with "activity unknown" as the reason;
//! * the others are re-sent, once, as a new attempt of the same chunk (only those devices);
//! * after `max_attempts` POSTs that may have reached Apple, the rest fail with a reason
//!   instead of being sent again.
//!
//! So a device is sent again only when Apple's own state shows the first request did not
//! take effect. Limits, by design:
//!
//! * If Apple processes an activity later than `reconcile_after_ms` after it was sent, a
//!   device can be sent twice. The default (15 minutes) is far above the "seconds to tens of
//!   seconds" observed (SPEC §10.2); raise it if Apple is slower.
//! * A device Apple refused in a lost activity (e.g. not in the organization) is not in the
//!   intended state, so it is sent again and then reported with Apple's reason: Apple sees it
//!   twice, nothing changes twice.
//! * Migration-deadline updates and cancellations have no service to read; devices of such a
//!   chunk whose outcome is unknown fail with a reason asking to check them ("may or may not
//!   have been applied") rather than being sent blindly again.
//!
//! # A revoked account
//!
//! The runner takes the account's client afresh at every step (cached; rebuilt after a key
//! rotation). Once the account is revoked the job ends instead of waiting for it: devices
//! not sent fail as not sent, devices of a chunk in flight fail as "outcome unknown" (Apple
//! may have acted; people check before retrying), and devices Apple already reported keep
//! their outcome without the assignment check.
//!
//! # Priorities and budget
//!
//! Every call runs at [`Priority::Background`]: people's reads go first, and a job's POSTs
//! and polls wait their turn like the sync. A chunk is marked `sending` only when the
//! account's write budget has a slot, one POST at a time per account in this process; until
//! then the job is `waiting` (with the time of the next slot) while its submitted chunks are
//! still polled and checked, and a crash while waiting leaves nothing `sending`.
//!
//! Each POST is also recorded in the database (`api_writes`) just before it leaves, and a
//! chunk is sent only when the POSTs recorded in the budget's window leave room, so the
//! budget holds across restarts and crash loops and is shared with other instances (two
//! instances deciding in the same instant can still both send; Apple's 429 then holds the
//! chunk as above).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apple::resources::activities::{self, ActivityStatus, CreateActivity};
use apple::resources::mdm_servers;
use apple::{ActivityId, MdmServerId, Priority, SerialNumber};
use time::OffsetDateTime;
use tokio::sync::Notify;

use super::{Chunk, ChunkState, ItemOutcome, Job, JobAction, JobError, JobId, JobItem, JobStatus};
use crate::accounts::{AccountError, ApiAccountId, Clients, sanitize_error};
use crate::audit::{self, Actor, AuditAction};
use crate::config::JobsConfig;
use crate::lease::Lease;
use crate::mirror::index::DeviceIndex;
use crate::orgs::OrgId;
use crate::store::jobs::ItemUpdate;
use crate::store::leases::LeaseKey;
use crate::store::{Store, StoreError};

/// Pages any one service list may have; a guard against a looping server.
const PAGE_CAP: u32 = 100_000;
/// Longest backoff after 429s without `Retry-After`.
const MAX_RATE_LIMIT_BACKOFF: Duration = Duration::from_secs(3600);
/// Reason of a device found done by reconciliation.
pub const RECONCILED: &str =
    "found in the intended state after a request whose answer was lost (activity unknown)";
/// Reason of a device not sent because the job's API account was revoked.
pub const REVOKED_NOT_SENT: &str = "not sent: the organization's API account was revoked";
/// Reason of a device whose request was in flight when the account was revoked.
pub const REVOKED_IN_FLIGHT: &str = "outcome unknown: the API account was revoked before Apple's \
    answer was read; check this device's assignment before retrying";
/// Note of a chunk whose assignment check was left undone by a revocation.
const REVOKED_UNVERIFIED: &str = "not verified: the API account was revoked";
/// Reason of a device Apple left out of its activity log.
pub const SKIPPED_BY_APPLE: &str = "Apple skipped this device: it is missing from the activity log";

/// Why working a job stopped early (it is picked up again at the next tick).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the job's lease was lost to another instance")]
    LeaseLost,
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
}

fn now_ms() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

fn now_secs() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// Runs jobs; one per process, shared.
pub struct JobRunner {
    store: Arc<dyn Store>,
    clients: Arc<Clients>,
    /// Told about mirror rows the runner changes.
    index: Arc<DeviceIndex>,
    config: JobsConfig,
    holder: String,
    /// Wakes the claim loop (a job was confirmed).
    claim: Notify,
    /// Wakes sleeping job tasks (a job was cancelled).
    changed: Notify,
    /// Jobs with a task in this process.
    active: Mutex<HashSet<JobId>>,
    /// One POST at a time per account in this process.
    post_locks: Mutex<HashMap<ApiAccountId, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for JobRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobRunner")
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

impl JobRunner {
    pub fn new(
        store: Arc<dyn Store>,
        clients: Arc<Clients>,
        index: Arc<DeviceIndex>,
        config: JobsConfig,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            clients,
            index,
            config,
            holder: crate::lease::holder_name(),
            claim: Notify::new(),
            changed: Notify::new(),
            active: Mutex::new(HashSet::new()),
            post_locks: Mutex::new(HashMap::new()),
        })
    }

    /// The settings it runs with.
    pub fn config(&self) -> &JobsConfig {
        &self.config
    }

    /// Looks for work now instead of at the next tick.
    pub fn wake(&self) {
        self.claim.notify_one();
        self.changed.notify_waiters();
    }

    /// [`super::confirm_job`], then starts it without waiting for the next tick.
    pub async fn confirm(&self, actor: &Actor, org: OrgId, job: JobId) -> Result<Job, JobError> {
        let job = super::confirm_job(self.store.as_ref(), actor, org, job).await?;
        self.wake();
        Ok(job)
    }

    /// [`super::cancel_job`], then tells the job's task at once.
    pub async fn cancel(
        &self,
        actor: &Actor,
        org: OrgId,
        job: JobId,
    ) -> Result<JobStatus, JobError> {
        let status = super::cancel_job(self.store.as_ref(), actor, org, job).await?;
        self.wake();
        Ok(status)
    }

    /// Starts the claim loop in the background (server start: unfinished jobs resume at
    /// once).
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.clone().run())
    }

    /// Runs forever: starts open jobs every `tick_ms` or when woken.
    pub async fn run(self: Arc<Self>) {
        loop {
            if let Err(err) = self.start_open().await {
                tracing::warn!(error = &err as &dyn std::error::Error, "job runner");
            }
            let tick = Duration::from_millis(self.config.tick_ms);
            tokio::select! {
                () = tokio::time::sleep(tick) => {}
                () = self.claim.notified() => {}
            }
        }
    }

    fn active_set(&self) -> std::sync::MutexGuard<'_, HashSet<JobId>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this process works the job now.
    pub fn is_working(&self, job: JobId) -> bool {
        self.active_set().contains(&job)
    }

    /// One pass: starts a task for each open job not worked here (up to `max_parallel`).
    pub async fn start_open(self: &Arc<Self>) -> Result<Vec<JobId>, StoreError> {
        let mut started = Vec::new();
        for id in self.store.open_jobs().await? {
            {
                let mut active = self.active_set();
                if active.len() >= self.config.max_parallel as usize {
                    break;
                }
                if !active.insert(id) {
                    continue;
                }
            }
            started.push(id);
            let runner = self.clone();
            tokio::spawn(async move {
                match runner.work(id).await {
                    Ok(Some(status)) => {
                        tracing::info!(job = id.0, status = status.as_str(), "job finished")
                    }
                    Ok(None) => tracing::debug!(job = id.0, "job worked by another instance"),
                    Err(err) => tracing::warn!(
                        job = id.0,
                        error = &err as &dyn std::error::Error,
                        "job paused; resumes at the next tick"
                    ),
                }
                runner.active_set().remove(&id);
            });
        }
        Ok(started)
    }

    /// Works one job until it finishes. `Ok(None)` when another holder has its lease.
    pub async fn work(self: &Arc<Self>, id: JobId) -> Result<Option<JobStatus>, RunError> {
        let ttl = Duration::from_secs(self.config.lease_secs);
        let Some(lease) =
            Lease::take(self.store.clone(), LeaseKey::Job(id), &self.holder, ttl).await?
        else {
            return Ok(None);
        };
        let result = self.drive(id, &lease).await;
        lease.release().await;
        result.map(Some)
    }

    async fn drive(self: &Arc<Self>, id: JobId, lease: &Lease) -> Result<JobStatus, RunError> {
        let job = self.store.job(id).await?;
        let client = match self.clients.for_account(job.account).await {
            Ok(client) => client,
            Err(AccountError::Revoked) if !job.status.is_finished() => {
                return self.end_revoked(lease, &job).await;
            }
            Err(err) => return Err(err.into()),
        };
        let mut run = Run {
            runner: self,
            client,
            lease,
            job,
        };
        run.drive().await
    }

    /// Ends a job whose API account was revoked: nothing can be sent or read for it any
    /// more. Devices not yet sent fail as not sent; devices of a chunk in flight fail as
    /// unknown (Apple may have acted), so retrying and checking them stays with people;
    /// devices Apple already reported keep their outcome, unverified.
    async fn end_revoked(&self, lease: &Lease, job: &Job) -> Result<JobStatus, RunError> {
        tracing::warn!(
            job = job.id.0,
            "the job's API account is revoked; ending the job"
        );
        for chunk in self.store.job_chunks(job.id).await? {
            let mut next = chunk.clone();
            let reason = match chunk.state {
                ChunkState::Planned => REVOKED_NOT_SENT,
                ChunkState::Sending | ChunkState::Submitted => REVOKED_IN_FLIGHT,
                ChunkState::Completed if chunk.verify_at_ms.is_some() => {
                    next.verify_at_ms = None;
                    next.note = Some(REVOKED_UNVERIFIED.to_owned());
                    if lease.lost() {
                        return Err(RunError::LeaseLost);
                    }
                    self.store
                        .update_chunk(&next, chunk.state, &[], now_secs())
                        .await?;
                    continue;
                }
                _ => continue,
            };
            let mut items = self.store.chunk_items(job.id, chunk.index).await?;
            items.retain(|i| i.outcome == ItemOutcome::Pending);
            next.state = ChunkState::Failed;
            next.finished_at = Some(now_secs());
            next.next_at_ms = None;
            next.not_before_ms = None;
            next.note = Some(reason.to_owned());
            if lease.lost() {
                return Err(RunError::LeaseLost);
            }
            let updates = failed_items(&items, reason, chunk.activity_id.as_deref());
            self.store
                .update_chunk(&next, chunk.state, &updates, now_secs())
                .await?;
        }
        finish(self.store.as_ref(), job.id).await
    }

    fn post_lock(&self, account: ApiAccountId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.post_locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(account).or_default().clone()
    }
}

/// The activity request for `action` and `serials`.
fn activity_request(action: &JobAction, serials: &[SerialNumber]) -> CreateActivity {
    match action {
        JobAction::Assign { service_id } => {
            activities::assign(&MdmServerId::new(service_id.as_str()), serials)
        }
        JobAction::Unassign { service_id } => {
            activities::unassign(&MdmServerId::new(service_id.as_str()), serials)
        }
        JobAction::AssignWithMigrationDeadline {
            service_id,
            deadline,
        } => activities::assign_with_migration_deadline(
            &MdmServerId::new(service_id.as_str()),
            serials,
            *deadline,
        ),
        JobAction::UpdateMigrationDeadline { deadline } => {
            activities::update_migration_deadline(serials, *deadline)
        }
        JobAction::CancelMigration => activities::cancel_migration(serials),
    }
}

/// Apple's words for an error that came with a body, else the error itself.
fn apple_message(err: &apple::Error) -> String {
    let text = err
        .api_errors()
        .first()
        .and_then(|e| e.detail.clone().or_else(|| e.title.clone()))
        .unwrap_or_else(|| err.to_string());
    sanitize_error(&text)
}

/// What a POST's answer means for its chunk.
enum Answer {
    /// 201 with the activity.
    Submitted(String, Option<String>, Option<String>),
    /// Apple did not act (429, or the request never left): send again after the delay.
    NotProcessed(Duration, String),
    /// Apple refused the activity: every device fails with this reason.
    Refused(String),
    /// Apple may or may not have acted.
    Unknown(String),
}

/// The job being worked by this process.
struct Run<'a> {
    runner: &'a Arc<JobRunner>,
    client: apple::Client,
    lease: &'a Lease,
    job: Job,
}

impl Run<'_> {
    fn store(&self) -> &dyn Store {
        self.runner.store.as_ref()
    }

    fn config(&self) -> &JobsConfig {
        &self.runner.config
    }

    fn check_lease(&self) -> Result<(), RunError> {
        if self.lease.lost() {
            return Err(RunError::LeaseLost);
        }
        Ok(())
    }

    async fn drive(&mut self) -> Result<JobStatus, RunError> {
        loop {
            self.check_lease()?;
            self.job = self.store().job(self.job.id).await?;
            if self.job.status.is_finished() {
                return Ok(self.job.status);
            }
            // The cached client, or a new one after a key rotation; a revocation ends the job.
            match self.runner.clients.for_account(self.job.account).await {
                Ok(client) => self.client = client,
                Err(AccountError::Revoked) => {
                    return self.runner.end_revoked(self.lease, &self.job).await;
                }
                Err(err) => return Err(err.into()),
            }
            let cancelling = self.job.status == JobStatus::Cancelling;
            if cancelling {
                // Chunks that came back to `planned` (a 429, a reconciliation) are cancelled too.
                self.store().cancel_job(self.job.id, now_secs()).await?;
            } else if self.job.status == JobStatus::Planned {
                self.set_status(JobStatus::Running, None).await?;
            }
            let chunks = self.store().job_chunks(self.job.id).await?;
            let now = now_ms();
            let mut wake_at: Option<i64> = None;
            let mut due = |at: i64| wake_at = Some(wake_at.map_or(at, |w: i64| w.min(at)));
            let mut worked = false;
            let mut to_verify = Vec::new();
            let mut open = false;
            for chunk in &chunks {
                match chunk.state {
                    ChunkState::Submitted => {
                        open = true;
                        match chunk.next_at_ms {
                            Some(at) if at > now => due(at),
                            _ => {
                                self.poll(chunk).await?;
                                worked = true;
                            }
                        }
                    }
                    ChunkState::Sending => {
                        open = true;
                        let at = chunk.next_at_ms.unwrap_or_else(|| {
                            chunk.sending_at_ms.unwrap_or(now)
                                + i64::try_from(self.config().reconcile_after_ms).unwrap_or(0)
                        });
                        if at > now {
                            due(at);
                        } else {
                            self.reconcile(chunk, cancelling).await?;
                            worked = true;
                        }
                    }
                    ChunkState::Completed => {
                        if let Some(at) = chunk.verify_at_ms {
                            open = true;
                            if at > now {
                                due(at);
                            } else {
                                to_verify.push(chunk.clone());
                            }
                        }
                    }
                    ChunkState::Planned => open = true,
                    ChunkState::Failed | ChunkState::Cancelled => {}
                }
            }
            if !to_verify.is_empty() {
                self.verify(&to_verify).await?;
                worked = true;
            }
            if !cancelling
                && let Some(chunk) = chunks.iter().find(|c| c.state == ChunkState::Planned)
            {
                match chunk.not_before_ms {
                    Some(at) if at > now => {
                        self.set_status(JobStatus::Waiting, Some(at)).await?;
                        due(at);
                    }
                    _ => match self.send(chunk).await? {
                        // No POST slot yet: polls and checks go on meanwhile.
                        Some(slot_at) => due(slot_at),
                        None => worked = true,
                    },
                }
            }
            if !open {
                return self.finish().await;
            }
            if !worked {
                let tick = i64::try_from(self.config().tick_ms).unwrap_or(1000);
                let until = wake_at.unwrap_or(now + tick).min(now + tick);
                let sleep = Duration::from_millis(u64::try_from(until - now).unwrap_or(0));
                tokio::select! {
                    () = tokio::time::sleep(sleep) => {}
                    () = self.runner.changed.notified() => {}
                }
            }
        }
    }

    async fn set_status(&mut self, status: JobStatus, until: Option<i64>) -> Result<(), RunError> {
        if self.job.status != status || self.job.waiting_until_ms != until {
            self.store()
                .set_job_status(self.job.id, status, until, now_secs())
                .await?;
            self.job.status = status;
            self.job.waiting_until_ms = until;
        }
        Ok(())
    }

    /// Moves a chunk from the state it was read in; `false` when someone moved it first.
    async fn update(
        &self,
        chunk: &Chunk,
        expected: ChunkState,
        items: &[ItemUpdate],
    ) -> Result<bool, RunError> {
        self.check_lease()?;
        Ok(self
            .store()
            .update_chunk(chunk, expected, items, now_secs())
            .await?)
    }

    async fn pending_items(&self, chunk: &Chunk) -> Result<Vec<JobItem>, RunError> {
        let mut items = self.store().chunk_items(self.job.id, chunk.index).await?;
        items.retain(|i| i.outcome == ItemOutcome::Pending);
        Ok(items)
    }

    /// When the account may POST next (Unix ms), or `None` for now: the later of this
    /// process's budget and the POSTs recorded in the database in the budget's window, which
    /// also counts those sent before a restart or by another instance.
    async fn next_write_slot(&self) -> Result<Option<i64>, RunError> {
        let now = now_ms();
        let budget = self.client.budget();
        let in_process = budget.status().next_write_in.map(|wait| now + ms(wait));
        let rate = budget.config().writes;
        let window = ms(rate.per);
        let sent = self
            .store()
            .recent_writes(self.job.account, now - window)
            .await?;
        let allowed = rate.count.max(1) as usize;
        // The window is full until its oldest POST that still counts leaves it.
        let recorded = (sent.len() >= allowed).then(|| sent[sent.len() - allowed] + window + 1);
        Ok(in_process.max(recorded))
    }

    /// Sends a planned chunk's pending devices (see the module note for each answer).
    /// Returns when the next POST slot comes instead when the account's write budget has
    /// none now (the job is `waiting` until then); nothing is marked `sending` before.
    async fn send(&mut self, chunk: &Chunk) -> Result<Option<i64>, RunError> {
        let lock = self.runner.post_lock(self.job.account);
        let _one_post = lock.lock().await;
        if let Some(at) = self.next_write_slot().await? {
            self.set_status(JobStatus::Waiting, Some(at)).await?;
            return Ok(Some(at));
        }
        self.set_status(JobStatus::Running, None).await?;
        let items = self.pending_items(chunk).await?;
        let now = now_ms();
        if items.is_empty() {
            let mut done = chunk.clone();
            done.state = ChunkState::Completed;
            done.finished_at = Some(now_secs());
            self.update(&done, ChunkState::Planned, &[]).await?;
            return Ok(None);
        }
        let mut sending = chunk.clone();
        sending.state = ChunkState::Sending;
        sending.attempts += 1;
        sending.sending_at_ms = Some(now);
        sending.not_before_ms = None;
        sending.next_at_ms =
            Some(now + i64::try_from(self.config().reconcile_after_ms).unwrap_or(0));
        if !self.update(&sending, ChunkState::Planned, &[]).await? {
            return Ok(None);
        }
        let window = ms(self.client.budget().config().writes.per);
        self.store()
            .record_write(self.job.account, now, now - window)
            .await?;
        tracing::info!(
            job = self.job.id.0,
            chunk = chunk.index,
            attempt = sending.attempts,
            devices = items.len(),
            "chunk sending"
        );
        let serials: Vec<SerialNumber> = items
            .iter()
            .map(|i| SerialNumber::new(i.serial.as_str()))
            .collect();
        let answer = match activity_request(&self.job.action, &serials)
            .priority(Priority::Background)
            .send(&self.client)
            .await
        {
            Ok(doc) => {
                let a = doc.data.attributes;
                Answer::Submitted(
                    doc.data.id.as_str().to_owned(),
                    a.status.map(|s| s.as_str().to_owned()),
                    a.sub_status.map(|s| s.as_str().to_owned()),
                )
            }
            Err(err) => self.classify(&err, chunk),
        };
        let mut next = sending.clone();
        let now = now_ms();
        match answer {
            Answer::Submitted(activity, status, sub_status) => {
                next.state = ChunkState::Submitted;
                next.activity_id = Some(activity.clone());
                next.submitted_at = Some(now_secs());
                next.next_at_ms =
                    Some(now + i64::try_from(self.config().poll_first_ms).unwrap_or(0));
                next.polls = 0;
                next.apple_status = status;
                next.apple_sub_status = sub_status;
                next.note = None;
                self.update(&next, ChunkState::Sending, &[]).await?;
                tracing::info!(job = self.job.id.0, chunk = chunk.index, activity = %activity, "chunk submitted");
            }
            Answer::NotProcessed(wait, note) => {
                next.state = ChunkState::Planned;
                next.attempts = chunk.attempts;
                next.rate_limited += 1;
                next.not_before_ms = Some(now + ms(wait));
                next.next_at_ms = None;
                next.note = Some(note);
                self.update(&next, ChunkState::Sending, &[]).await?;
            }
            Answer::Refused(reason) => {
                next.state = ChunkState::Failed;
                next.finished_at = Some(now_secs());
                next.next_at_ms = None;
                next.note = Some(format!("Apple refused the activity: {reason}"));
                let updates = failed_items(&items, &reason, None);
                self.update(&next, ChunkState::Sending, &updates).await?;
            }
            Answer::Unknown(note) => {
                // Stays `sending` (its `next_at_ms` is the reconciliation time): never re-sent
                // before Apple's state has been read.
                next.note = Some(note);
                self.update(&next, ChunkState::Sending, &[]).await?;
                tracing::warn!(
                    job = self.job.id.0,
                    chunk = chunk.index,
                    "chunk outcome unknown; reconciling later"
                );
            }
        }
        Ok(None)
    }

    fn classify(&self, err: &apple::Error, chunk: &Chunk) -> Answer {
        use apple::Error as E;
        match err {
            E::RateLimited { retry_after, .. } => {
                let backoff = Duration::from_millis(self.config().rate_limit_backoff_ms)
                    .saturating_mul(1 << chunk.rate_limited.min(16))
                    .min(MAX_RATE_LIMIT_BACKOFF);
                // Never less than Apple asked for; without a number, back off.
                let wait = retry_after.map_or(backoff, |ra| ra + Duration::from_millis(50));
                Answer::NotProcessed(
                    wait,
                    format!(
                        "Apple answered 429 (rate limited); sending again in {} s",
                        wait.as_secs_f64().ceil()
                    ),
                )
            }
            // The request never left: no token, no key, a bad URL.
            E::Token(_) | E::InvalidKey(_) | E::Config(_) => Answer::NotProcessed(
                Duration::from_millis(self.config().rate_limit_backoff_ms),
                format!("not sent: {}", sanitize_error(&err.to_string())),
            ),
            E::Unauthorized { .. } | E::Forbidden { .. } | E::NotFound { .. } => {
                Answer::Refused(apple_message(err))
            }
            E::Api { status, .. } if *status < 500 => Answer::Refused(apple_message(err)),
            _ => Answer::Unknown(format!(
                "no clear answer from Apple ({}); checking the devices before sending again",
                sanitize_error(&err.to_string())
            )),
        }
    }

    fn poll_interval(&self, polls: u32) -> i64 {
        let first = self.config().poll_first_ms as f64;
        let grown = first * 1.5f64.powi(i32::try_from(polls.min(30)).unwrap_or(30));
        grown.min(self.config().poll_max_ms as f64) as i64
    }

    /// Polls a submitted chunk's activity; at the end, settles its devices from the log.
    async fn poll(&mut self, chunk: &Chunk) -> Result<(), RunError> {
        let Some(activity) = chunk.activity_id.clone() else {
            return Ok(());
        };
        let mut next = chunk.clone();
        next.polls += 1;
        next.next_at_ms = Some(now_ms() + self.poll_interval(next.polls));
        let fetched = activities::get(&ActivityId::new(activity.as_str()))
            .priority(Priority::Background)
            .send(&self.client)
            .await;
        let attributes = match fetched {
            Ok(doc) => doc.data.attributes,
            Err(apple::Error::NotFound { .. }) => {
                // Apple forgot the activity (older than 30 days): reconcile from the devices.
                next.state = ChunkState::Sending;
                next.next_at_ms = Some(now_ms());
                next.note = Some("Apple no longer knows the activity; checking the devices".into());
                self.update(&next, ChunkState::Submitted, &[]).await?;
                return Ok(());
            }
            Err(err) => {
                next.note = Some(format!("polling: {}", sanitize_error(&err.to_string())));
                self.update(&next, ChunkState::Submitted, &[]).await?;
                return Ok(());
            }
        };
        next.apple_status = attributes.status.as_ref().map(|s| s.as_str().to_owned());
        next.apple_sub_status = attributes
            .sub_status
            .as_ref()
            .map(|s| s.as_str().to_owned());
        let status = attributes.status.clone();
        if !status.as_ref().is_some_and(ActivityStatus::is_terminal) {
            self.update(&next, ChunkState::Submitted, &[]).await?;
            return Ok(());
        }
        let items = self.pending_items(chunk).await?;
        let updates = if status == Some(ActivityStatus::Completed) {
            let Some(url) = attributes.download_url.as_deref() else {
                next.note = Some("Apple completed the activity without its log yet".into());
                self.update(&next, ChunkState::Submitted, &[]).await?;
                return Ok(());
            };
            match apple::activity_log::download(&self.client, url).await {
                Ok(rows) => outcomes_from_log(&items, &rows, &activity),
                Err(err) => {
                    next.note = Some(format!(
                        "reading the activity log: {}",
                        sanitize_error(&err.to_string())
                    ));
                    self.update(&next, ChunkState::Submitted, &[]).await?;
                    return Ok(());
                }
            }
        } else {
            let reason = format!(
                "Apple ended the activity {}{}",
                next.apple_status.as_deref().unwrap_or("?"),
                next.apple_sub_status
                    .as_deref()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default()
            );
            failed_items(&items, &reason, Some(&activity))
        };
        let any_succeeded = updates.iter().any(|u| u.outcome == ItemOutcome::Succeeded);
        next.state = ChunkState::Completed;
        next.finished_at = Some(now_secs());
        next.next_at_ms = None;
        next.verify_at_ms = (any_succeeded && self.job.action.service_id().is_some())
            .then(|| now_ms() + i64::try_from(self.config().assignment_lag_ms).unwrap_or(0));
        self.update(&next, ChunkState::Submitted, &updates).await?;
        Ok(())
    }

    /// Every serial currently on the job's service (its linkage list), or `None` for actions
    /// without a service.
    async fn service_members(&self) -> Result<Option<HashSet<String>>, apple::Error> {
        let Some(service) = self.job.action.service_id() else {
            return Ok(None);
        };
        let ids = mdm_servers::device_ids(&MdmServerId::new(service))
            .limit(1000)
            .priority(Priority::Background)
            .page_cap(PAGE_CAP)
            .collect_all(&self.client, usize::MAX)
            .await?;
        Ok(Some(ids.into_iter().map(|d| d.id).collect()))
    }

    /// Whether a device is where the job wants it, given the service's members.
    fn in_intended_state(&self, members: &HashSet<String>, serial: &str) -> bool {
        members.contains(serial) == self.job.action.assigns()
    }

    /// Checks completed chunks' successes through the service linkage.
    async fn verify(&mut self, chunks: &[Chunk]) -> Result<(), RunError> {
        let members = match self.service_members().await {
            Ok(Some(members)) => members,
            Ok(None) => HashSet::new(),
            Err(err) => {
                tracing::warn!(job = self.job.id.0, error = %sanitize_error(&err.to_string()), "verification read failed; trying again");
                for chunk in chunks {
                    let mut next = chunk.clone();
                    next.verify_at_ms =
                        Some(now_ms() + i64::try_from(self.config().poll_max_ms).unwrap_or(0));
                    self.update(&next, ChunkState::Completed, &[]).await?;
                }
                return Ok(());
            }
        };
        for chunk in chunks {
            let items = self.store().chunk_items(self.job.id, chunk.index).await?;
            let mut next = chunk.clone();
            next.verify_tries += 1;
            let last_try = next.verify_tries >= self.config().verify_tries;
            let mut updates = Vec::new();
            let mut seen = Vec::new();
            for item in items
                .iter()
                .filter(|i| i.outcome == ItemOutcome::Succeeded && !i.verified)
            {
                if self.in_intended_state(&members, &item.serial) {
                    seen.push(item.serial.clone());
                    updates.push(ItemUpdate {
                        verified: true,
                        ..update_of(item)
                    });
                } else if last_try {
                    updates.push(ItemUpdate {
                        reason: Some(format!(
                            "Apple reported success, but the service's device list did not show \
                             the change after {} checks",
                            next.verify_tries
                        )),
                        ..update_of(item)
                    });
                }
            }
            let remaining = items
                .iter()
                .filter(|i| i.outcome == ItemOutcome::Succeeded && !i.verified)
                .count()
                > seen.len();
            next.verify_at_ms = (remaining && !last_try)
                .then(|| now_ms() + i64::try_from(self.config().assignment_lag_ms).unwrap_or(0));
            if self.update(&next, ChunkState::Completed, &updates).await? {
                self.update_mirror(&seen).await?;
            }
        }
        Ok(())
    }

    /// Writes verified assignments into the mirror and the search index.
    async fn update_mirror(&self, serials: &[String]) -> Result<(), RunError> {
        if serials.is_empty() {
            return Ok(());
        }
        let (service, status) = if self.job.action.assigns() {
            (self.job.action.service_id(), "ASSIGNED")
        } else {
            (None, "UNASSIGNED")
        };
        let org = self.job.org;
        self.store()
            .set_mirror_assignment(org, serials, service, status, now_secs())
            .await?;
        let rows = self.store().devices_by_serial(org, serials).await?;
        self.runner.index.apply(org, &rows);
        Ok(())
    }

    /// Settles a chunk whose POST's outcome is unknown (see the module note).
    async fn reconcile(&mut self, chunk: &Chunk, cancelling: bool) -> Result<(), RunError> {
        let items = self.pending_items(chunk).await?;
        let mut next = chunk.clone();
        next.next_at_ms = None;
        let members = match self.service_members().await {
            Ok(members) => members,
            Err(err) => {
                next.next_at_ms =
                    Some(now_ms() + i64::try_from(self.config().poll_max_ms).unwrap_or(0));
                next.note = Some(format!(
                    "reconciling: cannot read the devices' assignment yet ({})",
                    sanitize_error(&err.to_string())
                ));
                self.update(&next, ChunkState::Sending, &[]).await?;
                return Ok(());
            }
        };
        let Some(members) = members else {
            let reason = "Apple's answer to this request was lost; the change may or may not have \
                          been applied: check the devices, then retry";
            next.state = ChunkState::Failed;
            next.finished_at = Some(now_secs());
            next.note = Some(reason.to_owned());
            self.update(
                &next,
                ChunkState::Sending,
                &failed_items(&items, reason, None),
            )
            .await?;
            return Ok(());
        };
        // Off the service is also where a device outside the organization is: for an
        // unassign, only devices the mirror knows as present count as done.
        let present: HashSet<String> = if self.job.action.assigns() {
            HashSet::new()
        } else {
            let serials: Vec<String> = items.iter().map(|i| i.serial.clone()).collect();
            self.store()
                .devices_by_serial(self.job.org, &serials)
                .await?
                .into_iter()
                .filter(|d| d.absent_since.is_none())
                .map(|d| d.serial)
                .collect()
        };
        let (done, rest): (Vec<&JobItem>, Vec<&JobItem>) = items.iter().partition(|i| {
            self.in_intended_state(&members, &i.serial)
                && (self.job.action.assigns() || present.contains(&i.serial))
        });
        let mut updates: Vec<ItemUpdate> = done
            .iter()
            .map(|i| ItemUpdate {
                serial: i.serial.clone(),
                outcome: ItemOutcome::Succeeded,
                reason: Some(RECONCILED.to_owned()),
                verified: true,
                activity_id: None,
            })
            .collect();
        let summary = format!(
            "reconciled attempt {}: {} devices already in the intended state, {} not",
            chunk.attempts,
            done.len(),
            rest.len()
        );
        if rest.is_empty() {
            next.state = ChunkState::Completed;
            next.finished_at = Some(now_secs());
        } else if cancelling {
            next.state = ChunkState::Cancelled;
            next.finished_at = Some(now_secs());
            updates.extend(rest.iter().map(|i| ItemUpdate {
                serial: i.serial.clone(),
                outcome: ItemOutcome::Skipped,
                reason: Some("cancelled".to_owned()),
                verified: false,
                activity_id: None,
            }));
        } else if chunk.attempts >= self.config().max_attempts {
            let reason = format!(
                "no answer from Apple after {} attempts, and the device is not in the intended state",
                chunk.attempts
            );
            next.state = ChunkState::Failed;
            next.finished_at = Some(now_secs());
            updates.extend(failed_items(
                &rest.into_iter().cloned().collect::<Vec<_>>(),
                &reason,
                None,
            ));
        } else {
            // Re-sent once more, as a new attempt, only for the devices not done.
            next.state = ChunkState::Planned;
            next.not_before_ms = None;
        }
        next.note = Some(summary.clone());
        tracing::info!(job = self.job.id.0, chunk = chunk.index, "{summary}");
        if self.update(&next, ChunkState::Sending, &updates).await? {
            let seen: Vec<String> = done.iter().map(|i| i.serial.clone()).collect();
            self.update_mirror(&seen).await?;
        }
        Ok(())
    }

    /// Gives the job its final status and records it.
    async fn finish(&mut self) -> Result<JobStatus, RunError> {
        finish(self.store(), self.job.id).await
    }
}

/// Gives a job with nothing left open its final status (from its counts) and audits it.
async fn finish(store: &dyn Store, id: JobId) -> Result<JobStatus, RunError> {
    let job = store.job(id).await?;
    let counts = job.counts;
    let status = if job.status == JobStatus::Cancelling {
        JobStatus::Cancelled
    } else if counts.failed == 0 {
        JobStatus::Completed
    } else if counts.succeeded == 0 {
        JobStatus::Failed
    } else {
        JobStatus::CompletedWithFailures
    };
    if store.finish_job(job.id, status, now_secs()).await? {
        audit::append(
            store,
            &Actor::system(),
            AuditAction::JobFinished,
            &format!("job:{}", job.id),
            serde_json::json!({
                "status": status.as_str(),
                "succeeded": counts.succeeded,
                "failed": counts.failed,
                "skipped": counts.skipped,
            }),
        )
        .await?;
    }
    Ok(store.job(job.id).await?.status)
}

/// An item's update that keeps what it has.
fn update_of(item: &JobItem) -> ItemUpdate {
    ItemUpdate {
        serial: item.serial.clone(),
        outcome: item.outcome,
        reason: item.reason.clone(),
        verified: item.verified,
        activity_id: item.activity_id.clone(),
    }
}

/// Every item failed with `reason`.
fn failed_items(items: &[JobItem], reason: &str, activity: Option<&str>) -> Vec<ItemUpdate> {
    items
        .iter()
        .map(|i| ItemUpdate {
            serial: i.serial.clone(),
            outcome: ItemOutcome::Failed,
            reason: Some(reason.to_owned()),
            verified: false,
            activity_id: activity.map(str::to_owned),
        })
        .collect()
}

/// Per-serial outcomes from an activity log: success or failure with Apple's reason; a serial
/// the log does not mention failed (Apple skipped it silently).
pub fn outcomes_from_log(
    items: &[JobItem],
    rows: &[apple::activity_log::ActivityLogRow],
    activity: &str,
) -> Vec<ItemUpdate> {
    let by_serial: HashMap<String, &apple::activity_log::ActivityLogRow> = rows
        .iter()
        .map(|r| (r.serial_number.as_str().to_ascii_uppercase(), r))
        .collect();
    items
        .iter()
        .map(|item| {
            let row = by_serial.get(&item.serial.to_ascii_uppercase());
            let (outcome, reason) =
                match row {
                    Some(row) if !row.failed() => (ItemOutcome::Succeeded, None),
                    Some(row) => (
                        ItemOutcome::Failed,
                        Some(row.details.clone().unwrap_or_else(|| {
                            "Apple reported a failure without a reason".to_owned()
                        })),
                    ),
                    None => (ItemOutcome::Failed, Some(SKIPPED_BY_APPLE.to_owned())),
                };
            ItemUpdate {
                serial: item.serial.clone(),
                outcome,
                reason,
                verified: false,
                activity_id: Some(activity.to_owned()),
            }
        })
        .collect()
}
