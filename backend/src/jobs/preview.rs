//! The preview of a bulk assignment, computed from the mirror before anything is sent: for
//! every entry of the input, whether it would be sent to Apple and what it would change, or
//! why it is skipped.
//!
//! Nothing here talks to Apple. The mirror is read in batches of [`LOOKUP_CHUNK`] serials
//! (one query each), so 50,000 pasted serials cost 50 queries. What the confirm step hands to
//! the runner is exactly [`Preview::to_send`] and [`Preview::skipped`].
//!
//! Groups, checked in this order (the first that applies wins):
//! 1. malformed, duplicate (the first occurrence is classified, the repeats are skipped);
//! 2. not in the organization (unknown to the mirror), released (Apple no longer returns it);
//! 3. per action: assign → already on the target (skipped), moving from service X, or newly
//!    assigned; unassign → on that service, or not (skipped); assign with a migration
//!    deadline → first "cannot migrate without erase" (skipped), then as assign; deadline
//!    update and cancel → a migration in progress (`REQUESTED`/`STARTED`), or none (skipped).
//!
//! The action itself is checked too ([`check_action`]): its service must be mirrored and
//! present, and a deadline must be in the future and at most [`MAX_DEADLINE_DAYS`] days ahead.
//! An action that fails the check makes the preview unsendable, whatever its rows say.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use time::{Date, Duration, OffsetDateTime, Time};

use super::JobAction;
use super::input::{EntryKind, ParsedInput, Position};
use crate::accounts::ApiAccountId;
use crate::mirror::ServiceRecord;
use crate::orgs::OrgId;
use crate::store::{Result, Store};

/// Serials read from the mirror per query.
pub const LOOKUP_CHUNK: usize = 1000;
/// Apple's limit for a migration deadline, in days from now (SPEC §10.1).
pub const MAX_DEADLINE_DAYS: i64 = 90;

/// What the preview needs of one mirrored device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFacts {
    pub serial: String,
    /// The API account that last returned it.
    pub account_id: ApiAccountId,
    /// `ASSIGNED` / `UNASSIGNED`, as Apple reports it.
    pub status: Option<String>,
    pub service_id: Option<String>,
    pub absent_since: Option<i64>,
    pub migration_capable: Option<bool>,
    pub migration_status: Option<String>,
    pub migration_deadline: Option<i64>,
}

/// The group an entry falls in. The first four are sent to Apple; the others are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    /// Assign: on no service yet.
    Assign,
    /// Assign: on another service now.
    Move,
    /// Unassign: on the service.
    Unassign,
    /// Deadline update or cancel: a migration is in progress.
    Migration,
    AlreadyThere,
    NotOnService,
    NotMigrationCapable,
    NoMigration,
    Released,
    NotInOrg,
    Duplicate,
    Malformed,
}

impl Group {
    pub const ALL: [Group; 12] = [
        Self::Assign,
        Self::Move,
        Self::Unassign,
        Self::Migration,
        Self::AlreadyThere,
        Self::NotOnService,
        Self::NotMigrationCapable,
        Self::NoMigration,
        Self::Released,
        Self::NotInOrg,
        Self::Duplicate,
        Self::Malformed,
    ];

    /// The stable name, used in URLs and the CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Assign => "assign",
            Self::Move => "move",
            Self::Unassign => "unassign",
            Self::Migration => "migration",
            Self::AlreadyThere => "already_there",
            Self::NotOnService => "not_on_service",
            Self::NotMigrationCapable => "not_migration_capable",
            Self::NoMigration => "no_migration",
            Self::Released => "released",
            Self::NotInOrg => "not_in_org",
            Self::Duplicate => "duplicate",
            Self::Malformed => "malformed",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == name)
    }

    /// Whether entries of this group are sent to Apple.
    pub fn sends(self) -> bool {
        matches!(
            self,
            Self::Assign | Self::Move | Self::Unassign | Self::Migration
        )
    }

    /// The group's heading for people, for `action`.
    pub fn label(self, action: &JobAction) -> &'static str {
        match self {
            Self::Assign => "Newly assigned",
            Self::Move => "Moving from another service",
            Self::Unassign => "Unassigned",
            Self::Migration => match action {
                JobAction::CancelMigration => "Migration cancelled",
                _ => "Migration deadline changed",
            },
            Self::AlreadyThere => "Already on the target service",
            Self::NotOnService => "Not on that service",
            Self::NotMigrationCapable => "Cannot migrate without erase",
            Self::NoMigration => "No migration in progress",
            Self::Released => "Released from the organization",
            Self::NotInOrg => "Not in the organization",
            Self::Duplicate => "Duplicates",
            Self::Malformed => "Not a serial number",
        }
    }
}

/// One entry of the input and what would happen to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewRow {
    pub position: Position,
    /// As written.
    pub input: String,
    /// The serial number, when the entry is one.
    pub serial: Option<String>,
    pub group: Group,
    /// What happens or why not, in words ("moves from Jamf to Intune").
    pub detail: String,
    /// The service the device is on now, per the mirror.
    pub service_id: Option<String>,
    pub service_name: Option<String>,
}

/// Why an action cannot be sent as it stands; `field` is the form field to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ActionError {
    pub field: &'static str,
    pub message: String,
}

/// The whole preview of one input and action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub action: JobAction,
    /// The target service's name, for the actions that have one.
    pub target_name: Option<String>,
    /// Every entry, in input order.
    pub rows: Vec<PreviewRow>,
    /// Set when the action itself cannot be sent (then nothing is sendable).
    pub action_error: Option<String>,
    /// The API account to send with: the target service's, else the one that returned most
    /// of the devices to send.
    pub account: Option<ApiAccountId>,
}

impl Preview {
    /// Entries per group, in [`Group::ALL`] order, groups with entries only.
    pub fn counts(&self) -> Vec<(Group, usize)> {
        let mut n: HashMap<Group, usize> = HashMap::new();
        for row in &self.rows {
            *n.entry(row.group).or_default() += 1;
        }
        Group::ALL
            .into_iter()
            .filter_map(|g| n.get(&g).map(|c| (g, *c)))
            .collect()
    }

    /// Moving devices per current service name (`None`: a service not mirrored yet), most
    /// first.
    pub fn moves(&self) -> Vec<(Option<String>, usize)> {
        let mut n: HashMap<Option<String>, usize> = HashMap::new();
        for row in self.rows.iter().filter(|r| r.group == Group::Move) {
            *n.entry(row.service_name.clone()).or_default() += 1;
        }
        let mut out: Vec<_> = n.into_iter().collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out
    }

    /// The serials to send to Apple, each once, in input order.
    pub fn to_send(&self) -> Vec<String> {
        self.rows
            .iter()
            .filter(|r| r.group.sends())
            .filter_map(|r| r.serial.clone())
            .collect()
    }

    /// Every skipped entry with its reason: `(serial, or the text as written when it is not a
    /// serial; "<group>: <detail>")`.
    pub fn skipped(&self) -> Vec<(String, String)> {
        self.rows
            .iter()
            .filter(|r| !r.group.sends())
            .map(|r| {
                let who = r.serial.clone().unwrap_or_else(|| r.input.clone());
                let why = format!("{}: {}", r.group.label(&self.action), r.detail);
                (who, why)
            })
            .collect()
    }

    /// Whether the confirm step may go ahead: a valid action and something to send.
    pub fn sendable(&self) -> bool {
        self.action_error.is_none() && self.rows.iter().any(|r| r.group.sends())
    }
}

/// `YYYY-MM-DD` of a Unix time (UTC).
pub fn day(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .map(|t| t.date().to_string())
        .unwrap_or_else(|_| t.to_string())
}

/// The earliest and latest day a migration deadline may be chosen on at `now`: tomorrow,
/// and the day [`MAX_DEADLINE_DAYS`] ahead. A chosen day means its start, 00:00 UTC.
pub fn deadline_days(now: i64) -> (Date, Date) {
    let today = OffsetDateTime::from_unix_timestamp(now)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .date();
    (
        today.next_day().unwrap_or(today),
        today + Duration::days(MAX_DEADLINE_DAYS),
    )
}

/// The deadline of a chosen day: its start, UTC.
pub fn deadline_of_day(day: Date) -> OffsetDateTime {
    day.with_time(Time::MIDNIGHT).assume_utc()
}

/// Checks an action against the organization's services at `now` (see the module note).
pub fn check_action(
    action: &JobAction,
    services: &[ServiceRecord],
    now: i64,
) -> std::result::Result<(), ActionError> {
    if let Some(id) = action.service_id() {
        match services.iter().find(|s| s.id == id) {
            None => {
                return Err(ActionError {
                    field: "service",
                    message: "that device management service is not in this organization".into(),
                });
            }
            Some(s) if s.absent_since.is_some() => {
                return Err(ActionError {
                    field: "service",
                    message: format!(
                        "the service {} was removed from Apple Business on {}",
                        s.name,
                        day(s.absent_since.unwrap_or_default())
                    ),
                });
            }
            Some(_) => {}
        }
    }
    if let Some(deadline) = action.deadline() {
        let at = deadline.unix_timestamp();
        if at <= now {
            return Err(ActionError {
                field: "deadline",
                message: format!(
                    "the deadline {} has passed; choose a day in the future",
                    deadline.date()
                ),
            });
        }
        if at > now + MAX_DEADLINE_DAYS * 86_400 {
            return Err(ActionError {
                field: "deadline",
                message: format!(
                    "the deadline {} is more than {MAX_DEADLINE_DAYS} days ahead (Apple's limit); \
                     choose {} or earlier",
                    deadline.date(),
                    deadline_days(now).1
                ),
            });
        }
    }
    Ok(())
}

/// Whether the mirror knows the migration fields (Apple Business API 2.3 / ASM 1.6 and
/// later): the migration actions are offered only then.
pub fn migration_known<'a>(devices: impl IntoIterator<Item = &'a DeviceFacts>) -> bool {
    devices.into_iter().any(|d| d.migration_capable.is_some())
}

/// Classifies every entry of `input` for `action` (pure: the mirror's answers are given).
pub fn classify(
    input: &ParsedInput,
    action: &JobAction,
    devices: &HashMap<String, DeviceFacts>,
    services: &[ServiceRecord],
    service_account: Option<ApiAccountId>,
    now: i64,
) -> Preview {
    let name_of = |id: &str| services.iter().find(|s| s.id == id).map(|s| s.name.clone());
    let target = action.service_id();
    let target_name = target.map(|id| name_of(id).unwrap_or_else(|| id.to_owned()));
    let target_label = target_name.clone().unwrap_or_default();
    let mut rows = Vec::with_capacity(input.entries.len());
    for entry in &input.entries {
        let mut row = PreviewRow {
            position: entry.position,
            input: entry.text.clone(),
            serial: entry.serial.clone(),
            group: Group::Malformed,
            detail: String::new(),
            service_id: None,
            service_name: None,
        };
        let (group, detail) = match &entry.kind {
            EntryKind::Malformed { reason } => (Group::Malformed, reason.clone()),
            EntryKind::Duplicate { first } => (
                Group::Duplicate,
                format!("repeats the serial number at {first}; it is sent once"),
            ),
            EntryKind::Serial => {
                let serial = entry.serial.as_deref().unwrap_or_default();
                match devices.get(serial) {
                    None => (
                        Group::NotInOrg,
                        "not among this organization's devices (as last synced)".to_owned(),
                    ),
                    Some(d) => {
                        row.service_id = d.service_id.clone();
                        row.service_name = d.service_id.as_deref().and_then(name_of);
                        classify_device(d, action, target, &target_label, &row.service_name)
                    }
                }
            }
        };
        row.group = group;
        row.detail = detail;
        rows.push(row);
    }
    let action_error = check_action(action, services, now).err().map(|e| e.message);
    let account = service_account.or_else(|| {
        let mut n: HashMap<ApiAccountId, usize> = HashMap::new();
        for row in rows.iter().filter(|r| r.group.sends()) {
            if let Some(d) = row.serial.as_deref().and_then(|s| devices.get(s)) {
                *n.entry(d.account_id).or_default() += 1;
            }
        }
        n.into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.0.cmp(&a.0.0)))
            .map(|(a, _)| a)
    });
    Preview {
        action: action.clone(),
        target_name,
        rows,
        action_error,
        account,
    }
}

fn classify_device(
    d: &DeviceFacts,
    action: &JobAction,
    target: Option<&str>,
    target_name: &str,
    current_name: &Option<String>,
) -> (Group, String) {
    if let Some(at) = d.absent_since {
        return (
            Group::Released,
            format!(
                "Apple no longer returns it (released from the organization) since {}",
                day(at)
            ),
        );
    }
    let current = d.service_id.as_deref();
    let current_label = || match (current, current_name) {
        (_, Some(name)) => name.clone(),
        (Some(id), None) => format!("service {id}"),
        (None, None) => "a service not synced yet".to_owned(),
    };
    let assigned_elsewhere = current.is_some() || d.status.as_deref() == Some("ASSIGNED");
    match action {
        JobAction::AssignWithMigrationDeadline { .. } if d.migration_capable != Some(true) => (
            Group::NotMigrationCapable,
            match d.migration_capable {
                Some(false) => "Apple says it cannot migrate without erase".to_owned(),
                _ => "Apple has not said whether it can migrate without erase".to_owned(),
            },
        ),
        JobAction::Assign { .. } | JobAction::AssignWithMigrationDeadline { .. } => {
            if current.is_some() && current == target {
                (Group::AlreadyThere, format!("already on {target_name}"))
            } else if assigned_elsewhere {
                (
                    Group::Move,
                    format!("moves from {} to {target_name}", current_label()),
                )
            } else {
                (
                    Group::Assign,
                    format!("on no service now; assigned to {target_name}"),
                )
            }
        }
        JobAction::Unassign { .. } => {
            if current.is_some() && current == target {
                (Group::Unassign, format!("leaves {target_name}"))
            } else if assigned_elsewhere {
                (
                    Group::NotOnService,
                    format!("is on {}, not {target_name}", current_label()),
                )
            } else {
                (
                    Group::NotOnService,
                    format!("is on no service, not {target_name}"),
                )
            }
        }
        JobAction::UpdateMigrationDeadline { deadline } => match running(d) {
            Some(status) => (
                Group::Migration,
                format!(
                    "migration {status}; deadline {} → {}",
                    d.migration_deadline.map_or("none".to_owned(), day),
                    deadline.date()
                ),
            ),
            None => (Group::NoMigration, no_migration(d)),
        },
        JobAction::CancelMigration => match running(d) {
            Some(status) => (Group::Migration, format!("migration {status} is cancelled")),
            None => (Group::NoMigration, no_migration(d)),
        },
    }
}

/// The migration status of a device whose migration is in progress.
fn running(d: &DeviceFacts) -> Option<&str> {
    d.migration_status
        .as_deref()
        .filter(|s| matches!(*s, "REQUESTED" | "STARTED"))
}

fn no_migration(d: &DeviceFacts) -> String {
    match d.migration_status.as_deref() {
        Some(status) => format!("its last migration ended ({status})"),
        None => "no migration was requested for it".to_owned(),
    }
}

/// Reads the mirror for `input`'s serials ([`LOOKUP_CHUNK`] per query) and classifies them.
pub async fn build(
    store: &dyn Store,
    org: OrgId,
    action: &JobAction,
    input: &ParsedInput,
    now: i64,
) -> Result<Preview> {
    let serials: Vec<String> = input.serials().map(str::to_owned).collect();
    let mut devices = HashMap::with_capacity(serials.len());
    for chunk in serials.chunks(LOOKUP_CHUNK) {
        for d in store.devices_by_serials(org, chunk).await? {
            devices.insert(d.serial.clone(), d);
        }
    }
    let services = store.services(org).await?;
    let service_account = match action.service_id() {
        Some(id) => store.service_account(org, id).await?,
        None => None,
    };
    Ok(classify(
        input,
        action,
        &devices,
        &services,
        service_account,
        now,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::input::parse_serials;

    const NOW: i64 = 1_800_000_000;

    fn account(n: u128) -> ApiAccountId {
        ApiAccountId(uuid::Uuid::from_u128(n))
    }

    fn device(serial: &str, service: Option<&str>) -> DeviceFacts {
        DeviceFacts {
            serial: serial.into(),
            account_id: account(1),
            status: Some(
                if service.is_some() {
                    "ASSIGNED"
                } else {
                    "UNASSIGNED"
                }
                .into(),
            ),
            service_id: service.map(Into::into),
            absent_since: None,
            migration_capable: Some(true),
            migration_status: None,
            migration_deadline: None,
        }
    }

    fn service(id: &str, name: &str) -> ServiceRecord {
        ServiceRecord {
            id: id.into(),
            name: name.into(),
            server_type: Some("MDM".into()),
            default_families: None,
            created_at: None,
            updated_at: None,
            absent_since: None,
            device_count: 0,
        }
    }

    fn mirror(devices: Vec<DeviceFacts>) -> HashMap<String, DeviceFacts> {
        devices.into_iter().map(|d| (d.serial.clone(), d)).collect()
    }

    fn services() -> Vec<ServiceRecord> {
        vec![service("S1", "Jamf"), service("S2", "Intune")]
    }

    fn groups(p: &Preview) -> Vec<(String, Group)> {
        p.rows.iter().map(|r| (r.input.clone(), r.group)).collect()
    }

    #[test]
    fn assign_sorts_every_entry_into_its_group() {
        let input = parse_serials(
            "NEWDEVICE01 MOVER00001 THERE00001 GONE000001 UNKNOWN001 mover00001 bad! ELSEWHERE1",
        )
        .unwrap();
        let mut gone = device("GONE000001", Some("S1"));
        gone.absent_since = Some(NOW - 86_400);
        let mut elsewhere = device("ELSEWHERE1", None);
        elsewhere.status = Some("ASSIGNED".into());
        let devices = mirror(vec![
            device("NEWDEVICE01", None),
            device("MOVER00001", Some("S1")),
            device("THERE00001", Some("S2")),
            gone,
            elsewhere,
        ]);
        let action = JobAction::Assign {
            service_id: "S2".into(),
        };
        let p = classify(
            &input,
            &action,
            &devices,
            &services(),
            Some(account(9)),
            NOW,
        );
        assert_eq!(
            groups(&p),
            vec![
                ("NEWDEVICE01".into(), Group::Assign),
                ("MOVER00001".into(), Group::Move),
                ("THERE00001".into(), Group::AlreadyThere),
                ("GONE000001".into(), Group::Released),
                ("UNKNOWN001".into(), Group::NotInOrg),
                ("mover00001".into(), Group::Duplicate),
                ("bad!".into(), Group::Malformed),
                ("ELSEWHERE1".into(), Group::Move),
            ]
        );
        assert_eq!(p.rows[1].detail, "moves from Jamf to Intune");
        assert_eq!(p.rows[1].service_name.as_deref(), Some("Jamf"));
        assert_eq!(
            p.rows[7].detail,
            "moves from a service not synced yet to Intune"
        );
        assert_eq!(p.target_name.as_deref(), Some("Intune"));
        assert_eq!(p.to_send(), ["NEWDEVICE01", "MOVER00001", "ELSEWHERE1"]);
        let skipped = p.skipped();
        assert_eq!(skipped.len(), 5);
        assert_eq!(skipped[0].0, "THERE00001");
        assert_eq!(
            skipped[0].1,
            "Already on the target service: already on Intune"
        );
        assert_eq!(skipped[3].0, "MOVER00001");
        assert!(
            skipped[3]
                .1
                .starts_with("Duplicates: repeats the serial number at line 1, column 13")
        );
        assert_eq!(skipped[4].0, "bad!");
        assert_eq!(
            p.counts(),
            vec![
                (Group::Assign, 1),
                (Group::Move, 2),
                (Group::AlreadyThere, 1),
                (Group::Released, 1),
                (Group::NotInOrg, 1),
                (Group::Duplicate, 1),
                (Group::Malformed, 1),
            ]
        );
        assert_eq!(p.moves(), vec![(None, 1), (Some("Jamf".into()), 1)]);
        assert_eq!(p.account, Some(account(9)));
        assert!(p.sendable());
        // Nothing is lost: every entry is either sent or skipped.
        assert_eq!(p.to_send().len() + p.skipped().len(), input.entries.len());
    }

    #[test]
    fn unassign_sends_only_devices_on_that_service() {
        let input = parse_serials("ONSERVICE1 OTHERSVC01 NOSERVICE1").unwrap();
        let devices = mirror(vec![
            device("ONSERVICE1", Some("S1")),
            device("OTHERSVC01", Some("S2")),
            device("NOSERVICE1", None),
        ]);
        let action = JobAction::Unassign {
            service_id: "S1".into(),
        };
        let p = classify(&input, &action, &devices, &services(), None, NOW);
        assert_eq!(
            p.rows.iter().map(|r| r.group).collect::<Vec<_>>(),
            [Group::Unassign, Group::NotOnService, Group::NotOnService]
        );
        assert_eq!(p.rows[1].detail, "is on Intune, not Jamf");
        assert_eq!(p.rows[2].detail, "is on no service, not Jamf");
        assert_eq!(p.to_send(), ["ONSERVICE1"]);
        // Without the service's account, the devices' account.
        assert_eq!(p.account, Some(account(1)));
    }

    #[test]
    fn migration_actions_check_capability_and_running_migrations() {
        let deadline = OffsetDateTime::from_unix_timestamp(NOW + 10 * 86_400).unwrap();
        let mut incapable = device("INCAPABLE1", Some("S1"));
        incapable.migration_capable = Some(false);
        let mut unknown = device("UNKNOWN001", Some("S1"));
        unknown.migration_capable = None;
        let mut running = device("RUNNING001", Some("S2"));
        running.migration_status = Some("STARTED".into());
        running.migration_deadline = Some(NOW + 86_400);
        let mut done = device("FINISHED01", Some("S2"));
        done.migration_status = Some("SUCCESS".into());
        let devices = mirror(vec![
            incapable,
            unknown,
            running,
            done,
            device("CAPABLE001", Some("S1")),
        ]);
        let input =
            parse_serials("INCAPABLE1 UNKNOWN001 CAPABLE001 RUNNING001 FINISHED01").unwrap();
        let assign = JobAction::AssignWithMigrationDeadline {
            service_id: "S2".into(),
            deadline,
        };
        let p = classify(&input, &assign, &devices, &services(), None, NOW);
        assert_eq!(
            p.rows.iter().map(|r| r.group).collect::<Vec<_>>(),
            [
                Group::NotMigrationCapable,
                Group::NotMigrationCapable,
                Group::Move,
                Group::AlreadyThere,
                Group::AlreadyThere
            ]
        );
        assert!(p.rows[1].detail.contains("has not said"));

        let update = JobAction::UpdateMigrationDeadline { deadline };
        let p = classify(&input, &update, &devices, &services(), None, NOW);
        assert_eq!(p.to_send(), ["RUNNING001"]);
        assert_eq!(p.rows[4].group, Group::NoMigration);
        assert_eq!(p.rows[4].detail, "its last migration ended (SUCCESS)");
        assert_eq!(p.rows[0].detail, "no migration was requested for it");
        assert!(
            p.rows[3].detail.contains("deadline"),
            "{}",
            p.rows[3].detail
        );

        let p = classify(
            &input,
            &JobAction::CancelMigration,
            &devices,
            &services(),
            None,
            NOW,
        );
        assert_eq!(p.to_send(), ["RUNNING001"]);
        assert_eq!(p.rows[3].detail, "migration STARTED is cancelled");
        assert_eq!(
            Group::Migration.label(&JobAction::CancelMigration),
            "Migration cancelled"
        );
    }

    #[test]
    fn the_action_is_checked_against_services_and_deadline_rules() {
        let s = services();
        let at = |days: i64| OffsetDateTime::from_unix_timestamp(NOW + days * 86_400).unwrap();
        assert!(
            check_action(
                &JobAction::Assign {
                    service_id: "S1".into()
                },
                &s,
                NOW
            )
            .is_ok()
        );
        let err = check_action(
            &JobAction::Assign {
                service_id: "NOPE".into(),
            },
            &s,
            NOW,
        )
        .unwrap_err();
        assert_eq!(err.field, "service");
        let mut removed = s.clone();
        removed[0].absent_since = Some(NOW - 86_400);
        let err = check_action(
            &JobAction::Unassign {
                service_id: "S1".into(),
            },
            &removed,
            NOW,
        )
        .unwrap_err();
        assert!(err.message.contains("removed"), "{err}");

        let update = |deadline| JobAction::UpdateMigrationDeadline { deadline };
        assert!(check_action(&update(at(1)), &s, NOW).is_ok());
        assert!(check_action(&update(at(90)), &s, NOW).is_ok());
        let err = check_action(&update(at(91)), &s, NOW).unwrap_err();
        assert_eq!(err.field, "deadline");
        assert!(err.message.contains("more than 90 days"), "{err}");
        let err = check_action(&update(at(0)), &s, NOW).unwrap_err();
        assert!(err.message.contains("has passed"), "{err}");

        // A preview of a stale action is not sendable, whatever its rows.
        let input = parse_serials("CAPABLE001").unwrap();
        let mut d = device("CAPABLE001", None);
        d.migration_status = Some("REQUESTED".into());
        let p = classify(&input, &update(at(-1)), &mirror(vec![d]), &s, None, NOW);
        assert_eq!(p.to_send(), ["CAPABLE001"]);
        assert!(p.action_error.is_some());
        assert!(!p.sendable());
    }

    #[test]
    fn deadline_days_run_from_tomorrow_to_ninety_days_ahead() {
        // 08:00 UTC on some day.
        let now = 1_800_000_000 - 1_800_000_000 % 86_400 + 8 * 3600;
        let (min, max) = deadline_days(now);
        assert_eq!(
            (min - OffsetDateTime::from_unix_timestamp(now).unwrap().date()).whole_days(),
            1
        );
        assert_eq!((max - min).whole_days(), MAX_DEADLINE_DAYS - 1);
        let update = |d| JobAction::UpdateMigrationDeadline {
            deadline: deadline_of_day(d),
        };
        assert!(check_action(&update(min), &[], now).is_ok());
        assert!(check_action(&update(max), &[], now).is_ok());
        assert!(check_action(&update(max.next_day().unwrap()), &[], now).is_err());
        assert!(check_action(&update(min.previous_day().unwrap()), &[], now).is_err());
    }

    #[test]
    fn groups_round_trip_through_their_names() {
        for g in Group::ALL {
            assert_eq!(Group::parse(g.as_str()), Some(g));
        }
        assert_eq!(Group::parse("nope"), None);
    }
}
