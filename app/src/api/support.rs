//! Server-only helpers shared by the user, account and audit server functions: reading
//! ids off the wire, formatting times, writing the audit log, and turning the identity
//! services' errors into [`AppError`]s a person can act on.

use backend::audit::{self, AuditAction};
use backend::identity::UserId;
use backend::identity::totp::TotpError;
use backend::identity::users::UserAdminError;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::AppError;

/// Parses a user id that came over the wire; unknown shapes read as not found.
pub fn parse_user(id: &str) -> Result<UserId, AppError> {
    uuid::Uuid::try_parse(id.trim())
        .map(UserId)
        .map_err(|_| AppError::NotFound {
            what: "User".to_owned(),
        })
}

/// RFC 3339 text for the browser, which has no `time` crate.
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// Appends an entry for the current request's actor about `subject`.
/// `details` carries ids and names only, never a password, secret or code.
pub async fn record(
    action: AuditAction,
    subject: &str,
    details: serde_json::Value,
) -> Result<(), AppError> {
    let state = crate::ssr::state()?;
    audit::append(
        state.store.as_ref(),
        &crate::ssr::auth::actor(),
        action,
        subject,
        details,
    )
    .await
    .map(|_| ())
    .map_err(|_| crate::ssr::internal("audit append failed"))
}

/// The audit subject naming a user.
pub fn user_subject(id: UserId) -> String {
    format!("user:{id}")
}

/// Maps a user administration failure; `password_field` names the form field a password
/// rule message belongs to.
pub fn user_admin_error(err: UserAdminError, password_field: &str) -> AppError {
    match err {
        UserAdminError::Username(e) => AppError::validation("username", sentence(&e.to_string())),
        UserAdminError::PasswordRule(e) => {
            AppError::validation(password_field, sentence(&e.to_string()))
        }
        UserAdminError::UsernameTaken => {
            AppError::validation("username", "This username is already taken.")
        }
        UserAdminError::Disabled | UserAdminError::NotInstanceAdmin => AppError::Forbidden,
        UserAdminError::Store(e) => e.into(),
        other @ UserAdminError::Password(_) => {
            tracing::error!(
                error = &other as &dyn std::error::Error,
                "user administration failed"
            );
            crate::ssr::internal("user administration failed")
        }
    }
}

/// Maps a TOTP failure; a wrong code belongs to the `code` field.
pub fn totp_error(err: TotpError) -> AppError {
    match err {
        TotpError::InvalidCode => AppError::validation(
            "code",
            "That code is not correct. Check the time on your phone and try the next code.",
        ),
        TotpError::NotEnrolled => AppError::Conflict {
            message: "Start the set-up again: no enrolment is pending.".to_owned(),
        },
        TotpError::Store(e) => e.into(),
        other @ TotpError::Seal(_) => {
            tracing::error!(error = &other as &dyn std::error::Error, "TOTP failed");
            crate::ssr::internal("TOTP secret could not be sealed or opened")
        }
    }
}

/// "the password is too short" → "The password is too short."
fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_messages_become_sentences() {
        assert_eq!(sentence("the username is empty"), "The username is empty.");
        assert_eq!(sentence("Done."), "Done.");
    }

    #[test]
    fn a_malformed_user_id_reads_as_not_found() {
        assert!(matches!(parse_user("nope"), Err(AppError::NotFound { .. })));
        let id = UserId::random();
        assert_eq!(parse_user(&format!(" {id} ")), Ok(id));
    }
}
