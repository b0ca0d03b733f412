//! Authentication: the ES256 client assertion, the token exchange and the token cache.
//!
//! Design (SPEC §2): OAuth 2.0 client credentials with a signed JWT client assertion. We mint a
//! fresh, short-lived assertion for each token request (cheap, and nothing long-lived to leak),
//! cache the access token until `token_refresh_margin` before its expiry, and make refresh
//! single-flight: one `tokio::sync::Mutex` is held across "check, maybe refresh", so N
//! concurrent callers cause one token request. Secrets live in zeroizing memory, never implement
//! `Serialize`, and print as `[redacted]`.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use pkcs8::ObjectIdentifier;
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;
use zeroize::Zeroizing;

use crate::config::ClientConfig;
use crate::error::{KeyError, TokenError, redact_description};

/// `id-ecPublicKey`.
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `prime256v1` / `secp256r1`.
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// RFC 7523 assertion type.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The API account's P-256 private key. Zeroized on drop (RustCrypto keys are `ZeroizeOnDrop`),
/// redacted in `Debug`, and deliberately neither `Serialize` nor `Display`.
#[derive(Clone)]
pub struct PrivateKey {
    key: SigningKey,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey([redacted])")
    }
}

impl PrivateKey {
    /// Loads a PEM private key as downloaded from Apple Business: PKCS#8 (`BEGIN PRIVATE KEY`)
    /// or SEC1 (`BEGIN EC PRIVATE KEY`). Errors say what is wrong (not PEM, not EC, not P-256)
    /// and never echo key material.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let (label, der) = decode_pem(pem)?;
        match label.as_str() {
            "PRIVATE KEY" => Self::from_pkcs8_der(&der),
            "EC PRIVATE KEY" => Self::from_sec1_der(&der),
            "ENCRYPTED PRIVATE KEY" => Err(KeyError::Encrypted),
            "RSA PRIVATE KEY" => Err(KeyError::NotEc("RSA".to_owned())),
            other => Err(KeyError::WrongBlock(other.to_owned())),
        }
    }

    /// Loads PKCS#8 DER.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let info = pkcs8::PrivateKeyInfo::try_from(der)
            .map_err(|_| KeyError::Malformed("not a PKCS#8 PrivateKeyInfo"))?;
        if info.algorithm.oid != OID_EC_PUBLIC_KEY {
            return Err(KeyError::NotEc(algorithm_name(info.algorithm.oid)));
        }
        match info.algorithm.parameters_oid() {
            Ok(curve) if curve == OID_P256 => {}
            Ok(curve) => return Err(KeyError::NotP256(curve_name(curve))),
            Err(_) => return Err(KeyError::Malformed("EC key without named curve")),
        }
        let secret = p256::SecretKey::from_sec1_der(info.private_key)
            .map_err(|_| KeyError::Malformed("invalid EC private key"))?;
        Ok(Self {
            key: SigningKey::from(secret),
        })
    }

    /// Loads SEC1 (`ECPrivateKey`) DER.
    pub fn from_sec1_der(der: &[u8]) -> Result<Self, KeyError> {
        let parsed = sec1::EcPrivateKey::try_from(der)
            .map_err(|_| KeyError::Malformed("not a SEC1 ECPrivateKey"))?;
        if let Some(curve) = parsed.parameters.and_then(|p| p.named_curve())
            && curve != OID_P256
        {
            return Err(KeyError::NotP256(curve_name(curve)));
        }
        let secret = p256::SecretKey::from_sec1_der(der)
            .map_err(|_| KeyError::Malformed("invalid EC private key"))?;
        Ok(Self {
            key: SigningKey::from(secret),
        })
    }

    /// The public half, e.g. to register the key with the simulator or verify assertions.
    pub fn verifying_key(&self) -> p256::ecdsa::VerifyingKey {
        *self.key.verifying_key()
    }

    /// Wraps an in-memory signing key (tests, simulator).
    pub fn from_signing_key(key: SigningKey) -> Self {
        Self { key }
    }
}

fn algorithm_name(oid: ObjectIdentifier) -> String {
    match oid.to_string().as_str() {
        "1.2.840.113549.1.1.1" => "RSA".to_owned(),
        "1.3.101.112" => "Ed25519".to_owned(),
        other => other.to_owned(),
    }
}

fn curve_name(oid: ObjectIdentifier) -> String {
    match oid.to_string().as_str() {
        "1.3.132.0.34" => "P-384".to_owned(),
        "1.3.132.0.35" => "P-521".to_owned(),
        "1.3.132.0.10" => "secp256k1".to_owned(),
        other => other.to_owned(),
    }
}

/// Extracts the first PEM block: its label and the DER bytes (in zeroizing memory).
fn decode_pem(pem: &str) -> Result<(String, Zeroizing<Vec<u8>>), KeyError> {
    let start = pem
        .find("-----BEGIN ")
        .ok_or(KeyError::NotPem("no BEGIN line"))?;
    let rest = &pem[start + "-----BEGIN ".len()..];
    let label_end = rest
        .find("-----")
        .ok_or(KeyError::NotPem("unterminated BEGIN line"))?;
    let label = rest[..label_end].trim().to_owned();
    let body_and_end = &rest[label_end + 5..];
    let end_marker = format!("-----END {label}-----");
    let end = body_and_end
        .find(&end_marker)
        .ok_or(KeyError::NotPem("no matching END line"))?;
    let body = &body_and_end[..end];
    if body.lines().any(|l| l.contains(':')) {
        // Legacy OpenSSL encryption headers (Proc-Type / DEK-Info).
        return Err(KeyError::Encrypted);
    }
    let b64: Zeroizing<String> =
        Zeroizing::new(body.chars().filter(|c| !c.is_ascii_whitespace()).collect());
    let der = STANDARD
        .decode(b64.as_bytes())
        .map_err(|_| KeyError::NotPem("invalid base64"))?;
    Ok((label, Zeroizing::new(der)))
}

/// An OAuth access token. Zeroized on drop; `Debug` is redacted; no `Display`, no `Serialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(Zeroizing<String>);

impl AccessToken {
    /// The bearer value, for the `Authorization` header only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    pub(crate) fn new(s: String) -> Self {
        Self(Zeroizing::new(s))
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken([redacted])")
    }
}

/// Claims of the client assertion (SPEC §2.3).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct AssertionClaims {
    /// Client ID.
    pub iss: String,
    /// Client ID.
    pub sub: String,
    /// Audience: Apple's `/v2/` token URL.
    pub aud: String,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Unique id (UUIDv4).
    pub jti: String,
}

#[derive(serde::Serialize)]
struct AssertionHeader<'a> {
    alg: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
}

/// Builds and signs the ES256 client assertion for `config` at `now`. The result is a secret.
pub fn build_assertion(
    key: &PrivateKey,
    config: &ClientConfig,
    now: SystemTime,
) -> Result<Zeroizing<String>, TokenError> {
    let iat = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| TokenError::Signing)?
        .as_secs();
    // Apple rejects `exp` at or beyond 180 days.
    let max_lifetime = 180 * 86_400 - 60;
    let lifetime = config.assertion_lifetime.as_secs().clamp(1, max_lifetime);
    let claims = AssertionClaims {
        iss: config.client_id.clone(),
        sub: config.client_id.clone(),
        aud: config.audience.clone(),
        iat,
        exp: iat + lifetime,
        jti: uuid::Uuid::new_v4().to_string(),
    };
    let header = AssertionHeader {
        alg: "ES256",
        kid: config.send_kid.then_some(config.key_id.as_str()),
    };
    let header = serde_json::to_vec(&header).map_err(|_| TokenError::Signing)?;
    let claims = serde_json::to_vec(&claims).map_err(|_| TokenError::Signing)?;
    let mut jwt = Zeroizing::new(format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    ));
    // JWS ES256 wants the raw 64-byte r||s, which is what `Signature::to_bytes` gives.
    let sig: Signature = key
        .key
        .try_sign(jwt.as_bytes())
        .map_err(|_| TokenError::Signing)?;
    jwt.push('.');
    jwt.push_str(&URL_SAFE_NO_PAD.encode(sig.to_bytes()));
    Ok(jwt)
}

/// A token with the monotonic instants it should be refreshed at and it expires at.
#[derive(Clone)]
pub(crate) struct CachedToken {
    pub token: AccessToken,
    pub refresh_at: Instant,
    /// `expires_in` counted from before the token request was sent, so slightly early.
    pub expires_at: Instant,
}

/// How long a still-valid token is used without asking again after an early refresh failed
/// transiently and the token endpoint sent no `Retry-After`.
const REFRESH_QUIET: Duration = Duration::from_secs(5);

/// Single-flight token cache. One per [`crate::Client`].
#[derive(Default)]
pub(crate) struct TokenCache {
    slot: Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    token: Option<CachedToken>,
    /// When the last fetch failed, and whether that failure was transient.
    failed: Option<(Instant, bool)>,
    /// After an early refresh failed transiently, the cached (still valid) token is used
    /// until this instant before the token endpoint is asked again.
    quiet_until: Option<Instant>,
}

impl Slot {
    /// The cached token if it has not expired yet (it may be due for a refresh).
    fn still_valid(&self, now: Instant) -> Option<AccessToken> {
        self.token
            .as_ref()
            .filter(|c| now < c.expires_at)
            .map(|c| c.token.clone())
    }

    /// Callers that queued behind a fetch that failed share its failure instead of each
    /// hitting the token endpoint again (its limit is per client id, SPEC §2.6).
    fn failed_since(&self, asked: Instant) -> Option<TokenError> {
        match self.failed {
            Some((at, transient)) if at >= asked => Some(TokenError::SharedFailure { transient }),
            _ => None,
        }
    }

    async fn refill(
        &mut self,
        fetch: impl AsyncFnOnce() -> Result<CachedToken, TokenError>,
    ) -> Result<AccessToken, TokenError> {
        match fetch().await {
            Ok(fresh) => {
                let token = fresh.token.clone();
                self.token = Some(fresh);
                self.failed = None;
                self.quiet_until = None;
                Ok(token)
            }
            Err(e) => {
                self.failed = Some((Instant::now(), e.is_transient()));
                Err(e)
            }
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: String,
    #[serde(default)]
    pub(crate) expires_in: Option<u64>,
    #[serde(default)]
    pub(crate) token_type: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct OAuthErrorBody {
    pub(crate) error: String,
    #[serde(default)]
    pub(crate) error_description: Option<String>,
}

impl TokenCache {
    /// Returns the cached token, or fetches one while holding the lock.
    pub async fn get(
        &self,
        fetch: impl AsyncFnOnce() -> Result<CachedToken, TokenError>,
    ) -> Result<AccessToken, TokenError> {
        let asked = Instant::now();
        let mut slot = self.slot.lock().await;
        let now = Instant::now();
        if let Some(c) = slot.token.as_ref()
            && now < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        // Refreshing early must not fail early: while a failed refresh is quiet, or when a
        // concurrent caller's refresh just failed, a token that has not expired is still good.
        if slot.quiet_until.is_some_and(|q| now < q)
            && let Some(t) = slot.still_valid(now)
        {
            return Ok(t);
        }
        if let Some(e) = slot.failed_since(asked) {
            return slot.still_valid(now).ok_or(e);
        }
        match slot.refill(fetch).await {
            Err(e) if e.is_transient() => {
                let now = Instant::now();
                let Some(t) = slot.still_valid(now) else {
                    return Err(e);
                };
                let quiet = match &e {
                    TokenError::RateLimited {
                        retry_after: Some(d),
                    } => *d,
                    _ => REFRESH_QUIET,
                };
                slot.quiet_until = Some(now + quiet);
                tracing::warn!(error = %e, "early token refresh failed; using the current token until it expires");
                Ok(t)
            }
            r => r,
        }
    }

    /// After a 401 with `rejected`: refresh unless someone already replaced that token.
    pub async fn refresh_after_401(
        &self,
        rejected: &AccessToken,
        fetch: impl AsyncFnOnce() -> Result<CachedToken, TokenError>,
    ) -> Result<AccessToken, TokenError> {
        let asked = Instant::now();
        let mut slot = self.slot.lock().await;
        if let Some(c) = slot.token.as_ref()
            && &c.token != rejected
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        if let Some(e) = slot.failed_since(asked) {
            return Err(e);
        }
        slot.token = None;
        slot.refill(fetch).await
    }
}

/// The form body of the token request (SPEC §2.4); sent form-encoded, never in the query string.
pub(crate) fn token_form<'a>(
    config: &'a ClientConfig,
    assertion: &'a str,
) -> [(&'static str, &'a str); 5] {
    [
        ("grant_type", "client_credentials"),
        ("client_id", &config.client_id),
        ("client_assertion_type", CLIENT_ASSERTION_TYPE),
        ("client_assertion", assertion),
        ("scope", &config.scope),
    ]
}

/// Performs one token request. Not retried here: a failed fetch fails the current attempt, and
/// the caller's retry policy (GETs only) decides.
pub(crate) async fn fetch_token(
    http: &reqwest::Client,
    config: &ClientConfig,
    key: &PrivateKey,
) -> Result<CachedToken, TokenError> {
    let assertion = build_assertion(key, config, SystemTime::now())?;
    let form = token_form(config, &assertion);
    let started = Instant::now();
    let send = async {
        let resp = http.post(&config.token_url).form(&form).send().await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = Zeroizing::new(resp.bytes().await?.to_vec());
        Ok::<_, reqwest::Error>((status, headers, body))
    };
    let (status, headers, body) = tokio::time::timeout(config.timeouts.attempt, send)
        .await
        .map_err(|_| TokenError::Timeout(config.timeouts.attempt))?
        .map_err(|e| TokenError::Transport(e.without_url()))?;
    if status.is_success() {
        let mut de = serde_json::Deserializer::from_slice(&body);
        // The serde message could quote the token, so only the path is kept.
        let parsed: TokenResponse =
            serde_path_to_error::deserialize(&mut de).map_err(|e| TokenError::Decode {
                path: e.path().to_string(),
            })?;
        if let Some(tt) = parsed.token_type.as_deref()
            && !tt.eq_ignore_ascii_case("bearer")
        {
            return Err(TokenError::Decode {
                path: "token_type".to_owned(),
            });
        }
        let ttl = Duration::from_secs(parsed.expires_in.unwrap_or(3600));
        let refresh_in = ttl.saturating_sub(config.token_refresh_margin).max(ttl / 2);
        return Ok(CachedToken {
            token: AccessToken::new(parsed.access_token),
            refresh_at: started + refresh_in,
            expires_at: started + ttl,
        });
    }
    if status.as_u16() == 429 {
        let retry_after = crate::retry::parse_retry_after(&headers, SystemTime::now());
        return Err(TokenError::RateLimited { retry_after });
    }
    let (error, description) = match serde_json::from_slice::<OAuthErrorBody>(&body) {
        Ok(b) => (
            b.error
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(64)
                .collect(),
            b.error_description.as_deref().map(redact_description),
        ),
        Err(_) => ("unknown".to_owned(), None),
    };
    Err(TokenError::Rejected {
        status: status.as_u16(),
        error,
        description,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier as _;
    use p256::pkcs8::{EncodePrivateKey as _, LineEnding};

    pub(crate) fn test_key() -> PrivateKey {
        PrivateKey::from_signing_key(SigningKey::random(&mut rand::rngs::OsRng))
    }

    fn config() -> ClientConfig {
        ClientConfig::apple_business(
            "BUSINESSAPI.c75c0a8a-a026-4dae-99aa-89ea1e1103e5",
            "e339d085-a821-438a-a527-d044edacf50a",
        )
    }

    fn split(jwt: &str) -> (serde_json::Value, AssertionClaims, Vec<u8>, String) {
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        (header, claims, sig, format!("{}.{}", parts[0], parts[1]))
    }

    #[test]
    fn assertion_has_apple_claims_and_a_valid_es256_signature() {
        let key = test_key();
        let now = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        let jwt = build_assertion(&key, &config(), now).unwrap();
        let (header, claims, sig, signed) = split(&jwt);
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], "e339d085-a821-438a-a527-d044edacf50a");
        assert_eq!(
            claims.iss,
            "BUSINESSAPI.c75c0a8a-a026-4dae-99aa-89ea1e1103e5"
        );
        assert_eq!(claims.sub, claims.iss);
        assert_eq!(claims.aud, "https://account.apple.com/auth/oauth2/v2/token");
        assert_eq!(claims.iat, 1_767_225_600);
        assert_eq!(claims.exp, 1_767_225_600 + 600);
        assert!(uuid::Uuid::parse_str(&claims.jti).is_ok());
        assert_eq!(sig.len(), 64);
        let sig = Signature::from_slice(&sig).unwrap();
        key.verifying_key().verify(signed.as_bytes(), &sig).unwrap();
    }

    #[test]
    fn kid_header_can_be_switched_off_and_lifetime_is_capped_below_180_days() {
        let mut cfg = config();
        cfg.send_kid = false;
        cfg.assertion_lifetime = Duration::from_secs(400 * 86_400);
        let jwt = build_assertion(&test_key(), &cfg, SystemTime::now()).unwrap();
        let (header, claims, _, _) = split(&jwt);
        assert!(header.get("kid").is_none());
        assert!(claims.exp - claims.iat < 180 * 86_400);
    }

    #[test]
    fn each_assertion_gets_a_new_jti() {
        let key = test_key();
        let a = build_assertion(&key, &config(), SystemTime::now()).unwrap();
        let b = build_assertion(&key, &config(), SystemTime::now()).unwrap();
        assert_ne!(split(&a).1.jti, split(&b).1.jti);
    }

    #[test]
    fn pem_loader_accepts_pkcs8_and_sec1() {
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let pkcs8 = secret.to_pkcs8_pem(LineEnding::LF).unwrap();
        let sec1 = secret.to_sec1_pem(LineEnding::LF).unwrap();
        let a = PrivateKey::from_pem(&pkcs8).unwrap();
        let b = PrivateKey::from_pem(&sec1).unwrap();
        assert_eq!(a.verifying_key(), b.verifying_key());
        assert_eq!(a.verifying_key(), *SigningKey::from(secret).verifying_key());
    }

    #[test]
    fn pem_loader_names_the_problem() {
        assert_eq!(
            PrivateKey::from_pem("hello").unwrap_err(),
            KeyError::NotPem("no BEGIN line")
        );
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(
            PrivateKey::from_pem(cert).unwrap_err(),
            KeyError::WrongBlock("CERTIFICATE".to_owned())
        );
        let rsa = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert!(matches!(
            PrivateKey::from_pem(rsa).unwrap_err(),
            KeyError::NotEc(_)
        ));
        // PKCS#8 of a P-384 key: built by hand from a P-256 one would be invalid, so use the
        // algorithm check on a minimal RSA PrivateKeyInfo instead.
        let rsa_pkcs8_der: &[u8] = &[
            0x30, 0x1a, 0x02, 0x01, 0x00, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7,
            0x0d, 0x01, 0x01, 0x01, 0x05, 0x00, 0x04, 0x06, 0x30, 0x04, 0x02, 0x00, 0x02, 0x00,
        ];
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(rsa_pkcs8_der)
        );
        assert_eq!(
            PrivateKey::from_pem(&pem).unwrap_err(),
            KeyError::NotEc("RSA".to_owned())
        );
        let bad = "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n";
        assert_eq!(
            PrivateKey::from_pem(bad).unwrap_err(),
            KeyError::NotPem("invalid base64")
        );
    }

    #[test]
    fn pem_loader_rejects_other_curves() {
        // SEC1 ECPrivateKey with named curve P-384 (1.3.132.0.34); the key bytes are irrelevant
        // because the curve is checked first.
        let mut der = vec![0x30, 0x0e, 0x02, 0x01, 0x01, 0x04, 0x01, 0x01];
        der.extend_from_slice(&[0xa0, 0x07, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]);
        der[1] = (der.len() - 2) as u8;
        let pem = format!(
            "-----BEGIN EC PRIVATE KEY-----\n{}\n-----END EC PRIVATE KEY-----\n",
            STANDARD.encode(&der)
        );
        assert_eq!(
            PrivateKey::from_pem(&pem).unwrap_err(),
            KeyError::NotP256("P-384".to_owned())
        );
    }

    fn cached(name: &str, refresh_in: Duration, expires_in: Duration) -> CachedToken {
        let now = Instant::now();
        CachedToken {
            token: AccessToken::new(name.to_owned()),
            refresh_at: now + refresh_in,
            expires_at: now + expires_in,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_early_refresh_serves_the_valid_token_then_asks_again_after_retry_after() {
        let cache = TokenCache::default();
        let secs = Duration::from_secs;
        let t = cache
            .get(async || Ok(cached("one", secs(30), secs(60))))
            .await
            .unwrap();
        assert_eq!(t.expose(), "one");
        tokio::time::advance(secs(31)).await;
        let limited = || async {
            Err(TokenError::RateLimited {
                retry_after: Some(secs(10)),
            })
        };
        // Due for refresh, the refresh is limited: the old token is still good.
        let t = cache.get(limited).await.unwrap();
        assert_eq!(t.expose(), "one");
        // Quiet for Retry-After: no fetch at all.
        let t = cache
            .get(async || panic!("asked the token endpoint while quiet"))
            .await
            .unwrap();
        assert_eq!(t.expose(), "one");
        tokio::time::advance(secs(11)).await;
        let t = cache
            .get(async || Ok(cached("two", secs(30), secs(60))))
            .await
            .unwrap();
        assert_eq!(t.expose(), "two");
        // A permanent failure is never hidden, and an expired token is never served.
        tokio::time::advance(secs(31)).await;
        let rejected = cache
            .get(async || {
                Err(TokenError::Rejected {
                    status: 400,
                    error: "invalid_client".to_owned(),
                    description: None,
                })
            })
            .await;
        assert!(rejected.is_err());
        tokio::time::advance(secs(30)).await;
        assert!(cache.get(limited).await.is_err());
    }

    #[test]
    fn secrets_never_print() {
        let key = test_key();
        assert_eq!(format!("{key:?}"), "PrivateKey([redacted])");
        let token = AccessToken::new("canary-token-value".to_owned());
        assert!(!format!("{token:?}").contains("canary"));
    }
}
