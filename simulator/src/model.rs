//! The organization's state: compact devices plus the small directory and
//! content collections, activities and audit events.
//!
//! Devices are the only large collection, so they are small fixed-size structs
//! (see [`Device`]): model, colour and capacity are indices into
//! [`crate::catalog::MODELS`], timestamps are unix seconds, and values that
//! never change (IMEI, MAC addresses, AppleCare, activation lock) are derived
//! from `(seed, index)` when rendered instead of stored. Device positions in
//! [`Org::devices`] never move (released devices stay, flagged), so a cursor that
//! encodes a position resumes exactly, across connections and mutations.
//! Mutable collections (servers, blueprints, configurations) are `Vec<Option<T>>`
//! for the same reason: deletion leaves a hole instead of shifting positions.

use serde_json::{Map, Value, json};
use std::collections::HashMap;
use time::OffsetDateTime;

/// A serial number: up to 17 ASCII bytes, zero-padded. Generated serials are
/// 10 or 12 characters; seed-dataset examples reach 17.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Serial(pub [u8; 17]);

impl Serial {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        if s.is_empty() || s.len() > 17 || !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        let mut b = [0u8; 17];
        b[..s.len()].copy_from_slice(s.as_bytes());
        Some(Self(b))
    }
    pub(crate) fn as_str(&self) -> &str {
        let len = self.0.iter().position(|&b| b == 0).unwrap_or(17);
        std::str::from_utf8(&self.0[..len]).unwrap_or("")
    }
}

impl std::fmt::Debug for Serial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// No server assigned.
pub(crate) const NO_SERVER: u16 = u16::MAX;
/// Device flag: released from the org (hidden from lists; single GET shows the date).
pub(crate) const F_RELEASED: u8 = 1;
/// Device flag: `isMdmMigrationCapable`.
pub(crate) const F_MIGRATION_CAPABLE: u8 = 2;
/// Device flag: has a cellular modem.
pub(crate) const F_CELLULAR: u8 = 4;

/// Purchase source types, indexed by [`Device::source`].
pub(crate) const SOURCE_TYPES: [&str; 3] = ["APPLE", "RESELLER", "MANUALLY_ADDED"];
/// `mdmMigrationStatus` values, indexed by `Device::migration - 1` (0 = none).
pub(crate) const MIGRATION_STATUSES: [&str; 4] = ["REQUESTED", "STARTED", "SUCCESS", "FAILED"];

/// One org device, 64 bytes. See the module note.
#[derive(Debug, Clone)]
pub(crate) struct Device {
    pub serial: Serial,
    pub model: u16,
    pub capacity: u8,
    pub color: u8,
    /// Index into [`SOURCE_TYPES`].
    pub source: u8,
    /// Index into the org's purchase source id table for that type.
    pub source_id: u8,
    /// Index into [`Org::servers`], or [`NO_SERVER`].
    pub server: u16,
    pub flags: u8,
    /// 0 = no migration, else 1 + index into [`MIGRATION_STATUSES`].
    pub migration: u8,
    pub order_number: u32,
    /// Unix seconds.
    pub ordered: u32,
    pub added: u32,
    pub updated: u32,
    /// 0 = not released.
    pub released: u32,
    /// 0 = none.
    pub migration_deadline: u32,
    /// Attribute values that replace the rendered ones (seed-dataset devices,
    /// `/_sim/mutate` attribute changes). `None` for generated devices.
    pub overrides: Option<Box<Map<String, Value>>>,
}

impl Device {
    pub(crate) fn released(&self) -> bool {
        self.flags & F_RELEASED != 0
    }
}

/// A device management service (`mdmServers`).
#[derive(Debug, Clone)]
pub(crate) struct Server {
    pub id: String,
    pub name: String,
    /// `MDM`, `APPLE_CONFIGURATOR` or `APPLE_MDM`.
    pub server_type: &'static str,
    pub disown: bool,
    pub default_families: Vec<String>,
    pub last_connected: OffsetDateTime,
    pub last_ip: String,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
    /// Kept up to date on every assignment change.
    pub device_count: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct User {
    pub id: String,
    /// Every attribute of the resource, already in wire form.
    pub attributes: Map<String, Value>,
}

#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub id: String,
    pub attributes: Map<String, Value>,
    /// Member user ids.
    pub members: Vec<String>,
}

/// Apps, packages and organizational units: an id, attributes and (OUs) member users.
#[derive(Debug, Clone)]
pub(crate) struct Simple {
    pub id: String,
    pub attributes: Map<String, Value>,
    pub members: Vec<String>,
}

/// The six blueprint relationships, in the order Apple lists them.
pub(crate) const BLUEPRINT_RELS: [&str; 6] = [
    "apps",
    "configurations",
    "packages",
    "orgDevices",
    "users",
    "userGroups",
];

#[derive(Debug, Clone)]
pub(crate) struct Blueprint {
    pub id: String,
    pub name: String,
    pub description: String,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
    /// Member ids per relationship, in [`BLUEPRINT_RELS`] order.
    pub members: [Vec<String>; 6],
}

#[derive(Debug, Clone)]
pub(crate) struct Configuration {
    pub id: String,
    pub config_type: String,
    pub name: String,
    pub platforms: Vec<String>,
    /// `(configurationProfile, filename)` for CUSTOM_SETTING.
    pub custom: Option<(String, String)>,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
}

/// Outcome of one device in an activity, as written to the CSV log.
#[derive(Debug, Clone)]
pub(crate) struct DeviceResult {
    pub serial: String,
    /// Device index when the serial is in the org.
    pub index: Option<u32>,
    pub ok: bool,
    pub detail: &'static str,
}

#[derive(Debug, Clone)]
pub(crate) struct Activity {
    pub id: String,
    pub activity_type: String,
    /// Client id that submitted it (the audit actor of its effects).
    pub actor: String,
    pub created: OffsetDateTime,
    /// Target server index (assign/unassign).
    pub server: Option<u16>,
    pub server_name: String,
    pub deadline: Option<OffsetDateTime>,
    pub results: Vec<DeviceResult>,
    /// Whether the device changes have been applied (after completion + lag).
    pub applied: bool,
    /// Real time at which the activity shows COMPLETED, and at which its effects become visible.
    pub completes_at: OffsetDateTime,
    pub visible_at: OffsetDateTime,
    /// Seeded activities from a dataset carry their final state verbatim.
    pub fixed_status: Option<(String, String, Option<OffsetDateTime>)>,
}

#[derive(Debug, Clone)]
pub(crate) struct AuditEvent {
    pub id: String,
    pub at: OffsetDateTime,
    pub event_type: String,
    pub actor_id: String,
    pub subject_id: String,
    /// The resource's attributes, ready to serve.
    pub attributes: Map<String, Value>,
}

/// Which product the org is: Apple Business or Apple School Manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgKind {
    /// Apple Business (`business.api`, all endpoints).
    Business,
    /// Apple School Manager (`school.api`; AB-only paths answer 404).
    School,
}

/// The whole organization.
#[derive(Debug)]
pub(crate) struct Org {
    pub kind: OrgKind,
    pub seed: u64,
    pub builtin_mdm: bool,
    pub devices: Vec<Device>,
    pub index: HashMap<Serial, u32>,
    /// Purchase source ids per type (APPLE, RESELLER, MANUALLY_ADDED).
    pub source_ids: [Vec<String>; 3],
    pub servers: Vec<Option<Server>>,
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    pub ous: Vec<Simple>,
    pub apps: Vec<Simple>,
    pub packages: Vec<Simple>,
    pub blueprints: Vec<Option<Blueprint>>,
    pub configurations: Vec<Option<Configuration>>,
    pub activities: HashMap<String, Activity>,
    /// Chronological (oldest first).
    pub audit: Vec<AuditEvent>,
    /// Ordinal of the next generated device (feeds the unique serial permutation).
    pub next_device_ordinal: u64,
    /// Counter behind [`Org::next_id`].
    pub id_counter: u64,
    /// AppleCare coverage items given verbatim by a seed dataset, by device index.
    pub coverage_overrides: HashMap<u32, Vec<Value>>,
    /// Activation lock attributes given verbatim by a seed dataset, by device index.
    pub lock_overrides: HashMap<u32, Value>,
    /// Built-in management (`mdmDevices`) records given by a seed dataset, by device index.
    pub mdm_overrides: HashMap<u32, Value>,
    /// Earliest `visible_at` of an activity not yet applied.
    pub next_due: Option<OffsetDateTime>,
}

/// Who performs a mutation, for audit events.
#[derive(Debug, Clone)]
pub(crate) struct Actor {
    pub actor_type: &'static str,
    pub id: String,
    pub name: String,
}

impl Actor {
    pub(crate) fn api(client_id: &str) -> Self {
        Self {
            actor_type: "API_USER",
            id: client_id.to_string(),
            name: "API account".into(),
        }
    }
    pub(crate) fn system() -> Self {
        Self {
            actor_type: "SYSTEM",
            id: "system".into(),
            name: "Apple Business".into(),
        }
    }
}

impl Org {
    pub(crate) fn device(&self, serial: &str) -> Option<(u32, &Device)> {
        let s = Serial::parse(serial)?;
        let i = *self.index.get(&s)?;
        Some((i, &self.devices[i as usize]))
    }

    pub(crate) fn server_index(&self, id: &str) -> Option<u16> {
        self.servers
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.id == id))
            .map(|i| i as u16)
    }

    pub(crate) fn server(&self, idx: u16) -> Option<&Server> {
        self.servers.get(idx as usize).and_then(Option::as_ref)
    }

    /// A fresh id unique in this org (for blueprints, configurations, events).
    pub(crate) fn next_id(&mut self) -> u64 {
        self.id_counter += 1;
        self.id_counter
    }

    /// Moves a device to `server` (or unassigns with [`NO_SERVER`]), keeping counts right.
    pub(crate) fn set_server(&mut self, idx: u32, server: u16, now: OffsetDateTime, actor: &Actor) {
        let old = self.devices[idx as usize].server;
        if old == server {
            return;
        }
        if let Some(Some(s)) = self.servers.get_mut(old as usize) {
            s.device_count = s.device_count.saturating_sub(1);
        }
        if let Some(Some(s)) = self.servers.get_mut(server as usize) {
            s.device_count += 1;
        }
        let d = &mut self.devices[idx as usize];
        d.server = server;
        d.updated = now.unix_timestamp() as u32;
        let serial = d.serial.as_str().to_string();
        if server == NO_SERVER {
            self.audit_push(
                now,
                "DEVICE_UNASSIGNED_FROM_SERVER",
                "DEVICE_MANAGEMENT",
                actor,
                ("DEVICE", &serial, &serial),
                "eventDataDeviceUnassignedFromServer",
                json!({ "serialNumber": serial }),
            );
        } else {
            let name = self
                .server(server)
                .map(|s| s.name.clone())
                .unwrap_or_default();
            self.audit_push(
                now,
                "DEVICE_ASSIGNED_TO_SERVER",
                "DEVICE_MANAGEMENT",
                actor,
                ("DEVICE", &serial, &serial),
                "eventDataDeviceAssignedToServer",
                json!({ "serialNumber": serial, "targetServerName": name }),
            );
        }
    }

    /// Releases a device from the org: unassigns it, stamps the date, removes it from blueprints.
    pub(crate) fn release(&mut self, idx: u32, now: OffsetDateTime, actor: &Actor, entity: &str) {
        if self.devices[idx as usize].released() {
            return;
        }
        self.set_server(idx, NO_SERVER, now, actor);
        let d = &mut self.devices[idx as usize];
        d.flags |= F_RELEASED;
        d.released = now.unix_timestamp() as u32;
        d.updated = d.released;
        let serial = d.serial.as_str().to_string();
        for bp in self.blueprints.iter_mut().flatten() {
            bp.members[3].retain(|s| s != &serial);
        }
        let mut data = json!({ "serialNumber": serial, "releaseEntityType": entity });
        if entity != "USER" {
            data["releaseEntityId"] = json!(actor.id);
        }
        self.audit_push(
            now,
            "DEVICE_REMOVED_FROM_ORG",
            "DEVICE_INVENTORY",
            actor,
            ("DEVICE", &serial, &serial),
            "eventDataDeviceRemovedFromOrg",
            data,
        );
    }

    /// Appends an audit event. `subject` is `(subjectType, subjectId, subjectName)`.
    #[expect(
        clippy::too_many_arguments,
        reason = "mirrors the audit event's own fields"
    )]
    pub(crate) fn audit_push(
        &mut self,
        at: OffsetDateTime,
        event_type: &str,
        category: &str,
        actor: &Actor,
        subject: (&str, &str, &str),
        data_key: &str,
        data: Value,
    ) {
        let n = self.next_id();
        let id = format!("event-{:08x}{:08x}", (self.seed as u32) ^ 0x5eed, n);
        let mut a = Map::new();
        a.insert("eventDateTime".into(), json!(crate::util::iso(at)));
        a.insert("type".into(), json!(event_type));
        a.insert("category".into(), json!(category));
        a.insert("actorType".into(), json!(actor.actor_type));
        a.insert("actorId".into(), json!(actor.id));
        a.insert("actorName".into(), json!(actor.name));
        a.insert("subjectType".into(), json!(subject.0));
        a.insert("subjectId".into(), json!(subject.1));
        a.insert("subjectName".into(), json!(subject.2));
        a.insert("outcome".into(), json!("SUCCESS"));
        a.insert(
            "groupId".into(),
            json!(format!("group-{:06}", n % 1_000_000)),
        );
        a.insert("eventDataPropertyKey".into(), json!(data_key));
        a.insert(data_key.into(), data);
        let ev = AuditEvent {
            id,
            at,
            event_type: event_type.into(),
            actor_id: actor.id.clone(),
            subject_id: subject.1.into(),
            attributes: a,
        };
        // The generator back-dates events and sorts once at the end; at run time `at` is now.
        self.audit.push(ev);
    }

    /// Applies the effects of every activity whose assignment lag has passed.
    pub(crate) fn settle(&mut self, now: OffsetDateTime) {
        if self.next_due.is_none_or(|due| due > now) {
            return;
        }
        let mut due: Vec<String> = self
            .activities
            .values()
            .filter(|a| !a.applied && a.visible_at <= now)
            .map(|a| a.id.clone())
            .collect();
        due.sort_by_key(|id| self.activities[id].visible_at);
        for id in due {
            let Some(act) = self.activities.get_mut(&id) else {
                continue;
            };
            act.applied = true;
            let act = act.clone();
            crate::activities::apply(self, &act, act.visible_at);
        }
        self.next_due = self
            .activities
            .values()
            .filter(|a| !a.applied)
            .map(|a| a.visible_at)
            .min();
    }
}
