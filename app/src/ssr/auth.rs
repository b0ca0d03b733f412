//! Who is asking, and may they: the one place where server functions and pages check
//! access.
//!
//! The server's authentication middleware resolves the session once per request and
//! puts a [`CurrentUser`] into the request's extensions (absent when signed out). Every
//! server function starts with one of:
//!
//! - [`require_user`]: any signed-in user (their own profile, sign-out);
//! - [`require_permission`]: a role in the organization the call touches that allows the
//!   permission, as decided by `backend::identity::Role::allows` (the table of PRODUCT.md);
//! - [`require_instance_admin`]: instance-wide administration (organizations, users, SSO);
//! - [`require_administrator`]: an instance administrator or an organization's admin
//!   (the Settings hub).
//!
//! Nothing else decides access; `server/tests/roles.rs` walks every server function with
//! every role and compares the outcome with its own table.

use std::net::IpAddr;

use backend::audit::Actor;
use backend::identity::sessions::{SessionData, SessionTimeouts};
use backend::identity::{Permission, Role, UserId};
use backend::orgs::OrgId;
use backend::store::identity::Membership;
use leptos::prelude::*;
use tower_sessions::Session;

use crate::error::AppError;

/// The signed-in user of this request, as loaded from the database by the middleware
/// (so a disabled user or a removed role takes effect on the next request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentUser {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub instance_admin: bool,
    pub memberships: Vec<Membership>,
    /// Whether the user signs in with SSO (no local password to change).
    pub sso: bool,
}

impl CurrentUser {
    /// The user's role in `org`, if any.
    pub fn role_in(&self, org: OrgId) -> Option<Role> {
        self.memberships
            .iter()
            .find(|m| m.org_id == org)
            .map(|m| m.role)
    }

    /// Whether the user may do `permission` in `org`.
    pub fn may(&self, org: OrgId, permission: Permission) -> bool {
        self.role_in(org)
            .is_some_and(|role| role.allows(permission))
    }

    /// The audit actor for this user at `client_addr`.
    pub fn actor(&self, client_addr: Option<IpAddr>) -> Actor {
        Actor {
            user_id: Some(self.id.0),
            client_addr,
        }
    }
}

/// The client's address as the server determined it (peer address, or the configured
/// trusted proxy header), put into the request extensions by the middleware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

fn parts() -> Option<http::request::Parts> {
    use_context::<http::request::Parts>()
}

/// The signed-in user, if any.
pub fn current_user() -> Option<CurrentUser> {
    parts().and_then(|p| p.extensions.get::<CurrentUser>().cloned())
}

/// The client's address, if known.
pub fn client_addr() -> Option<IpAddr> {
    parts().and_then(|p| p.extensions.get::<ClientAddr>().map(|a| a.0))
}

/// The audit actor of this request: the signed-in user (or nobody) and the address.
pub fn actor() -> Actor {
    current_user().map_or(
        Actor {
            user_id: None,
            client_addr: client_addr(),
        },
        |user| user.actor(client_addr()),
    )
}

/// Any signed-in user; `Unauthenticated` otherwise.
pub fn require_user() -> Result<CurrentUser, AppError> {
    current_user().ok_or_else(|| refuse(AppError::Unauthenticated))
}

/// Marks the response with the refusal's status right where access is decided, so a page
/// whose data was refused is served as 401/403 even before its error boundary renders.
pub(crate) fn refuse(error: AppError) -> AppError {
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>()
        && let Ok(status) = http::StatusCode::from_u16(error.status())
    {
        response.set_status(status);
    }
    error
}

/// A signed-in user whose role in `org` allows `permission`. `Forbidden` both when the
/// user has no role there and when the role does not allow it, so that a caller cannot
/// probe which organizations exist.
pub fn require_permission(org: OrgId, permission: Permission) -> Result<CurrentUser, AppError> {
    let user = require_user()?;
    if user.may(org, permission) {
        Ok(user)
    } else {
        tracing::info!(user = %user.id, %org, ?permission, "access refused");
        Err(refuse(AppError::Forbidden))
    }
}

/// A signed-in user who is an instance administrator or whose role in some organization
/// allows one of `permissions` (the Settings hub: those who administer something).
pub fn require_administrator(permissions: &[Permission]) -> Result<CurrentUser, AppError> {
    let user = require_user()?;
    let administers = user
        .memberships
        .iter()
        .any(|m| permissions.iter().any(|p| m.role.allows(*p)));
    if user.instance_admin || administers {
        Ok(user)
    } else {
        tracing::info!(user = %user.id, "administration refused");
        Err(refuse(AppError::Forbidden))
    }
}

/// A signed-in instance administrator (creates organizations, manages users and SSO).
pub fn require_instance_admin() -> Result<CurrentUser, AppError> {
    let user = require_user()?;
    if user.instance_admin {
        Ok(user)
    } else {
        tracing::info!(user = %user.id, "instance administration refused");
        Err(refuse(AppError::Forbidden))
    }
}

/// Parses an organization id that came over the wire; unknown shapes read as not found.
pub fn parse_org(id: &str) -> Result<OrgId, AppError> {
    uuid::Uuid::try_parse(id.trim())
        .map(OrgId)
        .map_err(|_| AppError::NotFound {
            what: "Organization".to_owned(),
        })
}

/// The request's session (tower-sessions puts it into the extensions).
pub fn session() -> Result<Session, AppError> {
    parts()
        .and_then(|p| p.extensions.get::<Session>().cloned())
        .ok_or_else(|| crate::ssr::internal("session layer missing"))
}

/// Starts a signed-in session for `user` who authenticated at `auth_time`, on this
/// request's session.
pub async fn establish_session(
    user: UserId,
    auth_time: time::OffsetDateTime,
) -> Result<(), AppError> {
    let timeouts = crate::ssr::state()?.timeouts;
    start_session(&session()?, &timeouts, user, auth_time).await
}

/// Starts a signed-in session on `session`: a new session id first (so an id planted
/// before sign-in is worthless), then the `auth.*` bucket and the record's expiry.
pub async fn start_session(
    session: &Session,
    timeouts: &SessionTimeouts,
    user: UserId,
    auth_time: time::OffsetDateTime,
) -> Result<(), AppError> {
    session
        .cycle_id()
        .await
        .map_err(|_| crate::ssr::internal("session id rotation failed"))?;
    let data = SessionData::new(user, auth_time);
    data.store(session)
        .await
        .map_err(|_| crate::ssr::internal("session write failed"))?;
    session.set_expiry(Some(tower_sessions::Expiry::AtDateTime(
        timeouts.expiry(&data, auth_time),
    )));
    Ok(())
}

/// Ends the session: the server-side record is deleted and the cookie cleared.
pub async fn end_session() -> Result<(), AppError> {
    session()?
        .flush()
        .await
        .map_err(|_| crate::ssr::internal("session deletion failed"))
}
