//! Configurations (`configurations`, SPEC §14, AB 2.0+ only). Only `CUSTOM_SETTING`
//! configurations can be created or updated; lists never carry the profile payload.
//!
//! Apple docs: <https://developer.apple.com/documentation/applebusinessapi/get-configurations>

use reqwest::Method;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::client::seg;
use crate::model::{ConfigurationId, DataBody, Document, Resource, date, open_enum};
use crate::request::{GetRequest, ListRequest, ResourceType, WriteRequest};

open_enum!(
    /// Configuration kind (23 known values).
    ConfigurationType {
        AirDrop = "AIR_DROP",
        AirPrint = "AIR_PRINT",
        AppAccess = "APP_ACCESS",
        AppleIntelligenceSiri = "APPLE_INTELLIGENCE_SIRI",
        ApplicationLayerFirewall = "APPLICATION_LAYER_FIREWALL",
        AuthenticationScreenLock = "AUTHENTICATION_SCREEN_LOCK",
        Certificate = "CERTIFICATE",
        ConferenceRoomDisplay = "CONFERENCE_ROOM_DISPLAY",
        ContentCaching = "CONTENT_CACHING",
        CustomProfile = "CUSTOM_PROFILE",
        CustomSetting = "CUSTOM_SETTING",
        DataManagement = "DATA_MANAGEMENT",
        EnergySaver = "ENERGY_SAVER",
        FileVault = "FILE_VAULT",
        GateKeeper = "GATE_KEEPER",
        ICloud = "ICLOUD",
        LoginWindow = "LOGIN_WINDOW",
        MediaManagement = "MEDIA_MANAGEMENT",
        SoftwareUpdate = "SOFTWARE_UPDATE",
        Vpn = "VPN",
        WebClip = "WEB_CLIP",
        WebFilter = "WEB_FILTER",
        Wifi = "WIFI",
    }
);
open_enum!(
    /// Target platform.
    ConfigurationPlatform {
        MacOs = "PLATFORM_MACOS",
        /// iOS and iPadOS.
        Ios = "PLATFORM_IOS",
        TvOs = "PLATFORM_TVOS",
        VisionOs = "PLATFORM_VISIONOS",
    }
);

/// A configuration.
pub type Configuration = Resource<ConfigurationId, ConfigurationAttributes>;

/// The payload of a `CUSTOM_SETTING` configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomSettingsValues {
    /// The `.mobileconfig` plist as an XML string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration_profile: Option<String>,
    /// File name; must end in `.mobileconfig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

/// `Configuration.attributes`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationAttributes {
    /// Kind.
    #[serde(default, rename = "type")]
    pub kind: Option<ConfigurationType>,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Platforms.
    #[serde(default)]
    pub configured_for_platforms: Option<Vec<ConfigurationPlatform>>,
    /// Payload; always null in lists and for non-custom types.
    #[serde(default)]
    pub custom_settings_values: Option<CustomSettingsValues>,
    /// Created.
    #[serde(default, deserialize_with = "date::option")]
    pub created_date_time: Option<OffsetDateTime>,
    /// Updated.
    #[serde(default, deserialize_with = "date::option")]
    pub updated_date_time: Option<OffsetDateTime>,
}

impl ResourceType for ConfigurationAttributes {
    const TYPE: &'static str = "configurations";
}

/// Attributes of a create/update body; `None` members are not sent.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationFields {
    /// Kind: `CUSTOM_SETTING` on create, not sent on update.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<ConfigurationType>,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Platforms (auto-detected from the payload when absent on create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configured_for_platforms: Option<Vec<ConfigurationPlatform>>,
    /// Payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_settings_values: Option<CustomSettingsValues>,
}

/// `data` of the create/update request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigurationWriteData {
    /// Always `configurations`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Present on update only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<ConfigurationId>,
    /// Attributes.
    pub attributes: ConfigurationFields,
}

/// `ConfigurationCreateRequest` / `ConfigurationUpdateRequest`.
pub type ConfigurationWriteRequest = DataBody<ConfigurationWriteData>;

fn config_path(id: &ConfigurationId) -> String {
    format!("/v1/configurations/{}", seg(id.as_str()))
}

/// `GET /v1/configurations` (payloads are always null here).
pub fn list() -> ListRequest<Configuration> {
    ListRequest::new("configurations.list", "/v1/configurations".to_owned())
}

/// `GET /v1/configurations/{id}` (with payload for `CUSTOM_SETTING`).
pub fn get(id: &ConfigurationId) -> GetRequest<Configuration> {
    GetRequest::new("configurations.get", config_path(id))
}

/// `POST /v1/configurations`: creates a `CUSTOM_SETTING` configuration from a profile.
pub fn create(
    name: impl Into<String>,
    platforms: Option<Vec<ConfigurationPlatform>>,
    profile: CustomSettingsValues,
) -> WriteRequest<ConfigurationWriteRequest, Document<Configuration>> {
    let body = DataBody {
        data: ConfigurationWriteData {
            kind: "configurations".to_owned(),
            id: None,
            attributes: ConfigurationFields {
                kind: Some(ConfigurationType::CustomSetting),
                name: Some(name.into()),
                configured_for_platforms: platforms,
                custom_settings_values: Some(profile),
            },
        },
    };
    WriteRequest::new(
        "configurations.create",
        Method::POST,
        "/v1/configurations".to_owned(),
        Some(body),
    )
}

/// `PATCH /v1/configurations/{id}`: at least one field must be set (Apple answers 4xx otherwise).
pub fn update(
    id: &ConfigurationId,
    fields: ConfigurationFields,
) -> WriteRequest<ConfigurationWriteRequest, Document<Configuration>> {
    let body = DataBody {
        data: ConfigurationWriteData {
            kind: "configurations".to_owned(),
            id: Some(id.clone()),
            attributes: fields,
        },
    };
    WriteRequest::new(
        "configurations.update",
        Method::PATCH,
        config_path(id),
        Some(body),
    )
}

/// `DELETE /v1/configurations/{id}`.
pub fn delete(id: &ConfigurationId) -> WriteRequest<(), ()> {
    WriteRequest::new(
        "configurations.delete",
        Method::DELETE,
        config_path(id),
        None,
    )
}
