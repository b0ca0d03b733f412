//! Apps (`apps`, SPEC §12.1, AB 2.0+ only, read-only; needs built-in management turned on).
//!
//! Apple docs: <https://developer.apple.com/documentation/applebusinessapi/get-apps>

use serde::Deserialize;

use crate::client::seg;
use crate::model::{AppId, Resource, open_enum};
use crate::request::{GetRequest, ListRequest, ResourceType};

open_enum!(
    /// Platforms an app supports.
    SupportedOs {
        Ios = "SUPPORTED_OS_IOS",
        IpadOs = "SUPPORTED_OS_IPADOS",
        MacOs = "SUPPORTED_OS_MACOS",
        TvOs = "SUPPORTED_OS_TVOS",
        WatchOs = "SUPPORTED_OS_WATCHOS",
        VisionOs = "SUPPORTED_OS_VISIONOS",
        Unspecified = "SUPPORTED_OS_UNSPECIFIED",
    }
);

/// An app (id = App Store Adam ID).
pub type App = Resource<AppId, AppAttributes>;

/// `App.attributes`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppAttributes {
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Bundle id.
    #[serde(default)]
    pub bundle_id: Option<String>,
    /// Website.
    #[serde(default)]
    pub website_url: Option<String>,
    /// Version.
    #[serde(default)]
    pub version: Option<String>,
    /// Supported platforms.
    #[serde(default, rename = "supportedOS")]
    pub supported_os: Option<Vec<SupportedOs>>,
    /// Custom app.
    #[serde(default)]
    pub is_custom_app: Option<bool>,
    /// App Store URL.
    #[serde(default)]
    pub app_store_url: Option<String>,
}

impl ResourceType for AppAttributes {
    const TYPE: &'static str = "apps";
}

/// `GET /v1/apps`.
pub fn list() -> ListRequest<App> {
    ListRequest::new("apps.list", "/v1/apps".to_owned())
}

/// `GET /v1/apps/{id}`.
pub fn get(id: &AppId) -> GetRequest<App> {
    GetRequest::new("apps.get", format!("/v1/apps/{}", seg(id.as_str())))
}
