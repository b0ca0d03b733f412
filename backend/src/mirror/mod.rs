//! The device mirror: Orchard's copy of each organization's devices and device management
//! services, kept fresh by [`sync`] and read by [`search`].
//!
//! Helpdesk asks "where is serial X?" many times a day; Apple allows a few requests per
//! minute. So pages read the mirror, never Apple, and the sync spends the budget once per run.
//!
//! * A device row holds Apple's attributes as Apple sent them (wire strings for enums, so a
//!   value Apple adds tomorrow is kept, not dropped) and a hash of them: a sync compares the
//!   hash before writing, so an unchanged organization costs reads only.
//! * A device Apple stops returning is marked absent with a date (`absent_since`), never
//!   deleted: the audit trail and the "where did it go" question need it.
//! * Times are Unix seconds on both databases.

pub mod coverage;
pub mod directory;
pub mod index;
pub mod overview;
pub mod refresh;
pub mod search;
pub mod sync;

use apple::resources::mdm_servers::MdmServer;
use apple::resources::org_devices::OrgDevice;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One mirrored device, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeviceRecord {
    pub serial: String,
    pub model: Option<String>,
    pub product_family: Option<String>,
    pub product_type: Option<String>,
    pub capacity: Option<String>,
    pub part_number: Option<String>,
    pub order_number: Option<String>,
    pub color: Option<String>,
    /// `ASSIGNED` / `UNASSIGNED`, as Apple reports it.
    pub status: Option<String>,
    /// The device management service whose device list contains this serial.
    pub service_id: Option<String>,
    pub purchase_source_id: Option<String>,
    pub purchase_source_type: Option<String>,
    /// Space-separated when the device has several.
    pub imei: Option<String>,
    pub meid: Option<String>,
    pub eid: Option<String>,
    pub wifi_mac: Option<String>,
    pub bluetooth_mac: Option<String>,
    /// Space-separated when the device has several.
    pub ethernet_mac: Option<String>,
    pub migration_capable: Option<bool>,
    pub migration_status: Option<String>,
    pub added_at: Option<i64>,
    pub ordered_at: Option<i64>,
    pub apple_updated_at: Option<i64>,
    pub migration_deadline: Option<i64>,
    /// When Orchard first stored it.
    pub first_seen_at: i64,
    /// When Orchard last wrote its attributes.
    pub changed_at: i64,
    /// Since when Apple no longer returns it (released from the organization).
    pub absent_since: Option<i64>,
    /// From the coverage Apple last reported; `None` while Orchard has never asked (see
    /// [`coverage`]).
    pub applecare: Option<AppleCareState>,
}

/// Whether a device is covered, as far as Orchard asked Apple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppleCareState {
    /// An active, uncanceled item: AppleCare or Apple's Limited Warranty.
    Covered,
    /// Apple listed no active item.
    NotCovered,
}

impl AppleCareState {
    /// The spelling in the database, URLs and CSV exports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Covered => "covered",
            Self::NotCovered => "not_covered",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "covered" => Some(Self::Covered),
            "not_covered" => Some(Self::NotCovered),
            _ => None,
        }
    }
}

/// Apple's attributes of one device, ready to compare and store. The mirror row without
/// Orchard's bookkeeping (service, first seen, changed, absent).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceAttributes {
    pub serial: String,
    pub model: Option<String>,
    pub product_family: Option<String>,
    pub product_type: Option<String>,
    pub capacity: Option<String>,
    pub part_number: Option<String>,
    pub order_number: Option<String>,
    pub color: Option<String>,
    pub status: Option<String>,
    pub purchase_source_id: Option<String>,
    pub purchase_source_type: Option<String>,
    pub imei: Option<String>,
    pub meid: Option<String>,
    pub eid: Option<String>,
    pub wifi_mac: Option<String>,
    pub bluetooth_mac: Option<String>,
    pub ethernet_mac: Option<String>,
    pub migration_capable: Option<bool>,
    pub migration_status: Option<String>,
    pub added_at: Option<i64>,
    pub ordered_at: Option<i64>,
    pub apple_updated_at: Option<i64>,
    pub migration_deadline: Option<i64>,
}

fn unix(at: Option<OffsetDateTime>) -> Option<i64> {
    at.map(OffsetDateTime::unix_timestamp)
}

fn joined(values: Option<&Vec<String>>) -> Option<String> {
    values.filter(|v| !v.is_empty()).map(|v| v.join(" "))
}

impl DeviceAttributes {
    /// The mirror row a page upsert of these attributes leaves, as far as they tell: Apple's
    /// attributes, present (the upsert clears absence), changed `now`. The service, the
    /// AppleCare state and the first-seen time are the stored ones, which the upsert keeps
    /// and this cannot know (`None`, `None` and `now` here). What the sync hands the search
    /// index, which reads Apple's attributes and absence only, without reading the rows back.
    pub fn into_written(self, now: i64) -> DeviceRecord {
        DeviceRecord {
            serial: self.serial,
            model: self.model,
            product_family: self.product_family,
            product_type: self.product_type,
            capacity: self.capacity,
            part_number: self.part_number,
            order_number: self.order_number,
            color: self.color,
            status: self.status,
            service_id: None,
            purchase_source_id: self.purchase_source_id,
            purchase_source_type: self.purchase_source_type,
            imei: self.imei,
            meid: self.meid,
            eid: self.eid,
            wifi_mac: self.wifi_mac,
            bluetooth_mac: self.bluetooth_mac,
            ethernet_mac: self.ethernet_mac,
            migration_capable: self.migration_capable,
            migration_status: self.migration_status,
            added_at: self.added_at,
            ordered_at: self.ordered_at,
            apple_updated_at: self.apple_updated_at,
            migration_deadline: self.migration_deadline,
            first_seen_at: now,
            changed_at: now,
            absent_since: None,
            applecare: None,
        }
    }

    /// Takes what Apple returned for one device. The serial is the resource id.
    pub fn from_apple(device: &OrgDevice) -> Self {
        let a = &device.attributes;
        Self {
            serial: device.id.as_str().to_owned(),
            model: a.device_model.clone(),
            product_family: a.product_family.as_ref().map(|f| f.as_str().to_owned()),
            product_type: a.product_type.clone(),
            capacity: a.device_capacity.clone(),
            part_number: a.part_number.clone(),
            order_number: a.order_number.clone(),
            color: a.color.clone(),
            status: a.status.as_ref().map(|s| s.as_str().to_owned()),
            purchase_source_id: a.purchase_source().map(str::to_owned),
            purchase_source_type: a
                .purchase_source_type
                .as_ref()
                .map(|t| t.as_str().to_owned()),
            imei: joined(a.imei.as_ref()),
            meid: joined(a.meid.as_ref()),
            eid: a.eid.clone(),
            wifi_mac: a.wifi_mac_address.clone(),
            bluetooth_mac: a.bluetooth_mac_address.clone(),
            ethernet_mac: joined(a.ethernet_mac_address.as_ref()),
            migration_capable: a.is_mdm_migration_capable,
            migration_status: a
                .mdm_migration_status
                .as_ref()
                .map(|s| s.as_str().to_owned()),
            added_at: unix(a.added_to_org_date_time),
            ordered_at: unix(a.order_date_time),
            apple_updated_at: unix(a.updated_date_time),
            migration_deadline: unix(a.mdm_migration_deadline_date_time),
        }
    }

    /// A stable 63-bit hash of every attribute (fits a signed BIGINT): equal hashes mean the
    /// stored row needs no write. FNV-1a over length-prefixed fields, so `("ab", "c")` and
    /// `("a", "bc")` differ and a missing value differs from an empty one.
    pub fn content_hash(&self) -> i64 {
        let mut h = Fnv1a::default();
        let text = [
            Some(self.serial.as_str()),
            self.model.as_deref(),
            self.product_family.as_deref(),
            self.product_type.as_deref(),
            self.capacity.as_deref(),
            self.part_number.as_deref(),
            self.order_number.as_deref(),
            self.color.as_deref(),
            self.status.as_deref(),
            self.purchase_source_id.as_deref(),
            self.purchase_source_type.as_deref(),
            self.imei.as_deref(),
            self.meid.as_deref(),
            self.eid.as_deref(),
            self.wifi_mac.as_deref(),
            self.bluetooth_mac.as_deref(),
            self.ethernet_mac.as_deref(),
            self.migration_status.as_deref(),
        ];
        for field in text {
            match field {
                None => h.write_u8(0),
                Some(s) => {
                    h.write_u8(1);
                    h.write_u64(s.len() as u64);
                    h.write(s.as_bytes());
                }
            }
        }
        h.write_u8(match self.migration_capable {
            None => 0,
            Some(false) => 1,
            Some(true) => 2,
        });
        for at in [
            self.added_at,
            self.ordered_at,
            self.apple_updated_at,
            self.migration_deadline,
        ] {
            match at {
                None => h.write_u8(0),
                Some(t) => {
                    h.write_u8(1);
                    h.write_i64(t);
                }
            }
        }
        (h.finish() >> 1) as i64
    }
}

/// FNV-1a, 64 bits, over explicitly little-endian numbers: tiny, fast on short fields, and
/// the same on every platform and Rust version (unlike `DefaultHasher` or `Hasher::write_u64`,
/// which is native-endian), which matters for a hash kept in the database.
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.write(&[n]);
    }

    fn write_u64(&mut self, n: u64) {
        self.write(&n.to_le_bytes());
    }

    fn write_i64(&mut self, n: i64) {
        self.write(&n.to_le_bytes());
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A device management service (Apple's `mdmServers`), as mirrored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub id: String,
    pub name: String,
    /// `MDM`, `APPLE_CONFIGURATOR`, … as Apple sends it.
    pub server_type: Option<String>,
    /// Product families Apple assigns to it by default, space-separated.
    pub default_families: Option<String>,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
    pub absent_since: Option<i64>,
    /// Mirrored devices currently in its device list.
    pub device_count: u64,
}

/// What a sync stores of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAttributes {
    pub id: String,
    pub name: String,
    pub server_type: Option<String>,
    pub default_families: Option<String>,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
}

impl ServiceAttributes {
    pub fn from_apple(server: &MdmServer) -> Self {
        let a = &server.attributes;
        Self {
            id: server.id.as_str().to_owned(),
            name: a.server_name.clone().unwrap_or_default(),
            server_type: a.server_type.as_ref().map(|t| t.as_str().to_owned()),
            default_families: a
                .default_product_families
                .as_ref()
                .filter(|f| !f.is_empty())
                .map(|f| f.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(" ")),
            created_at: unix(a.created_date_time),
            updated_at: unix(a.updated_date_time),
        }
    }

    pub fn content_hash(&self) -> i64 {
        let mut h = Fnv1a::default();
        for field in [
            Some(self.id.as_str()),
            Some(self.name.as_str()),
            self.server_type.as_deref(),
            self.default_families.as_deref(),
        ] {
            match field {
                None => h.write_u8(0),
                Some(s) => {
                    h.write_u8(1);
                    h.write_u64(s.len() as u64);
                    h.write(s.as_bytes());
                }
            }
        }
        for at in [self.created_at, self.updated_at] {
            h.write_i64(at.unwrap_or(i64::MIN));
        }
        (h.finish() >> 1) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_content_hash_tells_field_boundaries_and_missing_values_apart() {
        let a = DeviceAttributes {
            serial: "C02AB".into(),
            model: Some("ab".into()),
            color: Some("c".into()),
            ..Default::default()
        };
        let b = DeviceAttributes {
            model: Some("a".into()),
            color: Some("bc".into()),
            ..a.clone()
        };
        let c = DeviceAttributes {
            color: Some(String::new()),
            ..DeviceAttributes {
                color: None,
                ..a.clone()
            }
        };
        let d = DeviceAttributes {
            color: None,
            ..a.clone()
        };
        assert_ne!(a.content_hash(), b.content_hash());
        assert_ne!(c.content_hash(), d.content_hash());
        assert_eq!(a.content_hash(), a.clone().content_hash());
        assert!(a.content_hash() >= 0);
    }

    #[test]
    fn the_content_hash_is_stable_across_builds_and_platforms() {
        // Stored in the database: a change of encoding would rewrite every row once. The
        // expected value was computed by an independent FNV-1a implementation of the
        // documented encoding (length-prefixed fields, little-endian numbers).
        let device = DeviceAttributes {
            serial: "C02XL0GSJGH5".into(),
            product_family: Some("Mac".into()),
            added_at: Some(1_700_000_000),
            ..Default::default()
        };
        assert_eq!(device.content_hash(), 8_999_285_891_017_131_369);
    }
}
