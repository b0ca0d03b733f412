//! Paging benchmark against the simulator: `cargo bench -p apple --bench paging`.
//!
//! (a) Decoding throughput: 100k devices paged at `limit=1000` through the typed client with no
//!     budget in the way, against a baseline measured in the same run (the same pages fetched
//!     with plain `reqwest` and decoded into `serde_json::Value`). Prints devices/s and the ratio.
//! (b) Budget pacing at Apple-like limits, time-scaled: the simulator allows 20 GETs per Apple
//!     minute (a fixed window), the client's [`Budget`] is set to the same rate with a burst of 1
//!     and a 3 % safety margin (the client times a request when it leaves, the simulator when it
//!     arrives; without a margin, jitter between the two clocks can put a 21st request into a
//!     window). Prints the achieved request rate as a percentage of the allowed rate and the
//!     429s served; exits non-zero if the rate is below 95 % or any 429 was served.
//!
//! A plain `fn main` with a tokio runtime: no bench framework, so no extra dependencies.

#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apple::model::CollectionDocument;
use apple::resources::org_devices::{self, OrgDevice};
use apple::{
    AttemptEvent, Budget, BudgetConfig, Client, ClientConfig, Observer, Priority, PrivateKey, Rate,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::TryStreamExt as _;
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::DecodePrivateKey as _;
use serde_json::{Value, json};
use simulator::{Budget as SimBudget, FaultConfig, RunningSimulator, Simulator};

/// Devices of the throughput run.
const DEVICES: usize = 100_000;
/// Allowed GETs per Apple minute in the pacing run (SPEC §5's conservative guess).
const GETS_PER_MINUTE: u32 = 20;
/// Apple seconds per real second in the pacing run: a minute takes 3 s.
const TIME_SCALE: f64 = 20.0;
/// Pages fetched in the pacing run (about 15 s at the scaled rate).
const PACED_PAGES: usize = 100;
/// Share of the allowed rate the client budget is set to.
const SAFETY: f64 = 0.97;

fn client_for(sim: &RunningSimulator, budget: BudgetConfig, observer: Arc<dyn Observer>) -> Client {
    let creds = sim.credentials();
    let config =
        ClientConfig::apple_business(&creds.client_id, &creds.key_id).with_origin(sim.base_url());
    let key = PrivateKey::from_pem(&creds.private_key_pem).expect("simulator key");
    Client::builder(config, key, Arc::new(Budget::new(budget)))
        .observer(observer)
        .build()
        .expect("client")
}

fn unlimited() -> BudgetConfig {
    BudgetConfig {
        reads: Rate {
            count: 1_000_000,
            per: Duration::from_secs(1),
        },
        ..BudgetConfig::default()
    }
}

/// A bearer token for the baseline, minted with an assertion signed here (not by the client).
async fn baseline_token(sim: &RunningSimulator, http: &reqwest::Client) -> String {
    let creds = sim.credentials();
    let key = p256::ecdsa::SigningKey::from_pkcs8_pem(&creds.private_key_pem).expect("key");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "ES256", "kid": creds.key_id}).to_string());
    let claims = URL_SAFE_NO_PAD.encode(
        json!({"iss": creds.client_id, "sub": creds.client_id, "aud": sim.audience(),
               "iat": now, "exp": now + 600, "jti": "bench"})
        .to_string(),
    );
    let signature: p256::ecdsa::Signature = key.sign(format!("{header}.{claims}").as_bytes());
    let assertion = format!(
        "{header}.{claims}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    );
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", creds.client_id.as_str()),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion.as_str()),
        ("scope", "business.api"),
    ];
    let v: Value = http
        .post(sim.token_url())
        .form(&form)
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token json");
    v["access_token"].as_str().expect("access_token").to_owned()
}

/// Pages every device through the client; returns (devices, seconds).
async fn page_with_client(client: &Client) -> (usize, f64) {
    let started = Instant::now();
    let mut n = 0;
    let mut pages = std::pin::pin!(org_devices::list().limit(1000).pages(client));
    while let Some(page) = pages.try_next().await.expect("client page") {
        n += page.items.len();
    }
    (n, started.elapsed().as_secs_f64())
}

/// Pages every device with plain reqwest into `serde_json::Value`; returns (devices, seconds).
async fn page_with_reqwest(
    sim: &RunningSimulator,
    http: &reqwest::Client,
    token: &str,
) -> (usize, f64) {
    let started = Instant::now();
    let mut n = 0;
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let mut req = http
            .get(format!("{}/v1/orgDevices", sim.base_url()))
            .bearer_auth(token)
            .query(&[("limit", "1000")]);
        if let Some(c) = &cursor {
            req = req.query(&[("cursor", c)]);
        }
        let body = req.send().await.expect("send").bytes().await.expect("body");
        let v: Value = serde_json::from_slice(&body).expect("json");
        n += v["data"].as_array().expect("data").len();
        match v["meta"]["paging"]["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return (n, started.elapsed().as_secs_f64()),
        }
    }
    panic!("more than 10 000 pages");
}

/// Pages kept in memory for the decode-only comparison.
const DECODE_PAGES: usize = 20;

/// Fetches the first [`DECODE_PAGES`] pages' bodies, to time decoding without the network.
async fn fetch_bodies(
    sim: &RunningSimulator,
    http: &reqwest::Client,
    token: &str,
) -> Vec<bytes::Bytes> {
    let mut bodies = Vec::new();
    let mut cursor: Option<String> = None;
    while bodies.len() < DECODE_PAGES {
        let mut req = http
            .get(format!("{}/v1/orgDevices", sim.base_url()))
            .bearer_auth(token)
            .query(&[("limit", "1000")]);
        if let Some(c) = &cursor {
            req = req.query(&[("cursor", c)]);
        }
        let body = req.send().await.expect("send").bytes().await.expect("body");
        let v: Value = serde_json::from_slice(&body).expect("json");
        bodies.push(body);
        match v["meta"]["paging"]["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    bodies
}

/// Decodes every body `rounds` times; returns devices per second.
fn decode_rate(bodies: &[bytes::Bytes], rounds: usize, decode: impl Fn(&[u8]) -> usize) -> f64 {
    let started = Instant::now();
    let mut n = 0;
    for _ in 0..rounds {
        for b in bodies {
            n += decode(b);
        }
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// Records when each attempt finished and its status.
#[derive(Default)]
struct Timeline {
    attempts: Mutex<Vec<(Instant, apple::AttemptOutcome)>>,
}

impl Observer for Timeline {
    fn attempt(&self, event: &AttemptEvent) {
        if let Ok(mut a) = self.attempts.lock() {
            a.push((Instant::now(), event.outcome));
        }
    }
}

async fn throughput() {
    let sim = Simulator::builder()
        .seed(7)
        .devices(DEVICES)
        .spawn()
        .await
        .expect("simulator");
    let client = client_for(&sim, unlimited(), Arc::new(apple::NoopObserver));
    let http = reqwest::Client::new();
    let token = baseline_token(&sim, &http).await;
    // Warm up both paths (token, connections, simulator caches), then take the best of three.
    page_with_client(&client).await;
    page_with_reqwest(&sim, &http, &token).await;
    let (mut best_client, mut best_plain) = (f64::MAX, f64::MAX);
    for _ in 0..3 {
        let (n, secs) = page_with_client(&client).await;
        assert_eq!(n, sim.footprint().devices, "client saw every device");
        best_client = best_client.min(secs);
        let (n, secs) = page_with_reqwest(&sim, &http, &token).await;
        assert_eq!(n, sim.footprint().devices, "baseline saw every device");
        best_plain = best_plain.min(secs);
    }
    let n = sim.footprint().devices as f64;
    println!("(a) paging {DEVICES} devices at limit=1000, best of 3:");
    println!(
        "    client (typed decode):        {:>10.0} devices/s ({best_client:.3} s)",
        n / best_client
    );
    println!(
        "    reqwest + serde_json::Value:  {:>10.0} devices/s ({best_plain:.3} s)",
        n / best_plain
    );
    println!(
        "    ratio client/baseline:        {:>10.2}",
        best_plain / best_client
    );
    // Both runs above are bound by the simulator rendering pages; decoding alone, from memory:
    let bodies = fetch_bodies(&sim, &http, &token).await;
    let typed = decode_rate(&bodies, 3, |b| {
        serde_json::from_slice::<CollectionDocument<OrgDevice>>(b)
            .expect("typed decode")
            .data
            .len()
    });
    let plain = decode_rate(&bodies, 3, |b| {
        serde_json::from_slice::<Value>(b).expect("value decode")["data"]
            .as_array()
            .map_or(0, Vec::len)
    });
    println!(
        "    decode only (bodies in memory, {} pages x 3):",
        bodies.len()
    );
    println!("      client types:               {typed:>10.0} devices/s");
    println!("      serde_json::Value:          {plain:>10.0} devices/s");
    println!("      ratio client/Value:         {:>10.2}", typed / plain);
    sim.shutdown().await;
}

/// Returns whether both bars were met.
async fn pacing() -> bool {
    let sim = Simulator::builder()
        .seed(8)
        .devices(PACED_PAGES * 100)
        .time_scale(TIME_SCALE)
        .spawn()
        .await
        .expect("simulator");
    let window = Duration::from_secs_f64(60.0 / TIME_SCALE);
    let allowed_per_sec = f64::from(GETS_PER_MINUTE) / window.as_secs_f64();
    let timeline = Arc::new(Timeline::default());
    // Same rate as the simulator, burst 1, minus the safety margin.
    let budget = BudgetConfig {
        reads: Rate {
            count: 1,
            per: Duration::from_secs_f64(1.0 / (allowed_per_sec * SAFETY)),
        },
        ..BudgetConfig::default()
    };
    let client = client_for(&sim, budget, timeline.clone());
    // The token is minted before the limits start, so its latency does not skew the window.
    client.test_connection().await.expect("connection");
    sim.set_faults(FaultConfig {
        get_budget: Some(SimBudget {
            requests: GETS_PER_MINUTE,
            window_secs: 60.0,
        }),
        ..FaultConfig::default()
    });
    sim.reset_stats();
    timeline.attempts.lock().expect("lock").clear();
    let mut pages = std::pin::pin!(
        org_devices::list()
            .limit(100)
            .fields(["serialNumber"])
            .priority(Priority::Background)
            .pages(&client)
    );
    let mut n = 0;
    while let Some(page) = pages.try_next().await.expect("paced page") {
        n += page.items.len();
    }
    let attempts = timeline.attempts.lock().expect("lock").clone();
    let stats = sim.stats();
    let (first, last) = (attempts[0].0, attempts[attempts.len() - 1].0);
    let achieved = (attempts.len() - 1) as f64 / (last - first).as_secs_f64();
    let percent = 100.0 * achieved / allowed_per_sec;
    println!(
        "(b) {GETS_PER_MINUTE} GETs per Apple minute at time scale {TIME_SCALE} ({allowed_per_sec:.2}/s real), client budget at {:.0} %:",
        SAFETY * 100.0
    );
    println!(
        "    {} requests, {n} devices in {:.1} s: {achieved:.2} requests/s = {percent:.1} % of the allowed rate (bar: >= 95 %)",
        attempts.len(),
        (last - first).as_secs_f64()
    );
    println!(
        "    429s served by the simulator: {} (bar: 0)",
        stats.rate_limited
    );
    sim.shutdown().await;
    percent >= 95.0 && stats.rate_limited == 0
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let ok = rt.block_on(async {
        throughput().await;
        pacing().await
    });
    if !ok {
        println!("FAILED: a pacing bar was missed");
        std::process::exit(1);
    }
}
