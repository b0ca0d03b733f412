//! Wire types of user administration and of Orchard's audit log page.
//!
//! Ids travel as UUID text and times as RFC 3339 text, because the browser build has
//! neither `uuid` nor `time`. Nothing here holds a secret: password hashes and sealed TOTP
//! secrets stay in `backend::store::identity::UserRow`, which is not `Serialize`.

use serde::{Deserialize, Serialize};

/// The roles a user may hold in an organization, most powerful first, with their labels.
/// Mirrors `backend::identity::Role::ALL` (a server test keeps the two in step).
pub const ROLES: [(&str, &str); 4] = [
    ("admin", "Admin"),
    ("operator", "Operator"),
    ("helpdesk", "Helpdesk"),
    ("viewer", "Viewer"),
];

/// The label of a stored role name, or the name itself when unknown.
pub fn role_label(role: &str) -> &str {
    ROLES
        .iter()
        .find(|(name, _)| *name == role)
        .map_or(role, |(_, label)| label)
}

/// Everything the users page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsersOverview {
    /// By username.
    pub users: Vec<UserSummary>,
    /// Organizations a role can be given in, by name.
    pub organizations: Vec<OrgOption>,
    /// The signed-in administrator's own id (they cannot disable themself).
    pub my_id: String,
}

/// One user as administrators see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSummary {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    /// Signs in through the SSO provider (no local password).
    pub sso: bool,
    /// Sign-in asks for a one-time code.
    pub totp_enabled: bool,
    pub disabled: bool,
    pub instance_admin: bool,
    /// RFC 3339, `None` before the first sign-in.
    pub last_sign_in: Option<String>,
    /// By organization name.
    pub roles: Vec<UserRole>,
}

/// A user's role in one organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRole {
    pub org_id: String,
    pub org_name: String,
    /// `admin`, `operator`, `helpdesk` or `viewer`.
    pub role: String,
}

/// An organization to pick in a role form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgOption {
    pub id: String,
    pub name: String,
}

/// One page of Orchard's audit log, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditLogPage {
    pub entries: Vec<AuditEntryView>,
    /// The `before` cursor of the next (older) page; `None` on the last page.
    pub next_before: Option<i64>,
    /// Whether the whole hash chain verifies, and where it breaks if not.
    pub chain: ChainStatus,
    /// Every action name, for the filter.
    pub actions: Vec<String>,
}

/// The outcome of recomputing the audit log's hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ChainStatus {
    Intact,
    /// The first entry that was edited, inserted or follows a deleted one.
    BrokenAt {
        seq: i64,
    },
}

/// One audit log entry, with the actor's and subject's user ids resolved to usernames.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntryView {
    pub seq: i64,
    /// RFC 3339.
    pub at: String,
    /// The username, `system` for Orchard itself, or the stored id of a deleted user.
    pub actor: String,
    pub client_addr: Option<String>,
    /// Dotted name such as `user.create`.
    pub action: String,
    /// As stored, e.g. `user:<id>`.
    pub subject: String,
    /// The subject for people: `user ann` instead of `user:<id>` when the id is known.
    pub subject_label: String,
    /// JSON text without secrets.
    pub details: String,
}

/// Entries per audit page.
pub const AUDIT_PAGE_SIZE: u32 = 50;
