//! Storage of the bulk-assignment wizard's drafts ([`crate::jobs::drafts`]).
//!
//! Every read and write names the draft's creator: a draft of another user reads as
//! `NotFound`, exactly like one that does not exist or has expired, so ids cannot be probed.
//!
//! The SQL is written once ([`sql`] spells its placeholders per database) and one macro
//! implements the trait for both stores: ids bind as text (PostgreSQL casts them to `uuid`,
//! the action to `jsonb`) and read back as text, so the row type is shared too.

use async_trait::async_trait;
use sqlx::FromRow;
use uuid::Uuid;

use super::search::Dialect;
use super::{PostgresStore, Result, SqliteStore, StoreError};
use crate::identity::UserId;
use crate::jobs::JobAction;
use crate::jobs::drafts::{DRAFT_TTL_SECS, Draft, DraftId, DraftInput, DraftSource};
use crate::orgs::OrgId;

#[async_trait]
pub trait DraftStore: Send + Sync {
    /// Stores a new draft.
    async fn create_draft(&self, draft: &Draft) -> Result<()>;

    /// The draft `id` of `user`, unless it expired by `now`. `NotFound` otherwise.
    async fn draft(&self, id: DraftId, user: UserId, now: i64) -> Result<Draft>;

    /// Replaces the draft's input (the action stays), renewing its expiry.
    async fn update_draft_input(
        &self,
        id: DraftId,
        user: UserId,
        input: &DraftInput,
        now: i64,
    ) -> Result<Draft>;

    /// Sets the draft's action, renewing its expiry.
    async fn set_draft_action(
        &self,
        id: DraftId,
        user: UserId,
        action: &JobAction,
        now: i64,
    ) -> Result<Draft>;

    /// Deletes the draft (when it became a job). Deleting a missing one is not an error.
    async fn delete_draft(&self, id: DraftId, user: UserId) -> Result<()>;

    /// Deletes every draft expired at `now`; returns how many.
    async fn delete_expired_drafts(&self, now: i64) -> Result<u64>;
}

/// An `assignment_drafts` row with ids and the action as text (PostgreSQL casts them), the
/// same on both databases.
#[derive(FromRow)]
struct DraftRow {
    id: String,
    org_id: String,
    created_by: String,
    created_at: i64,
    updated_at: i64,
    expires_at: i64,
    source: String,
    label: String,
    input: String,
    csv_column: Option<i32>,
    action: Option<String>,
}

fn corrupt(field: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("assignment_drafts.{field}: {e}"))
}

fn uuid(field: &str, text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|e| corrupt(field, e))
}

impl TryFrom<DraftRow> for Draft {
    type Error = StoreError;

    fn try_from(row: DraftRow) -> Result<Self> {
        Ok(Self {
            id: DraftId(uuid("id", &row.id)?),
            org: OrgId(uuid("org_id", &row.org_id)?),
            created_by: UserId(uuid("created_by", &row.created_by)?),
            created_at: row.created_at,
            updated_at: row.updated_at,
            expires_at: row.expires_at,
            input: DraftInput {
                source: DraftSource::parse(&row.source)
                    .ok_or_else(|| corrupt("source", &row.source))?,
                text: row.input,
                csv_column: row
                    .csv_column
                    .map(|c| u32::try_from(c).map_err(|e| corrupt("csv_column", e)))
                    .transpose()?,
                label: row.label,
            },
            action: row
                .action
                .map(|a| serde_json::from_str(&a).map_err(|e| corrupt("action", e)))
                .transpose()?,
        })
    }
}

/// The action as stored (JSON text).
fn action_json(action: &JobAction) -> Result<String> {
    serde_json::to_string(action).map_err(|e| corrupt("action", e))
}

fn column(csv_column: Option<u32>) -> Option<i32> {
    csv_column.map(|c| i32::try_from(c).unwrap_or(i32::MAX))
}

/// Maps "no row" to the draft's `NotFound`.
fn db(e: sqlx::Error) -> StoreError {
    StoreError::from_sqlx("assignment draft", e)
}

/// Spells a statement for `dialect`: `{columns}` becomes the column list, and each
/// placeholder `?` (text or number), `?u` (a UUID as text) and `?j` (JSON as text) becomes
/// SQLite's `?` or PostgreSQL's `$n`, `$n::uuid`, `$n::jsonb`.
fn sql(dialect: Dialect, template: &str) -> String {
    const COLUMNS: &str = "id, org_id, created_by, created_at, updated_at, expires_at, source, \
        label, input, csv_column, action";
    const PG_COLUMNS: &str = "id::text AS id, org_id::text AS org_id, \
        created_by::text AS created_by, created_at, updated_at, expires_at, source, label, \
        input, csv_column, action::text AS action";
    let template = template.replace(
        "{columns}",
        match dialect {
            Dialect::Sqlite => COLUMNS,
            Dialect::Postgres => PG_COLUMNS,
        },
    );
    if dialect == Dialect::Sqlite {
        return template.replace("?u", "?").replace("?j", "?");
    }
    let mut out = String::with_capacity(template.len() + 32);
    let mut n = 0;
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '?' {
            out.push(c);
            continue;
        }
        n += 1;
        out.push_str(&format!("${n}"));
        match chars.peek() {
            Some('u') => out.push_str("::uuid"),
            Some('j') => out.push_str("::jsonb"),
            _ => continue,
        }
        chars.next();
    }
    out
}

const INSERT: &str = "INSERT INTO assignment_drafts (id, org_id, created_by, created_at, \
    updated_at, expires_at, source, label, input, csv_column, action) \
    VALUES (?u, ?u, ?u, ?, ?, ?, ?, ?, ?, ?, ?j)";
const SELECT: &str = "SELECT {columns} FROM assignment_drafts \
    WHERE id = ?u AND created_by = ?u AND expires_at > ?";
const UPDATE_INPUT: &str = "UPDATE assignment_drafts SET source = ?, label = ?, input = ?, \
    csv_column = ?, updated_at = ?, expires_at = ? \
    WHERE id = ?u AND created_by = ?u AND expires_at > ? RETURNING {columns}";
const UPDATE_ACTION: &str = "UPDATE assignment_drafts SET action = ?j, updated_at = ?, \
    expires_at = ? WHERE id = ?u AND created_by = ?u AND expires_at > ? RETURNING {columns}";
const DELETE: &str = "DELETE FROM assignment_drafts WHERE id = ?u AND created_by = ?u";
const DELETE_EXPIRED: &str = "DELETE FROM assignment_drafts WHERE expires_at <= ?";

/// Implements [`DraftStore`] for a store with a `pool`, in `dialect`.
macro_rules! draft_store {
    ($store:ty, $dialect:expr) => {
        #[async_trait]
        impl DraftStore for $store {
            async fn create_draft(&self, draft: &Draft) -> Result<()> {
                let action = draft.action.as_ref().map(action_json).transpose()?;
                sqlx::query(&sql($dialect, INSERT))
                    .bind(draft.id.to_string())
                    .bind(draft.org.0.to_string())
                    .bind(draft.created_by.0.to_string())
                    .bind(draft.created_at)
                    .bind(draft.updated_at)
                    .bind(draft.expires_at)
                    .bind(draft.input.source.as_str())
                    .bind(&draft.input.label)
                    .bind(&draft.input.text)
                    .bind(column(draft.input.csv_column))
                    .bind(action)
                    .execute(&self.pool)
                    .await
                    .map_err(db)?;
                Ok(())
            }

            async fn draft(&self, id: DraftId, user: UserId, now: i64) -> Result<Draft> {
                let row: DraftRow = sqlx::query_as(&sql($dialect, SELECT))
                    .bind(id.to_string())
                    .bind(user.0.to_string())
                    .bind(now)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db)?;
                row.try_into()
            }

            async fn update_draft_input(
                &self,
                id: DraftId,
                user: UserId,
                input: &DraftInput,
                now: i64,
            ) -> Result<Draft> {
                let row: DraftRow = sqlx::query_as(&sql($dialect, UPDATE_INPUT))
                    .bind(input.source.as_str())
                    .bind(&input.label)
                    .bind(&input.text)
                    .bind(column(input.csv_column))
                    .bind(now)
                    .bind(now + DRAFT_TTL_SECS)
                    .bind(id.to_string())
                    .bind(user.0.to_string())
                    .bind(now)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db)?;
                row.try_into()
            }

            async fn set_draft_action(
                &self,
                id: DraftId,
                user: UserId,
                action: &JobAction,
                now: i64,
            ) -> Result<Draft> {
                let row: DraftRow = sqlx::query_as(&sql($dialect, UPDATE_ACTION))
                    .bind(action_json(action)?)
                    .bind(now)
                    .bind(now + DRAFT_TTL_SECS)
                    .bind(id.to_string())
                    .bind(user.0.to_string())
                    .bind(now)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db)?;
                row.try_into()
            }

            async fn delete_draft(&self, id: DraftId, user: UserId) -> Result<()> {
                sqlx::query(&sql($dialect, DELETE))
                    .bind(id.to_string())
                    .bind(user.0.to_string())
                    .execute(&self.pool)
                    .await
                    .map_err(db)?;
                Ok(())
            }

            async fn delete_expired_drafts(&self, now: i64) -> Result<u64> {
                let done = sqlx::query(&sql($dialect, DELETE_EXPIRED))
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(db)?;
                Ok(done.rows_affected())
            }
        }
    };
}

draft_store!(SqliteStore, Dialect::Sqlite);
draft_store!(PostgresStore, Dialect::Postgres);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_spelled_per_database() {
        let t = "SELECT {columns} FROM t WHERE a = ?u AND b = ? AND c = ?j";
        assert_eq!(
            sql(Dialect::Postgres, t).split(" FROM ").nth(1).unwrap(),
            "t WHERE a = $1::uuid AND b = $2 AND c = $3::jsonb"
        );
        assert_eq!(
            sql(Dialect::Sqlite, t),
            "SELECT id, org_id, created_by, created_at, updated_at, expires_at, source, \
             label, input, csv_column, action FROM t WHERE a = ? AND b = ? AND c = ?"
        );
    }
}
