//! Authentication at the edge: sessions, who is signed in, and the sign-in gate.
//!
//! Per request, [`authenticate`] reads the session once, checks its idle and absolute
//! limits, reloads the user from the database (a disabled user or a changed role takes
//! effect at once) and puts a [`CurrentUser`] into the request extensions, where
//! `app::ssr::auth` finds it. Signed-out requests reach only the public routes listed in
//! [`is_public`]; other pages redirect to the sign-in page, other server functions answer
//! 401. What a signed-in user may do is decided by the server functions themselves, through
//! `app::ssr::auth::require_*`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use app::error::AppError;
pub(crate) use app::model::query_escape;
use app::ssr::AppState;
use app::ssr::auth::{ClientAddr, CurrentUser};
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use backend::Config;
use backend::identity::sessions::{DbSessionStore, SessionData, SessionValidity};
use backend::store::StoreError;
use http::{HeaderValue, Method, StatusCode, header};
use leptos::server_fn::ServerFn;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "orchard_session";

/// How often a session's `last_seen` is written: the idle timeout is exact to this much,
/// and an active user costs one session write per interval rather than per request.
pub const TOUCH_INTERVAL: Duration = Duration::from_secs(60);

/// The tower-sessions layer on Orchard's database: HttpOnly, SameSite=Lax (the SSO
/// callback is a top-level GET from the provider, which Lax allows and Strict would
/// not), Secure unless this is a plain-http loopback instance.
pub fn session_layer(
    config: &Config,
    store: DbSessionStore,
) -> SessionManagerLayer<DbSessionStore> {
    let idle =
        time::Duration::seconds(i64::try_from(config.auth.idle_timeout_secs).unwrap_or(i64::MAX));
    SessionManagerLayer::new(store)
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(config.server.wants_secure_cookies(&config.auth))
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(idle))
}

/// Resolves the signed-in user and the client address, then lets the request through or
/// sends a signed-out visitor to the sign-in page.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    // Static files are public and never need the user: no session or user lookups for them.
    if is_static_asset(request.uri().path()) {
        return next.run(request).await;
    }
    let client = client_addr(&request, state.config.server.trust_forwarded_for);
    request.extensions_mut().insert(ClientAddr(client));
    let session = request.extensions().get::<Session>().cloned();
    let user = match session {
        Some(session) => match resolve(&state, &session).await {
            Ok(user) => user,
            Err(response) => return *response,
        },
        None => None,
    };
    let signed_in = user.is_some();
    if let Some(user) = user {
        request.extensions_mut().insert(user);
    }
    if signed_in || is_public(request.uri().path(), &state) {
        return next.run(request).await;
    }
    let target = request
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned());
    refuse_signed_out(&state, request.method().clone(), target).await
}

/// The user of a valid session, or `None` (ending an expired or orphaned session).
async fn resolve(
    state: &AppState,
    session: &Session,
) -> Result<Option<CurrentUser>, Box<Response>> {
    let data = SessionData::load(session)
        .await
        .map_err(|_| Box::new(internal_error("session read failed")))?;
    let Some(mut data) = data else {
        return Ok(None);
    };
    let now = backend::identity::now_utc();
    let validity = state.timeouts.check(&data, now);
    if validity != SessionValidity::Valid {
        tracing::info!(user = %data.user_id, ?validity, "session ended by timeout");
        let _ = session.flush().await;
        return Ok(None);
    }
    let (user, memberships) = match state.store.user_with_memberships(data.user_id).await {
        Ok((user, memberships)) if !user.disabled => (user, memberships),
        Ok(_) | Err(StoreError::NotFound { .. }) => {
            tracing::info!(user = %data.user_id, "session of a disabled or deleted user ended");
            let _ = session.flush().await;
            return Ok(None);
        }
        Err(_) => return Err(Box::new(internal_error("user lookup failed"))),
    };
    if now - data.last_seen >= TOUCH_INTERVAL {
        data.last_seen = now;
        data.store(session)
            .await
            .map_err(|_| Box::new(internal_error("session write failed")))?;
        session.set_expiry(Some(Expiry::AtDateTime(state.timeouts.expiry(&data, now))));
    }
    Ok(Some(CurrentUser {
        id: user.id,
        username: user.username,
        display_name: user.display_name,
        instance_admin: user.instance_admin,
        memberships,
        sso: user.oidc.is_some(),
    }))
}

/// Routes a signed-out visitor may use: the sign-in and setup pages, SSO, static assets,
/// and the server functions those pages call.
pub fn is_public(path: &str, state: &AppState) -> bool {
    const PAGES: [&str; 3] = ["/login", "/setup", "/auth/oidc/start"];
    let public_fns = [
        app::api::SignIn::PATH,
        app::api::CompleteSetup::PATH,
        app::api::GetMe::PATH,
        app::api::GetSignInOptions::PATH,
        app::api::SetTheme::PATH,
    ];
    let callback = state
        .oidc
        .as_ref()
        .map(|oidc| oidc.config().redirect_path.as_str());
    is_static_asset(path)
        || PAGES.contains(&path)
        || public_fns.contains(&path)
        || Some(path) == callback
}

/// The built front end and the icon, served from `site.root`.
fn is_static_asset(path: &str) -> bool {
    path.starts_with("/pkg/") || path == "/favicon.svg"
}

async fn refuse_signed_out(state: &AppState, method: Method, target: String) -> Response {
    if target.starts_with("/api/") || method != Method::GET {
        let body = String::from_utf8(
            leptos::server_fn::error::FromServerFnError::ser(&AppError::Unauthenticated).to_vec(),
        )
        .unwrap_or_default();
        return (
            StatusCode::UNAUTHORIZED,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
    }
    // Before the first administrator exists, every page leads to setup.
    if matches!(state.store.count_users().await, Ok(0)) {
        return Redirect::to("/setup").into_response();
    }
    let login = if target == "/" {
        "/login".to_owned()
    } else {
        format!("/login?next={}", query_escape(&target))
    };
    Redirect::to(&login).into_response()
}

/// The client's address: the peer, or the last `X-Forwarded-For` hop when configured.
fn client_addr(request: &Request, trust_forwarded_for: bool) -> IpAddr {
    if trust_forwarded_for
        && let Some(forwarded) = request
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
    {
        return forwarded;
    }
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip())
}

pub(crate) fn internal_error(context: &str) -> Response {
    let AppError::Internal { incident_id } = app::ssr::internal(context) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("Something went wrong on the server (incident {incident_id})."),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_paths_are_escaped_for_the_query() {
        assert_eq!(
            query_escape("/devices?q=C02 X&y=1"),
            "/devices%3Fq%3DC02%20X%26y%3D1"
        );
    }
}
