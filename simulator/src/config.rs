//! Configuration of a simulator: Apple-like behaviour knobs and fault injection.
//!
//! Durations here are in *Apple seconds* (the time Apple would take) unless a
//! field says otherwise. The simulator divides them by the time-scale factor (see [`Behaviour::time_scale`])
//! so that hour-long budget windows or activity runs become testable in seconds.
//! Faults are all off by default; they can be changed at run time through
//! `POST /_sim/faults`, which takes this same [`FaultConfig`] as JSON.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The JWT `aud` Apple documents for client assertions.
pub const APPLE_AUDIENCE: &str = "https://account.apple.com/auth/oauth2/v2/token";

/// Apple-like behaviour that is not a fault: token lifetime, activity timing,
/// assignment lag, limits. Durations are in Apple seconds except the token lifetime.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Behaviour {
    /// Divides every Apple-like duration (budget windows, activity phases,
    /// assignment lag, activity retention, `Retry-After`); not token lifetimes. 1.0 = real time; 60.0 = a
    /// minute of Apple time passes in one real second. Must be > 0.
    pub time_scale: f64,
    /// Lifetime of issued bearer tokens in real seconds (not time-scaled; use
    /// [`FaultConfig::token_lifetime_secs`] for short lifetimes); Apple documents 3600 s.
    pub token_lifetime_secs: u64,
    /// How long an activity stays in `IN_PROGRESS/SUBMITTED`, then
    /// `PROCESSING`, then `POST_PROCESSING` before it is `COMPLETED`.
    /// \[guess\] Apple reports "seconds to tens of seconds"; default 2 + 5 + 3 s.
    pub activity_phase_secs: [f64; 3],
    /// Delay between an activity completing and its effect becoming visible on
    /// `orgDevices` / `mdmServers` (status, assignedServer, device linkage). \[guess\] 30 s.
    pub assignment_lag_secs: f64,
    /// Maximum number of devices in one `POST /v1/orgDeviceActivities`; more is
    /// rejected with 422 `ENTITY_UNPROCESSABLE` (pointer `/data/relationships/devices/data`).
    /// \[guess\] Apple does not document a maximum; SPEC suggests 1000.
    pub max_devices_per_activity: usize,
    /// Activities older than this are answered with 404. Apple documents 30 days.
    pub activity_retention_days: u32,
    /// How long the pre-signed `downloadUrl` of an activity log stays valid.
    /// \[guess\] about 18 h, from Apple's example.
    pub download_url_lifetime_secs: u64,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            time_scale: 1.0,
            token_lifetime_secs: 3600,
            activity_phase_secs: [2.0, 5.0, 3.0],
            assignment_lag_secs: 30.0,
            max_devices_per_activity: 1000,
            activity_retention_days: 30,
            download_url_lifetime_secs: 18 * 3600,
        }
    }
}

impl Behaviour {
    /// Converts Apple seconds to the real duration the simulator waits.
    pub fn real(&self, apple_secs: f64) -> Duration {
        let scale = if self.time_scale > 0.0 {
            self.time_scale
        } else {
            1.0
        };
        Duration::from_secs_f64((apple_secs / scale).max(0.0))
    }
}

/// A request budget: at most `requests` in every fixed window of `window_secs`
/// Apple seconds, per client id.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Budget {
    /// Requests allowed per window.
    pub requests: u32,
    /// Window length in Apple seconds (scaled by the time scale).
    pub window_secs: f64,
}

/// What happens to a connection once it has served
/// [`FaultConfig::close_connection_after_pages`] pages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CloseMode {
    /// The Nth page carries `Connection: close` and the server closes the TCP
    /// connection after it; the client reconnects transparently.
    #[default]
    Graceful,
    /// The next request on that connection gets response headers and a
    /// truncated body, then the connection is dropped (Apple's `-1005`).
    Abort,
}

/// Fault injection. Everything is off by default. Random faults draw from an
/// RNG seeded with [`FaultConfig::seed`] (or the simulator seed), so a
/// sequential run reproduces the same faults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct FaultConfig {
    /// Budget for GET requests on `/v1`, per client id.
    pub get_budget: Option<Budget>,
    /// Budget for POST/PATCH/DELETE requests on `/v1`, per client id.
    pub post_budget: Option<Budget>,
    /// Budget for token mints, per client id.
    pub token_budget: Option<Budget>,
    /// Send 429s without a `Retry-After` header (Apple often omits it).
    pub omit_retry_after: bool,
    /// Fraction (0..=1) of `/v1` requests answered with a 5xx (500, 502 or 503).
    pub error_rate: f64,
    /// Added latency on every authenticated `/v1` request (served while it counts as in
    /// flight) and on every token request, in real milliseconds.
    pub latency_ms: u64,
    /// Extra random latency in `0..=latency_jitter_ms` real milliseconds.
    pub latency_jitter_ms: u64,
    /// Fraction (0..=1) of successful `/v1` responses whose body is cut off
    /// mid-stream and whose connection is dropped.
    pub reset_rate: f64,
    /// Requests of one client in flight beyond this number get their response
    /// cut off mid-body, like Apple's edge resetting HTTP/2 streams when a client
    /// fans out (AppleCare look-ups) with more than ~4 concurrent requests.
    pub max_concurrent_requests: Option<u32>,
    /// Close the connection after this many collection pages were served on it
    /// (Apple's "~20 pages" quirk). See [`CloseMode`].
    pub close_connection_after_pages: Option<u32>,
    /// How the connection is closed after `close_connection_after_pages`.
    pub close_mode: CloseMode,
    /// The next paged response to a request that carried a cursor returns that
    /// same cursor again as `nextCursor` (once; re-armed by `POST /_sim/faults`).
    pub echo_cursor_once: bool,
    /// Overrides [`Behaviour::token_lifetime_secs`] (real seconds) for tokens
    /// minted from now on, to test expiry mid-run.
    pub token_lifetime_secs: Option<u64>,
    /// Seed of the fault RNG; the simulator seed when `None`.
    pub seed: Option<u64>,
}
