//! PostgreSQL implementation of [`AccountStore`]. Serialised writes take a
//! transaction-scoped advisory lock (one key per purpose), so a count-then-insert or a
//! read-head-then-append cannot interleave with another instance's.

use async_trait::async_trait;
use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

use super::accounts::{AccountStore, ChainHash, MAX_ACCOUNTS_CONSTRAINT, Reseal};
use super::{PostgresStore, Result, StoreError};
use crate::accounts::{
    AccountKind, AccountUrls, ApiAccountId, ApiAccountRecord, ApiAccountView, HealthUpdate,
    KeyChange,
};
use crate::audit::{AuditDraft, AuditEntry, AuditFilter, AuditPage, GENESIS_HASH};
use crate::orgs::OrgId;
use crate::vault::{KEY_CHECK_NAME, Sealed, SealedColumn};

/// Advisory lock serialising audit appends ("orchaudt").
const AUDIT_LOCK: i64 = 0x6F72_6368_6175_6474;
/// Advisory lock serialising API account inserts ("orchacct").
const ACCOUNTS_LOCK: i64 = 0x6F72_6368_6163_6374;
/// Advisory lock serialising master-key rotation ("orchvalt").
const VAULT_LOCK: i64 = 0x6F72_6368_7661_6C74;

const ACCOUNT_COLUMNS: &str = "id, org_id, name, kind, client_id, key_id, api_base_url, \
    token_url, audience, private_key_nonce, private_key_ciphertext, key_fingerprint, \
    created_at, rotated_at, revoked_at, last_token_at, last_success_at, last_error, \
    rate_limited_count";

#[derive(FromRow)]
struct AccountRow {
    id: Uuid,
    org_id: Uuid,
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
    created_at: OffsetDateTime,
    rotated_at: Option<OffsetDateTime>,
    revoked_at: Option<OffsetDateTime>,
    last_token_at: Option<OffsetDateTime>,
    last_success_at: Option<OffsetDateTime>,
    last_error: Option<String>,
    rate_limited_count: i64,
}

fn corrupt(field: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("api_accounts.{field}: {e}"))
}

impl TryFrom<AccountRow> for ApiAccountRecord {
    type Error = StoreError;

    fn try_from(row: AccountRow) -> Result<Self> {
        Ok(Self {
            view: ApiAccountView {
                id: ApiAccountId(row.id),
                org_id: OrgId(row.org_id),
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
                created_at: row.created_at,
                rotated_at: row.rotated_at,
                revoked_at: row.revoked_at,
                last_token_at: row.last_token_at,
                last_success_at: row.last_success_at,
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
    at: OffsetDateTime,
    actor: String,
    client_addr: Option<String>,
    action: String,
    subject: String,
    details: String,
    hash: String,
}

impl From<AuditRow> for AuditEntry {
    fn from(row: AuditRow) -> Self {
        Self {
            seq: row.seq,
            at: row.at,
            actor: row.actor,
            client_addr: row.client_addr,
            action: row.action,
            subject: row.subject,
            details: row.details,
            hash: row.hash,
        }
    }
}

fn one_row(done: sqlx::postgres::PgQueryResult) -> Result<()> {
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

async fn lock(tx: &mut sqlx::PgConnection, key: i64) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(key)
        .execute(tx)
        .await
        .map(drop)
        .map_err(StoreError::Database)
}

#[async_trait]
impl AccountStore for PostgresStore {
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
            sqlx::query_as("SELECT nonce, ciphertext FROM vault_meta WHERE name = $1")
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
            "INSERT INTO vault_meta (name, nonce, ciphertext) VALUES ($1, $2, $3) \
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
        let mut tx = self.pool.begin().await.map_err(StoreError::Database)?;
        lock(&mut tx, VAULT_LOCK).await?;
        let mut count = 0;
        for column in columns {
            // FOR UPDATE: no other instance writes these rows until the new key is in.
            let select = format!(
                "SELECT CAST({id} AS TEXT), {nonce}, {ct} FROM {table} WHERE {ct} IS NOT NULL FOR UPDATE",
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
                "UPDATE {table} SET {nonce} = $1, {ct} = $2 WHERE CAST({id} AS TEXT) = $3",
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
        let mut tx = self.pool.begin().await.map_err(StoreError::Database)?;
        lock(&mut tx, ACCOUNTS_LOCK).await?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_accounts WHERE org_id = $1")
            .bind(v.org_id.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        if usize::try_from(count).unwrap_or(usize::MAX) >= max_per_org {
            return Err(StoreError::Conflict {
                constraint: MAX_ACCOUNTS_CONSTRAINT.to_owned(),
            });
        }
        sqlx::query(&format!(
            "INSERT INTO api_accounts ({ACCOUNT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, \
             $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
        ))
        .bind(v.id.0)
        .bind(v.org_id.0)
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
        .bind(v.created_at)
        .bind(v.rotated_at)
        .bind(v.revoked_at)
        .bind(v.last_token_at)
        .bind(v.last_success_at)
        .bind(&v.last_error)
        .bind(v.rate_limited_count)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(StoreError::Database)
    }

    async fn api_account(&self, id: ApiAccountId) -> Result<ApiAccountRecord> {
        sqlx::query_as::<_, AccountRow>(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM api_accounts WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?
        .try_into()
    }

    async fn list_api_accounts(&self, org: OrgId) -> Result<Vec<ApiAccountRecord>> {
        sqlx::query_as::<_, AccountRow>(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM api_accounts WHERE org_id = $1 ORDER BY name, id"
        ))
        .bind(org.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .into_iter()
        .map(ApiAccountRecord::try_from)
        .collect()
    }

    async fn update_api_account_key(&self, id: ApiAccountId, change: &KeyChange) -> Result<()> {
        let done = sqlx::query(
            "UPDATE api_accounts SET key_id = $1, private_key_nonce = $2, \
             private_key_ciphertext = $3, key_fingerprint = $4, rotated_at = $5, \
             revoked_at = NULL, last_error = NULL WHERE id = $6",
        )
        .bind(&change.key_id)
        .bind(change.sealed_key.nonce.as_slice())
        .bind(&change.sealed_key.ciphertext)
        .bind(&change.key_fingerprint)
        .bind(change.at)
        .bind(id.0)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        one_row(done)
    }

    async fn update_api_account_urls(&self, id: ApiAccountId, urls: &AccountUrls) -> Result<()> {
        let done = sqlx::query(
            "UPDATE api_accounts SET api_base_url = $1, token_url = $2, audience = $3 WHERE id = $4",
        )
        .bind(&urls.api_base_url)
        .bind(&urls.token_url)
        .bind(&urls.audience)
        .bind(id.0)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        one_row(done)
    }

    async fn revoke_api_account(&self, id: ApiAccountId, at: OffsetDateTime) -> Result<()> {
        let done = sqlx::query(
            "UPDATE api_accounts SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2",
        )
        .bind(at)
        .bind(id.0)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        one_row(done)
    }

    async fn delete_api_account(&self, id: ApiAccountId) -> Result<()> {
        let done = sqlx::query("DELETE FROM api_accounts WHERE id = $1")
            .bind(id.0)
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
             last_token_at = COALESCE($1, last_token_at), \
             last_success_at = COALESCE($2, last_success_at), \
             last_error = CASE WHEN $2 IS NOT NULL THEN NULL ELSE COALESCE($3, last_error) END, \
             rate_limited_count = rate_limited_count + $4 \
             WHERE id = $5",
        )
        .bind(update.token_at)
        .bind(update.success_at)
        .bind(&update.error)
        .bind(i64::from(update.rate_limited))
        .bind(id.0)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        one_row(done)
    }

    async fn has_api_accounts_outside(&self, except_slug: &str) -> Result<bool> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM api_accounts a JOIN organizations o ON o.id = a.org_id \
             WHERE o.slug <> $1)",
        )
        .bind(except_slug)
        .fetch_one(&self.pool)
        .await
        .map_err(db)
    }

    async fn append_audit(&self, draft: &AuditDraft, hash: &ChainHash<'_>) -> Result<AuditEntry> {
        let mut tx = self.pool.begin().await.map_err(StoreError::Database)?;
        lock(&mut tx, AUDIT_LOCK).await?;
        let head: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::Database)?;
        let (prev_seq, prev_hash) = head.unwrap_or((0, GENESIS_HASH.to_owned()));
        let now = OffsetDateTime::now_utc();
        // PostgreSQL keeps microseconds: hash exactly what will be read back.
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
            "INSERT INTO audit_log (seq, at, actor, client_addr, action, subject, details, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(entry.seq)
        .bind(entry.at)
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
        Ok(sqlx::query_as::<_, AuditRow>(
            "SELECT seq, at, actor, client_addr, action, subject, details, hash \
             FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::Database)?
        .into_iter()
        .map(AuditEntry::from)
        .collect())
    }

    async fn list_audit(&self, filter: &AuditFilter, page: AuditPage) -> Result<Vec<AuditEntry>> {
        Ok(sqlx::query_as::<_, AuditRow>(
            "SELECT seq, at, actor, client_addr, action, subject, details, hash \
             FROM audit_log \
             WHERE ($1::text IS NULL OR actor = $1) AND ($2::text IS NULL OR action = $2) \
               AND ($3::text IS NULL OR subject = $3) AND ($4::timestamptz IS NULL OR at >= $4) \
               AND ($5::timestamptz IS NULL OR at < $5) AND ($6::bigint IS NULL OR seq < $6) \
             ORDER BY seq DESC LIMIT $7",
        )
        .bind(&filter.actor)
        .bind(&filter.action)
        .bind(&filter.subject)
        .bind(filter.since)
        .bind(filter.until)
        .bind(page.before)
        .bind(i64::from(page.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::Database)?
        .into_iter()
        .map(AuditEntry::from)
        .collect())
    }
}
