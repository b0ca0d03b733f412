//! OAuth 2.0 client-credentials with an ES256 client assertion, as Apple's
//! `account.apple.com` does it, plus bearer-token checks for `/v1`.
//!
//! Checks, in order: `grant_type`, `client_assertion_type`, `scope` (must match
//! the org kind), a registered client id, JWT shape, `alg == ES256`, a
//! registered `(client id, kid)`, the P-256 signature over `header.payload`
//! (raw `r||s`, as JWS requires), `iss`/`sub` equal to the client id, `aud` in
//! the accepted set, and `exp` in the future and ≤ `iat` + 180 days. Errors are
//! RFC 6749 JSON with HTTP 400 [guess: Apple's exact status/shape is undocumented;
//! community tools look for `invalid_client` in the body].

use crate::model::OrgKind;
use crate::state::{Shared, Token};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use serde_json::{Value, json};
use time::OffsetDateTime;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const MAX_ASSERTION_LIFETIME: i64 = 180 * 86_400;
/// Clock skew tolerated on `iat` in the future. \[guess\]
const IAT_SKEW: i64 = 300;

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": code, "error_description": description })),
    )
        .into_response()
}

fn invalid_client(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_client", description)
}

/// Handles `POST /auth/oauth2/token` and `/auth/oauth2/v2/token`; parameters come
/// from the query string (Apple's curl sample) and/or the form body (every SDK).
pub(crate) fn token(shared: &Shared, raw_query: Option<&str>, body: &[u8]) -> Response {
    let mut params = raw_query
        .map(crate::util::parse_urlencoded)
        .unwrap_or_default();
    params.extend(crate::util::parse_urlencoded(&String::from_utf8_lossy(
        body,
    )));
    let get = |k: &str| params.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
    let (Some(grant), Some(client_id), Some(atype), Some(assertion), Some(scope)) = (
        get("grant_type"),
        get("client_id"),
        get("client_assertion_type"),
        get("client_assertion"),
        get("scope"),
    ) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "missing required parameter",
        );
    };
    if grant != "client_credentials" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        );
    }
    if atype != ASSERTION_TYPE {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unsupported client_assertion_type",
        );
    }
    let expected_scope = match shared.org_read().kind {
        OrgKind::Business => "business.api",
        OrgKind::School => "school.api",
    };
    if scope != expected_scope {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "scope is not valid for this client",
        );
    }
    if let Err(reason) = verify_assertion(shared, client_id, assertion) {
        tracing::debug!(client_id, reason, "client assertion rejected");
        return invalid_client("client assertion could not be validated");
    }

    let now = OffsetDateTime::now_utc();
    let (lifetime, retry) = {
        let mut f = shared.faults();
        let lifetime = f
            .config
            .token_lifetime_secs
            .unwrap_or(shared.behaviour.token_lifetime_secs);
        let budget = f.config.token_budget;
        let omit = f.config.omit_retry_after;
        let retry = budget
            .and_then(|b| {
                crate::faults::spend(&mut f, &shared.behaviour, client_id, "TOKEN", b, now)
            })
            .map(|r| (r, omit));
        (lifetime, retry)
    };
    if let Some((retry_after, omit)) = retry {
        shared.stats().rate_limited += 1;
        let mut r = oauth_error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "too many token requests for this client",
        );
        if !omit && let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    // Token lifetimes are not time-scaled: a huge scale would make every token stale on arrival.
    let real = std::time::Duration::from_secs(lifetime);
    let token = {
        use rand::RngCore;
        let mut b = [0u8; 32];
        shared.id_rng().fill_bytes(&mut b);
        format!("sim.{}", crate::util::b64url(&b))
    };
    shared.auth().tokens.insert(
        token.clone(),
        Token {
            client_id: client_id.to_string(),
            expires: now + time::Duration::seconds_f64(real.as_secs_f64()),
        },
    );
    shared.stats().tokens_minted += 1;
    let expires_in = real.as_secs_f64().ceil().max(1.0) as u64;
    axum::Json(json!({ "access_token": token, "token_type": "Bearer", "expires_in": expires_in, "scope": scope })).into_response()
}

fn verify_assertion(shared: &Shared, client_id: &str, jwt: &str) -> Result<(), &'static str> {
    let mut parts = jwt.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a compact JWS");
    };
    let header: Value =
        serde_json::from_slice(&crate::util::b64url_decode(h).ok_or("header base64")?)
            .map_err(|_| "header json")?;
    let claims: Value =
        serde_json::from_slice(&crate::util::b64url_decode(p).ok_or("payload base64")?)
            .map_err(|_| "payload json")?;
    let sig = crate::util::b64url_decode(s).ok_or("signature base64")?;
    if header["alg"] != "ES256" {
        return Err("alg");
    }
    let kid = header["kid"].as_str().ok_or("kid")?;
    let key = {
        let auth = shared.auth();
        if !auth.keys.keys().any(|(c, _)| c == client_id) {
            return Err("unknown client");
        }
        *auth
            .keys
            .get(&(client_id.to_string(), kid.to_string()))
            .ok_or("unknown kid")?
    };
    let sig = Signature::from_slice(&sig).map_err(|_| "signature shape")?;
    key.verify(format!("{h}.{p}").as_bytes(), &sig)
        .map_err(|_| "bad signature")?;
    if claims["iss"] != client_id || claims["sub"] != client_id {
        return Err("iss/sub");
    }
    let auds: Vec<&str> = match &claims["aud"] {
        Value::String(a) => vec![a.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    {
        let auth = shared.auth();
        if !auds.iter().any(|a| auth.audiences.iter().any(|x| x == a)) {
            return Err("aud");
        }
    }
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let iat = claims["iat"].as_i64().ok_or("iat")?;
    let exp = claims["exp"].as_i64().ok_or("exp")?;
    if exp <= now {
        return Err("expired");
    }
    if exp > iat + MAX_ASSERTION_LIFETIME {
        return Err("exp beyond iat + 180 days");
    }
    if iat > now + IAT_SKEW {
        return Err("iat in the future");
    }
    Ok(())
}

/// Resolves a bearer token to its client id.
pub(crate) fn bearer(shared: &Shared, authorization: Option<&str>) -> Option<String> {
    let token = authorization?.strip_prefix("Bearer ")?.trim();
    let auth = shared.auth();
    let t = auth.tokens.get(token)?;
    (t.expires > OffsetDateTime::now_utc()).then(|| t.client_id.clone())
}

/// Parses a PEM public key (SPKI) for registration.
pub(crate) fn parse_public_key(pem: &str) -> Result<VerifyingKey, String> {
    use p256::pkcs8::DecodePublicKey;
    VerifyingKey::from_public_key_pem(pem).map_err(|e| e.to_string())
}
