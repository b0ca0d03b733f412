//! User administration: list users, create local users, give and take roles, disable,
//! reset a second factor or a password.
//!
//! Access: everything here is for instance administrators, except giving and removing a
//! role in one organization, which an admin of that organization (who holds
//! `Permission::ManageUsers` there) may also do. Only instance administrators see the
//! list of every user, since users are instance-wide. Each change is written to Orchard's
//! audit log with subject `user:<id>`; no password, hash or secret ever enters it.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use crate::error::AppError;
use crate::model::users::UsersOverview;

/// Every user with their roles, and the organizations a role can be given in.
#[server(input = GetUrl, prefix = "/api")]
pub async fn list_users() -> Result<UsersOverview, AppError> {
    use crate::api::support::rfc3339;
    use crate::model::users::{OrgOption, UserRole, UserSummary};

    let me = crate::ssr::auth::require_instance_admin()?;
    let state = crate::ssr::state()?;
    let organizations = state.store.list_organizations().await?;
    let users = backend::identity::users::list_users(state.store.as_ref())
        .await
        .map_err(|e| crate::api::support::user_admin_error(e, "password"))?;
    let org_name = |id| {
        organizations
            .iter()
            .find(|o| o.id == id)
            .map_or_else(|| id.to_string(), |o| o.name.clone())
    };
    let users = users
        .into_iter()
        .map(|u| {
            let mut roles: Vec<UserRole> = u
                .memberships
                .iter()
                .map(|m| UserRole {
                    org_id: m.org_id.to_string(),
                    org_name: org_name(m.org_id),
                    role: m.role.as_str().to_owned(),
                })
                .collect();
            roles.sort_by(|a, b| a.org_name.cmp(&b.org_name));
            UserSummary {
                id: u.user.id.to_string(),
                username: u.user.username,
                display_name: u.user.display_name,
                email: u.user.email,
                sso: u.user.oidc.is_some(),
                totp_enabled: u.user.totp_enabled,
                disabled: u.user.disabled,
                instance_admin: u.user.instance_admin,
                last_sign_in: u.user.last_login_at.map(rfc3339),
                roles,
            }
        })
        .collect();
    let mut organizations: Vec<OrgOption> = organizations
        .into_iter()
        .map(|o| OrgOption {
            id: o.id.to_string(),
            name: o.name,
        })
        .collect();
    organizations.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(UsersOverview {
        users,
        organizations,
        my_id: me.id.to_string(),
    })
}

/// Creates a local user with an initial password and, optionally, a role in one
/// organization. Returns the new user's id.
#[server(prefix = "/api")]
pub async fn create_user(
    username: String,
    #[server(default)] display_name: String,
    #[server(default)] email: Option<String>,
    password: String,
    password_confirm: String,
    #[server(default)] org: Option<String>,
    #[server(default)] role: Option<String>,
) -> Result<String, AppError> {
    use backend::audit::AuditAction;
    use backend::identity::password::Password;
    use backend::identity::users::NewLocalUser;

    use crate::api::support::{record, user_admin_error, user_subject};

    crate::ssr::auth::require_instance_admin()?;
    if password != password_confirm {
        return Err(AppError::validation(
            "password_confirm",
            "The two passwords differ.",
        ));
    }
    let role = match (
        org.as_deref().map(str::trim),
        role.as_deref().map(str::trim),
    ) {
        (Some(org), Some(role)) if !org.is_empty() && !role.is_empty() => {
            Some((crate::ssr::auth::parse_org(org)?, parse_role(role)?))
        }
        _ => None,
    };
    let state = crate::ssr::state()?;
    let user = backend::identity::users::create_user(
        state.store.as_ref(),
        &state.authenticator.hasher,
        &NewLocalUser {
            username,
            display_name,
            email: email.map(|e| e.trim().to_owned()),
            password: Password::new(password),
            instance_admin: false,
        },
        backend::identity::now_utc(),
    )
    .await
    .map_err(|e| user_admin_error(e, "password"))?;
    let subject = user_subject(user.id);
    record(
        AuditAction::UserCreated,
        &subject,
        serde_json::json!({ "username": user.username, "display_name": user.display_name }),
    )
    .await?;
    if let Some((org, role)) = role {
        backend::identity::users::set_role(state.store.as_ref(), user.id, org, role)
            .await
            .map_err(|e| user_admin_error(e, "password"))?;
        record(
            AuditAction::RoleSet,
            &subject,
            serde_json::json!({ "organization": org.to_string(), "role": role.as_str() }),
        )
        .await?;
    }
    Ok(user.id.to_string())
}

/// Gives `user` the role `role` in `org`, replacing the role they had there.
#[server(prefix = "/api")]
pub async fn set_user_role(user: String, org: String, role: String) -> Result<(), AppError> {
    use backend::audit::AuditAction;

    use crate::api::support::{parse_user, record, user_admin_error, user_subject};

    let org = crate::ssr::auth::parse_org(&org)?;
    require_role_manager(org)?;
    let user = parse_user(&user)?;
    let role = parse_role(&role)?;
    let state = crate::ssr::state()?;
    state.store.user(user).await?;
    backend::identity::users::set_role(state.store.as_ref(), user, org, role)
        .await
        .map_err(|e| user_admin_error(e, "password"))?;
    record(
        AuditAction::RoleSet,
        &user_subject(user),
        serde_json::json!({ "organization": org.to_string(), "role": role.as_str() }),
    )
    .await
}

/// Takes away `user`'s role in `org`.
#[server(prefix = "/api")]
pub async fn remove_user_role(user: String, org: String) -> Result<(), AppError> {
    use backend::audit::AuditAction;

    use crate::api::support::{parse_user, record, user_admin_error, user_subject};

    let org = crate::ssr::auth::parse_org(&org)?;
    require_role_manager(org)?;
    let user = parse_user(&user)?;
    let state = crate::ssr::state()?;
    backend::identity::users::remove_membership(state.store.as_ref(), user, org)
        .await
        .map_err(|e| user_admin_error(e, "password"))?;
    record(
        AuditAction::RoleRemoved,
        &user_subject(user),
        serde_json::json!({ "organization": org.to_string() }),
    )
    .await
}

/// Disables (`disabled = true`) or re-enables sign-in for `user`. A disabled user's
/// sessions stop working on their next request. Nobody can disable themself, so an
/// instance always keeps the administrator who is acting.
#[server(prefix = "/api")]
pub async fn set_user_disabled(user: String, disabled: bool) -> Result<(), AppError> {
    use backend::audit::AuditAction;

    use crate::api::support::{parse_user, record, user_admin_error, user_subject};

    let me = crate::ssr::auth::require_instance_admin()?;
    let user = parse_user(&user)?;
    if disabled && user == me.id {
        return Err(AppError::Conflict {
            message: "You cannot disable your own account.".to_owned(),
        });
    }
    let state = crate::ssr::state()?;
    backend::identity::users::set_disabled(state.store.as_ref(), user, disabled)
        .await
        .map_err(|e| user_admin_error(e, "password"))?;
    let action = if disabled {
        AuditAction::UserDisabled
    } else {
        AuditAction::UserEnabled
    };
    record(action, &user_subject(user), serde_json::json!({})).await
}

/// Removes `user`'s TOTP secret and recovery codes (a lost phone): they sign in with
/// their password alone until they enrol again.
#[server(prefix = "/api")]
pub async fn reset_user_totp(user: String) -> Result<(), AppError> {
    use backend::audit::AuditAction;

    use crate::api::support::{parse_user, record, user_admin_error, user_subject};

    crate::ssr::auth::require_instance_admin()?;
    let user = parse_user(&user)?;
    let state = crate::ssr::state()?;
    backend::identity::users::reset_totp(state.store.as_ref(), user)
        .await
        .map_err(|e| user_admin_error(e, "password"))?;
    record(
        AuditAction::TotpReset,
        &user_subject(user),
        serde_json::json!({}),
    )
    .await
}

/// Sets a new password for a local user (a forgotten password). SSO users have none.
#[server(prefix = "/api")]
pub async fn reset_user_password(user: String, password: String) -> Result<(), AppError> {
    use backend::audit::AuditAction;
    use backend::identity::password::Password;

    use crate::api::support::{parse_user, record, user_admin_error, user_subject};

    crate::ssr::auth::require_instance_admin()?;
    let user = parse_user(&user)?;
    let state = crate::ssr::state()?;
    if state.store.user(user).await?.oidc.is_some() {
        return Err(AppError::validation(
            "password",
            "This user signs in with SSO and has no Orchard password.",
        ));
    }
    backend::identity::users::set_password(
        state.store.as_ref(),
        &state.authenticator.hasher,
        user,
        &Password::new(password),
    )
    .await
    .map_err(|e| user_admin_error(e, "password"))?;
    record(
        AuditAction::PasswordReset,
        &user_subject(user),
        serde_json::json!({}),
    )
    .await
}

/// Instance administrators manage roles everywhere; an organization's admins (who hold
/// `ManageUsers` there) manage roles in that organization only.
#[cfg(feature = "ssr")]
fn require_role_manager(
    org: backend::orgs::OrgId,
) -> Result<crate::ssr::auth::CurrentUser, AppError> {
    let me = crate::ssr::auth::require_user()?;
    if me.instance_admin {
        return Ok(me);
    }
    crate::ssr::auth::require_permission(org, backend::identity::Permission::ManageUsers)
}

#[cfg(feature = "ssr")]
fn parse_role(role: &str) -> Result<backend::identity::Role, AppError> {
    role.trim()
        .parse()
        .map_err(|_| AppError::validation("role", "Choose one of the four roles."))
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use backend::identity::Role;

    use crate::model::users::ROLES;

    #[test]
    fn the_browser_offers_exactly_the_roles_the_server_knows() {
        let offered: Vec<&str> = ROLES.iter().map(|(name, _)| *name).collect();
        let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(offered, known);
    }
}
