//! Apple API accounts per organization: validation, storage through the vault, health, and
//! the [`Clients`] registry that hands out ready `apple::Client`s.
//!
//! Design:
//! * The private key goes in once ([`NewApiAccount::parse`]) and never comes out: it is
//!   sealed by the [`Vault`] with the row id as associated data, and every type returned to
//!   callers ([`ApiAccountView`]) carries only its public-key fingerprint.
//! * Validation gives one clear message per fault and never echoes key bytes; key errors
//!   reuse `apple::KeyError`, whose messages hold no key material.
//! * The key is decrypted only inside [`Clients::for_account`], to build an `apple::Client`.
//!   Clients are cached per account; every client of an account shares one
//!   `apple::Budget`, so the sync engine, tests of the connection and jobs together stay
//!   under Apple's rate limits. Rotation, revocation and URL changes invalidate the cached
//!   client (the budget stays: the limit belongs to the Apple account, not to the key).
//!   The cache is per process: another instance picks up a rotated key when its cached
//!   client fails with 401 and is invalidated, or on restart.
//! * Every change is recorded in Orchard's audit log with the acting user.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::Mutex;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::audit::{self, Actor, AuditAction};
use crate::orgs::OrgId;
use crate::store::{MAX_ACCOUNTS_CONSTRAINT, Store, StoreError};
use crate::vault::{Sealed, Vault, VaultError, api_account_key_aad};

/// Apple allows at most this many API accounts per organization.
pub const MAX_ACCOUNTS_PER_ORG: usize = 50;
/// Longest account name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest stored `last_error`, in characters.
pub const MAX_ERROR_CHARS: usize = 200;
/// Largest PEM accepted, in bytes (a P-256 key is about 250).
pub const MAX_PEM_BYTES: usize = 16 * 1024;

/// `Result` of account operations.
pub type Result<T, E = AccountError> = std::result::Result<T, E>;

/// Identifies an API account (UUID v4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ApiAccountId(pub Uuid);

impl ApiAccountId {
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }
}

impl fmt::Display for ApiAccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Which Apple product the account belongs to; decides the client id prefix and scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    Business,
    School,
}

impl AccountKind {
    /// Stored and wire form: `business` or `school`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Business => "business",
            Self::School => "school",
        }
    }

    /// Parses the stored form.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "business" => Some(Self::Business),
            "school" => Some(Self::School),
            _ => None,
        }
    }

    /// Client ids of this kind start with this, followed by `.` and a UUID.
    pub fn client_id_prefix(self) -> &'static str {
        match self {
            Self::Business => "BUSINESSAPI",
            Self::School => "SCHOOLAPI",
        }
    }
}

/// Where an account's API and token endpoint live. Apple's by default; the simulator's in
/// tests and demo mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountUrls {
    /// API origin without `/v1`.
    pub api_base_url: String,
    /// Where the token request is POSTed.
    pub token_url: String,
    /// JWT `aud` of the client assertion.
    pub audience: String,
}

impl AccountUrls {
    /// Apple's production endpoints for `kind`.
    pub fn apple(kind: AccountKind) -> Self {
        let config = apple_config(kind, "", "");
        Self {
            api_base_url: config.api_base_url,
            token_url: config.token_url,
            audience: config.audience,
        }
    }

    fn validate(&self) -> Result<(), AccountInputError> {
        for (field, url) in [
            ("API base URL", &self.api_base_url),
            ("token URL", &self.token_url),
            ("audience", &self.audience),
        ] {
            let ok = (url.starts_with("https://") || url.starts_with("http://"))
                && url.len() <= 2048
                && !url.chars().any(|c| c.is_whitespace() || c.is_control());
            if !ok {
                return Err(AccountInputError::Url { field });
            }
        }
        Ok(())
    }
}

fn apple_config(kind: AccountKind, client_id: &str, key_id: &str) -> apple::ClientConfig {
    match kind {
        AccountKind::Business => apple::ClientConfig::apple_business(client_id, key_id),
        AccountKind::School => apple::ClientConfig::apple_school(client_id, key_id),
    }
}

/// What the UI may see of an account: everything but the key. Safe to serialize.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiAccountView {
    pub id: ApiAccountId,
    pub org_id: OrgId,
    pub name: String,
    pub kind: AccountKind,
    pub client_id: String,
    pub key_id: String,
    pub urls: AccountUrls,
    /// SHA-256 of the public key (DER SubjectPublicKeyInfo), lower-case hex.
    pub key_fingerprint: String,
    pub created_at: OffsetDateTime,
    pub rotated_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
    /// Last time Apple issued a token for this account.
    pub last_token_at: Option<OffsetDateTime>,
    /// Last time a call with this account succeeded.
    pub last_success_at: Option<OffsetDateTime>,
    /// Short, sanitized description of the last failure; cleared by the next success.
    pub last_error: Option<String>,
    /// 429 answers seen for this account.
    pub rate_limited_count: i64,
}

/// A stored account: the view plus the sealed key. Not `Serialize`; stays on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiAccountRecord {
    pub view: ApiAccountView,
    pub sealed_key: Sealed,
}

/// A new key for an existing account.
#[derive(Debug, Clone)]
pub struct KeyChange {
    pub key_id: String,
    pub sealed_key: Sealed,
    pub key_fingerprint: String,
    pub at: OffsetDateTime,
}

/// Outcome of one use of an account's credentials.
#[derive(Debug, Clone, Default)]
pub struct HealthUpdate {
    /// When Apple issued a token, if it did.
    pub token_at: Option<OffsetDateTime>,
    /// When the call succeeded, if it did (also clears `last_error`).
    pub success_at: Option<OffsetDateTime>,
    /// Sanitized failure message, if it failed.
    pub error: Option<String>,
    /// Whether Apple answered 429.
    pub rate_limited: bool,
}

/// Why input for an account was refused: one message per fault, never echoing key bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountInputError {
    #[error("the account name is empty")]
    NameEmpty,
    #[error("the account name is longer than {MAX_NAME_CHARS} characters")]
    NameTooLong,
    #[error("the account name contains a control character")]
    NameControl,
    #[error("the client id must be {prefix}.<uuid>, as shown in Apple Business")]
    ClientIdFormat { prefix: &'static str },
    #[error("the client id is for {found}, but the account kind is {kind}")]
    ClientIdKind {
        found: &'static str,
        kind: &'static str,
    },
    #[error("the key id must be a UUID, as shown next to the key in Apple Business")]
    KeyIdFormat,
    #[error("the private key is larger than {MAX_PEM_BYTES} bytes")]
    KeyTooLarge,
    #[error("the private key PEM block is not `PRIVATE KEY` or `EC PRIVATE KEY`")]
    KeyWrongBlock,
    #[error("the private key: {0}")]
    Key(apple::KeyError),
    #[error("the {field} must be an http:// or https:// URL")]
    Url { field: &'static str },
}

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Input(#[from] AccountInputError),
    #[error("an organization can have at most {MAX_ACCOUNTS_PER_ORG} API accounts")]
    LimitReached,
    #[error("the API account is revoked")]
    Revoked,
    #[error("the stored key of API account {0} cannot be used")]
    KeyUnusable(ApiAccountId),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
    #[error("cannot build the Apple API client: {0}")]
    Client(String),
}

impl From<StoreError> for AccountError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { constraint } if constraint == MAX_ACCOUNTS_CONSTRAINT => {
                Self::LimitReached
            }
            other => Self::Store(other),
        }
    }
}

/// A PEM in zeroizing memory; redacted in `Debug`.
struct PemSecret(Zeroizing<String>);

impl fmt::Debug for PemSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A validated private key: the PEM to seal and the fingerprint to show.
#[derive(Debug)]
pub struct ValidatedKey {
    pem: PemSecret,
    fingerprint: String,
}

impl ValidatedKey {
    /// Checks that `pem` holds one P-256 private key (PKCS#8 or SEC1).
    pub fn parse(pem: &str) -> Result<Self, AccountInputError> {
        if pem.len() > MAX_PEM_BYTES {
            return Err(AccountInputError::KeyTooLarge);
        }
        let key = apple::PrivateKey::from_pem(pem).map_err(|e| match e {
            // The label is user text: do not echo it.
            apple::KeyError::WrongBlock(_) => AccountInputError::KeyWrongBlock,
            other => AccountInputError::Key(other),
        })?;
        Ok(Self {
            pem: PemSecret(Zeroizing::new(pem.trim().to_owned())),
            fingerprint: fingerprint(&key),
        })
    }

    /// SHA-256 of the public key, hex.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// SHA-256 of the DER SubjectPublicKeyInfo of the key's public half, lower-case hex.
pub fn fingerprint(key: &apple::PrivateKey) -> String {
    use p256::pkcs8::EncodePublicKey as _;
    use sha2::Digest as _;
    let der = key
        .verifying_key()
        .to_public_key_der()
        .expect("a P-256 public key encodes as SPKI");
    hex::encode(sha2::Sha256::digest(der.as_bytes()))
}

/// A validated request to add an API account.
#[derive(Debug)]
pub struct NewApiAccount {
    pub name: String,
    pub kind: AccountKind,
    pub client_id: String,
    pub key_id: String,
    pub urls: AccountUrls,
    key: ValidatedKey,
}

impl NewApiAccount {
    /// Validates every field, reporting the first fault found (name, client id, key id,
    /// key, URLs in that order).
    pub fn parse(
        name: &str,
        client_id: &str,
        key_id: &str,
        pem: &str,
        kind: AccountKind,
        urls: AccountUrls,
    ) -> Result<Self, AccountInputError> {
        let name = parse_name(name)?;
        let client_id = parse_client_id(client_id, kind)?;
        let key_id = parse_key_id(key_id)?;
        let key = ValidatedKey::parse(pem)?;
        urls.validate()?;
        Ok(Self {
            name,
            kind,
            client_id,
            key_id,
            urls,
            key,
        })
    }

    /// The fingerprint of the key's public half.
    pub fn key_fingerprint(&self) -> &str {
        self.key.fingerprint()
    }
}

fn parse_name(name: &str) -> Result<String, AccountInputError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(AccountInputError::NameEmpty);
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(AccountInputError::NameTooLong);
    }
    if name.chars().any(char::is_control) {
        return Err(AccountInputError::NameControl);
    }
    Ok(name.to_owned())
}

fn parse_client_id(client_id: &str, kind: AccountKind) -> Result<String, AccountInputError> {
    let client_id = client_id.trim();
    let expected = kind.client_id_prefix();
    let Some((prefix, uuid)) = client_id.split_once('.') else {
        return Err(AccountInputError::ClientIdFormat { prefix: expected });
    };
    let found = [AccountKind::Business, AccountKind::School]
        .into_iter()
        .find(|k| k.client_id_prefix() == prefix);
    match found {
        None => return Err(AccountInputError::ClientIdFormat { prefix: expected }),
        Some(k) if k != kind => {
            return Err(AccountInputError::ClientIdKind {
                found: k.as_str(),
                kind: kind.as_str(),
            });
        }
        Some(_) => {}
    }
    if Uuid::try_parse(uuid).is_err() {
        return Err(AccountInputError::ClientIdFormat { prefix: expected });
    }
    Ok(client_id.to_owned())
}

fn parse_key_id(key_id: &str) -> Result<String, AccountInputError> {
    let key_id = key_id.trim();
    Uuid::try_parse(key_id).map_err(|_| AccountInputError::KeyIdFormat)?;
    Ok(key_id.to_owned())
}

/// Second precision keeps round trips exact on both databases.
fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

/// Adds an account to `org`, sealing its key. `LimitReached` past
/// [`MAX_ACCOUNTS_PER_ORG`].
#[tracing::instrument(skip_all, fields(org = %org))]
pub async fn add_account(
    store: &dyn Store,
    vault: &Vault,
    actor: &Actor,
    org: OrgId,
    new: NewApiAccount,
) -> Result<ApiAccountView> {
    let id = ApiAccountId::random();
    let sealed_key = vault.seal(
        &api_account_key_aad(&id.to_string()),
        new.key.pem.0.as_bytes(),
    );
    let view = ApiAccountView {
        id,
        org_id: org,
        name: new.name,
        kind: new.kind,
        client_id: new.client_id,
        key_id: new.key_id,
        urls: new.urls,
        key_fingerprint: new.key.fingerprint.clone(),
        created_at: now(),
        rotated_at: None,
        revoked_at: None,
        last_token_at: None,
        last_success_at: None,
        last_error: None,
        rate_limited_count: 0,
    };
    let record = ApiAccountRecord {
        view: view.clone(),
        sealed_key,
    };
    store
        .insert_api_account(&record, MAX_ACCOUNTS_PER_ORG)
        .await?;
    audit::append(
        store,
        actor,
        AuditAction::ApiAccountAdded,
        &subject(id),
        serde_json::json!({
            "org_id": org.to_string(),
            "name": view.name,
            "client_id": view.client_id,
            "key_id": view.key_id,
            "key_fingerprint": view.key_fingerprint,
        }),
    )
    .await?;
    Ok(view)
}

fn subject(id: ApiAccountId) -> String {
    format!("api_account:{id}")
}

/// Replaces an account's key (and key id, which changes with every new key in Apple
/// Business). Clears a revocation: a new key is a fresh start.
#[tracing::instrument(skip_all, fields(account = %id))]
pub async fn rotate_key(
    store: &dyn Store,
    vault: &Vault,
    clients: &Clients,
    actor: &Actor,
    id: ApiAccountId,
    key_id: &str,
    pem: &str,
) -> Result<ApiAccountView> {
    let key_id = parse_key_id(key_id)?;
    let key = ValidatedKey::parse(pem)?;
    let existing = store.api_account(id).await?;
    let change = KeyChange {
        key_id,
        sealed_key: vault.seal(&api_account_key_aad(&id.to_string()), key.pem.0.as_bytes()),
        key_fingerprint: key.fingerprint.clone(),
        at: now(),
    };
    store.update_api_account_key(id, &change).await?;
    clients.invalidate(id).await;
    audit::append(
        store,
        actor,
        AuditAction::ApiAccountKeyRotated,
        &subject(id),
        serde_json::json!({
            "org_id": existing.view.org_id.to_string(),
            "key_id": change.key_id,
            "old_key_fingerprint": existing.view.key_fingerprint,
            "key_fingerprint": change.key_fingerprint,
        }),
    )
    .await?;
    Ok(store.api_account(id).await?.view)
}

/// Revokes an account: it stays listed (with its history) but is never used again.
#[tracing::instrument(skip_all, fields(account = %id))]
pub async fn revoke(
    store: &dyn Store,
    clients: &Clients,
    actor: &Actor,
    id: ApiAccountId,
) -> Result<ApiAccountView> {
    store.revoke_api_account(id, now()).await?;
    clients.invalidate(id).await;
    let view = store.api_account(id).await?.view;
    audit::append(
        store,
        actor,
        AuditAction::ApiAccountRevoked,
        &subject(id),
        serde_json::json!({ "org_id": view.org_id.to_string(), "name": view.name }),
    )
    .await?;
    Ok(view)
}

/// Deletes an account and its sealed key.
#[tracing::instrument(skip_all, fields(account = %id))]
pub async fn delete(
    store: &dyn Store,
    clients: &Clients,
    actor: &Actor,
    id: ApiAccountId,
) -> Result<()> {
    let view = store.api_account(id).await?.view;
    store.delete_api_account(id).await?;
    clients.forget(id).await;
    audit::append(
        store,
        actor,
        AuditAction::ApiAccountDeleted,
        &subject(id),
        serde_json::json!({
            "org_id": view.org_id.to_string(),
            "name": view.name,
            "client_id": view.client_id,
        }),
    )
    .await?;
    Ok(())
}

/// The accounts of an organization, by name, without any secret.
pub async fn list_accounts(store: &dyn Store, org: OrgId) -> Result<Vec<ApiAccountView>> {
    Ok(store
        .list_api_accounts(org)
        .await?
        .into_iter()
        .map(|r| r.view)
        .collect())
}

/// What a connection test found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionReport {
    /// Whether Apple issued a token.
    pub token_ok: bool,
    /// Whether the test read succeeded.
    pub ok: bool,
    /// Sanitized failure message.
    pub error: Option<String>,
}

/// Gets a token and reads one page with the account's credentials, recording the health
/// (`last_token_at`, `last_success_at`, `last_error`, 429 count) and an audit entry.
#[tracing::instrument(skip_all, fields(account = %id))]
pub async fn test_connection(
    store: &dyn Store,
    clients: &Clients,
    actor: &Actor,
    id: ApiAccountId,
) -> Result<ConnectionReport> {
    let client = clients.for_account(id).await?;
    let outcome = client.test_connection().await;
    let at = now();
    let update = match &outcome {
        Ok(_) => HealthUpdate {
            token_at: Some(at),
            success_at: Some(at),
            ..HealthUpdate::default()
        },
        Err(e) => health_of_error(e, at),
    };
    store.record_api_account_health(id, &update).await?;
    if matches!(
        outcome,
        Err(apple::Error::Unauthorized { .. } | apple::Error::Token(_))
    ) {
        // The key may have been rotated by another instance: rebuild next time.
        clients.invalidate(id).await;
    }
    let report = ConnectionReport {
        token_ok: update.token_at.is_some(),
        ok: outcome.is_ok(),
        error: update.error.clone(),
    };
    audit::append(
        store,
        actor,
        AuditAction::ApiAccountTested,
        &subject(id),
        serde_json::json!({ "ok": report.ok, "error": report.error }),
    )
    .await?;
    Ok(report)
}

/// Health to record after a failed call made with the account's credentials.
pub fn health_of_error(error: &apple::Error, at: OffsetDateTime) -> HealthUpdate {
    let token_failed = matches!(error, apple::Error::Token(_) | apple::Error::InvalidKey(_));
    let rate_limited = matches!(
        error,
        apple::Error::RateLimited { .. }
            | apple::Error::Token(apple::TokenError::RateLimited { .. })
    );
    HealthUpdate {
        token_at: (!token_failed).then_some(at),
        success_at: None,
        error: Some(sanitize_error(&error.to_string())),
        rate_limited,
    }
}

/// Caps a message at [`MAX_ERROR_CHARS`] and blanks anything that looks like a token or
/// key material (long runs of base64/hex characters), as defence in depth: the `apple`
/// crate's errors already hold none.
pub fn sanitize_error(message: &str) -> String {
    let words: Vec<String> = message
        .split_whitespace()
        .map(|w| {
            let run = w
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_'))
                .count();
            if run >= 40 && !w.contains("://") {
                "[redacted]".to_owned()
            } else {
                w.chars().filter(|c| !c.is_control()).collect()
            }
        })
        .collect();
    let joined = words.join(" ");
    if joined.chars().count() > MAX_ERROR_CHARS {
        let mut cut: String = joined.chars().take(MAX_ERROR_CHARS - 1).collect();
        cut.push('…');
        cut
    } else {
        joined
    }
}

struct CachedClient {
    client: apple::Client,
}

/// Per-account `apple::Client`s, built on first use from the sealed key and cached, all
/// sharing the account's one `apple::Budget`. The future sync engine and job runner get
/// their clients here.
pub struct Clients {
    store: Arc<dyn Store>,
    vault: Arc<Vault>,
    budget_config: apple::BudgetConfig,
    clients: Mutex<HashMap<ApiAccountId, CachedClient>>,
    budgets: std::sync::Mutex<HashMap<ApiAccountId, Arc<apple::Budget>>>,
    counters: std::sync::Mutex<HashMap<ApiAccountId, Arc<AccountCounters>>>,
}

/// What an account's client observed since it was last asked: 429s answered by Apple and
/// time spent waiting for the account's budget. The sync engine takes them after each page
/// for its run's health line.
#[derive(Debug, Default)]
pub struct AccountCounters {
    rate_limited: std::sync::atomic::AtomicU64,
    budget_wait_ms: std::sync::atomic::AtomicU64,
}

impl AccountCounters {
    /// Returns `(429s, budget wait in ms)` since the previous call and resets both.
    pub fn take(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.rate_limited.swap(0, Relaxed),
            self.budget_wait_ms.swap(0, Relaxed),
        )
    }
}

impl apple::Observer for AccountCounters {
    fn rate_limited(&self, _endpoint: &'static str, _retry_after: Option<std::time::Duration>) {
        self.rate_limited
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn budget_wait(
        &self,
        _endpoint: &'static str,
        _class: apple::RequestClass,
        _priority: apple::Priority,
        waited: std::time::Duration,
    ) {
        let ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX);
        self.budget_wait_ms
            .fetch_add(ms, std::sync::atomic::Ordering::Relaxed);
    }
}

impl fmt::Debug for Clients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clients").finish_non_exhaustive()
    }
}

impl Clients {
    /// A registry using Apple's observed limits (`apple::BudgetConfig::default()`).
    pub fn new(store: Arc<dyn Store>, vault: Arc<Vault>) -> Arc<Self> {
        Self::with_budget_config(store, vault, apple::BudgetConfig::default())
    }

    /// A registry whose budgets use `budget_config` (tests speed them up).
    pub fn with_budget_config(
        store: Arc<dyn Store>,
        vault: Arc<Vault>,
        budget_config: apple::BudgetConfig,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            vault,
            budget_config,
            clients: Mutex::new(HashMap::new()),
            budgets: std::sync::Mutex::new(HashMap::new()),
            counters: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The account's shared budget (created on first use, kept across key rotations).
    pub fn budget(&self, id: ApiAccountId) -> Arc<apple::Budget> {
        let mut budgets = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
        budgets
            .entry(id)
            .or_insert_with(|| Arc::new(apple::Budget::new(self.budget_config)))
            .clone()
    }

    /// The account's client counters (created on first use, kept across key rotations).
    pub fn counters(&self, id: ApiAccountId) -> Arc<AccountCounters> {
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        counters.entry(id).or_default().clone()
    }

    /// A ready client for the account. `Revoked` for a revoked account; the key is
    /// decrypted only here, and only when no client is cached.
    pub async fn for_account(&self, id: ApiAccountId) -> Result<apple::Client> {
        let mut clients = self.clients.lock().await;
        if let Some(cached) = clients.get(&id) {
            return Ok(cached.client.clone());
        }
        let record = self.store.api_account(id).await?;
        if record.view.revoked_at.is_some() {
            return Err(AccountError::Revoked);
        }
        let client = self.build(&record)?;
        clients.insert(
            id,
            CachedClient {
                client: client.clone(),
            },
        );
        Ok(client)
    }

    fn build(&self, record: &ApiAccountRecord) -> Result<apple::Client> {
        let view = &record.view;
        let plain = self.vault.open(
            &api_account_key_aad(&view.id.to_string()),
            &record.sealed_key,
        )?;
        let pem =
            std::str::from_utf8(plain.expose()).map_err(|_| AccountError::KeyUnusable(view.id))?;
        let key =
            apple::PrivateKey::from_pem(pem).map_err(|_| AccountError::KeyUnusable(view.id))?;
        let mut config = apple_config(view.kind, &view.client_id, &view.key_id);
        config.api_base_url.clone_from(&view.urls.api_base_url);
        config.token_url.clone_from(&view.urls.token_url);
        config.audience.clone_from(&view.urls.audience);
        apple::Client::builder(config, key, self.budget(view.id))
            .observer(self.counters(view.id))
            .build()
            .map_err(|e| AccountError::Client(sanitize_error(&e.to_string())))
    }

    /// Drops the cached client so the next use rebuilds it from storage.
    pub async fn invalidate(&self, id: ApiAccountId) {
        self.clients.lock().await.remove(&id);
    }

    /// Drops the cached client and the budget of a deleted account.
    async fn forget(&self, id: ApiAccountId) {
        self.invalidate(id).await;
        self.budgets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        self.counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "0f5b8f5e-7d0b-4e0e-9a55-3c1f1d0a2b3c";

    #[test]
    fn client_ids_must_match_the_kind() {
        assert!(parse_client_id(&format!("BUSINESSAPI.{UUID}"), AccountKind::Business).is_ok());
        assert_eq!(
            parse_client_id(&format!("SCHOOLAPI.{UUID}"), AccountKind::Business),
            Err(AccountInputError::ClientIdKind {
                found: "school",
                kind: "business"
            })
        );
        assert_eq!(
            parse_client_id("BUSINESSAPI.nope", AccountKind::Business),
            Err(AccountInputError::ClientIdFormat {
                prefix: "BUSINESSAPI"
            })
        );
        assert_eq!(
            parse_client_id(UUID, AccountKind::School),
            Err(AccountInputError::ClientIdFormat {
                prefix: "SCHOOLAPI"
            })
        );
    }

    #[test]
    fn key_ids_must_be_uuids() {
        assert!(parse_key_id(UUID).is_ok());
        assert_eq!(parse_key_id("ABC123"), Err(AccountInputError::KeyIdFormat));
    }

    #[test]
    fn errors_are_capped_and_token_like_words_blanked() {
        let token = "eyJhbGciOiJFUzI1NiIsImtpZCI6IjEyMyJ9eyJhbGciOiJFUzI1NiIsImtpZCI6IjEyMyJ9";
        let cleaned = sanitize_error(&format!("rejected {token} now"));
        assert_eq!(cleaned, "rejected [redacted] now");
        assert!(sanitize_error(&"word ".repeat(100)).chars().count() <= MAX_ERROR_CHARS);
    }
}
