//! Single sign-on routes: `/auth/oidc/start` sends the browser to the provider,
//! the callback (`[oidc] redirect_path`) finishes the sign-in.
//!
//! The pending sign-in (state, nonce, PKCE verifier) lives in the server-side session
//! and is removed before the code is exchanged, so a replayed callback finds nothing.
//! Every failure returns to the sign-in page with a plain message; the details go to
//! the log and, for rejected tokens, to Orchard's audit log.

use app::ssr::AppState;
use app::ssr::auth::{ClientAddr, start_session};

use crate::auth::{internal_error as internal, query_escape};
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use backend::audit::{self, Actor, AuditAction};
use backend::identity::sso::roles_for_groups;
use backend::identity::users::{SsoIdentity, UserAdminError, find_or_create_sso_user};
use backend::oidc::{OidcIdentity, PendingLogin, safe_next};
use serde::Deserialize;
use tower_sessions::Session;

/// Session key of the sign-in in progress.
const PENDING_KEY: &str = "oidc.pending";

#[derive(Debug, Deserialize)]
pub struct StartQuery {
    next: Option<String>,
}

/// Starts an SSO sign-in: remembers a fresh state, nonce and PKCE verifier in the
/// session, then redirects to the provider's authorization endpoint.
pub async fn start(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    Query(query): Query<StartQuery>,
) -> Response {
    let Some(cache) = state.oidc.clone() else {
        return (StatusCode::NOT_FOUND, "Single sign-on is not configured.").into_response();
    };
    let provider = match cache.provider().await {
        Ok(provider) => provider,
        Err(err) => {
            tracing::warn!(
                error = &err as &dyn std::error::Error,
                "SSO provider unavailable"
            );
            return back_to_login(
                "The sign-in service cannot be reached right now. Try again later, or sign in with a password.",
            );
        }
    };
    let redirect_uri = format!(
        "{}{}",
        origin(&state, &headers),
        cache.config().redirect_path
    );
    let (url, pending) = provider.begin(&redirect_uri, query.next.as_deref());
    if session.insert(PENDING_KEY, &pending).await.is_err() {
        return internal("session write failed");
    }
    Redirect::to(url.as_str()).into_response()
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

/// Finishes an SSO sign-in: checks the pending login, exchanges the code, validates the
/// ID token, provisions the user with the roles their groups map to, and signs them in.
pub async fn callback(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let Some(cache) = state.oidc.clone() else {
        return (StatusCode::NOT_FOUND, "Single sign-on is not configured.").into_response();
    };
    let actor = Actor {
        user_id: None,
        client_addr: Some(client),
    };
    // Taken out first: whatever happens next, this pending sign-in is spent.
    let pending: Option<PendingLogin> = match session.remove(PENDING_KEY).await {
        Ok(pending) => pending,
        Err(_) => return internal("session read failed"),
    };
    let Some(pending) = pending else {
        return back_to_login("This sign-in link was already used or has expired. Start again.");
    };
    if let Some(error) = query.error.as_deref() {
        tracing::info!(error, "the identity provider refused the sign-in");
        return back_to_login("The sign-in service did not sign you in. Start again.");
    }
    let (Some(returned_state), Some(code)) = (query.state.as_deref(), query.code.as_deref()) else {
        return back_to_login("The sign-in service sent an incomplete answer. Start again.");
    };
    let next = pending.next().map(str::to_owned);
    let provider = match cache.provider().await {
        Ok(provider) => provider,
        Err(err) => {
            tracing::warn!(
                error = &err as &dyn std::error::Error,
                "SSO provider unavailable"
            );
            return back_to_login("The sign-in service cannot be reached right now.");
        }
    };
    let identity = match provider.complete(pending, returned_state, code).await {
        Ok(identity) => identity,
        Err(err) => {
            tracing::warn!(
                error = &err as &dyn std::error::Error,
                "SSO sign-in rejected"
            );
            let _ = audit::append(
                state.store.as_ref(),
                &actor,
                AuditAction::SignInFailed,
                "auth",
                serde_json::json!({ "method": "sso", "reason": err.to_string() }),
            )
            .await;
            return back_to_login(
                "Single sign-on failed: the answer from the sign-in service did not pass Orchard's checks. Start again.",
            );
        }
    };
    let roles = match roles_for_groups(
        state.store.as_ref(),
        &cache.config().role_map,
        &identity.groups,
    )
    .await
    {
        Ok(roles) => roles,
        Err(_) => return internal("SSO role lookup failed"),
    };
    let now = backend::identity::now_utc();
    let user =
        match find_or_create_sso_user(state.store.as_ref(), &sso_identity(&identity), &roles, now)
            .await
        {
            Ok(user) => user,
            Err(UserAdminError::Disabled) => {
                return back_to_login("Your Orchard account is disabled. Ask an administrator.");
            }
            Err(err) => {
                tracing::error!(
                    error = &err as &dyn std::error::Error,
                    "SSO user provisioning failed"
                );
                return internal("SSO user provisioning failed");
            }
        };
    if start_session(&session, &state.timeouts, user.id, now)
        .await
        .is_err()
    {
        return internal("session start failed");
    }
    let _ = state.store.set_last_login(user.id, now).await;
    let roles_text: Vec<String> = roles
        .iter()
        .map(|(org, role)| format!("{org}:{}", role.as_str()))
        .collect();
    if let Err(err) = audit::append(
        state.store.as_ref(),
        &Actor {
            user_id: Some(user.id.0),
            client_addr: Some(client),
        },
        AuditAction::SignedIn,
        &format!("user:{}", user.id),
        serde_json::json!({ "method": "sso", "issuer": identity.issuer, "roles": roles_text }),
    )
    .await
    {
        tracing::error!(
            error = &err as &dyn std::error::Error,
            "audit append failed"
        );
    }
    let target = next
        .as_deref()
        .and_then(safe_next)
        .unwrap_or_else(|| "/".to_owned());
    Redirect::to(&target).into_response()
}

fn sso_identity(identity: &OidcIdentity) -> SsoIdentity {
    let preferred = identity
        .preferred_username
        .clone()
        .or_else(|| identity.email.clone().filter(|_| identity.email_verified))
        .unwrap_or_else(|| identity.subject.clone());
    SsoIdentity {
        issuer: identity.issuer.clone(),
        subject: identity.subject.clone(),
        display_name: identity.name.clone().unwrap_or_else(|| preferred.clone()),
        preferred_username: preferred,
        email: identity.email.clone(),
    }
}

/// The origin people reach Orchard at: `server.public_url`, else this request's Host.
fn origin(state: &AppState, headers: &HeaderMap) -> String {
    match state.config.server.public_url.trim_end_matches('/') {
        "" => {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("127.0.0.1");
            format!("http://{host}")
        }
        origin => origin.to_owned(),
    }
}

fn back_to_login(message: &str) -> Response {
    Redirect::to(&format!("/login?sso_error={}", query_escape(message))).into_response()
}
