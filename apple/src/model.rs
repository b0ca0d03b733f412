//! Shared wire types: JSON:API documents, resource objects, links, paging metadata, ID newtypes,
//! open enums and the date format.
//!
//! Design: every model tolerates unknown members (Apple adds attributes without versioning, SPEC
//! §1) and marks anything that may be absent or `null` as `Option`, because sparse fieldsets
//! (`fields[...]`) can drop any attribute. Enums are open: values we do not know decode into
//! `Unknown(String)` instead of failing the whole page (SPEC §16).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Dates on the wire: RFC 3339 in UTC, with or without fractional seconds (SPEC §3.5).
pub mod date {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;

    /// Parses `2025-04-30T22:05:14.192Z` as well as `2024-01-15T10:30:00Z`.
    pub fn parse(s: &str) -> Result<OffsetDateTime, time::error::Parse> {
        OffsetDateTime::parse(s, &Rfc3339)
    }

    /// Formats as Apple writes request dates: UTC with milliseconds, `2026-03-15T17:00:00.000Z`.
    pub fn format(t: OffsetDateTime) -> String {
        let fmt = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        t.to_offset(time::UtcOffset::UTC)
            .format(&fmt)
            .unwrap_or_else(|_| String::from("invalid-date"))
    }

    /// `deserialize_with` for `Option<OffsetDateTime>` fields (absent and `null` both give `None`).
    pub fn option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<OffsetDateTime>, D::Error> {
        let raw = Option::<String>::deserialize(d)?;
        match raw {
            None => Ok(None),
            Some(s) => parse(&s)
                .map(Some)
                .map_err(|e| serde::de::Error::custom(format!("invalid RFC 3339 date: {e}"))),
        }
    }

    /// `deserialize_with` for a required date.
    pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(|e| serde::de::Error::custom(format!("invalid RFC 3339 date: {e}")))
    }

    /// `serialize_with` for a required date.
    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*t))
    }
}

/// Declares an open string enum: known variants plus `Unknown(String)`, serialized as the wire
/// string. Unknown values never fail decoding.
macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this client does not know yet (Apple adds values without notice).
            Unknown(String),
        }

        impl $name {
            /// The wire string.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)+
                    Self::Unknown(s) => s.as_str(),
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $($wire => Self::$variant,)+
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str>>::deserialize(d)?;
                Ok(Self::from(s.as_ref()))
            }
        }
    };
}
pub(crate) use open_enum;

/// Declares a string ID newtype. IDs are opaque to this client; the newtype only stops a serial
/// number from being passed where a server id is expected.
macro_rules! id_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a raw id as received from Apple or typed by an operator.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }
            /// The raw id.
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// Unwraps the raw id.
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_newtype!(
    /// A device serial number; Apple uses it as the `orgDevices` resource id.
    SerialNumber
);
id_newtype!(
    /// A device management service id (32 upper-case hex characters in Apple's examples).
    MdmServerId
);
id_newtype!(
    /// An `orgDeviceActivities` id (lower-case UUID in Apple's examples).
    ActivityId
);
id_newtype!(
    /// A blueprint id.
    BlueprintId
);
id_newtype!(
    /// A configuration id.
    ConfigurationId
);
id_newtype!(
    /// A user id.
    UserId
);
id_newtype!(
    /// A user group id.
    UserGroupId
);
id_newtype!(
    /// An organizational unit id.
    OrganizationalUnitId
);
id_newtype!(
    /// An app id (the App Store Adam ID, e.g. `361309726`).
    AppId
);
id_newtype!(
    /// A package id.
    PackageId
);
id_newtype!(
    /// An audit event id.
    AuditEventId
);
id_newtype!(
    /// An `mdmDevices` id (format undocumented; the serial number in examples).
    MdmDeviceId
);
id_newtype!(
    /// An `appleCareCoverage` id (agreement number, or serial for the Limited Warranty).
    AppleCareCoverageId
);
id_newtype!(
    /// An opaque paging cursor from `meta.paging.nextCursor`. Persist it to resume a long pull.
    Cursor
);

/// A JSON:API resource object. `A` is the attribute struct; it is `Default` because sparse
/// fieldsets may omit `attributes` altogether.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(bound(deserialize = "I: Deserialize<'de>, A: Deserialize<'de> + Default"))]
pub struct Resource<I, A> {
    /// The resource type, e.g. `orgDevices`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The resource id.
    pub id: I,
    /// The attributes (all optional inside).
    #[serde(default)]
    pub attributes: A,
    /// Relationships by name.
    #[serde(default)]
    pub relationships: BTreeMap<String, Relationship>,
    /// `links.self`.
    #[serde(default)]
    pub links: Option<Links>,
}

/// A resource with its attributes as Apple sent them (see [`crate::ListRequest::raw`]).
pub type RawResource = Resource<String, serde_json::Map<String, serde_json::Value>>;

/// A relationship member of a resource object.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Relationship {
    /// `self`, `related` and (in POST/PATCH blueprint responses) `include` links.
    #[serde(default)]
    pub links: Option<Links>,
    /// Linkage data, present when the relationship was `include`d.
    #[serde(default)]
    pub data: Option<RelationshipData>,
    /// Paging of the linkage, present with `include`.
    #[serde(default)]
    pub meta: Option<Meta>,
}

/// Linkage inside a relationship: to-one or to-many.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum RelationshipData {
    /// To-many linkage.
    Many(Vec<ResourceIdentifier>),
    /// To-one linkage.
    One(ResourceIdentifier),
}

/// A `{type, id}` resource identifier, used in linkages and request bodies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResourceIdentifier {
    /// The resource type, e.g. `orgDevices`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The resource id.
    pub id: String,
}

impl ResourceIdentifier {
    /// Builds an identifier of `kind` with `id`.
    pub fn new(kind: &str, id: impl Into<String>) -> Self {
        Self {
            kind: kind.to_owned(),
            id: id.into(),
        }
    }
}

/// Any of Apple's link objects (`DocumentLinks`, `PagedDocumentLinks`, `ResourceLinks`,
/// `RelationshipLinks`): all members optional, unknown members ignored.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Links {
    /// `self`.
    #[serde(rename = "self", default)]
    pub self_: Option<String>,
    /// `first` (paged documents).
    #[serde(default)]
    pub first: Option<String>,
    /// `next` (paged documents); carries `?cursor=`.
    #[serde(default)]
    pub next: Option<String>,
    /// `related`.
    #[serde(default)]
    pub related: Option<String>,
    /// `include` (blueprint relationships in POST/PATCH responses).
    #[serde(default)]
    pub include: Option<String>,
}

/// Top-level or relationship `meta`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Meta {
    /// Paging information.
    #[serde(default)]
    pub paging: Option<Paging>,
}

/// `meta.paging`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Paging {
    /// Page size the server applied (may differ from the requested `limit`, SPEC §19.6).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Cursor of the next page; absent on the last page.
    #[serde(default)]
    pub next_cursor: Option<Cursor>,
    /// Total count; defined in the schema, not seen populated.
    #[serde(default)]
    pub total: Option<u64>,
}

/// A single-resource document (`XxxResponse`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct Document<T> {
    /// The primary data.
    pub data: T,
    /// Related resources requested with `include` (blueprints only).
    #[serde(default)]
    pub included: Vec<Included>,
    /// Document links.
    #[serde(default)]
    pub links: Option<Links>,
}

/// A collection or linkage document (`XxxsResponse`, `...LinkagesResponse`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct CollectionDocument<T> {
    /// The items of this page.
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    /// Related resources requested with `include`.
    #[serde(default)]
    pub included: Vec<Included>,
    /// `self`, `next`, `related`.
    #[serde(default)]
    pub links: Option<Links>,
    /// Paging information.
    #[serde(default)]
    pub meta: Option<Meta>,
}

/// A resource from a top-level `included` array, typed by its `type`.
#[derive(Debug, Clone, PartialEq)]
pub enum Included {
    /// An app.
    App(crate::resources::apps::App),
    /// A package.
    Package(crate::resources::packages::Package),
    /// A configuration.
    Configuration(crate::resources::configurations::Configuration),
    /// An organization device.
    OrgDevice(crate::resources::org_devices::OrgDevice),
    /// A user.
    User(crate::resources::users::User),
    /// A user group.
    UserGroup(crate::resources::user_groups::UserGroup),
    /// A device management service.
    MdmServer(crate::resources::mdm_servers::MdmServer),
    /// Any other type, kept raw.
    Other(serde_json::Value),
}

impl<'de> Deserialize<'de> for Included {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let v = serde_json::Value::deserialize(d)?;
        let kind = v
            .get("type")
            .and_then(|t| t.as_str())
            .unwrap_or_default()
            .to_owned();
        let e = |err: serde_json::Error| D::Error::custom(format!("included {kind}: {err}"));
        Ok(match kind.as_str() {
            "apps" => Self::App(serde_json::from_value(v).map_err(e)?),
            "packages" => Self::Package(serde_json::from_value(v).map_err(e)?),
            "configurations" => Self::Configuration(serde_json::from_value(v).map_err(e)?),
            "orgDevices" => Self::OrgDevice(serde_json::from_value(v).map_err(e)?),
            "users" => Self::User(serde_json::from_value(v).map_err(e)?),
            "userGroups" => Self::UserGroup(serde_json::from_value(v).map_err(e)?),
            "mdmServers" => Self::MdmServer(serde_json::from_value(v).map_err(e)?),
            _ => Self::Other(v),
        })
    }
}

/// Request body wrapper `{"data": ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataBody<T> {
    /// The primary data.
    pub data: T,
}

/// A to-one relationship in a request body: `{"data": {type, id}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToOne {
    /// The identifier.
    pub data: ResourceIdentifier,
}

/// A to-many relationship in a request body: `{"data": [{type, id}, ...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToMany {
    /// The identifiers.
    pub data: Vec<ResourceIdentifier>,
}

impl ToMany {
    /// Builds a to-many linkage of `kind` from ids.
    pub fn of<S: AsRef<str>>(kind: &str, ids: impl IntoIterator<Item = S>) -> Self {
        Self {
            data: ids
                .into_iter()
                .map(|i| ResourceIdentifier::new(kind, i.as_ref()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::org_devices::{OrgDevice, OrgDeviceStatus, ProductFamily};
    use time::macros::datetime;

    #[test]
    fn unknown_enum_values_are_kept_not_rejected() {
        let s: OrgDeviceStatus = serde_json::from_str("\"ASSIGNED\"").unwrap();
        assert_eq!(s, OrgDeviceStatus::Assigned);
        let s: OrgDeviceStatus = serde_json::from_str("\"PENDING_RELEASE\"").unwrap();
        assert_eq!(s, OrgDeviceStatus::Unknown("PENDING_RELEASE".to_owned()));
        assert_eq!(s.as_str(), "PENDING_RELEASE");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"PENDING_RELEASE\"");
        let f: ProductFamily = serde_json::from_str("\"iPhone\"").unwrap();
        assert_eq!(f, ProductFamily::IPhone);
        assert_eq!(f.to_string(), "iPhone");
    }

    #[test]
    fn dates_parse_with_and_without_fractional_seconds() {
        assert_eq!(
            date::parse("2024-01-15T10:30:00Z").unwrap(),
            datetime!(2024-01-15 10:30 UTC)
        );
        assert_eq!(
            date::parse("2025-04-30T22:05:14.192Z").unwrap(),
            datetime!(2025-04-30 22:05:14.192 UTC)
        );
        assert_eq!(
            date::parse("2025-04-30T23:05:14+01:00").unwrap(),
            datetime!(2025-04-30 22:05:14 UTC)
        );
        assert!(date::parse("2025-04-30").is_err());
        assert_eq!(
            date::format(datetime!(2026-03-15 18:00 +01:00)),
            "2026-03-15T17:00:00.000Z"
        );
    }

    #[test]
    fn absent_null_and_unknown_members_are_tolerated() {
        let d: OrgDevice = serde_json::from_value(serde_json::json!({
            "type": "orgDevices", "id": "A",
            "attributes": {"releasedFromOrgDateTime": null, "brandNewAttribute": {"x": 1}},
            "somethingNew": true
        }))
        .unwrap();
        assert_eq!(d.attributes.released_from_org_date_time, None);
        let bare: OrgDevice =
            serde_json::from_value(serde_json::json!({"type": "orgDevices", "id": "A"})).unwrap();
        assert_eq!(bare.attributes, Default::default());
    }

    #[test]
    fn both_purchase_source_spellings_are_read() {
        let a: OrgDevice = serde_json::from_value(serde_json::json!({
            "type": "orgDevices", "id": "A", "attributes": {"purchaseSourceUid": "-1"}
        }))
        .unwrap();
        assert_eq!(a.attributes.purchase_source(), Some("-1"));
        let b: OrgDevice = serde_json::from_value(serde_json::json!({
            "type": "orgDevices", "id": "A",
            "attributes": {"purchaseSourceId": "7", "purchaseSourceUid": "-1"}
        }))
        .unwrap();
        assert_eq!(b.attributes.purchase_source(), Some("7"));
    }
}
