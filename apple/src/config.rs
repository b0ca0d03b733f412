//! Client configuration.
//!
//! Design: plain data with Apple defaults, so the server can build it from its own config file
//! and tests can point it at the simulator (base URL, token URL, audience are all separate
//! fields: the JWT `aud` is the `/v2/` token URL while the POST goes to `/auth/oauth2/token`,
//! SPEC §19.11). Holds no secret (the key is a separate [`crate::PrivateKey`]), but `Debug` is
//! still written by hand so that adding a secret later cannot leak it by derive.

use std::fmt;
use std::time::Duration;

/// Apple Business API base URL.
pub const BUSINESS_API_BASE_URL: &str = "https://api-business.apple.com";
/// Apple School Manager API base URL.
pub const SCHOOL_API_BASE_URL: &str = "https://api-school.apple.com";
/// Token POST URL (documented).
pub const TOKEN_URL: &str = "https://account.apple.com/auth/oauth2/token";
/// Required JWT audience; note the `/v2/` that the POST URL lacks.
pub const ASSERTION_AUDIENCE: &str = "https://account.apple.com/auth/oauth2/v2/token";
/// OAuth scope of Apple Business.
pub const BUSINESS_SCOPE: &str = "business.api";
/// OAuth scope of Apple School Manager.
pub const SCHOOL_SCOPE: &str = "school.api";

/// Everything a [`crate::Client`] needs besides the private key and the budget.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// API origin without `/v1`, e.g. `https://api-business.apple.com` or the simulator URL.
    pub api_base_url: String,
    /// Where the token request is POSTed.
    pub token_url: String,
    /// JWT `aud` claim of the client assertion.
    pub audience: String,
    /// OAuth scope: `business.api` or `school.api`.
    pub scope: String,
    /// Client ID, `BUSINESSAPI.<uuid>` or `SCHOOLAPI.<uuid>`; also the JWT `iss` and `sub`.
    pub client_id: String,
    /// Key ID (UUID) sent as the JWT `kid` header when `send_kid` is on.
    pub key_id: String,
    /// Send the `kid` header. On by default (Apple documents it); one report says Apple rejects
    /// it, so it can be switched off without a code change.
    pub send_kid: bool,
    /// Lifetime of each client assertion (`exp - iat`). Apple allows < 180 days; we mint a new
    /// assertion for every token request, so a short one limits the damage of a leak.
    pub assertion_lifetime: Duration,
    /// Refresh the access token this long before it expires.
    pub token_refresh_margin: Duration,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Retry policy knobs.
    pub retry: RetryConfig,
    /// Maximum pages one stream may fetch before it stops with [`crate::PagingError::PageCapReached`].
    /// 1000 pages of 1000 items is a million devices.
    pub page_cap: u32,
    /// `User-Agent` header.
    pub user_agent: String,
}

/// Network timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP + TLS connect timeout.
    pub connect: Duration,
    /// One attempt: send, wait, read the whole body.
    pub attempt: Duration,
    /// Overall deadline of one call including retries and their waits (budget waits excluded:
    /// they are planned, and reported to the observer instead).
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            attempt: Duration::from_secs(60),
            total: Duration::from_secs(300),
        }
    }
}

/// Retry knobs used by [`crate::retry::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryConfig {
    /// Attempts in all, including the first (1 disables retries).
    pub max_attempts: u32,
    /// Backoff base: attempt n waits up to `base * 2^(n-1)` when no `Retry-After` is sent.
    pub base_delay: Duration,
    /// Backoff cap.
    pub max_delay: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl ClientConfig {
    /// Apple Business defaults for `client_id` / `key_id`.
    pub fn apple_business(client_id: impl Into<String>, key_id: impl Into<String>) -> Self {
        Self::with_product(
            BUSINESS_API_BASE_URL,
            BUSINESS_SCOPE,
            client_id.into(),
            key_id.into(),
        )
    }

    /// Apple School Manager defaults for `client_id` / `key_id`.
    pub fn apple_school(client_id: impl Into<String>, key_id: impl Into<String>) -> Self {
        Self::with_product(
            SCHOOL_API_BASE_URL,
            SCHOOL_SCOPE,
            client_id.into(),
            key_id.into(),
        )
    }

    fn with_product(base: &str, scope: &str, client_id: String, key_id: String) -> Self {
        Self {
            api_base_url: base.to_owned(),
            token_url: TOKEN_URL.to_owned(),
            audience: ASSERTION_AUDIENCE.to_owned(),
            scope: scope.to_owned(),
            client_id,
            key_id,
            send_kid: true,
            assertion_lifetime: Duration::from_secs(10 * 60),
            token_refresh_margin: Duration::from_secs(60),
            timeouts: Timeouts::default(),
            retry: RetryConfig::default(),
            page_cap: 1000,
            user_agent: concat!("orchard-apple/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }

    /// Points the API and token URLs at another origin (the simulator in tests), keeping the
    /// documented paths: `{origin}/auth/oauth2/token` and audience `{origin}/auth/oauth2/v2/token`.
    pub fn with_origin(mut self, origin: &str) -> Self {
        let origin = origin.trim_end_matches('/');
        self.api_base_url = origin.to_owned();
        self.token_url = format!("{origin}/auth/oauth2/token");
        self.audience = format!("{origin}/auth/oauth2/v2/token");
        self
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("api_base_url", &self.api_base_url)
            .field("token_url", &self.token_url)
            .field("audience", &self.audience)
            .field("scope", &self.scope)
            .field("client_id", &self.client_id)
            .field("key_id", &self.key_id)
            .field("send_kid", &self.send_kid)
            .field("assertion_lifetime", &self.assertion_lifetime)
            .field("token_refresh_margin", &self.token_refresh_margin)
            .field("timeouts", &self.timeouts)
            .field("retry", &self.retry)
            .field("page_cap", &self.page_cap)
            .finish_non_exhaustive()
    }
}
