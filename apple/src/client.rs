//! The client: one `reqwest::Client`, the token cache, the account budget and the retry loop.
//!
//! Design: every call goes budget → token → send (per-attempt timeout) → classify. A 401 is
//! answered by one token refresh and one replay (a 401 means Apple did not act, so replaying
//! even a POST is safe); other failures go to the pure policy in [`crate::retry`], which only
//! ever re-sends GETs. A 429 also closes the shared budget for `Retry-After`, so every caller of
//! the account backs off, not just this one. `Client` is an `Arc` inside: clone it freely.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::auth::{AccessToken, PrivateKey, TokenCache, fetch_token};
use crate::budget::{Budget, Priority, RequestClass};
use crate::config::ClientConfig;
use crate::error::{Error, ErrorResponse, Result, TokenError};
use crate::observer::{AttemptEvent, AttemptOutcome, NoopObserver, Observer};
use crate::retry::{self, Decision, FixedJitter, Jitter, Outcome, RandomJitter, TransportKind};

/// The Apple Business / School Manager API client of one API account.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: ClientConfig,
    base: Url,
    key: PrivateKey,
    budget: Arc<Budget>,
    tokens: TokenCache,
    observer: Arc<dyn Observer>,
    jitter: Arc<dyn Jitter>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .field("key", &self.inner.key)
            .field("budget", &self.inner.budget)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Client`] with optional hooks.
pub struct ClientBuilder {
    config: ClientConfig,
    key: PrivateKey,
    budget: Arc<Budget>,
    observer: Arc<dyn Observer>,
    jitter: Arc<dyn Jitter>,
}

impl ClientBuilder {
    /// Metrics hooks (default: no-op).
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// Jitter source of the retry backoff (default: random). Tests pass [`FixedJitter`].
    pub fn jitter(mut self, jitter: Arc<dyn Jitter>) -> Self {
        self.jitter = jitter;
        self
    }

    /// Builds the client. Fails if a URL in the configuration does not parse.
    pub fn build(self) -> Result<Client> {
        let base = Url::parse(self.config.api_base_url.trim_end_matches('/'))
            .map_err(|e| Error::Config(format!("api_base_url: {e}")))?;
        Url::parse(&self.config.token_url).map_err(|e| Error::Config(format!("token_url: {e}")))?;
        let http = reqwest::Client::builder()
            // Following redirects could forward the bearer token to another host.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.config.timeouts.connect)
            .user_agent(self.config.user_agent.clone())
            .build()
            .map_err(|e| Error::Config(format!("http client: {e}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                config: self.config,
                key: self.key,
                budget: self.budget,
                tokens: TokenCache::default(),
                observer: self.observer,
                jitter: self.jitter,
            }),
        })
    }
}

/// One HTTP call as the typed request layer describes it.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub endpoint: &'static str,
    pub method: Method,
    /// Either a path below the API origin (`/v1/...`) or an absolute URL (activity log).
    pub target: Target,
    pub query: Vec<(String, String)>,
    pub body: Option<Bytes>,
    pub priority: Priority,
}

#[derive(Debug, Clone)]
pub(crate) enum Target {
    Path(String),
    Absolute(Url),
}

/// A successful (2xx) response.
pub(crate) struct RawResponse {
    pub body: Bytes,
}

impl Client {
    /// A client with default hooks. `budget` is the account's shared limiter: give every client
    /// of the same API account the same `Arc<Budget>`.
    pub fn new(config: ClientConfig, key: PrivateKey, budget: Arc<Budget>) -> Result<Self> {
        Self::builder(config, key, budget).build()
    }

    /// A builder, to add an [`Observer`] or a jitter source.
    pub fn builder(config: ClientConfig, key: PrivateKey, budget: Arc<Budget>) -> ClientBuilder {
        ClientBuilder {
            config,
            key,
            budget,
            observer: Arc::new(NoopObserver),
            jitter: Arc::new(RandomJitter),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The account budget this client draws from.
    pub fn budget(&self) -> &Arc<Budget> {
        &self.inner.budget
    }

    /// Checks credentials end to end: gets a token, then reads one page of `mdmServers` (the
    /// one list every AB and ASM account can read).
    pub async fn test_connection(
        &self,
    ) -> Result<crate::paging::Page<crate::resources::mdm_servers::MdmServer>> {
        self.access_token().await?;
        crate::resources::mdm_servers::list()
            .limit(1)
            .send(self)
            .await
    }

    /// A valid access token (cached; refreshed early; single-flight).
    pub(crate) async fn access_token(&self) -> Result<AccessToken, TokenError> {
        let inner = &self.inner;
        inner
            .tokens
            .get(async || {
                let r = fetch_token(&inner.http, &inner.config, &inner.key).await;
                inner.observer.token_refresh(r.is_ok());
                r
            })
            .await
    }

    async fn refresh_after_401(&self, rejected: &AccessToken) -> Result<AccessToken, TokenError> {
        let inner = &self.inner;
        inner
            .tokens
            .refresh_after_401(rejected, async || {
                let r = fetch_token(&inner.http, &inner.config, &inner.key).await;
                inner.observer.token_refresh(r.is_ok());
                r
            })
            .await
    }

    fn url_for(&self, call: &Call) -> Result<Url> {
        let mut url = match &call.target {
            Target::Absolute(u) => u.clone(),
            Target::Path(p) => {
                let base = self.inner.base.as_str().trim_end_matches('/');
                Url::parse(&format!("{base}{p}"))
                    .map_err(|e| Error::Config(format!("{}: bad URL: {e}", call.endpoint)))?
            }
        };
        if !call.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in &call.query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }

    fn same_origin_as_api(&self, url: &Url) -> bool {
        url.origin() == self.inner.base.origin()
    }

    /// Decodes a JSON body into `T`, naming the failing path.
    pub(crate) fn decode<T: DeserializeOwned>(endpoint: &'static str, body: &[u8]) -> Result<T> {
        let mut de = serde_json::Deserializer::from_slice(body);
        serde_path_to_error::deserialize(&mut de).map_err(|e| Error::Decode {
            endpoint,
            path: e.path().to_string(),
            source: e.into_inner(),
        })
    }

    /// Sends and decodes a JSON response.
    pub(crate) async fn json<T: DeserializeOwned>(&self, call: Call) -> Result<T> {
        let endpoint = call.endpoint;
        let raw = self.execute(call).await?;
        Self::decode(endpoint, &raw.body)
    }

    /// The retry loop.
    pub(crate) async fn execute(&self, call: Call) -> Result<RawResponse> {
        let inner = &self.inner;
        let cfg = &inner.config;
        let url = self.url_for(&call)?;
        // Only Apple's API origin gets the bearer token and counts against the budget; the
        // activity log URL is pre-signed on a blob store and must not see our token.
        let api_call = self.same_origin_as_api(&url);
        let class = RequestClass::of(&call.method);
        let started = Instant::now();
        let mut attempt: u32 = 0;
        let mut replayed_401 = false;
        loop {
            attempt += 1;
            let waiting = Instant::now();
            let slot = if api_call {
                inner.budget.acquire(class, call.priority).await;
                let slot = inner.budget.slot().await;
                inner
                    .observer
                    .budget_wait(call.endpoint, class, call.priority, waiting.elapsed());
                Some(slot)
            } else {
                None
            };
            let token = if api_call {
                match self.access_token().await {
                    Ok(t) => Some(t),
                    Err(e) => {
                        self.observe(&call, AttemptOutcome::TokenError, attempt, Duration::ZERO);
                        let mut headers = HeaderMap::new();
                        let outcome = match &e {
                            TokenError::Transport(err) => {
                                Outcome::Transport(TransportKind::of(err))
                            }
                            TokenError::Timeout(_) => Outcome::Transport(TransportKind::Timeout),
                            TokenError::RateLimited { retry_after } => {
                                if let Some(ra) = retry_after {
                                    headers.insert(RETRY_AFTER, HeaderValue::from(ra.as_secs()));
                                }
                                Outcome::Status(StatusCode::TOO_MANY_REQUESTS)
                            }
                            e if e.is_transient() => Outcome::Transport(TransportKind::Connect),
                            _ => return Err(e.into()),
                        };
                        match self.decide(&call, outcome, Some(&headers), attempt, started) {
                            Decision::Stop => return Err(e.into()),
                            Decision::RetryAfter(d) => {
                                drop(slot);
                                self.wait_retry(&call, attempt, d).await;
                                continue;
                            }
                        }
                    }
                }
            } else {
                None
            };

            let remaining = cfg.timeouts.total.saturating_sub(started.elapsed());
            let attempt_timeout = cfg
                .timeouts
                .attempt
                .min(remaining.max(Duration::from_secs(1)));
            let mut req = inner
                .http
                .request(call.method.clone(), url.clone())
                .header(ACCEPT, "application/json");
            if let Some(t) = &token {
                req = req.bearer_auth(t.expose());
            }
            if let Some(body) = &call.body {
                req = req
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            let t0 = Instant::now();
            let result = tokio::time::timeout(attempt_timeout, async {
                let resp = req.send().await?;
                let status = resp.status();
                let headers = resp.headers().clone();
                let body = resp.bytes().await?;
                Ok::<_, reqwest::Error>((status, headers, body))
            })
            .await;
            let latency = t0.elapsed();

            let (outcome, headers, error) = match result {
                Err(_) => {
                    self.observe(&call, AttemptOutcome::Timeout, attempt, latency);
                    let err = Error::Timeout {
                        endpoint: call.endpoint,
                        after: attempt_timeout,
                    };
                    (Outcome::Transport(TransportKind::Timeout), None, err)
                }
                Ok(Err(e)) => {
                    self.observe(&call, AttemptOutcome::TransportError, attempt, latency);
                    let kind = TransportKind::of(&e);
                    // A pre-signed URL is a credential of its own: keep it out of the error.
                    let source = if api_call { e } else { e.without_url() };
                    (
                        Outcome::Transport(kind),
                        None,
                        Error::Transport {
                            endpoint: call.endpoint,
                            source,
                        },
                    )
                }
                Ok(Ok((status, headers, body))) => {
                    self.observe(
                        &call,
                        AttemptOutcome::Status(status.as_u16()),
                        attempt,
                        latency,
                    );
                    tracing::debug!(
                        endpoint = call.endpoint,
                        method = %call.method,
                        status = status.as_u16(),
                        attempt,
                        latency_ms = latency.as_millis() as u64,
                        "apple api call"
                    );
                    if status.is_success() {
                        return Ok(RawResponse { body });
                    }
                    if status == StatusCode::UNAUTHORIZED
                        && !replayed_401
                        && let Some(t) = &token
                    {
                        replayed_401 = true;
                        attempt -= 1;
                        self.refresh_after_401(t).await?;
                        continue;
                    }
                    let retry_after = retry::parse_retry_after(&headers, SystemTime::now());
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        inner.observer.rate_limited(call.endpoint, retry_after);
                        let hold = retry_after.unwrap_or_else(|| {
                            retry::backoff(&cfg.retry, attempt, &FixedJitter(1.0))
                        });
                        if api_call {
                            inner.budget.hold_off(hold);
                        }
                    }
                    let err = status_error(call.endpoint, status, retry_after, &body);
                    (Outcome::Status(status), Some(headers), err)
                }
            };
            // Waiting for a retry must not hold one of the account's in-flight slots.
            drop(slot);
            match self.decide(&call, outcome, headers.as_ref(), attempt, started) {
                Decision::Stop => return Err(error),
                Decision::RetryAfter(d) => self.wait_retry(&call, attempt, d).await,
            }
        }
    }

    fn decide(
        &self,
        call: &Call,
        outcome: Outcome,
        headers: Option<&HeaderMap>,
        attempt: u32,
        started: Instant,
    ) -> Decision {
        let cfg = &self.inner.config;
        retry::decide(
            &cfg.retry,
            &call.method,
            outcome,
            headers,
            attempt,
            started.elapsed(),
            cfg.timeouts.total,
            SystemTime::now(),
            self.inner.jitter.as_ref(),
        )
    }

    async fn wait_retry(&self, call: &Call, attempt: u32, delay: Duration) {
        self.inner.observer.retry(call.endpoint, attempt, delay);
        tracing::info!(
            endpoint = call.endpoint,
            attempt,
            delay_ms = delay.as_millis() as u64,
            "retrying"
        );
        tokio::time::sleep(delay).await;
    }

    fn observe(&self, call: &Call, outcome: AttemptOutcome, attempt: u32, latency: Duration) {
        self.inner.observer.attempt(&AttemptEvent {
            endpoint: call.endpoint,
            method: method_name(&call.method),
            outcome,
            attempt,
            latency,
        });
    }
}

fn method_name(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        Method::HEAD => "HEAD",
        _ => "OTHER",
    }
}

/// Maps a non-success API response to an [`Error`]; the body is only read as an ErrorResponse.
pub(crate) fn status_error(
    endpoint: &'static str,
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Error {
    let errors = serde_json::from_slice::<ErrorResponse>(body)
        .map(|r| r.errors)
        .unwrap_or_default();
    match status.as_u16() {
        401 => Error::Unauthorized { endpoint, errors },
        403 => Error::Forbidden { endpoint, errors },
        404 => Error::NotFound { endpoint, errors },
        429 => Error::RateLimited {
            endpoint,
            retry_after,
        },
        s => Error::Api {
            endpoint,
            status: s,
            errors,
        },
    }
}

/// Percent-encodes one path segment (ids are opaque and may contain anything).
pub(crate) fn seg(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(seg("XABC123X0ABC123X0"), "XABC123X0ABC123X0");
        assert_eq!(seg("a/b c?"), "a%2Fb%20c%3F");
    }

    #[test]
    fn status_errors_keep_api_error_objects() {
        let body = br#"{"errors":[{"status":"404","code":"NOT_FOUND","title":"t","detail":"d"}]}"#;
        let e = status_error("x", StatusCode::NOT_FOUND, None, body);
        assert_eq!(e.status(), Some(404));
        assert_eq!(e.api_errors()[0].code.as_deref(), Some("NOT_FOUND"));
        let e = status_error("x", StatusCode::CONFLICT, None, b"not json");
        assert!(matches!(e, Error::Api { status: 409, ref errors, .. } if errors.is_empty()));
    }
}
