//! A simulator of the Apple Business API ("our Apple"): the whole API of SPEC §6
//! over real HTTP, with deterministic seeded organizations and fault injection.
//! Tests, the demo mode and benchmarks talk to it instead of Apple.
//!
//! # Library
//!
//! ```no_run
//! # async fn demo() -> Result<(), simulator::Error> {
//! use simulator::{FaultConfig, Simulator};
//! let sim = Simulator::builder().seed(42).devices(10_000).faults(FaultConfig::default()).time_scale(60.0).spawn().await?;
//! let creds = sim.credentials(); // client_id, key_id, private_key_pem (PKCS#8)
//! println!("{} {} {}", sim.base_url(), sim.token_url(), creds.client_id);
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! The simulator shares no code with the `apple` client crate: it renders its
//! JSON itself from SPEC, so the two only meet in SPEC and the fixtures.
//!
//! # Routes
//!
//! * `POST /auth/oauth2/token`, `POST /auth/oauth2/v2/token` — client credentials with
//!   an ES256 assertion (checks listed in `src/auth.rs`).
//! * `/v1/...` — every endpoint of SPEC §6, plus the undocumented `related` lists
//!   (`/v1/mdmServers/{id}/devices`, `/v1/blueprints/{id}/{rel}`, `/v1/mdmDevices/{id}`).
//! * `GET /blobstore/activity-logs/{id}/{file}?Expires=&Signature=` — the pre-signed
//!   activity-log CSV behind `downloadUrl` (403 once expired).
//!
//! # Test hooks (`/_sim/`, no auth)
//!
//! * `GET /_sim/stats` → [`Stats`] as JSON: `requests` (`"METHOD /route" → status → count`),
//!   `activitiesPerSerial`, `rateLimited`, `tokensMinted`, `pagesPerCursor`
//!   (`cursor → count`, first pages as `"<first>:/path"`), `pagesFetchedTwice`,
//!   `injectedErrors`, `connectionsReset`, `connectionsClosed`, `retryAfterUndercut`
//!   (requests that arrived before the `Retry-After` last sent to the same client for the
//!   same bucket, `GET` or `POST`, had elapsed; a 429 sent without the header sets no
//!   wait, and replacing the faults forgets every wait).
//! * `POST /_sim/reset-stats` → 204.
//! * `GET /_sim/faults` / `POST /_sim/faults` — read or replace the [`FaultConfig`]
//!   (camelCase JSON, missing fields = off); replacing re-seeds the fault RNG and
//!   resets budgets and connection counters.
//! * `POST /_sim/mutate` — change the org directly, with no activity and no lag:
//!   `{"op":"addDevices","count":N,"serverId"?:ID}`,
//!   `{"op":"releaseDevices","serials":[..]}`,
//!   `{"op":"reassignDevices","serials":[..],"serverId":ID|null}`,
//!   `{"op":"setAttributes","serials":[..],"attributes":{"color":"RED",..}}`
//!   → `{"ok":true,"serials":[changed],"unknown":[not found or released]}`.
//!   Each change bumps `updatedDateTime`; all but `setAttributes` append audit events.
//! * `GET /_sim/truth` — NDJSON stream: a summary line
//!   `{"kind":"summary","devices":N,"servers":[{id,serverName,serverType,deviceCount}],..}`
//!   then one line per device `{serialNumber,status,assignedServerId,released,productFamily,updatedDateTime}`.
//!
//! # Choices where Apple documents nothing (`[guess]`, also noted in the code)
//!
//! * Token endpoint errors are RFC 6749 JSON with HTTP 400 (`invalid_client`,
//!   `invalid_request`, `invalid_scope`, `unsupported_grant_type`); mint limit → 429
//!   `too_many_requests`. Token lifetimes are real seconds, never time-scaled.
//! * Error codes follow App Store Connect: `PARAMETER_ERROR.INVALID`, `NOT_AUTHORIZED`,
//!   `FORBIDDEN_ERROR`, `NOT_FOUND`, `ENTITY_ERROR.*` (409), `ENTITY_UNPROCESSABLE` (422),
//!   `RATE_LIMIT_EXCEEDED`, `UNEXPECTED_ERROR`.
//! * Unknown or repeated query parameters and unknown `fields[...]` names → 400.
//! * Cursors encode a stable position; audit events are served oldest first.
//! * Activities: `SUBMITTED → PROCESSING → POST_PROCESSING` over 2 + 5 + 3 Apple
//!   seconds, then `COMPLETED_WITH_SUCCESS | _FAILURE (some rows failed) | _ERROR (all)`;
//!   effects visible 30 Apple seconds after completion; at most 1000 devices (422 above);
//!   unknown server → 409; deadline outside (now, now + 90 days] → 409.
//! * Deleting a DMS with devices → 409 (SPEC hinted 400); the Apple Configurator and
//!   built-in pseudo-servers cannot be changed (403); duplicate names → 409.
//! * Blueprints need ≥ 1 app/configuration/package and ≥ 1 device/user/group on
//!   create (422), names are 1..=255 characters and unique (409), PATCH
//!   relationships replace the set, unknown ids are dropped.
//! * Configurations: only `CUSTOM_SETTING` (other types → 409), profiles must be
//!   well-formed plists with a non-empty `PayloadContent` (422), filenames end in
//!   `.mobileconfig` (422), default platforms iOS + macOS, a configuration used by a
//!   blueprint cannot be deleted (409).
//! * An unassigned device's `assignedServer` is 404 and its linkage `data: null`;
//!   released devices are only visible on the single-device GET.
//! * Apple School Manager orgs answer 404 on Apple Business-only paths and 409 on
//!   `RELEASE_DEVICES`.

mod activities;
mod auth;
mod catalog;
mod config;
mod faults;
mod generate;
mod hooks;
mod jsonapi;
mod model;
mod plist;
mod render;
mod routes;
mod state;
mod util;

pub use config::{APPLE_AUDIENCE, Behaviour, Budget, CloseMode, FaultConfig};
pub use generate::DatasetError;
pub use model::OrgKind;
pub use plist::{PlistError, validate_profile};
pub use state::Stats;

use axum::Router;
use axum::routing::{get, post};
use model::Org;
use p256::pkcs8::EncodePrivateKey;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use state::{AuthState, FaultState, Shared};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use time::OffsetDateTime;
use tokio::net::TcpListener;

/// Errors starting a simulator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Binding or serving failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The seed dataset could not be loaded.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// A key could not be generated, encoded or parsed.
    #[error("key: {0}")]
    Key(String),
    /// The builder was given an unusable setting.
    #[error("config: {0}")]
    Config(String),
}

/// Result of the simulator's fallible library calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// API credentials registered with a simulator, as Apple Business hands them out.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// `BUSINESSAPI.<uuid>` (or `SCHOOLAPI.<uuid>` for a school org).
    pub client_id: String,
    /// The key id (`kid`), a UUID.
    pub key_id: String,
    /// PKCS#8 PEM of the P-256 private key (derived from the seed).
    pub private_key_pem: String,
}

/// How much memory the device store takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// Devices stored.
    pub devices: usize,
    /// `size_of` one device record, bytes.
    pub device_bytes: usize,
    /// Estimated bytes per entry of the serial index (key, value, control byte, load factor).
    pub index_entry_bytes: usize,
    /// Heap bytes of attribute overrides (seed-dataset and mutated devices).
    pub override_bytes: usize,
    /// Estimated total bytes of devices and index.
    pub total_bytes: usize,
}

impl Footprint {
    fn of(org: &Org) -> Self {
        let device_bytes = std::mem::size_of::<model::Device>();
        // hashbrown: one control byte per bucket, buckets ≥ entries / 0.875.
        let index_entry_bytes = (std::mem::size_of::<(model::Serial, u32)>() + 1) * 8 / 7 + 1;
        let override_bytes: usize = org
            .devices
            .iter()
            .filter_map(|d| d.overrides.as_ref())
            .map(|o| {
                o.iter()
                    .map(|(k, v)| k.len() + v.to_string().len() + 64)
                    .sum::<usize>()
            })
            .sum();
        let total_bytes = org.devices.capacity() * device_bytes
            + org.index.capacity() * index_entry_bytes
            + override_bytes;
        Self {
            devices: org.devices.len(),
            device_bytes,
            index_entry_bytes,
            override_bytes,
            total_bytes,
        }
    }

    /// Average bytes per device.
    pub fn bytes_per_device(&self) -> usize {
        self.total_bytes / self.devices.max(1)
    }
}

/// Generates an org without serving it and reports its device-store footprint
/// (used to check that a million devices stay well under 1 GB).
pub fn generated_footprint(seed: u64, devices: usize) -> Footprint {
    let org = generate::generate(seed, devices, default_anchor(), OrgKind::Business, true);
    Footprint::of(&org)
}

fn default_anchor() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_time(time::Time::MIDNIGHT)
}

/// Entry point: `Simulator::builder()`.
#[derive(Debug)]
pub struct Simulator;

impl Simulator {
    /// A builder with defaults: seed 0, 1 000 devices, Apple Business, no faults, time scale 1.
    pub fn builder() -> SimulatorBuilder {
        SimulatorBuilder {
            seed: 0,
            devices: 1_000,
            faults: FaultConfig::default(),
            behaviour: Behaviour::default(),
            kind: OrgKind::Business,
            builtin_mdm: true,
            dataset: None,
            anchor: None,
            keys: Vec::new(),
            audiences: Vec::new(),
            time_scale: None,
        }
    }
}

/// Configures and starts a simulator.
#[derive(Debug, Clone)]
pub struct SimulatorBuilder {
    seed: u64,
    devices: usize,
    faults: FaultConfig,
    behaviour: Behaviour,
    kind: OrgKind,
    builtin_mdm: bool,
    dataset: Option<PathBuf>,
    anchor: Option<OffsetDateTime>,
    keys: Vec<(String, String, String)>,
    audiences: Vec<String>,
    time_scale: Option<f64>,
}

impl SimulatorBuilder {
    /// Seed of the org generator, the credentials and the fault RNG.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Number of generated devices (ignored with a seed dataset).
    pub fn devices(mut self, n: usize) -> Self {
        self.devices = n;
        self
    }
    /// Initial fault configuration (changeable later via `POST /_sim/faults`).
    pub fn faults(mut self, faults: FaultConfig) -> Self {
        self.faults = faults;
        self
    }
    /// Divides every Apple-like duration; see [`Behaviour::time_scale`]. Wins over
    /// the scale inside [`SimulatorBuilder::behaviour`], whatever the call order.
    pub fn time_scale(mut self, scale: f64) -> Self {
        self.time_scale = Some(scale);
        self
    }
    /// Replaces all behaviour knobs.
    pub fn behaviour(mut self, b: Behaviour) -> Self {
        self.behaviour = b;
        self
    }
    /// Simulates an Apple School Manager org (`school.api`, `SCHOOLAPI.` client id).
    pub fn school(mut self) -> Self {
        self.kind = OrgKind::School;
        self
    }
    /// Whether built-in device management is on (apps/packages answer 403 when off).
    pub fn builtin_device_management(mut self, on: bool) -> Self {
        self.builtin_mdm = on;
        self
    }
    /// Loads the org from a seed dataset (`fixtures/seed-dataset.json` shape) instead of generating it.
    pub fn from_seed_dataset(mut self, path: impl AsRef<Path>) -> Self {
        self.dataset = Some(path.as_ref().to_path_buf());
        self
    }
    /// "Now" of the generated history; defaults to today's midnight UTC.
    pub fn anchor(mut self, t: OffsetDateTime) -> Self {
        self.anchor = Some(t);
        self
    }
    /// Registers another API key: client id, key id and an SPKI public key PEM.
    pub fn client_key(
        mut self,
        client_id: impl Into<String>,
        key_id: impl Into<String>,
        public_key_pem: impl Into<String>,
    ) -> Self {
        self.keys
            .push((client_id.into(), key_id.into(), public_key_pem.into()));
        self
    }
    /// Accepts another JWT `aud` (Apple's and the simulator's own token URLs are always accepted).
    pub fn audience(mut self, aud: impl Into<String>) -> Self {
        self.audiences.push(aud.into());
        self
    }

    /// Binds `127.0.0.1:0` and serves.
    pub async fn spawn(self) -> Result<RunningSimulator> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        self.serve(listener).await
    }

    /// Serves on a listener the caller bound.
    pub async fn serve(self, listener: TcpListener) -> Result<RunningSimulator> {
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        let anchor = self.anchor.unwrap_or_else(default_anchor);
        let mut behaviour = self.behaviour;
        if let Some(scale) = self.time_scale {
            behaviour.time_scale = scale;
        }
        if behaviour.time_scale.is_nan() || behaviour.time_scale <= 0.0 {
            return Err(Error::Config("time scale must be > 0".into()));
        }
        let (seed, devices, kind, builtin) = (self.seed, self.devices, self.kind, self.builtin_mdm);
        let org = match &self.dataset {
            Some(path) => {
                let text = tokio::fs::read_to_string(path)
                    .await
                    .map_err(DatasetError::Io)?;
                generate::load_dataset(&text, seed, anchor)?
            }
            None => tokio::task::spawn_blocking(move || {
                generate::generate(seed, devices, anchor, kind, builtin)
            })
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))?,
        };
        let credentials = make_credentials(seed, org.kind)?;
        let mut auth = AuthState {
            audiences: vec![
                APPLE_AUDIENCE.to_string(),
                format!("{base_url}/auth/oauth2/v2/token"),
                format!("{base_url}/auth/oauth2/token"),
            ],
            ..AuthState::default()
        };
        auth.audiences.extend(self.audiences);
        let key = p256::SecretKey::from_pkcs8_pem(&credentials.private_key_pem)
            .map_err(|e| Error::Key(e.to_string()))?;
        auth.keys.insert(
            (credentials.client_id.clone(), credentials.key_id.clone()),
            p256::ecdsa::VerifyingKey::from(key.public_key()),
        );
        for (c, k, pem) in &self.keys {
            auth.keys.insert(
                (c.clone(), k.clone()),
                auth::parse_public_key(pem).map_err(Error::Key)?,
            );
        }
        let shared = Arc::new(Shared {
            base_url: base_url.clone(),
            behaviour,
            org: RwLock::new(org),
            auth: Mutex::new(auth),
            faults: Mutex::new(FaultState::new(self.faults, seed)),
            stats: Mutex::new(Stats::default()),
            seed,
            id_rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed ^ 0x1D5)),
        });
        let app = router(shared.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let server = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = server.await {
                tracing::warn!(error = %e, "simulator server stopped");
            }
        });
        Ok(RunningSimulator {
            shared,
            credentials,
            addr,
            shutdown: Some(tx),
            task: Some(task),
        })
    }
}

use p256::pkcs8::DecodePrivateKey;

fn make_credentials(seed: u64, kind: OrgKind) -> Result<Credentials> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x00C0_FFEE);
    let mut uuid = || {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        uuid::Builder::from_random_bytes(b).into_uuid().to_string()
    };
    let prefix = if kind == OrgKind::School {
        "SCHOOLAPI"
    } else {
        "BUSINESSAPI"
    };
    let client_id = format!("{prefix}.{}", uuid());
    let key_id = uuid();
    let secret = p256::SecretKey::random(&mut rng);
    let pem = secret
        .to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
        .map_err(|e| Error::Key(e.to_string()))?;
    Ok(Credentials {
        client_id,
        key_id,
        private_key_pem: pem.to_string(),
    })
}

fn router(shared: Arc<Shared>) -> Router {
    async fn download(
        axum::extract::State(s): axum::extract::State<Arc<Shared>>,
        axum::extract::Path((id, _file)): axum::extract::Path<(String, String)>,
        axum::extract::RawQuery(q): axum::extract::RawQuery,
    ) -> axum::response::Response {
        activities::download(&s, &id, q.as_deref())
    }
    Router::new()
        .merge(routes::v1(shared.clone()))
        .merge(hooks::router())
        .route("/auth/oauth2/token", post(routes::token))
        .route("/auth/oauth2/v2/token", post(routes::token))
        .route("/blobstore/activity-logs/{id}/{file}", get(download))
        .fallback(routes::fallback)
        .with_state(shared)
}

/// A simulator serving on a local port. Dropping it stops the server task.
#[derive(Debug)]
pub struct RunningSimulator {
    shared: Arc<Shared>,
    credentials: Credentials,
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningSimulator {
    /// `http://127.0.0.1:PORT` — the API base (Apple's `https://api-business.apple.com`).
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }
    /// The listening address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
    /// The token endpoint (`{base}/auth/oauth2/token`; `/auth/oauth2/v2/token` works too).
    pub fn token_url(&self) -> String {
        format!("{}/auth/oauth2/token", self.shared.base_url)
    }
    /// The JWT `aud` to sign: Apple's documented value, always accepted.
    pub fn audience(&self) -> &'static str {
        APPLE_AUDIENCE
    }
    /// The generated, registered credentials.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }
    /// A snapshot of the counters (same as `GET /_sim/stats`).
    pub fn stats(&self) -> Stats {
        self.shared.stats().clone()
    }
    /// Clears the counters.
    pub fn reset_stats(&self) {
        *self.shared.stats() = Stats::default();
    }
    /// Replaces the fault configuration (same as `POST /_sim/faults`).
    pub fn set_faults(&self, faults: FaultConfig) {
        *self.shared.faults() = FaultState::new(faults, self.shared.seed);
    }
    /// Registers an extra API key (SPKI public key PEM).
    pub fn register_key(&self, client_id: &str, key_id: &str, public_key_pem: &str) -> Result<()> {
        let key = auth::parse_public_key(public_key_pem).map_err(Error::Key)?;
        self.shared
            .auth()
            .keys
            .insert((client_id.to_string(), key_id.to_string()), key);
        Ok(())
    }
    /// Accepts another JWT audience from now on.
    pub fn add_audience(&self, aud: &str) {
        self.shared.auth().audiences.push(aud.to_string());
    }
    /// Memory used by the device store.
    pub fn footprint(&self) -> Footprint {
        Footprint::of(&self.shared.org_read())
    }
    /// Stops accepting connections and waits (at most 5 s) for open ones to finish.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(std::time::Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
