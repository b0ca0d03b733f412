//! Wire types of Settings → Organizations: organizations a user administers and their
//! Apple API accounts.
//!
//! Nothing here can hold a private key: the server builds these from
//! `backend::accounts::ApiAccountView`, which carries only the key's fingerprint. Times
//! travel as RFC 3339 text (the wasm build has no `time` crate); [`short_time`] turns
//! them into what the page shows.

use serde::{Deserialize, Serialize};

/// Apple's limit on API accounts per organization, shown next to the count.
pub const MAX_ACCOUNTS_PER_ORG: usize = 50;

/// What the Settings hub shows: the organizations, and whether the viewer may add one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationList {
    /// Instance administrators create organizations.
    pub may_create: bool,
    pub organizations: Vec<OrganizationSummary>,
}

/// An organization as the Settings hub lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationSummary {
    /// UUID, text form.
    pub id: String,
    pub name: String,
    pub slug: String,
    /// The viewer's role there (`admin`, `operator`, …), `None` for an instance
    /// administrator without a membership.
    pub role: Option<String>,
    /// Whether the viewer may open the organization's API accounts.
    pub manageable: bool,
}

/// An organization's page: its name and its API accounts, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationAccounts {
    pub organization: OrganizationSummary,
    pub accounts: Vec<ApiAccount>,
}

/// One Apple API account, without its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiAccount {
    /// UUID, text form.
    pub id: String,
    pub name: String,
    /// `business` or `school`.
    pub kind: String,
    pub client_id: String,
    pub key_id: String,
    /// SHA-256 of the public key, lower-case hex: lets a person match the key in Apple
    /// Business without anyone seeing the private half.
    pub key_fingerprint: String,
    pub api_base_url: String,
    pub token_url: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, when the key was last replaced.
    pub rotated_at: Option<String>,
    /// RFC 3339, when the account was revoked; a revoked account is never used again.
    pub revoked_at: Option<String>,
    pub health: AccountHealth,
}

/// How an account's credentials fared the last times they were used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountHealth {
    /// RFC 3339, the last time Apple issued a token.
    pub last_token_at: Option<String>,
    /// RFC 3339, the last successful call.
    pub last_success_at: Option<String>,
    /// Sanitized message of the last failure; cleared by the next success.
    pub last_error: Option<String>,
    /// 429 answers seen so far.
    pub rate_limited_count: i64,
}

/// The one-word state of an account, derived from its health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountState {
    Revoked,
    /// The last use failed.
    Failing,
    /// The last use succeeded.
    Working,
    /// Never used yet.
    Untested,
}

impl AccountState {
    pub fn label(self) -> &'static str {
        match self {
            Self::Revoked => "Revoked",
            Self::Failing => "Failing",
            Self::Working => "Working",
            Self::Untested => "Not tested yet",
        }
    }

    /// CSS modifier: `revoked`, `failing`, `working`, `untested`.
    pub fn class(self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::Failing => "failing",
            Self::Working => "working",
            Self::Untested => "untested",
        }
    }
}

impl ApiAccount {
    pub fn state(&self) -> AccountState {
        if self.revoked_at.is_some() {
            AccountState::Revoked
        } else if self.health.last_error.is_some() {
            AccountState::Failing
        } else if self.health.last_success_at.is_some() {
            AccountState::Working
        } else {
            AccountState::Untested
        }
    }

    pub fn kind_label(&self) -> &'static str {
        match self.kind.as_str() {
            "school" => "Apple School Manager",
            _ => "Apple Business",
        }
    }
}

/// What a connection test found, as returned right after the test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionTest {
    /// Apple issued a token.
    pub token_ok: bool,
    /// The test read succeeded.
    pub ok: bool,
    /// Sanitized failure message.
    pub error: Option<String>,
}

impl ConnectionTest {
    /// One sentence for the page.
    pub fn summary(&self) -> String {
        match (self.ok, self.token_ok, &self.error) {
            (true, _, _) => "Connection OK: Apple issued a token and answered a test read.".into(),
            (false, true, Some(e)) => {
                format!("Apple issued a token, but the test read failed: {e}")
            }
            (false, false, Some(e)) => format!("Apple refused a token: {e}"),
            (false, _, None) => "The test failed without a message.".into(),
        }
    }
}

/// `2026-11-26T12:40:05Z` → `2026-11-26 12:40 UTC`; other shapes are shown as they are.
pub fn short_time(rfc3339: &str) -> String {
    let utc = rfc3339.ends_with('Z') || rfc3339.ends_with("+00:00");
    match (rfc3339.get(..10), rfc3339.get(11..16), utc) {
        (Some(date), Some(clock), true) if rfc3339.as_bytes().get(10) == Some(&b'T') => {
            format!("{date} {clock} UTC")
        }
        _ => rfc3339.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> ApiAccount {
        ApiAccount {
            id: "a".into(),
            name: "n".into(),
            kind: "business".into(),
            client_id: "c".into(),
            key_id: "k".into(),
            key_fingerprint: "f".into(),
            api_base_url: "https://api-business.apple.com".into(),
            token_url: "https://account.apple.com/auth/oauth2/token".into(),
            created_at: "2026-11-26T12:00:00Z".into(),
            rotated_at: None,
            revoked_at: None,
            health: AccountHealth {
                last_token_at: None,
                last_success_at: None,
                last_error: None,
                rate_limited_count: 0,
            },
        }
    }

    #[test]
    fn the_state_puts_revocation_first_then_the_last_outcome() {
        let mut a = account();
        assert_eq!(a.state(), AccountState::Untested);
        a.health.last_success_at = Some("2026-11-26T12:00:00Z".into());
        assert_eq!(a.state(), AccountState::Working);
        a.health.last_error = Some("token refused".into());
        assert_eq!(a.state(), AccountState::Failing);
        a.revoked_at = Some("2026-11-26T13:00:00Z".into());
        assert_eq!(a.state(), AccountState::Revoked);
    }

    #[test]
    fn utc_times_are_shortened_and_others_left_alone() {
        assert_eq!(short_time("2026-11-26T12:40:05Z"), "2026-11-26 12:40 UTC");
        assert_eq!(
            short_time("2026-11-26T12:40:05+00:00"),
            "2026-11-26 12:40 UTC"
        );
        assert_eq!(
            short_time("2026-11-26T12:40:05+02:00"),
            "2026-11-26T12:40:05+02:00"
        );
        assert_eq!(short_time("soon"), "soon");
    }

    #[test]
    fn a_report_says_which_step_failed() {
        let refused = ConnectionTest {
            token_ok: false,
            ok: false,
            error: Some("invalid_client".into()),
        };
        assert!(refused.summary().starts_with("Apple refused a token"));
        let read = ConnectionTest {
            token_ok: true,
            ok: false,
            error: Some("503".into()),
        };
        assert!(read.summary().contains("test read failed"));
    }
}
