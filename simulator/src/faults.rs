//! The request gate in front of every `/v1` route: bearer auth, added latency,
//! per-client budgets (429 + `Retry-After`), random 5xx, and connection faults
//! (reset mid-body, close after N pages). Also records per-route statistics.
//!
//! Random draws come from one seeded ChaCha8 stream, drawn in a fixed order per
//! request (latency jitter, then error, then reset), so a sequential client sees
//! the same faults on every run with the same seed. Concurrent clients see the
//! same *multiset* of draws but may interleave them differently.

use crate::config::{Behaviour, Budget, CloseMode};
use crate::jsonapi::{ApiError, PageServed};
use crate::model::OrgKind;
use crate::state::{FaultState, Shared, Window};
use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use std::net::SocketAddr;
use std::sync::Arc;
use time::OffsetDateTime;

/// Per-connection fault counters kept at most for this many connections.
const MAX_TRACKED_CONNECTIONS: usize = 10_000;

/// The client id of an authenticated `/v1` request (a request extension).
#[derive(Debug, Clone)]
pub(crate) struct ClientId(pub String);

/// Counts a request as in flight for its client until dropped (also when the
/// client disconnects and the handler future is cancelled).
struct InFlight {
    shared: Arc<Shared>,
    client: String,
}

impl InFlight {
    /// Enters and returns the guard plus the number in flight including this one.
    fn enter(shared: &Arc<Shared>, client: &str) -> (Self, u32) {
        let mut f = shared.faults();
        let n = f.in_flight.entry(client.to_string()).or_default();
        *n += 1;
        let count = *n;
        drop(f);
        (
            Self {
                shared: shared.clone(),
                client: client.to_string(),
            },
            count,
        )
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut f = self.shared.faults();
        if let Some(n) = f.in_flight.get_mut(&self.client) {
            *n = n.saturating_sub(1);
        }
    }
}

/// Spends one unit of `budget` for `(client, bucket)`; returns `Some(retry_after_secs)`
/// when the budget is exhausted in the current window.
pub(crate) fn spend(
    f: &mut FaultState,
    b: &Behaviour,
    client: &str,
    bucket: &'static str,
    budget: Budget,
    now: OffsetDateTime,
) -> Option<u64> {
    let len = b.real(budget.window_secs);
    let len = time::Duration::seconds_f64(len.as_secs_f64());
    let w = f
        .windows
        .entry((client.to_string(), bucket))
        .or_insert(Window {
            start: now,
            count: 0,
        });
    if now >= w.start + len {
        *w = Window {
            start: now,
            count: 0,
        };
    }
    if w.count >= budget.requests {
        let remaining = (w.start + len - now).as_seconds_f64();
        return Some(remaining.ceil().max(1.0) as u64);
    }
    w.count += 1;
    None
}

/// Paths that exist only in Apple Business; an Apple School Manager org answers 404.
fn business_only(route: &str, method: &Method) -> bool {
    const PREFIXES: [&str; 9] = [
        "/v1/mdmDevices",
        "/v1/users",
        "/v1/userGroups",
        "/v1/organizationalUnits",
        "/v1/apps",
        "/v1/packages",
        "/v1/blueprints",
        "/v1/configurations",
        "/v1/auditEvents",
    ];
    PREFIXES.iter().any(|p| route.starts_with(p))
        || (route.starts_with("/v1/mdmServers") && method != Method::GET)
}

pub(crate) fn record(shared: &Shared, method: &Method, route: &str, status: StatusCode) {
    let mut stats = shared.stats();
    *stats
        .requests
        .entry(format!("{method} {route}"))
        .or_default()
        .entry(status.as_u16())
        .or_default() += 1;
    if status == StatusCode::TOO_MANY_REQUESTS {
        stats.rate_limited += 1;
    }
}

/// A response whose body stops halfway with an error, which makes the server drop the connection.
async fn truncated(resp: Response) -> Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let half = bytes.slice(..bytes.len() / 2);
    parts.headers.remove(header::CONTENT_LENGTH);
    let chunks: Vec<Result<axum::body::Bytes, std::io::Error>> = vec![
        Ok(half),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated connection reset",
        )),
    ];
    Response::from_parts(parts, Body::from_stream(futures::stream::iter(chunks)))
}

/// The gate middleware (see the module note).
pub(crate) async fn gate(
    State(shared): State<Arc<Shared>>,
    mut req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let conn = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);

    let latency = {
        let mut f = shared.faults();
        let jitter = f.config.latency_jitter_ms;
        let extra = if jitter > 0 {
            f.rng.gen_range(0..=jitter)
        } else {
            0
        };
        f.config.latency_ms + extra
    };

    let resp = 'resp: {
        let authz = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let Some(client) = crate::auth::bearer(&shared, authz) else {
            break 'resp ApiError::unauthorized().into_response();
        };
        if shared.org_read().kind == OrgKind::School && business_only(&route, &method) {
            break 'resp ApiError::path_not_found(req.uri().path()).into_response();
        }
        let now = OffsetDateTime::now_utc();
        let (limited, omit, error, doomed, undercut) = {
            let mut f = shared.faults();
            let (bucket, budget) = if method == Method::GET {
                ("GET", f.config.get_budget)
            } else {
                ("POST", f.config.post_budget)
            };
            let key = (client.clone(), bucket);
            let undercut = f
                .retry_after_until
                .get(&key)
                .is_some_and(|until| now < *until);
            let limited =
                budget.and_then(|b| spend(&mut f, &shared.behaviour, &client, bucket, b, now));
            let omit = f.config.omit_retry_after;
            if let (Some(secs), false) = (limited, omit) {
                // The client is told to wait `secs` from now (the header's whole seconds).
                let until =
                    now + time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 2));
                f.retry_after_until.insert(key, until);
            }
            let rate = f.config.error_rate;
            let error = limited.is_none() && rate > 0.0 && f.rng.gen_bool(rate.clamp(0.0, 1.0));
            let status = [
                StatusCode::INTERNAL_SERVER_ERROR,
                StatusCode::BAD_GATEWAY,
                StatusCode::SERVICE_UNAVAILABLE,
            ][f.rng.gen_range(0..3)];
            let doomed = conn.is_some_and(|c| f.doomed.remove(&c));
            (limited, omit, error.then_some(status), doomed, undercut)
        };
        if undercut {
            shared.stats().retry_after_undercut += 1;
        }
        if let Some(retry_after) = limited {
            break 'resp ApiError::rate_limited((!omit).then_some(retry_after)).into_response();
        }
        if let Some(status) = error {
            shared.stats().injected_errors += 1;
            break 'resp ApiError::server_error(status).into_response();
        }
        let (_in_flight, concurrent) = InFlight::enter(&shared, &client);
        let over_concurrency = shared
            .faults()
            .config
            .max_concurrent_requests
            .is_some_and(|max| concurrent > max);
        req.extensions_mut().insert(ClientId(client));
        // Latency is served while the request counts as in flight, so it widens fan-out overlap.
        if latency > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
        }
        let resp = next.run(req).await;
        if doomed || over_concurrency {
            shared.stats().connections_reset += 1;
            break 'resp truncated(resp).await;
        }
        let (reset, close) = {
            let mut f = shared.faults();
            let rate = f.config.reset_rate;
            let reset =
                resp.status().is_success() && rate > 0.0 && f.rng.gen_bool(rate.clamp(0.0, 1.0));
            let mut close = None;
            if let (Some(n), Some(c), true) = (
                f.config.close_connection_after_pages,
                conn,
                resp.extensions().get::<PageServed>().is_some(),
            ) {
                // Closed connections never report back; cap the map instead of tracking closes.
                if f.pages_per_conn.len() > MAX_TRACKED_CONNECTIONS {
                    f.pages_per_conn.clear();
                    f.doomed.clear();
                }
                let count = f.pages_per_conn.entry(c).or_default();
                *count += 1;
                if *count >= n.max(1) {
                    f.pages_per_conn.remove(&c);
                    close = Some(f.config.close_mode);
                    if f.config.close_mode == CloseMode::Abort {
                        f.doomed.insert(c);
                    }
                }
            }
            (reset, close)
        };
        if reset {
            shared.stats().connections_reset += 1;
            break 'resp truncated(resp).await;
        }
        let mut resp = resp;
        if close == Some(CloseMode::Graceful) {
            shared.stats().connections_closed += 1;
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    };
    record(&shared, &method, &route, resp.status());
    resp
}
