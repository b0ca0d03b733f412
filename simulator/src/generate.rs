//! Deterministic organization generator and seed-dataset loader.
//!
//! The same `(seed, size, anchor)` always yields the same org: every draw comes
//! from one ChaCha8 stream, in a fixed order, and no hash-map iteration order
//! leaks into it. The anchor is "now" for the generated history; the builder
//! defaults it to today's midnight UTC so two simulators started the same day
//! are identical.
//!
//! Serial numbers are unique by construction: the device ordinal goes through a
//! keyed 40-bit Feistel permutation and is written in a 26-symbol alphabet
//! without vowels or ambiguous characters (no I, O, 0, 1), 9 symbols, behind a
//! 1-symbol (10-character serial, 2021+) or 3-symbol (12-character, older) prefix.
//! The unique tail makes a hash set unnecessary.

use crate::catalog::{self, Cellular, MODELS};
use crate::model::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use time::OffsetDateTime;

const ALPHABET: &[u8; 26] = b"CDFGHJKLMNPQRTVWXY23456789";
const DAY: i64 = 86_400;

/// Errors loading a seed dataset.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The file could not be read.
    #[error("reading seed dataset: {0}")]
    Io(#[from] std::io::Error),
    /// The file is not the expected JSON.
    #[error("parsing seed dataset: {0}")]
    Json(#[from] serde_json::Error),
    /// A value in the file is unusable.
    #[error("invalid seed dataset: {0}")]
    Invalid(String),
}

fn feistel40(key: u64, x: u64) -> u64 {
    let mut l = (x >> 20) & 0xF_FFFF;
    let mut r = x & 0xF_FFFF;
    for round in 0..4u64 {
        let f = crate::util::derive(key, r, round) & 0xF_FFFF;
        (l, r) = (r, l ^ f);
    }
    (l << 20) | r
}

/// The serial of device ordinal `n` (unique for `n < 2^40`).
pub(crate) fn serial_for(seed: u64, n: u64, long: bool) -> Serial {
    let mut v = feistel40(seed ^ 0x005E_41A1, n);
    let mut tail = [0u8; 9];
    for c in tail.iter_mut().rev() {
        *c = ALPHABET[(v % 26) as usize];
        v /= 26;
    }
    let h = crate::util::derive(seed, n, 0x5E41);
    let mut b = [0u8; 17];
    let prefix = if long { 3 } else { 1 };
    for (i, c) in b.iter_mut().take(prefix).enumerate() {
        *c = ALPHABET[((h >> (i * 5)) % 26) as usize];
    }
    b[prefix..prefix + 9].copy_from_slice(&tail);
    Serial(b)
}

fn pick_weighted(rng: &mut ChaCha8Rng, cumulative: &[u32]) -> usize {
    let total = *cumulative.last().unwrap_or(&1);
    let x = rng.gen_range(0..total);
    cumulative.partition_point(|&c| c <= x)
}

/// A moment between `min_days` and `max_days` before `now`, to the second.
fn past(rng: &mut ChaCha8Rng, now: OffsetDateTime, min_days: i64, max_days: i64) -> OffsetDateTime {
    now - time::Duration::seconds(rng.gen_range(min_days * DAY..max_days * DAY))
}

fn hex32(rng: &mut ChaCha8Rng) -> String {
    format!("{:016X}{:016X}", rng.r#gen::<u64>(), rng.r#gen::<u64>())
}

fn ts(t: OffsetDateTime) -> Value {
    json!(crate::util::iso(t))
}

fn empty_org(kind: OrgKind, seed: u64, builtin_mdm: bool) -> Org {
    Org {
        kind,
        seed,
        builtin_mdm,
        devices: Vec::new(),
        index: HashMap::new(),
        source_ids: [Vec::new(), Vec::new(), Vec::new()],
        servers: Vec::new(),
        users: Vec::new(),
        groups: Vec::new(),
        ous: Vec::new(),
        apps: Vec::new(),
        packages: Vec::new(),
        blueprints: Vec::new(),
        configurations: Vec::new(),
        activities: HashMap::new(),
        audit: Vec::new(),
        next_device_ordinal: 0,
        id_counter: 0,
        coverage_overrides: HashMap::new(),
        lock_overrides: HashMap::new(),
        mdm_overrides: HashMap::new(),
        next_due: None,
    }
}

/// Generates one device with ordinal `n` (used by the generator and by `/_sim/mutate`).
pub(crate) fn make_device(
    org: &Org,
    rng: &mut ChaCha8Rng,
    n: u64,
    anchor: OffsetDateTime,
    cumulative: &[u32],
) -> Device {
    let model_idx = pick_weighted(rng, cumulative);
    let m = &MODELS[model_idx];
    let now = anchor.unix_timestamp();
    let earliest = (OffsetDateTime::from_unix_timestamp(0)
        .unwrap_or(anchor)
        .replace_year(m.year)
        .map(|t| t.unix_timestamp()))
    .unwrap_or(now - 6 * 365 * DAY)
    .max(now - 6 * 365 * DAY);
    let latest = (now - 3 * DAY).max(earliest + 1);
    let ordered = rng.gen_range(earliest..latest);
    let added = (ordered + rng.gen_range(DAY..14 * DAY)).min(now - DAY);
    let updated = added + rng.gen_range(0..(now - added).max(1));
    let source = match rng.gen_range(0..100) {
        0..45 => 0u8,
        45..90 => 1,
        _ => 2,
    };
    let cellular = match m.cellular {
        Cellular::Always => true,
        Cellular::Sometimes => rng.gen_bool(0.35),
        Cellular::Never => false,
    };
    let capable =
        matches!(m.family, "Mac" | "iPhone" | "iPad") && m.year >= 2022 && rng.gen_bool(0.5);
    let long = m.year < 2021;
    let mut flags = 0;
    if cellular {
        flags |= F_CELLULAR;
    }
    if capable {
        flags |= F_MIGRATION_CAPABLE;
    }
    Device {
        serial: serial_for(org.seed, n, long),
        model: model_idx as u16,
        capacity: rng.gen_range(0..m.capacities.len()) as u8,
        color: rng.gen_range(0..m.colors.len()) as u8,
        source,
        source_id: rng.gen_range(0..org.source_ids[source as usize].len().max(1)) as u8,
        server: NO_SERVER,
        flags,
        migration: 0,
        order_number: rng.gen_range(1_000_000_000..4_000_000_000u32),
        ordered: ordered as u32,
        added: added as u32,
        updated: updated as u32,
        released: 0,
        migration_deadline: 0,
        overrides: None,
    }
}

/// Cumulative model weights for [`make_device`].
pub(crate) fn model_weights() -> Vec<u32> {
    MODELS
        .iter()
        .scan(0u32, |acc, m| {
            *acc += m.weight;
            Some(*acc)
        })
        .collect()
}

/// Picks a server for a fresh device: MANUALLY_ADDED go to Apple Configurator,
/// the rest are spread unevenly (Zipf-like) over MDM servers, ~12 % unassigned.
fn pick_server(
    rng: &mut ChaCha8Rng,
    source: u8,
    configurator: Option<u16>,
    mdm: &[u16],
    mdm_cum: &[u32],
) -> u16 {
    if source == 2 {
        return if rng.gen_bool(0.7) {
            configurator.unwrap_or(NO_SERVER)
        } else {
            NO_SERVER
        };
    }
    if mdm.is_empty() || rng.gen_bool(0.12) {
        return NO_SERVER;
    }
    mdm[pick_weighted(rng, mdm_cum)]
}

/// Generates an org of `devices` devices.
pub(crate) fn generate(
    seed: u64,
    devices: usize,
    anchor: OffsetDateTime,
    kind: OrgKind,
    builtin_mdm: bool,
) -> Org {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut org = empty_org(kind, seed, builtin_mdm && kind == OrgKind::Business);
    org.source_ids = [
        (0..3)
            .map(|_| rng.gen_range(1_000_000..9_999_999u32).to_string())
            .collect(),
        (0..6)
            .map(|_| rng.gen_range(10_000_000..99_999_999u32).to_string())
            .collect(),
        vec![String::new()],
    ];
    let now = anchor;

    // Device management services.
    let n_mdm = (2 + devices / 20_000).min(8);
    for i in 0..n_mdm {
        let created = past(&mut rng, now, 200, 900);
        let families: &[&str] = match i % 3 {
            0 => &["IPAD", "IPHONE", "MAC"],
            1 => &["MAC"],
            _ => &["IPHONE", "IPAD"],
        };
        org.servers.push(Some(Server {
            id: hex32(&mut rng),
            name: catalog::SERVER_NAMES[i % catalog::SERVER_NAMES.len()].to_string(),
            server_type: "MDM",
            disown: rng.gen_bool(0.3),
            default_families: families.iter().map(|s| s.to_string()).collect(),
            last_connected: now - time::Duration::seconds(rng.gen_range(60..7 * DAY)),
            last_ip: format!("203.0.113.{}", rng.gen_range(2..250)),
            created,
            updated: created + time::Duration::days(rng.gen_range(1..150)),
            device_count: 0,
        }));
    }
    let configurator = org.servers.len() as u16;
    let created = now - time::Duration::days(1000);
    org.servers.push(Some(Server {
        id: hex32(&mut rng),
        name: "Devices Added by Apple Configurator 2".into(),
        server_type: "APPLE_CONFIGURATOR",
        disown: false,
        default_families: vec![],
        last_connected: now - time::Duration::days(2),
        last_ip: "198.51.100.7".into(),
        created,
        updated: created,
        device_count: 0,
    }));
    let mut mdm: Vec<u16> = (0..n_mdm as u16).collect();
    if org.builtin_mdm {
        mdm.push(org.servers.len() as u16);
        org.servers.push(Some(Server {
            id: hex32(&mut rng),
            name: "Apple Business".into(),
            server_type: "APPLE_MDM",
            disown: false,
            default_families: vec![],
            last_connected: now - time::Duration::hours(1),
            last_ip: "17.0.0.1".into(),
            created,
            updated: created,
            device_count: 0,
        }));
    }
    let mdm_cum: Vec<u32> = mdm
        .iter()
        .enumerate()
        .scan(0u32, |acc, (i, _)| {
            *acc += 1000 / (i as u32 + 1).pow(2) + 20;
            Some(*acc)
        })
        .collect();

    // Devices.
    let cum = model_weights();
    org.devices.reserve_exact(devices);
    org.index.reserve(devices);
    for n in 0..devices as u64 {
        let mut d = make_device(&org, &mut rng, n, now, &cum);
        let server = pick_server(&mut rng, d.source, Some(configurator), &mdm, &mdm_cum);
        d.server = server;
        if server != NO_SERVER {
            if let Some(Some(s)) = org.servers.get_mut(server as usize) {
                s.device_count += 1;
            }
            if d.flags & F_MIGRATION_CAPABLE != 0 && rng.gen_ratio(1, 100) {
                d.migration = 1;
                d.migration_deadline = (now.unix_timestamp() + rng.gen_range(DAY..60 * DAY)) as u32;
            }
        }
        org.index.insert(d.serial, n as u32);
        org.devices.push(d);
    }
    org.next_device_ordinal = devices as u64;

    // Directory: OUs, users, groups.
    let n_ous = 5;
    for i in 0..n_ous {
        let created = past(&mut rng, now, 400, 1500);
        let name = if i == 0 {
            "Headquarters".to_string()
        } else {
            catalog::DEPARTMENTS[i % catalog::DEPARTMENTS.len()].to_string()
        };
        let mut a = Map::new();
        a.insert("name".into(), json!(name));
        a.insert(
            "description".into(),
            json!(format!("{name} organizational unit")),
        );
        a.insert("createdDateTime".into(), ts(created));
        a.insert(
            "updatedDateTime".into(),
            ts(created + time::Duration::days(rng.gen_range(1..300))),
        );
        org.ous.push(Simple {
            id: format!("OU{:06}", 100_000 + i * 7919 % 900_000),
            attributes: a,
            members: vec![],
        });
    }
    let n_users = (devices / 4).clamp(12, 20_000);
    for i in 0..n_users {
        let id = format!("{}", 1_200_000_000u64 + i as u64 * 37 + (seed % 31));
        let first = catalog::FIRST_NAMES[rng.gen_range(0..catalog::FIRST_NAMES.len())];
        let last = catalog::LAST_NAMES[rng.gen_range(0..catalog::LAST_NAMES.len())];
        let dept = catalog::DEPARTMENTS[rng.gen_range(0..catalog::DEPARTMENTS.len())];
        let ou = rng.gen_range(0..n_ous);
        let created = past(&mut rng, now, 30, 1500);
        let status = match rng.gen_range(0..100) {
            0..85 => "ACTIVE",
            85..90 => "NEW",
            90..95 => "DEACTIVATED",
            95..98 => "LOCKED",
            _ => "RELEASED",
        };
        let handle = format!("{}.{}{}", first.to_lowercase(), last.to_lowercase(), i);
        let mut a = Map::new();
        a.insert("firstName".into(), json!(first));
        a.insert("lastName".into(), json!(last));
        a.insert("middleName".into(), json!(""));
        a.insert("status".into(), json!(status));
        a.insert(
            "managedAppleAccount".into(),
            json!(format!("{handle}@appleid.example.com")),
        );
        a.insert("isExternalUser".into(), json!(rng.gen_ratio(1, 50)));
        let roles = if i % 50 == 0 {
            json!([{"roleName": "Administrator", "ouId": org.ous[ou].id}])
        } else {
            json!([{"roleName": "Staff", "ouId": org.ous[ou].id}])
        };
        a.insert("roleOuList".into(), roles);
        a.insert("email".into(), json!(format!("{handle}@example.com")));
        a.insert("employeeNumber".into(), json!(format!("EMP{:05}", i + 1)));
        a.insert(
            "costCenter".into(),
            json!(format!("CC{}", 100 + rng.gen_range(0..20) * 10)),
        );
        a.insert(
            "division".into(),
            json!(if dept == "Engineering" {
                "Engineering"
            } else {
                "Business"
            }),
        );
        a.insert("department".into(), json!(dept));
        a.insert("jobTitle".into(), json!(format!("{dept} Specialist")));
        a.insert(
            "startDateTime".into(),
            ts(created + time::Duration::days(5)),
        );
        a.insert("createdDateTime".into(), ts(created));
        a.insert(
            "updatedDateTime".into(),
            ts(created + time::Duration::days(rng.gen_range(5..30))),
        );
        let phone_type = ["WORK", "MOBILE", "HOME"][rng.gen_range(0..3)];
        a.insert(
            "phoneNumbers".into(),
            json!([{ "phoneNumber": format!("+1-555-{:03}-{:04}", rng.gen_range(100..999), rng.gen_range(0..9999)), "type": phone_type }]),
        );
        org.ous[ou].members.push(id.clone());
        org.users.push(User { id, attributes: a });
    }
    for i in 0..8 {
        let mut members: Vec<String> = org
            .users
            .iter()
            .filter(|_| rng.gen_ratio(1, 6))
            .map(|u| u.id.clone())
            .take(2000)
            .collect();
        if members.is_empty() {
            members.push(org.users[i % org.users.len()].id.clone());
        }
        let created = past(&mut rng, now, 100, 900);
        let mut a = Map::new();
        a.insert("ouId".into(), json!(org.ous[i % n_ous].id));
        a.insert(
            "name".into(),
            json!(format!(
                "{} Team",
                catalog::DEPARTMENTS[i % catalog::DEPARTMENTS.len()]
            )),
        );
        a.insert(
            "type".into(),
            json!(if i % 4 == 3 { "SMART" } else { "STANDARD" }),
        );
        a.insert("totalMemberCount".into(), json!(members.len()));
        a.insert("status".into(), json!("ACTIVE"));
        a.insert("createdDateTime".into(), ts(created));
        a.insert(
            "updatedDateTime".into(),
            ts(created + time::Duration::days(rng.gen_range(1..90))),
        );
        org.groups.push(Group {
            id: format!("UG{:06}", 120_000 + i * 1013),
            attributes: a,
            members,
        });
    }

    // Content: apps, packages, configurations, blueprints.
    for (id, name, bundle, os) in catalog::APPS {
        let mut a = Map::new();
        a.insert("name".into(), json!(name));
        a.insert("bundleId".into(), json!(bundle));
        a.insert(
            "websiteUrl".into(),
            json!(format!("https://www.example.com/{}", bundle)),
        );
        a.insert(
            "version".into(),
            json!(format!("{}.{}", rng.gen_range(1..30), rng.gen_range(0..10))),
        );
        a.insert("supportedOS".into(), json!(os));
        a.insert("isCustomApp".into(), json!(false));
        a.insert(
            "appStoreUrl".into(),
            json!(format!("https://apps.apple.com/app/id{id}")),
        );
        org.apps.push(Simple {
            id: (*id).into(),
            attributes: a,
            members: vec![],
        });
    }
    for (i, name) in [
        "Enterprise Software Suite",
        "VPN Client",
        "Printer Drivers",
        "Security Agent",
    ]
    .iter()
    .enumerate()
    {
        let created = past(&mut rng, now, 30, 600);
        let mut a = Map::new();
        a.insert("name".into(), json!(name));
        a.insert(
            "url".into(),
            json!(format!(
                "https://packages.example.com/pkg-{}.pkg",
                10_000 + i
            )),
        );
        a.insert(
            "hash".into(),
            json!(format!(
                "{:016x}{:016x}",
                rng.r#gen::<u64>(),
                rng.r#gen::<u64>()
            )),
        );
        a.insert("bundleIds".into(), json!([format!("com.example.pkg{i}")]));
        a.insert(
            "description".into(),
            json!(format!("{name} for managed Macs")),
        );
        a.insert(
            "version".into(),
            json!(format!(
                "{}.{}.{}",
                rng.gen_range(1..9),
                rng.gen_range(0..9),
                rng.gen_range(0..9)
            )),
        );
        a.insert("createdDateTime".into(), ts(created));
        a.insert(
            "updatedDateTime".into(),
            ts(created + time::Duration::days(rng.gen_range(1..30))),
        );
        org.packages.push(Simple {
            id: format!("pkg-{}", 10_000 + i),
            attributes: a,
            members: vec![],
        });
    }
    let configs: [(&str, &str, &[&str]); 6] = [
        (
            "CUSTOM_SETTING",
            "Wi-Fi Configuration",
            &["PLATFORM_IOS", "PLATFORM_MACOS"],
        ),
        (
            "CUSTOM_SETTING",
            "AirPlay Security Settings",
            &["PLATFORM_IOS"],
        ),
        ("AIR_DROP", "Air Drop Configuration", &["PLATFORM_IOS"]),
        ("FILE_VAULT", "FileVault", &["PLATFORM_MACOS"]),
        (
            "SOFTWARE_UPDATE",
            "Software Update Policy",
            &["PLATFORM_IOS", "PLATFORM_MACOS"],
        ),
        (
            "WIFI",
            "Guest Wi-Fi",
            &["PLATFORM_IOS", "PLATFORM_MACOS", "PLATFORM_TVOS"],
        ),
    ];
    for (i, (ty, name, platforms)) in configs.iter().enumerate() {
        let created = past(&mut rng, now, 30, 600);
        let id = format!("config-{}", 12_345 + i * 111);
        let custom = (*ty == "CUSTOM_SETTING").then(|| {
            (
                sample_profile(name),
                format!("{}.mobileconfig", name.replace(' ', "")),
            )
        });
        org.configurations.push(Some(Configuration {
            id,
            config_type: (*ty).into(),
            name: (*name).into(),
            platforms: platforms.iter().map(|s| s.to_string()).collect(),
            custom,
            created,
            updated: created + time::Duration::days(rng.gen_range(1..30)),
        }));
    }
    for (i, name) in [
        "Engineering Onboarding",
        "Retail Kiosks",
        "Executive Devices",
    ]
    .iter()
    .enumerate()
    {
        let created = past(&mut rng, now, 30, 400);
        let devices_sample: Vec<String> = (0..devices.min(25))
            .map(|_| {
                org.devices[rng.gen_range(0..devices)]
                    .serial
                    .as_str()
                    .to_string()
            })
            .collect();
        let mut dedup = devices_sample;
        dedup.sort();
        dedup.dedup();
        org.blueprints.push(Some(Blueprint {
            id: format!("blueprint-{}", 12_345 + i * 1000),
            name: (*name).into(),
            description: format!("{name} apps and settings"),
            created,
            updated: created + time::Duration::days(rng.gen_range(1..30)),
            members: [
                org.apps
                    .iter()
                    .skip(i)
                    .step_by(2)
                    .map(|a| a.id.clone())
                    .collect(),
                vec![
                    org.configurations[i]
                        .as_ref()
                        .map(|c| c.id.clone())
                        .unwrap_or_default(),
                ],
                vec![org.packages[i].id.clone()],
                dedup,
                org.users
                    .iter()
                    .skip(i)
                    .step_by(7)
                    .take(20)
                    .map(|u| u.id.clone())
                    .collect(),
                vec![org.groups[i].id.clone()],
            ],
        }));
    }

    // Audit history over the past 90 days.
    let horizon = now.unix_timestamp() - 90 * DAY;
    let recent: Vec<u32> = org
        .devices
        .iter()
        .enumerate()
        .filter(|(_, d)| i64::from(d.added) >= horizon)
        .map(|(i, _)| i as u32)
        .take(5000)
        .collect();
    let system = Actor::system();
    let admin = Actor {
        actor_type: "USER",
        id: org.users[0].id.clone(),
        name: org.users[0].attributes["email"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    };
    for i in recent {
        let d = org.devices[i as usize].clone();
        let serial = d.serial.as_str().to_string();
        let at = OffsetDateTime::from_unix_timestamp(i64::from(d.added)).unwrap_or(now);
        let source_id = org.source_ids[d.source as usize]
            .get(d.source_id as usize)
            .cloned()
            .unwrap_or_default();
        org.audit_push(at, "DEVICE_ADDED_TO_ORG", "DEVICE_INVENTORY", &system, ("DEVICE", &serial, MODELS[d.model as usize].name),
            "eventDataDeviceAddedToOrg", json!({"serialNumber": serial, "purchaseSourceType": SOURCE_TYPES[d.source as usize], "purchaseSourceId": source_id}));
        if let Some(s) = org.server(d.server) {
            let name = s.name.clone();
            org.audit_push(
                at + time::Duration::hours(2),
                "DEVICE_ASSIGNED_TO_SERVER",
                "DEVICE_MANAGEMENT",
                &admin,
                ("DEVICE", &serial, &serial),
                "eventDataDeviceAssignedToServer",
                json!({"serialNumber": serial, "targetServerName": name}),
            );
        }
    }
    for i in 0..30 {
        let at = now - time::Duration::seconds(rng.gen_range(0..90 * DAY));
        let c = org.configurations[i % org.configurations.len()]
            .clone()
            .expect("generated");
        org.audit_push(at, "CONFIG_SETTINGS_UPDATED", "DEVICE_MANAGEMENT", &admin, ("DEVICE_MANAGEMENT_SETTING", &c.id, &c.name),
            "eventDataConfigSettingsUpdated", json!({"configType": c.config_type, "configId": c.id, "configVersion": (i + 2).to_string()}));
        let u = &org.users[rng.gen_range(0..org.users.len())];
        let (uid, uname) = (
            u.id.clone(),
            u.attributes["email"].as_str().unwrap_or("").to_string(),
        );
        org.audit_push(
            at,
            "ACCOUNT_ADDED",
            "ACCOUNT_ACTIVITY",
            &admin,
            ("USER", &uid, &uname),
            "eventDataAccountAdded",
            json!({}),
        );
    }
    org.audit.sort_by_key(|e| e.at);
    org
}

/// A small valid configuration profile for generated CUSTOM_SETTING configurations.
pub(crate) fn sample_profile(name: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\"><plist version=\"1.0\"><dict><key>PayloadContent</key><array><dict><key>PayloadType</key><string>com.apple.wifi.managed</string><key>SSID_STR</key><string>Corp</string></dict></array><key>PayloadDisplayName</key><string>{name}</string><key>PayloadType</key><string>Configuration</string></dict></plist>"
    )
}

fn s(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

fn t(v: &Value, k: &str) -> Option<OffsetDateTime> {
    v.get(k)
        .and_then(Value::as_str)
        .and_then(crate::util::parse_iso)
}

fn strings(v: &Value, k: &str) -> Vec<String> {
    v.get(k)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn attrs_without(v: &Value, drop: &[&str]) -> Map<String, Value> {
    v.as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| !drop.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Loads `fixtures/seed-dataset.json` (or a file of the same shape).
pub(crate) fn load_dataset(
    text: &str,
    seed: u64,
    anchor: OffsetDateTime,
) -> Result<Org, DatasetError> {
    let v: Value = serde_json::from_str(text)?;
    let kind = if v["org"]["kind"].as_str() == Some("school") {
        OrgKind::School
    } else {
        OrgKind::Business
    };
    let builtin = v["org"]["builtInDeviceManagementEnabled"]
        .as_bool()
        .unwrap_or(true);
    let mut org = empty_org(kind, seed, builtin);
    org.source_ids = [
        vec![String::new()],
        vec![String::new()],
        vec![String::new()],
    ];
    for sv in v["mdmServers"].as_array().into_iter().flatten() {
        let server_type = match sv["serverType"].as_str() {
            Some("APPLE_CONFIGURATOR") => "APPLE_CONFIGURATOR",
            Some("APPLE_MDM") => "APPLE_MDM",
            _ => "MDM",
        };
        let created = t(sv, "createdDateTime").unwrap_or(anchor);
        org.servers.push(Some(Server {
            id: s(sv, "id"),
            name: s(sv, "serverName"),
            server_type,
            disown: sv["enableMdmDisownFlag"].as_bool().unwrap_or(false),
            default_families: strings(sv, "defaultProductFamilies"),
            last_connected: t(sv, "lastConnectedDateTime").unwrap_or(created),
            last_ip: s(sv, "lastConnectedIp"),
            created,
            updated: t(sv, "updatedDateTime").unwrap_or(created),
            device_count: 0,
        }));
    }
    let dynamic = [
        "serialNumber",
        "status",
        "assignedServerId",
        "activationLock",
        "releasedFromOrgDateTime",
        "updatedDateTime",
        "mdmMigrationStatus",
        "mdmMigrationDeadlineDateTime",
        "isMdmMigrationCapable",
    ];
    for dv in v["orgDevices"].as_array().into_iter().flatten() {
        let serial_text = s(dv, "serialNumber");
        let serial = Serial::parse(&serial_text)
            .ok_or_else(|| DatasetError::Invalid(format!("serial {serial_text:?}")))?;
        let family = s(dv, "productFamily");
        let secs = |k: &str| t(dv, k).map(|x| x.unix_timestamp() as u32).unwrap_or(0);
        let server = dv["assignedServerId"]
            .as_str()
            .and_then(|id| org.server_index(id))
            .unwrap_or(NO_SERVER);
        let source = SOURCE_TYPES
            .iter()
            .position(|x| *x == s(dv, "purchaseSourceType"))
            .unwrap_or(0) as u8;
        let mut flags = 0;
        if dv["isMdmMigrationCapable"].as_bool() == Some(true) {
            flags |= F_MIGRATION_CAPABLE;
        }
        if !strings(dv, "imei").is_empty() {
            flags |= F_CELLULAR;
        }
        let migration = MIGRATION_STATUSES
            .iter()
            .position(|x| Some(*x) == dv["mdmMigrationStatus"].as_str())
            .map(|p| p as u8 + 1)
            .unwrap_or(0);
        let released = secs("releasedFromOrgDateTime");
        if released != 0 {
            flags |= F_RELEASED;
        }
        let idx = org.devices.len() as u32;
        if let Some(Some(sv)) = org.servers.get_mut(server as usize) {
            sv.device_count += 1;
        }
        org.devices.push(Device {
            serial,
            model: catalog::family_fallback(&family),
            capacity: 0,
            color: 0,
            source,
            source_id: 0,
            server,
            flags,
            migration,
            order_number: 0,
            ordered: secs("orderDateTime"),
            added: secs("addedToOrgDateTime"),
            updated: secs("updatedDateTime"),
            released,
            migration_deadline: secs("mdmMigrationDeadlineDateTime"),
            overrides: Some(Box::new(attrs_without(dv, &dynamic))),
        });
        org.index.insert(serial, idx);
        if let Some(lock) = dv.get("activationLock").filter(|l| l.is_object()) {
            org.lock_overrides.insert(idx, lock.clone());
        }
    }
    org.next_device_ordinal = org.devices.len() as u64 + 1_000_000;
    if let Some(cov) = v["appleCareCoverage"].as_object() {
        for (serial, items) in cov {
            if let Some((idx, _)) = org.device(serial) {
                org.coverage_overrides
                    .insert(idx, items.as_array().cloned().unwrap_or_default());
            }
        }
    }
    for mv in v["mdmDevices"].as_array().into_iter().flatten() {
        if let Some((idx, _)) = org.device(&s(mv, "serialNumber")) {
            org.mdm_overrides.insert(idx, mv.clone());
        }
    }
    for ov in v["organizationalUnits"].as_array().into_iter().flatten() {
        org.ous.push(Simple {
            id: s(ov, "id"),
            attributes: attrs_without(ov, &["id", "userIds"]),
            members: strings(ov, "userIds"),
        });
    }
    for uv in v["users"].as_array().into_iter().flatten() {
        org.users.push(User {
            id: s(uv, "id"),
            attributes: attrs_without(uv, &["id"]),
        });
    }
    for gv in v["userGroups"].as_array().into_iter().flatten() {
        let members = strings(gv, "userIds");
        let mut a = attrs_without(gv, &["id", "userIds"]);
        a.entry("totalMemberCount").or_insert(json!(members.len()));
        org.groups.push(Group {
            id: s(gv, "id"),
            attributes: a,
            members,
        });
    }
    for av in v["apps"].as_array().into_iter().flatten() {
        org.apps.push(Simple {
            id: s(av, "id"),
            attributes: attrs_without(av, &["id"]),
            members: vec![],
        });
    }
    for pv in v["packages"].as_array().into_iter().flatten() {
        org.packages.push(Simple {
            id: s(pv, "id"),
            attributes: attrs_without(pv, &["id"]),
            members: vec![],
        });
    }
    for cv in v["configurations"].as_array().into_iter().flatten() {
        let created = t(cv, "createdDateTime").unwrap_or(anchor);
        let custom = cv["customSettingsValues"].as_object().map(|c| {
            (
                c.get("configurationProfile")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                c.get("filename")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            )
        });
        org.configurations.push(Some(Configuration {
            id: s(cv, "id"),
            config_type: s(cv, "type"),
            name: s(cv, "name"),
            platforms: strings(cv, "configuredForPlatforms"),
            custom,
            created,
            updated: t(cv, "updatedDateTime").unwrap_or(created),
        }));
    }
    for bv in v["blueprints"].as_array().into_iter().flatten() {
        let created = t(bv, "createdDateTime").unwrap_or(anchor);
        org.blueprints.push(Some(Blueprint {
            id: s(bv, "id"),
            name: s(bv, "name"),
            description: s(bv, "description"),
            created,
            updated: t(bv, "updatedDateTime").unwrap_or(created),
            members: BLUEPRINT_RELS.map(|r| strings(bv, r)),
        }));
    }
    for av in v["orgDeviceActivities"].as_array().into_iter().flatten() {
        let created = t(av, "createdDateTime").unwrap_or(anchor);
        let server = av["mdmServerId"]
            .as_str()
            .and_then(|id| org.server_index(id));
        let results = av["results"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let serial = s(r, "serialNumber");
                let ok = r["result"].as_str() == Some("SUCCESS");
                DeviceResult {
                    index: org.device(&serial).map(|(i, _)| i),
                    serial,
                    ok,
                    detail: if ok {
                        ""
                    } else {
                        "Device not found in organization"
                    },
                }
            })
            .collect();
        let id = s(av, "id");
        org.activities.insert(
            id.clone(),
            Activity {
                id,
                activity_type: s(av, "activityType"),
                actor: "seed".into(),
                created,
                server,
                server_name: server
                    .and_then(|i| org.server(i))
                    .map(|s| s.name.clone())
                    .unwrap_or_default(),
                deadline: None,
                results,
                applied: true,
                completes_at: t(av, "completedDateTime").unwrap_or(created),
                visible_at: t(av, "completedDateTime").unwrap_or(created),
                fixed_status: Some((
                    s(av, "status"),
                    s(av, "subStatus"),
                    t(av, "completedDateTime"),
                )),
            },
        );
    }
    Ok(org)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_unique_and_apple_like() {
        let mut seen = std::collections::HashSet::new();
        for n in 0..50_000 {
            let s = serial_for(7, n, n % 3 == 0);
            let text = s.as_str();
            assert!(text.len() == 10 || text.len() == 12, "{text}");
            assert!(text.bytes().all(|b| ALPHABET.contains(&b)), "{text}");
            assert!(seen.insert(text.to_string()), "duplicate {text}");
        }
    }

    #[test]
    fn feistel_is_a_permutation_on_a_sample() {
        let mut seen = std::collections::HashSet::new();
        for x in 0..100_000u64 {
            assert!(seen.insert(feistel40(3, x)));
        }
    }
}
