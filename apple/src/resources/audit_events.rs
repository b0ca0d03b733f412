//! Audit events (`auditEvents`, SPEC §15, AB 2.0+ only).
//!
//! Attributes are polymorphic: `eventDataPropertyKey` names the one extra member carrying the
//! type-specific payload. Known payloads decode into [`AuditEventData`]; unknown ones (2.6 added
//! several whose type strings are not public) are kept raw, never rejected.
//!
//! Apple docs: <https://developer.apple.com/documentation/applebusinessapi/get-audit-events>

use std::collections::BTreeMap;

use serde::Deserialize;
use time::OffsetDateTime;

use crate::model::{AuditEventId, Resource, date, open_enum};
use crate::request::{ListRequest, ResourceType, set_param};
use crate::resources::org_devices::PurchaseSourceType;

open_enum!(
    /// Event type (the 33 values of the 2.4 list; later ones arrive as `Unknown`).
    AuditEventType {
        DeviceAddedToOrg = "DEVICE_ADDED_TO_ORG",
        DeviceRemovedFromOrg = "DEVICE_REMOVED_FROM_ORG",
        DeviceAssignedToServer = "DEVICE_ASSIGNED_TO_SERVER",
        DeviceUnassignedFromServer = "DEVICE_UNASSIGNED_FROM_SERVER",
        DeviceIsErased = "DEVICE_IS_ERASED",
        SubjectHasIcloudStoragePurchaseAdded = "SUBJECT_HAS_ICLOUD_STORAGE_PURCHASE_ADDED",
        SubjectHasIcloudStoragePurchaseRemoved = "SUBJECT_HAS_ICLOUD_STORAGE_PURCHASE_REMOVED",
        SubjectHasApplecarePurchaseAdded = "SUBJECT_HAS_APPLECARE_PURCHASE_ADDED",
        SubjectHasApplecarePurchaseRemoved = "SUBJECT_HAS_APPLECARE_PURCHASE_REMOVED",
        ConfigSettingsCreated = "CONFIG_SETTINGS_CREATED",
        ConfigSettingsUpdated = "CONFIG_SETTINGS_UPDATED",
        ConfigSettingsDeleted = "CONFIG_SETTINGS_DELETED",
        CollectionCreated = "COLLECTION_CREATED",
        CollectionUpdated = "COLLECTION_UPDATED",
        CollectionDeleted = "COLLECTION_DELETED",
        SubscriptionCreated = "SUBSCRIPTION_CREATED",
        SubscriptionUpdated = "SUBSCRIPTION_UPDATED",
        SubscriptionDeleted = "SUBSCRIPTION_DELETED",
        AccountRoleLocationChanged = "ACCOUNT_ROLE_LOCATION_CHANGED",
        AccountAdded = "ACCOUNT_ADDED",
        AccountDeleted = "ACCOUNT_DELETED",
        ExternalAccountAssociated = "EXTERNAL_ACCOUNT_ASSOCIATED",
        ExternalAccountDisassociated = "EXTERNAL_ACCOUNT_DISASSOCIATED",
        DomainAdded = "DOMAIN_ADDED",
        DomainRemoved = "DOMAIN_REMOVED",
        DomainVerified = "DOMAIN_VERIFIED",
        ApiAccountCreatedWithKey = "API_ACCOUNT_CREATED_WITH_KEY",
        ApiAccountCreatedWithoutKey = "API_ACCOUNT_CREATED_WITHOUT_KEY",
        ApiAccountDeleted = "API_ACCOUNT_DELETED",
        ApiAccountKeyGenerated = "API_ACCOUNT_KEY_GENERATED",
        ApiAccountKeyRevoked = "API_ACCOUNT_KEY_REVOKED",
        ApiAccountNameChanged = "API_ACCOUNT_NAME_CHANGED",
        ApiAccountRoleLocationChanged = "API_ACCOUNT_ROLE_LOCATION_CHANGED",
    }
);
open_enum!(
    /// Event category.
    AuditEventCategory {
        Organization = "ORGANIZATION",
        AccountActivity = "ACCOUNT_ACTIVITY",
        DeviceInventory = "DEVICE_INVENTORY",
        Purchasing = "PURCHASING",
        DeviceManagement = "DEVICE_MANAGEMENT",
    }
);
open_enum!(
    /// Who acted.
    AuditEventActorType { User = "USER", ApiUser = "API_USER", System = "SYSTEM" }
);
open_enum!(
    /// What was acted on.
    AuditEventSubjectType {
        Organization = "ORGANIZATION",
        User = "USER",
        Location = "LOCATION",
        Device = "DEVICE",
        Collection = "COLLECTION",
        DeviceManagementSetting = "DEVICE_MANAGEMENT_SETTING",
        Subscription = "SUBSCRIPTION",
        Domain = "DOMAIN",
        ApiUser = "API_USER",
        Role = "ROLE",
        Idp = "IDP",
        Invitation = "INVITATION",
    }
);
open_enum!(
    /// Result.
    AuditEventOutcome { Success = "SUCCESS", Failure = "FAILURE" }
);
open_enum!(
    /// Who released a device.
    ReleaseEntityType {
        User = "USER",
        Mdm = "MDM",
        Reseller = "RESELLER",
        Api = "API",
        Replacement = "REPLACEMENT",
    }
);

/// An audit event.
pub type AuditEvent = Resource<AuditEventId, AuditEventAttributes>;

/// `AuditEvent.attributes`: the common members plus the raw event-data members.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEventAttributes {
    /// When (UTC).
    #[serde(default, deserialize_with = "date::option")]
    pub event_date_time: Option<OffsetDateTime>,
    /// Event type.
    #[serde(default, rename = "type")]
    pub kind: Option<AuditEventType>,
    /// Category.
    #[serde(default)]
    pub category: Option<AuditEventCategory>,
    /// Actor type.
    #[serde(default)]
    pub actor_type: Option<AuditEventActorType>,
    /// Actor id.
    #[serde(default)]
    pub actor_id: Option<String>,
    /// Actor name (e.g. e-mail).
    #[serde(default)]
    pub actor_name: Option<String>,
    /// Subject type.
    #[serde(default)]
    pub subject_type: Option<AuditEventSubjectType>,
    /// Subject id.
    #[serde(default)]
    pub subject_id: Option<String>,
    /// Subject name.
    #[serde(default)]
    pub subject_name: Option<String>,
    /// Outcome.
    #[serde(default)]
    pub outcome: Option<AuditEventOutcome>,
    /// Groups related events.
    #[serde(default)]
    pub group_id: Option<String>,
    /// Name of the member carrying the payload, e.g. `eventDataDeviceAddedToOrg`.
    #[serde(default)]
    pub event_data_property_key: Option<String>,
    /// All other members, including the payload.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl ResourceType for AuditEventAttributes {
    const TYPE: &'static str = "auditEvents";
}

/// `{roleName, locationUniqueIdentifier}`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleLocation {
    /// Role.
    #[serde(default)]
    pub role_name: Option<String>,
    /// Location (organizational unit) id.
    #[serde(default)]
    pub location_unique_identifier: Option<String>,
}

/// Known event payloads.
#[derive(Debug, Clone, PartialEq)]
pub enum AuditEventData {
    /// `eventDataDeviceAddedToOrg`.
    DeviceAddedToOrg {
        /// Serial.
        serial_number: Option<String>,
        /// Purchase source type.
        purchase_source_type: Option<PurchaseSourceType>,
        /// Purchase source id.
        purchase_source_id: Option<String>,
    },
    /// `eventDataDeviceRemovedFromOrg`.
    DeviceRemovedFromOrg {
        /// Serial.
        serial_number: Option<String>,
        /// Releaser id (absent when a user released).
        release_entity_id: Option<String>,
        /// Releaser type.
        release_entity_type: Option<ReleaseEntityType>,
    },
    /// `eventDataDeviceAssignedToServer`.
    DeviceAssignedToServer {
        /// Serial.
        serial_number: Option<String>,
        /// Server name.
        target_server_name: Option<String>,
    },
    /// `eventDataDeviceUnassignedFromServer`.
    DeviceUnassignedFromServer {
        /// Serial.
        serial_number: Option<String>,
    },
    /// `eventDataConfigSettings{Created,Updated,Deleted}`.
    ConfigSettings {
        /// e.g. `WiFi`.
        config_type: Option<String>,
        /// Configuration id.
        config_id: Option<String>,
        /// Version.
        config_version: Option<String>,
    },
    /// `eventData{Account,ApiAccount}RoleLocationChanged`.
    RoleLocationChanged(Vec<RoleLocation>),
    /// `eventDataApiAccount{CreatedWithKey,KeyGenerated,KeyRevoked}`.
    ApiAccountKey {
        /// Key id.
        key_id: Option<String>,
    },
    /// `eventDataApiAccountNameChanged`.
    ApiAccountNameChanged {
        /// New name.
        new_name: Option<String>,
    },
    /// Purchase added/removed payloads.
    Subscription {
        /// Subscription id.
        subscription_id: Option<String>,
    },
    /// Anything else (including payload-less events), kept raw.
    Other {
        /// The property key.
        key: String,
        /// The raw payload (`null` if absent).
        value: serde_json::Value,
    },
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawData {
    serial_number: Option<String>,
    purchase_source_type: Option<PurchaseSourceType>,
    purchase_source_id: Option<String>,
    release_entity_id: Option<String>,
    release_entity_type: Option<ReleaseEntityType>,
    target_server_name: Option<String>,
    config_type: Option<String>,
    config_id: Option<String>,
    config_version: Option<String>,
    account_role_location_list: Option<Vec<RoleLocation>>,
    api_account_role_location_list: Option<Vec<RoleLocation>>,
    key_id: Option<String>,
    new_name: Option<String>,
    subscription_id: Option<String>,
}

impl AuditEventAttributes {
    /// The typed payload, if there is a property key. A payload of a known key that does not
    /// parse is returned as `Other`.
    pub fn event_data(&self) -> Option<AuditEventData> {
        let key = self.event_data_property_key.clone()?;
        let value = self
            .other
            .get(&key)
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        let raw: RawData = match serde_json::from_value(value.clone()) {
            Ok(r) => r,
            Err(_) => return Some(AuditEventData::Other { key, value }),
        };
        Some(match key.as_str() {
            "eventDataDeviceAddedToOrg" => AuditEventData::DeviceAddedToOrg {
                serial_number: raw.serial_number,
                purchase_source_type: raw.purchase_source_type,
                purchase_source_id: raw.purchase_source_id,
            },
            "eventDataDeviceRemovedFromOrg" => AuditEventData::DeviceRemovedFromOrg {
                serial_number: raw.serial_number,
                release_entity_id: raw.release_entity_id,
                release_entity_type: raw.release_entity_type,
            },
            "eventDataDeviceAssignedToServer" => AuditEventData::DeviceAssignedToServer {
                serial_number: raw.serial_number,
                target_server_name: raw.target_server_name,
            },
            "eventDataDeviceUnassignedFromServer" => AuditEventData::DeviceUnassignedFromServer {
                serial_number: raw.serial_number,
            },
            "eventDataConfigSettingsCreated"
            | "eventDataConfigSettingsUpdated"
            | "eventDataConfigSettingsDeleted" => AuditEventData::ConfigSettings {
                config_type: raw.config_type,
                config_id: raw.config_id,
                config_version: raw.config_version,
            },
            "eventDataAccountRoleLocationChanged" => AuditEventData::RoleLocationChanged(
                raw.account_role_location_list.unwrap_or_default(),
            ),
            "eventDataApiAccountRoleLocationChanged" => AuditEventData::RoleLocationChanged(
                raw.api_account_role_location_list.unwrap_or_default(),
            ),
            "eventDataApiAccountCreatedWithKey"
            | "eventDataApiAccountKeyGenerated"
            | "eventDataApiAccountKeyRevoked" => {
                AuditEventData::ApiAccountKey { key_id: raw.key_id }
            }
            "eventDataApiAccountNameChanged" => AuditEventData::ApiAccountNameChanged {
                new_name: raw.new_name,
            },
            "eventDataSubjectHasICloudStoragePurchaseAdded"
            | "eventDataSubjectHasICloudStoragePurchaseRemoved"
            | "eventDataSubjectHasAppleCarePurchaseAdded"
            | "eventDataSubjectHasAppleCarePurchaseRemoved" => AuditEventData::Subscription {
                subscription_id: raw.subscription_id,
            },
            _ => AuditEventData::Other { key, value },
        })
    }
}

/// `GET /v1/auditEvents` between `start` and `end` (both required by Apple).
pub fn list(start: OffsetDateTime, end: OffsetDateTime) -> ListRequest<AuditEvent> {
    ListRequest::new("auditEvents.list", "/v1/auditEvents".to_owned())
        .param("filter[startTimestamp]", date::format(start))
        .param("filter[endTimestamp]", date::format(end))
}

impl ListRequest<AuditEvent> {
    /// `filter[actorId]` (single value).
    pub fn actor_id(mut self, id: impl Into<String>) -> Self {
        set_param(&mut self.query, "filter[actorId]".to_owned(), id.into());
        self
    }

    /// `filter[subjectId]` (single value).
    pub fn subject_id(mut self, id: impl Into<String>) -> Self {
        set_param(&mut self.query, "filter[subjectId]".to_owned(), id.into());
        self
    }

    /// `filter[type]` (single value).
    pub fn event_type(mut self, kind: &AuditEventType) -> Self {
        set_param(
            &mut self.query,
            "filter[type]".to_owned(),
            kind.as_str().to_owned(),
        );
        self
    }
}
