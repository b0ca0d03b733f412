//! SQLite implementation of [`AccountStore`]. Serialised writes use `BEGIN IMMEDIATE`,
//! which takes the database's write lock up front, so a count-then-insert or
//! read-head-then-append cannot interleave with another writer.

use async_trait::async_trait;
use sqlx::FromRow;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::accounts::{AccountStore, ChainHash, MAX_ACCOUNTS_CONSTRAINT, Reseal};
use super::sqlite::immediate;
use super::{Result, SqliteStore, StoreError};
use crate::accounts::{
    AccountKind, AccountUrls, ApiAccountId, ApiAccountRecord, ApiAccountView, HealthUpdate,
    KeyChange,
};
use crate::audit::{AuditDraft, AuditEntry, AuditFilter, AuditPage, GENESIS_HASH};
use crate::orgs::OrgId;
use crate::vault::{KEY_CHECK_NAME, Sealed, SealedColumn};

const ACCOUNT_COLUMNS: &str = "id, org_id, name, kind, client_id, key_id, api_base_url, \
    token_url, audience, private_key_nonce, private_key_ciphertext, key_fingerprint, \
    created_at, rotated_at, revoked_at, last_token_at, last_success_at, last_error, \
    rate_limited_count";

#[derive(FromRow)]
struct AccountRow {
    id: String,
    org_id: String,
    name: String,
    kind: String,
    client_id: String,
    key_id: String,
    api_base_url: String,
    token_url: String,
    audience: String,
    private_key_nonce: Vec<u8>,
    private_key_ciphertext: Vec<u8>,
    key_fingerprint: String,
    created_at: String,
    rotated_at: Option<String>,
    revoked_at: Option<String>,
    last_token_at: Option<String>,
    last_success_at: Option<String>,
    last_error: Option<String>,
    rate_limited_count: i64,
}

fn corrupt(field: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("api_accounts.{field}: {e}"))
}

fn parse_time(field: &str, text: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|e| corrupt(field, e))
}

fn parse_opt_time(field: &str, text: Option<String>) -> Result<Option<OffsetDateTime>> {
    text.map(|t| parse_time(field, &t)).transpose()
}

fn ts(at: OffsetDateTime) -> Result<String> {
    at.format(&Rfc3339)
        .map_err(|e| StoreError::Corrupt(format!("timestamp {at}: {e}")))
}

fn opt_ts(at: Option<OffsetDateTime>) -> Result<Option<String>> {
    at.map(ts).transpose()
}

impl TryFrom<AccountRow> for ApiAccountRecord {
    type Error = StoreError;

    fn try_from(row: AccountRow) -> Result<Self> {
        let id = Uuid::parse_str(&row.id).map_err(|e| corrupt("id", e))?;
        let org_id = Uuid::parse_str(&row.org_id).map_err(|e| corrupt("org_id", e))?;
        Ok(Self {
            view: ApiAccountView {
                id: ApiAccountId(id),
                org_id: OrgId(org_id),
                name: row.name,
                kind: AccountKind::parse(&row.kind).ok_or_else(|| corrupt("kind", &row.kind))?,
                client_id: row.client_id,
                key_id: row.key_id,
                urls: AccountUrls {
                    api_base_url: row.api_base_url,
                    token_url: row.token_url,
                    audience: row.audience,
                },
                key_fingerprint: row.key_fingerprint,
                created_at: parse_time("created_at", &row.created_at)?,
                rotated_at: parse_opt_time("rotated_at", row.rotated_at)?,
                revoked_at: parse_opt_time("revoked_at", row.revoked_at)?,
                last_token_at: parse_opt_time("last_token_at", row.last_token_at)?,
                last_success_at: parse_opt_time("last_success_at", row.last_success_at)?,
                last_error: row.last_error,
                rate_limited_count: row.rate_limited_count,
            },
            sealed_key: Sealed::from_parts(&row.private_key_nonce, row.private_key_ciphertext)
                .map_err(|e| corrupt("private_key_nonce", e))?,
        })
    }
}

#[derive(FromRow)]
struct AuditRow {
    seq: i64,
    at_us: i64,
    actor: String,
    client_addr: Option<String>,
    action: String,
    subject: String,
    details: String,
    hash: String,
}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = StoreError;

    fn try_from(row: AuditRow) -> Result<Self> {
        Ok(Self {
            seq: row.seq,
            at: OffsetDateTime::from_unix_timestamp_nanos(i128::from(row.at_us) * 1000)
                .map_err(|e| StoreError::Corrupt(format!("audit_log.at_us: {e}")))?,
            actor: row.actor,
            client_addr: row.client_addr,
            action: row.action,
            subject: row.subject,
            details: row.details,
            hash: row.hash,
        })
    }
}

fn micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

/// Rows updated must be exactly one, else the account does not exist.
fn one_row(done: sqlx::sqlite::SqliteQueryResult) -> Result<()> {
    if done.rows_affected() == 0 {
        Err(StoreError::NotFound {
            entity: "API account",
        })
    } else {
        Ok(())
    }
}

fn db(e: sqlx::Error) -> StoreError {
    StoreError::from_sqlx("API account", e)
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn has_sealed_values(&self, columns: &[SealedColumn]) -> Result<bool> {
        for column in columns.iter().filter(|c| c.holds_secrets) {
            let sql = format!(
                "SELECT EXISTS (SELECT 1 FROM {} WHERE {} IS NOT NULL)",
                column.table, column.ciphertext_column
            );
            let found: bool = sqlx::query_scalar(&sql)
                .fetch_one(&self.pool)
                .await
                .map_err(StoreError::Database)?;
            if found {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn key_check(&self) -> Result<Option<Sealed>> {
        let row: Option<(Vec<u8>, Vec<u8>)> =
            sqlx::query_as("SELECT nonce, ciphertext FROM vault_meta WHERE name = ?")
                .bind(KEY_CHECK_NAME)
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::Database)?;
        row.map(|(nonce, ct)| {
            Sealed::from_parts(&nonce, ct)
                .map_err(|e| StoreError::Corrupt(format!("vault_meta: {e}")))
        })
        .transpose()
    }

    async fn set_key_check(&self, sealed: &Sealed) -> Result<()> {
        sqlx::query(
            "INSERT INTO vault_meta (name, nonce, ciphertext) VALUES (?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET nonce = excluded.nonce, ciphertext = excluded.ciphertext",
        )
        .bind(KEY_CHECK_NAME)
        .bind(sealed.nonce.as_slice())
        .bind(&sealed.ciphertext)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(StoreError::Database)
    }

    async fn reseal_all(&self, columns: &[SealedColumn], reseal: &Reseal<'_>) -> Result<usize> {
        let mut tx = immediate(&self.pool).await?;
        let mut count = 0;
        for column in columns {
            let select = format!(
                "SELECT CAST({id} AS TEXT), {nonce}, {ct} FROM {table} WHERE {ct} IS NOT NULL",
                id = column.id_column,
                nonce = column.nonce_column,
                ct = column.ciphertext_column,
                table = column.table,
            );
            let rows: Vec<(String, Vec<u8>, Vec<u8>)> = sqlx::query_as(&select)
                .fetch_all(&mut *tx)
                .await
                .map_err(StoreError::Database)?;
            let update = format!(
                "UPDATE {table} SET {nonce} = ?, {ct} = ? WHERE CAST({id} AS TEXT) = ?",
                id = column.id_column,
                nonce = column.nonce_column,
                ct = column.ciphertext_column,
                table = column.table,
            );
            for (id, nonce, ct) in rows {
                let old = Sealed::from_parts(&nonce, ct)
                    .map_err(|e| StoreError::Corrupt(format!("{}: {e}", column.table)))?;
                let new = reseal(column, &id, &old).map_err(StoreError::Corrupt)?;
                sqlx::query(&update)
                    .bind(new.nonce.as_slice())
                    .bind(&new.ciphertext)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::Database)?;
                count += 1;
            }
        }
        tx.commit().await.map_err(StoreError::Database)?;
        Ok(count)
    }

    async fn insert_api_account(
        &self,
        record: &ApiAccountRecord,
        max_per_org: usize,
    ) -> Result<()> {
        let v = &record.view;
        let mut tx = immediate(&self.pool).await?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_accounts WHERE org_id = ?")
            .bind(v.org_id.0.to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        if usize::try_from(count).unwrap_or(usize::MAX) >= max_per_org {
            return Err(StoreError::Conflict {
                constraint: MAX_ACCOUNTS_CONSTRAINT.to_owned(),
            });
        }
        sqlx::query(&format!(
            "INSERT INTO api_accounts ({ACCOUNT_COLUMNS}) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(v.id.0.to_string())
        .bind(v.org_id.0.to_string())
        .bind(&v.name)
        .bind(v.kind.as_str())
        .bind(&v.client_id)
        .bind(&v.key_id)
        .bind(&v.urls.api_base_url)
        .bind(&v.urls.token_url)
        .bind(&v.urls.audience)
        .bind(record.sealed_key.nonce.as_slice())
        .bind(&record.sealed_key.ciphertext)
        .bind(&v.key_fingerprint)
        .bind(ts(v.created_at)?)
        .bind(opt_ts(v.rotated_at)?)
        .bind(opt_ts(v.revoked_at)?)
        .bind(opt_ts(v.last_token_at)?)
        .bind(opt_ts(v.last_success_at)?)
        .bind(&v.last_error)
        .bind(v.rate_limited_count)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(StoreError::Database)
    }

    async fn api_account(&self, id: ApiAccountId) -> Result<ApiAccountRecord> {
        sqlx::query_as::<_, AccountRow>(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM api_accounts WHERE id = ?"
        ))
        .bind(id.0.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(db)?
        .try_into()
    }

    async fn list_api_accounts(&self, org: OrgId) -> Result<Vec<ApiAccountRecord>> {
        sqlx::query_as::<_, AccountRow>(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM api_accounts WHERE org_id = ? ORDER BY name, id"
        ))
        .bind(org.0.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .into_iter()
        .map(ApiAccountRecord::try_from)
        .collect()
    }

    async fn update_api_account_key(&self, id: ApiAccountId, change: &KeyChange) -> Result<()> {
        let done = sqlx::query(
            "UPDATE api_accounts SET key_id = ?, private_key_nonce = ?, \
             private_key_ciphertext = ?, key_fingerprint = ?, rotated_at = ?, \
             revoked_at = NULL, last_error = NULL WHERE id = ?",
        )
        .bind(&change.key_id)
        .bind(change.sealed_key.nonce.as_slice())
        .bind(&change.sealed_key.ciphertext)
        .bind(&change.key_fingerprint)
        .bind(ts(change.at)?)
        .bind(id.0.to_string())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        one_row(done)
    }

    async fn update_api_account_urls(&self, id: ApiAccountId, urls: &AccountUrls) -> Result<()> {
        let done = sqlx::query(
            "UPDATE api_accounts SET api_base_url = ?, token_url = ?, audience = ? WHERE id = ?",
        )
        .bind(&urls.api_base_url)
        .bind(&urls.token_url)
        .bind(&urls.audience)
        .bind(id.0.to_string())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        one_row(done)
    }

    async fn revoke_api_account(&self, id: ApiAccountId, at: OffsetDateTime) -> Result<()> {
        let done = sqlx::query(
            "UPDATE api_accounts SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?",
        )
        .bind(ts(at)?)
        .bind(id.0.to_string())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        one_row(done)
    }

    async fn delete_api_account(&self, id: ApiAccountId) -> Result<()> {
        let done = sqlx::query("DELETE FROM api_accounts WHERE id = ?")
            .bind(id.0.to_string())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        one_row(done)
    }

    async fn record_api_account_health(
        &self,
        id: ApiAccountId,
        update: &HealthUpdate,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE api_accounts SET \
             last_token_at = COALESCE(?, last_token_at), \
             last_success_at = COALESCE(?, last_success_at), \
             last_error = CASE WHEN ? IS NOT NULL THEN NULL ELSE COALESCE(?, last_error) END, \
             rate_limited_count = rate_limited_count + ? \
             WHERE id = ?",
        )
        .bind(opt_ts(update.token_at)?)
        .bind(opt_ts(update.success_at)?)
        .bind(opt_ts(update.success_at)?)
        .bind(&update.error)
        .bind(i64::from(update.rate_limited))
        .bind(id.0.to_string())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        one_row(done)
    }

    async fn has_api_accounts_outside(&self, except_slug: &str) -> Result<bool> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM api_accounts a JOIN organizations o ON o.id = a.org_id \
             WHERE o.slug <> ?)",
        )
        .bind(except_slug)
        .fetch_one(&self.pool)
        .await
        .map_err(db)
    }

    async fn append_audit(&self, draft: &AuditDraft, hash: &ChainHash<'_>) -> Result<AuditEntry> {
        let mut tx = immediate(&self.pool).await?;
        let head: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::Database)?;
        let (prev_seq, prev_hash) = head.unwrap_or((0, GENESIS_HASH.to_owned()));
        let now = OffsetDateTime::now_utc();
        let at = now
            .replace_nanosecond(now.nanosecond() / 1000 * 1000)
            .unwrap_or(now);
        let entry = AuditEntry {
            seq: prev_seq + 1,
            at,
            actor: draft.actor.clone(),
            client_addr: draft.client_addr.clone(),
            action: draft.action.clone(),
            subject: draft.subject.clone(),
            details: draft.details.clone(),
            hash: hash(draft, prev_seq + 1, at, &prev_hash),
        };
        sqlx::query(
            "INSERT INTO audit_log (seq, at_us, actor, client_addr, action, subject, details, hash) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(entry.seq)
        .bind(micros(entry.at))
        .bind(&entry.actor)
        .bind(&entry.client_addr)
        .bind(&entry.action)
        .bind(&entry.subject)
        .bind(&entry.details)
        .bind(&entry.hash)
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::from_sqlx("audit entry", e))?;
        tx.commit().await.map_err(StoreError::Database)?;
        Ok(entry)
    }

    async fn audit_entries_after(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>> {
        sqlx::query_as::<_, AuditRow>(
            "SELECT seq, at_us, actor, client_addr, action, subject, details, hash \
             FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::Database)?
        .into_iter()
        .map(AuditEntry::try_from)
        .collect()
    }

    async fn list_audit(&self, filter: &AuditFilter, page: AuditPage) -> Result<Vec<AuditEntry>> {
        sqlx::query_as::<_, AuditRow>(
            "SELECT seq, at_us, actor, client_addr, action, subject, details, hash \
             FROM audit_log \
             WHERE (?1 IS NULL OR actor = ?1) AND (?2 IS NULL OR action = ?2) \
               AND (?3 IS NULL OR subject = ?3) AND (?4 IS NULL OR at_us >= ?4) \
               AND (?5 IS NULL OR at_us < ?5) AND (?6 IS NULL OR seq < ?6) \
             ORDER BY seq DESC LIMIT ?7",
        )
        .bind(&filter.actor)
        .bind(&filter.action)
        .bind(&filter.subject)
        .bind(filter.since.map(micros))
        .bind(filter.until.map(micros))
        .bind(page.before)
        .bind(i64::from(page.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::Database)?
        .into_iter()
        .map(AuditEntry::try_from)
        .collect()
    }
}
