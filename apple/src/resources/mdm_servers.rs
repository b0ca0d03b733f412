//! Device management services (`mdmServers`, SPEC §9): list, read, create, update, delete, and
//! the serial numbers assigned to a server. Create/update/delete are Apple Business only (2.1+).
//!
//! Apple docs: <https://developer.apple.com/documentation/applebusinessapi/get-mdm-servers>

use reqwest::Method;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::client::seg;
use crate::model::{
    DataBody, Document, MdmServerId, Resource, ResourceIdentifier, date, open_enum,
};
use crate::request::{GetRequest, ListRequest, ResourceType, WriteRequest};

open_enum!(
    /// Kind of server.
    MdmServerType {
        /// A third-party MDM.
        Mdm = "MDM",
        /// The Apple Configurator pseudo-server.
        AppleConfigurator = "APPLE_CONFIGURATOR",
        /// Apple Business's built-in management.
        AppleMdm = "APPLE_MDM",
    }
);
open_enum!(
    /// Server status.
    MdmServerStatus { Active = "ACTIVE", Inactive = "INACTIVE", Deleted = "DELETED" }
);
open_enum!(
    /// Product families a server gets by default.
    MdmServerProductFamily {
        AppleTv = "APPLE_TV",
        IPad = "IPAD",
        IPhone = "IPHONE",
        IPod = "IPOD",
        Mac = "MAC",
        Vision = "VISION",
        Watch = "WATCH",
    }
);

/// A device management service.
pub type MdmServer = Resource<MdmServerId, MdmServerAttributes>;

/// `MdmServer.attributes` (SPEC §9.3). Older servers and list responses carry only the first
/// four 1.x attributes.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MdmServerAttributes {
    /// Display name.
    #[serde(default)]
    pub server_name: Option<String>,
    /// Kind of server.
    #[serde(default)]
    pub server_type: Option<MdmServerType>,
    /// Created.
    #[serde(default, deserialize_with = "date::option")]
    pub created_date_time: Option<OffsetDateTime>,
    /// Updated.
    #[serde(default, deserialize_with = "date::option")]
    pub updated_date_time: Option<OffsetDateTime>,
    /// Whether the server may release its devices.
    #[serde(default)]
    pub enable_mdm_disown_flag: Option<bool>,
    /// Families auto-assigned to this server.
    #[serde(default)]
    pub default_product_families: Option<Vec<MdmServerProductFamily>>,
    /// Status.
    #[serde(default)]
    pub status: Option<MdmServerStatus>,
    /// Devices currently assigned.
    #[serde(default)]
    pub device_count: Option<u64>,
    /// Last contact with Apple.
    #[serde(default, deserialize_with = "date::option")]
    pub last_connected_date_time: Option<OffsetDateTime>,
    /// IP of the last contact.
    #[serde(default)]
    pub last_connected_ip: Option<String>,
}

impl ResourceType for MdmServerAttributes {
    const TYPE: &'static str = "mdmServers";
}

/// The server's public certificate, uploaded on create (write-only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MdmServerCertificate {
    /// File name, e.g. `marketing-mdm.cer`.
    pub name: String,
    /// Base64 of the certificate.
    pub data: String,
}

/// Attributes of `POST /v1/mdmServers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewMdmServer {
    /// Display name (required).
    pub server_name: String,
    /// Certificate (required).
    pub server_certificate: MdmServerCertificate,
    /// Allow the server to release devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_mdm_disown_flag: Option<bool>,
    /// Default product families (accepted on create: a SPEC guess).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_product_families: Option<Vec<MdmServerProductFamily>>,
}

/// Attributes of `PATCH /v1/mdmServers/{id}`: only the members set are changed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MdmServerPatch {
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// New disown flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_mdm_disown_flag: Option<bool>,
    /// New default product families.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_product_families: Option<Vec<MdmServerProductFamily>>,
}

/// `data` of the create request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MdmServerCreateData {
    /// Always `mdmServers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The attributes.
    pub attributes: NewMdmServer,
}

/// `data` of the update request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MdmServerUpdateData {
    /// Always `mdmServers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Must equal the path id.
    pub id: MdmServerId,
    /// The changes.
    pub attributes: MdmServerPatch,
}

/// `MdmServerCreateRequest`.
pub type MdmServerCreateRequest = DataBody<MdmServerCreateData>;
/// `MdmServerUpdateRequest`.
pub type MdmServerUpdateRequest = DataBody<MdmServerUpdateData>;

fn server_path(id: &MdmServerId) -> String {
    format!("/v1/mdmServers/{}", seg(id.as_str()))
}

/// `GET /v1/mdmServers`.
pub fn list() -> ListRequest<MdmServer> {
    ListRequest::new("mdmServers.list", "/v1/mdmServers".to_owned())
}

/// `GET /v1/mdmServers/{id}` (2.1+).
pub fn get(id: &MdmServerId) -> GetRequest<MdmServer> {
    GetRequest::new("mdmServers.get", server_path(id))
}

/// `POST /v1/mdmServers` (AB 2.1+). Answers 201 with the server.
pub fn create(server: NewMdmServer) -> WriteRequest<MdmServerCreateRequest, Document<MdmServer>> {
    let body = DataBody {
        data: MdmServerCreateData {
            kind: "mdmServers".to_owned(),
            attributes: server,
        },
    };
    WriteRequest::new(
        "mdmServers.create",
        Method::POST,
        "/v1/mdmServers".to_owned(),
        Some(body),
    )
}

/// `PATCH /v1/mdmServers/{id}` (AB 2.1+).
pub fn update(
    id: &MdmServerId,
    patch: MdmServerPatch,
) -> WriteRequest<MdmServerUpdateRequest, Document<MdmServer>> {
    let body = DataBody {
        data: MdmServerUpdateData {
            kind: "mdmServers".to_owned(),
            id: id.clone(),
            attributes: patch,
        },
    };
    WriteRequest::new(
        "mdmServers.update",
        Method::PATCH,
        server_path(id),
        Some(body),
    )
}

/// `DELETE /v1/mdmServers/{id}` (AB 2.1+). Fails while devices are assigned.
pub fn delete(id: &MdmServerId) -> WriteRequest<(), ()> {
    WriteRequest::new("mdmServers.delete", Method::DELETE, server_path(id), None)
}

/// `GET /v1/mdmServers/{id}/relationships/devices`: serial numbers assigned to the server.
pub fn device_ids(id: &MdmServerId) -> ListRequest<ResourceIdentifier> {
    ListRequest::new(
        "mdmServers.deviceIds",
        format!("{}/relationships/devices", server_path(id)),
    )
}
