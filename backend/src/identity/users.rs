//! User administration: local users created by an administrator, SSO users created on
//! first sign-in, roles per organization.
//!
//! Callers check that the acting user may do this ([`super::roles`]); these functions
//! enforce data rules only (username syntax, password rules, unique names). An SSO
//! identity is never attached to an existing local user by matching names: that would
//! let whoever controls the identity provider take over a local account.

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::UserId;
use super::password::{
    Password, PasswordError, PasswordHasher, PasswordRuleError, check_new_password,
};
use super::roles::Role;
use crate::orgs::{NewOrganization, OrgId, Organization};
use crate::store::identity::{Membership, NewUser, UserRow};
use crate::store::{IdentityStore, Store, StoreError};

/// Longest username, in characters.
pub const MAX_USERNAME_CHARS: usize = 64;

/// Result alias of this module.
pub type Result<T, E = UserAdminError> = std::result::Result<T, E>;

/// Why a username is refused; shown to the administrator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("the username is empty")]
    Empty,
    #[error("the username is longer than {MAX_USERNAME_CHARS} characters")]
    TooLong,
    #[error("the username may contain only letters, digits and . _ - @")]
    InvalidCharacter,
}

/// Why a user administration action failed.
#[derive(Debug, thiserror::Error)]
pub enum UserAdminError {
    #[error(transparent)]
    Username(#[from] UsernameError),
    #[error(transparent)]
    PasswordRule(#[from] PasswordRuleError),
    #[error("the username is already taken")]
    UsernameTaken,
    #[error("this user is disabled")]
    Disabled,
    #[error("only instance administrators may do this")]
    NotInstanceAdmin,
    #[error("user administration failed: password hashing")]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for UserAdminError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict { constraint } if constraint == "users_username_key" => {
                Self::UsernameTaken
            }
            other => Self::Store(other),
        }
    }
}

/// Trims and checks a username: 1 to 64 letters, digits, `.`, `_`, `-` or `@`.
pub fn parse_username(raw: &str) -> Result<String, UsernameError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(UsernameError::Empty);
    }
    if name.chars().count() > MAX_USERNAME_CHARS {
        return Err(UsernameError::TooLong);
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err(UsernameError::InvalidCharacter);
    }
    Ok(name.to_owned())
}

/// A local user an administrator creates.
#[derive(Debug, Clone)]
pub struct NewLocalUser {
    pub username: String,
    /// Defaults to the username when blank.
    pub display_name: String,
    pub email: Option<String>,
    pub password: Password,
    pub instance_admin: bool,
}

/// Creates a local user with a password. `UsernameTaken` when the name exists in any case.
#[tracing::instrument(name = "users.create", skip_all)]
pub async fn create_user(
    store: &dyn IdentityStore,
    hasher: &PasswordHasher,
    new: &NewLocalUser,
    now: OffsetDateTime,
) -> Result<UserRow> {
    let username = parse_username(&new.username)?;
    check_new_password(&new.password, &username)?;
    let password_hash = hasher.hash(&new.password).await?;
    let display_name = match new.display_name.trim() {
        "" => username.clone(),
        name => name.to_owned(),
    };
    let user = store
        .create_user(&NewUser {
            id: UserId::random(),
            username,
            display_name,
            email: new.email.clone().filter(|e| !e.trim().is_empty()),
            password_hash: Some(password_hash),
            instance_admin: new.instance_admin,
            oidc: None,
            created_at: now,
        })
        .await?;
    tracing::info!(user = %user.id, "user created");
    Ok(user)
}

/// Sets or resets a user's password, after checking the password rules.
#[tracing::instrument(name = "users.set_password", skip_all, fields(user = %id))]
pub async fn set_password(
    store: &dyn IdentityStore,
    hasher: &PasswordHasher,
    id: UserId,
    password: &Password,
) -> Result<()> {
    let user = store.user(id).await?;
    check_new_password(password, &user.username)?;
    let hash = hasher.hash(password).await?;
    store.set_password_hash(id, Some(&hash)).await?;
    Ok(())
}

/// Disables (or re-enables) sign-in. Existing sessions end at their next check, which
/// reloads the user.
pub async fn set_disabled(store: &dyn IdentityStore, id: UserId, disabled: bool) -> Result<()> {
    Ok(store.set_disabled(id, disabled).await?)
}

/// Gives a user a role in an organization, replacing any previous one.
pub async fn set_role(store: &dyn IdentityStore, id: UserId, org: OrgId, role: Role) -> Result<()> {
    Ok(store.set_membership(id, org, role).await?)
}

/// Removes a user's role in an organization.
pub async fn remove_membership(store: &dyn IdentityStore, id: UserId, org: OrgId) -> Result<()> {
    Ok(store.remove_membership(id, org).await?)
}

/// Removes a user's TOTP secret and recovery codes (lost phone); they sign in with the
/// password alone until they enrol again.
pub async fn reset_totp(store: &dyn IdentityStore, id: UserId) -> Result<()> {
    Ok(store.set_totp(id, None, false).await?)
}

/// A user and their roles, for the user administration page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserWithMemberships {
    pub user: UserRow,
    pub memberships: Vec<Membership>,
}

/// Every user with their memberships, by username.
pub async fn list_users(store: &dyn IdentityStore) -> Result<Vec<UserWithMemberships>> {
    let users = store.list_users().await?;
    let mut memberships = store.list_memberships().await?;
    Ok(users
        .into_iter()
        .map(|user| {
            let mine = memberships
                .extract_if(.., |m| m.user_id == user.id)
                .collect();
            UserWithMemberships {
                user,
                memberships: mine,
            }
        })
        .collect())
}

/// Who the identity provider says signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoIdentity {
    pub issuer: String,
    pub subject: String,
    /// Wanted username (e.g. `preferred_username`); made unique if taken.
    pub preferred_username: String,
    pub display_name: String,
    pub email: Option<String>,
}

/// Finds the user bound to an SSO identity or creates one, then sets their profile and
/// replaces their memberships with `roles` (computed by the caller from the groups
/// claim). `Disabled` when an administrator disabled the user.
#[tracing::instrument(name = "users.sso_user", skip_all)]
pub async fn find_or_create_sso_user(
    store: &dyn IdentityStore,
    identity: &SsoIdentity,
    roles: &[(OrgId, Role)],
    now: OffsetDateTime,
) -> Result<UserRow> {
    let display_name = match identity.display_name.trim() {
        "" => identity.preferred_username.trim().to_owned(),
        name => name.to_owned(),
    };
    let user = match store
        .user_by_oidc(&identity.issuer, &identity.subject)
        .await
    {
        Ok(user) => {
            store
                .set_profile(user.id, &display_name, identity.email.as_deref())
                .await?;
            user
        }
        Err(StoreError::NotFound { .. }) => {
            create_sso_user(store, identity, &display_name, now).await?
        }
        Err(e) => return Err(e.into()),
    };
    if user.disabled {
        return Err(UserAdminError::Disabled);
    }
    store.replace_memberships(user.id, roles).await?;
    store.user(user.id).await.map_err(Into::into)
}

async fn create_sso_user(
    store: &dyn IdentityStore,
    identity: &SsoIdentity,
    display_name: &str,
    now: OffsetDateTime,
) -> Result<UserRow> {
    let base =
        parse_username(&identity.preferred_username).unwrap_or_else(|_| "sso-user".to_owned());
    let digest = Sha256::digest(format!("{}\n{}", identity.issuer, identity.subject));
    let suffix: String = digest[..3].iter().map(|b| format!("{b:02x}")).collect();
    for username in [base.clone(), format!("{base}-{suffix}")] {
        let new = NewUser {
            id: UserId::random(),
            username,
            display_name: display_name.to_owned(),
            email: identity.email.clone(),
            password_hash: None,
            instance_admin: false,
            oidc: Some((identity.issuer.clone(), identity.subject.clone())),
            created_at: now,
        };
        match store.create_user(&new).await {
            Ok(user) => {
                tracing::info!(user = %user.id, "SSO user created");
                return Ok(user);
            }
            Err(StoreError::Conflict { constraint }) if constraint == "users_username_key" => {}
            // A concurrent first sign-in of the same identity created it: use that one.
            Err(StoreError::Conflict { constraint }) if constraint == "users_oidc_key" => {
                return Ok(store
                    .user_by_oidc(&identity.issuer, &identity.subject)
                    .await?);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(UserAdminError::UsernameTaken)
}

/// Creates an organization on behalf of an instance administrator, who becomes its admin.
#[tracing::instrument(name = "users.create_organization", skip_all, fields(user = %creator))]
pub async fn create_organization_as(
    store: &dyn Store,
    creator: UserId,
    new: &NewOrganization,
) -> Result<Organization> {
    let user = store.user(creator).await?;
    if !user.instance_admin || user.disabled {
        return Err(UserAdminError::NotInstanceAdmin);
    }
    let org = store.create_organization(new).await?;
    store.set_membership(creator, org.id, Role::Admin).await?;
    Ok(org)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_trimmed_and_checked() {
        assert_eq!(
            parse_username("  ann.lee@example.com "),
            Ok("ann.lee@example.com".to_owned())
        );
        assert_eq!(parse_username(" "), Err(UsernameError::Empty));
        assert_eq!(
            parse_username("ann lee"),
            Err(UsernameError::InvalidCharacter)
        );
        assert_eq!(
            parse_username("ann<script>"),
            Err(UsernameError::InvalidCharacter)
        );
        assert_eq!(parse_username(&"a".repeat(65)), Err(UsernameError::TooLong));
        assert_eq!(parse_username(&"a".repeat(64)).map(|s| s.len()), Ok(64));
    }

    #[test]
    fn a_username_conflict_reads_as_taken_and_other_conflicts_stay_store_errors() {
        let taken = UserAdminError::from(StoreError::Conflict {
            constraint: "users_username_key".to_owned(),
        });
        assert!(matches!(taken, UserAdminError::UsernameTaken));
        let other = UserAdminError::from(StoreError::Conflict {
            constraint: "users_oidc_key".to_owned(),
        });
        assert!(matches!(other, UserAdminError::Store(_)));
    }
}
