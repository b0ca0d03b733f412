//! OpenID Connect relying party: "Sign in with SSO" (authorization code flow + PKCE).
//!
//! Design notes:
//! - No storage and no HTTP handlers. [`OidcProvider::begin`] returns the URL to send the
//!   browser to and a [`PendingLogin`] that the caller keeps in the server-side session;
//!   [`OidcProvider::complete`] takes that pending login **by value**. The callback handler
//!   must remove it from the session *before* calling `complete` (crates.io does the same
//!   with its OAuth state), so a state can be used once even when the exchange fails.
//! - Discovery happens once at start; the issuer in the document must equal the configured
//!   one byte for byte (OIDC Discovery §4.3). The JWKS is cached and fetched again when a
//!   token names an unknown `kid` (key rotation), at most once per [`JWKS_REFRESH_INTERVAL`].
//! - ID tokens are checked by hand with RustCrypto (see `jws`): `rsa`, `p256` and `sha2` are
//!   already in the lock file, whereas `jsonwebtoken` with `rust_crypto` would add
//!   `ed25519-dalek`, `p384`, `hmac`, `pem` and `simple_asn1` for algorithms we refuse anyway.
//!   Only RS256 and ES256 verify; the claims checked are `iss`, `aud`/`azp`, `exp`, `iat`
//!   and `nonce` (OIDC Core §3.1.3.7).
//! - The HTTP client follows no redirects (an attacker-influenced endpoint could otherwise
//!   point it anywhere: SSRF), has connect and total timeouts, and reads at most
//!   [`MAX_RESPONSE_BYTES`] of any response.
//! - Codes, tokens, verifiers and the client secret never appear in an error, a `Debug`
//!   output or a log line; token endpoint failures keep only the status and the OAuth error
//!   code.

mod jws;
mod roles;

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use reqwest::Url;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use time::OffsetDateTime;

use crate::config::{ClientAuthMethod, OidcConfig, SecretString};

pub use roles::{GroupRoleMap, GroupRoleRule};

/// How long a started sign-in may take before its [`PendingLogin`] is refused.
pub const PENDING_LOGIN_TTL: Duration = Duration::from_secs(10 * 60);
/// Least time between two JWKS fetches triggered by an unknown `kid`.
pub const JWKS_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// Upper bound on any response body read from the provider.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// Scopes always requested; `[oidc].scopes` come after them.
pub const BASE_SCOPES: [&str; 3] = ["openid", "profile", "email"];
/// Longest `next` path kept.
const MAX_NEXT_LEN: usize = 2048;

/// What went wrong in discovery or sign-in. Messages name the failed check; they never hold
/// a code, token, verifier or secret.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("OIDC discovery failed at {url}: {reason}")]
    Discovery { url: String, reason: String },
    #[error("the issuer {found:?} does not match the configured issuer {expected:?}")]
    WrongIssuer { expected: String, found: String },
    #[error("fetching the provider's signing keys failed: {reason}")]
    Jwks { reason: String },
    #[error("request to the provider's {endpoint} endpoint failed")]
    Http {
        endpoint: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("the token endpoint refused the code: HTTP {status}, error {error:?}")]
    TokenExchange { status: u16, error: Option<String> },
    #[error("the provider's {endpoint} response is larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge { endpoint: &'static str },
    #[error("the token endpoint's answer is unusable: {reason}")]
    TokenResponse { reason: &'static str },
    #[error("the sign-in took longer than {} minutes; start again", PENDING_LOGIN_TTL.as_secs() / 60)]
    PendingExpired,
    #[error("the returned state does not match the pending sign-in")]
    StateMismatch,
    #[error("the ID token is malformed: {reason}")]
    MalformedToken { reason: &'static str },
    #[error("the ID token uses the algorithm {alg:?}; only RS256 and ES256 are accepted")]
    UnsupportedAlgorithm { alg: String },
    #[error("no signing key of the provider matches the ID token (kid {kid:?})")]
    UnknownKey { kid: Option<String> },
    #[error("the ID token's signature does not verify")]
    BadSignature,
    #[error("the ID token is not meant for this client (aud/azp)")]
    WrongAudience,
    #[error("the ID token has expired")]
    Expired,
    #[error("the ID token was issued in the future (clock skew beyond the leeway)")]
    IssuedInFuture,
    #[error("the ID token's nonce does not match the pending sign-in")]
    NonceMismatch,
    #[error("the ID token lacks the {claim} claim or it has the wrong type")]
    MissingClaim { claim: &'static str },
}

pub type Result<T, E = OidcError> = std::result::Result<T, E>;

/// The person the provider vouched for, from a validated ID token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcIdentity {
    /// The provider's issuer URL; `(issuer, subject)` identifies the person for good.
    pub issuer: String,
    /// The provider's stable id for the person (`sub`).
    pub subject: String,
    pub email: Option<String>,
    /// Whether the provider says it verified `email`; do not link accounts on `false`.
    pub email_verified: bool,
    pub name: Option<String>,
    pub preferred_username: Option<String>,
    /// From the configured groups claim; empty when absent.
    pub groups: Vec<String>,
}

/// A sign-in in progress, kept in the server-side session between [`OidcProvider::begin`]
/// and [`OidcProvider::complete`]. Not `Clone`: it is meant to be taken out of the session
/// and consumed once. Its `Debug` output hides the state, nonce and PKCE verifier.
#[derive(Serialize, Deserialize)]
pub struct PendingLogin {
    state: String,
    nonce: String,
    pkce_verifier: String,
    redirect_uri: String,
    next: Option<String>,
    #[serde(with = "time::serde::timestamp")]
    created_at: OffsetDateTime,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("redirect_uri", &self.redirect_uri)
            .field("next", &self.next)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

impl PendingLogin {
    /// Where to send the user after signing in: a safe relative path, if one was given.
    pub fn next(&self) -> Option<&str> {
        self.next.as_deref()
    }

    pub fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }

    /// True once [`PENDING_LOGIN_TTL`] has passed since `begin`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        now - self.created_at > PENDING_LOGIN_TTL || self.created_at > now + PENDING_LOGIN_TTL
    }
}

/// The parts of the provider's discovery document Orchard uses.
#[derive(Debug, Clone, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
}

struct KeyCache {
    keys: Vec<jws::VerifyKey>,
    fetched_at: Instant,
}

/// A discovered provider, ready to start and finish sign-ins. Share it (`Arc`) across
/// requests; it caches the provider's signing keys.
pub struct OidcProvider {
    issuer: String,
    client_id: String,
    client_secret: SecretString,
    client_auth: ClientAuthMethod,
    scope: String,
    groups_claim: String,
    leeway: Duration,
    authorization_endpoint: Url,
    token_endpoint: Url,
    jwks_uri: Url,
    http: reqwest::Client,
    keys: tokio::sync::Mutex<KeyCache>,
    jwks_refresh_interval: Duration,
}

impl std::fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcProvider")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// The HTTP client [`OidcProvider::discover`] expects: no redirects, 5 s to connect, 15 s
/// per request.
pub fn http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        // Following redirects opens the client up to SSRF.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .user_agent(concat!("Orchard/", env!("CARGO_PKG_VERSION"), " (OIDC)"))
        .build()
}

impl OidcProvider {
    /// Reads the provider's discovery document and signing keys.
    ///
    /// `http` should come from [`http_client`] (no redirects, timeouts). Fails when the
    /// document's `issuer` differs from `config.issuer` in any byte, when an endpoint is not
    /// https while the issuer is, or when the provider cannot do PKCE with S256.
    pub async fn discover(config: &OidcConfig, http: reqwest::Client) -> Result<Self> {
        let discovery_url = format!(
            "{}/.well-known/openid-configuration",
            config.issuer.trim_end_matches('/')
        );
        let discovery_error = |reason: String| OidcError::Discovery {
            url: discovery_url.clone(),
            reason,
        };
        let body = get(&http, &discovery_url, "discovery").await?;
        let metadata: Metadata = serde_json::from_slice(&body)
            .map_err(|e| discovery_error(format!("not a discovery document: {e}")))?;
        if metadata.issuer != config.issuer {
            return Err(OidcError::WrongIssuer {
                expected: config.issuer.clone(),
                found: jws::truncate(&metadata.issuer),
            });
        }
        if let Some(methods) = &metadata.code_challenge_methods_supported
            && !methods.iter().any(|m| m == "S256")
        {
            return Err(discovery_error(
                "the provider does not offer PKCE S256".into(),
            ));
        }
        let https = config.issuer.starts_with("https://");
        let endpoint = |name: &str, raw: &str| -> Result<Url> {
            let url = Url::parse(raw).map_err(|e| discovery_error(format!("{name}: {e}")))?;
            if https && url.scheme() != "https" {
                return Err(discovery_error(format!("{name} is not https")));
            }
            Ok(url)
        };
        let authorization_endpoint =
            endpoint("authorization_endpoint", &metadata.authorization_endpoint)?;
        let token_endpoint = endpoint("token_endpoint", &metadata.token_endpoint)?;
        let jwks_uri = endpoint("jwks_uri", &metadata.jwks_uri)?;

        let keys = fetch_keys(&http, &jwks_uri).await?;
        let scope = BASE_SCOPES
            .iter()
            .copied()
            .chain(config.scopes.iter().map(String::as_str))
            .fold(Vec::<&str>::new(), |mut acc, s| {
                if !acc.contains(&s) {
                    acc.push(s);
                }
                acc
            })
            .join(" ");
        tracing::info!(issuer = %config.issuer, keys = keys.len(), "OIDC provider discovered");
        Ok(Self {
            issuer: config.issuer.clone(),
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            client_auth: config.client_auth,
            scope,
            groups_claim: config.groups_claim.clone(),
            leeway: Duration::from_secs(config.leeway_secs),
            authorization_endpoint,
            token_endpoint,
            jwks_uri,
            http,
            keys: tokio::sync::Mutex::new(KeyCache {
                keys,
                fetched_at: Instant::now(),
            }),
            jwks_refresh_interval: JWKS_REFRESH_INTERVAL,
        })
    }

    /// Replaces [`JWKS_REFRESH_INTERVAL`], the least time between two key fetches caused by
    /// an unknown `kid` (tests use zero to see a rotation at once).
    pub fn with_jwks_refresh_interval(mut self, interval: Duration) -> Self {
        self.jwks_refresh_interval = interval;
        self
    }

    /// The configured issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Starts a sign-in: the URL to redirect the browser to, and the pending login to keep
    /// in the session. `redirect_uri` is Orchard's absolute callback URL as registered at the
    /// provider; `next` is kept only if [`safe_next`] accepts it.
    pub fn begin(&self, redirect_uri: &str, next: Option<&str>) -> (Url, PendingLogin) {
        let pending = PendingLogin {
            state: random_token(),
            nonce: random_token(),
            pkce_verifier: random_token(),
            redirect_uri: redirect_uri.to_owned(),
            next: next.and_then(safe_next),
            created_at: OffsetDateTime::now_utc(),
        };
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(pending.pkce_verifier.as_bytes()));
        let mut url = self.authorization_endpoint.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &self.scope)
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        (url, pending)
    }

    /// Finishes a sign-in from the callback's `state` and `code`.
    ///
    /// The caller must have **removed** `pending` from the session before calling, so that a
    /// replayed callback finds nothing; taking it by value makes the single use visible here.
    /// Read [`PendingLogin::next`] first if needed.
    pub async fn complete(
        &self,
        pending: PendingLogin,
        returned_state: &str,
        code: &str,
    ) -> Result<OidcIdentity> {
        if pending.is_expired(OffsetDateTime::now_utc()) {
            return Err(OidcError::PendingExpired);
        }
        if !bool::from(pending.state.as_bytes().ct_eq(returned_state.as_bytes())) {
            return Err(OidcError::StateMismatch);
        }
        let id_token = self.exchange(&pending, code).await?;
        self.validate_id_token(&id_token, &pending.nonce).await
    }

    /// Redeems the code at the token endpoint and returns the raw ID token.
    async fn exchange(&self, pending: &PendingLogin, code: &str) -> Result<String> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", pending.redirect_uri.as_str()),
            ("code_verifier", pending.pkce_verifier.as_str()),
        ];
        let mut request = self.http.post(self.token_endpoint.clone());
        match self.client_auth {
            ClientAuthMethod::ClientSecretBasic => {
                // RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
                let user = form_urlencode(&self.client_id);
                let password = form_urlencode(self.client_secret.expose_secret());
                request = request.basic_auth(user, Some(password));
            }
            ClientAuthMethod::ClientSecretPost => {
                form.push(("client_id", &self.client_id));
                form.push(("client_secret", self.client_secret.expose_secret()));
            }
        }
        let response = request
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|source| OidcError::Http {
                endpoint: "token",
                source: source.without_url(),
            })?;
        let status = response.status();
        let body = read_limited(response, "token").await?;
        if !status.is_success() {
            #[derive(Deserialize)]
            struct ErrorBody {
                error: Option<String>,
            }
            let error = serde_json::from_slice::<ErrorBody>(&body)
                .ok()
                .and_then(|b| b.error)
                .filter(|e| {
                    e.len() <= 64 && e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                });
            return Err(OidcError::TokenExchange {
                status: status.as_u16(),
                error,
            });
        }
        #[derive(Deserialize)]
        struct TokenBody {
            id_token: Option<String>,
            token_type: Option<String>,
        }
        let body: TokenBody =
            serde_json::from_slice(&body).map_err(|_| OidcError::TokenResponse {
                reason: "not a JSON token response",
            })?;
        if body
            .token_type
            .as_deref()
            .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
        {
            return Err(OidcError::TokenResponse {
                reason: "token_type is not Bearer",
            });
        }
        body.id_token.ok_or(OidcError::TokenResponse {
            reason: "no id_token (is the openid scope granted?)",
        })
    }

    /// Verifies the ID token's signature and claims (OIDC Core §3.1.3.7).
    async fn validate_id_token(&self, token: &str, nonce: &str) -> Result<OidcIdentity> {
        let unverified = jws::decode(token)?;
        let payload = {
            let mut cache = self.keys.lock().await;
            if unverified.candidates(&cache.keys).is_empty()
                && cache.fetched_at.elapsed() >= self.jwks_refresh_interval
            {
                // An unknown kid usually means the provider rotated its keys.
                cache.keys = fetch_keys(&self.http, &self.jwks_uri).await?;
                cache.fetched_at = Instant::now();
            }
            let candidates = unverified.candidates(&cache.keys);
            if candidates.is_empty() {
                return Err(OidcError::UnknownKey {
                    kid: unverified.kid.as_deref().map(jws::truncate),
                });
            }
            unverified.verify(&candidates)?
        };
        let claims: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&payload).map_err(|_| OidcError::MalformedToken {
                reason: "payload is not a JSON object",
            })?;
        self.check_claims(&claims, nonce, OffsetDateTime::now_utc().unix_timestamp())
    }

    fn check_claims(
        &self,
        claims: &serde_json::Map<String, serde_json::Value>,
        nonce: &str,
        now: i64,
    ) -> Result<OidcIdentity> {
        let string = |claim: &'static str| -> Result<&str> {
            claims
                .get(claim)
                .and_then(|v| v.as_str())
                .ok_or(OidcError::MissingClaim { claim })
        };
        let number = |claim: &'static str| -> Result<i64> {
            claims
                .get(claim)
                .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
                .ok_or(OidcError::MissingClaim { claim })
        };
        let optional = |claim: &str| {
            claims
                .get(claim)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };

        let issuer = string("iss")?;
        if issuer != self.issuer {
            return Err(OidcError::WrongIssuer {
                expected: self.issuer.clone(),
                found: jws::truncate(issuer),
            });
        }
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(serde_json::Value::String(one)) => vec![one.as_str()],
            Some(serde_json::Value::Array(many)) => {
                many.iter().filter_map(|v| v.as_str()).collect()
            }
            _ => return Err(OidcError::MissingClaim { claim: "aud" }),
        };
        if !audiences.contains(&self.client_id.as_str()) {
            return Err(OidcError::WrongAudience);
        }
        let azp = optional("azp");
        if (audiences.len() > 1 || azp.is_some()) && azp.as_deref() != Some(self.client_id.as_str())
        {
            return Err(OidcError::WrongAudience);
        }
        let leeway = i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX);
        if now > number("exp")?.saturating_add(leeway) {
            return Err(OidcError::Expired);
        }
        if number("iat")? > now.saturating_add(leeway) {
            return Err(OidcError::IssuedInFuture);
        }
        let token_nonce = string("nonce").map_err(|_| OidcError::NonceMismatch)?;
        if !bool::from(token_nonce.as_bytes().ct_eq(nonce.as_bytes())) {
            return Err(OidcError::NonceMismatch);
        }
        let subject = string("sub")?;
        if subject.is_empty() {
            return Err(OidcError::MissingClaim { claim: "sub" });
        }
        let groups = match claims.get(&self.groups_claim) {
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(serde_json::Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        };
        Ok(OidcIdentity {
            issuer: issuer.to_owned(),
            subject: subject.to_owned(),
            email: optional("email"),
            email_verified: claims
                .get("email_verified")
                .is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true")),
            name: optional("name"),
            preferred_username: optional("preferred_username"),
            groups,
        })
    }
}

/// The configured provider, discovered on first use and kept; a failed discovery is not
/// kept, so the next sign-in tries again (the provider may have been down at start).
pub struct ProviderCache {
    config: OidcConfig,
    http: reqwest::Client,
    provider: tokio::sync::Mutex<Option<std::sync::Arc<OidcProvider>>>,
}

impl std::fmt::Debug for ProviderCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderCache")
            .field("issuer", &self.config.issuer)
            .finish_non_exhaustive()
    }
}

impl ProviderCache {
    /// A cache for `config`, or `None` when SSO is disabled.
    pub fn new(config: &OidcConfig) -> reqwest::Result<Option<Self>> {
        if !config.enabled {
            return Ok(None);
        }
        Ok(Some(Self {
            config: config.clone(),
            http: http_client()?,
            provider: tokio::sync::Mutex::new(None),
        }))
    }

    /// The provider's settings (button label, callback path, role map).
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// The discovered provider, discovering it now if needed.
    pub async fn provider(&self) -> Result<std::sync::Arc<OidcProvider>> {
        let mut slot = self.provider.lock().await;
        if let Some(provider) = slot.as_ref() {
            return Ok(provider.clone());
        }
        let provider =
            std::sync::Arc::new(OidcProvider::discover(&self.config, self.http.clone()).await?);
        *slot = Some(provider.clone());
        Ok(provider)
    }
}

/// `next` if it is a safe same-origin relative path: starts with one `/` (not `//`), no
/// backslash, no control or whitespace characters, at most 2048 bytes. Anything else could
/// send the user to another site after signing in (open redirect), so it is dropped.
pub fn safe_next(next: &str) -> Option<String> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && next.len() <= MAX_NEXT_LEN
        && !next
            .chars()
            .any(|c| c == '\\' || c.is_control() || c.is_whitespace());
    ok.then(|| next.to_owned())
}

/// 256 random bits, base64url without padding (43 characters; also a valid PKCE verifier).
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn form_urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

async fn get(http: &reqwest::Client, url: &str, endpoint: &'static str) -> Result<Vec<u8>> {
    let response = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|source| OidcError::Http { endpoint, source })?;
    let status = response.status();
    if !status.is_success() {
        let reason = format!("HTTP {status}");
        return Err(match endpoint {
            "jwks" => OidcError::Jwks { reason },
            _ => OidcError::Discovery {
                url: url.to_owned(),
                reason,
            },
        });
    }
    read_limited(response, endpoint).await
}

async fn fetch_keys(http: &reqwest::Client, jwks_uri: &Url) -> Result<Vec<jws::VerifyKey>> {
    let body = get(http, jwks_uri.as_str(), "jwks").await?;
    let keys = jws::parse_jwks(&body).map_err(|reason| OidcError::Jwks { reason })?;
    if keys.is_empty() {
        return Err(OidcError::Jwks {
            reason: "no RS256 or ES256 signing key in the JWKS".to_owned(),
        });
    }
    Ok(keys)
}

async fn read_limited(mut response: reqwest::Response, endpoint: &'static str) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|source| OidcError::Http {
        endpoint,
        source: source.without_url(),
    })? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(OidcError::TooLarge { endpoint });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_keeps_only_relative_paths() {
        for good in ["/", "/devices?q=C02&page=2", "/devices/C02XYZ#history"] {
            assert_eq!(safe_next(good).as_deref(), Some(good), "{good}");
        }
        for bad in [
            "",
            "devices",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "/\t/evil.example",
            "/devices\r\nSet-Cookie: x",
            "/a b",
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
        assert_eq!(safe_next(&format!("/{}", "a".repeat(MAX_NEXT_LEN))), None);
    }

    #[test]
    fn random_tokens_are_256_bit_base64url_and_differ() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }

    #[test]
    fn basic_auth_parts_are_form_urlencoded() {
        assert_eq!(form_urlencode("a b:c/d+é"), "a+b%3Ac%2Fd%2B%C3%A9");
        assert_eq!(form_urlencode("orchard"), "orchard");
    }

    #[test]
    fn pending_login_debug_hides_its_secrets_and_expires_after_ten_minutes() {
        let now = OffsetDateTime::now_utc();
        let pending = PendingLogin {
            state: "canary-state".into(),
            nonce: "canary-nonce".into(),
            pkce_verifier: "canary-verifier".into(),
            redirect_uri: "http://127.0.0.1/cb".into(),
            next: None,
            created_at: now - Duration::from_secs(599),
        };
        let printed = format!("{pending:?}");
        assert!(!printed.contains("canary"), "{printed}");
        assert!(!pending.is_expired(now));
        assert!(pending.is_expired(now + Duration::from_secs(2)));
    }
}
