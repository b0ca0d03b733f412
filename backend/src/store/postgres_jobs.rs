//! PostgreSQL implementation of [`JobStore`]. Items travel as arrays (`UNNEST`), so creating
//! a job or settling a chunk of 1000 devices is one statement each; serials page bytewise
//! (`COLLATE "C"`), as on SQLite.

use async_trait::async_trait;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::jobs::{
    CHUNK_COLUMNS, ChunkRow, ITEM_COLUMNS, ItemRow, ItemUpdate, JobItemRow, JobRow, JobStore,
    NewJobRecord, OPEN_STATUSES, bind_chunk, convert, device_jobs_sql, update_chunk_sql,
};
use super::{PostgresStore, Result, StoreError};
use crate::accounts::ApiAccountId;
use crate::jobs::{Chunk, ChunkState, ItemOutcome, Job, JobId, JobItem, JobStatus};
use crate::orgs::OrgId;

/// [`super::jobs::JOB_COLUMNS`] with the UUID columns as text, for the shared row type.
const JOB_COLUMNS: &str = "id, org_id::text AS org_id, account_id::text AS account_id, action, \
    created_by::text AS created_by, created_at, confirmed_by::text AS confirmed_by, \
    confirmed_at, status, retry_of, chunk_size, chunks, devices, pending, succeeded, failed, \
    skipped, waiting_until_ms, updated_at, finished_at";

fn db(err: sqlx::Error) -> StoreError {
    StoreError::from_sqlx("job", err)
}

/// Recounts the job's items per outcome in one pass.
async fn refresh_counts(tx: &mut Transaction<'_, Postgres>, job: JobId, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE jobs SET pending = c.pending, succeeded = c.succeeded, failed = c.failed, \
         skipped = c.skipped, updated_at = $2 FROM (SELECT \
           count(*) FILTER (WHERE outcome = 'pending') AS pending, \
           count(*) FILTER (WHERE outcome = 'succeeded') AS succeeded, \
           count(*) FILTER (WHERE outcome = 'failed') AS failed, \
           count(*) FILTER (WHERE outcome = 'skipped') AS skipped \
           FROM job_items WHERE job_id = $1) c WHERE id = $1",
    )
    .bind(job.0)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}

#[async_trait]
impl JobStore for PostgresStore {
    async fn create_job(&self, new: &NewJobRecord<'_>) -> Result<JobId> {
        let size = new.chunk_size.max(1) as usize;
        let chunks = new.to_send.len().div_ceil(size);
        let action = serde_json::to_string(new.action)
            .map_err(|e| StoreError::Corrupt(format!("job action: {e}")))?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO jobs (org_id, account_id, kind, action, created_by, created_at, status, \
             retry_of, chunk_size, chunks, devices, pending, skipped, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'planned', $7, $8, $9, $10, $11, $12, $6) \
             RETURNING id",
        )
        .bind(new.org.0)
        .bind(new.account.0)
        .bind(new.action.kind())
        .bind(action)
        .bind(new.created_by)
        .bind(new.now)
        .bind(new.retry_of.map(|j| j.0))
        .bind(i64::from(new.chunk_size))
        .bind(chunks as i64)
        .bind((new.to_send.len() + new.skipped.len()) as i64)
        .bind(new.to_send.len() as i64)
        .bind(new.skipped.len() as i64)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let sizes: Vec<i64> = new.to_send.chunks(size).map(|c| c.len() as i64).collect();
        sqlx::query(
            "INSERT INTO job_chunks (job_id, idx, devices, state) \
             SELECT $1, ord - 1, devices, 'planned' FROM UNNEST($2::bigint[]) \
             WITH ORDINALITY AS u(devices, ord)",
        )
        .bind(id)
        .bind(&sizes)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let chunk_of: Vec<i64> = (0..new.to_send.len()).map(|i| (i / size) as i64).collect();
        sqlx::query(
            "INSERT INTO job_items (job_id, serial, chunk_idx, outcome) \
             SELECT $1, serial, chunk_idx, 'pending' FROM UNNEST($2::text[], $3::bigint[]) \
             AS u(serial, chunk_idx)",
        )
        .bind(id)
        .bind(new.to_send)
        .bind(&chunk_of)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let (serials, reasons): (Vec<&str>, Vec<&str>) = new
            .skipped
            .iter()
            .map(|(s, r)| (s.as_str(), r.as_str()))
            .unzip();
        sqlx::query(
            "INSERT INTO job_items (job_id, serial, outcome, reason) \
             SELECT $1, serial, 'skipped', reason FROM UNNEST($2::text[], $3::text[]) \
             AS u(serial, reason)",
        )
        .bind(id)
        .bind(&serials)
        .bind(&reasons)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(JobId(id))
    }

    async fn job(&self, id: JobId) -> Result<Job> {
        sqlx::query_as::<_, JobRow>(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"))
            .bind(id.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?
            .try_into()
    }

    async fn list_jobs(&self, org: OrgId, before: Option<JobId>, limit: u32) -> Result<Vec<Job>> {
        convert(
            sqlx::query_as::<_, JobRow>(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE org_id = $1 AND id < $2 \
                 ORDER BY id DESC LIMIT $3"
            ))
            .bind(org.0)
            .bind(before.map_or(i64::MAX, |b| b.0))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?,
        )
    }

    async fn job_retries(&self, job: JobId) -> Result<Vec<JobId>> {
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM jobs WHERE retry_of = $1 ORDER BY id")
                .bind(job.0)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        Ok(ids.into_iter().map(JobId).collect())
    }

    async fn job_items(
        &self,
        job: JobId,
        outcome: Option<ItemOutcome>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<JobItem>> {
        let mut query = sqlx::QueryBuilder::<Postgres>::new(format!(
            "SELECT {ITEM_COLUMNS} FROM job_items WHERE job_id = "
        ));
        query.push_bind(job.0);
        if let Some(outcome) = outcome {
            query.push(" AND outcome = ").push_bind(outcome.as_str());
        }
        if let Some(after) = after {
            query
                .push(" AND serial COLLATE \"C\" > ")
                .push_bind(after.to_owned());
        }
        query
            .push(" ORDER BY serial COLLATE \"C\" LIMIT ")
            .push_bind(i64::from(limit));
        convert(
            query
                .build_query_as::<ItemRow>()
                .fetch_all(&self.pool)
                .await
                .map_err(db)?,
        )
    }

    async fn chunk_items(&self, job: JobId, chunk: u32) -> Result<Vec<JobItem>> {
        convert(
            sqlx::query_as::<_, ItemRow>(&format!(
                "SELECT {ITEM_COLUMNS} FROM job_items WHERE job_id = $1 AND chunk_idx = $2 \
                 ORDER BY serial COLLATE \"C\""
            ))
            .bind(job.0)
            .bind(i64::from(chunk))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?,
        )
    }

    async fn job_chunks(&self, job: JobId) -> Result<Vec<Chunk>> {
        convert(
            sqlx::query_as::<_, ChunkRow>(&format!(
                "SELECT {CHUNK_COLUMNS} FROM job_chunks WHERE job_id = $1 ORDER BY idx"
            ))
            .bind(job.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?,
        )
    }

    async fn open_jobs(&self) -> Result<Vec<JobId>> {
        let ids: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM jobs WHERE status IN {OPEN_STATUSES} AND confirmed_at IS NOT NULL \
             ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(ids.into_iter().map(JobId).collect())
    }

    async fn confirm_job(&self, job: JobId, by: Option<Uuid>, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE jobs SET confirmed_at = $1, confirmed_by = $2, updated_at = $1 \
             WHERE id = $3 AND confirmed_at IS NULL AND status = 'planned'",
        )
        .bind(now)
        .bind(by)
        .bind(job.0)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_job_status(
        &self,
        job: JobId,
        status: JobStatus,
        waiting_until_ms: Option<i64>,
        now: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE jobs SET status = $1, waiting_until_ms = $2, updated_at = $3 \
             WHERE id = $4 AND status IN ('planned', 'running', 'waiting')",
        )
        .bind(status.as_str())
        .bind(waiting_until_ms)
        .bind(now)
        .bind(job.0)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn finish_job(&self, job: JobId, status: JobStatus, now: i64) -> Result<bool> {
        let done = sqlx::query(&format!(
            "UPDATE jobs SET status = $1, waiting_until_ms = NULL, updated_at = $2, \
             finished_at = $2 WHERE id = $3 AND status IN {OPEN_STATUSES}"
        ))
        .bind(status.as_str())
        .bind(now)
        .bind(job.0)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn cancel_job(&self, job: JobId, now: i64) -> Result<Option<JobStatus>> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // The job row first, locked: concurrent cancels and chunk moves queue behind it.
        let (status, confirmed): (String, Option<i64>) =
            sqlx::query_as("SELECT status, confirmed_at FROM jobs WHERE id = $1 FOR UPDATE")
                .bind(job.0)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        if JobStatus::parse(&status).is_none_or(JobStatus::is_finished) {
            return Ok(None);
        }
        // Chunks first: an item is skipped only with the chunk this cancel really moved.
        let cancelled: Vec<i64> = sqlx::query_scalar(
            "UPDATE job_chunks SET state = 'cancelled', note = 'cancelled', finished_at = $1 \
             WHERE job_id = $2 AND state = 'planned' RETURNING idx",
        )
        .bind(now)
        .bind(job.0)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        sqlx::query(
            "UPDATE job_items SET outcome = 'skipped', reason = 'cancelled' \
             WHERE job_id = $1 AND outcome = 'pending' AND chunk_idx = ANY($2)",
        )
        .bind(job.0)
        .bind(&cancelled)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let in_flight: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM job_chunks WHERE job_id = $1 AND \
             (state IN ('sending', 'submitted') OR (state = 'completed' AND verify_at_ms IS NOT NULL))",
        )
        .bind(job.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let status = if in_flight > 0 && confirmed.is_some() {
            JobStatus::Cancelling
        } else {
            JobStatus::Cancelled
        };
        sqlx::query(
            "UPDATE jobs SET status = $1, waiting_until_ms = NULL, finished_at = $2 WHERE id = $3",
        )
        .bind(status.as_str())
        .bind((status == JobStatus::Cancelled).then_some(now))
        .bind(job.0)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        refresh_counts(&mut tx, job, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(Some(status))
    }

    async fn update_chunk(
        &self,
        chunk: &Chunk,
        expected: ChunkState,
        items: &[ItemUpdate],
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let sql = update_chunk_sql(|n| format!("${n}"));
        let moved = bind_chunk!(sqlx::query(&sql), chunk, expected)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if moved.rows_affected() != 1 {
            return Ok(false);
        }
        if !items.is_empty() {
            let serials: Vec<&str> = items.iter().map(|i| i.serial.as_str()).collect();
            let outcomes: Vec<&str> = items.iter().map(|i| i.outcome.as_str()).collect();
            let reasons: Vec<Option<&str>> = items.iter().map(|i| i.reason.as_deref()).collect();
            let verified: Vec<bool> = items.iter().map(|i| i.verified).collect();
            let activities: Vec<Option<&str>> =
                items.iter().map(|i| i.activity_id.as_deref()).collect();
            sqlx::query(
                "UPDATE job_items SET outcome = u.outcome, reason = u.reason, \
                 verified = u.verified, activity_id = u.activity_id \
                 FROM UNNEST($2::text[], $3::text[], $4::text[], $5::bool[], $6::text[]) \
                 AS u(serial, outcome, reason, verified, activity_id) \
                 WHERE job_items.job_id = $1 AND job_items.serial = u.serial",
            )
            .bind(chunk.job.0)
            .bind(&serials)
            .bind(&outcomes)
            .bind(&reasons)
            .bind(&verified)
            .bind(&activities)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            refresh_counts(&mut tx, chunk.job, now).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn device_jobs(
        &self,
        org: OrgId,
        serial: &str,
        limit: u32,
    ) -> Result<Vec<(Job, JobItem)>> {
        convert(
            sqlx::query_as::<_, JobItemRow>(&device_jobs_sql(JOB_COLUMNS, |i| format!("${i}")))
                .bind(org.0)
                .bind(serial)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(db)?,
        )
    }

    async fn set_mirror_assignment(
        &self,
        org: OrgId,
        serials: &[String],
        service_id: Option<&str>,
        status: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE mirror_devices SET service_id = $1, status = $2, changed_at = $3 \
             WHERE org_id = $4 AND serial = ANY($5)",
        )
        // Planned with this call's serials: a plan cached while the mirror was small would
        // read the organization's devices whole.
        .persistent(false)
        .bind(service_id)
        .bind(status)
        .bind(now)
        .bind(org.0)
        .bind(serials)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn record_write(
        &self,
        account: ApiAccountId,
        at_ms: i64,
        forget_before_ms: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("DELETE FROM api_writes WHERE account_id = $1 AND sent_at_ms < $2")
            .bind(account.0)
            .bind(forget_before_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query("INSERT INTO api_writes (account_id, sent_at_ms) VALUES ($1, $2)")
            .bind(account.0)
            .bind(at_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn recent_writes(&self, account: ApiAccountId, since_ms: i64) -> Result<Vec<i64>> {
        sqlx::query_scalar(
            "SELECT sent_at_ms FROM api_writes WHERE account_id = $1 AND sent_at_ms >= $2 \
             ORDER BY sent_at_ms",
        )
        .bind(account.0)
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(db)
    }
}
