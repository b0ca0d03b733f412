//! Device search, on both databases: a randomized corpus and many random queries, each
//! answered by the store's SQL, by the in-memory index, and by a brute-force oracle (the
//! reference rules of `backend::mirror::search` applied to every device), which must agree.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use backend::mirror::index::DeviceIndex;
use backend::mirror::overview::Overviews;
use backend::mirror::search::{
    AppleCareFilter, AssignmentStatus, DeviceCursor, DeviceFilters, DeviceQuery, DeviceSort,
    MirrorSummary, SearchPage, ServiceFilter, page_of, sort_models,
};
use backend::mirror::{AppleCareState, DeviceRecord, ServiceRecord};
use backend::orgs::{NewOrganization, OrgId};
use backend::store::{DatabaseKind, Store};
use common::Ctx;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

both_backends!(
    search_agrees_with_the_oracle_on_a_random_corpus,
    the_index_follows_rows_the_sync_applies,
    services_and_summary_count_present_devices,
    url_filters_narrow_by_source_model_and_added_days,
    the_model_choices_are_the_models_of_present_devices,
    a_full_scan_hands_devices_over_in_serial_order,
);

const ALPHABET: &[u8] = b"CDFGHJKLMNPQRTVWXY0123456789";
const FAMILIES: [&str; 5] = ["Mac", "iPhone", "iPad", "AppleTV", "Watch"];
const MODELS: [&str; 6] = [
    "MacBook Pro (14-inch, M4, 2024)",
    "iPhone 15",
    "iPad (10th generation)",
    "Apple TV 4K",
    "Apple Watch Series 9",
    "iMac 21.5\"",
];
const COLORS: [&str; 5] = ["SILVER", "SPACE GRAY", "MIDNIGHT", "ÉTOILE", "Blue"];
const SERVICES: [&str; 3] = ["SVC-A", "SVC-B", "svc-c"];
const SOURCES: [&str; 3] = ["APPLE", "RESELLER", "MANUALLY_ADDED"];

fn pick<'a>(rng: &mut StdRng, values: &[&'a str]) -> &'a str {
    values[rng.gen_range(0..values.len())]
}

macro_rules! maybe {
    ($rng:expr, $p:expr, $v:expr $(,)?) => {
        if $rng.gen_bool($p) { Some($v) } else { None }
    };
}

fn digits(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

fn mac(rng: &mut StdRng) -> String {
    (0..6)
        .map(|_| format!("{:02X}", rng.r#gen::<u8>()))
        .collect::<Vec<_>>()
        .join(":")
}

/// A device with realistic-looking, often missing, sometimes odd attributes.
fn random_device(rng: &mut StdRng, n: usize) -> DeviceRecord {
    let len = if rng.gen_bool(0.5) { 10 } else { 12 };
    let mut serial: String = (0..len)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect();
    if n.is_multiple_of(50) {
        serial = serial.to_ascii_lowercase();
    }
    if n.is_multiple_of(97) {
        serial.push('_');
    }
    let m = rng.gen_range(0..MODELS.len());
    DeviceRecord {
        serial,
        model: maybe!(rng, 0.95, MODELS[m].into()),
        product_family: maybe!(rng, 0.95, FAMILIES[m % FAMILIES.len()].into()),
        product_type: maybe!(rng, 0.9, format!("Mac{},{}", m + 13, rng.gen_range(1..4))),
        capacity: maybe!(rng, 0.8, "256GB".into()),
        part_number: maybe!(rng, 0.9, format!("MW{}U{}/A", m, rng.gen_range(0..9))),
        order_number: maybe!(rng, 0.8, digits(rng, 10)),
        color: maybe!(rng, 0.9, pick(rng, &COLORS).into()),
        status: maybe!(rng, 0.97, pick(rng, &["ASSIGNED", "UNASSIGNED"]).into(),),
        service_id: maybe!(rng, 0.6, pick(rng, &SERVICES).into()),
        purchase_source_id: maybe!(rng, 0.8, format!("{}", rng.gen_range(100_000..100_020))),
        purchase_source_type: maybe!(rng, 0.9, pick(rng, &SOURCES).into()),
        imei: maybe!(rng, 0.3, format!("{} {}", digits(rng, 15), digits(rng, 15))),
        meid: maybe!(rng, 0.2, digits(rng, 14)),
        eid: maybe!(rng, 0.2, digits(rng, 32)),
        wifi_mac: maybe!(rng, 0.8, mac(rng)),
        bluetooth_mac: maybe!(rng, 0.8, mac(rng)),
        ethernet_mac: maybe!(rng, 0.2, mac(rng)),
        migration_capable: [None, Some(false), Some(true)][rng.gen_range(0..3)],
        migration_status: maybe!(rng, 0.1, "STARTED".into()),
        added_at: rng
            .gen_bool(0.9)
            .then(|| 1_600_000_000 + rng.gen_range(0..200) * 86_400),
        ordered_at: Some(1_590_000_000),
        apple_updated_at: None,
        migration_deadline: None,
        first_seen_at: 1_700_000_000,
        changed_at: 1_700_000_000 + rng.gen_range(0..20),
        absent_since: rng.gen_bool(0.1).then_some(1_710_000_000),
        applecare: [
            None,
            None,
            Some(AppleCareState::Covered),
            Some(AppleCareState::NotCovered),
        ][rng.gen_range(0..4)],
    }
}

fn corpus(seed: u64, size: usize) -> Vec<DeviceRecord> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut seen = std::collections::HashSet::new();
    (0..size)
        .map(|n| random_device(&mut rng, n))
        .filter(|d| seen.insert(d.serial.clone()))
        .collect()
}

/// Writes mirror rows with plain INSERTs (the sync's own writes are not under test here).
async fn insert_devices(ctx: &Ctx, org: OrgId, devices: &[DeviceRecord]) {
    macro_rules! bind_device {
        ($q:expr, $d:expr) => {
            $q.bind($d.serial.clone())
                .bind($d.model.clone())
                .bind($d.product_family.clone())
                .bind($d.product_type.clone())
                .bind($d.capacity.clone())
                .bind($d.part_number.clone())
                .bind($d.order_number.clone())
                .bind($d.color.clone())
                .bind($d.status.clone())
                .bind($d.service_id.clone())
                .bind($d.purchase_source_id.clone())
                .bind($d.purchase_source_type.clone())
                .bind($d.imei.clone())
                .bind($d.meid.clone())
                .bind($d.eid.clone())
                .bind($d.wifi_mac.clone())
                .bind($d.bluetooth_mac.clone())
                .bind($d.ethernet_mac.clone())
                .bind($d.migration_capable)
                .bind($d.migration_status.clone())
                .bind($d.added_at)
                .bind($d.ordered_at)
                .bind($d.apple_updated_at)
                .bind($d.migration_deadline)
                .bind($d.first_seen_at)
                .bind($d.changed_at)
                .bind($d.absent_since)
                .bind($d.applecare.map(|a| a.as_str()))
        };
    }
    let columns = "org_id, account_id, content_hash, serial, model, product_family, \
        product_type, capacity, part_number, order_number, color, status, service_id, \
        purchase_source_id, purchase_source_type, imei, meid, eid, wifi_mac, bluetooth_mac, \
        ethernet_mac, migration_capable, migration_status, added_at, ordered_at, \
        apple_updated_at, migration_deadline, first_seen_at, changed_at, absent_since, applecare";
    let account = uuid::Uuid::new_v4();
    match ctx.kind() {
        DatabaseKind::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&ctx.url).await.unwrap();
            let sql = format!(
                "INSERT OR REPLACE INTO mirror_devices ({columns}) VALUES ({})",
                vec!["?"; 31].join(", ")
            );
            let mut tx = pool.begin().await.unwrap();
            for d in devices {
                let q = sqlx::query(&sql)
                    .bind(org.0.to_string())
                    .bind(account.to_string())
                    .bind(0_i64);
                bind_device!(q, d).execute(&mut *tx).await.unwrap();
            }
            tx.commit().await.unwrap();
            pool.close().await;
        }
        DatabaseKind::Postgres => {
            let pool = sqlx::PgPool::connect(&ctx.url).await.unwrap();
            let marks: Vec<String> = (1..=31).map(|i| format!("${i}")).collect();
            let updates: Vec<String> = columns
                .split(", ")
                .skip(4)
                .map(|c| format!("{c} = EXCLUDED.{c}"))
                .collect();
            let sql = format!(
                "INSERT INTO mirror_devices ({columns}) VALUES ({}) \
                 ON CONFLICT (org_id, serial) DO UPDATE SET {}",
                marks.join(", "),
                updates.join(", ")
            );
            let mut tx = pool.begin().await.unwrap();
            for d in devices {
                let q = sqlx::query(&sql).bind(org.0).bind(account).bind(0_i64);
                bind_device!(q, d).execute(&mut *tx).await.unwrap();
            }
            tx.commit().await.unwrap();
            pool.close().await;
        }
    }
}

async fn new_org(store: &dyn Store) -> OrgId {
    store
        .create_organization(&NewOrganization::parse("Search Org").unwrap())
        .await
        .unwrap()
        .id
}

/// A second organization, whose devices must never show in the first one's answers.
async fn other_org(store: &dyn Store) -> OrgId {
    store
        .create_organization(&NewOrganization::parse("Other Org").unwrap())
        .await
        .unwrap()
        .id
}

fn oracle(all: &[DeviceRecord], query: &DeviceQuery) -> SearchPage {
    page_of(
        query,
        all.iter().filter(|d| query.matches(d)).cloned().collect(),
    )
}

/// A word a helpdesk might type: a piece of some device's serial or text, in any case.
fn random_word(rng: &mut StdRng, all: &[DeviceRecord]) -> String {
    let d = &all[rng.gen_range(0..all.len())];
    let source = match rng.gen_range(0..10) {
        0..=5 => d.serial.clone(),
        6 => d.model.clone().unwrap_or_default(),
        7 => d.color.clone().unwrap_or_default(),
        8 => d.wifi_mac.clone().unwrap_or_default(),
        _ => d.order_number.clone().unwrap_or_default(),
    };
    let chars: Vec<char> = source.chars().filter(|c| !c.is_whitespace()).collect();
    if chars.is_empty() {
        return "c0".into();
    }
    let len = rng.gen_range(1..=chars.len().min(8));
    let start = if rng.gen_bool(0.5) {
        0
    } else {
        rng.gen_range(0..=chars.len() - len)
    };
    let word: String = chars[start..start + len].iter().collect();
    match rng.gen_range(0..3) {
        0 => word.to_lowercase(),
        1 => word.to_uppercase(),
        _ => word,
    }
}

fn random_query(rng: &mut StdRng, all: &[DeviceRecord]) -> DeviceQuery {
    let words = [0, 1, 1, 1, 2, 3][rng.gen_range(0..6)];
    let mut text: Vec<String> = (0..words).map(|_| random_word(rng, all)).collect();
    if rng.gen_bool(0.05) {
        text.push("zzzz".into());
    }
    let mut filters = DeviceFilters {
        include_absent: rng.gen_bool(0.3),
        ..DeviceFilters::default()
    };
    if rng.gen_bool(0.2) {
        let n = rng.gen_range(1..3);
        filters.families = FAMILIES
            .choose_multiple(rng, n)
            .map(|f| f.to_string())
            .collect();
    }
    if rng.gen_bool(0.1) {
        filters.model = Some(pick(rng, &MODELS).into());
    }
    if rng.gen_bool(0.15) {
        filters.status = Some(if rng.gen_bool(0.5) {
            AssignmentStatus::Assigned
        } else {
            AssignmentStatus::Unassigned
        });
    }
    if rng.gen_bool(0.15) {
        filters.service = Some(if rng.gen_bool(0.3) {
            ServiceFilter::None
        } else {
            ServiceFilter::Id(pick(rng, &SERVICES).into())
        });
    }
    if rng.gen_bool(0.15) {
        filters.purchase_source_type = Some(pick(rng, &SOURCES).into());
    }
    if rng.gen_bool(0.15) {
        let from = 1_600_000_000 + rng.gen_range(0..150) * 86_400;
        filters.added_from = Some(from);
        filters.added_until = rng
            .gen_bool(0.7)
            .then(|| from + rng.gen_range(1..60) * 86_400);
    }
    if rng.gen_bool(0.15) {
        filters.applecare = Some(AppleCareFilter::ALL[rng.gen_range(0..3)]);
    }
    let sort = if rng.gen_bool(0.6) {
        DeviceSort::Serial
    } else {
        DeviceSort::ALL[rng.gen_range(0..DeviceSort::ALL.len())]
    };
    DeviceQuery {
        text: text.join(if rng.gen_bool(0.8) { " " } else { "  \t" }),
        filters,
        sort,
        after: None,
        limit: [1, 7, 50, 500][rng.gen_range(0..4)],
    }
}

/// The index numbers devices in the order of the scan that builds it; in serial order,
/// its scans read memory in sequence (see `DeviceSearch::for_each_device`).
async fn a_full_scan_hands_devices_over_in_serial_order(ctx: &Ctx) {
    let store = ctx.store.clone();
    let org = new_org(store.as_ref()).await;
    let all = corpus(9, 2_000);
    insert_devices(ctx, org, &all).await;
    let mut scanned = Vec::new();
    store
        .for_each_device(org, &mut |d| scanned.push(d.serial))
        .await
        .unwrap();
    let mut expected: Vec<String> = all.iter().map(|d| d.serial.clone()).collect();
    expected.sort();
    assert_ne!(
        all.iter().map(|d| d.serial.clone()).collect::<Vec<_>>(),
        expected,
        "the corpus must not be inserted in serial order already"
    );
    assert_eq!(scanned, expected);
}

async fn search_agrees_with_the_oracle_on_a_random_corpus(ctx: &Ctx) {
    let store = ctx.store.clone();
    let (org, other) = (
        new_org(store.as_ref()).await,
        other_org(store.as_ref()).await,
    );
    let all = corpus(5, 3_000);
    insert_devices(ctx, org, &all).await;
    // Another organization's devices never show up.
    insert_devices(ctx, other, &corpus(6, 200)).await;
    let index = DeviceIndex::new();
    let mut rng = StdRng::seed_from_u64(11);
    let mut paths = BTreeMap::new();
    let mut non_empty = 0;
    for round in 0..400_u32 {
        let mut query = random_query(&mut rng, &all);
        // Some queries are followed through every page, the rest checked on page one.
        let follow = round.is_multiple_of(10);
        loop {
            let expected = oracle(&all, &query);
            let sql = store.search_devices(org, &query).await.unwrap();
            assert_eq!(sql, expected, "SQL differs from the oracle for {query:?}");
            let (indexed, path) = index
                .search_with_path(store.as_ref(), org, &query)
                .await
                .unwrap();
            assert_eq!(indexed, expected, "index ({path:?}) differs for {query:?}");
            *paths.entry(format!("{path:?}")).or_insert(0) += 1;
            non_empty += usize::from(expected.total > 0);
            match (follow, expected.next) {
                (true, Some(next)) => query.after = DeviceCursor::decode(&next),
                _ => break,
            }
        }
    }
    // The corpus and queries must exercise every path and real matches, not only empty pages.
    assert!(non_empty > 200, "only {non_empty} queries matched anything");
    for path in ["Index", "IndexRows", "Sql"] {
        assert!(paths.get(path).copied().unwrap_or(0) > 10, "{paths:?}");
    }

    let d = &all[17];
    assert_eq!(
        store.device(org, &d.serial).await.unwrap().as_ref(),
        Some(d)
    );
    assert_eq!(store.device(other, &d.serial).await.unwrap(), None);
    // A serial asked twice comes back once.
    let wanted: Vec<String> = all[..5]
        .iter()
        .chain(&all[..1])
        .map(|d| d.serial.clone())
        .collect();
    let mut got = store.devices_by_serial(org, &wanted).await.unwrap();
    got.sort_by(|a, b| a.serial.cmp(&b.serial));
    let mut expected = all[..5].to_vec();
    expected.sort_by(|a, b| a.serial.cmp(&b.serial));
    assert_eq!(got, expected);
}

async fn the_index_follows_rows_the_sync_applies(ctx: &Ctx) {
    let store = ctx.store.clone();
    let org = new_org(store.as_ref()).await;
    // Upper-case serials only: the index then pages ranges without sorting them.
    let mut seen = std::collections::HashSet::new();
    let mut all: Vec<DeviceRecord> = corpus(21, 1_500)
        .into_iter()
        .map(|d| DeviceRecord {
            serial: d.serial.to_ascii_uppercase().replace('_', ""),
            ..d
        })
        .filter(|d| seen.insert(d.serial.clone()))
        .collect();
    let later = all.split_off(1_000);
    insert_devices(ctx, org, &all).await;
    let index = DeviceIndex::new();
    index.load(store.as_ref(), org).await.unwrap();
    // The sync adds devices, releases some and recolors others, then tells the index.
    let mut changed = later.clone();
    for d in all.iter_mut().step_by(7) {
        d.absent_since = d.absent_since.xor(Some(1_720_000_000));
        d.color = Some("CORAL".into());
        d.changed_at += 100;
        changed.push(d.clone());
    }
    all.extend(later);
    insert_devices(ctx, org, &changed).await;
    index.apply(org, &changed);
    let mut rng = StdRng::seed_from_u64(3);
    let mut queries: Vec<DeviceQuery> = (0..150).map(|_| random_query(&mut rng, &all)).collect();
    queries.push(DeviceQuery::text("coral"));
    queries.push(DeviceQuery::text(""));
    queries.push(DeviceQuery::text(changed[0].serial.clone()));
    for query in queries {
        let expected = oracle(&all, &query);
        let got = index.search(store.as_ref(), org, &query).await.unwrap();
        assert_eq!(got, expected, "after apply, for {query:?}");
    }
    assert!(index.memory_bytes(org).unwrap() > 0);
    assert_eq!(
        index.present_count(org),
        Some(all.iter().filter(|d| d.absent_since.is_none()).count() as u64),
        "the index counts present devices as the mirror does"
    );
    assert_eq!(
        index.present_count(org),
        Some(store.mirror_summary(org).await.unwrap().devices)
    );
}

async fn services_and_summary_count_present_devices(ctx: &Ctx) {
    let store = ctx.store.clone();
    let org = new_org(store.as_ref()).await;
    assert_eq!(
        store.mirror_summary(org).await.unwrap(),
        MirrorSummary::default()
    );
    let all = corpus(8, 500);
    insert_devices(ctx, org, &all).await;
    let account = uuid::Uuid::new_v4();
    for (i, id) in SERVICES.iter().enumerate() {
        let org_id = match ctx.kind() {
            DatabaseKind::Sqlite => format!("'{}'", org.0),
            DatabaseKind::Postgres => format!("'{}'::uuid", org.0),
        };
        let account = match ctx.kind() {
            DatabaseKind::Sqlite => format!("'{account}'"),
            DatabaseKind::Postgres => format!("'{account}'::uuid"),
        };
        ctx.execute_raw(&format!(
            "INSERT INTO mirror_services (org_id, id, account_id, name, server_type, \
             default_families, created_at, updated_at, content_hash, absent_since) VALUES \
             ({org_id}, '{id}', {account}, 'Service {}', 'MDM', 'Mac iPad', 1, 2, 0, NULL)",
            3 - i
        ))
        .await;
    }
    let services = store.services(org).await.unwrap();
    let expected: Vec<ServiceRecord> = SERVICES
        .iter()
        .enumerate()
        .rev()
        .map(|(i, id)| ServiceRecord {
            id: (*id).into(),
            name: format!("Service {}", 3 - i),
            server_type: Some("MDM".into()),
            default_families: Some("Mac iPad".into()),
            created_at: Some(1),
            updated_at: Some(2),
            absent_since: None,
            device_count: all
                .iter()
                .filter(|d| d.absent_since.is_none() && d.service_id.as_deref() == Some(id))
                .count() as u64,
        })
        .collect();
    assert_eq!(services, expected);
    assert!(services.iter().all(|s| s.device_count > 0));
    let names = store.service_names(org).await.unwrap();
    let expected_names: Vec<(String, String)> = expected
        .iter()
        .map(|s| (s.id.clone(), s.name.clone()))
        .collect();
    assert_eq!(
        names
            .iter()
            .map(|s| (s.id.clone(), s.name.clone()))
            .collect::<Vec<_>>(),
        expected_names,
        "names in the order of the counted list"
    );
    let summary = store.mirror_summary(org).await.unwrap();
    assert_eq!(
        summary,
        MirrorSummary {
            devices: all.iter().filter(|d| d.absent_since.is_none()).count() as u64,
            absent: all.iter().filter(|d| d.absent_since.is_some()).count() as u64,
            newest_change: all.iter().map(|d| d.changed_at).max(),
        }
    );

    // The device list's overview: the names, read once and reused while young enough.
    let kept = Overviews::with_max_age(Duration::from_secs(3600));
    let first = kept.get(store.as_ref(), org).await.unwrap();
    assert_eq!(first.services, names);
    assert_eq!(first.service_name("SVC-A"), Some("Service 3"));
    assert_eq!(first.service_name("SVC-Z"), None);
    assert!(
        first.accounts.is_empty(),
        "no API account in this organization"
    );
    let org_id = match ctx.kind() {
        DatabaseKind::Sqlite => format!("'{}'", org.0),
        DatabaseKind::Postgres => format!("'{}'::uuid", org.0),
    };
    ctx.execute_raw(&format!(
        "UPDATE mirror_services SET name = 'Renamed' WHERE org_id = {org_id} AND id = 'SVC-A'"
    ))
    .await;
    let reused = kept.get(store.as_ref(), org).await.unwrap();
    assert!(std::sync::Arc::ptr_eq(&first, &reused));
    let renamed = Overviews::with_max_age(Duration::ZERO)
        .get(store.as_ref(), org)
        .await
        .unwrap();
    assert_eq!(renamed.service_name("SVC-A"), Some("Renamed"));
}

/// 2024-03-01T00:00:00Z.
const MARCH_1: i64 = 1_709_251_200;
const DAY: i64 = 86_400;

/// The serials `params` finds, asked of SQL, of the index and of the oracle, which must agree.
async fn serials_for(
    store: &dyn Store,
    index: &DeviceIndex,
    org: OrgId,
    all: &[DeviceRecord],
    params: &[(&str, &str)],
) -> Vec<String> {
    let query = DeviceQuery::from_params(params.iter().copied()).unwrap();
    let expected = oracle(all, &query);
    assert_eq!(
        store.search_devices(org, &query).await.unwrap(),
        expected,
        "SQL for {params:?}"
    );
    assert_eq!(
        index.search(store, org, &query).await.unwrap(),
        expected,
        "index for {params:?}"
    );
    expected.devices.into_iter().map(|d| d.serial).collect()
}

async fn url_filters_narrow_by_source_model_and_added_days(ctx: &Ctx) {
    let store = ctx.store.clone();
    let org = new_org(store.as_ref()).await;
    let device =
        |serial: &str, model: &str, source: Option<&str>, added_at: Option<i64>| DeviceRecord {
            serial: serial.into(),
            model: Some(model.into()),
            purchase_source_type: source.map(Into::into),
            added_at,
            first_seen_at: 1,
            changed_at: 1,
            ..DeviceRecord::default()
        };
    let all = vec![
        // The first and last second of March, and the seconds just outside it.
        device("FIRST", "iPad Air", Some("RESELLER"), Some(MARCH_1)),
        device(
            "LAST",
            "iPad mini",
            Some("RESELLER"),
            Some(MARCH_1 + 31 * DAY - 1),
        ),
        device(
            "APRIL",
            "iPad Air",
            Some("RESELLER"),
            Some(MARCH_1 + 31 * DAY),
        ),
        device("FEBRUARY", "iPad Air", Some("RESELLER"), Some(MARCH_1 - 1)),
        device(
            "BOUGHT",
            "iPad Air",
            Some("APPLE"),
            Some(MARCH_1 + 14 * DAY),
        ),
        device("BYHAND", "iPad Air", Some("MANUALLY_ADDED"), None),
        device("NOSOURCE", "iPad Air", None, Some(MARCH_1 + 2 * DAY)),
        DeviceRecord {
            absent_since: Some(MARCH_1 + 20 * DAY),
            ..device(
                "RELEASED",
                "iPad Air",
                Some("RESELLER"),
                Some(MARCH_1 + 9 * DAY),
            )
        },
    ];
    insert_devices(ctx, org, &all).await;
    let index = DeviceIndex::new();
    let store = store.as_ref();
    let march = [("added_from", "2024-03-01"), ("added_to", "2024-03-31")];

    let resellers_in_march = [&[("source", "RESELLER")][..], &march[..]].concat();
    assert_eq!(
        serials_for(store, &index, org, &all, &resellers_in_march).await,
        ["FIRST", "LAST"],
        "both days included, in UTC; released devices left out"
    );
    let with_model = [&resellers_in_march[..], &[("model", "iPad Air")][..]].concat();
    assert_eq!(
        serials_for(store, &index, org, &all, &with_model).await,
        ["FIRST"]
    );
    assert_eq!(
        serials_for(store, &index, org, &all, &[("source", "MANUALLY_ADDED")]).await,
        ["BYHAND"]
    );
    assert_eq!(
        serials_for(store, &index, org, &all, &[("source", "APPLE")]).await,
        ["BOUGHT"]
    );
    // A device without an added date fails any date filter.
    assert_eq!(
        serials_for(store, &index, org, &all, &[("added_from", "2000-01-01")]).await,
        ["APRIL", "BOUGHT", "FEBRUARY", "FIRST", "LAST", "NOSOURCE"]
    );
    assert_eq!(
        serials_for(store, &index, org, &all, &[("added_to", "2024-02-29")]).await,
        ["FEBRUARY"]
    );
    let released_too = [&resellers_in_march[..], &[("absent", "1")][..]].concat();
    assert_eq!(
        serials_for(store, &index, org, &all, &released_too).await,
        ["FIRST", "LAST", "RELEASED"]
    );
    assert_eq!(
        serials_for(store, &index, org, &all, &[("model", "iPad")]).await,
        Vec::<String>::new(),
        "the model is compared whole"
    );
}

/// The distinct models of present devices, by the rule the model list follows.
fn present_models(all: &[DeviceRecord]) -> Vec<String> {
    let mut models: Vec<String> = all
        .iter()
        .filter(|d| d.absent_since.is_none())
        .filter_map(|d| d.model.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    sort_models(&mut models);
    models
}

async fn the_model_choices_are_the_models_of_present_devices(ctx: &Ctx) {
    let store = ctx.store.clone();
    let (org, other) = (
        new_org(store.as_ref()).await,
        other_org(store.as_ref()).await,
    );
    let mut all = corpus(9, 400);
    // A model only released devices have, and devices without a model.
    all[0].model = Some("Apple Newton".into());
    all[0].absent_since = Some(1_710_000_000);
    all[1].model = None;
    all[1].absent_since = None;
    insert_devices(ctx, org, &all).await;
    let elsewhere = DeviceRecord {
        model: Some("Other Org Model".into()),
        absent_since: None,
        ..all[2].clone()
    };
    insert_devices(ctx, other, &[elsewhere]).await;

    let expected = present_models(&all);
    assert!(!expected.iter().any(|m| m == "Apple Newton"));
    assert_eq!(expected.len(), MODELS.len(), "{expected:?}");
    assert_eq!(
        expected.first().map(String::as_str),
        Some("Apple TV 4K"),
        "case-insensitive order: {expected:?}"
    );
    assert_eq!(store.device_models(org).await.unwrap(), expected, "SQL");
    let index = DeviceIndex::new();
    assert_eq!(
        index.models(store.as_ref(), org).await.unwrap(),
        expected,
        "index"
    );

    // The sync releases every iPhone 15 and adds a new model; both lists follow.
    let mut changed: Vec<DeviceRecord> = all
        .iter_mut()
        .filter(|d| d.model.as_deref() == Some("iPhone 15") && d.absent_since.is_none())
        .map(|d| {
            d.absent_since = Some(1_720_000_000);
            d.clone()
        })
        .collect();
    assert!(!changed.is_empty());
    let mut vision = corpus(10, 1).remove(0);
    vision.serial = "VISIONPRO001".into();
    vision.model = Some("Apple Vision Pro".into());
    vision.absent_since = None;
    changed.push(vision.clone());
    all.push(vision);
    insert_devices(ctx, org, &changed).await;
    index.apply(org, &changed);
    let expected = present_models(&all);
    assert!(expected.iter().any(|m| m == "Apple Vision Pro"));
    assert!(!expected.iter().any(|m| m == "iPhone 15"));
    assert_eq!(store.device_models(org).await.unwrap(), expected, "SQL");
    assert_eq!(
        index.models(store.as_ref(), org).await.unwrap(),
        expected,
        "index after apply"
    );
}
