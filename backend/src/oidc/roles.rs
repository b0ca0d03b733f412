//! Mapping the provider's groups to Orchard roles per organization.
//!
//! Rules come from `[[oidc.role_map]]`. Matching is exact and case-sensitive, as group
//! names are identifiers at the provider. A user in several mapped groups gets, in each
//! organization, the highest of the roles those groups grant; groups no rule names grant
//! nothing.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::identity::Role;

/// One `[[oidc.role_map]]` entry: members of `group` get `role` in `organization`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRoleRule {
    /// Group name exactly as the provider puts it in the groups claim.
    pub group: String,
    /// Slug of the Orchard organization the role applies to.
    pub organization: String,
    /// `admin`, `operator`, `helpdesk` or `viewer`.
    pub role: Role,
}

/// The configured rules, applied at each SSO sign-in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupRoleMap {
    rules: Vec<GroupRoleRule>,
}

impl GroupRoleMap {
    pub fn new(rules: Vec<GroupRoleRule>) -> Self {
        Self { rules }
    }

    /// `(organization slug, role)` for every organization some group grants a role in,
    /// keeping the highest role per organization, sorted by slug.
    pub fn map_groups(&self, groups: &[String]) -> Vec<(String, String)> {
        self.map_roles(groups)
            .into_iter()
            .map(|(org, role)| (org, role.as_str().to_owned()))
            .collect()
    }

    /// Like [`Self::map_groups`], with the typed role.
    pub fn map_roles(&self, groups: &[String]) -> BTreeMap<String, Role> {
        let mut granted: BTreeMap<String, Role> = BTreeMap::new();
        for rule in self.rules.iter().filter(|r| groups.contains(&r.group)) {
            granted
                .entry(rule.organization.clone())
                .and_modify(|role| *role = role.most_powerful(rule.role))
                .or_insert(rule.role);
        }
        granted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(group: &str, organization: &str, role: Role) -> GroupRoleRule {
        GroupRoleRule {
            group: group.to_owned(),
            organization: organization.to_owned(),
            role,
        }
    }

    fn groups(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_highest_role_per_organization_wins_whatever_the_rule_order() {
        let map = GroupRoleMap::new(vec![
            rule("helpdesk", "acme", Role::Helpdesk),
            rule("admins", "acme", Role::Admin),
            rule("viewers", "acme", Role::Viewer),
            rule("helpdesk", "globex", Role::Helpdesk),
            rule("operators", "globex", Role::Operator),
        ]);
        assert_eq!(
            map.map_groups(&groups(&["viewers", "helpdesk", "admins", "unknown"])),
            vec![
                ("acme".to_owned(), "admin".to_owned()),
                ("globex".to_owned(), "helpdesk".to_owned()),
            ]
        );
        assert_eq!(
            map.map_groups(&groups(&["operators", "helpdesk"])),
            vec![
                ("acme".to_owned(), "helpdesk".to_owned()),
                ("globex".to_owned(), "operator".to_owned()),
            ]
        );
    }

    #[test]
    fn unmapped_or_differently_cased_groups_grant_nothing() {
        let map = GroupRoleMap::new(vec![rule("Admins", "acme", Role::Admin)]);
        assert!(map.map_groups(&groups(&["admins", "other"])).is_empty());
        assert!(map.map_groups(&[]).is_empty());
    }

    #[test]
    fn roles_rank_admin_over_operator_over_helpdesk_over_viewer() {
        assert_eq!(Role::Admin.most_powerful(Role::Operator), Role::Admin);
        assert_eq!(Role::Helpdesk.most_powerful(Role::Operator), Role::Operator);
        assert_eq!(Role::Viewer.most_powerful(Role::Helpdesk), Role::Helpdesk);
    }
}
