//! Storage of Apple API accounts, the vault's metadata and Orchard's audit log.
//!
//! Kept apart from [`super::Store`]'s core methods so each area grows in its own files;
//! `Store` requires this trait, so every backend implements it
//! (`sqlite_accounts.rs`, `postgres_accounts.rs`).

use async_trait::async_trait;
use time::OffsetDateTime;

use super::Result;
use crate::accounts::{AccountUrls, ApiAccountId, ApiAccountRecord, HealthUpdate, KeyChange};
use crate::audit::{AuditDraft, AuditEntry, AuditFilter, AuditPage};
use crate::orgs::OrgId;
use crate::vault::{Sealed, SealedColumn};

/// Constraint name reported (as `StoreError::Conflict`) when an organization already has
/// the maximum number of API accounts.
pub const MAX_ACCOUNTS_CONSTRAINT: &str = "api_accounts_max_per_org";

/// Re-encrypts one stored value (column, row id as text, old value) or explains why not.
pub type Reseal<'a> =
    dyn Fn(&SealedColumn, &str, &Sealed) -> std::result::Result<Sealed, String> + Send + Sync + 'a;

/// Computes an audit entry's hash from its sequence number and the previous entry's hash
/// (hex; 64 zeros before the first entry).
pub type ChainHash<'a> =
    dyn Fn(&AuditDraft, i64, OffsetDateTime, &str) -> String + Send + Sync + 'a;

#[async_trait]
pub trait AccountStore: Send + Sync {
    // --- vault ---

    /// Whether any column marked `holds_secrets` has a value.
    async fn has_sealed_values(&self, columns: &[SealedColumn]) -> Result<bool>;

    /// The stored key-check value, if the vault was ever initialised.
    async fn key_check(&self) -> Result<Option<Sealed>>;

    /// Stores (or replaces) the key-check value.
    async fn set_key_check(&self, sealed: &Sealed) -> Result<()>;

    /// Re-encrypts every value of `columns` in one transaction; all or nothing. A `reseal`
    /// failure aborts with `StoreError::Corrupt`. Returns the number of values re-encrypted.
    async fn reseal_all(&self, columns: &[SealedColumn], reseal: &Reseal<'_>) -> Result<usize>;

    // --- API accounts ---

    /// Inserts an account unless its organization already has `max_per_org` of them
    /// (then `Conflict` naming [`MAX_ACCOUNTS_CONSTRAINT`]); counted in the same
    /// serialised transaction, so concurrent adds cannot exceed the limit.
    async fn insert_api_account(&self, record: &ApiAccountRecord, max_per_org: usize)
    -> Result<()>;

    /// One account with its sealed key. `NotFound` when there is none.
    async fn api_account(&self, id: ApiAccountId) -> Result<ApiAccountRecord>;

    /// The accounts of one organization, by name.
    async fn list_api_accounts(&self, org: OrgId) -> Result<Vec<ApiAccountRecord>>;

    /// Replaces the key (and key id) of an account, setting `rotated_at` and clearing
    /// `revoked_at` and `last_error`.
    async fn update_api_account_key(&self, id: ApiAccountId, change: &KeyChange) -> Result<()>;

    /// Changes where an account's API lives (the demo simulator's port moves on restart).
    async fn update_api_account_urls(&self, id: ApiAccountId, urls: &AccountUrls) -> Result<()>;

    /// Marks an account revoked: kept for history, never used again.
    async fn revoke_api_account(&self, id: ApiAccountId, at: OffsetDateTime) -> Result<()>;

    /// Deletes an account and its sealed key.
    async fn delete_api_account(&self, id: ApiAccountId) -> Result<()>;

    /// Records the outcome of a call made with the account's credentials.
    async fn record_api_account_health(
        &self,
        id: ApiAccountId,
        update: &HealthUpdate,
    ) -> Result<()>;

    /// Whether an account exists in an organization other than the one with `except_slug`.
    async fn has_api_accounts_outside(&self, except_slug: &str) -> Result<bool>;

    // --- audit log ---

    /// Appends an entry at the head of the chain. Appends are serialised (advisory lock /
    /// write transaction), so the chain stays linear under concurrency.
    async fn append_audit(&self, draft: &AuditDraft, hash: &ChainHash<'_>) -> Result<AuditEntry>;

    /// Entries with `seq > after`, oldest first, at most `limit` (for chain verification).
    async fn audit_entries_after(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>>;

    /// Entries matching `filter`, newest first, one page.
    async fn list_audit(&self, filter: &AuditFilter, page: AuditPage) -> Result<Vec<AuditEntry>>;
}
