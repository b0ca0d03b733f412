//! Organizations in Settings: the list a user administers, and creating one.
//!
//! Listing is for those who administer something (else 403): the list is filtered to the organizations whose
//! API accounts the user may manage (instance administrators see every organization,
//! marked by whether they hold a role there). Creating is for instance administrators;
//! the creator becomes the new organization's admin.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use crate::error::AppError;
use crate::model::accounts::{OrganizationList, OrganizationSummary};

/// The organizations the signed-in user administers, by name; all of them for an
/// instance administrator.
#[server(input = GetUrl, prefix = "/api")]
pub async fn list_organizations() -> Result<OrganizationList, AppError> {
    use backend::identity::Permission;

    let user = crate::ssr::auth::require_administrator(&[
        Permission::ManageAccounts,
        Permission::ManageUsers,
    ])?;
    let state = crate::ssr::state()?;
    let organizations = state.store.list_organizations().await?;
    Ok(OrganizationList {
        may_create: user.instance_admin,
        organizations: organizations
            .into_iter()
            .filter(|org| user.instance_admin || user.may(org.id, Permission::ManageAccounts))
            .map(|org| mapping::summary(&user, org))
            .collect(),
    })
}

/// Creates an organization named `name`; the instance administrator creating it becomes
/// its admin.
#[server(prefix = "/api")]
pub async fn create_organization(name: String) -> Result<OrganizationSummary, AppError> {
    use backend::audit::{self, AuditAction};
    use backend::identity::users::create_organization_as;
    use backend::orgs::NewOrganization;

    let user = crate::ssr::auth::require_instance_admin()?;
    let new = NewOrganization::parse(&name)
        .map_err(|e| AppError::validation("name", crate::ssr::sentence(&e.to_string())))?;
    let state = crate::ssr::state()?;
    let org = create_organization_as(state.store.as_ref(), user.id, &new)
        .await
        .map_err(mapping::creation_error)?;
    audit::append(
        state.store.as_ref(),
        &crate::ssr::auth::actor(),
        AuditAction::OrganizationCreated,
        &format!("organization:{}", org.id),
        serde_json::json!({ "name": org.name, "slug": org.slug }),
    )
    .await
    .map_err(|_| crate::ssr::internal("audit append failed"))?;
    Ok(OrganizationSummary {
        id: org.id.to_string(),
        name: org.name,
        slug: org.slug,
        role: Some(backend::identity::Role::Admin.as_str().to_owned()),
        manageable: true,
    })
}

#[cfg(feature = "ssr")]
pub(crate) mod mapping {
    //! Mapping between backend types and the wire.

    use backend::identity::Permission;
    use backend::identity::users::UserAdminError;
    use backend::orgs::Organization;
    use backend::store::StoreError;

    use crate::error::AppError;
    use crate::model::accounts::OrganizationSummary;
    use crate::ssr::auth::CurrentUser;

    /// The wire form of `org` as `user` sees it.
    pub(crate) fn summary(user: &CurrentUser, org: Organization) -> OrganizationSummary {
        OrganizationSummary {
            id: org.id.to_string(),
            role: user.role_in(org.id).map(|r| r.as_str().to_owned()),
            manageable: user.may(org.id, Permission::ManageAccounts),
            name: org.name,
            slug: org.slug,
        }
    }

    pub(super) fn creation_error(err: UserAdminError) -> AppError {
        match err {
            UserAdminError::NotInstanceAdmin | UserAdminError::Disabled => AppError::Forbidden,
            // The id is random, so the slug's unique constraint is the only one an insert
            // can hit; SQLite does not name it, PostgreSQL does.
            UserAdminError::Store(StoreError::Conflict { constraint })
                if constraint == "organizations_slug_key" || constraint == "organization" =>
            {
                AppError::validation(
                    "name",
                    "An organization with this name (or one that reads the same) already exists.",
                )
            }
            UserAdminError::Store(other) => other.into(),
            other => {
                tracing::error!(
                    error = &other as &dyn std::error::Error,
                    "creating an organization failed"
                );
                crate::ssr::internal("creating an organization failed")
            }
        }
    }
}
