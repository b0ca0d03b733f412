//! Organization devices (`orgDevices`, SPEC §7): devices the organization owns, keyed by serial
//! number, with their AppleCare coverage, Activation Lock status and assigned server.
//!
//! Apple docs: <https://developer.apple.com/documentation/applebusinessapi/get-org-devices>

use time::OffsetDateTime;

use crate::client::seg;
use crate::model::{
    AppleCareCoverageId, MdmServerId, Resource, ResourceIdentifier, SerialNumber, date, open_enum,
};
use crate::request::{GetRequest, ListRequest, ResourceType};
use crate::resources::mdm_servers::MdmServer;

open_enum!(
    /// Assignment to a device management service.
    OrgDeviceStatus { Assigned = "ASSIGNED", Unassigned = "UNASSIGNED" }
);
open_enum!(
    /// Product family as Apple spells it (not upper snake case).
    ProductFamily {
        IPhone = "iPhone",
        IPad = "iPad",
        Mac = "Mac",
        AppleTv = "AppleTV",
        Watch = "Watch",
        Vision = "Vision",
    }
);
open_enum!(
    /// Where the device was bought.
    PurchaseSourceType { Apple = "APPLE", Reseller = "RESELLER", ManuallyAdded = "MANUALLY_ADDED" }
);
open_enum!(
    /// State of a no-erase DMS migration (2.3+).
    MdmMigrationStatus {
        Requested = "REQUESTED",
        Started = "STARTED",
        Success = "SUCCESS",
        Failed = "FAILED",
    }
);
open_enum!(
    /// AppleCare coverage status.
    AppleCareCoverageStatus { Active = "ACTIVE", Inactive = "INACTIVE" }
);
open_enum!(
    /// How a coverage is paid.
    AppleCarePaymentType {
        AbeSubscription = "ABE_SUBSCRIPTION",
        PaidUpFront = "PAID_UP_FRONT",
        Subscription = "SUBSCRIPTION",
        None = "NONE",
    }
);
open_enum!(
    /// Kind of Activation Lock.
    ActivationLockType { Mdm = "MDM", User = "USER", None = "NONE" }
);

/// An organization device. Apple docs: `OrgDevice`.
pub type OrgDevice = Resource<SerialNumber, OrgDeviceAttributes>;

/// `OrgDevice.attributes` (SPEC §7.3). Everything is optional: sparse fieldsets drop members and
/// older records lack newer ones.
#[derive(Debug, Clone, PartialEq, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgDeviceAttributes {
    /// Same as the resource id (missing in one Apple example).
    #[serde(default)]
    pub serial_number: Option<SerialNumber>,
    /// When the device joined the organization.
    #[serde(default, deserialize_with = "date::option")]
    pub added_to_org_date_time: Option<OffsetDateTime>,
    /// When it was released; only filled on the single-device GET.
    #[serde(default, deserialize_with = "date::option")]
    pub released_from_org_date_time: Option<OffsetDateTime>,
    /// Last change of the record.
    #[serde(default, deserialize_with = "date::option")]
    pub updated_date_time: Option<OffsetDateTime>,
    /// Marketing name, e.g. `iMac 21.5"`.
    #[serde(default)]
    pub device_model: Option<String>,
    /// Product family.
    #[serde(default)]
    pub product_family: Option<ProductFamily>,
    /// Model identifier, e.g. `iMac16,2`.
    #[serde(default)]
    pub product_type: Option<String>,
    /// e.g. `750GB`.
    #[serde(default)]
    pub device_capacity: Option<String>,
    /// e.g. `FD311LL/A`.
    #[serde(default)]
    pub part_number: Option<String>,
    /// Order number.
    #[serde(default)]
    pub order_number: Option<String>,
    /// Free text, may be empty.
    #[serde(default)]
    pub color: Option<String>,
    /// Assignment status.
    #[serde(default)]
    pub status: Option<OrgDeviceStatus>,
    /// Order date.
    #[serde(default, deserialize_with = "date::option")]
    pub order_date_time: Option<OffsetDateTime>,
    /// IMEIs (cellular devices).
    #[serde(default)]
    pub imei: Option<Vec<String>>,
    /// MEIDs.
    #[serde(default)]
    pub meid: Option<Vec<String>>,
    /// eSIM EID.
    #[serde(default)]
    pub eid: Option<String>,
    /// Wi-Fi MAC.
    #[serde(default)]
    pub wifi_mac_address: Option<String>,
    /// Bluetooth MAC.
    #[serde(default)]
    pub bluetooth_mac_address: Option<String>,
    /// Built-in Ethernet MACs (an array here, unlike on `mdmDeviceDetails`).
    #[serde(default)]
    pub ethernet_mac_address: Option<Vec<String>>,
    /// Apple Customer Number or Reseller Number, as documented (`purchaseSourceId`). Use
    /// [`OrgDeviceAttributes::purchase_source`] to also read the example spelling.
    #[serde(default)]
    pub purchase_source_id: Option<String>,
    /// The same value under the spelling Apple's examples use (`purchaseSourceUid`).
    #[serde(default)]
    pub purchase_source_uid: Option<String>,
    /// Purchase source type.
    #[serde(default)]
    pub purchase_source_type: Option<PurchaseSourceType>,
    /// Whether the device can migrate DMS without erase (2.3+).
    #[serde(default)]
    pub is_mdm_migration_capable: Option<bool>,
    /// Migration state (2.3+).
    #[serde(default)]
    pub mdm_migration_status: Option<MdmMigrationStatus>,
    /// Migration deadline (2.3+).
    #[serde(default, deserialize_with = "date::option")]
    pub mdm_migration_deadline_date_time: Option<OffsetDateTime>,
}

impl OrgDeviceAttributes {
    /// `purchaseSourceId`, falling back to `purchaseSourceUid` (SPEC §19.1).
    pub fn purchase_source(&self) -> Option<&str> {
        self.purchase_source_id
            .as_deref()
            .or(self.purchase_source_uid.as_deref())
    }
}

impl ResourceType for OrgDeviceAttributes {
    const TYPE: &'static str = "orgDevices";
}

/// An AppleCare coverage item (type `appleCareCoverage`, singular).
pub type AppleCareCoverage = Resource<AppleCareCoverageId, AppleCareCoverageAttributes>;

/// `AppleCareCoverage.attributes` (SPEC §7.6).
#[derive(Debug, Clone, PartialEq, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppleCareCoverageAttributes {
    /// Status.
    #[serde(default)]
    pub status: Option<AppleCareCoverageStatus>,
    /// Payment type.
    #[serde(default)]
    pub payment_type: Option<AppleCarePaymentType>,
    /// e.g. `Limited Warranty`, `AppleCare+`.
    #[serde(default)]
    pub description: Option<String>,
    /// Agreement number; null for the Limited Warranty.
    #[serde(default)]
    pub agreement_number: Option<String>,
    /// Start of coverage.
    #[serde(default, deserialize_with = "date::option")]
    pub start_date_time: Option<OffsetDateTime>,
    /// End of coverage; null for AppleCare+ for Business.
    #[serde(default, deserialize_with = "date::option")]
    pub end_date_time: Option<OffsetDateTime>,
    /// Renewable.
    #[serde(default)]
    pub is_renewable: Option<bool>,
    /// Canceled.
    #[serde(default)]
    pub is_canceled: Option<bool>,
    /// Cancel date.
    #[serde(default, deserialize_with = "date::option")]
    pub contract_cancel_date_time: Option<OffsetDateTime>,
}

impl ResourceType for AppleCareCoverageAttributes {
    const TYPE: &'static str = "appleCareCoverage";
}

/// Activation Lock status (type `activationLockStatus`, id = serial).
pub type ActivationLockStatus = Resource<SerialNumber, ActivationLockStatusAttributes>;

/// `ActivationLockStatus.attributes` (SPEC §7.7).
#[derive(Debug, Clone, PartialEq, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivationLockStatusAttributes {
    /// Device currently Activation Locked.
    #[serde(default)]
    pub is_locked: Option<bool>,
    /// Lock type (meaningful when locked).
    #[serde(default)]
    pub lock_type: Option<ActivationLockType>,
}

impl ResourceType for ActivationLockStatusAttributes {
    const TYPE: &'static str = "activationLockStatus";
}

fn device_path(serial: &SerialNumber) -> String {
    format!("/v1/orgDevices/{}", seg(serial.as_str()))
}

/// `GET /v1/orgDevices`.
pub fn list() -> ListRequest<OrgDevice> {
    ListRequest::new("orgDevices.list", "/v1/orgDevices".to_owned())
}

/// `GET /v1/orgDevices/{id}`.
pub fn get(serial: &SerialNumber) -> GetRequest<OrgDevice> {
    GetRequest::new("orgDevices.get", device_path(serial))
}

/// `GET /v1/orgDevices/{id}/appleCareCoverage` (one serial per call; no bulk endpoint).
pub fn apple_care_coverage(serial: &SerialNumber) -> ListRequest<AppleCareCoverage> {
    ListRequest::new(
        "orgDevices.appleCareCoverage",
        format!("{}/appleCareCoverage", device_path(serial)),
    )
}

/// `GET /v1/orgDevices/{id}/activationLockStatus` (AB 2.5+, ASM 1.7+).
pub fn activation_lock_status(serial: &SerialNumber) -> GetRequest<ActivationLockStatus> {
    GetRequest::new(
        "orgDevices.activationLockStatus",
        format!("{}/activationLockStatus", device_path(serial)),
    )
}

/// `GET /v1/orgDevices/{id}/relationships/assignedServer`: the server linkage; `data` is `None`
/// for an unassigned device.
pub fn assigned_server_id(serial: &SerialNumber) -> GetRequest<Option<ResourceIdentifier>> {
    GetRequest::new(
        "orgDevices.assignedServerId",
        format!("{}/relationships/assignedServer", device_path(serial)),
    )
}

/// `GET /v1/orgDevices/{id}/assignedServer`: the full server resource.
pub fn assigned_server(serial: &SerialNumber) -> GetRequest<MdmServer> {
    GetRequest::new(
        "orgDevices.assignedServer",
        format!("{}/assignedServer", device_path(serial)),
    )
}

/// Reads the server id out of an assigned-server linkage.
pub fn linkage_server_id(linkage: &Option<ResourceIdentifier>) -> Option<MdmServerId> {
    linkage.as_ref().map(|l| MdmServerId::new(l.id.clone()))
}
