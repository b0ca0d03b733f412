//! Storage of bulk-assignment jobs: the job, its chunks and one item per serial number.
//!
//! Every write that moves a chunk is conditional on the state the caller read
//! ([`JobStore::update_chunk`]), so two runners, or a runner and a cancel, can never both
//! move the same chunk: the loser's update changes nothing and it re-reads. Item outcomes
//! change in the same transaction as their chunk, and the job's counters with them.

use async_trait::async_trait;
use uuid::Uuid;

use super::{Result, StoreError, count};
use crate::accounts::ApiAccountId;
use crate::jobs::{Chunk, ChunkState, ItemOutcome, Job, JobAction, JobId, JobItem, JobStatus};
use crate::orgs::OrgId;

/// A job as written at creation: everything the runner will need, before anything is sent.
#[derive(Debug, Clone)]
pub struct NewJobRecord<'a> {
    pub org: OrgId,
    pub account: ApiAccountId,
    pub action: &'a JobAction,
    pub created_by: Option<Uuid>,
    pub retry_of: Option<JobId>,
    /// Devices per chunk (at least 1).
    pub chunk_size: u32,
    /// Serials to send, in order; chunk `i` gets `to_send[i * chunk_size ..]`.
    pub to_send: &'a [String],
    /// Serials not sent, with Orchard's reason (outcome `skipped`).
    pub skipped: &'a [(String, String)],
    pub now: i64,
}

/// A new outcome for one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemUpdate {
    pub serial: String,
    pub outcome: ItemOutcome,
    pub reason: Option<String>,
    pub verified: bool,
    /// The activity that decided it, when known.
    pub activity_id: Option<String>,
}

#[async_trait]
pub trait JobStore: Send + Sync {
    /// Writes the job (status `planned`, not confirmed), its chunks and its items in one
    /// transaction.
    async fn create_job(&self, new: &NewJobRecord<'_>) -> Result<JobId>;

    /// One job. `NotFound` when there is none.
    async fn job(&self, id: JobId) -> Result<Job>;

    /// The organization's jobs, newest first, with ids below `before` (keyset), at most `limit`.
    async fn list_jobs(&self, org: OrgId, before: Option<JobId>, limit: u32) -> Result<Vec<Job>>;

    /// The jobs that retry `job`'s failures, oldest first.
    async fn job_retries(&self, job: JobId) -> Result<Vec<JobId>>;

    /// Items by serial (bytewise), after `after` (keyset), optionally of one outcome.
    async fn job_items(
        &self,
        job: JobId,
        outcome: Option<ItemOutcome>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<JobItem>>;

    /// The items of one chunk, by serial.
    async fn chunk_items(&self, job: JobId, chunk: u32) -> Result<Vec<JobItem>>;

    /// The job's chunks, by index.
    async fn job_chunks(&self, job: JobId) -> Result<Vec<Chunk>>;

    /// Confirmed jobs that are not finished (planned, running, waiting, cancelling), oldest first.
    async fn open_jobs(&self) -> Result<Vec<JobId>>;

    /// Marks a planned, unconfirmed job confirmed. Returns whether it was.
    async fn confirm_job(&self, job: JobId, by: Option<Uuid>, now: i64) -> Result<bool>;

    /// Sets `running` or `waiting` (with the next POST slot) on a job that is planned,
    /// running or waiting; never overrides a cancel or a finish. Returns whether it changed.
    async fn set_job_status(
        &self,
        job: JobId,
        status: JobStatus,
        waiting_until_ms: Option<i64>,
        now: i64,
    ) -> Result<bool>;

    /// Gives an unfinished job its final status. Returns whether it changed.
    async fn finish_job(&self, job: JobId, status: JobStatus, now: i64) -> Result<bool>;

    /// In one transaction: planned chunks become `cancelled` and their pending items
    /// `skipped` with reason "cancelled"; the job becomes `cancelled` when nothing is in
    /// flight (or it was never confirmed), `cancelling` otherwise. Returns the new status,
    /// or `None` when the job had already finished.
    async fn cancel_job(&self, job: JobId, now: i64) -> Result<Option<JobStatus>>;

    /// In one transaction, if the chunk is still in `expected`: writes every field of `chunk`
    /// (state, attempts, activity id, times, note...), applies `items`, and refreshes the
    /// job's counters. Returns whether the chunk was still in `expected`.
    async fn update_chunk(
        &self,
        chunk: &Chunk,
        expected: ChunkState,
        items: &[ItemUpdate],
        now: i64,
    ) -> Result<bool>;

    /// Notes a POST of `account` about to leave at `at_ms`, and forgets those sent before
    /// `forget_before_ms` (older than the write budget's window).
    async fn record_write(
        &self,
        account: ApiAccountId,
        at_ms: i64,
        forget_before_ms: i64,
    ) -> Result<()>;

    /// When `account`'s POSTs since `since_ms` were sent, oldest first.
    async fn recent_writes(&self, account: ApiAccountId, since_ms: i64) -> Result<Vec<i64>>;

    /// The organization's jobs that included `serial` (exact), newest first, at most
    /// `limit`, each with the device's item, in one query.
    async fn device_jobs(
        &self,
        org: OrgId,
        serial: &str,
        limit: u32,
    ) -> Result<Vec<(Job, JobItem)>>;

    /// Records in the mirror an assignment verified through Apple's linkage: the devices'
    /// service (`None`: unassigned) and status.
    async fn set_mirror_assignment(
        &self,
        org: OrgId,
        serials: &[String],
        service_id: Option<&str>,
        status: &str,
        now: i64,
    ) -> Result<()>;
}

/// Columns of a job, in [`JobRow`]'s order (ids as text on both databases).
pub(super) const JOB_COLUMNS: &str = "id, org_id, account_id, action, created_by, created_at, \
    confirmed_by, confirmed_at, status, retry_of, chunk_size, chunks, devices, pending, \
    succeeded, failed, skipped, waiting_until_ms, updated_at, finished_at";
/// Columns of a chunk, in [`ChunkRow`]'s order.
pub(super) const CHUNK_COLUMNS: &str = "job_id, idx, devices, state, attempts, rate_limited, activity_id, \
    sending_at_ms, submitted_at, not_before_ms, next_at_ms, polls, apple_status, \
    apple_sub_status, verify_at_ms, verify_tries, finished_at, note";
/// Columns of an item, in [`ItemRow`]'s order.
pub(super) const ITEM_COLUMNS: &str = "serial, chunk_idx, outcome, reason, verified, activity_id";
/// The statuses of a job the runner still works on (or that waits for confirmation).
pub(super) const OPEN_STATUSES: &str = "('planned', 'running', 'waiting', 'cancelling')";

#[derive(sqlx::FromRow)]
pub(super) struct JobRow {
    id: i64,
    org_id: String,
    account_id: String,
    action: String,
    created_by: Option<String>,
    created_at: i64,
    confirmed_by: Option<String>,
    confirmed_at: Option<i64>,
    status: String,
    retry_of: Option<i64>,
    chunk_size: i64,
    chunks: i64,
    devices: i64,
    pending: i64,
    succeeded: i64,
    failed: i64,
    skipped: i64,
    waiting_until_ms: Option<i64>,
    updated_at: i64,
    finished_at: Option<i64>,
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {detail}"))
}

fn uuid(what: &str, text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|e| corrupt(what, e))
}

fn small(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

impl TryFrom<JobRow> for Job {
    type Error = StoreError;

    fn try_from(row: JobRow) -> Result<Self> {
        Ok(Self {
            id: JobId(row.id),
            org: OrgId(uuid("jobs.org_id", &row.org_id)?),
            account: ApiAccountId(uuid("jobs.account_id", &row.account_id)?),
            action: serde_json::from_str(&row.action).map_err(|e| corrupt("jobs.action", e))?,
            created_by: row
                .created_by
                .as_deref()
                .map(|u| uuid("jobs.created_by", u))
                .transpose()?,
            created_at: row.created_at,
            confirmed_by: row
                .confirmed_by
                .as_deref()
                .map(|u| uuid("jobs.confirmed_by", u))
                .transpose()?,
            confirmed_at: row.confirmed_at,
            status: JobStatus::parse(&row.status)
                .ok_or_else(|| corrupt("jobs.status", &row.status))?,
            retry_of: row.retry_of.map(JobId),
            chunk_size: small(row.chunk_size),
            chunks: small(row.chunks),
            counts: crate::jobs::JobCounts {
                devices: count(row.devices),
                pending: count(row.pending),
                succeeded: count(row.succeeded),
                failed: count(row.failed),
                skipped: count(row.skipped),
            },
            waiting_until_ms: row.waiting_until_ms,
            updated_at: row.updated_at,
            finished_at: row.finished_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct ChunkRow {
    job_id: i64,
    idx: i64,
    devices: i64,
    state: String,
    attempts: i64,
    rate_limited: i64,
    activity_id: Option<String>,
    sending_at_ms: Option<i64>,
    submitted_at: Option<i64>,
    not_before_ms: Option<i64>,
    next_at_ms: Option<i64>,
    polls: i64,
    apple_status: Option<String>,
    apple_sub_status: Option<String>,
    verify_at_ms: Option<i64>,
    verify_tries: i64,
    finished_at: Option<i64>,
    note: Option<String>,
}

impl TryFrom<ChunkRow> for Chunk {
    type Error = StoreError;

    fn try_from(row: ChunkRow) -> Result<Self> {
        Ok(Self {
            job: JobId(row.job_id),
            index: small(row.idx),
            devices: small(row.devices),
            state: ChunkState::parse(&row.state)
                .ok_or_else(|| corrupt("job_chunks.state", &row.state))?,
            attempts: small(row.attempts),
            rate_limited: small(row.rate_limited),
            activity_id: row.activity_id,
            sending_at_ms: row.sending_at_ms,
            submitted_at: row.submitted_at,
            not_before_ms: row.not_before_ms,
            next_at_ms: row.next_at_ms,
            polls: small(row.polls),
            apple_status: row.apple_status,
            apple_sub_status: row.apple_sub_status,
            verify_at_ms: row.verify_at_ms,
            verify_tries: small(row.verify_tries),
            finished_at: row.finished_at,
            note: row.note,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct ItemRow {
    serial: String,
    chunk_idx: Option<i64>,
    outcome: String,
    reason: Option<String>,
    verified: bool,
    activity_id: Option<String>,
}

/// A job and one of its items ([`JobStore::device_jobs`]).
#[derive(sqlx::FromRow)]
pub(super) struct JobItemRow {
    #[sqlx(flatten)]
    job: JobRow,
    #[sqlx(flatten)]
    item: ItemRow,
}

impl TryFrom<JobItemRow> for (Job, JobItem) {
    type Error = StoreError;

    fn try_from(row: JobItemRow) -> Result<Self> {
        Ok((row.job.try_into()?, row.item.try_into()?))
    }
}

/// [`JobStore::device_jobs`]'s query: `job_columns` as the database writes
/// [`JOB_COLUMNS`] (no column name is shared by the two tables); `param(i)` writes the
/// i-th placeholder (org, serial, limit).
pub(super) fn device_jobs_sql(job_columns: &str, param: impl Fn(usize) -> String) -> String {
    format!(
        "SELECT {job_columns}, {ITEM_COLUMNS} FROM job_items \
         JOIN jobs ON jobs.id = job_items.job_id \
         WHERE jobs.org_id = {} AND job_items.serial = {} \
         ORDER BY job_items.job_id DESC LIMIT {}",
        param(1),
        param(2),
        param(3)
    )
}

impl TryFrom<ItemRow> for JobItem {
    type Error = StoreError;

    fn try_from(row: ItemRow) -> Result<Self> {
        Ok(Self {
            outcome: ItemOutcome::parse(&row.outcome)
                .ok_or_else(|| corrupt("job_items.outcome", &row.outcome))?,
            serial: row.serial,
            chunk: row.chunk_idx.map(small),
            reason: row.reason,
            verified: row.verified,
            activity_id: row.activity_id,
        })
    }
}

/// Binds every writable column of a chunk, in the order of [`CHUNK_SET`], then its key and the
/// expected state, for either database's query.
macro_rules! bind_chunk {
    ($query:expr, $chunk:expr, $expected:expr) => {
        $query
            .bind($chunk.state.as_str())
            .bind(i64::from($chunk.attempts))
            .bind(i64::from($chunk.rate_limited))
            .bind(&$chunk.activity_id)
            .bind($chunk.sending_at_ms)
            .bind($chunk.submitted_at)
            .bind($chunk.not_before_ms)
            .bind($chunk.next_at_ms)
            .bind(i64::from($chunk.polls))
            .bind(&$chunk.apple_status)
            .bind(&$chunk.apple_sub_status)
            .bind($chunk.verify_at_ms)
            .bind(i64::from($chunk.verify_tries))
            .bind($chunk.finished_at)
            .bind(&$chunk.note)
            .bind($chunk.job.0)
            .bind(i64::from($chunk.index))
            .bind($expected.as_str())
    };
}
pub(super) use bind_chunk;

/// The columns a chunk move writes, in [`bind_chunk`]'s order.
pub(super) const CHUNK_SET: [&str; 15] = [
    "state",
    "attempts",
    "rate_limited",
    "activity_id",
    "sending_at_ms",
    "submitted_at",
    "not_before_ms",
    "next_at_ms",
    "polls",
    "apple_status",
    "apple_sub_status",
    "verify_at_ms",
    "verify_tries",
    "finished_at",
    "note",
];

/// `UPDATE job_chunks SET ... WHERE job_id, idx, state` with placeholders made by `param(n)`
/// (1-based), for [`bind_chunk`].
pub(super) fn update_chunk_sql(param: impl Fn(usize) -> String) -> String {
    let set: Vec<String> = CHUNK_SET
        .iter()
        .enumerate()
        .map(|(i, column)| format!("{column} = {}", param(i + 1)))
        .collect();
    let n = CHUNK_SET.len();
    format!(
        "UPDATE job_chunks SET {} WHERE job_id = {} AND idx = {} AND state = {}",
        set.join(", "),
        param(n + 1),
        param(n + 2),
        param(n + 3)
    )
}

/// Converts fetched rows.
pub(super) fn convert<R, T>(rows: Vec<R>) -> Result<Vec<T>>
where
    T: TryFrom<R, Error = StoreError>,
{
    rows.into_iter().map(T::try_from).collect()
}
