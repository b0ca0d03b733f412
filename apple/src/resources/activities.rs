//! Organization device activities (`orgDeviceActivities`, SPEC §10): the asynchronous batch
//! jobs that assign, unassign, migrate and release devices.
//!
//! A create is a POST that changes real device state and is never re-sent automatically: after
//! a transport error or 5xx, look for the activity (or the device assignment) before trying
//! again. Per-device failures only show in the activity log CSV ([`crate::activity_log`]).
//!
//! Apple docs: <https://developer.apple.com/documentation/applebusinessapi/create-an-orgdeviceactivity>

use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::budget::Priority;
use crate::client::{Client, seg};
use crate::error::Result;
use crate::model::{
    ActivityId, DataBody, Document, MdmServerId, Resource, ResourceIdentifier, SerialNumber,
    ToMany, ToOne, date, open_enum,
};
use crate::request::{GetRequest, ResourceType, WriteRequest};

open_enum!(
    /// What an activity does.
    ActivityType {
        /// Assign devices to a server.
        AssignDevices = "ASSIGN_DEVICES",
        /// Unassign devices from a server.
        UnassignDevices = "UNASSIGN_DEVICES",
        /// Assign and schedule a no-erase migration by a deadline (2.3+).
        AssignDevicesWithMdmMigrationDeadline = "ASSIGN_DEVICES_WITH_MDM_MIGRATION_DEADLINE",
        /// Change the deadline of a running migration (2.3+).
        UpdateMdmMigrationDeadline = "UPDATE_MDM_MIGRATION_DEADLINE",
        /// Cancel a running migration (2.3+).
        CancelMdmMigration = "CANCEL_MDM_MIGRATION",
        /// Release devices from the organization; irreversible (AB 2.4+).
        ReleaseDevices = "RELEASE_DEVICES",
    }
);
open_enum!(
    /// Activity status.
    ActivityStatus {
        InProgress = "IN_PROGRESS",
        Completed = "COMPLETED",
        Stopped = "STOPPED",
        Failed = "FAILED",
    }
);
open_enum!(
    /// Finer activity status.
    ActivitySubStatus {
        Submitted = "SUBMITTED",
        PreProcessing = "PRE_PROCESSING",
        Pending = "PENDING",
        Processing = "PROCESSING",
        PostProcessing = "POST_PROCESSING",
        Stopping = "STOPPING",
        CompletedWithSuccess = "COMPLETED_WITH_SUCCESS",
        CompletedWithError = "COMPLETED_WITH_ERROR",
        CompletedWithFailure = "COMPLETED_WITH_FAILURE",
        CompletedPostProcessingFailed = "COMPLETED_POST_PROCESSING_FAILED",
    }
);

impl ActivityStatus {
    /// Whether polling can stop.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Completed | Self::Stopped | Self::Failed)
    }
}

/// An activity.
pub type OrgDeviceActivity = Resource<ActivityId, OrgDeviceActivityAttributes>;

/// `OrgDeviceActivity.attributes` (SPEC §10.2).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgDeviceActivityAttributes {
    /// Status.
    #[serde(default)]
    pub status: Option<ActivityStatus>,
    /// Sub-status.
    #[serde(default)]
    pub sub_status: Option<ActivitySubStatus>,
    /// Created.
    #[serde(default, deserialize_with = "date::option")]
    pub created_date_time: Option<OffsetDateTime>,
    /// Completed (only when `COMPLETED`).
    #[serde(default, deserialize_with = "date::option")]
    pub completed_date_time: Option<OffsetDateTime>,
    /// Pre-signed, expiring URL of the CSV log (only when `COMPLETED`). Treat as a secret.
    #[serde(default)]
    pub download_url: Option<String>,
    /// Not documented on the resource; some SDKs see it.
    #[serde(default)]
    pub activity_type: Option<ActivityType>,
}

impl ResourceType for OrgDeviceActivityAttributes {
    const TYPE: &'static str = "orgDeviceActivities";
}

/// `activityTypeMetadata`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityTypeMetadata {
    /// Migration deadline; at most 90 days ahead. Sent as UTC with milliseconds.
    #[serde(
        serialize_with = "date::serialize",
        deserialize_with = "date::required"
    )]
    pub mdm_migration_deadline_date_time: OffsetDateTime,
}

/// Attributes of the create request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewActivityAttributes {
    /// What to do.
    pub activity_type: ActivityType,
    /// Deadline for the migration types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_type_metadata: Option<ActivityTypeMetadata>,
}

/// Relationships of the create request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewActivityRelationships {
    /// Target server: required for assign/unassign/assign-with-migration, absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mdm_server: Option<ToOne>,
    /// Devices (`orgDevices` by serial).
    pub devices: ToMany,
}

/// `data` of `OrgDeviceActivityCreateRequest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewActivityData {
    /// Always `orgDeviceActivities`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Attributes.
    pub attributes: NewActivityAttributes,
    /// Relationships.
    pub relationships: NewActivityRelationships,
}

/// `OrgDeviceActivityCreateRequest`.
pub type ActivityCreateRequest = DataBody<NewActivityData>;

/// The create request of `POST /v1/orgDeviceActivities`.
pub type CreateActivity = WriteRequest<ActivityCreateRequest, Document<OrgDeviceActivity>>;

fn build(
    activity_type: ActivityType,
    server: Option<&MdmServerId>,
    serials: &[SerialNumber],
    deadline: Option<OffsetDateTime>,
) -> CreateActivity {
    let body = DataBody {
        data: NewActivityData {
            kind: "orgDeviceActivities".to_owned(),
            attributes: NewActivityAttributes {
                activity_type,
                activity_type_metadata: deadline.map(|d| ActivityTypeMetadata {
                    mdm_migration_deadline_date_time: d,
                }),
            },
            relationships: NewActivityRelationships {
                mdm_server: server.map(|s| ToOne {
                    data: ResourceIdentifier::new("mdmServers", s.as_str()),
                }),
                devices: ToMany::of("orgDevices", serials.iter().map(SerialNumber::as_str)),
            },
        },
    };
    WriteRequest::new(
        "orgDeviceActivities.create",
        Method::POST,
        "/v1/orgDeviceActivities".to_owned(),
        Some(body),
    )
}

/// `ASSIGN_DEVICES` to `server`.
pub fn assign(server: &MdmServerId, serials: &[SerialNumber]) -> CreateActivity {
    build(ActivityType::AssignDevices, Some(server), serials, None)
}

/// `UNASSIGN_DEVICES` from `server`.
pub fn unassign(server: &MdmServerId, serials: &[SerialNumber]) -> CreateActivity {
    build(ActivityType::UnassignDevices, Some(server), serials, None)
}

/// `ASSIGN_DEVICES_WITH_MDM_MIGRATION_DEADLINE` (2.3+).
pub fn assign_with_migration_deadline(
    server: &MdmServerId,
    serials: &[SerialNumber],
    deadline: OffsetDateTime,
) -> CreateActivity {
    build(
        ActivityType::AssignDevicesWithMdmMigrationDeadline,
        Some(server),
        serials,
        Some(deadline),
    )
}

/// `UPDATE_MDM_MIGRATION_DEADLINE` (2.3+). An earlier or past deadline is enforced at once.
pub fn update_migration_deadline(
    serials: &[SerialNumber],
    deadline: OffsetDateTime,
) -> CreateActivity {
    build(
        ActivityType::UpdateMdmMigrationDeadline,
        None,
        serials,
        Some(deadline),
    )
}

/// `CANCEL_MDM_MIGRATION` (2.3+).
pub fn cancel_migration(serials: &[SerialNumber]) -> CreateActivity {
    build(ActivityType::CancelMdmMigration, None, serials, None)
}

/// `RELEASE_DEVICES` (AB 2.4+): removes the devices from the organization for good.
pub fn release(serials: &[SerialNumber]) -> CreateActivity {
    build(ActivityType::ReleaseDevices, None, serials, None)
}

/// Any activity from a prepared body (e.g. one decoded from a job queue).
pub fn create(body: ActivityCreateRequest) -> CreateActivity {
    WriteRequest::new(
        "orgDeviceActivities.create",
        Method::POST,
        "/v1/orgDeviceActivities".to_owned(),
        Some(body),
    )
}

/// `GET /v1/orgDeviceActivities/{id}` (past 30 days only).
pub fn get(id: &ActivityId) -> GetRequest<OrgDeviceActivity> {
    GetRequest::new(
        "orgDeviceActivities.get",
        format!("/v1/orgDeviceActivities/{}", seg(id.as_str())),
    )
}

/// Polls `GET /v1/orgDeviceActivities/{id}` until the activity reaches a terminal status or
/// `max_wait` has passed, and returns the last state seen (check `status` for which). The
/// interval starts at `first_interval` and grows by half each poll, capped at 30 s; every poll
/// goes through the account budget at `priority`.
pub async fn wait_until_done(
    client: &Client,
    id: &ActivityId,
    first_interval: Duration,
    max_wait: Duration,
    priority: Priority,
) -> Result<OrgDeviceActivity> {
    let started = tokio::time::Instant::now();
    let mut interval = first_interval;
    loop {
        let activity = get(id).priority(priority).send(client).await?.data;
        let done = activity
            .attributes
            .status
            .as_ref()
            .is_some_and(ActivityStatus::is_terminal);
        if done || started.elapsed() + interval > max_wait {
            return Ok(activity);
        }
        tokio::time::sleep(interval).await;
        interval = (interval + interval / 2).min(Duration::from_secs(30));
    }
}
