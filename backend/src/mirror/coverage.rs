//! A device's AppleCare coverage (SPEC §7.6) and Activation Lock (§7.7), on demand.
//!
//! Apple serves both one device per call and has no bulk endpoint, so syncing them for a
//! whole organization would spend the read budget many times over. They are fetched when a
//! person opens a device instead: through the API account that last returned the device, at
//! interactive priority (ahead of any sync), the two calls side by side; then cached in the
//! database ([`cached`]), so reopening the device, or a colleague opening it, costs Apple
//! nothing until the cache is older than the configured age. Callers decide when to
//! [`fetch`]: the device page renders from the cache alone (it must not wait for Apple) and
//! fetches from the browser, or on "Refresh from Apple".
//!
//! Apple's quirks kept here: a 404 means the device is not in the organization (for both
//! endpoints); the Activation Lock endpoint can answer 5xx for lock states Apple keeps
//! internal, and older API versions lack it, so a lock that cannot be read is reported as
//! such next to a coverage that could, not as a failure of both.

use apple::resources::org_devices::{self, AppleCareCoverage};
use apple::{Priority, SerialNumber};
use serde::{Deserialize, Serialize};

use super::AppleCareState;
use crate::accounts::{AccountError, Clients, sanitize_error};
use crate::orgs::OrgId;
use crate::store::{Store, StoreError};

/// Coverage items Apple may list for one device (Limited Warranty, AppleCare+, ...).
const MAX_COVERAGE_ITEMS: usize = 100;

/// One coverage item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    /// e.g. `Limited Warranty`, `AppleCare+ for Business`.
    pub description: Option<String>,
    /// `ACTIVE` or `INACTIVE`, as Apple says it.
    pub status: Option<String>,
    /// `ABE_SUBSCRIPTION`, `PAID_UP_FRONT`, `SUBSCRIPTION`, `NONE`.
    pub payment_type: Option<String>,
    pub agreement_number: Option<String>,
    /// Unix seconds.
    pub starts_at: Option<i64>,
    /// Unix seconds; none for AppleCare+ for Business.
    pub ends_at: Option<i64>,
    pub renewable: Option<bool>,
    pub canceled: Option<bool>,
    /// Unix seconds.
    pub canceled_at: Option<i64>,
}

impl From<AppleCareCoverage> for Coverage {
    fn from(item: AppleCareCoverage) -> Self {
        let a = item.attributes;
        Self {
            description: a.description,
            status: a.status.map(|s| s.as_str().to_owned()),
            payment_type: a.payment_type.map(|p| p.as_str().to_owned()),
            agreement_number: a.agreement_number,
            starts_at: a.start_date_time.map(|t| t.unix_timestamp()),
            ends_at: a.end_date_time.map(|t| t.unix_timestamp()),
            renewable: a.is_renewable,
            canceled: a.is_canceled,
            canceled_at: a.contract_cancel_date_time.map(|t| t.unix_timestamp()),
        }
    }
}

/// What Apple said about the device's Activation Lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ActivationLock {
    /// `lock_type`: `MDM`, `USER` or `NONE`, meaningful when locked.
    Known {
        locked: bool,
        lock_type: Option<String>,
    },
    /// Apple could not report it (the reason, in Apple's words or ours).
    Unavailable { reason: String },
}

/// Coverage and lock of one device, and when Apple was asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverageAndLock {
    pub coverage: Vec<Coverage>,
    pub activation_lock: ActivationLock,
    /// Unix seconds.
    pub fetched_at: i64,
}

impl CoverageAndLock {
    /// Covered when an item is active and not canceled (the rule of migration 0013's
    /// backfill, which must stay the same).
    pub fn state(&self) -> AppleCareState {
        let covering =
            |c: &Coverage| c.status.as_deref() == Some("ACTIVE") && c.canceled != Some(true);
        if self.coverage.iter().any(covering) {
            AppleCareState::Covered
        } else {
            AppleCareState::NotCovered
        }
    }
}

/// Why coverage and lock could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum CoverageError {
    #[error("this device is not in Orchard's copy of the organization")]
    NotMirrored,
    #[error("Apple does not know this device in the organization any more")]
    NotAtApple,
    #[error("the organization's API account was revoked: no request can be sent for it")]
    AccountRevoked,
    #[error("Apple is limiting this account's requests; try again in {0} s")]
    RateLimited(u64),
    #[error("Apple did not answer: {0}")]
    Apple(String),
    #[error(transparent)]
    Account(AccountError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<AccountError> for CoverageError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Revoked => Self::AccountRevoked,
            other => Self::Account(other),
        }
    }
}

pub(super) fn apple_error(err: &apple::Error) -> CoverageError {
    match err {
        apple::Error::NotFound { .. } => CoverageError::NotAtApple,
        apple::Error::RateLimited { retry_after, .. } => {
            CoverageError::RateLimited(retry_after.map_or(60, |d| d.as_secs().max(1)))
        }
        other => CoverageError::Apple(sanitize_error(&other.to_string())),
    }
}

/// What Orchard has of the device's coverage and lock, however old; `None` when nothing
/// (or an entry this version cannot read, which is then fetched again rather than shown
/// wrong).
pub async fn cached(
    store: &dyn Store,
    org: OrgId,
    serial: &str,
) -> Result<Option<CoverageAndLock>, StoreError> {
    Ok(store
        .device_coverage(org, serial)
        .await?
        .and_then(|(_, json)| serde_json::from_str(&json).ok()))
}

/// Asks Apple for the device's coverage and lock now, and caches the answer.
pub async fn fetch(
    store: &dyn Store,
    clients: &Clients,
    org: OrgId,
    serial: &str,
    now: i64,
) -> Result<CoverageAndLock, CoverageError> {
    let device = store
        .devices_by_serials(org, &[serial.to_owned()])
        .await?
        .into_iter()
        .next()
        .ok_or(CoverageError::NotMirrored)?;
    let client = clients.for_account(device.account_id).await?;
    let serial_number = SerialNumber::new(device.serial.as_str());
    let coverage_call = org_devices::apple_care_coverage(&serial_number)
        .priority(Priority::Interactive)
        .collect_all(&client, MAX_COVERAGE_ITEMS);
    let lock_request =
        org_devices::activation_lock_status(&serial_number).priority(Priority::Interactive);
    let (coverage, lock) = tokio::join!(coverage_call, lock_request.send(&client));
    let coverage = coverage.map_err(|e| apple_error(&e))?;
    let activation_lock = match lock {
        Ok(doc) => ActivationLock::Known {
            locked: doc.data.attributes.is_locked.unwrap_or(false),
            lock_type: doc.data.attributes.lock_type.map(|t| t.as_str().to_owned()),
        },
        Err(err) => match apple_error(&err) {
            CoverageError::NotAtApple => return Err(CoverageError::NotAtApple),
            CoverageError::RateLimited(secs) => return Err(CoverageError::RateLimited(secs)),
            other => ActivationLock::Unavailable {
                reason: other.to_string(),
            },
        },
    };
    let facts = CoverageAndLock {
        coverage: coverage.into_iter().map(Coverage::from).collect(),
        activation_lock,
        fetched_at: now,
    };
    let json = serde_json::to_string(&facts)
        .map_err(|e| StoreError::Corrupt(format!("device coverage: {e}")))?;
    store
        .put_device_coverage(org, &device.serial, now, &json, facts.state())
        .await?;
    Ok(facts)
}
