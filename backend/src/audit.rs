//! Orchard's own audit log: who changed what, append-only and hash-chained.
//!
//! Design:
//! * Each entry's `hash` is `SHA-256(prev_hash || canonical bytes of the entry)`, hex, with
//!   32 zero bytes before the first entry. Editing, deleting or reordering any stored row
//!   breaks the chain at that row, and [`verify_chain`] names its `seq`.
//! * The canonical bytes are length-prefixed fields (u32 big-endian length, then the
//!   bytes), so no two different entries encode the same; the time is Unix microseconds.
//!   `details` is hashed exactly as stored (JSON text), so key order never matters.
//! * Appends are serialised by the store (PostgreSQL: a transaction-scoped advisory lock;
//!   SQLite: `BEGIN IMMEDIATE`), so concurrent appends from several instances keep one
//!   linear chain with gap-free `seq`.
//! * The chain proves integrity against edits made through SQL, not against someone able to
//!   rewrite the whole table and recompute every hash; anchoring the head externally
//!   (printing it in logs or exporting it) closes that gap later.

use std::net::IpAddr;

use serde::Serialize;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::store::{Store, StoreError};

/// Hash of the (absent) entry before the first: 32 zero bytes, hex.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Entries read per batch while verifying.
const VERIFY_BATCH: u32 = 1000;
/// Largest page [`list`] returns.
pub const MAX_PAGE: u32 = 500;

/// `Result` of audit operations.
pub type Result<T, E = AuditError> = std::result::Result<T, E>;

/// Why the audit log failed or does not verify.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("the audit log was tampered with at entry {seq}")]
    TamperedAt { seq: i64 },
    #[error("the audit log's storage failed")]
    Store(#[from] StoreError),
}

/// Who acts: a signed-in user, or Orchard itself (`user_id: None`), and from where.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Option<Uuid>,
    pub client_addr: Option<IpAddr>,
}

impl Actor {
    /// Orchard itself (background tasks, demo setup).
    pub fn system() -> Self {
        Self::default()
    }

    /// The stored actor: the user id, or `system`.
    pub fn label(&self) -> String {
        self.user_id
            .map_or_else(|| "system".to_owned(), |id| id.to_string())
    }
}

/// What happened. Stored as [`AuditAction::as_str`]; new variants only ever get new names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AuditAction {
    SignedIn,
    SignInFailed,
    SignedOut,
    SetupCompleted,
    UserCreated,
    UserDisabled,
    UserEnabled,
    RoleSet,
    RoleRemoved,
    PasswordChanged,
    PasswordReset,
    TotpEnrolled,
    TotpReset,
    OrganizationCreated,
    SsoRuleAdded,
    SsoRuleDeleted,
    ApiAccountAdded,
    ApiAccountKeyRotated,
    ApiAccountRevoked,
    ApiAccountDeleted,
    ApiAccountTested,
    ApiAccountUrlsChanged,
    MasterKeyRotated,
    JobCreated,
    JobConfirmed,
    JobCancelled,
    JobFinished,
}

impl AuditAction {
    /// Every action, in declaration order (for filters in the audit page).
    pub const ALL: [AuditAction; 27] = [
        Self::SignedIn,
        Self::SignInFailed,
        Self::SignedOut,
        Self::SetupCompleted,
        Self::UserCreated,
        Self::UserDisabled,
        Self::UserEnabled,
        Self::RoleSet,
        Self::RoleRemoved,
        Self::PasswordChanged,
        Self::PasswordReset,
        Self::TotpEnrolled,
        Self::TotpReset,
        Self::OrganizationCreated,
        Self::SsoRuleAdded,
        Self::SsoRuleDeleted,
        Self::ApiAccountAdded,
        Self::ApiAccountKeyRotated,
        Self::ApiAccountRevoked,
        Self::ApiAccountDeleted,
        Self::ApiAccountTested,
        Self::ApiAccountUrlsChanged,
        Self::MasterKeyRotated,
        Self::JobCreated,
        Self::JobConfirmed,
        Self::JobCancelled,
        Self::JobFinished,
    ];

    /// Stable, dotted name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignedIn => "auth.sign_in",
            Self::SignInFailed => "auth.sign_in_failed",
            Self::SignedOut => "auth.sign_out",
            Self::SetupCompleted => "auth.setup",
            Self::UserCreated => "user.create",
            Self::UserDisabled => "user.disable",
            Self::UserEnabled => "user.enable",
            Self::RoleSet => "user.set_role",
            Self::RoleRemoved => "user.remove_role",
            Self::PasswordChanged => "user.change_password",
            Self::PasswordReset => "user.reset_password",
            Self::TotpEnrolled => "user.enrol_totp",
            Self::TotpReset => "user.reset_totp",
            Self::OrganizationCreated => "organization.create",
            Self::SsoRuleAdded => "sso.add_rule",
            Self::SsoRuleDeleted => "sso.delete_rule",
            Self::ApiAccountAdded => "api_account.add",
            Self::ApiAccountKeyRotated => "api_account.rotate_key",
            Self::ApiAccountRevoked => "api_account.revoke",
            Self::ApiAccountDeleted => "api_account.delete",
            Self::ApiAccountTested => "api_account.test",
            Self::ApiAccountUrlsChanged => "api_account.change_urls",
            Self::MasterKeyRotated => "vault.rotate_master_key",
            Self::JobCreated => "job.create",
            Self::JobConfirmed => "job.confirm",
            Self::JobCancelled => "job.cancel",
            Self::JobFinished => "job.finish",
        }
    }
}

/// An entry before the store gives it a place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditDraft {
    pub actor: String,
    pub client_addr: Option<String>,
    pub action: String,
    pub subject: String,
    /// JSON text, hashed exactly as stored.
    pub details: String,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// 1, 2, 3, ... without gaps.
    pub seq: i64,
    /// Microsecond precision.
    pub at: OffsetDateTime,
    pub actor: String,
    pub client_addr: Option<String>,
    pub action: String,
    pub subject: String,
    pub details: String,
    /// SHA-256 over the previous hash and this entry, hex.
    pub hash: String,
}

/// Which entries [`list`] returns; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub subject: Option<String>,
    /// Inclusive lower bound.
    pub since: Option<OffsetDateTime>,
    /// Exclusive upper bound.
    pub until: Option<OffsetDateTime>,
}

/// Keyset page: entries with `seq < before` (newest first), at most `limit` (≤ [`MAX_PAGE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditPage {
    pub before: Option<i64>,
    pub limit: u32,
}

/// Appends an entry for `actor`. Details must not contain secrets: callers pass ids, names
/// and fingerprints only.
#[tracing::instrument(skip_all, fields(action = action.as_str()))]
pub async fn append(
    store: &dyn Store,
    actor: &Actor,
    action: AuditAction,
    subject: &str,
    details: serde_json::Value,
) -> Result<AuditEntry> {
    let draft = AuditDraft {
        actor: actor.label(),
        client_addr: actor.client_addr.map(|a| a.to_string()),
        action: action.as_str().to_owned(),
        subject: subject.to_owned(),
        details: details.to_string(),
    };
    Ok(store.append_audit(&draft, &chain_hash).await?)
}

/// The hash of an entry at `seq`, written `at`, after an entry hashed `prev_hash`.
pub fn chain_hash(draft: &AuditDraft, seq: i64, at: OffsetDateTime, prev_hash: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(hex::decode(prev_hash).unwrap_or_else(|_| prev_hash.as_bytes().to_vec()));
    let at_us = i64::try_from(at.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX);
    let mut field = |bytes: &[u8]| {
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        hasher.update(len.to_be_bytes());
        hasher.update(bytes);
    };
    field(&seq.to_be_bytes());
    field(&at_us.to_be_bytes());
    field(draft.actor.as_bytes());
    field(draft.client_addr.as_deref().unwrap_or("").as_bytes());
    field(&[u8::from(draft.client_addr.is_some())]);
    field(draft.action.as_bytes());
    field(draft.subject.as_bytes());
    field(draft.details.as_bytes());
    hex::encode(hasher.finalize())
}

/// Recomputes the whole chain. `TamperedAt(seq)` names the first entry that was edited,
/// inserted out of order, or follows a deleted one.
#[tracing::instrument(skip_all)]
pub async fn verify_chain(store: &dyn Store) -> Result<()> {
    let mut prev_seq = 0;
    let mut prev_hash = GENESIS_HASH.to_owned();
    loop {
        let batch = store.audit_entries_after(prev_seq, VERIFY_BATCH).await?;
        if batch.is_empty() {
            return Ok(());
        }
        for entry in batch {
            if entry.seq != prev_seq + 1 {
                return Err(AuditError::TamperedAt { seq: prev_seq + 1 });
            }
            let draft = AuditDraft {
                actor: entry.actor,
                client_addr: entry.client_addr,
                action: entry.action,
                subject: entry.subject,
                details: entry.details,
            };
            if chain_hash(&draft, entry.seq, entry.at, &prev_hash) != entry.hash {
                return Err(AuditError::TamperedAt { seq: entry.seq });
            }
            prev_seq = entry.seq;
            prev_hash = entry.hash;
        }
    }
}

/// One page of entries matching `filter`, newest first.
pub async fn list(
    store: &dyn Store,
    filter: &AuditFilter,
    page: AuditPage,
) -> Result<Vec<AuditEntry>> {
    let page = AuditPage {
        before: page.before,
        limit: page.limit.clamp(1, MAX_PAGE),
    };
    Ok(store.list_audit(filter, page).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> AuditDraft {
        AuditDraft {
            actor: "system".into(),
            client_addr: None,
            action: "api_account.add".into(),
            subject: "api_account:x".into(),
            details: "{}".into(),
        }
    }

    #[test]
    fn every_action_is_listed_once_with_a_distinct_name() {
        let names: std::collections::BTreeSet<&str> =
            AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(names.len(), AuditAction::ALL.len());
        // A new variant must be added to `ALL`: this match stops compiling until it is.
        for action in AuditAction::ALL {
            match action {
                AuditAction::SignedIn
                | AuditAction::SignInFailed
                | AuditAction::SignedOut
                | AuditAction::SetupCompleted
                | AuditAction::UserCreated
                | AuditAction::UserDisabled
                | AuditAction::UserEnabled
                | AuditAction::RoleSet
                | AuditAction::RoleRemoved
                | AuditAction::PasswordChanged
                | AuditAction::PasswordReset
                | AuditAction::TotpEnrolled
                | AuditAction::TotpReset
                | AuditAction::OrganizationCreated
                | AuditAction::SsoRuleAdded
                | AuditAction::SsoRuleDeleted
                | AuditAction::ApiAccountAdded
                | AuditAction::ApiAccountKeyRotated
                | AuditAction::ApiAccountRevoked
                | AuditAction::ApiAccountDeleted
                | AuditAction::ApiAccountTested
                | AuditAction::ApiAccountUrlsChanged
                | AuditAction::MasterKeyRotated
                | AuditAction::JobCreated
                | AuditAction::JobConfirmed
                | AuditAction::JobCancelled
                | AuditAction::JobFinished => {}
            }
        }
    }

    #[test]
    fn every_field_and_the_previous_hash_change_the_hash() {
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let base = chain_hash(&draft(), 1, at, GENESIS_HASH);
        assert_eq!(base.len(), 64);
        assert_ne!(base, chain_hash(&draft(), 2, at, GENESIS_HASH));
        assert_ne!(
            base,
            chain_hash(
                &draft(),
                1,
                at + time::Duration::microseconds(1),
                GENESIS_HASH
            )
        );
        assert_ne!(base, chain_hash(&draft(), 1, at, &base));
        let mut d = draft();
        d.subject.push('y');
        assert_ne!(base, chain_hash(&d, 1, at, GENESIS_HASH));
        let mut d = draft();
        d.client_addr = Some(String::new());
        assert_ne!(base, chain_hash(&d, 1, at, GENESIS_HASH));
    }
}
