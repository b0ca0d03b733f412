//! Organizational units (`organizationalUnits`, SPEC §11.3, AB 2.2+ only, read-only).
//!
//! Apple docs: <https://developer.apple.com/documentation/applebusinessapi/get-organizational-units>

use serde::Deserialize;
use time::OffsetDateTime;

use crate::client::seg;
use crate::model::{OrganizationalUnitId, Resource, ResourceIdentifier, date};
use crate::request::{GetRequest, ListRequest, ResourceType};

/// An organizational unit.
pub type OrganizationalUnit = Resource<OrganizationalUnitId, OrganizationalUnitAttributes>;

/// `OrganizationalUnit.attributes`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationalUnitAttributes {
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Created.
    #[serde(default, deserialize_with = "date::option")]
    pub created_date_time: Option<OffsetDateTime>,
    /// Updated.
    #[serde(default, deserialize_with = "date::option")]
    pub updated_date_time: Option<OffsetDateTime>,
}

impl ResourceType for OrganizationalUnitAttributes {
    const TYPE: &'static str = "organizationalUnits";
}

fn ou_path(id: &OrganizationalUnitId) -> String {
    format!("/v1/organizationalUnits/{}", seg(id.as_str()))
}

/// `GET /v1/organizationalUnits`.
pub fn list() -> ListRequest<OrganizationalUnit> {
    ListRequest::new(
        "organizationalUnits.list",
        "/v1/organizationalUnits".to_owned(),
    )
}

/// `GET /v1/organizationalUnits/{id}`.
pub fn get(id: &OrganizationalUnitId) -> GetRequest<OrganizationalUnit> {
    GetRequest::new("organizationalUnits.get", ou_path(id))
}

/// `GET /v1/organizationalUnits/{id}/relationships/users`.
pub fn user_ids(id: &OrganizationalUnitId) -> ListRequest<ResourceIdentifier> {
    ListRequest::new(
        "organizationalUnits.userIds",
        format!("{}/relationships/users", ou_path(id)),
    )
}
