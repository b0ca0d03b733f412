//! Packages (`packages`, SPEC §12.2, AB 2.0+ only, read-only; needs built-in management).
//!
//! Apple docs: <https://developer.apple.com/documentation/applebusinessapi/get-packages>

use serde::Deserialize;
use time::OffsetDateTime;

use crate::client::seg;
use crate::model::{PackageId, Resource, date};
use crate::request::{GetRequest, ListRequest, ResourceType};

/// A package.
pub type Package = Resource<PackageId, PackageAttributes>;

/// `Package.attributes`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageAttributes {
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Download URL of the `.pkg`.
    #[serde(default)]
    pub url: Option<String>,
    /// Hash.
    #[serde(default)]
    pub hash: Option<String>,
    /// Bundle ids inside.
    #[serde(default)]
    pub bundle_ids: Option<Vec<String>>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Version.
    #[serde(default)]
    pub version: Option<String>,
    /// Created.
    #[serde(default, deserialize_with = "date::option")]
    pub created_date_time: Option<OffsetDateTime>,
    /// Updated.
    #[serde(default, deserialize_with = "date::option")]
    pub updated_date_time: Option<OffsetDateTime>,
}

impl ResourceType for PackageAttributes {
    const TYPE: &'static str = "packages";
}

/// `GET /v1/packages`.
pub fn list() -> ListRequest<Package> {
    ListRequest::new("packages.list", "/v1/packages".to_owned())
}

/// `GET /v1/packages/{id}`.
pub fn get(id: &PackageId) -> GetRequest<Package> {
    GetRequest::new("packages.get", format!("/v1/packages/{}", seg(id.as_str())))
}
