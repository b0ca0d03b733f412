//! Organizations: the tenant boundary. Roles, Apple API accounts, mirrored devices
//! and jobs all belong to exactly one organization; an MSP runs many.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// Longest organization name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// Identifies an organization. Random (UUID v4), so ids reveal nothing about ordering or count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrgId(pub Uuid);

impl OrgId {
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A stored organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: OrgId,
    /// URL-safe, unique form of the name (`Acme Corp.` → `acme-corp`).
    pub slug: String,
    pub name: String,
    pub created_at: OffsetDateTime,
}

/// A validated request to create an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrganization {
    name: String,
    slug: String,
}

/// Why a name cannot be an organization's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrgNameError {
    #[error("the organization name is empty")]
    Empty,
    #[error("the organization name is longer than {MAX_NAME_CHARS} characters")]
    TooLong,
    #[error("the organization name needs at least one letter or digit")]
    NoAlphanumeric,
    #[error("the organization name contains a control character")]
    ControlCharacter,
}

impl NewOrganization {
    /// Trims the name and derives its slug.
    pub fn parse(name: &str) -> Result<Self, OrgNameError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(OrgNameError::Empty);
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(OrgNameError::TooLong);
        }
        if name.chars().any(char::is_control) {
            return Err(OrgNameError::ControlCharacter);
        }
        let slug = slugify(name);
        if slug.is_empty() {
            return Err(OrgNameError::NoAlphanumeric);
        }
        Ok(Self {
            name: name.to_owned(),
            slug,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn slug(&self) -> &str {
        &self.slug
    }
}

/// Lower-case ASCII letters and digits, runs of anything else folded into one `-`.
fn slugify(name: &str) -> String {
    let mut slug = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    while slug.ends_with('-') {
        slug.pop();
    }
    slug
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_slugged() {
        let org = NewOrganization::parse("  Acme Corp. (EU) ").unwrap();
        assert_eq!(org.name(), "Acme Corp. (EU)");
        assert_eq!(org.slug(), "acme-corp-eu");
    }

    #[test]
    fn names_without_letters_or_digits_are_refused() {
        assert_eq!(NewOrganization::parse("   "), Err(OrgNameError::Empty));
        assert_eq!(
            NewOrganization::parse("!!!"),
            Err(OrgNameError::NoAlphanumeric)
        );
        assert_eq!(
            NewOrganization::parse("a\u{7}b"),
            Err(OrgNameError::ControlCharacter)
        );
        assert_eq!(
            NewOrganization::parse(&"x".repeat(MAX_NAME_CHARS + 1)),
            Err(OrgNameError::TooLong)
        );
    }
}
