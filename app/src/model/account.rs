//! Wire types of the account page (a person's own password and second factor), with the
//! password checks that the form and the server share.

use serde::{Deserialize, Serialize};

/// Shortest password Orchard accepts; mirrors `backend::identity::password::MIN_PASSWORD_CHARS`
/// (a server test keeps the two in step) so the browser can say so before a round trip.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// What the account page shows about the signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    pub username: String,
    pub display_name: String,
    /// Signs in with SSO: password and second factor are the provider's business.
    pub sso: bool,
    pub totp_enabled: bool,
    /// Unused recovery codes left (0 without TOTP).
    pub recovery_codes_left: u32,
    /// An enrolment started and not yet confirmed: what to type into the app.
    pub pending_totp: Option<PendingTotp>,
    /// Recovery codes issued by the previous request, shown exactly once.
    pub new_recovery_codes: Vec<String>,
}

/// The secret of an unconfirmed enrolment, for its owner only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTotp {
    /// RFC 4648 base32, for typing into an authenticator app.
    pub secret_base32: String,
    /// `otpauth://totp/...`, for apps that take a link.
    pub otpauth_uri: String,
}

/// Checks a new password and its confirmation before anything is hashed. The server
/// applies the full rules (length, not the username) afterwards.
pub fn check_new_password_pair(new: &str, confirm: &str) -> Result<(), (&'static str, String)> {
    if new.chars().count() < MIN_PASSWORD_CHARS {
        return Err((
            "new_password",
            format!("Use at least {MIN_PASSWORD_CHARS} characters."),
        ));
    }
    if new != confirm {
        return Err((
            "new_password_confirm",
            "The two passwords differ.".to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_password_is_refused_before_a_mismatch() {
        assert_eq!(
            check_new_password_pair("short", "other").unwrap_err().0,
            "new_password"
        );
    }

    #[test]
    fn a_mismatched_confirmation_names_the_confirmation_field() {
        assert_eq!(
            check_new_password_pair("long enough secret", "long enough secreT")
                .unwrap_err()
                .0,
            "new_password_confirm"
        );
        assert_eq!(
            check_new_password_pair("long enough secret", "long enough secret"),
            Ok(())
        );
    }
}
