//! Orchard's one typed configuration.
//!
//! Sources, later ones winning: the defaults written here, then an optional TOML
//! file (`orchard.toml` in the working directory, or the path in `ORCHARD_CONFIG`),
//! then environment variables named `ORCHARD_<SECTION>__<KEY>` (for example
//! `ORCHARD_SERVER__LISTEN=0.0.0.0:8080`). The configuration is built and
//! validated once in `main` and passed down; nothing reads the environment later.
//!
//! Every error names the setting at fault and where its value came from.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Prefix of every environment variable Orchard reads.
pub const ENV_PREFIX: &str = "ORCHARD_";
/// Short alias of `ORCHARD_VAULT__MASTER_KEY`.
pub const MASTER_KEY_ENV: &str = "ORCHARD_MASTER_KEY";
/// Environment variable naming the TOML file; when unset, `orchard.toml` is read if present.
pub const CONFIG_PATH_ENV: &str = "ORCHARD_CONFIG";
/// Separator between section and key in environment variable names.
const ENV_SEPARATOR: &str = "__";

/// The complete, validated configuration.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub site: SiteConfig,
    pub vault: VaultConfig,
    pub demo: DemoConfig,
    pub oidc: OidcConfig,
    pub auth: AuthConfig,
    pub mirror: MirrorConfig,
    pub jobs: JobsConfig,
    pub budget: BudgetSettings,
}

/// `[server]`: how Orchard listens.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on. Default `127.0.0.1:3000`; port 0 picks a free port.
    /// Env: `ORCHARD_SERVER__LISTEN`.
    pub listen: SocketAddr,
    /// Seconds that in-flight requests get to finish after SIGTERM/SIGINT. Default 10.
    /// Env: `ORCHARD_SERVER__SHUTDOWN_GRACE_SECS`.
    pub shutdown_grace_secs: u64,
    /// The origin people reach Orchard at, e.g. `https://orchard.example.com`, when it
    /// differs from the listen address (behind a proxy). Used for the SSO callback URL and
    /// to decide on `Secure` cookies. Default: empty (derived from the request's Host).
    /// Env: `ORCHARD_SERVER__PUBLIC_URL`.
    pub public_url: String,
    /// Take the client address from the last `X-Forwarded-For` entry (set it only behind a
    /// proxy that writes that header). Default `false`: the peer address.
    /// Env: `ORCHARD_SERVER__TRUST_FORWARDED_FOR`.
    pub trust_forwarded_for: bool,
}

/// `[database]`: where Orchard keeps its state.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://path/to/file.db` (created on first run, WAL mode) or
    /// `postgres://user:password@host:port/database`. Default `sqlite://data/orchard.db`.
    /// Env: `ORCHARD_DATABASE__URL`. The password part is never printed.
    pub url: String,
    /// Upper bound on pooled connections. Default 16. Env: `ORCHARD_DATABASE__MAX_CONNECTIONS`.
    pub max_connections: u32,
}

/// `[log]`: tracing output.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `human` (default) or `json` (one object per line, for log shippers).
    /// Env: `ORCHARD_LOG__FORMAT`.
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `orchard=debug,sqlx=warn`. Default `info`.
    /// Env: `ORCHARD_LOG__FILTER` (`RUST_LOG` is deliberately not read: one source of truth).
    pub filter: String,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

/// `[site]`: the built front end (CSS, JS and the wasm bundle).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SiteConfig {
    /// Folder holding the built site (`pkg/` inside it). Default `target/site`, where
    /// `make build` puts it. Env: `ORCHARD_SITE__ROOT`.
    pub root: PathBuf,
}

/// `[vault]`: the key-encryption key of the credential vault (see `crate::vault`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VaultConfig {
    /// The master key: exactly 64 hex characters (32 random bytes, e.g. `openssl rand -hex 32`);
    /// shorter or constant keys are refused at start. When set, the key file is not used.
    /// Default: unset. Env: `ORCHARD_VAULT__MASTER_KEY` (or `ORCHARD_MASTER_KEY`). Never printed.
    pub master_key: Option<SecretString>,
    /// Key file used when `master_key` is unset: created on first run with 32 random bytes
    /// (hex) and mode 0600. Back it up: without it the stored keys cannot be decrypted.
    /// Default `data/master.key`. Env: `ORCHARD_VAULT__KEY_FILE`.
    pub key_file: PathBuf,
}

impl Default for VaultConfig {
    fn default() -> Self {
        Self {
            master_key: None,
            key_file: PathBuf::from("data/master.key"),
        }
    }
}

impl fmt::Debug for VaultConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultConfig")
            .field("master_key", &self.master_key.as_ref().map(|_| "***"))
            .field("key_file", &self.key_file)
            .finish()
    }
}

impl PartialEq for VaultConfig {
    fn eq(&self, other: &Self) -> bool {
        let key = |c: &Self| c.master_key.as_ref().map(|k| k.expose_secret().to_owned());
        key(self) == key(other) && self.key_file == other.key_file
    }
}

/// `[demo]`: an in-process simulator serving a generated "Demo organization".
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    /// `auto` (default): run the demo while no other organization has an API account;
    /// `on`: always; `off`: never. Env: `ORCHARD_DEMO__ENABLED`.
    pub enabled: DemoMode,
    /// Devices generated in the demo organization. Default 5000. Env: `ORCHARD_DEMO__DEVICES`.
    pub devices: usize,
    /// Seed of the generated organization and of its API credentials; the same seed gives the
    /// same devices and the same key. Default 1. Env: `ORCHARD_DEMO__SEED`.
    pub seed: u64,
    /// How much faster than Apple the demo's Apple runs: activity phases and the assignment
    /// lag are divided by it (1 = Apple's pace: an assignment takes about 10 s, and shows in
    /// the device lists 30 s later). Default 1. Env: `ORCHARD_DEMO__TIME_SCALE`.
    pub time_scale: f64,
}

/// When the demo organization runs.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DemoMode {
    Auto,
    On,
    Off,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            enabled: DemoMode::Auto,
            devices: 5000,
            seed: 1,
            time_scale: 1.0,
        }
    }
}

/// `[oidc]`: "Sign in with SSO" through an OpenID Connect provider (authorization code + PKCE).
///
/// Scalars can be set from the environment (`ORCHARD_OIDC__ISSUER`, ...); `role_map` only from
/// the TOML file, as an array of tables:
///
/// ```toml
/// [[oidc.role_map]]
/// group = "orchard-admins"
/// organization = "acme"
/// role = "admin"
/// ```
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OidcConfig {
    /// Whether the SSO button is offered and the callback accepted. Default `false`.
    /// Env: `ORCHARD_OIDC__ENABLED`.
    pub enabled: bool,
    /// The provider's issuer URL, exactly as its discovery document spells it (a trailing
    /// slash matters). Must be https, except `http://127.0.0.1`/`localhost` for tests.
    /// Env: `ORCHARD_OIDC__ISSUER`.
    pub issuer: String,
    /// The client id registered at the provider. Env: `ORCHARD_OIDC__CLIENT_ID`.
    #[serde(deserialize_with = "string_or_number")]
    pub client_id: String,
    /// The client secret. Never printed. Env: `ORCHARD_OIDC__CLIENT_SECRET`.
    pub client_secret: SecretString,
    /// How the secret reaches the token endpoint: `client_secret_basic` (default, HTTP Basic)
    /// or `client_secret_post` (form fields). Env: `ORCHARD_OIDC__CLIENT_AUTH`.
    pub client_auth: ClientAuthMethod,
    /// Path of the callback on Orchard's own origin; register `<public origin><redirect_path>`
    /// at the provider. Default `/auth/oidc/callback`. Env: `ORCHARD_OIDC__REDIRECT_PATH`.
    pub redirect_path: String,
    /// ID token claim holding the user's groups (a list of strings, or one string).
    /// Default `groups`. Env: `ORCHARD_OIDC__GROUPS_CLAIM`.
    pub groups_claim: String,
    /// Scopes requested on top of `openid profile email`, typically the one that makes the
    /// provider release groups. Default `["groups"]`; empty for none. From the environment
    /// as one space-separated string: `ORCHARD_OIDC__SCOPES="groups offline_access"`.
    #[serde(deserialize_with = "list_or_spaced_string")]
    pub scopes: Vec<String>,
    /// Label of the sign-in button. Default `Sign in with SSO`. Env: `ORCHARD_OIDC__DISPLAY_NAME`.
    pub display_name: String,
    /// Clock skew tolerated when checking an ID token's `exp` and `iat`, in seconds.
    /// Default 60, at most 300. Env: `ORCHARD_OIDC__LEEWAY_SECS`.
    pub leeway_secs: u64,
    /// Group → (organization slug, role) rules applied at each SSO sign-in; when several rules
    /// give roles in the same organization, the highest wins. Default: none (TOML only).
    pub role_map: Vec<crate::oidc::GroupRoleRule>,
}

/// How Orchard authenticates to the provider's token endpoint.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// HTTP Basic with the url-encoded client id and secret (RFC 6749 §2.3.1).
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` as form fields of the token request.
    ClientSecretPost,
}

/// A secret setting: `Debug` prints `***`, the value is only reachable through
/// [`SecretString::expose_secret`], and its memory is wiped on drop.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(String);

impl Drop for SecretString {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call sites are easy to audit with `grep expose_secret`.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        string_or_number(deserializer).map(Self)
    }
}

/// Accepts a string or a bare number: environment values that look numeric (a numeric client
/// id) arrive as TOML integers.
fn string_or_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Number(i64),
    }
    Ok(match Raw::deserialize(deserializer)? {
        Raw::Text(s) => s,
        Raw::Number(n) => n.to_string(),
    })
}

/// Accepts a list of strings or one space-separated string (as the environment gives it).
fn list_or_spaced_string<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<String>),
        Spaced(String),
    }
    Ok(match Raw::deserialize(deserializer)? {
        Raw::List(list) => list,
        Raw::Spaced(s) => s.split_whitespace().map(str::to_owned).collect(),
    })
}

impl Default for OidcConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            issuer: String::new(),
            client_id: String::new(),
            client_secret: SecretString::default(),
            client_auth: ClientAuthMethod::default(),
            redirect_path: "/auth/oidc/callback".to_owned(),
            groups_claim: "groups".to_owned(),
            scopes: vec!["groups".to_owned()],
            display_name: "Sign in with SSO".to_owned(),
            leeway_secs: 60,
            role_map: Vec::new(),
        }
    }
}

impl OidcConfig {
    /// The checks `Config` runs when `enabled` is true: (setting, message) of the first fault.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let issuer = reqwest::Url::parse(&self.issuer)
            .map_err(|e| ("oidc.issuer", format!("not a URL ({e})")))?;
        let loopback = matches!(issuer.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        match issuer.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => {
                return Err((
                    "oidc.issuer",
                    "must be an https URL (http only for 127.0.0.1 or localhost)".to_owned(),
                ));
            }
        }
        if issuer.query().is_some() || issuer.fragment().is_some() {
            return Err((
                "oidc.issuer",
                "must not have a query or fragment".to_owned(),
            ));
        }
        if self.client_id.trim().is_empty() {
            return Err(("oidc.client_id", "is required when oidc.enabled".to_owned()));
        }
        if self.client_secret.expose_secret().trim().is_empty() {
            return Err((
                "oidc.client_secret",
                "is required when oidc.enabled".to_owned(),
            ));
        }
        if !self.redirect_path.starts_with('/') || self.redirect_path.starts_with("//") {
            return Err((
                "oidc.redirect_path",
                "must be a path starting with one /".to_owned(),
            ));
        }
        if self.groups_claim.trim().is_empty() {
            return Err(("oidc.groups_claim", "must not be empty".to_owned()));
        }
        if self.leeway_secs > 300 {
            return Err(("oidc.leeway_secs", "must be at most 300 seconds".to_owned()));
        }
        if let Some(rule) = self
            .role_map
            .iter()
            .find(|r| r.group.is_empty() || r.organization.is_empty())
        {
            return Err((
                "oidc.role_map",
                format!("every rule needs a group and an organization (got {rule:?})"),
            ));
        }
        Ok(())
    }
}

/// `[mirror]`: how often the device mirror syncs each API account.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MirrorConfig {
    /// Seconds between the end of an account's successful sync and the next scheduled one.
    /// Default 3600. A 1M-device organization takes about 1000 list calls per run.
    /// Env: `ORCHARD_MIRROR__SYNC_INTERVAL_SECS`.
    pub sync_interval_secs: u64,
    /// Seconds after a failed attempt before the scheduler retries (resuming the run).
    /// Default 300. Env: `ORCHARD_MIRROR__RETRY_SECS`.
    pub retry_secs: u64,
    /// Whether the scheduler runs at all; `false` leaves only "Sync now". Default `true`.
    /// Env: `ORCHARD_MIRROR__SCHEDULE`.
    pub schedule: bool,
    /// Seconds an account's sync lease lasts without renewal (SQLite; renewed every quarter
    /// of it). After a crash, the interrupted sync resumes within this long of the next
    /// start. On PostgreSQL the lock ends with the process. Default 120.
    /// Env: `ORCHARD_MIRROR__LEASE_SECS`.
    pub lease_secs: u64,
    /// How long a device's AppleCare coverage and Activation Lock, fetched from Apple when
    /// someone opens the device, are shown without asking Apple again. Default 86400 (a day).
    /// Env: `ORCHARD_MIRROR__COVERAGE_MAX_AGE_SECS`.
    pub coverage_max_age_secs: u64,
    /// How many days of Apple's audit events an account's first sync reads (later syncs
    /// read from where the previous one stopped). Default 90.
    /// Env: `ORCHARD_MIRROR__AUDIT_HISTORY_DAYS`.
    pub audit_history_days: u32,
}

impl Default for MirrorConfig {
    fn default() -> Self {
        Self {
            sync_interval_secs: 60 * 60,
            retry_secs: 5 * 60,
            schedule: true,
            lease_secs: 120,
            coverage_max_age_secs: 24 * 60 * 60,
            audit_history_days: 90,
        }
    }
}

impl MirrorConfig {
    pub fn sync_interval(&self) -> Duration {
        Duration::from_secs(self.sync_interval_secs)
    }

    pub fn retry(&self) -> Duration {
        Duration::from_secs(self.retry_secs)
    }

    pub fn audit_history(&self) -> Duration {
        Duration::from_secs(u64::from(self.audit_history_days) * 24 * 60 * 60)
    }

    pub fn lease_ttl(&self) -> Duration {
        Duration::from_secs(self.lease_secs)
    }
}

/// `[jobs]`: the bulk-assignment job runner. Times are real milliseconds unless named
/// `_secs`; the defaults suit Apple (tests shorten them against a time-scaled simulator).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Devices per activity (chunk). Default 1000, the most Apple is known to take (the
    /// simulator's limit); above that Orchard refuses to start.
    /// Env: `ORCHARD_JOBS__CHUNK_SIZE`.
    pub chunk_size: u32,
    /// Whether this instance runs jobs at all. Default `true`. Env: `ORCHARD_JOBS__RUN`.
    pub run: bool,
    /// Seconds a job's lease lasts without renewal (SQLite; renewed every quarter of it):
    /// after a crash, the job waits at most this long for the next start. Default 60.
    /// Env: `ORCHARD_JOBS__LEASE_SECS`.
    pub lease_secs: u64,
    /// How often the runner looks for confirmed jobs (other instances' too). Default 5000.
    /// Env: `ORCHARD_JOBS__TICK_MS`.
    pub tick_ms: u64,
    /// Jobs worked at once by this instance. Default 4. Env: `ORCHARD_JOBS__MAX_PARALLEL`.
    pub max_parallel: u32,
    /// First wait between polls of an activity; grows by half each poll up to
    /// `poll_max_ms`. Defaults 2000 and 30000. Env: `ORCHARD_JOBS__POLL_FIRST_MS`,
    /// `ORCHARD_JOBS__POLL_MAX_MS`.
    pub poll_first_ms: u64,
    pub poll_max_ms: u64,
    /// Wait after an activity completed before checking the new assignment through the
    /// service linkage (Apple's assignment lag). Default 60000.
    /// Env: `ORCHARD_JOBS__ASSIGNMENT_LAG_MS`.
    pub assignment_lag_ms: u64,
    /// Checks of the linkage before a device Apple reported as done stays unverified.
    /// Default 3. Env: `ORCHARD_JOBS__VERIFY_TRIES`.
    pub verify_tries: u32,
    /// After a POST whose outcome is unknown (a crash while sending, a transport error, a
    /// timeout or a 5xx), wait this long from the send before reading the devices'
    /// assignment: longer than Apple's processing plus its assignment lag, so a request that
    /// did reach Apple shows. Default 900000 (15 min). Env: `ORCHARD_JOBS__RECONCILE_AFTER_MS`.
    pub reconcile_after_ms: u64,
    /// POSTs per chunk before its remaining devices fail with "no answer from Apple".
    /// Default 3. Env: `ORCHARD_JOBS__MAX_ATTEMPTS`.
    pub max_attempts: u32,
    /// First wait after a 429 without `Retry-After` (doubles per attempt, capped at an
    /// hour); with `Retry-After`, at least that. Default 60000.
    /// Env: `ORCHARD_JOBS__RATE_LIMIT_BACKOFF_MS`.
    pub rate_limit_backoff_ms: u64,
    /// Above this many devices the wizard asks for the number of devices to be typed to
    /// confirm. Default 100. Env: `ORCHARD_JOBS__CONFIRM_THRESHOLD`.
    pub confirm_threshold: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            chunk_size: crate::jobs::APPLE_MAX_DEVICES_PER_ACTIVITY,
            run: true,
            lease_secs: 60,
            tick_ms: 5_000,
            max_parallel: 4,
            poll_first_ms: 2_000,
            poll_max_ms: 30_000,
            assignment_lag_ms: 60_000,
            verify_tries: 3,
            reconcile_after_ms: 15 * 60 * 1000,
            max_attempts: 3,
            rate_limit_backoff_ms: 60_000,
            confirm_threshold: 100,
        }
    }
}

/// `[budget]`: the request budget of every Apple API account (Apple publishes no numbers;
/// people observe about 20 GETs a minute and 10 POSTs an hour).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetSettings {
    /// GETs per minute. Default 20. Env: `ORCHARD_BUDGET__READS_PER_MINUTE`.
    pub reads_per_minute: u32,
    /// POSTs (device activities) per hour. Default 10. Env: `ORCHARD_BUDGET__WRITES_PER_HOUR`.
    pub writes_per_hour: u32,
    /// Requests of one account on the wire at once. Default 4.
    /// Env: `ORCHARD_BUDGET__MAX_IN_FLIGHT`.
    pub max_in_flight: u32,
}

impl Default for BudgetSettings {
    fn default() -> Self {
        let apple = apple::BudgetConfig::default();
        Self {
            reads_per_minute: apple.reads.count,
            writes_per_hour: apple.writes.count,
            max_in_flight: apple.max_in_flight as u32,
        }
    }
}

impl BudgetSettings {
    /// The `apple` crate's form.
    pub fn apple(&self) -> apple::BudgetConfig {
        apple::BudgetConfig {
            reads: apple::Rate::per_minute(self.reads_per_minute),
            writes: apple::Rate::per_hour(self.writes_per_hour),
            max_in_flight: self.max_in_flight as usize,
        }
    }
}

/// `[auth]`: sign-in, sessions and throttling.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Seconds without a request after which a session ends. Default 1800 (30 min).
    /// Env: `ORCHARD_AUTH__IDLE_TIMEOUT_SECS`.
    pub idle_timeout_secs: u64,
    /// Seconds after sign-in after which a session ends however active. Default 43200 (12 h).
    /// Env: `ORCHARD_AUTH__ABSOLUTE_TIMEOUT_SECS`.
    pub absolute_timeout_secs: u64,
    /// Password hashes computed at once; each takes ~19 MiB. Default 2.
    /// Env: `ORCHARD_AUTH__MAX_CONCURRENT_HASHES`.
    pub max_concurrent_hashes: usize,
    /// Failed sign-ins per account within `account_window_secs` before delays start.
    /// Default 5. Env: `ORCHARD_AUTH__ACCOUNT_MAX_FAILURES`.
    pub account_max_failures: u32,
    /// Seconds a failed sign-in counts against its account. Default 300.
    /// Env: `ORCHARD_AUTH__ACCOUNT_WINDOW_SECS`.
    pub account_window_secs: u64,
    /// Seconds an account waits once at the limit; doubles with each further failure.
    /// Default 30. Env: `ORCHARD_AUTH__ACCOUNT_BASE_DELAY_SECS`.
    pub account_base_delay_secs: u64,
    /// Longest wait per account, in seconds. Default 900.
    /// Env: `ORCHARD_AUTH__ACCOUNT_MAX_DELAY_SECS`.
    pub account_max_delay_secs: u64,
    /// Sign-in attempts per client address within `address_window_secs`. Default 10.
    /// Env: `ORCHARD_AUTH__ADDRESS_MAX_ATTEMPTS`.
    pub address_max_attempts: u32,
    /// Window of the per-address limit, in seconds. Default 60.
    /// Env: `ORCHARD_AUTH__ADDRESS_WINDOW_SECS`.
    pub address_window_secs: u64,
    /// Seconds the first-run setup link stays valid. Default 3600.
    /// Env: `ORCHARD_AUTH__SETUP_TOKEN_TTL_SECS`.
    pub setup_token_ttl_secs: u64,
    /// Send the session cookie without `Secure` even when Orchard is not on loopback or
    /// `server.public_url` is https. Only for plain-http test networks. Default `false`.
    /// Env: `ORCHARD_AUTH__ALLOW_INSECURE_COOKIES`.
    pub allow_insecure_cookies: bool,
    /// Where to also write the first-run setup link (mode 0600), for automated first runs.
    /// Default: empty (console only). Env: `ORCHARD_AUTH__SETUP_LINK_FILE`.
    pub setup_link_file: PathBuf,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 30 * 60,
            absolute_timeout_secs: 12 * 60 * 60,
            max_concurrent_hashes: 2,
            account_max_failures: 5,
            account_window_secs: 5 * 60,
            account_base_delay_secs: 30,
            account_max_delay_secs: 15 * 60,
            address_max_attempts: 10,
            address_window_secs: 60,
            setup_token_ttl_secs: 60 * 60,
            allow_insecure_cookies: false,
            setup_link_file: PathBuf::new(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            shutdown_grace_secs: 10,
            public_url: String::new(),
            trust_forwarded_for: false,
        }
    }
}

impl ServerConfig {
    /// Whether the session cookie must be `Secure`: always, except for a plain-http
    /// loopback instance (a developer's machine, the test suites).
    pub fn wants_secure_cookies(&self, auth: &AuthConfig) -> bool {
        if auth.allow_insecure_cookies {
            return false;
        }
        self.public_url.starts_with("https://")
            || (self.public_url.is_empty() && !self.listen.ip().is_loopback())
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://data/orchard.db".to_owned(),
            max_connections: 16,
        }
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact_url_password(&self.url))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            filter: "info".to_owned(),
        }
    }
}

impl Default for SiteConfig {
    fn default() -> Self {
        Self {
            root: PathBuf::from("target/site"),
        }
    }
}

/// Why the configuration could not be built. Each variant names the setting and its source.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the configuration file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("environment variable {var} does not name a setting: use {ENV_PREFIX}<SECTION>__<KEY>")]
    UnknownVariable { var: String },
    #[error("invalid setting `{setting}` (from {origin}): {message}")]
    Invalid {
        setting: String,
        origin: String,
        message: String,
    },
}

impl Config {
    /// Builds the configuration from the process environment and the working directory.
    pub fn load() -> Result<Self, ConfigError> {
        let explicit = std::env::var_os(CONFIG_PATH_ENV).map(PathBuf::from);
        let path = explicit
            .clone()
            .unwrap_or_else(|| PathBuf::from("orchard.toml"));
        let file = if explicit.is_some() || path.exists() {
            Some(path)
        } else {
            None
        };
        Self::from_sources(file.as_deref(), std::env::vars())
    }

    /// Builds the configuration from an optional TOML file and a set of environment
    /// variables (those without the `ORCHARD_` prefix are ignored). Tests call this
    /// directly with their own variables.
    pub fn from_sources(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table = toml::Table::new();
        let mut origins: BTreeMap<String, String> = BTreeMap::new();

        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            table = text
                .parse::<toml::Table>()
                .map_err(|e| ConfigError::Syntax {
                    path: path.to_owned(),
                    message: e.message().to_owned(),
                })?;
            collect_origins(&table, "", &format!("{}", path.display()), &mut origins);
        }

        for (var, value) in env {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if var == CONFIG_PATH_ENV {
                continue;
            }
            // Settings always have a section; other ORCHARD_ variables (such as the test
            // suite's ORCHARD_TEST_POSTGRES_URL) belong to other tools.
            let alias = (var == MASTER_KEY_ENV).then_some("VAULT__MASTER_KEY");
            let Some((section, key)) = alias.unwrap_or(rest).split_once(ENV_SEPARATOR) else {
                continue;
            };
            let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
            let entry = table
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(section_table) = entry else {
                return Err(ConfigError::UnknownVariable { var });
            };
            // The master key stays a string even when it happens to be all digits.
            let parsed = if alias.is_some() || (section == "vault" && key == "master_key") {
                toml::Value::String(value)
            } else {
                env_value(&value)
            };
            section_table.insert(key.clone(), parsed);
            origins.insert(
                format!("{section}.{key}"),
                format!("environment variable {var}"),
            );
        }

        let config: Config = serde_path_to_error_free(table).map_err(|(setting, message)| {
            let origin = origins
                .iter()
                .filter(|(k, _)| setting.starts_with(k.as_str()) || k.starts_with(&setting))
                .map(|(_, v)| v.clone())
                .next()
                .unwrap_or_else(|| "defaults".to_owned());
            ConfigError::Invalid {
                setting,
                origin,
                message,
            }
        })?;
        config.validate(&origins)?;
        Ok(config)
    }

    fn validate(&self, origins: &BTreeMap<String, String>) -> Result<(), ConfigError> {
        let invalid = |setting: &str, message: String| ConfigError::Invalid {
            setting: setting.to_owned(),
            origin: origins
                .get(setting)
                .cloned()
                .unwrap_or_else(|| "defaults".to_owned()),
            message,
        };
        crate::store::DatabaseKind::from_url(&self.database.url)
            .map_err(|e| invalid("database.url", e.to_string()))?;
        let public_url = self.server.public_url.trim_end_matches('/');
        let has_scheme = public_url.starts_with("https://") || public_url.starts_with("http://");
        let has_path = public_url
            .split("://")
            .nth(1)
            .is_some_and(|rest| rest.contains('/'));
        if !public_url.is_empty() && (!has_scheme || has_path) {
            return Err(invalid(
                "server.public_url",
                "must be an origin like https://orchard.example.com (no path)".to_owned(),
            ));
        }
        if self.database.max_connections == 0 {
            return Err(invalid(
                "database.max_connections",
                "must be at least 1".to_owned(),
            ));
        }
        if let Some(key) = &self.vault.master_key
            && let Err(e) = crate::vault::MasterKey::from_hex(key.expose_secret())
        {
            return Err(invalid("vault.master_key", e.to_string()));
        }
        let auth = &self.auth;
        for (setting, value) in [
            ("auth.idle_timeout_secs", auth.idle_timeout_secs),
            ("auth.absolute_timeout_secs", auth.absolute_timeout_secs),
            (
                "auth.max_concurrent_hashes",
                auth.max_concurrent_hashes as u64,
            ),
            (
                "auth.account_max_failures",
                u64::from(auth.account_max_failures),
            ),
            ("auth.account_window_secs", auth.account_window_secs),
            (
                "auth.address_max_attempts",
                u64::from(auth.address_max_attempts),
            ),
            ("auth.address_window_secs", auth.address_window_secs),
            ("auth.setup_token_ttl_secs", auth.setup_token_ttl_secs),
            ("mirror.sync_interval_secs", self.mirror.sync_interval_secs),
            ("mirror.retry_secs", self.mirror.retry_secs),
            ("mirror.lease_secs", self.mirror.lease_secs),
            ("jobs.chunk_size", u64::from(self.jobs.chunk_size)),
            ("jobs.lease_secs", self.jobs.lease_secs),
            ("jobs.tick_ms", self.jobs.tick_ms),
            ("jobs.max_parallel", u64::from(self.jobs.max_parallel)),
            ("jobs.poll_first_ms", self.jobs.poll_first_ms),
            ("jobs.poll_max_ms", self.jobs.poll_max_ms),
            ("jobs.max_attempts", u64::from(self.jobs.max_attempts)),
            (
                "budget.reads_per_minute",
                u64::from(self.budget.reads_per_minute),
            ),
            (
                "budget.writes_per_hour",
                u64::from(self.budget.writes_per_hour),
            ),
            ("budget.max_in_flight", u64::from(self.budget.max_in_flight)),
        ] {
            if value == 0 {
                return Err(invalid(setting, "must be at least 1".to_owned()));
            }
        }
        if !(self.demo.time_scale.is_finite() && self.demo.time_scale > 0.0) {
            return Err(invalid(
                "demo.time_scale",
                "must be a number above 0 (1 runs at Apple's pace)".to_owned(),
            ));
        }
        if let Err(e) = crate::jobs::check_chunk_size(self.jobs.chunk_size) {
            return Err(invalid("jobs.chunk_size", e.to_string()));
        }
        if auth.idle_timeout_secs > auth.absolute_timeout_secs {
            return Err(invalid(
                "auth.idle_timeout_secs",
                "must not exceed auth.absolute_timeout_secs".to_owned(),
            ));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.filter) {
            return Err(invalid("log.filter", e.to_string()));
        }
        if self.oidc.enabled {
            self.oidc
                .check()
                .map_err(|(setting, message)| invalid(setting, message))?;
        }
        Ok(())
    }
}

/// Environment values are strings; numbers and booleans are recognised so that
/// `ORCHARD_DATABASE__MAX_CONNECTIONS=4` fills a numeric field.
fn env_value(raw: &str) -> toml::Value {
    if let Ok(n) = raw.parse::<i64>() {
        return toml::Value::Integer(n);
    }
    match raw {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(raw.to_owned()),
    }
}

fn collect_origins(
    table: &toml::Table,
    prefix: &str,
    origin: &str,
    out: &mut BTreeMap<String, String>,
) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if let toml::Value::Table(inner) = value {
            collect_origins(inner, &path, origin, out);
        } else {
            out.insert(path, origin.to_owned());
        }
    }
}

/// Deserializes the merged table, reporting the dotted path of the first bad setting.
fn serde_path_to_error_free(table: toml::Table) -> Result<Config, (String, String)> {
    let mut track = serde_path_to_error::Track::new();
    let de = serde_path_to_error::Deserializer::new(toml::Value::Table(table), &mut track);
    Config::deserialize(de).map_err(|e: toml::de::Error| {
        let path = track.path().to_string();
        let path = if path == "." { String::new() } else { path };
        (path, e.message().to_owned())
    })
}

/// Replaces the password of a URL such as `postgres://user:secret@host/db` with `***`.
pub fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_listen_on_localhost_3000_with_sqlite_under_data() {
        let config = Config::from_sources(None, env(&[])).unwrap();
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(config.database.url, "sqlite://data/orchard.db");
        assert_eq!(config.log.format, LogFormat::Human);
    }

    #[test]
    fn environment_overrides_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orchard.toml");
        std::fs::write(
            &path,
            "[server]\nlisten = \"127.0.0.1:4000\"\n[log]\nformat = \"json\"\n",
        )
        .unwrap();
        let config = Config::from_sources(
            Some(&path),
            env(&[
                ("ORCHARD_SERVER__LISTEN", "127.0.0.1:5000"),
                ("ORCHARD_DATABASE__MAX_CONNECTIONS", "4"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:5000");
        assert_eq!(config.log.format, LogFormat::Json);
        assert_eq!(config.database.max_connections, 4);
    }

    #[test]
    fn a_bad_value_names_the_setting_and_the_variable_it_came_from() {
        let err = Config::from_sources(None, env(&[("ORCHARD_SERVER__LISTEN", "not an address")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.listen"), "{err}");
        assert!(err.contains("ORCHARD_SERVER__LISTEN"), "{err}");
    }

    #[test]
    fn a_bad_value_in_the_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orchard.toml");
        std::fs::write(&path, "[log]\nformat = \"xml\"\n").unwrap();
        let err = Config::from_sources(Some(&path), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("log.format"), "{err}");
        assert!(err.contains("orchard.toml"), "{err}");
    }

    #[test]
    fn unknown_settings_are_rejected_rather_than_ignored() {
        let err = Config::from_sources(None, env(&[("ORCHARD_SERVER__LISTN", "x")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("listn"), "{err}");
        let err = Config::from_sources(None, env(&[("ORCHARD_NOSECTION__KEY", "x")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("nosection"), "{err}");
    }

    #[test]
    fn an_unsupported_database_scheme_is_refused_at_start() {
        let err = Config::from_sources(None, env(&[("ORCHARD_DATABASE__URL", "mysql://x/y")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("database.url"), "{err}");
        assert!(err.contains("mysql"), "{err}");
    }

    #[test]
    fn variables_without_a_section_belong_to_other_tools() {
        let config = Config::from_sources(
            None,
            env(&[("ORCHARD_TEST_POSTGRES_URL", "postgres://x/y")]),
        )
        .unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn a_bad_log_filter_is_refused_at_start() {
        let err = Config::from_sources(None, env(&[("ORCHARD_LOG__FILTER", "orchard=loud")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("log.filter"), "{err}");
    }

    #[test]
    fn a_weak_or_malformed_master_key_is_refused_naming_the_variable() {
        for bad in ["abc", &"00".repeat(32), &"g".repeat(64)] {
            let err = Config::from_sources(None, env(&[("ORCHARD_VAULT__MASTER_KEY", bad)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains("vault.master_key"), "{err}");
            assert!(err.contains("ORCHARD_VAULT__MASTER_KEY"), "{err}");
        }
        let err = Config::from_sources(None, env(&[("ORCHARD_MASTER_KEY", "1234")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("vault.master_key"), "{err}");
        assert!(err.contains("ORCHARD_MASTER_KEY"), "{err}");
    }

    #[test]
    fn the_master_key_is_read_from_either_variable_and_never_printed() {
        let key = "0123456789abcdef".repeat(4);
        for var in ["ORCHARD_VAULT__MASTER_KEY", "ORCHARD_MASTER_KEY"] {
            let config = Config::from_sources(None, env(&[(var, &key)])).unwrap();
            assert_eq!(
                config
                    .vault
                    .master_key
                    .as_ref()
                    .map(|k| k.expose_secret().to_owned()),
                Some(key.clone())
            );
            assert!(!format!("{config:?}").contains(&key));
        }
        let digits = "1".repeat(63) + "2";
        let config =
            Config::from_sources(None, env(&[("ORCHARD_VAULT__MASTER_KEY", &digits)])).unwrap();
        assert!(config.vault.master_key.is_some());
    }

    #[test]
    fn demo_and_vault_settings_have_documented_defaults_and_env_overrides() {
        let config = Config::from_sources(None, env(&[])).unwrap();
        assert_eq!(config.demo.enabled, DemoMode::Auto);
        assert_eq!(config.demo.devices, 5000);
        assert_eq!(config.vault.key_file, PathBuf::from("data/master.key"));
        let config = Config::from_sources(
            None,
            env(&[
                ("ORCHARD_DEMO__ENABLED", "off"),
                ("ORCHARD_DEMO__DEVICES", "10"),
                ("ORCHARD_VAULT__KEY_FILE", "/etc/orchard/key"),
            ]),
        )
        .unwrap();
        assert_eq!(config.demo.enabled, DemoMode::Off);
        assert_eq!(config.demo.devices, 10);
        assert_eq!(config.vault.key_file, PathBuf::from("/etc/orchard/key"));
    }

    #[test]
    fn debug_output_never_shows_the_database_password() {
        let config = Config::from_sources(
            None,
            env(&[(
                "ORCHARD_DATABASE__URL",
                "postgres://orchard:canary-secret@db:5432/orchard",
            )]),
        )
        .unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("canary-secret"), "{printed}");
        assert!(printed.contains("orchard:***@db:5432/orchard"), "{printed}");
    }
    #[test]
    fn oidc_is_off_by_default_and_its_scalars_come_from_the_environment() {
        let config = Config::from_sources(None, env(&[])).unwrap();
        assert!(!config.oidc.enabled);
        assert_eq!(config.oidc.redirect_path, "/auth/oidc/callback");
        assert_eq!(config.oidc.display_name, "Sign in with SSO");
        let config = Config::from_sources(
            None,
            env(&[
                ("ORCHARD_OIDC__ENABLED", "true"),
                ("ORCHARD_OIDC__ISSUER", "https://login.example.com"),
                ("ORCHARD_OIDC__CLIENT_ID", "123456"),
                ("ORCHARD_OIDC__CLIENT_SECRET", "canary-oidc-secret"),
                ("ORCHARD_OIDC__CLIENT_AUTH", "client_secret_post"),
                ("ORCHARD_OIDC__SCOPES", "groups offline_access"),
            ]),
        )
        .unwrap();
        assert!(config.oidc.enabled);
        assert_eq!(config.oidc.client_id, "123456");
        assert_eq!(config.oidc.client_auth, ClientAuthMethod::ClientSecretPost);
        assert_eq!(config.oidc.scopes, ["groups", "offline_access"]);
        let printed = format!("{config:?}");
        assert!(!printed.contains("canary-oidc-secret"), "{printed}");
    }

    #[test]
    fn oidc_role_map_is_read_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orchard.toml");
        std::fs::write(
            &path,
            "[oidc]\nenabled = true\nissuer = \"http://127.0.0.1:9000\"\nclient_id = \"orchard\"\n\
             client_secret = \"s\"\n[[oidc.role_map]]\ngroup = \"g\"\norganization = \"acme\"\n\
             role = \"helpdesk\"\n",
        )
        .unwrap();
        let config = Config::from_sources(Some(&path), env(&[])).unwrap();
        assert_eq!(config.oidc.role_map.len(), 1);
        assert_eq!(config.oidc.role_map[0].organization, "acme");
    }

    #[test]
    fn enabled_oidc_needs_an_https_issuer_and_client_credentials() {
        let base = [
            ("ORCHARD_OIDC__ENABLED", "true"),
            ("ORCHARD_OIDC__CLIENT_ID", "orchard"),
            ("ORCHARD_OIDC__CLIENT_SECRET", "s"),
        ];
        for (issuer, ok) in [
            ("https://login.example.com", true),
            ("http://127.0.0.1:8080", true),
            ("http://localhost:8080/realms/x", true),
            ("http://login.example.com", false),
            ("ftp://login.example.com", false),
            ("not a url", false),
        ] {
            let mut vars = base.to_vec();
            vars.push(("ORCHARD_OIDC__ISSUER", issuer));
            let result = Config::from_sources(None, env(&vars));
            assert_eq!(result.is_ok(), ok, "{issuer}: {result:?}");
            if let Err(e) = result {
                assert!(e.to_string().contains("oidc.issuer"), "{e}");
            }
        }
        let err = Config::from_sources(
            None,
            env(&[
                ("ORCHARD_OIDC__ENABLED", "true"),
                ("ORCHARD_OIDC__ISSUER", "https://login.example.com"),
                ("ORCHARD_OIDC__CLIENT_ID", "orchard"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("oidc.client_secret"), "{err}");
    }
    #[test]
    fn auth_settings_default_to_the_product_limits_and_follow_the_environment() {
        let config = Config::from_sources(
            None,
            env(&[
                ("ORCHARD_AUTH__IDLE_TIMEOUT_SECS", "600"),
                ("ORCHARD_AUTH__MAX_CONCURRENT_HASHES", "4"),
            ]),
        )
        .unwrap();
        assert_eq!(config.auth.idle_timeout_secs, 600);
        assert_eq!(config.auth.max_concurrent_hashes, 4);
        assert_eq!(config.auth.absolute_timeout_secs, 43_200);
        let defaults = AuthConfig::default();
        assert_eq!(defaults.idle_timeout_secs, 1800);
        assert_eq!(defaults.account_max_failures, 5);
        assert_eq!(defaults.address_max_attempts, 10);
    }

    #[test]
    fn zero_or_inconsistent_auth_limits_are_refused_at_start() {
        let err = Config::from_sources(None, env(&[("ORCHARD_AUTH__ADDRESS_MAX_ATTEMPTS", "0")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("auth.address_max_attempts"), "{err}");
        assert!(err.contains("ORCHARD_AUTH__ADDRESS_MAX_ATTEMPTS"), "{err}");
        let err = Config::from_sources(None, env(&[("ORCHARD_AUTH__IDLE_TIMEOUT_SECS", "90000")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("auth.idle_timeout_secs"), "{err}");
    }
}
