//! Wire types shared by the server and the browser, with validation that is safe to run in wasm.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub mod account;
pub mod accounts;
pub mod assign;
pub mod devices;
pub mod jobs;
pub mod sso;
pub mod users;

/// Name of the cookie holding the theme choice; read during SSR so the first paint is right.
pub const THEME_COOKIE: &str = "orchard_theme";

/// The colour theme a person chose. `System` follows the operating system setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    #[default]
    System,
    Light,
    Dark,
}

impl Theme {
    pub const ALL: [Theme; 3] = [Theme::System, Theme::Light, Theme::Dark];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::Light => "light",
            Self::Dark => "dark",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::System => "System",
            Self::Light => "Light",
            Self::Dark => "Dark",
        }
    }

    /// The theme named in a `Cookie` header, if any.
    pub fn from_cookie_header(header: &str) -> Option<Self> {
        header
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == THEME_COOKIE)
            .and_then(|(_, value)| value.parse().ok())
    }
}

impl fmt::Display for Theme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Theme {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "system" => Ok(Self::System),
            "light" => Ok(Self::Light),
            "dark" => Ok(Self::Dark),
            other => Err(format!(
                "`{other}` is not a theme: use system, light or dark"
            )),
        }
    }
}

/// What the status line shows about this Orchard instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemStatus {
    pub version: String,
    /// `SQLite` or `PostgreSQL`.
    pub database: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_theme_cookie_is_found_among_others() {
        assert_eq!(
            Theme::from_cookie_header("a=1; orchard_theme=dark; b=2"),
            Some(Theme::Dark)
        );
        assert_eq!(Theme::from_cookie_header("orchard_theme=purple"), None);
        assert_eq!(Theme::from_cookie_header(""), None);
    }

    #[test]
    fn themes_round_trip_through_their_names() {
        for theme in Theme::ALL {
            assert_eq!(theme.as_str().parse::<Theme>(), Ok(theme));
        }
    }
}

/// The signed-in user as pages see them. No secrets: ids, names and roles only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub username: String,
    pub display_name: String,
    /// May create organizations and manage users and SSO.
    pub instance_admin: bool,
    /// Signs in with SSO (no local password or TOTP to manage).
    pub sso: bool,
    /// The organizations the user has a role in, by name.
    pub organizations: Vec<OrgRole>,
}

impl Me {
    /// Whether the user may assign devices in some organization (admin or operator there).
    pub fn may_assign(&self) -> bool {
        self.organizations
            .iter()
            .any(|o| o.role == "admin" || o.role == "operator")
    }

    /// Whether the Settings area has anything for this user.
    pub fn sees_settings(&self) -> bool {
        self.instance_admin || self.organizations.iter().any(|o| o.role == "admin")
    }
}

/// A user's role in one organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgRole {
    /// The organization's id (UUID, text form).
    pub id: String,
    pub name: String,
    pub slug: String,
    /// `admin`, `operator`, `helpdesk` or `viewer`.
    pub role: String,
}

/// What the sign-in page offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInOptions {
    /// The SSO button's label, when SSO is configured.
    pub sso_label: Option<String>,
    /// No user exists yet: the page points to the setup link instead.
    pub setup_pending: bool,
}

/// How a sign-in attempt ended, short of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignInOutcome {
    /// Signed in; the response redirects to where the user was going.
    SignedIn,
    /// The password was right and the account asks for a one-time code.
    CodeRequired,
}

/// Percent-encodes a value for a URL query: everything but unreserved characters and `/`
/// (kept readable in `next=/devices`). Used on both sides, so it has no dependencies.
pub fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(char::from(byte));
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
