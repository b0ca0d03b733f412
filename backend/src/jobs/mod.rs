//! Bulk device assignment: what a job asks Apple to do, the preview computed from the
//! mirror before anything is sent, and the crash-safe runner that sends it in chunks.
//!
//! Apple allows about ten device-activity POSTs an hour and reports some per-device failures
//! only in an activity's CSV log, so a job is planned and written to the database in full
//! before the first request, and every chunk's progress is persisted at each step.

pub mod drafts;
pub mod input;
pub mod preview;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What a job asks Apple to do with each of its devices (one `orgDeviceActivities` type).
///
/// Release from the organization is irreversible and deliberately not offered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobAction {
    /// Assign to a device management service (Apple id of the `mdmServers` resource).
    Assign { service_id: String },
    /// Unassign from the service the devices are on.
    Unassign { service_id: String },
    /// Assign and let the devices migrate without erasing by a deadline (at most 90 days ahead).
    AssignWithMigrationDeadline {
        service_id: String,
        #[serde(with = "time::serde::timestamp")]
        deadline: OffsetDateTime,
    },
    /// Move the deadline of a running migration.
    UpdateMigrationDeadline {
        #[serde(with = "time::serde::timestamp")]
        deadline: OffsetDateTime,
    },
    /// Cancel a running migration.
    CancelMigration,
}

impl JobAction {
    /// The stable name stored with a job and used in URLs and audit entries.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Assign { .. } => "assign",
            Self::Unassign { .. } => "unassign",
            Self::AssignWithMigrationDeadline { .. } => "assign_with_migration_deadline",
            Self::UpdateMigrationDeadline { .. } => "update_migration_deadline",
            Self::CancelMigration => "cancel_migration",
        }
    }

    /// The target service, for the actions that have one.
    pub fn service_id(&self) -> Option<&str> {
        match self {
            Self::Assign { service_id }
            | Self::Unassign { service_id }
            | Self::AssignWithMigrationDeadline { service_id, .. } => Some(service_id),
            Self::UpdateMigrationDeadline { .. } | Self::CancelMigration => None,
        }
    }

    /// The migration deadline, for the actions that carry one.
    pub fn deadline(&self) -> Option<OffsetDateTime> {
        match self {
            Self::AssignWithMigrationDeadline { deadline, .. }
            | Self::UpdateMigrationDeadline { deadline } => Some(*deadline),
            _ => None,
        }
    }

    /// Whether the devices end up on [`Self::service_id`] (checked after Apple's lag).
    pub fn assigns(&self) -> bool {
        matches!(
            self,
            Self::Assign { .. } | Self::AssignWithMigrationDeadline { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_round_trips_through_json_with_its_kind() {
        let deadline = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        for action in [
            JobAction::Assign {
                service_id: "S1".into(),
            },
            JobAction::Unassign {
                service_id: "S1".into(),
            },
            JobAction::AssignWithMigrationDeadline {
                service_id: "S2".into(),
                deadline,
            },
            JobAction::UpdateMigrationDeadline { deadline },
            JobAction::CancelMigration,
        ] {
            let json = serde_json::to_value(&action).unwrap();
            assert_eq!(json["kind"], action.kind());
            let back: JobAction = serde_json::from_value(json).unwrap();
            assert_eq!(back, action);
        }
    }
}
