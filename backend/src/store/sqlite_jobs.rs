//! SQLite implementation of [`JobStore`]. Items are inserted 500 rows per statement; every
//! chunk move is one transaction that starts with its conditional update, so the write lock
//! is taken first (no read-then-upgrade that WAL mode could refuse).

use async_trait::async_trait;
use sqlx::{QueryBuilder, Sqlite, Transaction};
use uuid::Uuid;

use super::jobs::{
    CHUNK_COLUMNS, ChunkRow, ITEM_COLUMNS, ItemRow, ItemUpdate, JOB_COLUMNS, JobItemRow, JobRow,
    JobStore, NewJobRecord, OPEN_STATUSES, bind_chunk, convert, device_jobs_sql, update_chunk_sql,
};
use super::{Result, SqliteStore, StoreError};
use crate::accounts::ApiAccountId;
use crate::jobs::{Chunk, ChunkState, ItemOutcome, Job, JobId, JobItem, JobStatus};
use crate::orgs::OrgId;

/// Items per multi-row insert (4 parameters each; SQLite allows 32766 per statement).
const INSERT_ROWS: usize = 500;

fn db(err: sqlx::Error) -> StoreError {
    StoreError::from_sqlx("job", err)
}

/// Recounts the job's items per outcome (uses `job_items_outcome_idx`).
async fn refresh_counts(tx: &mut Transaction<'_, Sqlite>, job: JobId, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE jobs SET \
         pending = (SELECT count(*) FROM job_items WHERE job_id = ? AND outcome = 'pending'), \
         succeeded = (SELECT count(*) FROM job_items WHERE job_id = ? AND outcome = 'succeeded'), \
         failed = (SELECT count(*) FROM job_items WHERE job_id = ? AND outcome = 'failed'), \
         skipped = (SELECT count(*) FROM job_items WHERE job_id = ? AND outcome = 'skipped'), \
         updated_at = ? WHERE id = ?",
    )
    .bind(job.0)
    .bind(job.0)
    .bind(job.0)
    .bind(job.0)
    .bind(now)
    .bind(job.0)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn create_job(&self, new: &NewJobRecord<'_>) -> Result<JobId> {
        let size = new.chunk_size.max(1) as usize;
        let chunks = new.to_send.len().div_ceil(size);
        let action = serde_json::to_string(new.action)
            .map_err(|e| StoreError::Corrupt(format!("job action: {e}")))?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO jobs (org_id, account_id, kind, action, created_by, created_at, status, \
             retry_of, chunk_size, chunks, devices, pending, skipped, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, 'planned', ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(new.org.0.to_string())
        .bind(new.account.0.to_string())
        .bind(new.action.kind())
        .bind(action)
        .bind(new.created_by.map(|u| u.to_string()))
        .bind(new.now)
        .bind(new.retry_of.map(|j| j.0))
        .bind(i64::from(new.chunk_size))
        .bind(chunks as i64)
        .bind((new.to_send.len() + new.skipped.len()) as i64)
        .bind(new.to_send.len() as i64)
        .bind(new.skipped.len() as i64)
        .bind(new.now)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        for (index, serials) in new.to_send.chunks(size).enumerate() {
            sqlx::query(
                "INSERT INTO job_chunks (job_id, idx, devices, state) VALUES (?, ?, ?, 'planned')",
            )
            .bind(id)
            .bind(index as i64)
            .bind(serials.len() as i64)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            for batch in serials.chunks(INSERT_ROWS) {
                let mut insert = QueryBuilder::<Sqlite>::new(
                    "INSERT INTO job_items (job_id, serial, chunk_idx, outcome) ",
                );
                insert.push_values(batch, |mut row, serial| {
                    row.push_bind(id)
                        .push_bind(serial)
                        .push_bind(index as i64)
                        .push_bind("pending");
                });
                insert.build().execute(&mut *tx).await.map_err(db)?;
            }
        }
        for batch in new.skipped.chunks(INSERT_ROWS) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO job_items (job_id, serial, outcome, reason) ",
            );
            insert.push_values(batch, |mut row, (serial, reason)| {
                row.push_bind(id)
                    .push_bind(serial)
                    .push_bind("skipped")
                    .push_bind(reason);
            });
            insert.build().execute(&mut *tx).await.map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(JobId(id))
    }

    async fn job(&self, id: JobId) -> Result<Job> {
        sqlx::query_as::<_, JobRow>(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?"))
            .bind(id.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?
            .try_into()
    }

    async fn list_jobs(&self, org: OrgId, before: Option<JobId>, limit: u32) -> Result<Vec<Job>> {
        let mut query =
            QueryBuilder::<Sqlite>::new(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE org_id = "));
        query.push_bind(org.0.to_string());
        if let Some(before) = before {
            query.push(" AND id < ").push_bind(before.0);
        }
        query
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(limit));
        convert(
            query
                .build_query_as::<JobRow>()
                .fetch_all(&self.pool)
                .await
                .map_err(db)?,
        )
    }

    async fn job_retries(&self, job: JobId) -> Result<Vec<JobId>> {
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM jobs WHERE retry_of = ? ORDER BY id")
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
        let mut query = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {ITEM_COLUMNS} FROM job_items WHERE job_id = "
        ));
        query.push_bind(job.0);
        if let Some(outcome) = outcome {
            query.push(" AND outcome = ").push_bind(outcome.as_str());
        }
        if let Some(after) = after {
            query.push(" AND serial > ").push_bind(after);
        }
        query
            .push(" ORDER BY serial LIMIT ")
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
                "SELECT {ITEM_COLUMNS} FROM job_items WHERE job_id = ? AND chunk_idx = ? \
                 ORDER BY serial"
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
                "SELECT {CHUNK_COLUMNS} FROM job_chunks WHERE job_id = ? ORDER BY idx"
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
            "UPDATE jobs SET confirmed_at = ?, confirmed_by = ?, updated_at = ? \
             WHERE id = ? AND confirmed_at IS NULL AND status = 'planned'",
        )
        .bind(now)
        .bind(by.map(|u| u.to_string()))
        .bind(now)
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
            "UPDATE jobs SET status = ?, waiting_until_ms = ?, updated_at = ? \
             WHERE id = ? AND status IN ('planned', 'running', 'waiting')",
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
            "UPDATE jobs SET status = ?, waiting_until_ms = NULL, updated_at = ?, \
             finished_at = ? WHERE id = ? AND status IN {OPEN_STATUSES}"
        ))
        .bind(status.as_str())
        .bind(now)
        .bind(now)
        .bind(job.0)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn cancel_job(&self, job: JobId, now: i64) -> Result<Option<JobStatus>> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Writes first (the write lock before any read); a finished job has no planned chunk,
        // so these change nothing there. Items before their chunks, in one transaction.
        sqlx::query(
            "UPDATE job_items SET outcome = 'skipped', reason = 'cancelled' \
             WHERE job_id = ? AND outcome = 'pending' AND chunk_idx IN \
             (SELECT idx FROM job_chunks WHERE job_id = ? AND state = 'planned')",
        )
        .bind(job.0)
        .bind(job.0)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        sqlx::query(
            "UPDATE job_chunks SET state = 'cancelled', note = 'cancelled', finished_at = ? \
             WHERE job_id = ? AND state = 'planned'",
        )
        .bind(now)
        .bind(job.0)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let (status, confirmed): (String, Option<i64>) =
            sqlx::query_as("SELECT status, confirmed_at FROM jobs WHERE id = ?")
                .bind(job.0)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        if JobStatus::parse(&status).is_none_or(JobStatus::is_finished) {
            return Ok(None);
        }
        let in_flight: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM job_chunks WHERE job_id = ? AND \
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
            "UPDATE jobs SET status = ?, waiting_until_ms = NULL, finished_at = ? WHERE id = ?",
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
        let sql = update_chunk_sql(|_| "?".to_owned());
        let moved = bind_chunk!(sqlx::query(&sql), chunk, expected)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if moved.rows_affected() != 1 {
            return Ok(false);
        }
        for item in items {
            sqlx::query(
                "UPDATE job_items SET outcome = ?, reason = ?, verified = ?, activity_id = ? \
                 WHERE job_id = ? AND serial = ?",
            )
            .bind(item.outcome.as_str())
            .bind(&item.reason)
            .bind(item.verified)
            .bind(&item.activity_id)
            .bind(chunk.job.0)
            .bind(&item.serial)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        if !items.is_empty() {
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
            sqlx::query_as::<_, JobItemRow>(&device_jobs_sql(JOB_COLUMNS, |_| "?".to_owned()))
                .bind(org.0.to_string())
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
        let mut tx = self.pool.begin().await.map_err(db)?;
        for batch in serials.chunks(INSERT_ROWS) {
            let mut update = QueryBuilder::<Sqlite>::new("UPDATE mirror_devices SET service_id = ");
            update
                .push_bind(service_id)
                .push(", status = ")
                .push_bind(status)
                .push(", changed_at = ")
                .push_bind(now)
                .push(" WHERE org_id = ")
                .push_bind(org.0.to_string())
                .push(" AND serial IN (");
            let mut list = update.separated(", ");
            for serial in batch {
                list.push_bind(serial);
            }
            update.push(")");
            update.build().execute(&mut *tx).await.map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn record_write(
        &self,
        account: ApiAccountId,
        at_ms: i64,
        forget_before_ms: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("DELETE FROM api_writes WHERE account_id = ? AND sent_at_ms < ?")
            .bind(account.0.to_string())
            .bind(forget_before_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query("INSERT INTO api_writes (account_id, sent_at_ms) VALUES (?, ?)")
            .bind(account.0.to_string())
            .bind(at_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn recent_writes(&self, account: ApiAccountId, since_ms: i64) -> Result<Vec<i64>> {
        sqlx::query_scalar(
            "SELECT sent_at_ms FROM api_writes WHERE account_id = ? AND sent_at_ms >= ? \
             ORDER BY sent_at_ms",
        )
        .bind(account.0.to_string())
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(db)
    }
}
