//! Test hooks under `/_sim/` (a prefix Apple does not use). No auth. See the
//! crate docs for the routes and their JSON shapes.

use crate::config::FaultConfig;
use crate::generate;
use crate::model::*;
use crate::state::{FaultState, Shared};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::sync::Arc;
use time::OffsetDateTime;

/// Devices per chunk of the streamed truth dump (one lock acquisition each).
const TRUTH_CHUNK: usize = 5_000;

async fn stats(State(s): State<Arc<Shared>>) -> Json<Value> {
    let st = s.stats().clone();
    let mut v = serde_json::to_value(&st).unwrap_or_default();
    v["pagesFetchedTwice"] = json!(st.pages_fetched_twice());
    Json(v)
}

async fn reset_stats(State(s): State<Arc<Shared>>) -> StatusCode {
    *s.stats() = Default::default();
    StatusCode::NO_CONTENT
}

async fn get_faults(State(s): State<Arc<Shared>>) -> Json<FaultConfig> {
    Json(s.faults().config.clone())
}

async fn set_faults(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<FaultConfig>(&body) {
        Ok(cfg) => {
            *s.faults() = FaultState::new(cfg.clone(), s.seed);
            Json(cfg).into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

fn truth_line(org: &Org, i: usize) -> Value {
    let d = &org.devices[i];
    json!({
        "serialNumber": d.serial.as_str(),
        "status": if d.server == NO_SERVER { "UNASSIGNED" } else { "ASSIGNED" },
        "assignedServerId": org.server(d.server).map(|s| s.id.clone()),
        "released": d.released(),
        "productFamily": crate::render::model_of(d).family,
        "updatedDateTime": crate::util::iso_secs(d.updated, 0),
    })
}

/// Streams NDJSON: one summary line, then one line per device (released ones too).
async fn truth(State(s): State<Arc<Shared>>) -> Response {
    let head = {
        let org = s.settled();
        let servers: Vec<Value> = org
            .servers
            .iter()
            .flatten()
            .map(|sv| json!({ "id": sv.id, "serverName": sv.name, "serverType": sv.server_type, "deviceCount": sv.device_count }))
            .collect();
        json!({ "kind": "summary", "devices": org.devices.len(), "servers": servers, "activities": org.activities.len(), "auditEvents": org.audit.len() })
    };
    let first = Bytes::from(format!("{head}\n"));
    let rest = futures::stream::unfold((s, 0usize), |(s, pos)| async move {
        let chunk = {
            let org = s.org_read();
            if pos >= org.devices.len() {
                return None;
            }
            let end = (pos + TRUTH_CHUNK).min(org.devices.len());
            let mut out = String::with_capacity((end - pos) * 160);
            for i in pos..end {
                out.push_str(&truth_line(&org, i).to_string());
                out.push('\n');
            }
            (out, end)
        };
        Some((
            Ok::<Bytes, std::io::Error>(Bytes::from(chunk.0)),
            (s, chunk.1),
        ))
    });
    let stream = futures::StreamExt::chain(
        futures::stream::once(async move { Ok::<Bytes, std::io::Error>(first) }),
        rest,
    );
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response()
}

fn serials(v: &Value) -> Vec<String> {
    v["serials"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// `POST /_sim/mutate`: changes the org directly, bypassing activities and lag.
async fn mutate(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": e.to_string() })),
            )
                .into_response();
        }
    };
    let now = OffsetDateTime::now_utc();
    let mut org = s.settled_mut();
    let actor = Actor::system();
    let mut done = Vec::new();
    let mut unknown = Vec::new();
    let server = match v["serverId"].as_str() {
        Some(id) => match org.server_index(id) {
            Some(i) => i,
            None => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({ "error": format!("unknown serverId {id}") })),
                )
                    .into_response();
            }
        },
        None => NO_SERVER,
    };
    match v["op"].as_str() {
        Some("addDevices") => {
            let count = v["count"].as_u64().unwrap_or(1).min(1_000_000);
            let cum = generate::model_weights();
            for _ in 0..count {
                let n = org.next_device_ordinal;
                org.next_device_ordinal += 1;
                let mut rng = ChaCha8Rng::seed_from_u64(org.seed ^ n.wrapping_mul(0x9E37_79B9));
                let mut d = generate::make_device(&org, &mut rng, n, now, &cum);
                d.added = now.unix_timestamp() as u32;
                d.updated = d.added;
                d.ordered = d.ordered.min(d.added);
                if org.index.contains_key(&d.serial) {
                    continue;
                }
                let idx = org.devices.len() as u32;
                let serial = d.serial.as_str().to_string();
                let source = SOURCE_TYPES[d.source as usize];
                let source_id = crate::render::source_id(&org, &d);
                org.index.insert(d.serial, idx);
                org.devices.push(d);
                org.audit_push(now, "DEVICE_ADDED_TO_ORG", "DEVICE_INVENTORY", &actor, ("DEVICE", &serial, &serial), "eventDataDeviceAddedToOrg", json!({"serialNumber": serial, "purchaseSourceType": source, "purchaseSourceId": source_id}));
                if server != NO_SERVER {
                    org.set_server(idx, server, now, &actor);
                }
                done.push(serial);
            }
        }
        Some(op @ ("releaseDevices" | "reassignDevices" | "setAttributes")) => {
            for serial in serials(&v) {
                let Some((idx, d)) = org.device(&serial) else {
                    unknown.push(serial);
                    continue;
                };
                if d.released() {
                    unknown.push(serial);
                    continue;
                }
                match op {
                    "releaseDevices" => org.release(idx, now, &actor, "USER"),
                    "reassignDevices" => org.set_server(idx, server, now, &actor),
                    _ => {
                        let d = &mut org.devices[idx as usize];
                        let o = d.overrides.get_or_insert_with(Default::default);
                        for (k, val) in v["attributes"].as_object().into_iter().flatten() {
                            o.insert(k.clone(), val.clone());
                        }
                        d.updated = now.unix_timestamp() as u32;
                    }
                }
                done.push(serial);
            }
        }
        _ => {
            return (StatusCode::BAD_REQUEST, Json(json!({ "error": "op must be addDevices, releaseDevices, reassignDevices or setAttributes" }))).into_response();
        }
    }
    Json(json!({ "ok": true, "serials": done, "unknown": unknown })).into_response()
}

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_sim/stats", get(stats))
        .route("/_sim/reset-stats", post(reset_stats))
        .route("/_sim/faults", get(get_faults).post(set_faults))
        .route("/_sim/truth", get(truth))
        .route("/_sim/mutate", post(mutate))
}
