//! Second factor: time-based one-time passwords (RFC 6238) and recovery codes.
//!
//! Codes are HMAC-SHA-1, 6 digits, 30-second steps, accepted one step either side for
//! clock drift. Each accepted step is recorded per user with a compare-and-set in the
//! store, so a code cannot be replayed, even on another instance. The secret is 20
//! random bytes, shown once as base32 in an `otpauth://` URI, and stored sealed by the
//! vault through [`SecretSealer`]; identity code never keeps it in plaintext.
//!
//! Recovery codes are 10 single-use codes of 16 base32 characters (80 random bits), shown
//! once and stored as SHA-256: with that much entropy a slow hash adds nothing.

use std::fmt;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::UserId;
use crate::store::identity::SealedSecret;
use crate::store::{IdentityStore, StoreError};

/// Seconds per TOTP step.
pub const STEP_SECS: i64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Steps accepted either side of the current one.
pub const SKEW_STEPS: i64 = 1;
/// Bytes of secret (160 bits, as RFC 4226 recommends).
pub const SECRET_BYTES: usize = 20;
/// Recovery codes issued at a time.
pub const RECOVERY_CODES: usize = 10;

/// Result alias of this module.
pub type Result<T, E = TotpError> = std::result::Result<T, E>;

/// Why a TOTP operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the TOTP secret cannot be sealed or opened")]
    Seal(#[source] SealError),
    #[error("the user has not started TOTP enrolment")]
    NotEnrolled,
    #[error("the code is not valid")]
    InvalidCode,
}

/// The vault's failure to seal or open a secret; its detail stays in the vault.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SealError(pub String);

/// Encrypts and decrypts small secrets (AEAD). Implemented by the credential vault;
/// `context` is bound as associated data so a secret copied to another row will not open.
pub trait SecretSealer: Send + Sync {
    fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<SealedSecret, SealError>;
    fn open(&self, context: &[u8], sealed: &SealedSecret) -> Result<Zeroizing<Vec<u8>>, SealError>;
}

/// The associated data a user's TOTP secret is sealed with.
fn seal_context(user: UserId) -> Vec<u8> {
    crate::vault::totp_secret_aad(&user.to_string())
}

/// A TOTP shared secret in plaintext. Zeroed on drop, printed as `***`.
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(***)")
    }
}

impl TotpSecret {
    /// 20 fresh random bytes.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new(vec![0_u8; SECRET_BYTES]);
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Reads a secret typed or copied as RFC 4648 base32 (any case, spaces and padding
    /// ignored), as an authenticator app would. `None` for any other character.
    pub fn from_base32(text: &str) -> Option<Self> {
        let mut bytes = Zeroizing::new(Vec::with_capacity(text.len() * 5 / 8));
        let (mut buffer, mut bits) = (0_u32, 0_u32);
        for c in text.chars().filter(|c| !matches!(c, ' ' | '=')) {
            let upper = u8::try_from(c.to_ascii_uppercase()).ok()?;
            let value = BASE32_ALPHABET.iter().position(|&a| a == upper)?;
            buffer = (buffer << 5) | value as u32;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                bytes.push((buffer >> bits) as u8);
            }
            buffer &= (1 << bits) - 1;
        }
        Some(Self(bytes))
    }

    /// RFC 4648 base32 without padding, as authenticator apps expect.
    pub fn base32(&self) -> Zeroizing<String> {
        Zeroizing::new(base32(&self.0))
    }

    /// The `otpauth://totp/…` URI for a QR code. `issuer` and `account` are percent-encoded.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> Zeroizing<String> {
        let issuer = percent_encode(issuer);
        Zeroizing::new(format!(
            "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
            account = percent_encode(account),
            secret = self.base32().as_str(),
        ))
    }

    /// The code for a step (RFC 4226 HOTP with the step as counter).
    pub fn code_at_step(&self, step: i64) -> String {
        format!(
            "{:0width$}",
            hotp(&self.0, step, DIGITS),
            width = DIGITS as usize
        )
    }

    /// The step within ±1 of `now` whose code equals `code`, if any. Comparison is constant-time.
    pub fn matching_step(&self, code: &str, now: OffsetDateTime) -> Option<i64> {
        let code = code.trim();
        if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let current = step_at(now);
        (current - SKEW_STEPS..=current + SKEW_STEPS)
            .find(|step| bool::from(self.code_at_step(*step).as_bytes().ct_eq(code.as_bytes())))
    }
}

/// The 30-second step containing `now`.
pub fn step_at(now: OffsetDateTime) -> i64 {
    now.unix_timestamp().div_euclid(STEP_SECS)
}

/// HOTP: HMAC-SHA-1 over the big-endian counter, dynamic truncation, modulo 10^digits.
fn hotp(key: &[u8], counter: i64, digits: u32) -> u32 {
    let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    binary % 10_u32.pow(digits)
}

const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0_u32, 0_u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(
                BASE32_ALPHABET[((buffer >> bits) & 31) as usize],
            ));
        }
    }
    if bits > 0 {
        out.push(char::from(
            BASE32_ALPHABET[((buffer << (5 - bits)) & 31) as usize],
        ));
    }
    out
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// What the user sees once when enrolling: the secret and its URI. Neither is stored in plaintext.
#[derive(Debug)]
pub struct Enrollment {
    pub secret: TotpSecret,
    pub otpauth_uri: Zeroizing<String>,
}

/// Starts enrolment: generates a secret and stores it sealed, not yet enforced.
/// Sign-in keeps asking for the password only until [`confirm_enrollment`].
#[tracing::instrument(name = "totp.begin_enrollment", skip_all, fields(user = %user))]
pub async fn begin_enrollment(
    store: &dyn IdentityStore,
    sealer: &dyn SecretSealer,
    user: UserId,
    issuer: &str,
) -> Result<Enrollment> {
    let row = store.user(user).await?;
    let secret = TotpSecret::generate();
    let sealed = sealer
        .seal(&seal_context(user), &secret.0)
        .map_err(TotpError::Seal)?;
    store.set_totp(user, Some(&sealed), false).await?;
    let otpauth_uri = secret.otpauth_uri(issuer, &row.username);
    Ok(Enrollment {
        secret,
        otpauth_uri,
    })
}

/// The enrolment a user started and has not confirmed yet, opened again so its owner can
/// finish it (for example after a page reload). `None` when there is none, or when TOTP
/// is already enforced: an enforced secret is never shown again.
#[tracing::instrument(name = "totp.pending_enrollment", skip_all, fields(user = %user))]
pub async fn pending_enrollment(
    store: &dyn IdentityStore,
    sealer: &dyn SecretSealer,
    user: UserId,
    issuer: &str,
) -> Result<Option<Enrollment>> {
    let row = store.user(user).await?;
    let Some(sealed) = row.totp_secret.filter(|_| !row.totp_enabled) else {
        return Ok(None);
    };
    let secret = open(sealer, user, &sealed)?;
    let otpauth_uri = secret.otpauth_uri(issuer, &row.username);
    Ok(Some(Enrollment {
        secret,
        otpauth_uri,
    }))
}

/// Confirms enrolment with a first code, enforces TOTP, and issues fresh recovery codes
/// (returned once, stored hashed).
#[tracing::instrument(name = "totp.confirm_enrollment", skip_all, fields(user = %user))]
pub async fn confirm_enrollment(
    store: &dyn IdentityStore,
    sealer: &dyn SecretSealer,
    user: UserId,
    code: &str,
    now: OffsetDateTime,
) -> Result<RecoveryCodes> {
    let row = store.user(user).await?;
    let sealed = row.totp_secret.ok_or(TotpError::NotEnrolled)?;
    let secret = open(sealer, user, &sealed)?;
    let step = secret
        .matching_step(code, now)
        .ok_or(TotpError::InvalidCode)?;
    store.set_totp(user, Some(&sealed), true).await?;
    if !store.advance_totp_step(user, step).await? {
        return Err(TotpError::InvalidCode);
    }
    issue_recovery_codes(store, user).await
}

/// Checks a TOTP code for a user with TOTP enabled and consumes its step.
/// `Ok(false)` for a wrong, out-of-window or replayed code.
pub async fn verify_code(
    store: &dyn IdentityStore,
    sealer: &dyn SecretSealer,
    user: UserId,
    sealed: &SealedSecret,
    code: &str,
    now: OffsetDateTime,
) -> Result<bool> {
    let secret = open(sealer, user, sealed)?;
    match secret.matching_step(code, now) {
        Some(step) => Ok(store.advance_totp_step(user, step).await?),
        None => Ok(false),
    }
}

fn open(sealer: &dyn SecretSealer, user: UserId, sealed: &SealedSecret) -> Result<TotpSecret> {
    let bytes = sealer
        .open(&seal_context(user), sealed)
        .map_err(TotpError::Seal)?;
    Ok(TotpSecret(bytes))
}

/// Freshly issued recovery codes, in plaintext, to show once. Zeroed on drop.
pub struct RecoveryCodes(pub Vec<Zeroizing<String>>);

impl fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecoveryCodes({} × ***)", self.0.len())
    }
}

/// Replaces the user's recovery codes with 10 new ones.
pub async fn issue_recovery_codes(
    store: &dyn IdentityStore,
    user: UserId,
) -> Result<RecoveryCodes> {
    let codes: Vec<Zeroizing<String>> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
    let hashes: Vec<[u8; 32]> = codes.iter().map(|c| recovery_code_hash(c)).collect();
    store.replace_recovery_codes(user, &hashes).await?;
    Ok(RecoveryCodes(codes))
}

/// Spends a recovery code. `Ok(false)` when it is wrong or already used.
pub async fn use_recovery_code(
    store: &dyn IdentityStore,
    user: UserId,
    code: &str,
    now: OffsetDateTime,
) -> Result<bool> {
    Ok(store
        .use_recovery_code(user, &recovery_code_hash(code), now)
        .await?)
}

/// `XXXX-XXXX-XXXX-XXXX` from 10 random bytes.
fn new_recovery_code() -> Zeroizing<String> {
    let mut bytes = Zeroizing::new([0_u8; 10]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    let plain = Zeroizing::new(base32(bytes.as_ref()));
    let groups: Vec<&str> = (0..4).map(|i| &plain[i * 4..i * 4 + 4]).collect();
    Zeroizing::new(groups.join("-"))
}

/// Whether a typed second factor looks like a recovery code rather than a 6-digit TOTP code.
pub fn looks_like_recovery_code(code: &str) -> bool {
    normalize_recovery_code(code).len() == 16
}

fn normalize_recovery_code(code: &str) -> String {
    code.chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// SHA-256 of the normalized code (upper case, without dashes and spaces).
fn recovery_code_hash(code: &str) -> [u8; 32] {
    let normalized = Zeroizing::new(normalize_recovery_code(code));
    Sha256::digest(normalized.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn base32_secrets_read_back_in_any_case_and_with_spaces() {
        let secret = TotpSecret::from_bytes(RFC_SECRET.to_vec());
        let text = secret.base32();
        let spaced: String = text
            .to_lowercase()
            .chars()
            .enumerate()
            .flat_map(|(i, c)| (i % 4 == 0).then_some(' ').into_iter().chain([c]))
            .collect();
        for typed in [text.as_str(), spaced.as_str()] {
            let back = TotpSecret::from_base32(typed).expect("valid base32");
            assert_eq!(back.0.as_slice(), RFC_SECRET);
        }
        assert!(TotpSecret::from_base32("AB1C").is_none());
    }

    #[test]
    fn hotp_matches_the_rfc_6238_sha1_test_vectors() {
        for (time, expected) in [
            (59_i64, 94_287_082_u32),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ] {
            assert_eq!(
                hotp(RFC_SECRET, time / STEP_SECS, 8),
                expected,
                "T = {time}"
            );
        }
    }

    #[test]
    fn six_digit_codes_keep_leading_zeros() {
        let secret = TotpSecret::from_bytes(RFC_SECRET.to_vec());
        assert_eq!(secret.code_at_step(1_234_567_890 / STEP_SECS), "005924");
        assert_eq!(secret.code_at_step(1_111_111_109 / STEP_SECS), "081804");
    }

    #[test]
    fn base32_matches_rfc_4648() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(RFC_SECRET), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }

    #[test]
    fn codes_are_accepted_one_step_either_side_and_no_further() {
        let secret = TotpSecret::from_bytes(RFC_SECRET.to_vec());
        let now = OffsetDateTime::from_unix_timestamp(1_234_567_890).unwrap();
        let step = step_at(now);
        for offset in -1..=1 {
            let code = secret.code_at_step(step + offset);
            assert_eq!(secret.matching_step(&code, now), Some(step + offset));
        }
        for offset in [-2, 2] {
            let code = secret.code_at_step(step + offset);
            assert_eq!(secret.matching_step(&code, now), None, "offset {offset}");
        }
    }

    #[test]
    fn malformed_codes_never_match() {
        let secret = TotpSecret::from_bytes(RFC_SECRET.to_vec());
        let now = OffsetDateTime::from_unix_timestamp(59).unwrap();
        assert_eq!(secret.matching_step("287082", now), Some(1));
        assert_eq!(secret.matching_step("28708", now), None);
        assert_eq!(secret.matching_step("2870822", now), None);
        assert_eq!(secret.matching_step("28708a", now), None);
        assert_eq!(secret.matching_step("", now), None);
    }

    #[test]
    fn generated_secrets_are_20_random_bytes() {
        let (a, b) = (TotpSecret::generate(), TotpSecret::generate());
        assert_eq!(a.0.len(), SECRET_BYTES);
        assert_ne!(*a.0, *b.0);
        assert_eq!(a.base32().len(), 32);
    }

    #[test]
    fn the_otpauth_uri_names_issuer_account_and_parameters() {
        let secret = TotpSecret::from_bytes(RFC_SECRET.to_vec());
        assert_eq!(
            secret
                .otpauth_uri("Orchard Acme", "ann@example.com")
                .as_str(),
            "otpauth://totp/Orchard%20Acme:ann%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Orchard%20Acme&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn recovery_codes_are_four_groups_and_match_however_typed() {
        let code = new_recovery_code();
        assert_eq!(code.len(), 19);
        assert_eq!(code.matches('-').count(), 3);
        assert!(looks_like_recovery_code(&code));
        assert!(!looks_like_recovery_code("123456"));
        let typed = code.replace('-', " ").to_lowercase();
        assert_eq!(recovery_code_hash(&code), recovery_code_hash(&typed));
        assert_ne!(
            recovery_code_hash(&code),
            recovery_code_hash(&new_recovery_code())
        );
    }

    #[test]
    fn debug_output_never_shows_secrets_or_codes() {
        let secret = TotpSecret::from_bytes(RFC_SECRET.to_vec());
        assert_eq!(format!("{secret:?}"), "TotpSecret(***)");
        let codes = RecoveryCodes(vec![new_recovery_code()]);
        assert_eq!(format!("{codes:?}"), "RecoveryCodes(1 × ***)");
    }
}
