//! Single sign-on in Settings (instance administrators): the provider as configured and
//! the group → role rules. The provider itself (issuer, client, secret) is configuration;
//! rules can live in the configuration file or be added here.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use crate::error::AppError;
use crate::model::sso::SsoSettings;

/// The provider settings and every rule.
#[server(input = GetUrl, prefix = "/api")]
pub async fn get_sso_settings() -> Result<SsoSettings, AppError> {
    use crate::model::sso::{SsoOrganization, SsoRule};

    crate::ssr::auth::require_instance_admin()?;
    let state = crate::ssr::state()?;
    let config = &state.config.oidc;
    let organizations = state.store.list_organizations().await?;
    let name_of_slug = |slug: &str| {
        organizations.iter().find(|o| o.slug == slug).map_or(
            (String::new(), format!("{slug} (no such organization)")),
            |o| (o.id.to_string(), o.name.clone()),
        )
    };
    let configured_rules = config
        .role_map
        .iter()
        .map(|rule| {
            let (org_id, organization) = name_of_slug(&rule.organization);
            SsoRule {
                group: rule.group.clone(),
                org_id,
                organization,
                role: rule.role.as_str().to_owned(),
            }
        })
        .collect();
    let stored_rules = state
        .store
        .list_sso_rules()
        .await?
        .into_iter()
        .map(|rule| SsoRule {
            organization: organizations
                .iter()
                .find(|o| o.id == rule.org_id)
                .map_or_else(String::new, |o| o.name.clone()),
            org_id: rule.org_id.to_string(),
            group: rule.group,
            role: rule.role.as_str().to_owned(),
        })
        .collect();
    let origin = match state.config.server.public_url.trim_end_matches('/') {
        "" => {
            crate::ssr::request_header("host").map_or_else(String::new, |h| format!("http://{h}"))
        }
        origin => origin.to_owned(),
    };
    Ok(SsoSettings {
        enabled: config.enabled,
        issuer: config.issuer.clone(),
        client_id: config.client_id.clone(),
        redirect_url: format!("{origin}{}", config.redirect_path),
        groups_claim: config.groups_claim.clone(),
        button_label: config.display_name.clone(),
        configured_rules,
        stored_rules,
        organizations: organizations
            .into_iter()
            .map(|o| SsoOrganization {
                id: o.id.to_string(),
                name: o.name,
            })
            .collect(),
    })
}

/// Adds a rule: members of `group` get `role` in `org` at their next SSO sign-in.
#[server(prefix = "/api")]
pub async fn add_sso_rule(org: String, group: String, role: String) -> Result<(), AppError> {
    use backend::identity::sso::{self, SsoRuleError};

    crate::ssr::auth::require_instance_admin()?;
    let org = crate::ssr::auth::parse_org(&org)?;
    let role = role
        .parse()
        .map_err(|_| AppError::validation("role", "Choose a role."))?;
    let state = crate::ssr::state()?;
    state.store.organization(org).await?;
    sso::add_rule(
        state.store.as_ref(),
        &crate::ssr::auth::actor(),
        &group,
        org,
        role,
        backend::identity::now_utc(),
    )
    .await
    .map_err(|err| match err {
        SsoRuleError::GroupEmpty
        | SsoRuleError::GroupTooLong
        | SsoRuleError::GroupControl
        | SsoRuleError::Taken => {
            AppError::validation("group", crate::ssr::sentence(&err.to_string()))
        }
        SsoRuleError::Store(e) => AppError::from(e),
        SsoRuleError::Audit(_) => crate::ssr::internal("audit append failed"),
    })?;
    Ok(())
}

/// Removes the rule of `group` in `org`.
#[server(prefix = "/api")]
pub async fn delete_sso_rule(org: String, group: String) -> Result<(), AppError> {
    use backend::identity::sso::{self, SsoRuleError};

    crate::ssr::auth::require_instance_admin()?;
    let org = crate::ssr::auth::parse_org(&org)?;
    let state = crate::ssr::state()?;
    sso::delete_rule(
        state.store.as_ref(),
        &crate::ssr::auth::actor(),
        &group,
        org,
    )
    .await
    .map_err(|err| match err {
        SsoRuleError::Store(e) => AppError::from(e),
        _ => crate::ssr::internal("SSO rule removal failed"),
    })
}
