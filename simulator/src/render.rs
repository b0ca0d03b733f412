//! Renders stored state into Apple's resource objects. The simulator builds its
//! own JSON here from SPEC (never from the client crate's types), so a field
//! misspelled in the client cannot also be misspelled here.
//!
//! Values a device never changes (IMEI, MEID, EID, MAC addresses, AppleCare,
//! activation lock, built-in management details) are derived from
//! `(seed, device index)` on each render.

use crate::catalog::{MODELS, Model};
use crate::model::*;
use crate::util::{derive, iso, iso_secs};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

const APPLE_OUIS: [[u8; 3]; 5] = [
    [0xa4, 0xc3, 0xf0],
    [0x5c, 0x50, 0xd9],
    [0x00, 0x25, 0x00],
    [0xf0, 0x18, 0x98],
    [0x3c, 0x22, 0xfb],
];

pub(crate) fn model_of(d: &Device) -> &'static Model {
    &MODELS[d.model as usize % MODELS.len()]
}

fn ms(org: &Org, idx: u32, salt: u64) -> u16 {
    (derive(org.seed, u64::from(idx), salt) % 1000) as u16
}

fn digits(mut h: u64, n: usize) -> String {
    let mut s = String::with_capacity(n);
    for _ in 0..n {
        s.push(char::from(b'0' + (h % 10) as u8));
        h = (h / 10) ^ crate::util::mix(h);
    }
    s
}

/// A 15-digit IMEI with a valid Luhn check digit.
fn imei(h: u64) -> String {
    let body = format!("35{}", digits(h, 12));
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let x = d * 2;
                x / 10 + x % 10
            } else {
                d
            }
        })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

fn mac(h: u64, offset: u8) -> String {
    let oui = APPLE_OUIS[(h % APPLE_OUIS.len() as u64) as usize];
    let b = (h >> 8).to_be_bytes();
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        oui[0],
        oui[1],
        oui[2],
        b[5],
        b[6],
        b[7].wrapping_add(offset)
    )
}

/// The `purchaseSourceId` of a device.
pub(crate) fn source_id(org: &Org, d: &Device) -> String {
    org.source_ids[d.source as usize % 3]
        .get(d.source_id as usize)
        .cloned()
        .unwrap_or_default()
}

/// OrgDevice attributes. `single` fills `releasedFromOrgDateTime` (Apple only
/// fills it on single-device GET).
pub(crate) fn device_attributes(org: &Org, idx: u32, single: bool) -> Map<String, Value> {
    let d = &org.devices[idx as usize];
    let m = model_of(d);
    let h = derive(org.seed, u64::from(idx), 1);
    let serial = d.serial.as_str();
    let cellular = d.flags & F_CELLULAR != 0;
    let color_idx = d.color as usize % m.colors.len();
    let cap_idx = d.capacity as usize % m.capacities.len();
    let mut a = Map::new();
    a.insert("serialNumber".into(), json!(serial));
    a.insert(
        "addedToOrgDateTime".into(),
        json!(iso_secs(d.added, ms(org, idx, 2))),
    );
    a.insert(
        "releasedFromOrgDateTime".into(),
        if single && d.released() {
            json!(iso_secs(d.released, ms(org, idx, 3)))
        } else {
            Value::Null
        },
    );
    a.insert(
        "updatedDateTime".into(),
        json!(iso_secs(d.updated, ms(org, idx, 4))),
    );
    a.insert("deviceModel".into(), json!(m.name));
    a.insert("productFamily".into(), json!(m.family));
    a.insert("productType".into(), json!(m.product_type));
    a.insert("deviceCapacity".into(), json!(m.capacities[cap_idx]));
    let config_char = b"ABCDEFGHJKLMNPQRSTUVWXYZ"[(color_idx * 4 + cap_idx) % 24] as char;
    a.insert(
        "partNumber".into(),
        json!(format!("{}{}LL/A", m.part_prefix, config_char)),
    );
    a.insert("orderNumber".into(), json!(d.order_number.to_string()));
    a.insert("color".into(), json!(m.colors[color_idx]));
    a.insert(
        "status".into(),
        json!(if d.server == NO_SERVER {
            "UNASSIGNED"
        } else {
            "ASSIGNED"
        }),
    );
    a.insert(
        "orderDateTime".into(),
        json!(iso_secs(d.ordered - d.ordered % 86_400 + 7 * 3600, 0)),
    );
    if cellular {
        let dual = m.family == "iPhone";
        let imeis: Vec<String> = (0..if dual { 2 } else { 1 })
            .map(|i| imei(derive(org.seed, u64::from(idx), 10 + i)))
            .collect();
        a.insert("imei".into(), json!(imeis));
        a.insert(
            "meid".into(),
            json!([digits(derive(org.seed, u64::from(idx), 20), 14)]),
        );
        a.insert(
            "eid".into(),
            json!(format!(
                "890490320{}",
                digits(derive(org.seed, u64::from(idx), 21), 23)
            )),
        );
    } else {
        a.insert("imei".into(), json!([]));
        a.insert("meid".into(), json!([]));
        a.insert("eid".into(), Value::Null);
    }
    a.insert("wifiMacAddress".into(), json!(mac(h, 0)));
    a.insert("bluetoothMacAddress".into(), json!(mac(h, 1)));
    a.insert(
        "ethernetMacAddress".into(),
        if m.ethernet {
            json!([mac(h, 2)])
        } else {
            json!([])
        },
    );
    a.insert("purchaseSourceId".into(), json!(source_id(org, d)));
    a.insert(
        "purchaseSourceType".into(),
        json!(SOURCE_TYPES[d.source as usize % 3]),
    );
    a.insert(
        "isMdmMigrationCapable".into(),
        json!(d.flags & F_MIGRATION_CAPABLE != 0),
    );
    a.insert(
        "mdmMigrationStatus".into(),
        if d.migration == 0 {
            Value::Null
        } else {
            json!(MIGRATION_STATUSES[(d.migration as usize - 1) % 4])
        },
    );
    a.insert(
        "mdmMigrationDeadlineDateTime".into(),
        if d.migration_deadline == 0 {
            Value::Null
        } else {
            json!(iso_secs(d.migration_deadline, 0))
        },
    );
    if let Some(o) = &d.overrides {
        for (k, v) in o.iter() {
            a.insert(k.clone(), v.clone());
        }
    }
    a
}

pub(crate) fn device_resource(org: &Org, idx: u32, base: &str, single: bool) -> Value {
    let serial = org.devices[idx as usize].serial.as_str();
    let url = format!("{base}/v1/orgDevices/{serial}");
    json!({
        "type": "orgDevices",
        "id": serial,
        "attributes": device_attributes(org, idx, single),
        "relationships": {
            "assignedServer": { "links": { "self": format!("{url}/relationships/assignedServer"), "related": format!("{url}/assignedServer") } },
            "appleCareCoverage": { "links": { "related": format!("{url}/appleCareCoverage") } },
        },
        "links": { "self": url },
    })
}

pub(crate) fn server_resource(s: &Server, base: &str) -> Value {
    let url = format!("{base}/v1/mdmServers/{}", s.id);
    json!({
        "type": "mdmServers",
        "id": s.id,
        "attributes": {
            "serverName": s.name,
            "serverType": s.server_type,
            "enableMdmDisownFlag": s.disown,
            "defaultProductFamilies": s.default_families,
            "status": "ACTIVE",
            "deviceCount": s.device_count,
            "lastConnectedDateTime": iso(s.last_connected),
            "lastConnectedIp": s.last_ip,
            "createdDateTime": iso(s.created),
            "updatedDateTime": iso(s.updated),
        },
        "relationships": { "devices": { "links": { "self": format!("{url}/relationships/devices") } } },
        "links": { "self": url },
    })
}

/// AppleCare coverage items (resource objects) of a device.
pub(crate) fn coverage(org: &Org, idx: u32, now: OffsetDateTime) -> Vec<Value> {
    if let Some(items) = org.coverage_overrides.get(&idx) {
        return items
            .iter()
            .map(|it| {
                let mut attrs = it.as_object().cloned().unwrap_or_default();
                let id = attrs.remove("id").unwrap_or(Value::Null);
                json!({ "type": "appleCareCoverage", "id": id, "attributes": attrs })
            })
            .collect();
    }
    let d = &org.devices[idx as usize];
    let serial = d.serial.as_str();
    let h = derive(org.seed, u64::from(idx), 30);
    let start = OffsetDateTime::from_unix_timestamp(i64::from(d.ordered - d.ordered % 86_400))
        .unwrap_or(now);
    let year = time::Duration::days(365);
    let status = |end: OffsetDateTime| if end > now { "ACTIVE" } else { "INACTIVE" };
    let mut out = vec![json!({
        "type": "appleCareCoverage",
        "id": serial,
        "attributes": {
            "status": status(start + year), "paymentType": "NONE", "description": "Limited Warranty",
            "agreementNumber": null, "startDateTime": iso(start), "endDateTime": iso(start + year),
            "isRenewable": false, "isCanceled": false, "contractCancelDateTime": null,
        },
    })];
    if h % 100 < 35 {
        let agreement = format!("{:010}", h % 10_000_000_000);
        let (payment, end, renewable) = if h.is_multiple_of(2) {
            ("PAID_UP_FRONT", start + year * 3, false)
        } else {
            ("SUBSCRIPTION", start + year, true)
        };
        let canceled = (h >> 20).is_multiple_of(20);
        out.push(json!({
            "type": "appleCareCoverage",
            "id": agreement,
            "attributes": {
                "status": if canceled { "INACTIVE" } else { status(end) }, "paymentType": payment, "description": "AppleCare+",
                "agreementNumber": agreement, "startDateTime": iso(start), "endDateTime": iso(end),
                "isRenewable": renewable, "isCanceled": canceled,
                "contractCancelDateTime": if canceled { json!(iso(start + time::Duration::days(90))) } else { Value::Null },
            },
        }));
    } else if h % 100 < 45 {
        out.push(json!({
            "type": "appleCareCoverage",
            "id": format!("abe-{serial}"),
            "attributes": {
                "status": "ACTIVE", "paymentType": "ABE_SUBSCRIPTION", "description": "AppleCare+ for Business",
                "agreementNumber": null, "startDateTime": iso(start), "endDateTime": null,
                "isRenewable": true, "isCanceled": false, "contractCancelDateTime": null,
            },
        }));
    }
    out
}

/// Activation lock attributes of a device.
pub(crate) fn activation_lock(org: &Org, idx: u32) -> Value {
    if let Some(v) = org.lock_overrides.get(&idx) {
        return v.clone();
    }
    let d = &org.devices[idx as usize];
    let h = derive(org.seed, u64::from(idx), 40);
    let lockable = matches!(model_of(d).family, "Mac" | "iPhone" | "iPad" | "Watch");
    if lockable && h % 100 < 12 {
        json!({ "isLocked": true, "lockType": if h % 5 < 3 { "MDM" } else { "USER" } })
    } else {
        json!({ "isLocked": false, "lockType": "NONE" })
    }
}

/// Whether a device is enrolled in built-in management (listed under `mdmDevices`).
pub(crate) fn is_mdm_device(org: &Org, idx: u32) -> bool {
    let d = &org.devices[idx as usize];
    !d.released()
        && (org.mdm_overrides.contains_key(&idx)
            || org
                .server(d.server)
                .is_some_and(|s| s.server_type == "APPLE_MDM"))
}

fn enrolled_user(org: &Org, idx: u32) -> Option<&User> {
    let h = derive(org.seed, u64::from(idx), 50);
    (!org.users.is_empty() && !h.is_multiple_of(10))
        .then(|| &org.users[(h / 10) as usize % org.users.len()])
}

pub(crate) fn mdm_device(org: &Org, idx: u32, base: &str) -> Value {
    let d = &org.devices[idx as usize];
    let serial = d.serial.as_str();
    let url = format!("{base}/v1/mdmDevices/{serial}");
    let attrs = if let Some(o) = org.mdm_overrides.get(&idx) {
        json!({ "serialNumber": serial, "deviceName": o["deviceName"], "productFamily": o["productFamily"], "enrolledUserId": o["enrolledUserId"] })
    } else {
        let m = model_of(d);
        let user = enrolled_user(org, idx);
        let owner = user
            .and_then(|u| u.attributes.get("firstName"))
            .and_then(Value::as_str)
            .unwrap_or("Shared");
        json!({
            "serialNumber": serial,
            "deviceName": format!("{owner}'s {}", m.name.split(" (").next().unwrap_or(m.name)),
            "productFamily": m.family,
            "enrolledUserId": user.map(|u| u.id.clone()),
        })
    };
    json!({
        "type": "mdmDevices",
        "id": serial,
        "attributes": attrs,
        "relationships": { "details": { "links": { "related": format!("{url}/details") } } },
        "links": { "self": url },
    })
}

pub(crate) fn mdm_details(org: &Org, idx: u32, base: &str, now: OffsetDateTime) -> Value {
    let serial = org.devices[idx as usize].serial.as_str();
    let url = format!("{base}/v1/mdmDevices/{serial}/details");
    let dev = device_attributes(org, idx, false);
    let summary = mdm_device(org, idx, base);
    let h = derive(org.seed, u64::from(idx), 60);
    let mut attrs = if let Some(details) = org
        .mdm_overrides
        .get(&idx)
        .and_then(|o| o.get("details"))
        .and_then(Value::as_object)
    {
        details.clone()
    } else {
        let family = dev["productFamily"].as_str().unwrap_or("");
        let platform = match family {
            "Mac" => "macOS",
            "iPhone" => "iOS",
            "iPad" => "iPadOS",
            "AppleTV" => "tvOS",
            "Watch" => "watchOS",
            _ => "visionOS",
        };
        let cap = dev["deviceCapacity"].as_str().unwrap_or("64GB");
        let total: u64 = if let Some(tb) = cap.strip_suffix("TB") {
            tb.parse::<u64>().unwrap_or(1) * 1_000_000_000_000
        } else {
            cap.trim_end_matches("GB").parse::<u64>().unwrap_or(64) * 1_000_000_000
        };
        let mut m = Map::new();
        m.insert("deviceModel".into(), dev["deviceModel"].clone());
        m.insert("osVersion".into(), json!(format!("26.{}", h % 5)));
        m.insert("platform".into(), json!(platform));
        m.insert("imei".into(), dev["imei"].clone());
        m.insert("meid".into(), dev["meid"].clone());
        m.insert("wifiMacAddress".into(), dev["wifiMacAddress"].clone());
        m.insert(
            "bluetoothMacAddress".into(),
            dev["bluetoothMacAddress"].clone(),
        );
        m.insert(
            "ethernetMacAddress".into(),
            json!(
                dev["ethernetMacAddress"]
                    .get(0)
                    .and_then(Value::as_str)
                    .unwrap_or("")
            ),
        );
        m.insert(
            "lastCheckInDateTime".into(),
            json!(iso(now - time::Duration::seconds((h % 86_400) as i64))),
        );
        m.insert(
            "isFirewallEnabled".into(),
            json!(platform == "macOS" && !h.is_multiple_of(3)),
        );
        m.insert(
            "isFileVaultEnabled".into(),
            json!(platform == "macOS" && !h.is_multiple_of(4)),
        );
        m.insert(
            "storageFreeCapacity".into(),
            json!(total / 100 * (20 + h % 60)),
        );
        m.insert("storageTotalCapacity".into(), json!(total));
        m.insert(
            "deviceLockStatus".into(),
            json!(if h.is_multiple_of(17) {
                "LOCKED"
            } else {
                "UNLOCKED"
            }),
        );
        m.insert("deviceEraseStatus".into(), json!("NOT_ERASED"));
        m.insert(
            "lostModeStatus".into(),
            json!(if h.is_multiple_of(97) {
                "ENABLED"
            } else {
                "DISABLED"
            }),
        );
        m
    };
    attrs.insert("serialNumber".into(), json!(serial));
    attrs.insert(
        "deviceName".into(),
        summary["attributes"]["deviceName"].clone(),
    );
    let mut ordered = Map::new();
    ordered.insert("serialNumber".into(), json!(serial));
    ordered.insert(
        "deviceName".into(),
        summary["attributes"]["deviceName"].clone(),
    );
    for (k, v) in attrs {
        ordered.entry(k).or_insert(v);
    }
    json!({ "type": "mdmDeviceDetails", "id": serial, "attributes": ordered, "links": { "self": url } })
}

/// A resource with plain attributes and, optionally, a `users` relationship.
pub(crate) fn simple_resource(
    ty: &str,
    id: &str,
    attrs: &Map<String, Value>,
    base: &str,
    users_rel: bool,
) -> Value {
    let url = format!("{base}/v1/{ty}/{id}");
    let mut r = json!({ "type": ty, "id": id, "attributes": attrs, "links": { "self": url } });
    if users_rel {
        r["relationships"] =
            json!({ "users": { "links": { "self": format!("{url}/relationships/users") } } });
    }
    r
}

/// How blueprint relationship links look: GET uses `related`, POST/PATCH `include` (Apple's real inconsistency).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkStyle {
    Read,
    Write,
}

pub(crate) fn blueprint_resource(bp: &Blueprint, base: &str, style: LinkStyle) -> Value {
    let url = format!("{base}/v1/blueprints/{}", bp.id);
    let mut rels = Map::new();
    for rel in BLUEPRINT_RELS {
        let links = match style {
            LinkStyle::Read => {
                json!({ "self": format!("{url}/relationships/{rel}"), "related": format!("{url}/{rel}") })
            }
            LinkStyle::Write => {
                json!({ "self": format!("{url}/relationships/{rel}"), "include": format!("{url}?include={rel}") })
            }
        };
        rels.insert(rel.into(), json!({ "links": links }));
    }
    json!({
        "type": "blueprints",
        "id": bp.id,
        "attributes": {
            "name": bp.name,
            "description": bp.description,
            "status": "ACTIVE",
            "appLicenseDeficient": false,
            "createdDateTime": iso(bp.created),
            "updatedDateTime": iso(bp.updated),
        },
        "relationships": rels,
        "links": { "self": url },
    })
}

/// A configuration; `with_payload` is false in lists (Apple always returns null there).
pub(crate) fn configuration_resource(c: &Configuration, base: &str, with_payload: bool) -> Value {
    let custom = match (&c.custom, with_payload) {
        (Some((profile, filename)), true) => {
            json!({ "configurationProfile": profile, "filename": filename })
        }
        _ => Value::Null,
    };
    json!({
        "type": "configurations",
        "id": c.id,
        "attributes": {
            "type": c.config_type,
            "name": c.name,
            "configuredForPlatforms": c.platforms,
            "customSettingsValues": custom,
            "createdDateTime": iso(c.created),
            "updatedDateTime": iso(c.updated),
        },
        "links": { "self": format!("{base}/v1/configurations/{}", c.id) },
    })
}

pub(crate) fn audit_resource(e: &AuditEvent) -> Value {
    json!({ "type": "auditEvents", "id": e.id, "attributes": e.attributes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imei_has_fifteen_digits_and_valid_luhn() {
        for h in [1u64, 42, 987_654_321, u64::MAX] {
            let s = imei(h);
            assert_eq!(s.len(), 15);
            let sum: u32 = s
                .bytes()
                .rev()
                .enumerate()
                .map(|(i, b)| {
                    let d = u32::from(b - b'0');
                    if i % 2 == 1 {
                        (d * 2) / 10 + (d * 2) % 10
                    } else {
                        d
                    }
                })
                .sum();
            assert_eq!(sum % 10, 0, "{s}");
        }
    }
}
