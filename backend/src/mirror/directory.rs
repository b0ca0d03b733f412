//! The rest of the organization in the mirror: users, user groups, organizational units,
//! apps, packages, configurations and Blueprints, who belongs to which group, unit and
//! Blueprint, and Apple's audit events. Synced by the same runs as the devices, after them
//! (see [`super::sync`]), with the same rules:
//!
//! * An object is stored as Apple sent it (its `attributes` JSON, every member kept) with a
//!   hash; a run writes only objects whose hash changed, and marks the ones Apple no longer
//!   lists absent with a date, never deleting them.
//! * The end of every list is decided from the ids the run stored page by page
//!   (`sync_run_ids`), so a restart resumes at the page after the last one stored.
//! * Memberships are replaced by difference: a member Apple still lists is not rewritten.
//! * Audit events are immutable: each run asks Apple for the window since the previous run
//!   (a few minutes of overlap for events Apple records late), stores the new ones by id.
//!
//! A list Apple refuses with 403 (the account's role, or built-in device management off for
//! apps and packages, SPEC §12) is skipped and left as it was: Orchard cannot tell what is
//! gone from a list it may not read.

use std::time::Duration;

use apple::resources::audit_events::{self, AuditEvent, AuditEventData};
use apple::resources::{
    apps, blueprints, configurations, organizational_units, packages, user_groups, users,
};
use apple::{ListRequest, RawResource, ResourceIdentifier};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::Fnv1a;

/// How far back the first run of an account reads Apple's audit events, unless configured.
pub const DEFAULT_AUDIT_HISTORY: Duration = Duration::from_secs(90 * 24 * 60 * 60);
/// Each run asks again for this much before the previous run's end: Apple may record an
/// event a little after it happened. Events already stored are not written twice.
pub const AUDIT_OVERLAP_SECS: i64 = 10 * 60;

/// The lists mirrored besides devices and services, by Apple's type name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ObjectKind {
    Users,
    UserGroups,
    OrganizationalUnits,
    Apps,
    Packages,
    Configurations,
    Blueprints,
}

wire_names!(ObjectKind {
    Users = "users",
    UserGroups = "userGroups",
    OrganizationalUnits = "organizationalUnits",
    Apps = "apps",
    Packages = "packages",
    Configurations = "configurations",
    Blueprints = "blueprints",
});

impl ObjectKind {
    /// Every kind, in the order a run reads them (owners of memberships before nothing:
    /// memberships are read after all lists).
    pub const ALL: [Self; 7] = [
        Self::Users,
        Self::UserGroups,
        Self::OrganizationalUnits,
        Self::Apps,
        Self::Packages,
        Self::Configurations,
        Self::Blueprints,
    ];

    /// The kinds whose objects have members, and the member relationships of each.
    pub const OWNERS: [(Self, &'static [&'static str]); 3] = [
        (Self::UserGroups, &["users"]),
        (Self::OrganizationalUnits, &["users"]),
        (
            Self::Blueprints,
            &[
                "apps",
                "configurations",
                "packages",
                "orgDevices",
                "users",
                "userGroups",
            ],
        ),
    ];

    /// Apple's list of this kind, as raw resources.
    pub fn list(self) -> ListRequest<RawResource> {
        match self {
            Self::Users => users::list().raw(),
            Self::UserGroups => user_groups::list().raw(),
            Self::OrganizationalUnits => organizational_units::list().raw(),
            Self::Apps => apps::list().raw(),
            Self::Packages => packages::list().raw(),
            Self::Configurations => configurations::list().raw(),
            Self::Blueprints => blueprints::list().raw(),
        }
    }

    /// What people call one of these, for pages.
    pub fn label(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::UserGroups => "user groups",
            Self::OrganizationalUnits => "organizational units",
            Self::Apps => "apps",
            Self::Packages => "packages",
            Self::Configurations => "configurations",
            Self::Blueprints => "Blueprints",
        }
    }
}

/// One object of a list, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryObject {
    pub id: String,
    pub name: String,
    /// Apple's attributes, JSON.
    pub attributes: String,
    pub content_hash: i64,
}

fn text<'a>(attributes: &'a serde_json::Map<String, serde_json::Value>, key: &str) -> &'a str {
    attributes
        .get(key)
        .and_then(|v| v.as_str())
        .map(str::trim)
        .unwrap_or("")
}

impl DirectoryObject {
    pub fn from_apple(kind: ObjectKind, resource: &RawResource) -> Self {
        let a = &resource.attributes;
        let name = match kind {
            ObjectKind::Users => {
                let full = [text(a, "firstName"), text(a, "lastName")]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ");
                [
                    full.as_str(),
                    text(a, "managedAppleAccount"),
                    text(a, "email"),
                ]
                .into_iter()
                .find(|s| !s.is_empty())
                .unwrap_or("")
                .to_owned()
            }
            _ => text(a, "name").to_owned(),
        };
        let name = if name.is_empty() {
            resource.id.clone()
        } else {
            name
        };
        // `serde_json::Map` keeps its keys sorted, so equal attributes give equal text.
        let attributes = serde_json::to_string(a).unwrap_or_else(|_| "{}".to_owned());
        let mut h = Fnv1a::default();
        for part in [resource.id.as_str(), name.as_str(), attributes.as_str()] {
            h.write_u64(part.len() as u64);
            h.write(part.as_bytes());
        }
        Self {
            id: resource.id.clone(),
            name,
            attributes,
            content_hash: (h.finish() >> 1) as i64,
        }
    }
}

/// One membership list: the `rel` members of one owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberList {
    pub owner_kind: ObjectKind,
    pub owner_id: String,
    pub rel: &'static str,
}

impl MemberList {
    /// The list's name in `sync_run_ids`.
    pub fn key(&self) -> String {
        format!(
            "{}/{}/{}",
            self.owner_kind.as_str(),
            self.owner_id,
            self.rel
        )
    }

    /// Apple's linkage list of this membership.
    pub fn request(&self) -> ListRequest<ResourceIdentifier> {
        let id = self.owner_id.as_str();
        match self.owner_kind {
            ObjectKind::UserGroups => user_groups::user_ids(&apple::UserGroupId::new(id)),
            ObjectKind::OrganizationalUnits => {
                organizational_units::user_ids(&apple::OrganizationalUnitId::new(id))
            }
            _ => {
                let rel = blueprints::BlueprintRelationship::ALL
                    .into_iter()
                    .find(|r| r.as_str() == self.rel)
                    .expect("OWNERS lists Blueprint relationships only");
                blueprints::member_ids(&apple::BlueprintId::new(id), rel)
            }
        }
    }
}

/// Apple's audit events between two Unix times (Apple's filter takes both, inclusive).
pub fn audit_events_between(since: i64, until: i64) -> ListRequest<AuditEvent> {
    let at = |t: i64| OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    audit_events::list(at(since), at(until))
}

/// One of Apple's audit events, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEventRecord {
    pub id: String,
    pub occurred_at: i64,
    /// Apple's type, e.g. `DEVICE_ASSIGNED_TO_SERVER`.
    pub event_type: String,
    pub category: Option<String>,
    pub actor_type: Option<String>,
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    pub subject_type: Option<String>,
    pub subject_id: Option<String>,
    pub subject_name: Option<String>,
    pub outcome: Option<String>,
    /// The device the event is about, when it is about one.
    pub serial: Option<String>,
    /// The event's type-specific data member, JSON.
    pub data: Option<String>,
}

impl AuditEventRecord {
    /// `fallback_time` stands in for a missing `eventDateTime` (the window's start: the
    /// event is kept, sorted as early as it can have been).
    pub fn from_apple(event: &AuditEvent, fallback_time: i64) -> Self {
        let a = &event.attributes;
        let serial = match a.event_data() {
            Some(
                AuditEventData::DeviceAddedToOrg { serial_number, .. }
                | AuditEventData::DeviceRemovedFromOrg { serial_number, .. }
                | AuditEventData::DeviceAssignedToServer { serial_number, .. }
                | AuditEventData::DeviceUnassignedFromServer { serial_number },
            ) => serial_number,
            _ => None,
        }
        .or_else(|| {
            (a.subject_type.as_ref().map(|t| t.as_str()) == Some("DEVICE"))
                .then(|| a.subject_id.clone())
                .flatten()
        });
        let data = a
            .event_data_property_key
            .as_ref()
            .and_then(|key| a.other.get(key))
            .map(serde_json::Value::to_string);
        let name = |v: Option<&str>| v.map(str::to_owned);
        Self {
            id: event.id.as_str().to_owned(),
            occurred_at: a
                .event_date_time
                .map(OffsetDateTime::unix_timestamp)
                .unwrap_or(fallback_time),
            event_type: a
                .kind
                .as_ref()
                .map(|k| k.as_str().to_owned())
                .unwrap_or_else(|| "UNKNOWN".to_owned()),
            category: name(a.category.as_ref().map(|c| c.as_str())),
            actor_type: name(a.actor_type.as_ref().map(|c| c.as_str())),
            actor_id: a.actor_id.clone(),
            actor_name: a.actor_name.clone(),
            subject_type: name(a.subject_type.as_ref().map(|c| c.as_str())),
            subject_id: a.subject_id.clone(),
            subject_name: a.subject_name.clone(),
            outcome: name(a.outcome.as_ref().map(|c| c.as_str())),
            serial,
            data,
        }
    }
}

impl AuditEventRecord {
    /// What happened, in a sentence for people (device events told from the device's side).
    pub fn describe(&self) -> String {
        let data: serde_json::Value = self
            .data
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default();
        let field = |key: &str| {
            data.get(key)
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
        };
        match self.event_type.as_str() {
            "DEVICE_ADDED_TO_ORG" => match field("purchaseSourceType") {
                Some("APPLE") => "Added to the organization (bought from Apple)".to_owned(),
                Some("RESELLER") => "Added to the organization (bought from a reseller)".to_owned(),
                Some("MANUALLY_ADDED") => "Added to the organization by hand".to_owned(),
                _ => "Added to the organization".to_owned(),
            },
            "DEVICE_REMOVED_FROM_ORG" => match field("releaseEntityType") {
                Some("USER") => "Released from the organization by a person".to_owned(),
                Some("MDM") => {
                    "Released from the organization by a device management service".to_owned()
                }
                Some("RESELLER") => "Released from the organization by the reseller".to_owned(),
                Some("API") => "Released from the organization through the API".to_owned(),
                Some("REPLACEMENT") => "Released from the organization (replaced)".to_owned(),
                _ => "Released from the organization".to_owned(),
            },
            "DEVICE_ASSIGNED_TO_SERVER" => match field("targetServerName") {
                Some(name) => format!("Assigned to {name}"),
                None => "Assigned to a device management service".to_owned(),
            },
            "DEVICE_UNASSIGNED_FROM_SERVER" => {
                "Unassigned from its device management service".to_owned()
            }
            "DEVICE_IS_ERASED" => "Erased".to_owned(),
            other => {
                // Apple's TYPE_NAME as a sentence: "Config settings updated".
                let words = other.to_lowercase().replace('_', " ");
                let mut chars = words.chars();
                match chars.next() {
                    Some(first) => first.to_uppercase().chain(chars).collect(),
                    None => "Event".to_owned(),
                }
            }
        }
    }
}

/// A mirrored object as pages list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectSummary {
    pub kind: ObjectKind,
    pub id: String,
    pub name: String,
    pub absent_since: Option<i64>,
}

/// How many objects of a kind the mirror holds for an organization (not absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindCount {
    pub kind: ObjectKind,
    pub present: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> RawResource {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn every_membership_list_has_a_request() {
        for (kind, rels) in ObjectKind::OWNERS {
            for &rel in rels {
                let list = MemberList {
                    owner_kind: kind,
                    owner_id: "x".into(),
                    rel,
                };
                // Panics for a relationship Apple has no linkage list of.
                assert!(!list.request().endpoint().is_empty());
            }
        }
    }

    #[test]
    fn users_are_named_by_first_and_last_name_then_account() {
        let named = raw(
            r#"{"type":"users","id":"u1","attributes":{"firstName":"Ada","lastName":"Lovelace","email":"a@x"}}"#,
        );
        assert_eq!(
            DirectoryObject::from_apple(ObjectKind::Users, &named).name,
            "Ada Lovelace"
        );
        let bare = raw(r#"{"type":"users","id":"u2","attributes":{"email":"b@x"}}"#);
        assert_eq!(
            DirectoryObject::from_apple(ObjectKind::Users, &bare).name,
            "b@x"
        );
        let nothing = raw(r#"{"type":"users","id":"u3"}"#);
        assert_eq!(
            DirectoryObject::from_apple(ObjectKind::Users, &nothing).name,
            "u3"
        );
    }

    #[test]
    fn the_hash_follows_every_attribute_and_ignores_key_order() {
        let a = raw(r#"{"type":"apps","id":"1","attributes":{"name":"Pages","version":"1"}}"#);
        let b = raw(r#"{"type":"apps","id":"1","attributes":{"version":"1","name":"Pages"}}"#);
        let c = raw(r#"{"type":"apps","id":"1","attributes":{"version":"2","name":"Pages"}}"#);
        let new =
            raw(r#"{"type":"apps","id":"1","attributes":{"name":"Pages","version":"1","x":0}}"#);
        let [a, b, c, new] =
            [a, b, c, new].map(|r| DirectoryObject::from_apple(ObjectKind::Apps, &r));
        assert_eq!(a.content_hash, b.content_hash);
        assert_ne!(a.content_hash, c.content_hash);
        assert_ne!(
            a.content_hash, new.content_hash,
            "an attribute Apple adds counts"
        );
        assert!(new.attributes.contains("\"x\":0"));
    }

    #[test]
    fn audit_events_know_their_device() {
        let event: AuditEvent = serde_json::from_str(
            r#"{"type":"auditEvents","id":"e1","attributes":{"eventDateTime":"2026-01-02T03:04:05Z",
            "type":"DEVICE_ASSIGNED_TO_SERVER","subjectType":"DEVICE","subjectId":"S1",
            "eventDataPropertyKey":"eventDataDeviceAssignedToServer",
            "eventDataDeviceAssignedToServer":{"serialNumber":"C02X","targetServerName":"MDM"}}}"#,
        )
        .unwrap();
        let record = AuditEventRecord::from_apple(&event, 0);
        assert_eq!(record.serial.as_deref(), Some("C02X"));
        assert_eq!(record.event_type, "DEVICE_ASSIGNED_TO_SERVER");
        assert!(record.data.unwrap().contains("targetServerName"));
        let erased: AuditEvent = serde_json::from_str(
            r#"{"type":"auditEvents","id":"e2","attributes":{"type":"DEVICE_IS_ERASED",
            "subjectType":"DEVICE","subjectId":"C03Y"}}"#,
        )
        .unwrap();
        let record = AuditEventRecord::from_apple(&erased, 42);
        assert_eq!(record.serial.as_deref(), Some("C03Y"));
        assert_eq!(record.occurred_at, 42);
        assert_eq!(record.describe(), "Erased");
    }

    #[test]
    fn events_are_told_in_words() {
        let event = |kind: &str, data: &str| AuditEventRecord {
            id: "e".into(),
            occurred_at: 0,
            event_type: kind.into(),
            category: None,
            actor_type: None,
            actor_id: None,
            actor_name: None,
            subject_type: None,
            subject_id: None,
            subject_name: None,
            outcome: None,
            serial: None,
            data: Some(data.into()),
        };
        let assigned = event(
            "DEVICE_ASSIGNED_TO_SERVER",
            r#"{"serialNumber":"S","targetServerName":"Jamf Pro"}"#,
        );
        assert_eq!(assigned.describe(), "Assigned to Jamf Pro");
        let added = event(
            "DEVICE_ADDED_TO_ORG",
            r#"{"purchaseSourceType":"RESELLER"}"#,
        );
        assert_eq!(
            added.describe(),
            "Added to the organization (bought from a reseller)"
        );
        let released = event("DEVICE_REMOVED_FROM_ORG", r#"{"releaseEntityType":"MDM"}"#);
        assert!(
            released
                .describe()
                .contains("by a device management service")
        );
        let unknown = event("CONFIG_SETTINGS_UPDATED", "null");
        assert_eq!(unknown.describe(), "Config settings updated");
    }
}
