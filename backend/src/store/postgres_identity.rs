//! PostgreSQL implementation of [`IdentityStore`].

use async_trait::async_trait;
use sqlx::{FromRow, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use super::identity::{
    AttemptStats, IdentityStore, Membership, NewUser, SealedSecret, SsoRoleRule, UserRow,
    memberships_from_json, username_key,
};
use super::{PostgresStore, Result, StoreError};
use crate::identity::{Role, UserId};
use crate::orgs::OrgId;

const USER_COLUMNS: &str = "id, username, display_name, email, password_hash, instance_admin, \
    disabled, totp_secret, totp_nonce, totp_enabled, oidc_issuer, oidc_subject, created_at, \
    last_login_at";

#[derive(FromRow)]
struct PgUserRow {
    id: Uuid,
    username: String,
    display_name: String,
    email: Option<String>,
    password_hash: Option<String>,
    instance_admin: bool,
    disabled: bool,
    totp_secret: Option<Vec<u8>>,
    totp_nonce: Option<Vec<u8>>,
    totp_enabled: bool,
    oidc_issuer: Option<String>,
    oidc_subject: Option<String>,
    created_at: OffsetDateTime,
    last_login_at: Option<OffsetDateTime>,
}

impl TryFrom<PgUserRow> for UserRow {
    type Error = StoreError;

    fn try_from(row: PgUserRow) -> Result<Self> {
        Ok(Self {
            id: UserId(row.id),
            username: row.username,
            display_name: row.display_name,
            email: row.email,
            password_hash: row.password_hash,
            instance_admin: row.instance_admin,
            disabled: row.disabled,
            totp_secret: match (row.totp_secret, row.totp_nonce) {
                (Some(ciphertext), Some(nonce)) => Some(SealedSecret { ciphertext, nonce }),
                _ => None,
            },
            totp_enabled: row.totp_enabled,
            oidc: row.oidc_issuer.zip(row.oidc_subject),
            created_at: row.created_at,
            last_login_at: row.last_login_at,
        })
    }
}

fn membership(row: &sqlx::postgres::PgRow) -> Result<Membership> {
    let role: String = row.try_get("role").map_err(StoreError::Database)?;
    Ok(Membership {
        user_id: UserId(row.try_get("user_id").map_err(StoreError::Database)?),
        org_id: OrgId(row.try_get("org_id").map_err(StoreError::Database)?),
        role: role
            .parse::<Role>()
            .map_err(|e| StoreError::Corrupt(format!("memberships.role: {e}")))?,
    })
}

/// `NotFound` when an update touched no row.
fn one_row(entity: &'static str, affected: u64) -> Result<()> {
    if affected == 0 {
        Err(StoreError::NotFound { entity })
    } else {
        Ok(())
    }
}

async fn insert_user<'e, E>(executor: E, new: &NewUser) -> Result<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    let (issuer, subject) = new.oidc.clone().unzip();
    sqlx::query(
        "INSERT INTO users (id, username, username_key, display_name, email, password_hash, \
         instance_admin, oidc_issuer, oidc_subject, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(new.id.0)
    .bind(&new.username)
    .bind(username_key(&new.username))
    .bind(&new.display_name)
    .bind(&new.email)
    .bind(&new.password_hash)
    .bind(new.instance_admin)
    .bind(issuer)
    .bind(subject)
    .bind(new.created_at)
    .execute(executor)
    .await
    .map_err(|e| StoreError::from_sqlx("user", e))?;
    Ok(())
}

#[async_trait]
impl IdentityStore for PostgresStore {
    async fn create_user(&self, new: &NewUser) -> Result<UserRow> {
        insert_user(&self.pool, new).await?;
        self.user(new.id).await
    }

    async fn user(&self, id: UserId) -> Result<UserRow> {
        sqlx::query_as::<_, PgUserRow>(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id.0)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| StoreError::from_sqlx("user", e))?
            .try_into()
    }

    async fn user_by_username(&self, username: &str) -> Result<UserRow> {
        sqlx::query_as::<_, PgUserRow>(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username_key = $1"
        ))
        .bind(username_key(username))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx("user", e))?
        .try_into()
    }

    async fn user_by_oidc(&self, issuer: &str, subject: &str) -> Result<UserRow> {
        sqlx::query_as::<_, PgUserRow>(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE oidc_issuer = $1 AND oidc_subject = $2"
        ))
        .bind(issuer)
        .bind(subject)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx("user", e))?
        .try_into()
    }

    async fn list_users(&self) -> Result<Vec<UserRow>> {
        sqlx::query_as::<_, PgUserRow>(&format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY username_key, id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx("user", e))?
        .into_iter()
        .map(UserRow::try_from)
        .collect()
    }

    async fn count_users(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::Database)?;
        Ok(n.unsigned_abs())
    }

    async fn set_password_hash(&self, id: UserId, hash: Option<&str>) -> Result<()> {
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(StoreError::Database)?;
        one_row("user", done.rows_affected())
    }

    async fn set_disabled(&self, id: UserId, disabled: bool) -> Result<()> {
        let done = sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
            .bind(disabled)
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(StoreError::Database)?;
        one_row("user", done.rows_affected())
    }

    async fn set_instance_admin(&self, id: UserId, instance_admin: bool) -> Result<()> {
        let done = sqlx::query("UPDATE users SET instance_admin = $1 WHERE id = $2")
            .bind(instance_admin)
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(StoreError::Database)?;
        one_row("user", done.rows_affected())
    }

    async fn set_profile(&self, id: UserId, display_name: &str, email: Option<&str>) -> Result<()> {
        let done = sqlx::query("UPDATE users SET display_name = $1, email = $2 WHERE id = $3")
            .bind(display_name)
            .bind(email)
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(StoreError::Database)?;
        one_row("user", done.rows_affected())
    }

    async fn set_totp(
        &self,
        id: UserId,
        secret: Option<&SealedSecret>,
        enabled: bool,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(StoreError::Database)?;
        let done = sqlx::query(
            "UPDATE users SET totp_secret = $1, totp_nonce = $2, totp_enabled = $3, \
             totp_last_step = NULL WHERE id = $4",
        )
        .bind(secret.map(|s| s.ciphertext.as_slice()))
        .bind(secret.map(|s| s.nonce.as_slice()))
        .bind(enabled && secret.is_some())
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::Database)?;
        one_row("user", done.rows_affected())?;
        if secret.is_none() {
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(id.0)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::Database)?;
        }
        tx.commit().await.map_err(StoreError::Database)
    }

    async fn advance_totp_step(&self, id: UserId, step: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE users SET totp_last_step = $1 \
             WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $3)",
        )
        .bind(step)
        .bind(id.0)
        .bind(step)
        .execute(&self.pool)
        .await
        .map_err(StoreError::Database)?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_last_login(&self, id: UserId, at: OffsetDateTime) -> Result<()> {
        let done = sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(StoreError::Database)?;
        one_row("user", done.rows_affected())
    }

    async fn replace_recovery_codes(&self, id: UserId, code_hashes: &[[u8; 32]]) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(StoreError::Database)?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::Database)?;
        for hash in code_hashes {
            sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                .bind(id.0)
                .bind(hash.as_slice())
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::from_sqlx("recovery code", e))?;
        }
        tx.commit().await.map_err(StoreError::Database)
    }

    async fn use_recovery_code(
        &self,
        id: UserId,
        code_hash: &[u8; 32],
        at: OffsetDateTime,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE recovery_codes SET used_at = $1 \
             WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
        )
        .bind(at)
        .bind(id.0)
        .bind(code_hash.as_slice())
        .execute(&self.pool)
        .await
        .map_err(StoreError::Database)?;
        Ok(done.rows_affected() == 1)
    }

    async fn unused_recovery_codes(&self, id: UserId) -> Result<u32> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(id.0)
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::Database)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn set_membership(&self, user: UserId, org: OrgId, role: Role) -> Result<()> {
        sqlx::query(
            "INSERT INTO memberships (user_id, org_id, role) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, org_id) DO UPDATE SET role = excluded.role",
        )
        .bind(user.0)
        .bind(org.0)
        .bind(role.as_str())
        .execute(&self.pool)
        .await
        .map_err(membership_error)?;
        Ok(())
    }

    async fn remove_membership(&self, user: UserId, org: OrgId) -> Result<()> {
        let done = sqlx::query("DELETE FROM memberships WHERE user_id = $1 AND org_id = $2")
            .bind(user.0)
            .bind(org.0)
            .execute(&self.pool)
            .await
            .map_err(StoreError::Database)?;
        one_row("membership", done.rows_affected())
    }

    async fn replace_memberships(&self, user: UserId, roles: &[(OrgId, Role)]) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(StoreError::Database)?;
        sqlx::query("DELETE FROM memberships WHERE user_id = $1")
            .bind(user.0)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::Database)?;
        for (org, role) in roles {
            sqlx::query(
                "INSERT INTO memberships (user_id, org_id, role) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id, org_id) DO UPDATE SET role = excluded.role",
            )
            .bind(user.0)
            .bind(org.0)
            .bind(role.as_str())
            .execute(&mut *tx)
            .await
            .map_err(membership_error)?;
        }
        tx.commit().await.map_err(StoreError::Database)
    }

    async fn memberships_of(&self, user: UserId) -> Result<Vec<Membership>> {
        sqlx::query(
            "SELECT user_id, org_id, role FROM memberships WHERE user_id = $1 ORDER BY org_id",
        )
        .bind(user.0)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::Database)?
        .iter()
        .map(membership)
        .collect()
    }

    async fn user_with_memberships(&self, id: UserId) -> Result<(UserRow, Vec<Membership>)> {
        #[derive(FromRow)]
        struct Row {
            #[sqlx(flatten)]
            user: PgUserRow,
            memberships: String,
        }
        let row = sqlx::query_as::<_, Row>(&format!(
            "SELECT {USER_COLUMNS}, (SELECT COALESCE(json_agg(json_build_array(org_id, role) \
             ORDER BY org_id), '[]')::text FROM memberships WHERE user_id = users.id) \
             AS memberships FROM users WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx("user", e))?;
        let memberships = memberships_from_json(id, &row.memberships)?;
        Ok((row.user.try_into()?, memberships))
    }

    async fn list_memberships(&self) -> Result<Vec<Membership>> {
        sqlx::query("SELECT user_id, org_id, role FROM memberships ORDER BY user_id, org_id")
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::Database)?
            .iter()
            .map(membership)
            .collect()
    }

    async fn list_sso_rules(&self) -> Result<Vec<SsoRoleRule>> {
        let rows: Vec<(String, Uuid, String, OffsetDateTime)> = sqlx::query_as(
            "SELECT group_name, org_id, role, created_at FROM sso_role_rules \
             ORDER BY group_name, org_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::Database)?;
        rows.into_iter()
            .map(|(group, org, role, created_at)| {
                Ok(SsoRoleRule {
                    group,
                    org_id: OrgId(org),
                    role: role
                        .parse()
                        .map_err(|e| StoreError::Corrupt(format!("sso_role_rules.role: {e}")))?,
                    created_at,
                })
            })
            .collect()
    }

    async fn insert_sso_rule(&self, rule: &SsoRoleRule) -> Result<()> {
        sqlx::query(
            "INSERT INTO sso_role_rules (group_name, org_id, role, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&rule.group)
        .bind(rule.org_id.0)
        .bind(rule.role.as_str())
        .bind(rule.created_at)
        .execute(&self.pool)
        .await
        .map_err(sso_rule_error)?;
        Ok(())
    }

    async fn delete_sso_rule(&self, group: &str, org: OrgId) -> Result<()> {
        let done = sqlx::query("DELETE FROM sso_role_rules WHERE group_name = $1 AND org_id = $2")
            .bind(group)
            .bind(org.0)
            .execute(&self.pool)
            .await
            .map_err(StoreError::Database)?;
        one_row("SSO rule", done.rows_affected())
    }

    async fn insert_session(&self, id: &str, data: &[u8], expiry: OffsetDateTime) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO sessions (id, data, expiry_date) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(data)
        .bind(expiry)
        .execute(&self.pool)
        .await
        .map_err(StoreError::Database)?;
        Ok(done.rows_affected() == 1)
    }

    async fn save_session(&self, id: &str, data: &[u8], expiry: OffsetDateTime) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (id, data, expiry_date) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET data = excluded.data, expiry_date = excluded.expiry_date",
        )
        .bind(id)
        .bind(data)
        .bind(expiry)
        .execute(&self.pool)
        .await
        .map_err(StoreError::Database)?;
        Ok(())
    }

    async fn load_session(&self, id: &str, now: OffsetDateTime) -> Result<Option<Vec<u8>>> {
        sqlx::query_scalar("SELECT data FROM sessions WHERE id = $1 AND expiry_date > $2")
            .bind(id)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::Database)
    }

    async fn delete_session(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(StoreError::Database)?;
        Ok(())
    }

    async fn delete_expired_sessions(&self, now: OffsetDateTime) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expiry_date <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(StoreError::Database)?;
        Ok(done.rows_affected())
    }

    async fn record_login_attempt(
        &self,
        keys: &[&str],
        at: OffsetDateTime,
        failed: bool,
    ) -> Result<()> {
        for key in keys {
            sqlx::query(
                "INSERT INTO login_attempts (throttle_key, attempted_at, failed) VALUES ($1, $2, $3)",
            )
            .bind(key)
            .bind(at)
            .bind(failed)
            .execute(&self.pool)
            .await
            .map_err(StoreError::Database)?;
        }
        Ok(())
    }

    async fn login_attempt_stats(&self, key: &str, since: OffsetDateTime) -> Result<AttemptStats> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS attempts, \
                    COUNT(*) FILTER (WHERE failed) AS failures, \
                    MIN(attempted_at) AS oldest, \
                    MAX(CASE WHEN failed THEN attempted_at END) AS latest_failure \
             FROM login_attempts WHERE throttle_key = $1 AND attempted_at > $2",
        )
        .bind(key)
        .bind(since)
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::Database)?;
        let count = |column: &str| -> Result<u32> {
            let n: i64 = row.try_get(column).map_err(StoreError::Database)?;
            Ok(u32::try_from(n).unwrap_or(u32::MAX))
        };
        let time = |column: &str| -> Result<Option<OffsetDateTime>> {
            row.try_get(column).map_err(StoreError::Database)
        };
        Ok(AttemptStats {
            attempts: count("attempts")?,
            failures: count("failures")?,
            oldest_attempt: time("oldest")?,
            latest_failure: time("latest_failure")?,
        })
    }

    async fn clear_login_failures(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM login_attempts WHERE throttle_key = $1 AND failed")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(StoreError::Database)?;
        Ok(())
    }

    async fn prune_login_attempts(&self, before: OffsetDateTime) -> Result<u64> {
        let done = sqlx::query("DELETE FROM login_attempts WHERE attempted_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(StoreError::Database)?;
        Ok(done.rows_affected())
    }

    async fn insert_setup_token(
        &self,
        token_hash: &[u8; 32],
        created_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO setup_tokens (token_hash, created_at, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(token_hash.as_slice())
        .bind(created_at)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx("setup token", e))?;
        Ok(())
    }

    async fn redeem_setup_token(
        &self,
        token_hash: &[u8; 32],
        now: OffsetDateTime,
        admin: &NewUser,
    ) -> Result<UserRow> {
        let mut tx = self.pool.begin().await.map_err(StoreError::Database)?;
        // The row lock makes a concurrent redemption of the same token wait, then match nothing.
        let done = sqlx::query(
            "UPDATE setup_tokens SET used_at = $1 \
             WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $3",
        )
        .bind(now)
        .bind(token_hash.as_slice())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::Database)?;
        one_row("setup token", done.rows_affected())?;
        insert_user(&mut *tx, admin).await?;
        sqlx::query("INSERT INTO setup_completed (id, user_id, completed_at) VALUES (1, $1, $2)")
            .bind(admin.id.0)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(setup_completed_error)?;
        tx.commit().await.map_err(StoreError::Database)?;
        self.user(admin.id).await
    }
}

/// A membership insert fails on a foreign key when the user or organization is missing.
fn membership_error(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::ForeignKeyViolation => {
            StoreError::NotFound {
                entity: "user or organization",
            }
        }
        _ => StoreError::from_sqlx("membership", err),
    }
}

/// A rule for a group and organization that already has one, or for a missing organization.
fn sso_rule_error(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation => {
            StoreError::Conflict {
                constraint: "sso_role_rules_key".to_owned(),
            }
        }
        sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::ForeignKeyViolation => {
            StoreError::NotFound {
                entity: "organization",
            }
        }
        _ => StoreError::Database(err),
    }
}

/// The primary key of `setup_completed` is what a second, concurrent setup trips on.
fn setup_completed_error(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation => {
            StoreError::Conflict {
                constraint: "setup_completed".to_owned(),
            }
        }
        _ => StoreError::Database(err),
    }
}
