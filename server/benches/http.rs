//! Device search over HTTP (`make bench`): the production router (sessions, role checks,
//! the search index; SQLite, then PostgreSQL when `ORCHARD_TEST_POSTGRES_URL` is set) with
//! `ORCHARD_BENCH_HTTP_DEVICES` devices mirrored (default 1,000,000), searched by a
//! signed-in helpdesk user the way the Devices page does while someone types
//! (`GET /api/list_devices`, a page of 50 with the total and the freshness line), from
//! `CONCURRENCY` keep-alive connections for a few seconds per kind of query.
//!
//! Prints requests per second and p50/p99 latency per kind, and the same for `/healthz`
//! measured in the same run: the server's floor (routing and middleware, no session, no
//! data). The load generator shares the machine's cores with the server, so the figures are
//! what one box does serving and loading itself, a floor for the server alone. Bars
//! (issue 5): ≥ 2,000 requests/s with p99 ≤ 15 ms.

#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]

/// The server binary's allocator, so allocation costs as it does in production.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use app::api::ListDevices;
use backend::identity::Role;
use backend::mirror::DeviceAttributes;
use common::{Browser, TestApp};
use leptos::server_fn::ServerFn;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Connections sending at once.
const CONCURRENCY: usize = 16;
/// How long each kind of query is measured (after a warm-up of a quarter of it).
const RUN: Duration = Duration::from_secs(5);
/// The simulator's serial alphabet: no vowels, no I/O/0/1.
const ALPHABET: &[u8] = b"CDFGHJKLMNPQRTVWXY23456789";
const FAMILIES: [(&str, &str); 4] = [
    ("Mac", "MacBook Pro (14-inch, M4, 2024)"),
    ("iPhone", "iPhone 15"),
    ("iPad", "iPad (10th generation)"),
    ("AppleTV", "Apple TV 4K (3rd generation)"),
];

fn devices(n: usize, rng: &mut StdRng) -> Vec<DeviceAttributes> {
    (0..n)
        .map(|_| {
            let serial: String = (0..12)
                .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
                .collect();
            let (family, model) = FAMILIES[rng.gen_range(0..FAMILIES.len())];
            DeviceAttributes {
                serial,
                model: Some(model.to_owned()),
                product_family: Some(family.to_owned()),
                status: Some("UNASSIGNED".to_owned()),
                ..DeviceAttributes::default()
            }
        })
        .collect()
}

/// Latencies of one measured run.
struct Run {
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn quantile(&self, q: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let at = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[at]
    }
}

/// Sends `path(i)` from `CONCURRENCY` connections until `RUN` has passed (after a warm-up);
/// every answer must be 200.
async fn load(browser: &Browser, path: Arc<dyn Fn(usize) -> String + Send + Sync>) -> Run {
    let measure = |duration: Duration| {
        let tasks: Vec<_> = (0..CONCURRENCY)
            .map(|worker| {
                let (browser, path) = (browser.clone(), path.clone());
                tokio::spawn(async move {
                    let until = Instant::now() + duration;
                    let mut latencies = Vec::new();
                    let mut i = worker;
                    while Instant::now() < until {
                        let started = Instant::now();
                        let response = browser.get(&path(i)).await;
                        let status = response.status();
                        let body = response.bytes().await.unwrap();
                        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                        latencies.push(started.elapsed());
                        i += CONCURRENCY;
                    }
                    latencies
                })
            })
            .collect();
        async move {
            let started = Instant::now();
            let mut latencies = Vec::new();
            for task in tasks {
                latencies.extend(task.await.unwrap());
            }
            Run {
                latencies,
                elapsed: started.elapsed(),
            }
        }
    };
    measure(RUN / 4).await;
    measure(RUN).await
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(name: &str, run: &Run, floor: &Run) {
    println!(
        "{name:<28} {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms   ({:.2}× the floor's rate, p99 {:+.2} ms)",
        run.per_second(),
        ms(run.quantile(0.5)),
        ms(run.quantile(0.99)),
        run.per_second() / floor.per_second(),
        ms(run.quantile(0.99)) - ms(floor.quantile(0.99)),
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let n: usize = std::env::var("ORCHARD_BENCH_HTTP_DEVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    bench("SQLite", n, |_| {}).await;
    let Ok(admin_url) = std::env::var("ORCHARD_TEST_POSTGRES_URL") else {
        println!("PostgreSQL: skipped (ORCHARD_TEST_POSTGRES_URL not set)");
        return;
    };
    let admin = sqlx::PgPool::connect(&admin_url).await.expect("PostgreSQL");
    let database = format!("orchard_bench_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE \"{database}\""))
        .execute(&admin)
        .await
        .expect("create the bench database");
    let url = backend::store::with_database(&admin_url, &database);
    bench("PostgreSQL", n, move |c| c.database.url = url).await;
    sqlx::query(&format!("DROP DATABASE \"{database}\" WITH (FORCE)"))
        .execute(&admin)
        .await
        .expect("drop the bench database");
    admin.close().await;
}

async fn bench(label: &str, n: usize, configure: impl FnOnce(&mut backend::Config)) {
    let mut rng = StdRng::seed_from_u64(5);
    let app = TestApp::spawn_with(configure).await;
    let org = app.create_org("Bench").await;
    let devices = devices(n, &mut rng);
    let started = Instant::now();
    common::mirror(&app, org, &devices).await;
    println!(
        "\n== {label}: {n} devices mirrored in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let hank = app.user_with_role("hank", org, Some(Role::Helpdesk)).await;
    let org = org.to_string();

    // Serials to find: exact, the first 5 characters, 4 from the middle.
    let picks: Arc<Vec<String>> = Arc::new(
        (0..4096)
            .map(|_| devices[rng.gen_range(0..n)].serial.clone())
            .collect(),
    );
    let search = move |picks: Arc<Vec<String>>, cut: fn(&str) -> &str| {
        let org = org.clone();
        Arc::new(move |i: usize| {
            let q = cut(&picks[i % picks.len()]);
            format!("{}?org={org}&query=q%3D{q}", ListDevices::PATH)
        }) as Arc<dyn Fn(usize) -> String + Send + Sync>
    };
    // The first search builds the index (as the first search after a start would).
    let warm = Instant::now();
    let first = hank.get(&search(picks.clone(), |s| s)(0)).await;
    assert_eq!(first.status(), 200);
    let body = first.text().await.unwrap();
    assert!(
        body.contains(&picks[0]),
        "the search finds the serial: {body:.300}"
    );
    println!(
        "search index built by the first search in {:.1} s",
        warm.elapsed().as_secs_f64()
    );

    println!(
        "HTTP, {CONCURRENCY} connections, {} s per row, {n} devices ({label}):",
        RUN.as_secs()
    );
    let floor = load(&hank, Arc::new(|_| "/healthz".to_owned())).await;
    report("/healthz (floor)", &floor, &floor);
    let exact = load(&hank, search(picks.clone(), |s| s)).await;
    report("serial, exact", &exact, &floor);
    let prefix = load(&hank, search(picks.clone(), |s| &s[..5])).await;
    report("serial, prefix (5)", &prefix, &floor);
    let middle = load(&hank, search(picks, |s| &s[4..8])).await;
    report("serial, substring (4)", &middle, &floor);
    println!("bars: ≥ 2000 req/s and p99 ≤ 15 ms for the searches");
}
