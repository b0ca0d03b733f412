//! Roles and permissions.
//!
//! A user holds at most one [`Role`] per organization (a membership). What a role may
//! do is decided in exactly one place, [`Role::allows`], a table that mirrors the
//! product brief. Instance-wide actions (creating organizations, managing users and
//! SSO) belong to users with the `instance_admin` flag instead, see
//! [`instance_admin_allows`]; the first administrator gets that flag at setup and is
//! made admin of every organization they create.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A user's role in one organization, from most to least powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including API accounts, users, roles and SSO.
    Admin,
    /// Reads everything; assigns devices; edits Blueprints and Configurations.
    Operator,
    /// Reads devices, services, users, groups, apps, packages and audit.
    Helpdesk,
    /// Fleet overview and the read-only device list.
    Viewer,
}

/// Something a signed-in user may be allowed to do in an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Fleet overview charts.
    ViewFleet,
    /// Device list and device detail.
    ViewDevices,
    /// Device management services and their device counts.
    ViewServices,
    /// Apple users, user groups, apps and packages.
    ViewDirectory,
    /// Blueprints and Configurations, read-only.
    ViewBlueprints,
    /// Apple's and Orchard's audit timeline for the organization.
    ViewAudit,
    /// Export CSV of what a list or chart shows (managers export the fleet).
    ExportData,
    /// Ask Apple for fresh data (device refresh, on-demand sync).
    RefreshFromApple,
    /// Assign and unassign devices, retry failed assignment jobs.
    AssignDevices,
    /// Edit Blueprints.
    EditBlueprints,
    /// Edit Configurations.
    EditConfigurations,
    /// Add, test, rotate and revoke Apple API accounts; sync schedules.
    ManageAccounts,
    /// Give and remove roles in this organization.
    ManageUsers,
    /// Configure SSO group-to-role mapping for this organization.
    ManageSso,
    /// Orchard's own audit log of administrative actions.
    ViewOrchardAudit,
}

impl Permission {
    /// Every permission, for exhaustive tests and admin screens.
    pub const ALL: [Permission; 15] = [
        Self::ViewFleet,
        Self::ViewDevices,
        Self::ViewServices,
        Self::ViewDirectory,
        Self::ViewBlueprints,
        Self::ViewAudit,
        Self::ExportData,
        Self::RefreshFromApple,
        Self::AssignDevices,
        Self::EditBlueprints,
        Self::EditConfigurations,
        Self::ManageAccounts,
        Self::ManageUsers,
        Self::ManageSso,
        Self::ViewOrchardAudit,
    ];
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 4] = [Self::Admin, Self::Operator, Self::Helpdesk, Self::Viewer];

    /// Whether this role may do `permission` in its organization. The one table.
    pub fn allows(self, permission: Permission) -> bool {
        use Permission as P;
        use Role::{Admin, Helpdesk, Operator, Viewer};
        #[rustfmt::skip]
        let allowed: &[Role] = match permission {
            P::ViewFleet          => &[Admin, Operator, Helpdesk, Viewer],
            P::ViewDevices        => &[Admin, Operator, Helpdesk, Viewer],
            P::ViewServices       => &[Admin, Operator, Helpdesk],
            P::ViewDirectory      => &[Admin, Operator, Helpdesk],
            P::ViewBlueprints     => &[Admin, Operator],
            P::ViewAudit          => &[Admin, Operator, Helpdesk],
            P::ExportData         => &[Admin, Operator, Helpdesk, Viewer],
            P::RefreshFromApple   => &[Admin, Operator, Helpdesk],
            P::AssignDevices      => &[Admin, Operator],
            P::EditBlueprints     => &[Admin, Operator],
            P::EditConfigurations => &[Admin, Operator],
            P::ManageAccounts     => &[Admin],
            P::ManageUsers        => &[Admin],
            P::ManageSso          => &[Admin],
            P::ViewOrchardAudit   => &[Admin],
        };
        allowed.contains(&self)
    }

    /// The more powerful of two roles (roles are declared most powerful first).
    pub fn most_powerful(self, other: Role) -> Role {
        self.min(other)
    }

    /// The stored and wire form: `admin`, `operator`, `helpdesk`, `viewer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Operator => "operator",
            Self::Helpdesk => "helpdesk",
            Self::Viewer => "viewer",
        }
    }
}

/// Instance-wide actions, outside any one organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceAction {
    /// Create organizations (their creator becomes their admin).
    CreateOrganizations,
    /// Create, disable and delete Orchard users; grant instance administration.
    ManageUsers,
    /// Configure the SSO provider.
    ManageSso,
}

/// Whether a user may perform an instance-wide action: only instance administrators may.
pub fn instance_admin_allows(instance_admin: bool, _action: InstanceAction) -> bool {
    instance_admin
}

/// A stored role name that is not one of the four.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`: expected admin, operator, helpdesk or viewer")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Self::Admin),
            "operator" => Ok(Self::Operator),
            "helpdesk" => Ok(Self::Helpdesk),
            "viewer" => Ok(Self::Viewer),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission as P;

    fn allowed(role: Role) -> Vec<Permission> {
        Permission::ALL
            .into_iter()
            .filter(|p| role.allows(*p))
            .collect()
    }

    #[test]
    fn admin_may_do_everything_including_accounts_users_and_sso() {
        assert_eq!(allowed(Role::Admin), Permission::ALL.to_vec());
    }

    #[test]
    fn operator_reads_everything_assigns_and_edits_but_administers_nothing() {
        assert_eq!(
            allowed(Role::Operator),
            [
                P::ViewFleet,
                P::ViewDevices,
                P::ViewServices,
                P::ViewDirectory,
                P::ViewBlueprints,
                P::ViewAudit,
                P::ExportData,
                P::RefreshFromApple,
                P::AssignDevices,
                P::EditBlueprints,
                P::EditConfigurations,
            ]
        );
    }

    #[test]
    fn helpdesk_reads_devices_services_directory_and_audit_but_changes_nothing() {
        assert_eq!(
            allowed(Role::Helpdesk),
            [
                P::ViewFleet,
                P::ViewDevices,
                P::ViewServices,
                P::ViewDirectory,
                P::ViewAudit,
                P::ExportData,
                P::RefreshFromApple,
            ]
        );
    }

    #[test]
    fn viewer_sees_only_the_fleet_overview_and_the_device_list_and_may_export_them() {
        assert_eq!(
            allowed(Role::Viewer),
            [P::ViewFleet, P::ViewDevices, P::ExportData]
        );
    }

    #[test]
    fn each_role_may_do_no_more_than_the_role_above_it() {
        for pair in Role::ALL.windows(2) {
            for p in Permission::ALL {
                assert!(
                    !pair[1].allows(p) || pair[0].allows(p),
                    "{:?} {p:?}",
                    pair[1]
                );
            }
        }
    }

    #[test]
    fn role_names_round_trip_and_unknown_names_are_refused() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn only_instance_admins_may_act_instance_wide() {
        assert!(instance_admin_allows(true, InstanceAction::ManageSso));
        assert!(!instance_admin_allows(
            false,
            InstanceAction::CreateOrganizations
        ));
    }
}
