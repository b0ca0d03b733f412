//! User groups (`userGroups`, SPEC §11.2, AB 2.0+ only, read-only).
//!
//! Apple docs: <https://developer.apple.com/documentation/applebusinessapi/get-user-groups>

use serde::Deserialize;
use time::OffsetDateTime;

use crate::client::seg;
use crate::model::{
    OrganizationalUnitId, Resource, ResourceIdentifier, UserGroupId, date, open_enum,
};
use crate::request::{GetRequest, ListRequest, ResourceType};

open_enum!(
    /// Group kind.
    UserGroupType { Standard = "STANDARD", Smart = "SMART" }
);
open_enum!(
    /// Group status.
    UserGroupStatus { Active = "ACTIVE" }
);

/// A user group.
pub type UserGroup = Resource<UserGroupId, UserGroupAttributes>;

/// `UserGroup.attributes`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserGroupAttributes {
    /// Owning unit.
    #[serde(default)]
    pub ou_id: Option<OrganizationalUnitId>,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Kind.
    #[serde(default, rename = "type")]
    pub kind: Option<UserGroupType>,
    /// Member count.
    #[serde(default)]
    pub total_member_count: Option<u64>,
    /// Status.
    #[serde(default)]
    pub status: Option<UserGroupStatus>,
    /// Created.
    #[serde(default, deserialize_with = "date::option")]
    pub created_date_time: Option<OffsetDateTime>,
    /// Updated.
    #[serde(default, deserialize_with = "date::option")]
    pub updated_date_time: Option<OffsetDateTime>,
}

impl ResourceType for UserGroupAttributes {
    const TYPE: &'static str = "userGroups";
}

fn group_path(id: &UserGroupId) -> String {
    format!("/v1/userGroups/{}", seg(id.as_str()))
}

/// `GET /v1/userGroups`.
pub fn list() -> ListRequest<UserGroup> {
    ListRequest::new("userGroups.list", "/v1/userGroups".to_owned())
}

/// `GET /v1/userGroups/{id}`.
pub fn get(id: &UserGroupId) -> GetRequest<UserGroup> {
    GetRequest::new("userGroups.get", group_path(id))
}

/// `GET /v1/userGroups/{id}/relationships/users`.
pub fn user_ids(id: &UserGroupId) -> ListRequest<ResourceIdentifier> {
    ListRequest::new(
        "userGroups.userIds",
        format!("{}/relationships/users", group_path(id)),
    )
}
