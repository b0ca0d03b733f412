//! Signing in and out, first-run setup, and who is signed in.
//!
//! These are the only server functions a signed-out visitor may call (besides the theme);
//! the server's sign-in gate lists them. Every outcome of a sign-in attempt is written to
//! Orchard's audit log with the client address.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use crate::error::AppError;
use crate::model::{Me, SignInOptions, SignInOutcome};

/// The signed-in user, or `None`.
#[server(input = GetUrl, prefix = "/api")]
pub async fn get_me() -> Result<Option<Me>, AppError> {
    use crate::model::OrgRole;

    let Some(user) = crate::ssr::auth::current_user() else {
        return Ok(None);
    };
    let state = crate::ssr::state()?;
    let mut organizations = Vec::with_capacity(user.memberships.len());
    for org in state.store.list_organizations().await? {
        if let Some(role) = user.role_in(org.id) {
            organizations.push(OrgRole {
                id: org.id.to_string(),
                name: org.name,
                slug: org.slug,
                role: role.as_str().to_owned(),
            });
        }
    }
    Ok(Some(Me {
        username: user.username,
        display_name: user.display_name,
        instance_admin: user.instance_admin,
        sso: user.sso,
        organizations,
    }))
}

/// What the sign-in page offers: SSO, or a pointer to the setup link on a new instance.
#[server(input = GetUrl, prefix = "/api")]
pub async fn get_sign_in_options() -> Result<SignInOptions, AppError> {
    let state = crate::ssr::state()?;
    Ok(SignInOptions {
        sso_label: state
            .oidc
            .as_ref()
            .map(|oidc| oidc.config().display_name.clone()),
        setup_pending: state.store.count_users().await? == 0,
    })
}

/// Signs in with a username, password and, when the account has TOTP, a one-time or
/// recovery code. On success the session id is replaced and the response redirects to
/// `next` (a relative path) or the home page.
#[server(prefix = "/api")]
pub async fn sign_in(
    username: String,
    password: String,
    #[server(default)] code: Option<String>,
    #[server(default)] next: Option<String>,
) -> Result<SignInOutcome, AppError> {
    use backend::audit::{self, AuditAction};
    use backend::identity::login::{LoginAttempt, LoginError, SecondFactor};
    use backend::identity::password::Password;

    let state = crate::ssr::state()?;
    let client = crate::ssr::auth::client_addr()
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let attempt = LoginAttempt {
        username: username.trim().to_owned(),
        password: Password::new(password),
        second_factor: code
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .map(SecondFactor::new),
        client_addr: client,
    };
    let now = backend::identity::now_utc();
    let outcome = state
        .authenticator
        .authenticate(state.store.as_ref(), &attempt, now)
        .await;
    let failed =
        |reason: &str| serde_json::json!({ "username": attempt.username, "reason": reason });
    let actor = backend::audit::Actor {
        user_id: None,
        client_addr: Some(client),
    };
    let user = match outcome {
        Ok(user) => user,
        Err(LoginError::TotpRequired) => {
            // A plain form post (no JavaScript) cannot reveal the code field in place: show
            // the page again at its code step.
            if crate::ssr::request_header("accept").is_some_and(|a| a.contains("text/html")) {
                let mut url = format!(
                    "/login?step=code&username={}",
                    crate::model::query_escape(&attempt.username)
                );
                if let Some(next) = next.as_deref().and_then(backend::oidc::safe_next) {
                    url.push_str("&next=");
                    url.push_str(&crate::model::query_escape(&next));
                }
                leptos_axum::redirect(&url);
            }
            return Ok(SignInOutcome::CodeRequired);
        }
        Err(err) => {
            let (reason, error) = match err {
                LoginError::InvalidCredentials => (
                    "invalid_credentials",
                    AppError::validation("password", "The username or password is not correct."),
                ),
                LoginError::InvalidSecondFactor => (
                    "invalid_code",
                    AppError::validation("code", "That code is not correct or was already used."),
                ),
                LoginError::Throttled { retry_after } => (
                    "throttled",
                    AppError::TooManyRequests {
                        retry_after_secs: retry_after.as_secs().max(1),
                    },
                ),
                other => {
                    tracing::error!(error = &other as &dyn std::error::Error, "sign-in failed");
                    return Err(crate::ssr::internal("sign-in failed"));
                }
            };
            audit::append(
                state.store.as_ref(),
                &actor,
                AuditAction::SignInFailed,
                "auth",
                failed(reason),
            )
            .await
            .map_err(|_| crate::ssr::internal("audit append failed"))?;
            return Err(error);
        }
    };
    crate::ssr::auth::establish_session(user.user_id, user.auth_time).await?;
    audit::append(
        state.store.as_ref(),
        &backend::audit::Actor {
            user_id: Some(user.user_id.0),
            client_addr: Some(client),
        },
        AuditAction::SignedIn,
        &format!("user:{}", user.user_id),
        serde_json::json!({
            "method": "password",
            "second_factor": if user.used_recovery_code { "recovery_code" } else { "totp_or_none" },
        }),
    )
    .await
    .map_err(|_| crate::ssr::internal("audit append failed"))?;
    let target = next
        .as_deref()
        .and_then(backend::oidc::safe_next)
        .filter(|n| !n.starts_with("/login") && !n.starts_with("/setup"))
        .unwrap_or_else(|| "/".to_owned());
    leptos_axum::redirect(&target);
    Ok(SignInOutcome::SignedIn)
}

/// Signs out: deletes the session record and clears the cookie, then shows the sign-in page.
#[server(prefix = "/api")]
pub async fn sign_out() -> Result<(), AppError> {
    use backend::audit::{self, AuditAction};

    let user = crate::ssr::auth::require_user()?;
    crate::ssr::auth::end_session().await?;
    let state = crate::ssr::state()?;
    audit::append(
        state.store.as_ref(),
        &crate::ssr::auth::actor(),
        AuditAction::SignedOut,
        &format!("user:{}", user.id),
        serde_json::json!({}),
    )
    .await
    .map_err(|_| crate::ssr::internal("audit append failed"))?;
    leptos_axum::redirect("/login");
    Ok(())
}

/// Redeems the one-time setup link: creates the first administrator, makes them admin of
/// every existing organization (the demo one), signs them in and shows the welcome page.
#[server(prefix = "/api")]
pub async fn complete_setup(
    token: String,
    username: String,
    password: String,
    password_confirm: String,
) -> Result<(), AppError> {
    use backend::audit::{self, AuditAction};
    use backend::identity::password::Password;
    use backend::identity::setup::{SetupError, redeem_setup_token};

    if password != password_confirm {
        return Err(AppError::validation(
            "password_confirm",
            "The two passwords differ.",
        ));
    }
    let state = crate::ssr::state()?;
    let already_done = || AppError::Conflict {
        message: "Setup is already complete. Sign in instead.".to_owned(),
    };
    if state.store.count_users().await? > 0 {
        return Err(already_done());
    }
    let now = backend::identity::now_utc();
    let admin = redeem_setup_token(
        state.store.as_ref(),
        &state.authenticator.hasher,
        token.trim(),
        &username,
        &Password::new(password),
        now,
    )
    .await
    .map_err(|err| match err {
        SetupError::AlreadyDone => already_done(),
        SetupError::InvalidToken => AppError::validation(
            "token",
            "This setup link is invalid, used or expired. Restart Orchard for a new one.",
        ),
        SetupError::Username(e) => {
            AppError::validation("username", crate::ssr::sentence(&e.to_string()))
        }
        SetupError::PasswordRule(e) => {
            AppError::validation("password", crate::ssr::sentence(&e.to_string()))
        }
        other => {
            tracing::error!(error = &other as &dyn std::error::Error, "setup failed");
            crate::ssr::internal("setup failed")
        }
    })?;
    for org in state.store.list_organizations().await? {
        state
            .store
            .set_membership(admin.id, org.id, backend::identity::Role::Admin)
            .await?;
    }
    crate::ssr::auth::establish_session(admin.id, now).await?;
    audit::append(
        state.store.as_ref(),
        &backend::audit::Actor {
            user_id: Some(admin.id.0),
            client_addr: crate::ssr::auth::client_addr(),
        },
        AuditAction::SetupCompleted,
        &format!("user:{}", admin.id),
        serde_json::json!({ "username": admin.username }),
    )
    .await
    .map_err(|_| crate::ssr::internal("audit append failed"))?;
    leptos_axum::redirect("/welcome");
    Ok(())
}
