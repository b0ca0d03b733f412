//! Apple API accounts of one organization: list with health, add, test, rotate the key,
//! revoke, delete.
//!
//! Every function checks `ManageAccounts` in the organization named by the caller, then
//! makes sure the account belongs to that organization, so an administrator of one
//! organization cannot reach another's accounts by pairing their own organization id
//! with a foreign account id. A private key only ever travels browser → server: the
//! answers are built from `ApiAccountView`, which holds its fingerprint and nothing more.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use crate::error::AppError;
use crate::model::accounts::{ApiAccount, ConnectionTest, OrganizationAccounts};

/// The organization's name and its API accounts with their health, by name.
#[server(input = GetUrl, prefix = "/api")]
pub async fn get_api_accounts(org: String) -> Result<OrganizationAccounts, AppError> {
    use backend::identity::Permission;

    let org = crate::ssr::auth::parse_org(&org)?;
    let user = crate::ssr::auth::require_permission(org, Permission::ManageAccounts)?;
    let state = crate::ssr::state()?;
    let organization = state.store.organization(org).await?;
    let accounts = backend::accounts::list_accounts(state.store.as_ref(), org)
        .await
        .map_err(mapping::account_error)?;
    Ok(OrganizationAccounts {
        organization: super::organizations::mapping::summary(&user, organization),
        accounts: accounts.into_iter().map(mapping::account).collect(),
    })
}

/// Adds an API account. `kind` is `business` (default) or `school`; empty URL fields
/// mean Apple's endpoints, others point the account elsewhere (a simulator, a proxy).
#[server(prefix = "/api")]
pub async fn add_api_account(
    org: String,
    name: String,
    #[server(default)] kind: String,
    client_id: String,
    key_id: String,
    pem: String,
    #[server(default)] api_base_url: String,
    #[server(default)] token_url: String,
) -> Result<ApiAccount, AppError> {
    use backend::accounts::{self, NewApiAccount};
    use backend::identity::Permission;

    let org = crate::ssr::auth::parse_org(&org)?;
    crate::ssr::auth::require_permission(org, Permission::ManageAccounts)?;
    let kind = mapping::kind(&kind)?;
    let urls = mapping::urls(kind, &api_base_url, &token_url);
    let new = NewApiAccount::parse(&name, &client_id, &key_id, &pem, kind, urls)
        .map_err(mapping::input_error)?;
    let state = crate::ssr::state()?;
    let view = accounts::add_account(
        state.store.as_ref(),
        &state.vault,
        &crate::ssr::auth::actor(),
        org,
        new,
    )
    .await
    .map_err(mapping::account_error)?;
    Ok(mapping::account(view))
}

/// Gets a token and reads one page with the account's credentials; records the health.
/// A refusal by Apple is a report, not an error.
#[server(prefix = "/api")]
pub async fn test_api_account(org: String, account: String) -> Result<ConnectionTest, AppError> {
    let (state, id) = mapping::authorized(&org, &account).await?;
    let report = backend::accounts::test_connection(
        state.store.as_ref(),
        &state.clients,
        &crate::ssr::auth::actor(),
        id,
    )
    .await
    .map_err(mapping::account_error)?;
    Ok(ConnectionTest {
        token_ok: report.token_ok,
        ok: report.ok,
        error: report.error,
    })
}

/// Replaces the account's key and key id (a new key in Apple Business has a new id).
#[server(prefix = "/api")]
pub async fn rotate_api_key(
    org: String,
    account: String,
    key_id: String,
    pem: String,
) -> Result<ApiAccount, AppError> {
    let (state, id) = mapping::authorized(&org, &account).await?;
    let view = backend::accounts::rotate_key(
        state.store.as_ref(),
        &state.vault,
        &state.clients,
        &crate::ssr::auth::actor(),
        id,
        &key_id,
        &pem,
    )
    .await
    .map_err(mapping::account_error)?;
    Ok(mapping::account(view))
}

/// Revokes the account: it stays listed with its history and is never used again.
#[server(prefix = "/api")]
pub async fn revoke_api_account(org: String, account: String) -> Result<ApiAccount, AppError> {
    let (state, id) = mapping::authorized(&org, &account).await?;
    let view = backend::accounts::revoke(
        state.store.as_ref(),
        &state.clients,
        &crate::ssr::auth::actor(),
        id,
    )
    .await
    .map_err(mapping::account_error)?;
    Ok(mapping::account(view))
}

/// Deletes the account and its sealed key. The page asks for confirmation first.
#[server(prefix = "/api")]
pub async fn delete_api_account(org: String, account: String) -> Result<(), AppError> {
    let (state, id) = mapping::authorized(&org, &account).await?;
    backend::accounts::delete(
        state.store.as_ref(),
        &state.clients,
        &crate::ssr::auth::actor(),
        id,
    )
    .await
    .map_err(mapping::account_error)
}

#[cfg(feature = "ssr")]
mod mapping {
    //! Access to one account, and mapping between backend types and the wire.

    use backend::accounts::{
        AccountError, AccountInputError, AccountKind, AccountUrls, ApiAccountId, ApiAccountView,
    };
    use backend::identity::Permission;
    use backend::store::StoreError;
    use time::format_description::well_known::Rfc3339;

    use crate::error::AppError;
    use crate::model::accounts::{AccountHealth, ApiAccount};
    use crate::ssr::AppState;
    use crate::ssr::sentence;

    fn account_not_found() -> AppError {
        AppError::NotFound {
            what: "API account".to_owned(),
        }
    }

    /// Checks `ManageAccounts` in `org`, then that `account` is one of `org`'s accounts
    /// (`NotFound` otherwise, the same answer as for an id that does not exist).
    pub(super) async fn authorized(
        org: &str,
        account: &str,
    ) -> Result<(AppState, ApiAccountId), AppError> {
        let org = crate::ssr::auth::parse_org(org)?;
        crate::ssr::auth::require_permission(org, Permission::ManageAccounts)?;
        let id = uuid::Uuid::try_parse(account.trim())
            .map(ApiAccountId)
            .map_err(|_| account_not_found())?;
        let state = crate::ssr::state()?;
        let record = state.store.api_account(id).await.map_err(|e| match e {
            StoreError::NotFound { .. } => account_not_found(),
            other => other.into(),
        })?;
        if record.view.org_id != org {
            return Err(account_not_found());
        }
        Ok((state, id))
    }

    pub(super) fn kind(kind: &str) -> Result<AccountKind, AppError> {
        match kind.trim() {
            "" => Ok(AccountKind::Business),
            other => AccountKind::parse(other).ok_or_else(|| {
                AppError::validation("kind", "Choose Apple Business or Apple School Manager.")
            }),
        }
    }

    /// Apple's endpoints for `kind`, with each non-empty override in their place.
    pub(super) fn urls(kind: AccountKind, api_base_url: &str, token_url: &str) -> AccountUrls {
        let mut urls = AccountUrls::apple(kind);
        let api_base_url = api_base_url.trim().trim_end_matches('/');
        if !api_base_url.is_empty() {
            api_base_url.clone_into(&mut urls.api_base_url);
        }
        if !token_url.trim().is_empty() {
            token_url.trim().clone_into(&mut urls.token_url);
        }
        urls
    }

    /// The form field a validation fault belongs to.
    fn field(err: &AccountInputError) -> &'static str {
        use AccountInputError as E;
        match err {
            E::NameEmpty | E::NameTooLong | E::NameControl => "name",
            E::ClientIdFormat { .. } | E::ClientIdKind { .. } => "client_id",
            E::KeyIdFormat => "key_id",
            E::KeyTooLarge | E::KeyWrongBlock | E::Key(_) => "pem",
            E::Url {
                field: "API base URL",
            } => "api_base_url",
            E::Url { field: "token URL" } => "token_url",
            E::Url { .. } => "audience",
        }
    }

    pub(super) fn input_error(err: AccountInputError) -> AppError {
        AppError::validation(field(&err), sentence(&err.to_string()))
    }

    pub(super) fn account_error(err: AccountError) -> AppError {
        match err {
            AccountError::Input(e) => input_error(e),
            AccountError::LimitReached | AccountError::Revoked => AppError::Conflict {
                message: sentence(&err.to_string()),
            },
            // The message is sanitized by the backend and explains a bad URL setting.
            AccountError::Client(_) => AppError::Conflict {
                message: sentence(&err.to_string()),
            },
            AccountError::Store(StoreError::NotFound { .. }) => account_not_found(),
            AccountError::Store(other) => other.into(),
            other => {
                tracing::error!(
                    error = &other as &dyn std::error::Error,
                    "API account operation failed"
                );
                crate::ssr::internal("API account operation failed")
            }
        }
    }

    fn rfc3339(t: time::OffsetDateTime) -> String {
        t.format(&Rfc3339).unwrap_or_default()
    }

    /// The wire form of an account (the view holds no key, only its fingerprint).
    pub(super) fn account(view: ApiAccountView) -> ApiAccount {
        ApiAccount {
            id: view.id.to_string(),
            name: view.name,
            kind: view.kind.as_str().to_owned(),
            client_id: view.client_id,
            key_id: view.key_id,
            key_fingerprint: view.key_fingerprint,
            api_base_url: view.urls.api_base_url,
            token_url: view.urls.token_url,
            created_at: rfc3339(view.created_at),
            rotated_at: view.rotated_at.map(rfc3339),
            revoked_at: view.revoked_at.map(rfc3339),
            health: AccountHealth {
                last_token_at: view.last_token_at.map(rfc3339),
                last_success_at: view.last_success_at.map(rfc3339),
                last_error: view.last_error,
                rate_limited_count: view.rate_limited_count,
            },
        }
    }
}
