//! The `/v1` routes of SPEC §6, one small handler each. Handlers validate the
//! query, take the org lock once, render with [`crate::render`] and page with
//! [`crate::jsonapi`]. Auth, budgets and faults happen before, in
//! [`crate::faults::gate`].

use crate::activities;
use crate::faults::ClientId;
use crate::jsonapi::{
    Accepts, ApiError, ApiResult, Page, Query, apply_fields, created, no_content, ok,
    page_response, parse_limit, take_page,
};
use crate::model::*;
use crate::render::{self, LinkStyle};
use crate::state::Shared;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use std::convert::Infallible;
use std::sync::Arc;
use time::OffsetDateTime;

const DEVICE_FIELDS: &[&str] = &[
    "serialNumber",
    "addedToOrgDateTime",
    "releasedFromOrgDateTime",
    "updatedDateTime",
    "deviceModel",
    "productFamily",
    "productType",
    "deviceCapacity",
    "partNumber",
    "orderNumber",
    "color",
    "status",
    "orderDateTime",
    "imei",
    "meid",
    "eid",
    "purchaseSourceId",
    "purchaseSourceType",
    "wifiMacAddress",
    "bluetoothMacAddress",
    "ethernetMacAddress",
    "assignedServer",
    "appleCareCoverage",
    "isMdmMigrationCapable",
    "mdmMigrationStatus",
    "mdmMigrationDeadlineDateTime",
    "releaserId",
    "releaserEntityType",
];
const SERVER_FIELDS: &[&str] = &[
    "serverName",
    "serverType",
    "createdDateTime",
    "updatedDateTime",
    "devices",
    "enableMdmDisownFlag",
    "defaultProductFamilies",
    "status",
    "deviceCount",
    "lastConnectedDateTime",
    "lastConnectedIp",
];
const COVERAGE_FIELDS: &[&str] = &[
    "status",
    "paymentType",
    "description",
    "agreementNumber",
    "startDateTime",
    "endDateTime",
    "isRenewable",
    "isCanceled",
    "contractCancelDateTime",
];
const LOCK_FIELDS: &[&str] = &["isLocked", "lockType"];
const MDM_DEVICE_FIELDS: &[&str] = &[
    "serialNumber",
    "deviceName",
    "productFamily",
    "enrolledUserId",
    "details",
];
const MDM_DETAIL_FIELDS: &[&str] = &[
    "serialNumber",
    "deviceName",
    "deviceModel",
    "osVersion",
    "platform",
    "imei",
    "meid",
    "wifiMacAddress",
    "bluetoothMacAddress",
    "ethernetMacAddress",
    "lastCheckInDateTime",
    "isFirewallEnabled",
    "isFileVaultEnabled",
    "storageFreeCapacity",
    "storageTotalCapacity",
    "deviceLockStatus",
    "deviceEraseStatus",
    "lostModeStatus",
];
const USER_FIELDS: &[&str] = &[
    "firstName",
    "lastName",
    "middleName",
    "status",
    "managedAppleAccount",
    "isExternalUser",
    "roleOuList",
    "email",
    "employeeNumber",
    "costCenter",
    "division",
    "department",
    "jobTitle",
    "startDateTime",
    "createdDateTime",
    "updatedDateTime",
    "phoneNumbers",
];
const GROUP_FIELDS: &[&str] = &[
    "ouId",
    "name",
    "type",
    "totalMemberCount",
    "createdDateTime",
    "updatedDateTime",
    "status",
    "users",
];
const OU_FIELDS: &[&str] = &[
    "name",
    "description",
    "createdDateTime",
    "updatedDateTime",
    "users",
];
const APP_FIELDS: &[&str] = &[
    "name",
    "bundleId",
    "websiteUrl",
    "version",
    "supportedOS",
    "isCustomApp",
    "appStoreUrl",
];
const PACKAGE_FIELDS: &[&str] = &[
    "name",
    "url",
    "hash",
    "bundleIds",
    "description",
    "version",
    "createdDateTime",
    "updatedDateTime",
];
const BLUEPRINT_FIELDS: &[&str] = &[
    "name",
    "description",
    "status",
    "createdDateTime",
    "updatedDateTime",
    "appLicenseDeficient",
    "apps",
    "packages",
    "configurations",
    "orgDevices",
    "users",
    "userGroups",
];
const CONFIG_FIELDS: &[&str] = &[
    "type",
    "name",
    "configuredForPlatforms",
    "customSettingsValues",
    "createdDateTime",
    "updatedDateTime",
];
/// `eventData*` keys are accepted by prefix (see `Query::check`).
const AUDIT_FIELDS: &[&str] = &[
    "eventDateTime",
    "type",
    "category",
    "actorType",
    "actorId",
    "actorName",
    "subjectType",
    "subjectId",
    "subjectName",
    "outcome",
    "groupId",
    "eventDataPropertyKey",
    "eventData*",
];
const PLATFORMS: &[&str] = &[
    "PLATFORM_MACOS",
    "PLATFORM_IOS",
    "PLATFORM_TVOS",
    "PLATFORM_VISIONOS",
];
const SERVER_FAMILIES: &[&str] = &[
    "APPLE_TV", "IPAD", "IPHONE", "IPOD", "MAC", "VISION", "WATCH",
];

/// Per-request context: shared state, parsed query, authenticated client, path.
pub(crate) struct Ctx {
    pub shared: Arc<Shared>,
    pub query: Query,
    pub client: String,
    pub path: String,
}

impl FromRequestParts<Arc<Shared>> for Ctx {
    type Rejection = Infallible;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<Shared>,
    ) -> Result<Self, Infallible> {
        Ok(Self {
            shared: state.clone(),
            query: Query::parse(parts.uri.query()),
            client: parts
                .extensions
                .get::<ClientId>()
                .map(|c| c.0.clone())
                .unwrap_or_default(),
            path: parts.uri.path().to_string(),
        })
    }
}

impl Ctx {
    pub(crate) fn base(&self) -> String {
        self.shared.base_url.clone()
    }

    /// Renders one page, counting it per cursor and applying the echo-cursor fault.
    fn page(
        &self,
        list: &str,
        limit: usize,
        next: Option<u64>,
        data: Vec<Value>,
        extra_links: &[(&str, String)],
    ) -> Response {
        page_response(self.page_doc(list, limit, next, data, extra_links))
    }

    fn page_doc(
        &self,
        list: &str,
        limit: usize,
        next: Option<u64>,
        data: Vec<Value>,
        extra_links: &[(&str, String)],
    ) -> Value {
        let cursor = self.query.get("cursor");
        let key = cursor
            .map(String::from)
            .unwrap_or_else(|| format!("<first>:{}", self.path));
        *self.shared.stats().pages_per_cursor.entry(key).or_default() += 1;
        let echo = match (cursor, next) {
            (Some(c), Some(_)) => {
                let mut f = self.shared.faults();
                std::mem::take(&mut f.echo_armed).then(|| c.to_string())
            }
            _ => None,
        };
        let base = self.base();
        let page = Page {
            base: &base,
            path: &self.path,
            query: &self.query,
            limit,
            list,
            next,
            next_cursor_override: echo,
        };
        page.document(data, extra_links)
    }

    fn single(&self, mut data: Value, ty: &str) -> Response {
        apply_fields(&mut data, self.query.fields(ty).as_deref());
        ok(json!({ "data": data, "links": { "self": format!("{}{}", self.base(), self.path) } }))
    }

    fn actor(&self) -> Actor {
        Actor::api(&self.client)
    }
}

fn accepts<'a>(paged: bool, fields: &'a [(&'a str, &'a [&'a str])]) -> Accepts<'a> {
    Accepts {
        paged,
        fields,
        extra: &[],
    }
}

fn parse_body(body: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("The request body is not valid JSON: {e}")))
}

fn require_builtin(org: &Org) -> ApiResult<()> {
    if org.builtin_mdm {
        Ok(())
    } else {
        // [guess] apps/packages need built-in device management; 403 when it is off.
        Err(ApiError::forbidden(
            "Built-in device management is not enabled for this organization",
        ))
    }
}

// ----- orgDevices -----

async fn org_devices(ctx: Ctx) -> ApiResult {
    ctx.query.check(&Accepts {
        paged: true,
        fields: &[("orgDevices", DEVICE_FIELDS)],
        extra: &["filter[serialNumber]"],
    })?;
    let (limit, start) = (ctx.query.limit()?, ctx.query.cursor("orgDevices")?);
    let fields = ctx.query.fields("orgDevices");
    // [sdk] filter[serialNumber] is undocumented; we accept a comma-separated list.
    let filter: Option<Vec<String>> = ctx
        .query
        .get("filter[serialNumber]")
        .map(|v| v.split(',').map(String::from).collect());
    let org = ctx.shared.settled();
    let base = ctx.base();
    let (data, next) = match &filter {
        Some(serials) => {
            let mut idx: Vec<u32> = serials
                .iter()
                .filter_map(|s| org.device(s))
                .filter(|(_, d)| !d.released())
                .map(|(i, _)| i)
                .collect();
            idx.sort_unstable();
            take_page(idx.into_iter().map(|i| (u64::from(i), i)), start, limit)
        }
        None => take_page(
            org.devices
                .iter()
                .enumerate()
                .skip(start as usize)
                .filter(|(_, d)| !d.released())
                .map(|(i, _)| (i as u64, i as u32)),
            start,
            limit,
        ),
    };
    let data = data
        .into_iter()
        .map(|i| {
            let mut r = render::device_resource(&org, i, &base, false);
            apply_fields(&mut r, fields.as_deref());
            r
        })
        .collect();
    drop(org);
    Ok(ctx.page("orgDevices", limit, next, data, &[]))
}

fn find_device(org: &Org, id: &str) -> ApiResult<u32> {
    org.device(id)
        .map(|(i, _)| i)
        .ok_or_else(|| ApiError::not_found("orgDevices", id))
}

fn find_present_device(org: &Org, id: &str) -> ApiResult<u32> {
    // [guess] released devices only remain visible on the single-device GET.
    org.device(id)
        .filter(|(_, d)| !d.released())
        .map(|(i, _)| i)
        .ok_or_else(|| ApiError::not_found("orgDevices", id))
}

async fn org_device(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    ctx.query
        .check(&accepts(false, &[("orgDevices", DEVICE_FIELDS)]))?;
    let org = ctx.shared.settled();
    let i = find_device(&org, &id)?;
    let r = render::device_resource(&org, i, &ctx.base(), true);
    drop(org);
    Ok(ctx.single(r, "orgDevices"))
}

async fn applecare(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    ctx.query
        .check(&accepts(true, &[("appleCareCoverage", COVERAGE_FIELDS)]))?;
    let (limit, start) = (ctx.query.limit()?, ctx.query.cursor("appleCareCoverage")?);
    let fields = ctx.query.fields("appleCareCoverage");
    let org = ctx.shared.settled();
    let i = find_present_device(&org, &id)?;
    let items = render::coverage(&org, i, OffsetDateTime::now_utc());
    drop(org);
    let (data, next) = take_page(
        items.into_iter().enumerate().map(|(p, v)| (p as u64, v)),
        start,
        limit,
    );
    let data = data.into_iter().map(|mut r| {
        apply_fields(&mut r, fields.as_deref());
        r
    });
    Ok(ctx.page("appleCareCoverage", limit, next, data.collect(), &[]))
}

async fn activation_lock(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    ctx.query
        .check(&accepts(false, &[("activationLockStatus", LOCK_FIELDS)]))?;
    let org = ctx.shared.settled();
    let i = find_present_device(&org, &id)?;
    let attrs = render::activation_lock(&org, i);
    drop(org);
    Ok(ctx.single(
        json!({ "type": "activationLockStatus", "id": id, "attributes": attrs }),
        "activationLockStatus",
    ))
}

async fn assigned_server_linkage(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    ctx.query.check(&accepts(false, &[]))?;
    let org = ctx.shared.settled();
    let i = find_present_device(&org, &id)?;
    let data = org
        .server(org.devices[i as usize].server)
        .map(|s| json!({ "type": "mdmServers", "id": s.id }))
        .unwrap_or(Value::Null);
    let url = format!("{}/v1/orgDevices/{id}", ctx.base());
    Ok(ok(
        json!({ "data": data, "links": { "self": format!("{url}/relationships/assignedServer"), "related": format!("{url}/assignedServer") } }),
    ))
}

async fn assigned_server(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    ctx.query
        .check(&accepts(false, &[("mdmServers", SERVER_FIELDS)]))?;
    let org = ctx.shared.settled();
    let i = find_present_device(&org, &id)?;
    // [guess] an unassigned device answers 404 here.
    let s = org
        .server(org.devices[i as usize].server)
        .ok_or_else(|| ApiError::not_found("mdmServers", "assignedServer"))?;
    let r = render::server_resource(s, &ctx.base());
    drop(org);
    Ok(ctx.single(r, "mdmServers"))
}

// ----- mdmDevices -----

async fn mdm_devices(ctx: Ctx) -> ApiResult {
    ctx.query
        .check(&accepts(true, &[("mdmDevices", MDM_DEVICE_FIELDS)]))?;
    let (limit, start) = (ctx.query.limit()?, ctx.query.cursor("mdmDevices")?);
    let fields = ctx.query.fields("mdmDevices");
    let org = ctx.shared.settled();
    let base = ctx.base();
    let (data, next) = take_page(
        (start as usize..org.devices.len())
            .filter(|&i| render::is_mdm_device(&org, i as u32))
            .map(|i| (i as u64, i as u32)),
        start,
        limit,
    );
    let data = data
        .into_iter()
        .map(|i| {
            let mut r = render::mdm_device(&org, i, &base);
            apply_fields(&mut r, fields.as_deref());
            r
        })
        .collect();
    drop(org);
    Ok(ctx.page("mdmDevices", limit, next, data, &[]))
}

fn find_mdm_device(org: &Org, id: &str) -> ApiResult<u32> {
    org.device(id)
        .map(|(i, _)| i)
        .filter(|&i| render::is_mdm_device(org, i))
        .ok_or_else(|| ApiError::not_found("mdmDevices", id))
}

async fn mdm_device(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    ctx.query
        .check(&accepts(false, &[("mdmDevices", MDM_DEVICE_FIELDS)]))?;
    let org = ctx.shared.settled();
    let i = find_mdm_device(&org, &id)?;
    let r = render::mdm_device(&org, i, &ctx.base());
    drop(org);
    Ok(ctx.single(r, "mdmDevices"))
}

async fn mdm_device_details(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    ctx.query
        .check(&accepts(false, &[("mdmDeviceDetails", MDM_DETAIL_FIELDS)]))?;
    let org = ctx.shared.settled();
    let i = find_mdm_device(&org, &id)?;
    let r = render::mdm_details(&org, i, &ctx.base(), OffsetDateTime::now_utc());
    drop(org);
    Ok(ctx.single(r, "mdmDeviceDetails"))
}

// ----- mdmServers -----

async fn mdm_servers(ctx: Ctx) -> ApiResult {
    ctx.query
        .check(&accepts(true, &[("mdmServers", SERVER_FIELDS)]))?;
    let (limit, start) = (ctx.query.limit()?, ctx.query.cursor("mdmServers")?);
    let fields = ctx.query.fields("mdmServers");
    let org = ctx.shared.settled();
    let base = ctx.base();
    let (data, next) = take_page(
        org.servers
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (i as u64, s))),
        start,
        limit,
    );
    let data = data
        .into_iter()
        .map(|s| {
            let mut r = render::server_resource(s, &base);
            apply_fields(&mut r, fields.as_deref());
            r
        })
        .collect();
    drop(org);
    Ok(ctx.page("mdmServers", limit, next, data, &[]))
}

fn find_server(org: &Org, id: &str) -> ApiResult<u16> {
    org.server_index(id)
        .ok_or_else(|| ApiError::not_found("mdmServers", id))
}

async fn mdm_server(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    ctx.query
        .check(&accepts(false, &[("mdmServers", SERVER_FIELDS)]))?;
    let org = ctx.shared.settled();
    let s = find_server(&org, &id)?;
    let r = render::server_resource(org.server(s).expect("found"), &ctx.base());
    drop(org);
    Ok(ctx.single(r, "mdmServers"))
}

fn families(v: &Value, pointer: &str) -> ApiResult<Option<Vec<String>>> {
    match v {
        Value::Null => Ok(None),
        Value::Array(a) => a
            .iter()
            .map(|f| {
                f.as_str()
                    .filter(|f| SERVER_FAMILIES.contains(f))
                    .map(String::from)
            })
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| {
                ApiError::unprocessable(
                    pointer,
                    "defaultProductFamilies holds an unknown product family",
                )
            }),
        _ => Err(ApiError::unprocessable(
            pointer,
            "defaultProductFamilies must be an array",
        )),
    }
}

async fn create_mdm_server(ctx: Ctx, body: Bytes) -> ApiResult {
    ctx.query.check(&accepts(false, &[]))?;
    let v = parse_body(&body)?;
    let d = &v["data"];
    if d["type"] != "mdmServers" {
        return Err(ApiError::conflict(
            "ENTITY_ERROR.ATTRIBUTE.INVALID",
            "/data/type",
            "The resource type must be 'mdmServers'",
        ));
    }
    let a = &d["attributes"];
    let name = a["serverName"]
        .as_str()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::unprocessable("/data/attributes/serverName", "serverName is required")
        })?;
    let cert = &a["serverCertificate"];
    let (Some(_), Some(data)) = (cert["name"].as_str(), cert["data"].as_str()) else {
        return Err(ApiError::unprocessable(
            "/data/attributes/serverCertificate",
            "serverCertificate with name and data is required",
        ));
    };
    // [guess] a certificate that is not base64 is unprocessable.
    let b64 = data.trim_end_matches('=').trim_end_matches('.');
    if b64.is_empty()
        || !b64
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'\n' | b'\r'))
    {
        return Err(ApiError::unprocessable(
            "/data/attributes/serverCertificate/data",
            "serverCertificate.data is not a base64 X.509 certificate",
        ));
    }
    let fams = families(
        &a["defaultProductFamilies"],
        "/data/attributes/defaultProductFamilies",
    )?;
    let now = OffsetDateTime::now_utc();
    let id = ctx.shared.uuid().replace('-', "").to_uppercase();
    let mut org = ctx.shared.settled_mut();
    if org.servers.iter().flatten().any(|s| s.name == name) {
        // [guess] duplicate names conflict.
        return Err(ApiError::conflict(
            "ENTITY_ERROR.ATTRIBUTE.INVALID",
            "/data/attributes/serverName",
            format!("A device management service named '{name}' already exists"),
        ));
    }
    let server = Server {
        id: id.clone(),
        name: name.to_string(),
        server_type: "MDM",
        disown: a["enableMdmDisownFlag"].as_bool().unwrap_or(false),
        default_families: fams.unwrap_or_default(),
        last_connected: now,
        last_ip: "0.0.0.0".into(),
        created: now,
        updated: now,
        device_count: 0,
    };
    let r = render::server_resource(&server, &ctx.base());
    org.servers.push(Some(server));
    let actor = ctx.actor();
    // [guess] no documented audit type for DMS changes; recorded as device-management settings.
    org.audit_push(
        now,
        "CONFIG_SETTINGS_CREATED",
        "DEVICE_MANAGEMENT",
        &actor,
        ("DEVICE_MANAGEMENT_SETTING", &id, name),
        "eventDataConfigSettingsCreated",
        json!({"configType": "MDM_SERVER", "configId": id, "configVersion": "1"}),
    );
    Ok(created(
        json!({ "data": r, "links": { "self": format!("{}/v1/mdmServers/{id}", ctx.base()) } }),
    ))
}

fn check_type_and_id(d: &Value, ty: &str, id: &str) -> ApiResult<()> {
    if d["type"] != ty {
        return Err(ApiError::conflict(
            "ENTITY_ERROR.ATTRIBUTE.INVALID",
            "/data/type",
            format!("The resource type must be '{ty}'"),
        ));
    }
    if d["id"] != id {
        return Err(ApiError::conflict(
            "ENTITY_ERROR.ATTRIBUTE.INVALID",
            "/data/id",
            "The id in the body does not match the id in the path",
        ));
    }
    Ok(())
}

async fn update_mdm_server(ctx: Ctx, Path(id): Path<String>, body: Bytes) -> ApiResult {
    ctx.query.check(&accepts(false, &[]))?;
    let v = parse_body(&body)?;
    let now = OffsetDateTime::now_utc();
    let mut org = ctx.shared.settled_mut();
    let idx = find_server(&org, &id)?;
    check_type_and_id(&v["data"], "mdmServers", &id)?;
    let a = &v["data"]["attributes"];
    if org.server(idx).is_some_and(|s| s.server_type != "MDM") {
        // [guess] the Apple Configurator and built-in pseudo-servers cannot be edited.
        return Err(ApiError::forbidden(
            "This device management service cannot be modified",
        ));
    }
    let name = match &a["serverName"] {
        Value::Null => None,
        Value::String(n) if !n.trim().is_empty() => Some(n.trim().to_string()),
        _ => {
            return Err(ApiError::unprocessable(
                "/data/attributes/serverName",
                "serverName must be a non-empty string",
            ));
        }
    };
    if let Some(n) = &name
        && org
            .servers
            .iter()
            .enumerate()
            .any(|(i, s)| i != idx as usize && s.as_ref().is_some_and(|s| &s.name == n))
    {
        return Err(ApiError::conflict(
            "ENTITY_ERROR.ATTRIBUTE.INVALID",
            "/data/attributes/serverName",
            format!("A device management service named '{n}' already exists"),
        ));
    }
    let fams = families(
        &a["defaultProductFamilies"],
        "/data/attributes/defaultProductFamilies",
    )?;
    let Some(Some(s)) = org.servers.get_mut(idx as usize) else {
        return Err(ApiError::not_found("mdmServers", &id));
    };
    if let Some(n) = name {
        s.name = n;
    }
    if let Some(f) = fams {
        s.default_families = f;
    }
    if let Some(b) = a["enableMdmDisownFlag"].as_bool() {
        s.disown = b;
    }
    s.updated = now;
    let r = render::server_resource(s, &ctx.base());
    let name = s.name.clone();
    let actor = ctx.actor();
    org.audit_push(
        now,
        "CONFIG_SETTINGS_UPDATED",
        "DEVICE_MANAGEMENT",
        &actor,
        ("DEVICE_MANAGEMENT_SETTING", &id, &name),
        "eventDataConfigSettingsUpdated",
        json!({"configType": "MDM_SERVER", "configId": id, "configVersion": "2"}),
    );
    Ok(ok(
        json!({ "data": r, "links": { "self": format!("{}/v1/mdmServers/{id}", ctx.base()) } }),
    ))
}

async fn delete_mdm_server(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    ctx.query.check(&accepts(false, &[]))?;
    let now = OffsetDateTime::now_utc();
    let mut org = ctx.shared.settled_mut();
    let idx = find_server(&org, &id)?;
    let s = org.server(idx).expect("found").clone();
    if s.server_type != "MDM" {
        return Err(ApiError::forbidden(
            "This device management service cannot be deleted",
        ));
    }
    if s.device_count > 0 {
        // Apple documents that a DMS with devices cannot be deleted. [guess] 409 (SPEC hints 400).
        return Err(ApiError::conflict(
            "ENTITY_ERROR.RELATIONSHIP.INVALID",
            "/data/relationships/devices",
            format!(
                "The device management service still has {} assigned devices; unassign them first",
                s.device_count
            ),
        ));
    }
    org.servers[idx as usize] = None;
    let actor = ctx.actor();
    org.audit_push(
        now,
        "CONFIG_SETTINGS_DELETED",
        "DEVICE_MANAGEMENT",
        &actor,
        ("DEVICE_MANAGEMENT_SETTING", &id, &s.name),
        "eventDataConfigSettingsDeleted",
        json!({"configType": "MDM_SERVER", "configId": id, "configVersion": "3"}),
    );
    Ok(no_content())
}

async fn mdm_server_devices_linkage(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    ctx.query.check(&accepts(true, &[]))?;
    let (limit, start) = (
        ctx.query.limit()?,
        ctx.query.cursor(&format!("devices:{id}"))?,
    );
    let org = ctx.shared.settled();
    let s = find_server(&org, &id)?;
    let (data, next) = take_page(
        org.devices
            .iter()
            .enumerate()
            .skip(start as usize)
            .filter(|(_, d)| d.server == s && !d.released())
            .map(|(i, d)| (i as u64, d.serial)),
        start,
        limit,
    );
    drop(org);
    let data = data
        .into_iter()
        .map(|serial| json!({ "type": "orgDevices", "id": serial.as_str() }))
        .collect();
    let related = format!("{}/v1/mdmServers/{id}/devices", ctx.base());
    Ok(ctx.page(
        &format!("devices:{id}"),
        limit,
        next,
        data,
        &[("related", related)],
    ))
}

/// `GET /v1/mdmServers/{id}/devices`: undocumented but linked as `related`; serves the devices.
async fn mdm_server_devices(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    ctx.query
        .check(&accepts(true, &[("orgDevices", DEVICE_FIELDS)]))?;
    let (limit, start) = (
        ctx.query.limit()?,
        ctx.query.cursor(&format!("devices-full:{id}"))?,
    );
    let fields = ctx.query.fields("orgDevices");
    let org = ctx.shared.settled();
    let s = find_server(&org, &id)?;
    let base = ctx.base();
    let (data, next) = take_page(
        org.devices
            .iter()
            .enumerate()
            .skip(start as usize)
            .filter(|(_, d)| d.server == s && !d.released())
            .map(|(i, _)| (i as u64, i as u32)),
        start,
        limit,
    );
    let data = data
        .into_iter()
        .map(|i| {
            let mut r = render::device_resource(&org, i, &base, false);
            apply_fields(&mut r, fields.as_deref());
            r
        })
        .collect();
    drop(org);
    Ok(ctx.page(&format!("devices-full:{id}"), limit, next, data, &[]))
}

// ----- activities -----

async fn create_activity(ctx: Ctx, body: Bytes) -> ApiResult {
    activities::create(&ctx, &body)
}

async fn get_activity(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    activities::get(&ctx, &id)
}

// ----- directory and content (read-only) -----

/// Which simple collection a handler serves.
#[derive(Clone, Copy)]
enum Coll {
    Users,
    Groups,
    Ous,
    Apps,
    Packages,
}

impl Coll {
    fn ty(self) -> &'static str {
        match self {
            Coll::Users => "users",
            Coll::Groups => "userGroups",
            Coll::Ous => "organizationalUnits",
            Coll::Apps => "apps",
            Coll::Packages => "packages",
        }
    }
    fn fields(self) -> &'static [&'static str] {
        match self {
            Coll::Users => USER_FIELDS,
            Coll::Groups => GROUP_FIELDS,
            Coll::Ous => OU_FIELDS,
            Coll::Apps => APP_FIELDS,
            Coll::Packages => PACKAGE_FIELDS,
        }
    }
    /// `(id, attributes, members)` of every item.
    fn items(self, org: &Org) -> Vec<(&str, &Map<String, Value>, &[String])> {
        match self {
            Coll::Users => org
                .users
                .iter()
                .map(|u| (u.id.as_str(), &u.attributes, &[][..]))
                .collect(),
            Coll::Groups => org
                .groups
                .iter()
                .map(|g| (g.id.as_str(), &g.attributes, g.members.as_slice()))
                .collect(),
            Coll::Ous => org
                .ous
                .iter()
                .map(|o| (o.id.as_str(), &o.attributes, o.members.as_slice()))
                .collect(),
            Coll::Apps => org
                .apps
                .iter()
                .map(|o| (o.id.as_str(), &o.attributes, &[][..]))
                .collect(),
            Coll::Packages => org
                .packages
                .iter()
                .map(|o| (o.id.as_str(), &o.attributes, &[][..]))
                .collect(),
        }
    }
    fn has_users(self) -> bool {
        matches!(self, Coll::Groups | Coll::Ous)
    }
}

fn coll_list(ctx: Ctx, c: Coll) -> ApiResult {
    ctx.query.check(&accepts(true, &[(c.ty(), c.fields())]))?;
    let (limit, start) = (ctx.query.limit()?, ctx.query.cursor(c.ty())?);
    let fields = ctx.query.fields(c.ty());
    let org = ctx.shared.settled();
    if matches!(c, Coll::Apps | Coll::Packages) {
        require_builtin(&org)?;
    }
    let base = ctx.base();
    let items = c.items(&org);
    let (data, next) = take_page(
        items.into_iter().enumerate().map(|(i, x)| (i as u64, x)),
        start,
        limit,
    );
    let data = data
        .into_iter()
        .map(|(id, a, _)| {
            let mut r = render::simple_resource(c.ty(), id, a, &base, c.has_users());
            apply_fields(&mut r, fields.as_deref());
            r
        })
        .collect();
    drop(org);
    Ok(ctx.page(c.ty(), limit, next, data, &[]))
}

fn coll_get(ctx: Ctx, c: Coll, id: &str) -> ApiResult {
    ctx.query.check(&accepts(false, &[(c.ty(), c.fields())]))?;
    let org = ctx.shared.settled();
    if matches!(c, Coll::Apps | Coll::Packages) {
        require_builtin(&org)?;
    }
    let (id, a, _) = c
        .items(&org)
        .into_iter()
        .find(|(i, _, _)| *i == id)
        .ok_or_else(|| ApiError::not_found(c.ty(), id))?;
    let r = render::simple_resource(c.ty(), id, a, &ctx.base(), c.has_users());
    drop(org);
    Ok(ctx.single(r, c.ty()))
}

fn coll_users(ctx: Ctx, c: Coll, id: &str) -> ApiResult {
    ctx.query.check(&accepts(true, &[]))?;
    let list = format!("{}:{id}:users", c.ty());
    let (limit, start) = (ctx.query.limit()?, ctx.query.cursor(&list)?);
    let org = ctx.shared.settled();
    let (_, _, members) = c
        .items(&org)
        .into_iter()
        .find(|(i, _, _)| *i == id)
        .ok_or_else(|| ApiError::not_found(c.ty(), id))?;
    let (data, next) = take_page(
        members.iter().enumerate().map(|(i, m)| (i as u64, m)),
        start,
        limit,
    );
    let data = data
        .into_iter()
        .map(|m| json!({ "type": "users", "id": m }))
        .collect();
    drop(org);
    Ok(ctx.page(&list, limit, next, data, &[]))
}

async fn users(ctx: Ctx) -> ApiResult {
    coll_list(ctx, Coll::Users)
}
async fn user(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    coll_get(ctx, Coll::Users, &id)
}
async fn groups(ctx: Ctx) -> ApiResult {
    coll_list(ctx, Coll::Groups)
}
async fn group(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    coll_get(ctx, Coll::Groups, &id)
}
async fn group_users(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    coll_users(ctx, Coll::Groups, &id)
}
async fn ous(ctx: Ctx) -> ApiResult {
    coll_list(ctx, Coll::Ous)
}
async fn ou(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    coll_get(ctx, Coll::Ous, &id)
}
async fn ou_users(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    coll_users(ctx, Coll::Ous, &id)
}
async fn apps(ctx: Ctx) -> ApiResult {
    coll_list(ctx, Coll::Apps)
}
async fn app(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    coll_get(ctx, Coll::Apps, &id)
}
async fn packages(ctx: Ctx) -> ApiResult {
    coll_list(ctx, Coll::Packages)
}
async fn package(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    coll_get(ctx, Coll::Packages, &id)
}

// ----- blueprints -----

fn rel_index(rel: &str) -> Option<usize> {
    BLUEPRINT_RELS.iter().position(|r| *r == rel)
}

/// Whether `id` names an existing resource of relationship `rel`.
fn exists(org: &Org, rel: usize, id: &str) -> bool {
    match BLUEPRINT_RELS[rel] {
        "apps" => org.apps.iter().any(|a| a.id == id),
        "configurations" => org.configurations.iter().flatten().any(|c| c.id == id),
        "packages" => org.packages.iter().any(|p| p.id == id),
        "orgDevices" => org.device(id).is_some_and(|(_, d)| !d.released()),
        "users" => org.users.iter().any(|u| u.id == id),
        _ => org.groups.iter().any(|g| g.id == id),
    }
}

fn included(org: &Org, rel: usize, id: &str, base: &str) -> Option<Value> {
    match BLUEPRINT_RELS[rel] {
        "apps" => org
            .apps
            .iter()
            .find(|a| a.id == id)
            .map(|a| render::simple_resource("apps", &a.id, &a.attributes, base, false)),
        "packages" => org
            .packages
            .iter()
            .find(|a| a.id == id)
            .map(|a| render::simple_resource("packages", &a.id, &a.attributes, base, false)),
        "configurations" => org
            .configurations
            .iter()
            .flatten()
            .find(|c| c.id == id)
            .map(|c| render::configuration_resource(c, base, false)),
        "orgDevices" => org
            .device(id)
            .map(|(i, _)| render::device_resource(org, i, base, false)),
        "users" => org
            .users
            .iter()
            .find(|u| u.id == id)
            .map(|u| render::simple_resource("users", &u.id, &u.attributes, base, false)),
        _ => org
            .groups
            .iter()
            .find(|g| g.id == id)
            .map(|g| render::simple_resource("userGroups", &g.id, &g.attributes, base, true)),
    }
}

const BLUEPRINT_EXTRA: &[&str] = &[
    "include",
    "limit[apps]",
    "limit[configurations]",
    "limit[packages]",
    "limit[orgDevices]",
    "limit[users]",
    "limit[userGroups]",
];
const INCLUDED_FIELDS: [(&str, &[&str]); 7] = [
    ("blueprints", BLUEPRINT_FIELDS),
    ("apps", APP_FIELDS),
    ("packages", PACKAGE_FIELDS),
    ("configurations", CONFIG_FIELDS),
    ("orgDevices", DEVICE_FIELDS),
    ("users", USER_FIELDS),
    ("userGroups", GROUP_FIELDS),
];

/// Parses `include` and `limit[rel]`: `(rel index, limit)` pairs.
fn includes(q: &Query) -> ApiResult<Vec<(usize, usize)>> {
    let Some(inc) = q.get("include") else {
        return Ok(vec![]);
    };
    inc.split(',')
        .map(|rel| {
            let i = rel_index(rel).ok_or_else(|| {
                ApiError::parameter(
                    "include",
                    format!("'{rel}' is not a valid relationship to include"),
                )
            })?;
            let name = format!("limit[{rel}]");
            Ok((i, parse_limit(&name, q.get(&name))?))
        })
        .collect()
}

/// Renders a blueprint with its included relationships; appends included resources.
fn blueprint_with_includes(
    org: &Org,
    bp: &Blueprint,
    base: &str,
    incs: &[(usize, usize)],
    fields: &Query,
    out: &mut Vec<Value>,
) -> Value {
    let mut r = render::blueprint_resource(bp, base, LinkStyle::Read);
    for &(rel, limit) in incs {
        let ids: Vec<&String> = bp.members[rel]
            .iter()
            .filter(|id| exists(org, rel, id))
            .take(limit)
            .collect();
        let name = BLUEPRINT_RELS[rel];
        let ty = name;
        r["relationships"][name]["data"] = json!(
            ids.iter()
                .map(|id| json!({ "type": ty, "id": id }))
                .collect::<Vec<_>>()
        );
        r["relationships"][name]["meta"] = json!({ "paging": { "limit": limit } });
        for id in ids {
            if out.iter().any(|x| x["type"] == ty && x["id"] == **id) {
                continue;
            }
            if let Some(mut inc) = included(org, rel, id, base) {
                apply_fields(&mut inc, fields.fields(ty).as_deref());
                out.push(inc);
            }
        }
    }
    apply_fields(&mut r, fields.fields("blueprints").as_deref());
    r
}

async fn blueprints(ctx: Ctx) -> ApiResult {
    ctx.query.check(&Accepts {
        paged: true,
        fields: &INCLUDED_FIELDS,
        extra: BLUEPRINT_EXTRA,
    })?;
    let (limit, start) = (ctx.query.limit()?, ctx.query.cursor("blueprints")?);
    let incs = includes(&ctx.query)?;
    let org = ctx.shared.settled();
    let base = ctx.base();
    let (items, next) = take_page(
        org.blueprints
            .iter()
            .enumerate()
            .filter_map(|(i, b)| b.as_ref().map(|b| (i as u64, b))),
        start,
        limit,
    );
    let mut inc = Vec::new();
    let data: Vec<Value> = items
        .into_iter()
        .map(|bp| blueprint_with_includes(&org, bp, &base, &incs, &ctx.query, &mut inc))
        .collect();
    drop(org);
    let mut doc = ctx.page_doc("blueprints", limit, next, data, &[]);
    if !incs.is_empty() {
        doc["included"] = json!(inc);
    }
    Ok(page_response(doc))
}

fn find_blueprint(org: &Org, id: &str) -> ApiResult<usize> {
    org.blueprints
        .iter()
        .position(|b| b.as_ref().is_some_and(|b| b.id == id))
        .ok_or_else(|| ApiError::not_found("blueprints", id))
}

async fn blueprint(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    ctx.query.check(&Accepts {
        paged: false,
        fields: &INCLUDED_FIELDS,
        extra: BLUEPRINT_EXTRA,
    })?;
    let incs = includes(&ctx.query)?;
    let org = ctx.shared.settled();
    let i = find_blueprint(&org, &id)?;
    let mut inc = Vec::new();
    let r = blueprint_with_includes(
        &org,
        org.blueprints[i].as_ref().expect("found"),
        &ctx.base(),
        &incs,
        &ctx.query,
        &mut inc,
    );
    drop(org);
    let self_url = match ctx.query.pairs.is_empty() {
        true => format!("{}{}", ctx.base(), ctx.path),
        false => format!(
            "{}{}?{}",
            ctx.base(),
            ctx.path,
            crate::util::encode_query(&ctx.query.pairs)
        ),
    };
    let mut doc = json!({ "data": r, "links": { "self": self_url } });
    if !incs.is_empty() {
        doc["included"] = json!(inc);
    }
    Ok(ok(doc))
}

/// Validates a blueprint name. \[guess\] 1..=255 characters after trimming.
fn blueprint_name(v: &Value) -> ApiResult<String> {
    match v.as_str().map(str::trim) {
        Some(n) if !n.is_empty() && n.chars().count() <= 255 => Ok(n.to_string()),
        _ => Err(ApiError::unprocessable(
            "/data/attributes/name",
            "name must be a non-empty string of at most 255 characters",
        )),
    }
}

/// Reads the relationships of a create/update body; unknown ids are dropped silently (documented).
fn body_relationships(org: &Org, rels: &Value) -> ApiResult<[Option<Vec<String>>; 6]> {
    let mut out: [Option<Vec<String>>; 6] = Default::default();
    for (i, rel) in BLUEPRINT_RELS.iter().enumerate() {
        let Some(data) = rels.get(*rel).map(|r| &r["data"]) else {
            continue;
        };
        let Some(items) = data.as_array() else {
            return Err(ApiError::unprocessable(
                &format!("/data/relationships/{rel}/data"),
                "relationship data must be an array",
            ));
        };
        let mut ids = Vec::new();
        for (j, it) in items.iter().enumerate() {
            if it["type"] != *rel {
                return Err(ApiError::conflict(
                    "ENTITY_ERROR.RELATIONSHIP.INVALID",
                    &format!("/data/relationships/{rel}/data/{j}/type"),
                    format!("identifiers in '{rel}' must have type '{rel}'"),
                ));
            }
            if let Some(id) = it["id"].as_str()
                && exists(org, i, id)
                && !ids.iter().any(|x| x == id)
            {
                ids.push(id.to_string());
            }
        }
        out[i] = Some(ids);
    }
    Ok(out)
}

async fn create_blueprint(ctx: Ctx, body: Bytes) -> ApiResult {
    ctx.query.check(&accepts(false, &[]))?;
    let v = parse_body(&body)?;
    let d = &v["data"];
    if d["type"] != "blueprints" {
        return Err(ApiError::conflict(
            "ENTITY_ERROR.ATTRIBUTE.INVALID",
            "/data/type",
            "The resource type must be 'blueprints'",
        ));
    }
    let name = blueprint_name(&d["attributes"]["name"])?;
    let description = d["attributes"]["description"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let now = OffsetDateTime::now_utc();
    let id = format!("blueprint-{}", ctx.shared.uuid());
    let mut org = ctx.shared.settled_mut();
    let rels = body_relationships(&org, &d["relationships"])?;
    let members = rels.map(Option::unwrap_or_default);
    // [guess] (issue rule) a blueprint needs content (apps/configurations/packages) and a target (orgDevices/users/userGroups).
    if members[..3].iter().all(Vec::is_empty) {
        return Err(ApiError::unprocessable(
            "/data/relationships",
            "A blueprint needs at least one app, configuration or package",
        ));
    }
    if members[3..].iter().all(Vec::is_empty) {
        return Err(ApiError::unprocessable(
            "/data/relationships",
            "A blueprint needs at least one device, user or user group",
        ));
    }
    if org.blueprints.iter().flatten().any(|b| b.name == name) {
        return Err(ApiError::conflict(
            "ENTITY_ERROR.ATTRIBUTE.INVALID",
            "/data/attributes/name",
            format!("A blueprint named '{name}' already exists"),
        ));
    }
    let bp = Blueprint {
        id: id.clone(),
        name: name.clone(),
        description: description.clone(),
        created: now,
        updated: now,
        members,
    };
    let r = render::blueprint_resource(&bp, &ctx.base(), LinkStyle::Write);
    org.blueprints.push(Some(bp));
    let actor = ctx.actor();
    // [guess] blueprints are audited as COLLECTION_* events.
    org.audit_push(
        now,
        "COLLECTION_CREATED",
        "DEVICE_MANAGEMENT",
        &actor,
        ("COLLECTION", &id, &name),
        "eventDataCollectionCreated",
        json!({"name": name, "description": description}),
    );
    Ok(created(
        json!({ "data": r, "links": { "self": format!("{}/v1/blueprints/{id}", ctx.base()) } }),
    ))
}

async fn update_blueprint(ctx: Ctx, Path(id): Path<String>, body: Bytes) -> ApiResult {
    ctx.query.check(&accepts(false, &[]))?;
    let v = parse_body(&body)?;
    let now = OffsetDateTime::now_utc();
    let mut org = ctx.shared.settled_mut();
    let i = find_blueprint(&org, &id)?;
    let d = &v["data"];
    check_type_and_id(d, "blueprints", &id)?;
    let name = match &d["attributes"]["name"] {
        Value::Null => None,
        n => Some(blueprint_name(n)?),
    };
    if let Some(n) = &name
        && org
            .blueprints
            .iter()
            .enumerate()
            .any(|(j, b)| j != i && b.as_ref().is_some_and(|b| &b.name == n))
    {
        return Err(ApiError::conflict(
            "ENTITY_ERROR.ATTRIBUTE.INVALID",
            "/data/attributes/name",
            format!("A blueprint named '{n}' already exists"),
        ));
    }
    let rels = body_relationships(&org, &d["relationships"])?;
    let bp = org.blueprints[i].as_mut().expect("found");
    if let Some(n) = name {
        bp.name = n;
    }
    if let Some(desc) = d["attributes"]["description"].as_str() {
        bp.description = desc.to_string();
    }
    // [guess] JSON:API semantics: a relationship sent in PATCH replaces the set.
    for (k, r) in rels.into_iter().enumerate() {
        if let Some(ids) = r {
            bp.members[k] = ids;
        }
    }
    bp.updated = now;
    let r = render::blueprint_resource(bp, &ctx.base(), LinkStyle::Write);
    let (name, desc) = (bp.name.clone(), bp.description.clone());
    let actor = ctx.actor();
    org.audit_push(
        now,
        "COLLECTION_UPDATED",
        "DEVICE_MANAGEMENT",
        &actor,
        ("COLLECTION", &id, &name),
        "eventDataCollectionUpdated",
        json!({"name": name, "description": desc}),
    );
    Ok(ok(
        json!({ "data": r, "links": { "self": format!("{}/v1/blueprints/{id}", ctx.base()) } }),
    ))
}

async fn delete_blueprint(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    ctx.query.check(&accepts(false, &[]))?;
    let now = OffsetDateTime::now_utc();
    let mut org = ctx.shared.settled_mut();
    let i = find_blueprint(&org, &id)?;
    let bp = org.blueprints[i].take().expect("found");
    let actor = ctx.actor();
    org.audit_push(
        now,
        "COLLECTION_DELETED",
        "DEVICE_MANAGEMENT",
        &actor,
        ("COLLECTION", &id, &bp.name),
        "eventDataCollectionDeleted",
        json!({"name": bp.name, "description": bp.description}),
    );
    Ok(no_content())
}

async fn blueprint_rel_get(ctx: Ctx, Path((id, rel)): Path<(String, String)>) -> ApiResult {
    ctx.query.check(&accepts(true, &[]))?;
    let r = rel_index(&rel).ok_or_else(|| ApiError::path_not_found(&ctx.path))?;
    let list = format!("blueprints:{id}:{rel}");
    let (limit, start) = (ctx.query.limit()?, ctx.query.cursor(&list)?);
    let org = ctx.shared.settled();
    let i = find_blueprint(&org, &id)?;
    let bp = org.blueprints[i].as_ref().expect("found");
    let (data, next) = take_page(
        bp.members[r].iter().enumerate().map(|(p, m)| (p as u64, m)),
        start,
        limit,
    );
    let data = data
        .into_iter()
        .map(|m| json!({ "type": rel, "id": m }))
        .collect();
    drop(org);
    Ok(ctx.page(&list, limit, next, data, &[]))
}

/// Undocumented `related` link: the member resources themselves.
async fn blueprint_related(ctx: Ctx, Path((id, rel)): Path<(String, String)>) -> ApiResult {
    ctx.query.check(&Accepts {
        paged: true,
        fields: &INCLUDED_FIELDS,
        extra: &[],
    })?;
    let r = rel_index(&rel).ok_or_else(|| ApiError::path_not_found(&ctx.path))?;
    let list = format!("blueprints:{id}:{rel}:related");
    let (limit, start) = (ctx.query.limit()?, ctx.query.cursor(&list)?);
    let org = ctx.shared.settled();
    let i = find_blueprint(&org, &id)?;
    let bp = org.blueprints[i].as_ref().expect("found");
    let (ids, next) = take_page(
        bp.members[r].iter().enumerate().map(|(p, m)| (p as u64, m)),
        start,
        limit,
    );
    let base = ctx.base();
    let data = ids
        .into_iter()
        .filter_map(|m| included(&org, r, m, &base))
        .map(|mut x| {
            apply_fields(&mut x, ctx.query.fields(&rel).as_deref());
            x
        })
        .collect();
    drop(org);
    Ok(ctx.page(&list, limit, next, data, &[]))
}

async fn blueprint_rel_change(
    ctx: Ctx,
    method: axum::http::Method,
    Path((id, rel)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    ctx.query.check(&accepts(false, &[]))?;
    let r = rel_index(&rel).ok_or_else(|| ApiError::path_not_found(&ctx.path))?;
    // 400 is not documented on these endpoints; a malformed body is unprocessable. [guess]
    let v: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::unprocessable("/data", format!("The request body is not valid JSON: {e}"))
    })?;
    let items = v["data"]
        .as_array()
        .ok_or_else(|| ApiError::unprocessable("/data", "data must be an array of identifiers"))?;
    let now = OffsetDateTime::now_utc();
    let mut org = ctx.shared.settled_mut();
    let i = find_blueprint(&org, &id)?;
    let mut ids = Vec::new();
    for (j, it) in items.iter().enumerate() {
        if it["type"] != rel.as_str() {
            return Err(ApiError::conflict(
                "ENTITY_ERROR.RELATIONSHIP.INVALID",
                &format!("/data/{j}/type"),
                format!("identifiers must have type '{rel}'"),
            ));
        }
        let Some(m) = it["id"].as_str() else {
            return Err(ApiError::unprocessable(
                &format!("/data/{j}/id"),
                "identifier id is missing",
            ));
        };
        ids.push(m.to_string());
    }
    let adding = method == axum::http::Method::POST;
    let keep: Vec<String> = if adding {
        ids.into_iter().filter(|m| exists(&org, r, m)).collect()
    } else {
        ids
    };
    let bp = org.blueprints[i].as_mut().expect("found");
    if adding {
        for m in keep {
            if !bp.members[r].contains(&m) {
                bp.members[r].push(m);
            }
        }
    } else {
        bp.members[r].retain(|m| !keep.contains(m));
    }
    bp.updated = now;
    let (name, desc) = (bp.name.clone(), bp.description.clone());
    let actor = ctx.actor();
    org.audit_push(
        now,
        "COLLECTION_UPDATED",
        "DEVICE_MANAGEMENT",
        &actor,
        ("COLLECTION", &id, &name),
        "eventDataCollectionUpdated",
        json!({"name": name, "description": desc}),
    );
    Ok(no_content())
}

// ----- configurations -----

async fn configurations(ctx: Ctx) -> ApiResult {
    ctx.query
        .check(&accepts(true, &[("configurations", CONFIG_FIELDS)]))?;
    let (limit, start) = (ctx.query.limit()?, ctx.query.cursor("configurations")?);
    let fields = ctx.query.fields("configurations");
    let org = ctx.shared.settled();
    let base = ctx.base();
    let (items, next) = take_page(
        org.configurations
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().map(|c| (i as u64, c))),
        start,
        limit,
    );
    let data = items
        .into_iter()
        .map(|c| {
            let mut r = render::configuration_resource(c, &base, false);
            apply_fields(&mut r, fields.as_deref());
            r
        })
        .collect();
    drop(org);
    Ok(ctx.page("configurations", limit, next, data, &[]))
}

fn find_config(org: &Org, id: &str) -> ApiResult<usize> {
    org.configurations
        .iter()
        .position(|c| c.as_ref().is_some_and(|c| c.id == id))
        .ok_or_else(|| ApiError::not_found("configurations", id))
}

async fn configuration(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    ctx.query
        .check(&accepts(false, &[("configurations", CONFIG_FIELDS)]))?;
    let org = ctx.shared.settled();
    let i = find_config(&org, &id)?;
    let r = render::configuration_resource(
        org.configurations[i].as_ref().expect("found"),
        &ctx.base(),
        true,
    );
    drop(org);
    Ok(ctx.single(r, "configurations"))
}

/// Reads and validates the profile: raw XML, or base64 of it (\[sdk\] some clients send bytes).
fn profile(v: &Value) -> ApiResult<String> {
    let pointer = "/data/attributes/customSettingsValues/configurationProfile";
    let raw = v
        .as_str()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ApiError::unprocessable(pointer, "configurationProfile is required"))?;
    let xml = if raw.trim_start().starts_with('<') {
        raw.to_string()
    } else {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(raw.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                ApiError::unprocessable(
                    pointer,
                    "configurationProfile is neither XML nor base64 of XML",
                )
            })?
    };
    crate::plist::validate_profile(&xml)
        .map_err(|e| ApiError::unprocessable(pointer, e.to_string()))?;
    Ok(xml)
}

fn platforms(v: &Value) -> ApiResult<Option<Vec<String>>> {
    let pointer = "/data/attributes/configuredForPlatforms";
    match v {
        Value::Null => Ok(None),
        Value::Array(a) => a
            .iter()
            .map(|p| {
                p.as_str()
                    .filter(|p| PLATFORMS.contains(p))
                    .map(String::from)
            })
            .collect::<Option<Vec<_>>>()
            .filter(|p| !p.is_empty())
            .map(Some)
            .ok_or_else(|| {
                ApiError::unprocessable(
                    pointer,
                    "configuredForPlatforms must list ConfigurationPlatform values",
                )
            }),
        _ => Err(ApiError::unprocessable(
            pointer,
            "configuredForPlatforms must be an array",
        )),
    }
}

fn filename(v: &Value) -> ApiResult<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(f) if f.ends_with(".mobileconfig") && f.len() > ".mobileconfig".len() => {
            Ok(Some(f.clone()))
        }
        _ => Err(ApiError::unprocessable(
            "/data/attributes/customSettingsValues/filename",
            "filename must end in .mobileconfig",
        )),
    }
}

async fn create_configuration(ctx: Ctx, body: Bytes) -> ApiResult {
    ctx.query.check(&accepts(false, &[]))?;
    let v = parse_body(&body)?;
    let d = &v["data"];
    if d["type"] != "configurations" {
        return Err(ApiError::conflict(
            "ENTITY_ERROR.ATTRIBUTE.INVALID",
            "/data/type",
            "The resource type must be 'configurations'",
        ));
    }
    let a = &d["attributes"];
    if a["type"] != "CUSTOM_SETTING" {
        // [guess] only CUSTOM_SETTING can be created; other types conflict.
        return Err(ApiError::conflict(
            "ENTITY_ERROR.ATTRIBUTE.INVALID",
            "/data/attributes/type",
            "Only configurations of type CUSTOM_SETTING can be created",
        ));
    }
    let name = a["name"]
        .as_str()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::unprocessable("/data/attributes/name", "name is required"))?
        .to_string();
    let xml = profile(&a["customSettingsValues"]["configurationProfile"])?;
    let file = filename(&a["customSettingsValues"]["filename"])?;
    // [guess] without platforms we assume iOS + macOS (Apple auto-detects from payload types).
    let plats = platforms(&a["configuredForPlatforms"])?
        .unwrap_or_else(|| vec!["PLATFORM_IOS".into(), "PLATFORM_MACOS".into()]);
    let now = OffsetDateTime::now_utc();
    let id = format!("config-{}", ctx.shared.uuid());
    let file = file.unwrap_or_else(|| format!("{id}.mobileconfig"));
    let c = Configuration {
        id: id.clone(),
        config_type: "CUSTOM_SETTING".into(),
        name: name.clone(),
        platforms: plats,
        custom: Some((xml, file)),
        created: now,
        updated: now,
    };
    let r = render::configuration_resource(&c, &ctx.base(), true);
    let mut org = ctx.shared.settled_mut();
    org.configurations.push(Some(c));
    let actor = ctx.actor();
    org.audit_push(
        now,
        "CONFIG_SETTINGS_CREATED",
        "DEVICE_MANAGEMENT",
        &actor,
        ("DEVICE_MANAGEMENT_SETTING", &id, &name),
        "eventDataConfigSettingsCreated",
        json!({"configType": "CUSTOM_SETTING", "configId": id, "configVersion": "1"}),
    );
    Ok(created(
        json!({ "data": r, "links": { "self": format!("{}/v1/configurations/{id}", ctx.base()) } }),
    ))
}

async fn update_configuration(ctx: Ctx, Path(id): Path<String>, body: Bytes) -> ApiResult {
    ctx.query.check(&accepts(false, &[]))?;
    let v = parse_body(&body)?;
    let now = OffsetDateTime::now_utc();
    let mut org = ctx.shared.settled_mut();
    let i = find_config(&org, &id)?;
    let d = &v["data"];
    check_type_and_id(d, "configurations", &id)?;
    if org.configurations[i]
        .as_ref()
        .is_some_and(|c| c.config_type != "CUSTOM_SETTING")
    {
        return Err(ApiError::conflict(
            "ENTITY_ERROR.ATTRIBUTE.INVALID",
            "/data/attributes/type",
            "Only CUSTOM_SETTING configurations can be updated",
        ));
    }
    let a = &d["attributes"];
    let csv = &a["customSettingsValues"];
    if a["name"].is_null()
        && a["configuredForPlatforms"].is_null()
        && csv["configurationProfile"].is_null()
        && csv["filename"].is_null()
    {
        return Err(ApiError::unprocessable(
            "/data/attributes",
            "At least one of name, configuredForPlatforms, configurationProfile or filename is required",
        ));
    }
    let name = match &a["name"] {
        Value::Null => None,
        Value::String(n) if !n.trim().is_empty() => Some(n.trim().to_string()),
        _ => {
            return Err(ApiError::unprocessable(
                "/data/attributes/name",
                "name must be a non-empty string",
            ));
        }
    };
    let xml = if csv["configurationProfile"].is_null() {
        None
    } else {
        Some(profile(&csv["configurationProfile"])?)
    };
    let file = filename(&csv["filename"])?;
    let plats = platforms(&a["configuredForPlatforms"])?;
    let c = org.configurations[i].as_mut().expect("found");
    if let Some(n) = name {
        c.name = n;
    }
    if let Some(p) = plats {
        c.platforms = p;
    }
    let (old_xml, old_file) = c.custom.clone().unwrap_or_default();
    c.custom = Some((xml.unwrap_or(old_xml), file.unwrap_or(old_file)));
    c.updated = now;
    let r = render::configuration_resource(c, &ctx.base(), true);
    let name = c.name.clone();
    let actor = ctx.actor();
    org.audit_push(
        now,
        "CONFIG_SETTINGS_UPDATED",
        "DEVICE_MANAGEMENT",
        &actor,
        ("DEVICE_MANAGEMENT_SETTING", &id, &name),
        "eventDataConfigSettingsUpdated",
        json!({"configType": "CUSTOM_SETTING", "configId": id, "configVersion": "2"}),
    );
    Ok(ok(
        json!({ "data": r, "links": { "self": format!("{}/v1/configurations/{id}", ctx.base()) } }),
    ))
}

async fn delete_configuration(ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    ctx.query.check(&accepts(false, &[]))?;
    let now = OffsetDateTime::now_utc();
    let mut org = ctx.shared.settled_mut();
    let i = find_config(&org, &id)?;
    if let Some(bp) = org
        .blueprints
        .iter()
        .flatten()
        .find(|b| b.members[1].contains(&id))
    {
        // [guess] a configuration used by a blueprint cannot be deleted.
        return Err(ApiError::conflict(
            "ENTITY_ERROR.RELATIONSHIP.INVALID",
            "/data",
            format!("The configuration is used by blueprint '{}'", bp.id),
        ));
    }
    let c = org.configurations[i].take().expect("found");
    let actor = ctx.actor();
    org.audit_push(
        now,
        "CONFIG_SETTINGS_DELETED",
        "DEVICE_MANAGEMENT",
        &actor,
        ("DEVICE_MANAGEMENT_SETTING", &id, &c.name),
        "eventDataConfigSettingsDeleted",
        json!({"configType": c.config_type, "configId": id, "configVersion": "3"}),
    );
    Ok(no_content())
}

// ----- audit events -----

async fn audit_events(ctx: Ctx) -> ApiResult {
    const FILTERS: &[&str] = &[
        "filter[startTimestamp]",
        "filter[endTimestamp]",
        "filter[actorId]",
        "filter[subjectId]",
        "filter[type]",
    ];
    ctx.query.check(&Accepts {
        paged: true,
        fields: &[("auditEvents", AUDIT_FIELDS)],
        extra: FILTERS,
    })?;
    let (limit, start) = (ctx.query.limit()?, ctx.query.cursor("auditEvents")?);
    let time_filter = |k: &str| -> ApiResult<OffsetDateTime> {
        let v = ctx
            .query
            .get(k)
            .ok_or_else(|| ApiError::parameter(k, format!("The parameter '{k}' is required")))?;
        crate::util::parse_iso(v).ok_or_else(|| {
            ApiError::parameter(k, format!("'{v}' is not a valid ISO-8601 timestamp"))
        })
    };
    let from = time_filter("filter[startTimestamp]")?;
    let to = time_filter("filter[endTimestamp]")?;
    if to < from {
        return Err(ApiError::parameter(
            "filter[endTimestamp]",
            "filter[endTimestamp] must not be before filter[startTimestamp]",
        ));
    }
    for k in ["filter[actorId]", "filter[subjectId]", "filter[type]"] {
        if ctx.query.get(k).is_some_and(|v| v.contains(',')) {
            return Err(ApiError::parameter(
                k,
                format!("'{k}' accepts a single value"),
            ));
        }
    }
    let (actor, subject, ty) = (
        ctx.query.get("filter[actorId]"),
        ctx.query.get("filter[subjectId]"),
        ctx.query.get("filter[type]"),
    );
    let fields = ctx.query.fields("auditEvents");
    let org = ctx.shared.settled();
    // [guess] oldest first: positions stay stable while new events are appended.
    let first = org
        .audit
        .partition_point(|e| e.at < from)
        .max(start as usize);
    let (items, next) = take_page(
        org.audit
            .iter()
            .enumerate()
            .skip(first)
            .take_while(|(_, e)| e.at <= to)
            .filter(|(_, e)| {
                actor.is_none_or(|a| e.actor_id == a)
                    && subject.is_none_or(|s| e.subject_id == s)
                    && ty.is_none_or(|t| e.event_type == t)
            })
            .map(|(i, e)| (i as u64, e)),
        start,
        limit,
    );
    let data = items
        .into_iter()
        .map(|e| {
            let mut r = render::audit_resource(e);
            if let (Some(f), Some(Value::Object(m))) = (&fields, r.get_mut("attributes")) {
                m.retain(|k, _| f.iter().any(|x| x == k));
            }
            r
        })
        .collect();
    drop(org);
    Ok(ctx.page("auditEvents", limit, next, data, &[]))
}

pub(crate) async fn fallback(ctx: Ctx) -> ApiResult {
    Err(ApiError::path_not_found(&ctx.path))
}

/// The `/v1` router (routes only; the gate is layered on by the caller).
pub(crate) fn v1(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/orgDevices", get(org_devices))
        .route("/v1/orgDevices/{id}", get(org_device))
        .route("/v1/orgDevices/{id}/appleCareCoverage", get(applecare))
        .route(
            "/v1/orgDevices/{id}/activationLockStatus",
            get(activation_lock),
        )
        .route(
            "/v1/orgDevices/{id}/relationships/assignedServer",
            get(assigned_server_linkage),
        )
        .route("/v1/orgDevices/{id}/assignedServer", get(assigned_server))
        .route("/v1/mdmDevices", get(mdm_devices))
        .route("/v1/mdmDevices/{id}", get(mdm_device))
        .route("/v1/mdmDevices/{id}/details", get(mdm_device_details))
        .route("/v1/mdmServers", get(mdm_servers).post(create_mdm_server))
        .route(
            "/v1/mdmServers/{id}",
            get(mdm_server)
                .patch(update_mdm_server)
                .delete(delete_mdm_server),
        )
        .route(
            "/v1/mdmServers/{id}/relationships/devices",
            get(mdm_server_devices_linkage),
        )
        .route("/v1/mdmServers/{id}/devices", get(mdm_server_devices))
        .route("/v1/orgDeviceActivities", post(create_activity))
        .route("/v1/orgDeviceActivities/{id}", get(get_activity))
        .route("/v1/users", get(users))
        .route("/v1/users/{id}", get(user))
        .route("/v1/userGroups", get(groups))
        .route("/v1/userGroups/{id}", get(group))
        .route("/v1/userGroups/{id}/relationships/users", get(group_users))
        .route("/v1/organizationalUnits", get(ous))
        .route("/v1/organizationalUnits/{id}", get(ou))
        .route(
            "/v1/organizationalUnits/{id}/relationships/users",
            get(ou_users),
        )
        .route("/v1/apps", get(apps))
        .route("/v1/apps/{id}", get(app))
        .route("/v1/packages", get(packages))
        .route("/v1/packages/{id}", get(package))
        .route("/v1/blueprints", get(blueprints).post(create_blueprint))
        .route(
            "/v1/blueprints/{id}",
            get(blueprint)
                .patch(update_blueprint)
                .delete(delete_blueprint),
        )
        .route(
            "/v1/blueprints/{id}/relationships/{rel}",
            get(blueprint_rel_get)
                .post(blueprint_rel_change)
                .delete(blueprint_rel_change),
        )
        .route("/v1/blueprints/{id}/{rel}", get(blueprint_related))
        .route(
            "/v1/configurations",
            get(configurations).post(create_configuration),
        )
        .route(
            "/v1/configurations/{id}",
            get(configuration)
                .patch(update_configuration)
                .delete(delete_configuration),
        )
        .route("/v1/auditEvents", get(audit_events))
        .route_layer(axum::middleware::from_fn_with_state(
            shared,
            crate::faults::gate,
        ))
}

/// `POST /auth/oauth2/token` and `/auth/oauth2/v2/token`.
pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let latency = shared.faults().config.latency_ms;
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    let r = crate::auth::token(&shared, q.as_deref(), &body);
    crate::faults::record(
        &shared,
        &axum::http::Method::POST,
        "/auth/oauth2/token",
        r.status(),
    );
    r
}
