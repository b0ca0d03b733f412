//! Blueprints (`blueprints`, SPEC §13, AB 2.0+ only): CRUD plus six membership relationships
//! (apps, configurations, packages, orgDevices, users, userGroups).
//!
//! Apple silently drops unknown related ids on create/update (SPEC §19.21): read the linkage
//! back when it matters.
//!
//! Apple docs: <https://developer.apple.com/documentation/applebusinessapi/get-blueprints>

use reqwest::Method;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::client::seg;
use crate::model::{
    BlueprintId, DataBody, Document, Resource, ResourceIdentifier, ToMany, date, open_enum,
};
use crate::request::{GetRequest, ListRequest, ResourceType, WriteRequest, join_fields, set_param};

open_enum!(
    /// Blueprint status.
    BlueprintStatus { Active = "ACTIVE", ToBeDeleted = "TO_BE_DELETED" }
);

/// A blueprint.
pub type Blueprint = Resource<BlueprintId, BlueprintAttributes>;

/// `Blueprint.attributes`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlueprintAttributes {
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Status.
    #[serde(default)]
    pub status: Option<BlueprintStatus>,
    /// Not enough app licenses for the scope.
    #[serde(default)]
    pub app_license_deficient: Option<bool>,
    /// Created.
    #[serde(default, deserialize_with = "date::option")]
    pub created_date_time: Option<OffsetDateTime>,
    /// Updated.
    #[serde(default, deserialize_with = "date::option")]
    pub updated_date_time: Option<OffsetDateTime>,
}

impl ResourceType for BlueprintAttributes {
    const TYPE: &'static str = "blueprints";
}

/// A membership relationship of a blueprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlueprintRelationship {
    /// `apps`.
    Apps,
    /// `configurations`.
    Configurations,
    /// `packages`.
    Packages,
    /// `orgDevices` (not `devices`).
    OrgDevices,
    /// `users`.
    Users,
    /// `userGroups`.
    UserGroups,
}

impl BlueprintRelationship {
    /// All six.
    pub const ALL: [Self; 6] = [
        Self::Apps,
        Self::Configurations,
        Self::Packages,
        Self::OrgDevices,
        Self::Users,
        Self::UserGroups,
    ];

    /// Relationship name and member resource type (they coincide).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Apps => "apps",
            Self::Configurations => "configurations",
            Self::Packages => "packages",
            Self::OrgDevices => "orgDevices",
            Self::Users => "users",
            Self::UserGroups => "userGroups",
        }
    }

    fn endpoints(self) -> [&'static str; 3] {
        match self {
            Self::Apps => [
                "blueprints.apps.ids",
                "blueprints.apps.add",
                "blueprints.apps.remove",
            ],
            Self::Configurations => [
                "blueprints.configurations.ids",
                "blueprints.configurations.add",
                "blueprints.configurations.remove",
            ],
            Self::Packages => [
                "blueprints.packages.ids",
                "blueprints.packages.add",
                "blueprints.packages.remove",
            ],
            Self::OrgDevices => [
                "blueprints.orgDevices.ids",
                "blueprints.orgDevices.add",
                "blueprints.orgDevices.remove",
            ],
            Self::Users => [
                "blueprints.users.ids",
                "blueprints.users.add",
                "blueprints.users.remove",
            ],
            Self::UserGroups => [
                "blueprints.userGroups.ids",
                "blueprints.userGroups.add",
                "blueprints.userGroups.remove",
            ],
        }
    }
}

/// Relationships in a create/update body; `None` members are not sent.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlueprintMembers {
    /// Apps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apps: Option<ToMany>,
    /// Configurations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configurations: Option<ToMany>,
    /// Packages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packages: Option<ToMany>,
    /// Devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_devices: Option<ToMany>,
    /// Users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<ToMany>,
    /// User groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_groups: Option<ToMany>,
}

impl BlueprintMembers {
    /// Sets one relationship to `ids`.
    pub fn set<S: AsRef<str>>(
        mut self,
        rel: BlueprintRelationship,
        ids: impl IntoIterator<Item = S>,
    ) -> Self {
        let linkage = Some(ToMany::of(rel.as_str(), ids));
        match rel {
            BlueprintRelationship::Apps => self.apps = linkage,
            BlueprintRelationship::Configurations => self.configurations = linkage,
            BlueprintRelationship::Packages => self.packages = linkage,
            BlueprintRelationship::OrgDevices => self.org_devices = linkage,
            BlueprintRelationship::Users => self.users = linkage,
            BlueprintRelationship::UserGroups => self.user_groups = linkage,
        }
        self
    }

    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Attributes of a create/update body; `None` members are not sent.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BlueprintFields {
    /// Name (required on create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `data` of `BlueprintCreateRequest` / `BlueprintUpdateRequest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlueprintWriteData {
    /// Always `blueprints`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Present on update only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<BlueprintId>,
    /// Attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<BlueprintFields>,
    /// Relationships.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationships: Option<BlueprintMembers>,
}

/// `BlueprintCreateRequest` / `BlueprintUpdateRequest`.
pub type BlueprintWriteRequest = DataBody<BlueprintWriteData>;

/// `BlueprintXxxLinkagesRequest`: `{"data": [{type, id}, ...]}`.
pub type LinkagesRequest = ToMany;

fn bp_path(id: &BlueprintId) -> String {
    format!("/v1/blueprints/{}", seg(id.as_str()))
}

/// `GET /v1/blueprints`.
pub fn list() -> ListRequest<Blueprint> {
    ListRequest::new("blueprints.list", "/v1/blueprints".to_owned())
}

/// `GET /v1/blueprints/{id}`.
pub fn get(id: &BlueprintId) -> GetRequest<Blueprint> {
    GetRequest::new("blueprints.get", bp_path(id))
}

impl ListRequest<Blueprint> {
    /// `include=`: related resources come back in [`crate::Page::included`].
    pub fn include(mut self, rels: &[BlueprintRelationship]) -> Self {
        set_param(
            &mut self.query,
            "include".to_owned(),
            join_fields(rels.iter().map(|r| r.as_str())),
        );
        self
    }

    /// `limit[<rel>]`: related items per relationship with `include` (1..=1000).
    pub fn include_limit(mut self, rel: BlueprintRelationship, limit: u32) -> Self {
        set_param(
            &mut self.query,
            format!("limit[{}]", rel.as_str()),
            limit.clamp(1, 1000).to_string(),
        );
        self
    }
}

impl GetRequest<Blueprint> {
    /// `include=`: related resources come back in [`Document::included`].
    pub fn include(mut self, rels: &[BlueprintRelationship]) -> Self {
        set_param(
            &mut self.query,
            "include".to_owned(),
            join_fields(rels.iter().map(|r| r.as_str())),
        );
        self
    }

    /// `limit[<rel>]` with `include` (1..=1000).
    pub fn include_limit(mut self, rel: BlueprintRelationship, limit: u32) -> Self {
        set_param(
            &mut self.query,
            format!("limit[{}]", rel.as_str()),
            limit.clamp(1, 1000).to_string(),
        );
        self
    }
}

/// `POST /v1/blueprints`. Answers 201 with the blueprint.
pub fn create(
    name: impl Into<String>,
    description: Option<String>,
    members: BlueprintMembers,
) -> WriteRequest<BlueprintWriteRequest, Document<Blueprint>> {
    let body = DataBody {
        data: BlueprintWriteData {
            kind: "blueprints".to_owned(),
            id: None,
            attributes: Some(BlueprintFields {
                name: Some(name.into()),
                description,
            }),
            relationships: (!members.is_empty()).then_some(members),
        },
    };
    WriteRequest::new(
        "blueprints.create",
        Method::POST,
        "/v1/blueprints".to_owned(),
        Some(body),
    )
}

/// `PATCH /v1/blueprints/{id}`: changes the attributes set in `fields`; relationships sent
/// presumably replace the existing set (undocumented, SPEC §13.3).
pub fn update(
    id: &BlueprintId,
    fields: BlueprintFields,
    members: BlueprintMembers,
) -> WriteRequest<BlueprintWriteRequest, Document<Blueprint>> {
    let body = DataBody {
        data: BlueprintWriteData {
            kind: "blueprints".to_owned(),
            id: Some(id.clone()),
            attributes: (fields != BlueprintFields::default()).then_some(fields),
            relationships: (!members.is_empty()).then_some(members),
        },
    };
    WriteRequest::new("blueprints.update", Method::PATCH, bp_path(id), Some(body))
}

/// `DELETE /v1/blueprints/{id}`.
pub fn delete(id: &BlueprintId) -> WriteRequest<(), ()> {
    WriteRequest::new("blueprints.delete", Method::DELETE, bp_path(id), None)
}

/// `GET /v1/blueprints/{id}/relationships/{rel}`: member ids.
pub fn member_ids(id: &BlueprintId, rel: BlueprintRelationship) -> ListRequest<ResourceIdentifier> {
    ListRequest::new(
        rel.endpoints()[0],
        format!("{}/relationships/{}", bp_path(id), rel.as_str()),
    )
}

/// `POST /v1/blueprints/{id}/relationships/{rel}`: adds members (204).
pub fn add_members<S: AsRef<str>>(
    id: &BlueprintId,
    rel: BlueprintRelationship,
    ids: impl IntoIterator<Item = S>,
) -> WriteRequest<LinkagesRequest, ()> {
    WriteRequest::new(
        rel.endpoints()[1],
        Method::POST,
        format!("{}/relationships/{}", bp_path(id), rel.as_str()),
        Some(ToMany::of(rel.as_str(), ids)),
    )
}

/// `DELETE /v1/blueprints/{id}/relationships/{rel}` with a body: removes members (204).
pub fn remove_members<S: AsRef<str>>(
    id: &BlueprintId,
    rel: BlueprintRelationship,
    ids: impl IntoIterator<Item = S>,
) -> WriteRequest<LinkagesRequest, ()> {
    WriteRequest::new(
        rel.endpoints()[2],
        Method::DELETE,
        format!("{}/relationships/{}", bp_path(id), rel.as_str()),
        Some(ToMany::of(rel.as_str(), ids)),
    )
}
