//! Devices enrolled in Apple Business's built-in device management (`mdmDevices`, SPEC §8,
//! AB 2.0+ only).
//!
//! Apple docs: <https://developer.apple.com/documentation/applebusinessapi/get-apple-mdm-enrolled-devices>

use serde::Deserialize;
use time::OffsetDateTime;

use crate::client::seg;
use crate::model::{MdmDeviceId, Resource, SerialNumber, UserId, date, open_enum};
use crate::request::{GetRequest, ListRequest, ResourceType};
use crate::resources::org_devices::ProductFamily;

open_enum!(
    /// Device lock state.
    DeviceLockStatus { Locked = "LOCKED", Unlocked = "UNLOCKED" }
);
open_enum!(
    /// Device erase state.
    DeviceEraseStatus { NotErased = "NOT_ERASED", Erased = "ERASED" }
);
open_enum!(
    /// Lost Mode state.
    LostModeStatus { Enabled = "ENABLED", Disabled = "DISABLED" }
);

/// A device enrolled in built-in management.
pub type MdmDevice = Resource<MdmDeviceId, MdmDeviceAttributes>;

/// `MdmDevice.attributes`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MdmDeviceAttributes {
    /// Serial number.
    #[serde(default)]
    pub serial_number: Option<SerialNumber>,
    /// Device name.
    #[serde(default)]
    pub device_name: Option<String>,
    /// Product family.
    #[serde(default)]
    pub product_family: Option<ProductFamily>,
    /// Enrolled user (nullable).
    #[serde(default)]
    pub enrolled_user_id: Option<UserId>,
}

impl ResourceType for MdmDeviceAttributes {
    const TYPE: &'static str = "mdmDevices";
}

/// Details of an enrolled device (type `mdmDeviceDetails`).
pub type MdmDeviceDetail = Resource<MdmDeviceId, MdmDeviceDetailAttributes>;

/// `MdmDeviceDetail.attributes` (SPEC §8.2).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MdmDeviceDetailAttributes {
    /// Serial number.
    #[serde(default)]
    pub serial_number: Option<SerialNumber>,
    /// Device name.
    #[serde(default)]
    pub device_name: Option<String>,
    /// Model name.
    #[serde(default)]
    pub device_model: Option<String>,
    /// OS version, e.g. `26.4`.
    #[serde(default)]
    pub os_version: Option<String>,
    /// Platform (format undocumented).
    #[serde(default)]
    pub platform: Option<String>,
    /// IMEIs.
    #[serde(default)]
    pub imei: Option<Vec<String>>,
    /// MEIDs.
    #[serde(default)]
    pub meid: Option<Vec<String>>,
    /// Wi-Fi MAC.
    #[serde(default)]
    pub wifi_mac_address: Option<String>,
    /// Bluetooth MAC.
    #[serde(default)]
    pub bluetooth_mac_address: Option<String>,
    /// Ethernet MAC (a single string here, unlike `orgDevices`).
    #[serde(default)]
    pub ethernet_mac_address: Option<String>,
    /// Last check-in.
    #[serde(default, deserialize_with = "date::option")]
    pub last_check_in_date_time: Option<OffsetDateTime>,
    /// Firewall on.
    #[serde(default)]
    pub is_firewall_enabled: Option<bool>,
    /// FileVault on.
    #[serde(default)]
    pub is_file_vault_enabled: Option<bool>,
    /// Free storage, bytes.
    #[serde(default)]
    pub storage_free_capacity: Option<u64>,
    /// Total storage, bytes.
    #[serde(default)]
    pub storage_total_capacity: Option<u64>,
    /// Lock state.
    #[serde(default)]
    pub device_lock_status: Option<DeviceLockStatus>,
    /// Erase state.
    #[serde(default)]
    pub device_erase_status: Option<DeviceEraseStatus>,
    /// Lost Mode.
    #[serde(default)]
    pub lost_mode_status: Option<LostModeStatus>,
}

impl ResourceType for MdmDeviceDetailAttributes {
    const TYPE: &'static str = "mdmDeviceDetails";
}

/// `GET /v1/mdmDevices`.
pub fn list() -> ListRequest<MdmDevice> {
    ListRequest::new("mdmDevices.list", "/v1/mdmDevices".to_owned())
}

/// `GET /v1/mdmDevices/{id}/details`.
pub fn details(id: &MdmDeviceId) -> GetRequest<MdmDeviceDetail> {
    GetRequest::new(
        "mdmDevices.details",
        format!("/v1/mdmDevices/{}/details", seg(id.as_str())),
    )
}
