//! Wire types of the single sign-on settings. No secret: the client secret stays in the
//! configuration.

use serde::{Deserialize, Serialize};

/// The SSO provider as configured, and the group → role rules in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoSettings {
    /// Whether "Sign in with SSO" is offered.
    pub enabled: bool,
    pub issuer: String,
    pub client_id: String,
    /// The callback URL to register at the provider.
    pub redirect_url: String,
    pub groups_claim: String,
    pub button_label: String,
    /// Rules from `[[oidc.role_map]]` in the configuration file (read-only here).
    pub configured_rules: Vec<SsoRule>,
    /// Rules added in Settings.
    pub stored_rules: Vec<SsoRule>,
    /// Organizations a rule can name.
    pub organizations: Vec<SsoOrganization>,
}

/// One group → role rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoRule {
    pub group: String,
    /// The organization's id; empty when a configured slug names no organization.
    pub org_id: String,
    /// The organization's name, or the configured slug when it names none.
    pub organization: String,
    pub role: String,
}

/// An organization to choose in the rule form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoOrganization {
    pub id: String,
    pub name: String,
}
