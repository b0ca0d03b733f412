//! Local ingest of the device mirror: how fast pages Apple already returned become mirror
//! rows, on a first sync and on an unchanged re-sync, through the exact store calls the sync
//! engine makes (`mirror::sync::store_devices`). Apple's side (HTTP, decoding) is measured
//! by `apple/benches/paging.rs`; here the pages are built in memory. A first sync on SQLite
//! stages its pages and merges them sorted (`mirror::sync::Staging`), inside the timing.
//!
//! Baseline, measured in the same run: the naive mirror that upserts every row of every page
//! without comparing (what a sync without hashes would do).
//!
//! Bars (PRODUCT.md): ≥ 60k devices/s on a first sync, ≥ 150k/s on an unchanged re-sync with
//! 0 rows rewritten.
//!
//!   cargo bench -p backend --bench ingest
//!   ORCHARD_BENCH_DEVICES=200000   fewer devices (default 1,000,000)
//!   ORCHARD_TEST_POSTGRES_URL=...  also on PostgreSQL (make bench sets it when it answers)
#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]

/// The server binary's allocator, so allocation costs as it does in production.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::Instant;

use backend::accounts::{self, AccountKind, AccountUrls, NewApiAccount};
use backend::audit::Actor;
use backend::config::DatabaseConfig;
use backend::mirror::DeviceAttributes;
use backend::mirror::sync::{Known, PAGE_SIZE, Staging, SyncCause, SyncPhase, store_devices};
use backend::orgs::NewOrganization;
use backend::store::mirror::Checkpoint;
use backend::store::{self, Store};
use backend::vault::{MasterKey, Vault};

const FIRST_BAR: f64 = 60_000.0;
const RESYNC_BAR: f64 = 150_000.0;

fn main() {
    let devices: usize = std::env::var("ORCHARD_BENCH_DEVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let pages = generate(devices);
    println!("mirror ingest: {devices} devices in pages of {PAGE_SIZE}");
    let dir = tempfile::tempdir().expect("temporary folder");
    let sqlite = format!("sqlite://{}/bench.db", dir.path().display());
    runtime.block_on(bench("SQLite", &sqlite, &pages));
    match std::env::var("ORCHARD_TEST_POSTGRES_URL") {
        Ok(url) => runtime.block_on(async {
            let database = format!("orchard_bench_{}", uuid::Uuid::new_v4().simple());
            let admin = sqlx::PgPool::connect(&url).await.expect("PostgreSQL");
            sqlx::query(&format!("CREATE DATABASE \"{database}\""))
                .execute(&admin)
                .await
                .expect("create the bench database");
            let bench_url = backend::store::with_database(&url, &database);
            bench("PostgreSQL", &bench_url, &pages).await;
            sqlx::query(&format!("DROP DATABASE \"{database}\" WITH (FORCE)"))
                .execute(&admin)
                .await
                .expect("drop the bench database");
            admin.close().await;
        }),
        Err(_) => println!("PostgreSQL: skipped (ORCHARD_TEST_POSTGRES_URL not set)"),
    }
}

/// Devices that look like an organization's: serials of 12 characters, a handful of models
/// and families, order numbers shared by batches, IMEIs on phones.
fn generate(count: usize) -> Vec<Vec<DeviceAttributes>> {
    const MODELS: [(&str, &str, &str); 6] = [
        ("iPhone 15", "iPhone", "iPhone15,4"),
        ("iPad Air", "iPad", "iPad13,16"),
        ("MacBook Air (M2)", "Mac", "Mac14,2"),
        ("MacBook Pro 14\"", "Mac", "Mac15,6"),
        ("Apple TV 4K", "AppleTV", "AppleTV14,1"),
        ("Apple Watch Series 9", "Watch", "Watch7,1"),
    ];
    const ALPHABET: &[u8] = b"0123456789CDFGHJKLMNPQRTVWXY";
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let devices: Vec<DeviceAttributes> = (0..count)
        .map(|i| {
            let mut serial = String::with_capacity(12);
            let mut r = next();
            for _ in 0..12 {
                serial.push(ALPHABET[(r % ALPHABET.len() as u64) as usize] as char);
                r /= ALPHABET.len() as u64;
            }
            let (model, family, product_type) = MODELS[(next() % MODELS.len() as u64) as usize];
            let added = 1_600_000_000 + (next() % 150_000_000) as i64;
            DeviceAttributes {
                serial,
                model: Some(model.to_owned()),
                product_family: Some(family.to_owned()),
                product_type: Some(product_type.to_owned()),
                capacity: Some("256GB".to_owned()),
                part_number: Some(format!("M{:04}LL/A", next() % 10_000)),
                order_number: Some(format!("ORD-{}", i / 500)),
                color: Some("SILVER".to_owned()),
                status: Some(if i % 3 == 0 { "UNASSIGNED" } else { "ASSIGNED" }.to_owned()),
                purchase_source_id: Some("-2085650007946880".to_owned()),
                purchase_source_type: Some("APPLE".to_owned()),
                imei: (family == "iPhone")
                    .then(|| format!("35{:013}", next() % 10_000_000_000_000)),
                added_at: Some(added),
                ordered_at: Some(added - 86_400),
                apple_updated_at: Some(added),
                ..DeviceAttributes::default()
            }
        })
        .collect();
    devices
        .chunks(PAGE_SIZE as usize)
        .map(<[DeviceAttributes]>::to_vec)
        .collect()
}

async fn bench(label: &str, url: &str, pages: &[Vec<DeviceAttributes>]) {
    let devices: usize = pages.iter().map(Vec::len).sum();
    let orchard = Mirror::open(url, "orchard").await;
    let first = orchard.ingest(pages).await;
    let resync = orchard.ingest(pages).await;
    let naive = Mirror::open(url, "naive").await;
    let naive_first = naive.ingest_naive(pages).await;
    let naive_resync = naive.ingest_naive(pages).await;
    let rate = |secs: f64| devices as f64 / secs;
    println!("{label}:");
    println!(
        "  first sync   {:>9.0} devices/s  ({:.2} s, {} rows written)   naive upsert {:>9.0}/s   ratio {:.2}x   bar ≥ {FIRST_BAR:.0}/s: {}",
        rate(first.secs),
        first.secs,
        first.written,
        rate(naive_first),
        naive_first / first.secs,
        verdict(rate(first.secs) >= FIRST_BAR),
    );
    println!(
        "  re-sync      {:>9.0} devices/s  ({:.2} s, {} rows written)   naive upsert {:>9.0}/s   ratio {:.2}x   bar ≥ {RESYNC_BAR:.0}/s and 0 rewritten: {}",
        rate(resync.secs),
        resync.secs,
        resync.written,
        rate(naive_resync),
        naive_resync / resync.secs,
        verdict(rate(resync.secs) >= RESYNC_BAR && resync.written == 0),
    );
    orchard.store.close().await;
    naive.store.close().await;
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT MET" }
}

struct Mirror {
    store: Arc<dyn Store>,
    org: backend::orgs::OrgId,
    account: backend::accounts::ApiAccountId,
}

struct Timing {
    secs: f64,
    written: u64,
}

impl Mirror {
    /// A store with one organization and one API account of its own.
    async fn open(url: &str, name: &str) -> Self {
        let store = store::connect(&DatabaseConfig {
            url: url.to_owned(),
            max_connections: 4,
        })
        .await
        .expect("store");
        let vault = Vault::new(&MasterKey::from_hex(&"0123456789abcdef".repeat(4)).unwrap());
        let org = store
            .create_organization(&NewOrganization::parse(name).unwrap())
            .await
            .expect("organization")
            .id;
        let key = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let pem = {
            use p256::pkcs8::EncodePrivateKey as _;
            key.to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
                .unwrap()
                .to_string()
        };
        let new = NewApiAccount::parse(
            "Bench",
            &format!("BUSINESSAPI.{}", uuid::Uuid::new_v4()),
            &uuid::Uuid::new_v4().to_string(),
            &pem,
            AccountKind::Business,
            AccountUrls::apple(AccountKind::Business),
        )
        .unwrap();
        let actor = Actor {
            user_id: None,
            client_addr: None,
        };
        let account = accounts::add_account(store.as_ref(), &vault, &actor, org, new)
            .await
            .expect("account")
            .id;
        Self {
            store,
            org,
            account,
        }
    }

    /// One run's device phase, page by page, as the sync engine stores it.
    async fn ingest(&self, pages: &[Vec<DeviceAttributes>]) -> Timing {
        let run = self
            .store
            .start_sync_run(self.org, self.account, SyncCause::Manual, 0)
            .await
            .expect("run");
        let started = Instant::now();
        let known = Known::at_start(self.store.as_ref(), self.org, false)
            .await
            .expect("mirror state");
        let mut written = 0;
        let mut staging = Staging::default();
        for (i, page) in pages.iter().enumerate() {
            let checkpoint = Checkpoint {
                run: run.id,
                phase: SyncPhase::Devices,
                cursor: Some(format!("page-{}", i + 1)),
                service_index: 0,
                rate_limited: 0,
                budget_wait_ms: 0,
                now: 1,
            };
            let stored = store_devices(
                self.store.as_ref(),
                self.org,
                self.account,
                &checkpoint,
                page,
                known,
            )
            .await
            .expect("store page");
            written += stored.written.len() as u64;
            staging
                .after_page(self.store.as_ref(), self.org, &stored)
                .await
                .expect("merge staged devices");
        }
        staging
            .finish(self.store.as_ref(), self.org)
            .await
            .expect("merge staged devices");
        let secs = started.elapsed().as_secs_f64();
        self.store
            .fail_sync_run(run.id, "bench run", 2)
            .await
            .expect("close the run");
        Timing { secs, written }
    }

    /// The baseline: every row upserted on every page, no comparison.
    async fn ingest_naive(&self, pages: &[Vec<DeviceAttributes>]) -> f64 {
        let run = self
            .store
            .start_sync_run(self.org, self.account, SyncCause::Manual, 0)
            .await
            .expect("run");
        let started = Instant::now();
        for (i, page) in pages.iter().enumerate() {
            let checkpoint = Checkpoint {
                run: run.id,
                phase: SyncPhase::Devices,
                cursor: Some(format!("page-{}", i + 1)),
                service_index: 0,
                rate_limited: 0,
                budget_wait_ms: 0,
                now: 1,
            };
            let serials: Vec<&str> = page.iter().map(|d| d.serial.as_str()).collect();
            self.store
                .store_device_page(self.org, self.account, &checkpoint, &serials, page)
                .await
                .expect("store page");
        }
        let secs = started.elapsed().as_secs_f64();
        self.store
            .fail_sync_run(run.id, "bench run", 2)
            .await
            .expect("close the run");
        secs
    }
}
