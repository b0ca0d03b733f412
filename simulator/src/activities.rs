//! Organization device activities: validation on `POST`, a time-driven state
//! machine, delayed effects and the CSV activity log.
//!
//! Status is computed from elapsed real time, not by a background task:
//! `IN_PROGRESS/SUBMITTED → IN_PROGRESS/PROCESSING → IN_PROGRESS/POST_PROCESSING →
//! COMPLETED/COMPLETED_WITH_{SUCCESS,FAILURE,ERROR}` over
//! [`crate::Behaviour::activity_phase_secs`]. Effects on devices are applied
//! lazily ([`crate::model::Org::settle`]) once the activity has completed *and*
//! the assignment lag has passed, so a client that polls devices right after
//! COMPLETED can still see the old state, as with Apple.
//!
//! Per-device problems never fail the request: unknown serials, unassigning from
//! a server the device is not on, or migration updates without a migration end
//! up as `FAILED` rows in the CSV while the activity completes (SPEC quirk 13).
//! \[guess\] `subStatus` is `COMPLETED_WITH_SUCCESS` when every row succeeded,
//! `COMPLETED_WITH_ERROR` when none did, `COMPLETED_WITH_FAILURE` otherwise.

use crate::jsonapi::{ApiError, ApiResult, created, ok};
use crate::model::*;
use crate::routes::Ctx;
use crate::state::Shared;
use crate::util::iso;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use time::OffsetDateTime;

const TYPES: [&str; 6] = [
    "ASSIGN_DEVICES",
    "UNASSIGN_DEVICES",
    "ASSIGN_DEVICES_WITH_MDM_MIGRATION_DEADLINE",
    "UPDATE_MDM_MIGRATION_DEADLINE",
    "CANCEL_MDM_MIGRATION",
    "RELEASE_DEVICES",
];
/// Apple documents that a migration deadline may be at most 90 days ahead.
const MAX_DEADLINE_DAYS: i64 = 90;
pub(crate) const NOT_IN_ORG: &str = "Device not found in organization";

fn needs_server(t: &str) -> bool {
    matches!(
        t,
        "ASSIGN_DEVICES" | "UNASSIGN_DEVICES" | "ASSIGN_DEVICES_WITH_MDM_MIGRATION_DEADLINE"
    )
}

fn needs_deadline(t: &str) -> bool {
    matches!(
        t,
        "ASSIGN_DEVICES_WITH_MDM_MIGRATION_DEADLINE" | "UPDATE_MDM_MIGRATION_DEADLINE"
    )
}

/// `POST /v1/orgDeviceActivities`.
pub(crate) fn create(ctx: &Ctx, body: &[u8]) -> ApiResult {
    ctx.query.check(&crate::jsonapi::Accepts {
        paged: false,
        fields: &[],
        extra: &[],
    })?;
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("The request body is not valid JSON: {e}")))?;
    let data = &v["data"];
    if data["type"] != "orgDeviceActivities" {
        return Err(ApiError::conflict(
            "ENTITY_ERROR.ATTRIBUTE.INVALID",
            "/data/type",
            "The resource type must be 'orgDeviceActivities'",
        ));
    }
    let Some(activity_type) = data["attributes"]["activityType"]
        .as_str()
        .filter(|t| TYPES.contains(t))
    else {
        return Err(ApiError::unprocessable(
            "/data/attributes/activityType",
            "activityType is missing or not a valid OrgDeviceActivityType",
        ));
    };
    let shared = &ctx.shared;
    let now = OffsetDateTime::now_utc();
    let mut org = shared.settled_mut();
    if org.kind == OrgKind::School && activity_type == "RELEASE_DEVICES" {
        // [guess] ASM has no RELEASE_DEVICES; SPEC suggests 400/409.
        return Err(ApiError::conflict(
            "ENTITY_ERROR.ATTRIBUTE.INVALID",
            "/data/attributes/activityType",
            "RELEASE_DEVICES is not available for this organization",
        ));
    }
    let devices = data["relationships"]["devices"]["data"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if devices.is_empty() {
        return Err(ApiError::unprocessable(
            "/data/relationships/devices/data",
            "At least one device is required",
        ));
    }
    let max = shared.behaviour.max_devices_per_activity;
    if devices.len() > max {
        // [guess] Apple documents no maximum; we reject with 422.
        return Err(ApiError::unprocessable(
            "/data/relationships/devices/data",
            format!(
                "At most {max} devices can be sent in one activity; got {}",
                devices.len()
            ),
        ));
    }
    let mut serials = Vec::with_capacity(devices.len());
    for (i, d) in devices.iter().enumerate() {
        if d["type"] != "orgDevices" {
            return Err(ApiError::conflict(
                "ENTITY_ERROR.RELATIONSHIP.INVALID",
                &format!("/data/relationships/devices/data/{i}/type"),
                "Device identifiers must have type 'orgDevices'",
            ));
        }
        let Some(id) = d["id"].as_str() else {
            return Err(ApiError::unprocessable(
                &format!("/data/relationships/devices/data/{i}/id"),
                "Device id is missing",
            ));
        };
        serials.push(id.to_string());
    }
    let server = if needs_server(activity_type) {
        let sd = &data["relationships"]["mdmServer"]["data"];
        let Some(id) = sd["id"].as_str() else {
            return Err(ApiError::unprocessable(
                "/data/relationships/mdmServer/data",
                format!("{activity_type} requires an mdmServer"),
            ));
        };
        if sd["type"] != "mdmServers" {
            return Err(ApiError::conflict(
                "ENTITY_ERROR.RELATIONSHIP.INVALID",
                "/data/relationships/mdmServer/data/type",
                "The server identifier must have type 'mdmServers'",
            ));
        }
        Some(org.server_index(id).ok_or_else(|| {
            ApiError::conflict(
                "ENTITY_ERROR.RELATIONSHIP.INVALID",
                "/data/relationships/mdmServer/data/id",
                format!("There is no device management service with id '{id}'"),
            )
        })?)
    } else {
        None
    };
    let deadline = if needs_deadline(activity_type) {
        let pointer = "/data/attributes/activityTypeMetadata/mdmMigrationDeadlineDateTime";
        let raw =
            data["attributes"]["activityTypeMetadata"]["mdmMigrationDeadlineDateTime"].as_str();
        let Some(t) = raw.and_then(crate::util::parse_iso) else {
            return Err(ApiError::unprocessable(
                pointer,
                format!("{activity_type} requires a valid mdmMigrationDeadlineDateTime"),
            ));
        };
        let earliest = if activity_type == "UPDATE_MDM_MIGRATION_DEADLINE" {
            OffsetDateTime::UNIX_EPOCH
        } else {
            now
        };
        if t < earliest || t > now + time::Duration::days(MAX_DEADLINE_DAYS) {
            return Err(ApiError::conflict(
                "ENTITY_ERROR.ATTRIBUTE.INVALID",
                pointer,
                "The migration deadline must be in the future and at most 90 days ahead",
            ));
        }
        Some(t)
    } else {
        None
    };

    let results: Vec<DeviceResult> = serials
        .iter()
        .map(|serial| {
            let found = org.device(serial).filter(|(_, d)| !d.released());
            let Some((idx, d)) = found else {
                return DeviceResult {
                    serial: serial.clone(),
                    index: None,
                    ok: false,
                    detail: NOT_IN_ORG,
                };
            };
            let failure = match activity_type {
                "UNASSIGN_DEVICES" if Some(d.server) != server => {
                    Some("Device is not assigned to this device management service")
                }
                "ASSIGN_DEVICES_WITH_MDM_MIGRATION_DEADLINE"
                    if d.flags & F_MIGRATION_CAPABLE == 0 =>
                {
                    Some("Device is not capable of MDM migration")
                }
                "UPDATE_MDM_MIGRATION_DEADLINE" | "CANCEL_MDM_MIGRATION"
                    if !matches!(d.migration, 1 | 2) =>
                {
                    Some("No MDM migration in progress for this device")
                }
                _ => None,
            };
            DeviceResult {
                serial: serial.clone(),
                index: Some(idx),
                ok: failure.is_none(),
                detail: failure.unwrap_or(""),
            }
        })
        .collect();
    let b = &shared.behaviour;
    let run = b.real(b.activity_phase_secs.iter().sum());
    let completes_at = now + time::Duration::seconds_f64(run.as_secs_f64());
    let visible_at =
        completes_at + time::Duration::seconds_f64(b.real(b.assignment_lag_secs).as_secs_f64());
    let id = shared.uuid();
    let act = Activity {
        id: id.clone(),
        activity_type: activity_type.into(),
        actor: ctx.client.clone(),
        created: now,
        server,
        server_name: server
            .and_then(|s| org.server(s))
            .map(|s| s.name.clone())
            .unwrap_or_default(),
        deadline,
        results,
        applied: false,
        completes_at,
        visible_at,
        fixed_status: None,
    };
    let doc = resource(shared, &act, now, &ctx.base());
    org.activities.insert(id, act);
    org.next_due = Some(org.next_due.map_or(visible_at, |d| d.min(visible_at)));
    drop(org);
    let mut stats = shared.stats();
    for s in serials {
        *stats.activities_per_serial.entry(s).or_default() += 1;
    }
    let mut doc = doc;
    if let Some(attrs) = doc["attributes"].as_object_mut() {
        attrs.remove("completedDateTime");
        attrs.remove("downloadUrl");
    }
    Ok(created(
        json!({ "data": doc, "links": { "self": format!("{}/v1/orgDeviceActivities", ctx.base()) } }),
    ))
}

/// `(status, subStatus, completedDateTime)` at `now`.
fn status(
    shared: &Shared,
    act: &Activity,
    now: OffsetDateTime,
) -> (String, String, Option<OffsetDateTime>) {
    if let Some((s, sub, done)) = &act.fixed_status {
        return (s.clone(), sub.clone(), *done);
    }
    let b = &shared.behaviour;
    let elapsed = (now - act.created).as_seconds_f64();
    let p = b.activity_phase_secs.map(|s| b.real(s).as_secs_f64());
    let in_progress = |sub: &str| ("IN_PROGRESS".to_string(), sub.to_string(), None);
    if elapsed < p[0] {
        return in_progress("SUBMITTED");
    }
    if elapsed < p[0] + p[1] {
        return in_progress("PROCESSING");
    }
    if now < act.completes_at {
        return in_progress("POST_PROCESSING");
    }
    let ok = act.results.iter().filter(|r| r.ok).count();
    let sub = if ok == act.results.len() {
        "COMPLETED_WITH_SUCCESS"
    } else if ok == 0 {
        "COMPLETED_WITH_ERROR"
    } else {
        "COMPLETED_WITH_FAILURE"
    };
    ("COMPLETED".into(), sub.into(), Some(act.completes_at))
}

fn signature(shared: &Shared, id: &str, expires: i64) -> String {
    format!(
        "{:016x}",
        crate::util::derive(shared.seed, u64::from(crate::util::tag(id)), expires as u64)
    )
}

fn log_name(t: OffsetDateTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "ABM-ActivityLog_{}-{}-{}_{:02}-{:02}-{:02}.csv",
        MONTHS[u8::from(t.month()) as usize - 1],
        t.day(),
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn resource(shared: &Shared, act: &Activity, now: OffsetDateTime, base: &str) -> Value {
    let (status, sub, done) = status(shared, act, now);
    let mut attrs =
        json!({ "status": status, "subStatus": sub, "createdDateTime": iso(act.created) });
    if let Some(done) = done {
        attrs["completedDateTime"] = json!(iso(done));
        let expires = (done
            + time::Duration::seconds_f64(
                shared
                    .behaviour
                    .real(shared.behaviour.download_url_lifetime_secs as f64)
                    .as_secs_f64(),
            ))
        .unix_timestamp();
        attrs["downloadUrl"] = json!(format!(
            "{base}/blobstore/activity-logs/{}/{}?Expires={expires}&Signature={}",
            act.id,
            log_name(done),
            signature(shared, &act.id, expires)
        ));
    }
    json!({
        "type": "orgDeviceActivities",
        "id": act.id,
        "attributes": attrs,
        "links": { "self": format!("{base}/v1/orgDeviceActivities/{}", act.id) },
    })
}

fn retained(shared: &Shared, act: &Activity, now: OffsetDateTime) -> bool {
    let days = f64::from(shared.behaviour.activity_retention_days) * 86_400.0;
    (now - act.created).as_seconds_f64() <= shared.behaviour.real(days).as_secs_f64()
}

/// `GET /v1/orgDeviceActivities/{id}`.
pub(crate) fn get(ctx: &Ctx, id: &str) -> ApiResult {
    const FIELDS: &[&str] = &[
        "status",
        "subStatus",
        "createdDateTime",
        "completedDateTime",
        "downloadUrl",
    ];
    ctx.query.check(&crate::jsonapi::Accepts {
        paged: false,
        fields: &[("orgDeviceActivities", FIELDS)],
        extra: &[],
    })?;
    let now = OffsetDateTime::now_utc();
    let org = ctx.shared.settled();
    let act = org
        .activities
        .get(id)
        .filter(|a| retained(&ctx.shared, a, now))
        .ok_or_else(|| ApiError::not_found("orgDeviceActivities", id))?;
    let mut doc = resource(&ctx.shared, act, now, &ctx.base());
    crate::jsonapi::apply_fields(&mut doc, ctx.query.fields("orgDeviceActivities").as_deref());
    Ok(ok(
        json!({ "data": doc, "links": { "self": format!("{}/v1/orgDeviceActivities/{id}", ctx.base()) } }),
    ))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Renders the activity log CSV (format of `fixtures/activity-log.example.csv`).
pub(crate) fn csv(act: &Activity) -> String {
    let mut out = String::from("Serial Number,Device Management Service,Activity,Status,Details\n");
    for r in &act.results {
        out.push_str(&format!(
            "{},{},{},{},{}\n",
            csv_field(&r.serial),
            csv_field(&act.server_name),
            act.activity_type,
            if r.ok { "SUCCESS" } else { "FAILED" },
            csv_field(r.detail)
        ));
    }
    out
}

/// `GET /blobstore/activity-logs/{id}/{file}?Expires=&Signature=` (pre-signed, no bearer token).
pub(crate) fn download(shared: &Shared, id: &str, raw_query: Option<&str>) -> Response {
    let q = crate::jsonapi::Query::parse(raw_query);
    let expires: i64 = q.get("Expires").and_then(|e| e.parse().ok()).unwrap_or(0);
    let valid = q.get("Signature") == Some(signature(shared, id, expires).as_str())
        && expires > OffsetDateTime::now_utc().unix_timestamp();
    let org = shared.org_read();
    match org.activities.get(id) {
        Some(act) if valid => (
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (header::CONTENT_DISPOSITION, "attachment"),
            ],
            csv(act),
        )
            .into_response(),
        // Blob stores answer expired or forged signatures with 403.
        _ => (
            StatusCode::FORBIDDEN,
            "AccessDenied: Request has expired or the signature does not match",
        )
            .into_response(),
    }
}

/// Applies an activity's effects to the org (called by `Org::settle`).
pub(crate) fn apply(org: &mut Org, act: &Activity, at: OffsetDateTime) {
    let actor = Actor::api(&act.actor);
    for r in act.results.iter().filter(|r| r.ok) {
        let Some(idx) = r.index else { continue };
        if org.devices[idx as usize].released() {
            continue;
        }
        let stamp = at.unix_timestamp() as u32;
        match act.activity_type.as_str() {
            "ASSIGN_DEVICES" => org.set_server(idx, act.server.unwrap_or(NO_SERVER), at, &actor),
            "ASSIGN_DEVICES_WITH_MDM_MIGRATION_DEADLINE" => {
                org.set_server(idx, act.server.unwrap_or(NO_SERVER), at, &actor);
                let d = &mut org.devices[idx as usize];
                d.migration = 1;
                d.migration_deadline = act.deadline.map_or(0, |t| t.unix_timestamp() as u32);
                d.updated = stamp;
            }
            "UNASSIGN_DEVICES" if Some(org.devices[idx as usize].server) == act.server => {
                org.set_server(idx, NO_SERVER, at, &actor);
            }
            "UPDATE_MDM_MIGRATION_DEADLINE" => {
                let d = &mut org.devices[idx as usize];
                d.migration_deadline = act.deadline.map_or(0, |t| t.unix_timestamp() as u32);
                d.updated = stamp;
            }
            "CANCEL_MDM_MIGRATION" => {
                let d = &mut org.devices[idx as usize];
                d.migration = 0;
                d.migration_deadline = 0;
                d.updated = stamp;
            }
            "RELEASE_DEVICES" => org.release(idx, at, &actor, "API"),
            _ => {}
        }
    }
}
