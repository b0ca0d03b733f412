//! Storage of identity: users, memberships, second factors, sessions, sign-in
//! throttling and first-run setup.
//!
//! The methods are deliberately small and free of policy: the services in
//! [`crate::identity`] decide (who may sign in, how long a delay lasts), the store
//! only keeps rows. Operations that must hold across instances are single
//! statements or transactions here (TOTP replay, recovery code use, setup
//! redemption), never read-then-write in the service.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{Result, StoreError};
use crate::identity::UserId;
use crate::identity::roles::Role;
use crate::orgs::OrgId;

/// A stored user. Holds the password hash and the sealed TOTP secret, so it is
/// deliberately not `Serialize`: map it to a view type before it leaves the server.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: UserId,
    /// As typed at creation; comparisons use its lower-cased form.
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    /// Argon2id PHC string; `None` for users who only sign in with SSO.
    pub password_hash: Option<String>,
    /// May create organizations, manage users and SSO.
    pub instance_admin: bool,
    pub disabled: bool,
    /// The TOTP secret as sealed by the vault; opaque here.
    pub totp_secret: Option<SealedSecret>,
    /// Whether sign-in asks for a TOTP code (set once enrolment is confirmed).
    pub totp_enabled: bool,
    /// `(issuer, subject)` of the SSO identity this user is bound to.
    pub oidc: Option<(String, String)>,
    pub created_at: OffsetDateTime,
    pub last_login_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("instance_admin", &self.instance_admin)
            .field("disabled", &self.disabled)
            .field("totp_enabled", &self.totp_enabled)
            .field("oidc", &self.oidc)
            .finish_non_exhaustive()
    }
}

/// A secret sealed by the vault: ciphertext and nonce, both opaque to identity code.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub ciphertext: Vec<u8>,
    pub nonce: Vec<u8>,
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealedSecret(***)")
    }
}

/// A user to insert. Validation (name rules, password rules) happens before this.
#[derive(Clone, PartialEq, Eq)]
pub struct NewUser {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub instance_admin: bool,
    pub oidc: Option<(String, String)>,
    pub created_at: OffsetDateTime,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("instance_admin", &self.instance_admin)
            .finish_non_exhaustive()
    }
}

/// A user's role in one organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Membership {
    pub user_id: UserId,
    pub org_id: OrgId,
    pub role: Role,
}

/// A single sign-on rule kept in the database: members of `group` get `role` in `org_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoRoleRule {
    /// Group name exactly as the provider puts it in the groups claim.
    pub group: String,
    pub org_id: OrgId,
    pub role: Role,
    pub created_at: OffsetDateTime,
}

/// What the throttle needs to know about one key's recent attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AttemptStats {
    /// Attempts (failed or not) after `since`.
    pub attempts: u32,
    /// Failed attempts after `since`.
    pub failures: u32,
    /// The oldest attempt after `since`.
    pub oldest_attempt: Option<OffsetDateTime>,
    /// The newest failed attempt after `since`.
    pub latest_failure: Option<OffsetDateTime>,
}

/// The lower-cased form of a username, used for lookups and uniqueness.
pub fn username_key(username: &str) -> String {
    username.trim().to_lowercase()
}

/// Identity storage; `Store` requires it, so every backend implements it.
/// The storage tests in `backend/tests/identity.rs` run against both.
#[async_trait]
pub trait IdentityStore: Send + Sync + 'static {
    // Users.

    /// Inserts a user. `Conflict` on `users_username_key` (name taken, any case) or
    /// `users_oidc_key` (SSO identity already bound).
    async fn create_user(&self, new: &NewUser) -> Result<UserRow>;

    /// One user by id. `NotFound` when there is none.
    async fn user(&self, id: UserId) -> Result<UserRow>;

    /// One user by username, case-insensitively. `NotFound` when there is none.
    async fn user_by_username(&self, username: &str) -> Result<UserRow>;

    /// The user bound to an SSO identity. `NotFound` when there is none.
    async fn user_by_oidc(&self, issuer: &str, subject: &str) -> Result<UserRow>;

    /// All users, by username.
    async fn list_users(&self) -> Result<Vec<UserRow>>;

    /// How many users exist (zero means first-run setup is open).
    async fn count_users(&self) -> Result<u64>;

    /// Replaces the password hash (`None` removes password sign-in). `NotFound` if no user.
    async fn set_password_hash(&self, id: UserId, hash: Option<&str>) -> Result<()>;

    /// Disables or enables sign-in. `NotFound` if no user.
    async fn set_disabled(&self, id: UserId, disabled: bool) -> Result<()>;

    /// Grants or revokes instance-wide administration. `NotFound` if no user.
    async fn set_instance_admin(&self, id: UserId, instance_admin: bool) -> Result<()>;

    /// Updates display name and email (SSO users get them from their claims). `NotFound` if no user.
    async fn set_profile(&self, id: UserId, display_name: &str, email: Option<&str>) -> Result<()>;

    /// Stores (or with `None` removes) the sealed TOTP secret and whether it is enforced;
    /// clears the replay guard and, when removing, the recovery codes. `NotFound` if no user.
    async fn set_totp(
        &self,
        id: UserId,
        secret: Option<&SealedSecret>,
        enabled: bool,
    ) -> Result<()>;

    /// Records `step` as the last accepted TOTP step if it is newer than the stored one,
    /// atomically. `false` means the step (or a later one) was already used: a replay.
    async fn advance_totp_step(&self, id: UserId, step: i64) -> Result<bool>;

    /// Records a successful sign-in time.
    async fn set_last_login(&self, id: UserId, at: OffsetDateTime) -> Result<()>;

    // Recovery codes.

    /// Replaces all of a user's recovery codes with these SHA-256 hashes.
    async fn replace_recovery_codes(&self, id: UserId, code_hashes: &[[u8; 32]]) -> Result<()>;

    /// Marks an unused code as used, atomically. `false` when no unused code has that hash.
    async fn use_recovery_code(
        &self,
        id: UserId,
        code_hash: &[u8; 32],
        at: OffsetDateTime,
    ) -> Result<bool>;

    /// How many unused recovery codes the user has left.
    async fn unused_recovery_codes(&self, id: UserId) -> Result<u32>;

    // Memberships.

    /// Gives the user `role` in `org`, replacing any previous role. `NotFound` when the
    /// user or the organization does not exist.
    async fn set_membership(&self, user: UserId, org: OrgId, role: Role) -> Result<()>;

    /// Removes the user's role in `org`. `NotFound` when there was none.
    async fn remove_membership(&self, user: UserId, org: OrgId) -> Result<()>;

    /// Replaces all of a user's memberships in one transaction (SSO group sync).
    async fn replace_memberships(&self, user: UserId, roles: &[(OrgId, Role)]) -> Result<()>;

    /// The user's memberships, by organization id.
    async fn memberships_of(&self, user: UserId) -> Result<Vec<Membership>>;

    /// [`Self::user`] and [`Self::memberships_of`] in one statement: what every signed-in
    /// request reads.
    async fn user_with_memberships(&self, id: UserId) -> Result<(UserRow, Vec<Membership>)>;

    /// Every membership of every user (for the user list).
    async fn list_memberships(&self) -> Result<Vec<Membership>>;

    // Sessions (tower-sessions records).

    /// Inserts a session record; `false` when the id is already taken.
    async fn insert_session(&self, id: &str, data: &[u8], expiry: OffsetDateTime) -> Result<bool>;

    /// Inserts or replaces a session record.
    async fn save_session(&self, id: &str, data: &[u8], expiry: OffsetDateTime) -> Result<()>;

    /// The data of a session that expires after `now`; `None` when missing or expired.
    async fn load_session(&self, id: &str, now: OffsetDateTime) -> Result<Option<Vec<u8>>>;

    /// Deletes a session; deleting a missing one is not an error.
    async fn delete_session(&self, id: &str) -> Result<()>;

    /// Deletes sessions whose expiry is at or before `now`; returns how many.
    async fn delete_expired_sessions(&self, now: OffsetDateTime) -> Result<u64>;

    // Sign-in throttling.

    /// Records one attempt under each of `keys`.
    async fn record_login_attempt(
        &self,
        keys: &[&str],
        at: OffsetDateTime,
        failed: bool,
    ) -> Result<()>;

    /// Counts the attempts under `key` after `since` (a window is `(now - length, now]`).
    async fn login_attempt_stats(&self, key: &str, since: OffsetDateTime) -> Result<AttemptStats>;

    /// Forgets the failures under `key` (after a successful sign-in).
    async fn clear_login_failures(&self, key: &str) -> Result<()>;

    /// Deletes attempts older than `before`; returns how many.
    async fn prune_login_attempts(&self, before: OffsetDateTime) -> Result<u64>;

    // Single sign-on rules.

    /// Every rule, by group then organization.
    async fn list_sso_rules(&self) -> Result<Vec<SsoRoleRule>>;

    /// Adds a rule. `Conflict { constraint: "sso_role_rules_key" }` when the group already
    /// has a rule for that organization; `NotFound` when the organization does not exist.
    async fn insert_sso_rule(&self, rule: &SsoRoleRule) -> Result<()>;

    /// Deletes the rule of `group` in `org`. `NotFound` when there is none.
    async fn delete_sso_rule(&self, group: &str, org: OrgId) -> Result<()>;

    // First-run setup.

    /// Stores the SHA-256 of a setup token.
    async fn insert_setup_token(
        &self,
        token_hash: &[u8; 32],
        created_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<()>;

    /// In one transaction: marks the unused, unexpired token as used, records setup as
    /// completed (at most once, ever) and inserts `admin`. `NotFound { entity:
    /// "setup token" }` when the token is unknown, used or expired; `Conflict {
    /// constraint: "setup_completed" }` when setup already happened.
    async fn redeem_setup_token(
        &self,
        token_hash: &[u8; 32],
        now: OffsetDateTime,
        admin: &NewUser,
    ) -> Result<UserRow>;
}

/// The memberships of `user` from the JSON array of `[org_id, role]` pairs that
/// [`IdentityStore::user_with_memberships`] reads on both databases.
pub(super) fn memberships_from_json(user: UserId, json: &str) -> Result<Vec<Membership>> {
    let pairs: Vec<(String, String)> = serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("memberships of a user: {e}")))?;
    pairs
        .into_iter()
        .map(|(org, role)| {
            Ok(Membership {
                user_id: user,
                org_id: OrgId(
                    uuid::Uuid::parse_str(&org)
                        .map_err(|e| StoreError::Corrupt(format!("memberships.org_id: {e}")))?,
                ),
                role: role
                    .parse::<Role>()
                    .map_err(|e| StoreError::Corrupt(format!("memberships.role: {e}")))?,
            })
        })
        .collect()
}
