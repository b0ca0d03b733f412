//! Errors of the client.
//!
//! Design: one typed enum so callers branch on the HTTP class (SPEC §4.3: "key on HTTP status
//! first, `code` second") without string matching. Sources are kept with `#[source]`. No variant
//! ever holds a token, an assertion, key bytes or a token-endpoint body: the token endpoint may
//! echo the assertion in its 400 body (SPEC §2.6), so only the OAuth `error` code and a redacted
//! description survive.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to the Apple Business API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request did not complete at the transport level (connect, TLS, reset, body read).
    #[error("{endpoint}: transport error")]
    Transport {
        /// Endpoint name, e.g. `orgDevices.list`.
        endpoint: &'static str,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// An attempt exceeded the per-attempt timeout, or retries exceeded the total deadline.
    #[error("{endpoint}: timed out after {after:?}")]
    Timeout {
        /// Endpoint name.
        endpoint: &'static str,
        /// The timeout that fired.
        after: Duration,
    },
    /// Apple answered 429 and retrying was not allowed or not possible within the deadline.
    #[error("{endpoint}: rate limited by Apple (retry after {retry_after:?})")]
    RateLimited {
        /// Endpoint name.
        endpoint: &'static str,
        /// The `Retry-After` Apple sent, if any.
        retry_after: Option<Duration>,
    },
    /// 401 even after one token refresh and one replay.
    #[error("{endpoint}: unauthorized")]
    Unauthorized {
        /// Endpoint name.
        endpoint: &'static str,
        /// Error objects from the body.
        errors: Vec<ApiErrorObject>,
    },
    /// 403: the API account lacks the privilege, or the feature (e.g. built-in management) is off.
    #[error("{endpoint}: forbidden")]
    Forbidden {
        /// Endpoint name.
        endpoint: &'static str,
        /// Error objects from the body.
        errors: Vec<ApiErrorObject>,
    },
    /// 404: unknown id (or activity older than 30 days).
    #[error("{endpoint}: not found")]
    NotFound {
        /// Endpoint name.
        endpoint: &'static str,
        /// Error objects from the body.
        errors: Vec<ApiErrorObject>,
    },
    /// Any other non-success status (400, 409, 422, 5xx after retries...).
    #[error("{endpoint}: HTTP {status}{}", first_error_summary(errors))]
    Api {
        /// Endpoint name.
        endpoint: &'static str,
        /// HTTP status code.
        status: u16,
        /// Error objects from the body (empty if the body was not an ErrorResponse).
        errors: Vec<ApiErrorObject>,
    },
    /// The body did not match the expected shape; `path` names the JSON path that failed.
    #[error("{endpoint}: cannot decode response at `{path}`")]
    Decode {
        /// Endpoint name.
        endpoint: &'static str,
        /// JSON path, e.g. `data[3].attributes.addedToOrgDateTime`.
        path: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// The private key could not be loaded.
    #[error(transparent)]
    InvalidKey(#[from] KeyError),
    /// Getting an access token failed.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// A paging guard stopped a stream.
    #[error(transparent)]
    Paging(#[from] PagingError),
    /// The activity log CSV could not be parsed.
    #[error("activity log: {0}")]
    ActivityLog(String),
    /// The configuration is unusable (e.g. a base URL that does not parse).
    #[error("invalid client configuration: {0}")]
    Config(String),
}

impl Error {
    /// The HTTP status behind this error, when there is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::RateLimited { .. } => Some(429),
            Self::Unauthorized { .. } => Some(401),
            Self::Forbidden { .. } => Some(403),
            Self::NotFound { .. } => Some(404),
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Apple's error objects, when the error came with a body.
    pub fn api_errors(&self) -> &[ApiErrorObject] {
        match self {
            Self::Unauthorized { errors, .. }
            | Self::Forbidden { errors, .. }
            | Self::NotFound { errors, .. }
            | Self::Api { errors, .. } => errors,
            _ => &[],
        }
    }
}

fn first_error_summary(errors: &[ApiErrorObject]) -> String {
    match errors.first() {
        Some(e) => format!(
            " {}: {}",
            e.code.as_deref().unwrap_or("?"),
            e.detail.as_deref().or(e.title.as_deref()).unwrap_or("")
        ),
        None => String::new(),
    }
}

/// `{"errors": [...]}` (SPEC §4.1).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The error objects.
    #[serde(default)]
    pub errors: Vec<ApiErrorObject>,
}

/// One error object. Every member is optional here although the schema marks some required:
/// a partial error body must not turn into a decode error that hides the HTTP status.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ApiErrorObject {
    /// Unique id of this error instance (quote it to Apple).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// HTTP status as a string; may differ from the response status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Machine code, hierarchical with dots, e.g. `PARAMETER_ERROR.INVALID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Human summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Human detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// `{pointer}` (body problem) or `{parameter}` (query problem).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ErrorSource>,
    /// Free-form links (`about`, `associated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<serde_json::Value>,
    /// Free-form metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Value>,
}

/// Where an error points.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ErrorSource {
    /// JSON pointer into the request body, e.g. `/data/attributes/serverName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// Offending query parameter, e.g. `limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
}

/// Why a private key could not be loaded. Never contains key bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// No `-----BEGIN ...-----` block, or broken base64 inside it.
    #[error("private key is not PEM: {0}")]
    NotPem(&'static str),
    /// The PEM block is not a private key (e.g. a certificate or public key).
    #[error("PEM block is `{0}`, expected `PRIVATE KEY` or `EC PRIVATE KEY`")]
    WrongBlock(String),
    /// Password-protected PKCS#8 is not supported; export the key unencrypted.
    #[error("encrypted private keys are not supported")]
    Encrypted,
    /// The key is not an elliptic-curve key (e.g. RSA).
    #[error("private key is not an EC key (algorithm {0})")]
    NotEc(String),
    /// The key is EC but not on P-256 (ES256 needs P-256).
    #[error("EC private key is not on curve P-256 (curve {0})")]
    NotP256(String),
    /// The DER inside the PEM is malformed.
    #[error("malformed private key: {0}")]
    Malformed(&'static str),
}

/// Why the token endpoint did not give us a token. Holds no token-response body.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The endpoint rejected the request (`invalid_client`, `invalid_scope`, ...).
    #[error("token endpoint rejected the request (HTTP {status}, {error}){}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Rejected {
        /// HTTP status.
        status: u16,
        /// OAuth `error` code, or `unknown` if the body was not OAuth JSON.
        error: String,
        /// `error_description` with anything token-like removed and the length capped.
        description: Option<String>,
    },
    /// 429 from the token endpoint (limit per client id, SPEC §2.6).
    #[error("token endpoint rate limited (retry after {retry_after:?})")]
    RateLimited {
        /// `Retry-After`, if sent.
        retry_after: Option<Duration>,
    },
    /// Transport failure talking to the token endpoint.
    #[error("token endpoint transport error")]
    Transport(#[source] reqwest::Error),
    /// The token endpoint timed out.
    #[error("token endpoint timed out after {0:?}")]
    Timeout(Duration),
    /// The 200 body was not a token response; only the JSON path is kept.
    #[error("cannot decode token response at `{path}`")]
    Decode {
        /// JSON path.
        path: String,
    },
    /// Signing the client assertion failed.
    #[error("cannot sign client assertion")]
    Signing,
    /// Another caller's token request, which this one waited for, just failed.
    #[error("token request failed for a concurrent caller")]
    SharedFailure {
        /// Whether that failure was transient (worth retrying later).
        transient: bool,
    },
}

impl TokenError {
    /// Whether retrying later may help (transport trouble, timeouts, 429).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport(_) | Self::Timeout(_) | Self::RateLimited { .. } => true,
            Self::SharedFailure { transient } => *transient,
            Self::Rejected { status, .. } => *status >= 500,
            Self::Decode { .. } | Self::Signing => false,
        }
    }
}

/// A paging guard fired. Each one prevents an endless loop against a misbehaving server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PagingError {
    /// A page had no items yet announced a next cursor.
    #[error("{endpoint}: empty page with a next cursor")]
    EmptyPageWithCursor {
        /// Endpoint name.
        endpoint: &'static str,
    },
    /// The server returned the cursor we just sent.
    #[error("{endpoint}: cursor did not advance")]
    CursorNotAdvancing {
        /// Endpoint name.
        endpoint: &'static str,
    },
    /// More pages remain than the configured page cap allows.
    #[error("{endpoint}: page cap of {cap} reached")]
    PageCapReached {
        /// Endpoint name.
        endpoint: &'static str,
        /// The cap.
        cap: u32,
    },
}

/// Keeps an OAuth `error_description` only if it is short and free of anything token-like.
pub(crate) fn redact_description(s: &str) -> String {
    const MAX: usize = 160;
    let words: Vec<String> = s
        .split_whitespace()
        .map(|w| {
            let tokenish = w.len() >= 24
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.=+/".contains(c));
            if tokenish || w.starts_with("eyJ") {
                "[redacted]".to_owned()
            } else {
                w.to_owned()
            }
        })
        .collect();
    let mut out = words.join(" ");
    if out.len() > MAX {
        let mut cut = MAX;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_removes_jwt_like_words_and_caps_length() {
        let d = redact_description(
            "assertion eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl is invalid",
        );
        assert_eq!(d, "assertion [redacted] is invalid");
        let long = "word ".repeat(100);
        assert!(redact_description(&long).chars().count() <= 161);
    }
}
