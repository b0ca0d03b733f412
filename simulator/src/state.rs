//! Shared server state: the org, auth, faults and statistics, each behind its
//! own lock (never held across an `.await`).

use crate::config::{Behaviour, FaultConfig};
use crate::model::Org;
use p256::ecdsa::VerifyingKey;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use time::OffsetDateTime;

/// An issued bearer token.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub client_id: String,
    pub expires: OffsetDateTime,
}

#[derive(Debug, Default)]
pub(crate) struct AuthState {
    /// (client id, key id) → public key.
    pub keys: HashMap<(String, String), VerifyingKey>,
    pub tokens: HashMap<String, Token>,
    pub audiences: Vec<String>,
}

/// A fixed-window counter for one budget.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub start: OffsetDateTime,
    pub count: u32,
}

#[derive(Debug)]
pub(crate) struct FaultState {
    pub config: FaultConfig,
    pub rng: ChaCha8Rng,
    pub echo_armed: bool,
    /// (client id, bucket) → window; bucket is "GET", "POST" or "TOKEN".
    pub windows: HashMap<(String, &'static str), Window>,
    /// Pages served per connection (remote address).
    pub pages_per_conn: HashMap<SocketAddr, u32>,
    /// Connections whose next response is aborted (close mode `Abort`).
    pub doomed: std::collections::HashSet<SocketAddr>,
    /// Requests in flight per client id.
    pub in_flight: HashMap<String, u32>,
    /// (client id, bucket) → until when the last `Retry-After` sent to it asked it to wait.
    pub retry_after_until: HashMap<(String, &'static str), OffsetDateTime>,
}

impl FaultState {
    pub(crate) fn new(config: FaultConfig, seed: u64) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(config.seed.unwrap_or(seed) ^ 0xFA17);
        Self {
            echo_armed: config.echo_cursor_once,
            config,
            rng,
            windows: HashMap::new(),
            pages_per_conn: HashMap::new(),
            doomed: Default::default(),
            in_flight: HashMap::new(),
            retry_after_until: HashMap::new(),
        }
    }
}

/// Counters served by `GET /_sim/stats`.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// `"METHOD /route/{param}"` → status code → count.
    pub requests: BTreeMap<String, BTreeMap<u16, u64>>,
    /// Serial → how many activities included it.
    pub activities_per_serial: BTreeMap<String, u64>,
    /// 429 responses served (API and token endpoint).
    pub rate_limited: u64,
    /// Access tokens minted.
    pub tokens_minted: u64,
    /// Cursor value → times a page was served for it (`"<first>:<path>"` for first pages).
    pub pages_per_cursor: BTreeMap<String, u64>,
    /// Injected 5xx responses.
    pub injected_errors: u64,
    /// Responses cut off mid-body (reset faults and aborted connections).
    pub connections_reset: u64,
    /// Connections closed after N pages (graceful mode).
    pub connections_closed: u64,
    /// Requests that arrived before the `Retry-After` last sent to the same client for the
    /// same bucket (`GET` or `POST`) had elapsed: a client undercutting Apple's instruction.
    pub retry_after_undercut: u64,
}

impl Stats {
    /// How many times pages were served for cursors that were requested more than once.
    pub fn pages_fetched_twice(&self) -> u64 {
        self.pages_per_cursor.values().filter(|&&n| n > 1).count() as u64
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub base_url: String,
    pub behaviour: Behaviour,
    pub org: RwLock<Org>,
    pub auth: Mutex<AuthState>,
    pub faults: Mutex<FaultState>,
    pub stats: Mutex<Stats>,
    pub seed: u64,
    /// RNG for tokens and ids that must not disturb the fault stream.
    pub id_rng: Mutex<ChaCha8Rng>,
}

fn recover<T>(r: std::sync::LockResult<T>) -> T {
    // A panic in one handler must not wedge the simulator for every later test.
    r.unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn org_read(&self) -> RwLockReadGuard<'_, Org> {
        recover(self.org.read())
    }
    pub(crate) fn org_write(&self) -> RwLockWriteGuard<'_, Org> {
        recover(self.org.write())
    }
    pub(crate) fn auth(&self) -> MutexGuard<'_, AuthState> {
        recover(self.auth.lock())
    }
    pub(crate) fn faults(&self) -> MutexGuard<'_, FaultState> {
        recover(self.faults.lock())
    }
    pub(crate) fn stats(&self) -> MutexGuard<'_, Stats> {
        recover(self.stats.lock())
    }
    pub(crate) fn id_rng(&self) -> MutexGuard<'_, ChaCha8Rng> {
        recover(self.id_rng.lock())
    }

    /// Applies due activity effects, then returns a read guard.
    pub(crate) fn settled(&self) -> RwLockReadGuard<'_, Org> {
        let now = OffsetDateTime::now_utc();
        let due = self.org_read().next_due.is_some_and(|d| d <= now);
        if due {
            self.org_write().settle(now);
        }
        self.org_read()
    }

    /// Applies due effects and returns a write guard.
    pub(crate) fn settled_mut(&self) -> RwLockWriteGuard<'_, Org> {
        let mut org = self.org_write();
        org.settle(OffsetDateTime::now_utc());
        org
    }

    /// A random lowercase UUID from the id RNG.
    pub(crate) fn uuid(&self) -> String {
        use rand::RngCore;
        let mut b = [0u8; 16];
        self.id_rng().fill_bytes(&mut b);
        uuid::Builder::from_random_bytes(b).into_uuid().to_string()
    }
}
