//! Which roles a single sign-on user gets: group → role rules from the configuration file
//! (`[[oidc.role_map]]`, by organization slug) and from Settings (stored, by organization).
//!
//! Both kinds apply together; in each organization the most powerful role any of the
//! user's groups grants wins. Rules are applied at every SSO sign-in, replacing the
//! user's memberships, so removing a rule or a group takes effect at the next sign-in.

use time::OffsetDateTime;

use super::Role;
use crate::audit::{self, Actor, AuditAction};
use crate::oidc::{GroupRoleMap, GroupRoleRule};
use crate::orgs::OrgId;
use crate::store::identity::SsoRoleRule;
use crate::store::{Store, StoreError};

/// Longest group name accepted.
pub const MAX_GROUP_CHARS: usize = 200;

/// Why a rule could not be added or removed.
#[derive(Debug, thiserror::Error)]
pub enum SsoRuleError {
    #[error("the group name is empty")]
    GroupEmpty,
    #[error("the group name is longer than {MAX_GROUP_CHARS} characters")]
    GroupTooLong,
    #[error("the group name contains control characters")]
    GroupControl,
    #[error("this group already has a role in this organization; remove that rule first")]
    Taken,
    #[error("SSO rule storage failed")]
    Store(#[source] StoreError),
    #[error("audit log failed")]
    Audit(#[from] audit::AuditError),
}

impl From<StoreError> for SsoRuleError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict { constraint } if constraint == "sso_role_rules_key" => {
                Self::Taken
            }
            other => Self::Store(other),
        }
    }
}

/// A group name as the provider sends it: trimmed, case kept (matching is exact).
pub fn parse_group(raw: &str) -> Result<String, SsoRuleError> {
    let group = raw.trim();
    if group.is_empty() {
        return Err(SsoRuleError::GroupEmpty);
    }
    if group.chars().count() > MAX_GROUP_CHARS {
        return Err(SsoRuleError::GroupTooLong);
    }
    if group.chars().any(char::is_control) {
        return Err(SsoRuleError::GroupControl);
    }
    Ok(group.to_owned())
}

/// Adds a stored rule: members of `group` get `role` in `org`.
pub async fn add_rule(
    store: &dyn Store,
    actor: &Actor,
    group: &str,
    org: OrgId,
    role: Role,
    now: OffsetDateTime,
) -> Result<SsoRoleRule, SsoRuleError> {
    let rule = SsoRoleRule {
        group: parse_group(group)?,
        org_id: org,
        role,
        created_at: now,
    };
    store.insert_sso_rule(&rule).await?;
    audit::append(
        store,
        actor,
        AuditAction::SsoRuleAdded,
        &format!("organization:{org}"),
        serde_json::json!({ "group": rule.group, "role": role.as_str() }),
    )
    .await?;
    Ok(rule)
}

/// Removes the stored rule of `group` in `org`.
pub async fn delete_rule(
    store: &dyn Store,
    actor: &Actor,
    group: &str,
    org: OrgId,
) -> Result<(), SsoRuleError> {
    store.delete_sso_rule(group, org).await?;
    audit::append(
        store,
        actor,
        AuditAction::SsoRuleDeleted,
        &format!("organization:{org}"),
        serde_json::json!({ "group": group }),
    )
    .await?;
    Ok(())
}

/// The roles `groups` grant through the configured and the stored rules. Configured rules
/// naming an organization that does not exist are skipped with a warning.
pub async fn roles_for_groups(
    store: &dyn Store,
    configured: &[GroupRoleRule],
    groups: &[String],
) -> Result<Vec<(OrgId, Role)>, StoreError> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let organizations = store.list_organizations().await?;
    let slug_of = |org: OrgId| {
        organizations
            .iter()
            .find(|o| o.id == org)
            .map(|o| o.slug.clone())
    };
    let stored = store.list_sso_rules().await?;
    let rules: Vec<GroupRoleRule> = configured
        .iter()
        .cloned()
        .chain(stored.into_iter().filter_map(|rule| {
            Some(GroupRoleRule {
                organization: slug_of(rule.org_id)?,
                group: rule.group,
                role: rule.role,
            })
        }))
        .collect();
    let mut roles = Vec::new();
    for (slug, role) in GroupRoleMap::new(rules).map_roles(groups) {
        match organizations.iter().find(|o| o.slug == slug) {
            Some(org) => roles.push((org.id, role)),
            None => {
                tracing::warn!(organization = %slug, "[[oidc.role_map]] names an unknown organization");
            }
        }
    }
    Ok(roles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_are_trimmed_and_checked_but_keep_their_case() {
        assert_eq!(parse_group("  IT-Admins ").unwrap(), "IT-Admins");
        assert!(matches!(parse_group("  "), Err(SsoRuleError::GroupEmpty)));
        assert!(matches!(
            parse_group(&"g".repeat(MAX_GROUP_CHARS + 1)),
            Err(SsoRuleError::GroupTooLong)
        ));
        assert!(matches!(
            parse_group("a\u{7}b"),
            Err(SsoRuleError::GroupControl)
        ));
    }
}
