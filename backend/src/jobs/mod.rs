//! Bulk device assignment: what a job asks Apple to do, the preview computed from the
//! mirror before anything is sent, and the crash-safe runner that sends it in chunks.
//!
//! Apple allows about ten device-activity POSTs an hour and reports some per-device failures
//! only in an activity's CSV log, so a job is planned and written to the database in full
//! before the first request, and every chunk's progress is persisted at each step.
//!
//! # Life of a job
//!
//! 1. [`create_job`] writes the job, its chunks and one item per serial in one transaction
//!    (status `planned`, audit `job.create`). Nothing is sent yet.
//! 2. [`confirm_job`] marks it confirmed (audit `job.confirm`) and wakes the [`JobRunner`].
//! 3. The runner (one per process; one per job across instances, by a lease) sends chunk by
//!    chunk within the account's POST budget, polls each activity, reads its CSV log, then
//!    verifies the assignment through Apple's linkage and updates the mirror. See
//!    [`runner`] for the states and the reconciliation after a crash or an unclear answer.
//! 4. The job finishes `completed`, `completed_with_failures`, `failed` or, after
//!    [`cancel_job`], `cancelled` (audit `job.finish` / `job.cancel`).
//!
//! The UI reads [`get_job`], [`list_jobs`], [`job_items`] (keyset pages of per-serial
//! results) and [`job_progress`] (live: chunks, devices done, waiting for the POST budget,
//! Apple's latest activity status), and offers [`retry_failed`].

pub mod runner;

use std::fmt;

pub mod drafts;
pub mod input;
pub mod preview;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::accounts::ApiAccountId;
use crate::audit::{self, Actor, AuditAction};
use crate::orgs::OrgId;
use crate::store::jobs::NewJobRecord;
use crate::store::{Store, StoreError};

pub use runner::JobRunner;

/// What a job asks Apple to do with each of its devices (one `orgDeviceActivities` type).
///
/// Release from the organization is irreversible and deliberately not offered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobAction {
    /// Assign to a device management service (Apple id of the `mdmServers` resource).
    Assign { service_id: String },
    /// Unassign from the service the devices are on.
    Unassign { service_id: String },
    /// Assign and let the devices migrate without erasing by a deadline (at most 90 days ahead).
    AssignWithMigrationDeadline {
        service_id: String,
        #[serde(with = "time::serde::timestamp")]
        deadline: OffsetDateTime,
    },
    /// Move the deadline of a running migration.
    UpdateMigrationDeadline {
        #[serde(with = "time::serde::timestamp")]
        deadline: OffsetDateTime,
    },
    /// Cancel a running migration.
    CancelMigration,
}

impl JobAction {
    /// The stable name stored with a job and used in URLs and audit entries.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Assign { .. } => "assign",
            Self::Unassign { .. } => "unassign",
            Self::AssignWithMigrationDeadline { .. } => "assign_with_migration_deadline",
            Self::UpdateMigrationDeadline { .. } => "update_migration_deadline",
            Self::CancelMigration => "cancel_migration",
        }
    }

    /// The target service, for the actions that have one.
    pub fn service_id(&self) -> Option<&str> {
        match self {
            Self::Assign { service_id }
            | Self::Unassign { service_id }
            | Self::AssignWithMigrationDeadline { service_id, .. } => Some(service_id),
            Self::UpdateMigrationDeadline { .. } | Self::CancelMigration => None,
        }
    }

    /// The migration deadline, for the actions that carry one.
    pub fn deadline(&self) -> Option<OffsetDateTime> {
        match self {
            Self::AssignWithMigrationDeadline { deadline, .. }
            | Self::UpdateMigrationDeadline { deadline } => Some(*deadline),
            _ => None,
        }
    }

    /// Whether the devices end up on [`Self::service_id`] (checked after Apple's lag).
    pub fn assigns(&self) -> bool {
        matches!(
            self,
            Self::Assign { .. } | Self::AssignWithMigrationDeadline { .. }
        )
    }
}

/// Apple's largest activity, as far as it is known: the SPEC's guess and the simulator's
/// limit (Apple documents none). A larger chunk size is refused before anything is stored.
pub const APPLE_MAX_DEVICES_PER_ACTIVITY: u32 = 1000;
/// Longest page of [`job_items`] and [`list_jobs`].
pub const MAX_PAGE: u32 = 1000;

/// Identifies a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub i64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Written; waits for confirmation (or, confirmed, for the runner).
    Planned,
    /// The runner is sending, polling or verifying.
    Running,
    /// The runner waits for the account's POST budget (see `Job::waiting_until_ms`).
    Waiting,
    /// Cancelled while chunks were in flight at Apple; those still finish.
    Cancelling,
    Cancelled,
    /// Every device succeeded (or was skipped before sending).
    Completed,
    /// Some devices failed.
    CompletedWithFailures,
    /// Every device that was sent failed.
    Failed,
}
wire_names!(JobStatus {
    Planned = "planned",
    Running = "running",
    Waiting = "waiting",
    Cancelling = "cancelling",
    Cancelled = "cancelled",
    Completed = "completed",
    CompletedWithFailures = "completed_with_failures",
    Failed = "failed",
});

impl JobStatus {
    /// Whether the job has ended (nothing more will happen to it).
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            Self::Cancelled | Self::Completed | Self::CompletedWithFailures | Self::Failed
        )
    }
}

/// Where a chunk (one Apple activity) is: `planned → sending → submitted → completed | failed`,
/// or `cancelled` before it was sent. `sending` is persisted before the POST leaves, so a
/// chunk found `sending` may or may not have reached Apple (see [`runner`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChunkState {
    Planned,
    Sending,
    Submitted,
    Completed,
    Failed,
    Cancelled,
}
wire_names!(ChunkState {
    Planned = "planned",
    Sending = "sending",
    Submitted = "submitted",
    Completed = "completed",
    Failed = "failed",
    Cancelled = "cancelled",
});

/// What happened to one serial number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemOutcome {
    Pending,
    /// Apple's log says so (or reconciliation saw the intended state); `verified` tells
    /// whether the assignment was seen through the linkage afterwards.
    Succeeded,
    /// With Apple's reason (its CSV log, or its error for the whole activity) or Orchard's.
    Failed,
    /// Never sent, with Orchard's reason (from the preview, or "cancelled").
    Skipped,
}
wire_names!(ItemOutcome {
    Pending = "pending",
    Succeeded = "succeeded",
    Failed = "failed",
    Skipped = "skipped",
});

/// Devices per outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCounts {
    /// Every item, sent or skipped.
    pub devices: u64,
    pub pending: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub skipped: u64,
}

impl JobCounts {
    /// Devices with a final outcome.
    pub fn done(&self) -> u64 {
        self.succeeded + self.failed + self.skipped
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub org: OrgId,
    pub account: ApiAccountId,
    pub action: JobAction,
    /// Who created it (`None`: Orchard itself).
    pub created_by: Option<Uuid>,
    /// Unix seconds, like every human-facing time here.
    pub created_at: i64,
    pub confirmed_by: Option<Uuid>,
    pub confirmed_at: Option<i64>,
    pub status: JobStatus,
    /// The job whose failures this one retries.
    pub retry_of: Option<JobId>,
    pub chunk_size: u32,
    pub chunks: u32,
    pub counts: JobCounts,
    /// While `waiting`: when the next POST may go (Unix milliseconds).
    pub waiting_until_ms: Option<i64>,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

/// One chunk: the devices of one Apple activity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    pub job: JobId,
    pub index: u32,
    pub devices: u32,
    pub state: ChunkState,
    /// POSTs that may have reached Apple (a re-send after reconciliation adds one; a 429
    /// does not: Apple did not act).
    pub attempts: u32,
    /// 429s answered to its POSTs (for the backoff without `Retry-After`).
    pub rate_limited: u32,
    /// Apple's activity, once submitted.
    pub activity_id: Option<String>,
    /// When the last POST was started (Unix ms).
    pub sending_at_ms: Option<i64>,
    pub submitted_at: Option<i64>,
    /// `planned`: not sent before this (Retry-After or backoff), Unix ms.
    pub not_before_ms: Option<i64>,
    /// `submitted`: next poll; `sending`: when to reconcile. Unix ms.
    pub next_at_ms: Option<i64>,
    pub polls: u32,
    /// The activity's last `status` / `subStatus` as Apple reported them.
    pub apple_status: Option<String>,
    pub apple_sub_status: Option<String>,
    /// `completed`: when to check the assignment through the linkage (Unix ms); `None`
    /// once checked (or nothing to check).
    pub verify_at_ms: Option<i64>,
    pub verify_tries: u32,
    pub finished_at: Option<i64>,
    /// The last error, the failure reason, or what reconciliation found.
    pub note: Option<String>,
}

/// One serial number of a job and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobItem {
    pub serial: String,
    /// `None` for items skipped before sending.
    pub chunk: Option<u32>,
    pub outcome: ItemOutcome,
    pub reason: Option<String>,
    /// The new assignment was seen through Apple's linkage.
    pub verified: bool,
    /// The activity that decided the outcome, when known.
    pub activity_id: Option<String>,
}

/// Why a job operation failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(
        "chunk size {size} is above Apple's maximum of {max} devices per activity; use at most {max}"
    )]
    ChunkTooLarge { size: u32, max: u32 },
    #[error("invalid job: {0}")]
    Invalid(String),
    #[error("job not found")]
    NotFound,
    #[error("the job is {status} and cannot be {wanted}")]
    WrongState {
        status: &'static str,
        wanted: &'static str,
    },
    #[error("the job has no failed devices to retry")]
    NothingToRetry,
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for JobError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound { .. } => Self::NotFound,
            other => Self::Store(other),
        }
    }
}

/// `Result` of job operations.
pub type Result<T, E = JobError> = std::result::Result<T, E>;

/// A job to create: the preview's outcome, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub org: OrgId,
    /// The API account that sends it (must belong to `org`).
    pub account: ApiAccountId,
    pub action: JobAction,
    /// Serials to send, in order (distinct).
    pub to_send: Vec<String>,
    /// Serials not sent, with Orchard's reason (shown as `skipped`).
    pub skipped: Vec<(String, String)>,
    /// The job whose failures this one retries.
    pub retry_of: Option<JobId>,
    /// Devices per activity: 1..=[`APPLE_MAX_DEVICES_PER_ACTIVITY`] (`[jobs] chunk_size`).
    pub chunk_size: u32,
}

fn unix_now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Checks a chunk size against Apple's maximum.
pub fn check_chunk_size(size: u32) -> Result<()> {
    if size == 0 {
        return Err(JobError::Invalid(
            "chunk size must be at least 1".to_owned(),
        ));
    }
    if size > APPLE_MAX_DEVICES_PER_ACTIVITY {
        return Err(JobError::ChunkTooLarge {
            size,
            max: APPLE_MAX_DEVICES_PER_ACTIVITY,
        });
    }
    Ok(())
}

/// Writes a job, its chunks and items in one transaction (nothing is sent before
/// [`confirm_job`]), and records `job.create` for `actor` (the job's creator).
pub async fn create_job(store: &dyn Store, actor: &Actor, new: NewJob) -> Result<JobId> {
    check_chunk_size(new.chunk_size)?;
    let account = store.api_account(new.account).await?;
    if account.view.org_id != new.org {
        return Err(JobError::NotFound);
    }
    if account.view.revoked_at.is_some() {
        return Err(JobError::Invalid(
            "the API account is revoked; choose another one".to_owned(),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    let all = new.to_send.iter().chain(new.skipped.iter().map(|(s, _)| s));
    for serial in all {
        if serial.trim().is_empty() {
            return Err(JobError::Invalid("an empty serial number".to_owned()));
        }
        if !seen.insert(serial.as_str()) {
            return Err(JobError::Invalid(format!(
                "serial number {serial} appears twice"
            )));
        }
    }
    let id = store
        .create_job(&NewJobRecord {
            org: new.org,
            account: new.account,
            action: &new.action,
            created_by: actor.user_id,
            retry_of: new.retry_of,
            chunk_size: new.chunk_size,
            to_send: &new.to_send,
            skipped: &new.skipped,
            now: unix_now(),
        })
        .await?;
    audit::append(
        store,
        actor,
        AuditAction::JobCreated,
        &format!("job:{id}"),
        serde_json::json!({
            "org": new.org.to_string(),
            "account": new.account.to_string(),
            "action": new.action,
            "to_send": new.to_send.len(),
            "skipped": new.skipped.len(),
            "chunk_size": new.chunk_size,
            "retry_of": new.retry_of,
        }),
    )
    .await?;
    Ok(id)
}

/// One job of `org`. `NotFound` when it belongs to another organization.
pub async fn get_job(store: &dyn Store, org: OrgId, id: JobId) -> Result<Job> {
    let job = store.job(id).await?;
    if job.org != org {
        return Err(JobError::NotFound);
    }
    Ok(job)
}

/// The organization's jobs, newest first: ids below `before` (the last id of the previous
/// page), at most `limit` (≤ [`MAX_PAGE`]).
pub async fn list_jobs(
    store: &dyn Store,
    org: OrgId,
    before: Option<JobId>,
    limit: u32,
) -> Result<Vec<Job>> {
    Ok(store
        .list_jobs(org, before, limit.clamp(1, MAX_PAGE))
        .await?)
}

/// A device's history in Orchard: the organization's jobs that included `serial`, newest
/// first, at most `limit` (≤ [`MAX_PAGE`]), each with what happened to the device there.
pub async fn device_history(
    store: &dyn Store,
    org: OrgId,
    serial: &str,
    limit: u32,
) -> Result<Vec<(Job, JobItem)>> {
    Ok(store
        .device_jobs(org, serial, limit.clamp(1, MAX_PAGE))
        .await?)
}

/// Which items [`job_items`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemFilter {
    /// Only this outcome; `None`: all.
    pub outcome: Option<ItemOutcome>,
    /// Serials after this one (the previous page's `next`).
    pub after: Option<String>,
    /// At most this many (≤ [`MAX_PAGE`]).
    pub limit: u32,
}

/// A page of items, by serial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemPage {
    pub items: Vec<JobItem>,
    /// Pass as `after` for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// Per-serial results of a job of `org`, by serial, in keyset pages.
pub async fn job_items(
    store: &dyn Store,
    org: OrgId,
    job: JobId,
    filter: &ItemFilter,
) -> Result<ItemPage> {
    get_job(store, org, job).await?;
    let limit = filter.limit.clamp(1, MAX_PAGE);
    let items = store
        .job_items(job, filter.outcome, filter.after.as_deref(), limit)
        .await?;
    let next = (items.len() == limit as usize)
        .then(|| items.last().map(|i| i.serial.clone()))
        .flatten();
    Ok(ItemPage { items, next })
}

/// Confirms a planned job of `org` so the runner starts it (`job.confirm`). Prefer
/// [`JobRunner::confirm`], which also wakes the runner.
pub async fn confirm_job(store: &dyn Store, actor: &Actor, org: OrgId, id: JobId) -> Result<Job> {
    let job = get_job(store, org, id).await?;
    if !store.confirm_job(id, actor.user_id, unix_now()).await? {
        return Err(JobError::WrongState {
            status: if job.confirmed_at.is_some() {
                "already confirmed"
            } else {
                job.status.as_str()
            },
            wanted: "confirmed",
        });
    }
    audit::append(
        store,
        actor,
        AuditAction::JobConfirmed,
        &format!("job:{id}"),
        serde_json::json!({ "devices": job.counts.devices, "to_send": job.counts.pending }),
    )
    .await?;
    Ok(store.job(id).await?)
}

/// Cancels a job of `org` (`job.cancel`): chunks not yet sent are cancelled and their
/// devices skipped ("cancelled"); chunks already at Apple finish and report their outcome.
/// Returns the new status (`cancelled`, or `cancelling` while chunks are in flight).
pub async fn cancel_job(
    store: &dyn Store,
    actor: &Actor,
    org: OrgId,
    id: JobId,
) -> Result<JobStatus> {
    let job = get_job(store, org, id).await?;
    let Some(status) = store.cancel_job(id, unix_now()).await? else {
        return Err(JobError::WrongState {
            status: job.status.as_str(),
            wanted: "cancelled",
        });
    };
    audit::append(
        store,
        actor,
        AuditAction::JobCancelled,
        &format!("job:{id}"),
        serde_json::json!({ "status": status.as_str() }),
    )
    .await?;
    Ok(status)
}

/// Starts a new job for the failed devices of a finished job of `org`, linked to it
/// (`retry_of`), with the same account, action and chunk size. Confirm it like any job.
pub async fn retry_failed(
    store: &dyn Store,
    actor: &Actor,
    org: OrgId,
    id: JobId,
) -> Result<JobId> {
    let job = get_job(store, org, id).await?;
    if !job.status.is_finished() {
        return Err(JobError::WrongState {
            status: job.status.as_str(),
            wanted: "retried before it finished",
        });
    }
    let mut failed = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .job_items(id, Some(ItemOutcome::Failed), after.as_deref(), MAX_PAGE)
            .await?;
        let full = page.len() == MAX_PAGE as usize;
        after = page.last().map(|i| i.serial.clone());
        failed.extend(page.into_iter().map(|i| i.serial));
        if !full {
            break;
        }
    }
    if failed.is_empty() {
        return Err(JobError::NothingToRetry);
    }
    create_job(
        store,
        actor,
        NewJob {
            org,
            account: job.account,
            action: job.action,
            to_send: failed,
            skipped: Vec::new(),
            retry_of: Some(id),
            chunk_size: job.chunk_size,
        },
    )
    .await
}

/// Live progress of a job, for the progress page (read from the database, so any instance
/// can serve it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobProgress {
    pub job: Job,
    pub chunks_planned: u32,
    /// Being sent, or sent with no answer yet (awaiting reconciliation).
    pub chunks_sending: u32,
    /// At Apple, being processed.
    pub chunks_submitted: u32,
    pub chunks_completed: u32,
    pub chunks_failed: u32,
    pub chunks_cancelled: u32,
    /// Completed chunks whose assignment is still to be checked through the linkage.
    pub chunks_verifying: u32,
    /// Devices with a final outcome (`job.counts` has the split).
    pub devices_done: u64,
    /// The runner waits for the account's POST budget (or Apple's Retry-After).
    pub waiting_for_budget: bool,
    /// Seconds until the next POST may go, while waiting.
    pub next_slot_in_secs: Option<u64>,
    /// The latest activity Apple reported on, with its status and sub-status.
    pub activity_id: Option<String>,
    pub apple_status: Option<String>,
    pub apple_sub_status: Option<String>,
}

/// The progress of a job of `org`.
pub async fn job_progress(store: &dyn Store, org: OrgId, id: JobId) -> Result<JobProgress> {
    let job = get_job(store, org, id).await?;
    let chunks = store.job_chunks(id).await?;
    let count = |state: ChunkState| chunks.iter().filter(|c| c.state == state).count() as u32;
    let now_ms = OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000;
    let waiting = job.status == JobStatus::Waiting;
    let next_slot_in_secs = job.waiting_until_ms.filter(|_| waiting).map(|at| {
        u64::try_from((at - now_ms).max(0))
            .unwrap_or(0)
            .div_ceil(1000)
    });
    let latest = chunks
        .iter()
        .filter(|c| c.apple_status.is_some())
        .max_by_key(|c| (c.submitted_at, c.index));
    Ok(JobProgress {
        chunks_planned: count(ChunkState::Planned),
        chunks_sending: count(ChunkState::Sending),
        chunks_submitted: count(ChunkState::Submitted),
        chunks_completed: count(ChunkState::Completed),
        chunks_failed: count(ChunkState::Failed),
        chunks_cancelled: count(ChunkState::Cancelled),
        chunks_verifying: chunks
            .iter()
            .filter(|c| c.state == ChunkState::Completed && c.verify_at_ms.is_some())
            .count() as u32,
        devices_done: job.counts.done(),
        waiting_for_budget: waiting,
        next_slot_in_secs,
        activity_id: latest.and_then(|c| c.activity_id.clone()),
        apple_status: latest.and_then(|c| c.apple_status.clone()),
        apple_sub_status: latest.and_then(|c| c.apple_sub_status.clone()),
        job,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_round_trips_through_json_with_its_kind() {
        let deadline = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        for action in [
            JobAction::Assign {
                service_id: "S1".into(),
            },
            JobAction::Unassign {
                service_id: "S1".into(),
            },
            JobAction::AssignWithMigrationDeadline {
                service_id: "S2".into(),
                deadline,
            },
            JobAction::UpdateMigrationDeadline { deadline },
            JobAction::CancelMigration,
        ] {
            let json = serde_json::to_value(&action).unwrap();
            assert_eq!(json["kind"], action.kind());
            let back: JobAction = serde_json::from_value(json).unwrap();
            assert_eq!(back, action);
        }
    }
}
