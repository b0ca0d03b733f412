//! Device search at scale (`make bench`): seeds an organization of 1,000,000 devices
//! (`ORCHARD_BENCH_DEVICES` to change it) with Apple-like serials, then prints p50/p99 of
//! exact, prefix, substring and free-text searches (a page of 50 plus the total count, as the
//! device list asks) for Orchard's path (in-memory index, rows by primary key), an SQLite
//! FTS5 trigram table (finding the page and the total; the rows then come the same way),
//! and plain SQL (`instr`/`LIKE`-style scans, Orchard's fallback), with
//! the ratios and the index's memory per 100k devices. PostgreSQL runs too when
//! `ORCHARD_TEST_POSTGRES_URL` answers (without FTS5, which is SQLite's).

#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]

/// The server binary's allocator, so allocation costs as it does in production.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use backend::config::DatabaseConfig;
use backend::mirror::index::{DeviceIndex, SearchPath};
use backend::mirror::search::DeviceQuery;
use backend::orgs::{NewOrganization, OrgId};
use backend::store::{self, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The simulator's serial alphabet: no vowels, no I/O/0/1.
const ALPHABET: &[u8] = b"CDFGHJKLMNPQRTVWXY23456789";
const MODELS: [(&str, &str, &str, &[&str]); 8] = [
    (
        "Mac",
        "MacBook Pro (14-inch, M4, 2024)",
        "Mac16,1",
        &["SPACE BLACK", "SILVER"],
    ),
    (
        "Mac",
        "MacBook Air (13-inch, M3, 2024)",
        "Mac15,12",
        &["MIDNIGHT", "STARLIGHT", "SILVER"],
    ),
    (
        "iPhone",
        "iPhone 15",
        "iPhone15,4",
        &["BLACK", "BLUE", "GREEN", "PINK"],
    ),
    (
        "iPhone",
        "iPhone 15 Pro",
        "iPhone16,1",
        &["BLACK TITANIUM", "NATURAL TITANIUM"],
    ),
    (
        "iPad",
        "iPad (10th generation)",
        "iPad13,18",
        &["SILVER", "BLUE"],
    ),
    (
        "AppleTV",
        "Apple TV 4K (3rd generation)",
        "AppleTV14,1",
        &["BLACK"],
    ),
    (
        "Watch",
        "Apple Watch Series 9",
        "Watch7,3",
        &["MIDNIGHT", "PINK"],
    ),
    (
        "Mac",
        "iMac (24-inch, M3, 2023)",
        "Mac15,5",
        &["BLUE", "SILVER"],
    ),
];
const SAMPLES: usize = 1_000;
/// Searches of each kind run before the timed ones.
const WARM_UP: usize = 50;
const SCAN_SAMPLES: usize = 10;

struct Device {
    serial: String,
    model: usize,
    color: &'static str,
    part: String,
    order: String,
    imei: Option<String>,
    wifi: String,
    bt: String,
    source: String,
    added: i64,
}

fn serial(rng: &mut StdRng) -> String {
    let len = if rng.gen_bool(0.6) { 10 } else { 12 };
    (0..len)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

fn mac(rng: &mut StdRng) -> String {
    (0..6)
        .map(|_| format!("{:02X}", rng.r#gen::<u8>()))
        .collect::<Vec<_>>()
        .join(":")
}

fn digits(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

fn fleet(n: usize) -> Vec<Device> {
    let mut rng = StdRng::seed_from_u64(42);
    let mut seen = std::collections::HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let s = serial(&mut rng);
        if !seen.insert(s.clone()) {
            continue;
        }
        let model = rng.gen_range(0..MODELS.len());
        let colors = MODELS[model].3;
        out.push(Device {
            serial: s,
            model,
            color: colors[rng.gen_range(0..colors.len())],
            part: format!("M{}{}LL/A", model, rng.gen_range(100..130)),
            order: digits(&mut rng, 10),
            imei: (MODELS[model].0 == "iPhone").then(|| digits(&mut rng, 15)),
            wifi: mac(&mut rng),
            bt: mac(&mut rng),
            source: format!("{}", rng.gen_range(2_000_000..2_000_040)),
            added: 1_600_000_000 + rng.gen_range(0..1_500) * 86_400,
        });
    }
    out
}

const COLUMNS: &str = "org_id, account_id, content_hash, serial, model, product_family, \
    product_type, part_number, order_number, color, status, purchase_source_id, \
    purchase_source_type, imei, wifi_mac, bluetooth_mac, added_at, first_seen_at, changed_at";

async fn seed_sqlite(url: &str, org: OrgId, devices: &[Device]) {
    let pool = sqlx::SqlitePool::connect(url).await.expect("sqlite");
    let sql = format!(
        "INSERT INTO mirror_devices ({COLUMNS}) VALUES ({})",
        vec!["?"; 19].join(", ")
    );
    for chunk in devices.chunks(50_000) {
        let mut tx = pool.begin().await.expect("begin");
        for d in chunk {
            let (family, model, ptype, _) = MODELS[d.model];
            sqlx::query(&sql)
                .bind(org.0.to_string())
                .bind("bench")
                .bind(0_i64)
                .bind(&d.serial)
                .bind(model)
                .bind(family)
                .bind(ptype)
                .bind(&d.part)
                .bind(&d.order)
                .bind(d.color)
                .bind("ASSIGNED")
                .bind(&d.source)
                .bind("RESELLER")
                .bind(&d.imei)
                .bind(&d.wifi)
                .bind(&d.bt)
                .bind(d.added)
                .bind(d.added)
                .bind(d.added)
                .execute(&mut *tx)
                .await
                .expect("insert");
        }
        tx.commit().await.expect("commit");
    }
    // The baseline: an FTS5 trigram table over the serial and the free-text fields used.
    sqlx::query(
        "CREATE VIRTUAL TABLE bench_fts USING fts5(serial, model, color, tokenize = 'trigram')",
    )
    .execute(&pool)
    .await
    .expect("fts5 with the trigram tokenizer");
    sqlx::query(
        "INSERT INTO bench_fts (serial, model, color) SELECT serial, model, color \
         FROM mirror_devices WHERE org_id = ?",
    )
    .bind(org.0.to_string())
    .execute(&pool)
    .await
    .expect("fill fts");
    pool.close().await;
}

async fn seed_postgres(url: &str, org: OrgId, devices: &[Device]) {
    let pool = sqlx::PgPool::connect(url).await.expect("postgres");
    let sql = format!(
        "INSERT INTO mirror_devices ({COLUMNS}) SELECT $1, $2, 0, s, m, f, t, p, o, c, \
         'ASSIGNED', src, 'RESELLER', i, w, b, a, a, a FROM UNNEST($3::text[], $4::text[], \
         $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], \
         $11::text[], $12::text[], $13::text[], $14::bigint[]) \
         AS u(s, m, f, t, p, o, c, src, i, w, b, a)"
    );
    let account = uuid::Uuid::new_v4();
    for chunk in devices.chunks(20_000) {
        let col = |f: &dyn Fn(&Device) -> String| chunk.iter().map(f).collect::<Vec<_>>();
        sqlx::query(&sql)
            .bind(org.0)
            .bind(account)
            .bind(col(&|d| d.serial.clone()))
            .bind(col(&|d| MODELS[d.model].1.to_owned()))
            .bind(col(&|d| MODELS[d.model].0.to_owned()))
            .bind(col(&|d| MODELS[d.model].2.to_owned()))
            .bind(col(&|d| d.part.clone()))
            .bind(col(&|d| d.order.clone()))
            .bind(col(&|d| d.color.to_owned()))
            .bind(col(&|d| d.source.clone()))
            .bind(chunk.iter().map(|d| d.imei.clone()).collect::<Vec<_>>())
            .bind(col(&|d| d.wifi.clone()))
            .bind(col(&|d| d.bt.clone()))
            .bind(chunk.iter().map(|d| d.added).collect::<Vec<_>>())
            .execute(&pool)
            .await
            .expect("insert");
    }
    sqlx::query("ANALYZE mirror_devices")
        .execute(&pool)
        .await
        .expect("analyze");
    pool.close().await;
}

/// The searches a helpdesk types, drawn from real serials.
fn workload(devices: &[Device], n: usize) -> Vec<(&'static str, Vec<String>)> {
    let mut rng = StdRng::seed_from_u64(7);
    let mut pick = || &devices[rng.gen_range(0..devices.len())];
    let exact = (0..n).map(|_| pick().serial.clone()).collect();
    let prefix = (0..n).map(|_| pick().serial[..5].to_owned()).collect();
    let substring = (0..n).map(|_| pick().serial[3..7].to_owned()).collect();
    let free = (0..n)
        .map(|_| {
            let d = pick();
            let word = MODELS[d.model].1.split(' ').next().unwrap_or("mac");
            format!("{} {}", word.to_lowercase(), d.color.to_lowercase())
        })
        .collect();
    vec![
        ("exact", exact),
        ("prefix", prefix),
        ("substring", substring),
        ("free text", free),
    ]
}

#[derive(Clone, Copy)]
struct Figures {
    p50: Duration,
    p99: Duration,
}

fn figures(mut times: Vec<Duration>) -> Figures {
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
    Figures {
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn ms(d: Duration) -> String {
    format!("{:8.3} ms", d.as_secs_f64() * 1e3)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn fts_search(
    pool: &sqlx::SqlitePool,
    store: &dyn Store,
    org: OrgId,
    kind: &str,
    text: &str,
) -> usize {
    // Same work as the device list: the total and a page of 50 in serial order, the page's
    // rows read by primary key the way Orchard's path reads them.
    let quoted = format!("\"{text}\"");
    let (filter, args) = match kind {
        "free text" => (
            "bench_fts MATCH ?",
            vec![
                text.split_whitespace()
                    .map(|w| format!("\"{w}\""))
                    .collect::<Vec<_>>()
                    .join(" AND "),
            ],
        ),
        "exact" => (
            "serial MATCH ? AND serial = ?",
            vec![quoted, text.to_owned()],
        ),
        "prefix" => ("serial LIKE ?", vec![format!("{text}%")]),
        _ => ("serial MATCH ?", vec![quoted]),
    };
    let count_sql = format!("SELECT COUNT(*) FROM bench_fts WHERE {filter}");
    let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
    for a in &args {
        count = count.bind(a);
    }
    let total = count.fetch_one(pool).await.expect("fts count");
    let page_sql = format!("SELECT serial FROM bench_fts WHERE {filter} ORDER BY serial LIMIT 51");
    let mut page = sqlx::query_scalar::<_, String>(&page_sql);
    for a in &args {
        page = page.bind(a);
    }
    let page = page.fetch_all(pool).await.expect("fts page");
    let rows = if page.is_empty() {
        Vec::new()
    } else {
        store.devices_by_serial(org, &page).await.expect("fts rows")
    };
    total as usize + rows.len()
}

async fn run(label: &str, url: &str, devices: &[Device]) {
    let config = DatabaseConfig {
        url: url.to_owned(),
        max_connections: 4,
    };
    let store: Arc<dyn Store> = store::connect(&config).await.expect("store");
    let org = store
        .create_organization(&NewOrganization::parse("Bench Org").expect("name"))
        .await
        .expect("org")
        .id;
    let started = Instant::now();
    match store.kind() {
        store::DatabaseKind::Sqlite => seed_sqlite(url, org, devices).await,
        store::DatabaseKind::Postgres => seed_postgres(url, org, devices).await,
    }
    println!(
        "\n== {label}: {} devices seeded in {:.1} s",
        devices.len(),
        started.elapsed().as_secs_f64()
    );

    let index = DeviceIndex::new();
    let before = rss_kib();
    let started = Instant::now();
    index.load(store.as_ref(), org).await.expect("load index");
    let load = started.elapsed();
    let rss = rss_kib().saturating_sub(before) * 1024;
    let held = index.memory_bytes(org).unwrap_or(0);
    let per_100k = |bytes: usize| bytes as f64 * 100_000.0 / devices.len() as f64 / 1_048_576.0;
    // RSS is read again after a pause and a few searches, as a server's would be once it
    // serves. mimalloc gives freed memory back to the system only in part and only some
    // time after the free (as measured here, not all of it even after this pause): the
    // figure stays near the counted one because the build frees nothing large, not
    // because the allocator returns what it frees.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    for text in ["C", "CD", "CDF", "CDFG"] {
        let query = DeviceQuery::text(text);
        std::hint::black_box(
            index
                .search(store.as_ref(), org, &query)
                .await
                .expect("search"),
        );
    }
    let settled = rss_kib().saturating_sub(before) * 1024;
    println!(
        "index: built in {:.2} s; {:.2} MB per 100k devices counted, {:.2} MB per 100k by RSS \
         (bar: 8; {:.2} right after the build)",
        load.as_secs_f64(),
        per_100k(held),
        per_100k(settled as usize),
        per_100k(rss as usize)
    );

    let fts = match store.kind() {
        store::DatabaseKind::Sqlite => {
            // Without a ping per query, as Orchard's own pool.
            let options: sqlx::sqlite::SqliteConnectOptions = url.parse().expect("fts url");
            Some(
                sqlx::sqlite::SqlitePoolOptions::new()
                    .test_before_acquire(false)
                    .connect_with(options)
                    .await
                    .expect("fts pool"),
            )
        }
        store::DatabaseKind::Postgres => None,
    };
    println!(
        "{:<10} {:>24} {:>24} {:>24}   p99 ratio",
        "search", "Orchard p50 / p99", "FTS5 trigram p50 / p99", "plain SQL p50 / p99"
    );
    for (kind, texts) in workload(devices, SAMPLES) {
        // Warm-up, the same for both contenders: a few searches of this kind, not timed.
        for text in texts.iter().take(WARM_UP) {
            let query = DeviceQuery::text(text.as_str());
            std::hint::black_box(
                index
                    .search(store.as_ref(), org, &query)
                    .await
                    .expect("search"),
            );
            if let Some(pool) = &fts {
                std::hint::black_box(fts_search(pool, store.as_ref(), org, kind, text).await);
            }
        }
        // Orchard and FTS5 take turns, so both see the machine in the same state (its
        // speed drifts within minutes here), each one first every other time. They run the
        // same searches, half the list apart: neither finds the other's rows just read.
        let n = texts.len();
        let mut times = Vec::with_capacity(n);
        let mut fts_times = Vec::with_capacity(n);
        let mut sql_paths = 0;
        for i in 0..n {
            for turn in [i % 2, 1 - i % 2] {
                match (turn, &fts) {
                    (0, _) => {
                        let query = DeviceQuery::text(texts[i].as_str());
                        let t = Instant::now();
                        let (page, path) = index
                            .search_with_path(store.as_ref(), org, &query)
                            .await
                            .expect("search");
                        times.push(t.elapsed());
                        std::hint::black_box(page);
                        sql_paths += usize::from(path == SearchPath::Sql);
                    }
                    (_, Some(pool)) => {
                        let text = &texts[(i + n / 2) % n];
                        let t = Instant::now();
                        std::hint::black_box(
                            fts_search(pool, store.as_ref(), org, kind, text).await,
                        );
                        fts_times.push(t.elapsed());
                    }
                    (_, None) => {}
                }
            }
        }
        let orchard = figures(times);
        let fts_figures = fts.as_ref().map(|_| figures(fts_times));
        let mut times = Vec::new();
        for text in texts.iter().take(SCAN_SAMPLES) {
            let t = Instant::now();
            let page = store
                .search_devices(org, &DeviceQuery::text(text.as_str()))
                .await
                .expect("sql search");
            times.push(t.elapsed());
            std::hint::black_box(page);
        }
        let scan = figures(times);
        let pair = |f: Figures| format!("{} /{}", ms(f.p50), ms(f.p99));
        let ratio = |f: Figures| orchard.p99.as_secs_f64() / f.p99.as_secs_f64();
        println!(
            "{kind:<10} {:>24} {:>24} {:>24}   {} ; {:.4} of plain SQL{}",
            pair(orchard),
            fts_figures.map_or("-".into(), pair),
            pair(scan),
            fts_figures.map_or(String::new(), |f| format!("{:.3} of FTS5", ratio(f))),
            ratio(scan),
            if sql_paths > 0 {
                format!(" ({sql_paths}/{SAMPLES} fell back to SQL)")
            } else {
                String::new()
            }
        );
    }
    if let Some(pool) = fts {
        pool.close().await;
    }
    store.close().await;
}

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
    runtime.block_on(async {
        let fleet = fleet(devices);
        let dir = tempfile::tempdir().expect("temporary folder");
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        run("SQLite", &url, &fleet).await;

        if let Ok(admin) = std::env::var("ORCHARD_TEST_POSTGRES_URL") {
            let Ok(pool) = sqlx::PgPool::connect(&admin).await else {
                println!("\n== PostgreSQL at ORCHARD_TEST_POSTGRES_URL does not answer: skipped");
                return;
            };
            let name = format!("orchard_bench_{}", uuid::Uuid::new_v4().simple());
            sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                .execute(&pool)
                .await
                .expect("create bench database");
            let url = backend::store::with_database(&admin, &name);
            run("PostgreSQL", &url, &fleet).await;
            sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(&pool)
                .await
                .expect("drop bench database");
            pool.close().await;
        }
    });
}
