//! A person's own account: password change, TOTP enrolment, recovery codes.
//!
//! Any signed-in user may call these, always about themself. SSO users have neither an
//! Orchard password nor an Orchard second factor; their provider handles both.
//!
//! Recovery codes must be shown exactly once, also without JavaScript, where a form post
//! is answered by a redirect back to the page. So the functions that issue codes leave
//! them in the server-side session, and [`get_account`] takes them out again on the next
//! render: they live in plaintext only in that session row, for one round trip.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use crate::error::AppError;
use crate::model::account::AccountView;

/// The issuer shown in authenticator apps.
#[cfg(feature = "ssr")]
const TOTP_ISSUER: &str = "Orchard";
/// Session key of recovery codes waiting to be shown once.
#[cfg(feature = "ssr")]
const FRESH_CODES_KEY: &str = "account.fresh_recovery_codes";

/// The signed-in user's account: second-factor state, a pending enrolment's secret, and
/// recovery codes issued by the previous request (then forgotten).
#[server(input = GetUrl, prefix = "/api")]
pub async fn get_account() -> Result<AccountView, AppError> {
    use crate::model::account::PendingTotp;

    let me = crate::ssr::auth::require_user()?;
    let state = crate::ssr::state()?;
    let row = state.store.user(me.id).await?;
    let pending = backend::identity::totp::pending_enrollment(
        state.store.as_ref(),
        state.vault.as_ref(),
        me.id,
        TOTP_ISSUER,
    )
    .await
    .map_err(crate::api::support::totp_error)?;
    let recovery_codes_left = if row.totp_enabled {
        state.store.unused_recovery_codes(me.id).await?
    } else {
        0
    };
    let new_recovery_codes = crate::ssr::auth::session()?
        .remove::<Vec<String>>(FRESH_CODES_KEY)
        .await
        .map_err(|_| crate::ssr::internal("session read failed"))?
        .unwrap_or_default();
    Ok(AccountView {
        username: row.username,
        display_name: row.display_name,
        sso: me.sso,
        totp_enabled: row.totp_enabled,
        recovery_codes_left,
        pending_totp: pending.map(|e| PendingTotp {
            secret_base32: e.secret.base32().to_string(),
            otpauth_uri: e.otpauth_uri.to_string(),
        }),
        new_recovery_codes,
    })
}

/// Changes the signed-in user's password after checking the current one.
#[server(prefix = "/api")]
pub async fn change_password(
    current_password: String,
    new_password: String,
    new_password_confirm: String,
) -> Result<(), AppError> {
    use backend::audit::AuditAction;
    use backend::identity::password::Password;

    use crate::api::support::{record, user_admin_error, user_subject};

    let me = require_local_user()?;
    crate::model::account::check_new_password_pair(&new_password, &new_password_confirm)
        .map_err(|(field, message)| AppError::validation(field, message))?;
    let state = crate::ssr::state()?;
    let row = state.store.user(me.id).await?;
    let current_ok = state
        .authenticator
        .hasher
        .verify(
            &Password::new(current_password),
            row.password_hash.as_deref(),
        )
        .await
        .map_err(|_| crate::ssr::internal("password verification failed"))?;
    if !current_ok {
        return Err(AppError::validation(
            "current_password",
            "This is not your current password.",
        ));
    }
    backend::identity::users::set_password(
        state.store.as_ref(),
        &state.authenticator.hasher,
        me.id,
        &Password::new(new_password),
    )
    .await
    .map_err(|e| user_admin_error(e, "new_password"))?;
    record(
        AuditAction::PasswordChanged,
        &user_subject(me.id),
        serde_json::json!({}),
    )
    .await
}

/// Starts TOTP enrolment: a new secret, stored sealed and not enforced until confirmed.
/// Refused while TOTP is enforced (an administrator resets it first), so a stolen
/// session cannot swap the second factor.
#[server(prefix = "/api")]
pub async fn begin_totp() -> Result<(), AppError> {
    let me = require_local_user()?;
    let state = crate::ssr::state()?;
    if state.store.user(me.id).await?.totp_enabled {
        return Err(AppError::Conflict {
            message: "Two-step sign-in is already on. Ask an administrator to reset it.".to_owned(),
        });
    }
    backend::identity::totp::begin_enrollment(
        state.store.as_ref(),
        state.vault.as_ref(),
        me.id,
        TOTP_ISSUER,
    )
    .await
    .map(drop)
    .map_err(crate::api::support::totp_error)
}

/// Confirms enrolment with a first code from the app; from now on sign-in asks for a
/// code. Issues ten recovery codes, shown once by the next [`get_account`].
#[server(prefix = "/api")]
pub async fn confirm_totp(code: String) -> Result<(), AppError> {
    use backend::audit::AuditAction;

    use crate::api::support::{record, user_subject};

    let me = require_local_user()?;
    let state = crate::ssr::state()?;
    let codes = backend::identity::totp::confirm_enrollment(
        state.store.as_ref(),
        state.vault.as_ref(),
        me.id,
        code.trim(),
        backend::identity::now_utc(),
    )
    .await
    .map_err(crate::api::support::totp_error)?;
    keep_codes_for_next_render(codes).await?;
    record(
        AuditAction::TotpEnrolled,
        &user_subject(me.id),
        serde_json::json!({}),
    )
    .await
}

/// Replaces the recovery codes with ten new ones (the old ones stop working), shown once
/// by the next [`get_account`].
#[server(prefix = "/api")]
pub async fn regenerate_recovery_codes() -> Result<(), AppError> {
    let me = require_local_user()?;
    let state = crate::ssr::state()?;
    if !state.store.user(me.id).await?.totp_enabled {
        return Err(AppError::Conflict {
            message: "Turn on two-step sign-in first.".to_owned(),
        });
    }
    let codes = backend::identity::totp::issue_recovery_codes(state.store.as_ref(), me.id)
        .await
        .map_err(crate::api::support::totp_error)?;
    keep_codes_for_next_render(codes).await
}

/// A signed-in user with a local password (not SSO).
#[cfg(feature = "ssr")]
fn require_local_user() -> Result<crate::ssr::auth::CurrentUser, AppError> {
    let me = crate::ssr::auth::require_user()?;
    if me.sso {
        return Err(AppError::Conflict {
            message: "You sign in with SSO: your provider manages your password and second step."
                .to_owned(),
        });
    }
    Ok(me)
}

#[cfg(feature = "ssr")]
async fn keep_codes_for_next_render(
    codes: backend::identity::totp::RecoveryCodes,
) -> Result<(), AppError> {
    let plain: Vec<String> = codes.0.iter().map(|c| c.to_string()).collect();
    crate::ssr::auth::session()?
        .insert(FRESH_CODES_KEY, plain)
        .await
        .map_err(|_| crate::ssr::internal("session write failed"))
}
