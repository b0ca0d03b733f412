//! Retry policy: one pure function deciding, after each failed attempt, whether to try again
//! and after how long.
//!
//! Design: transient = connect errors, timeouts, connection resets, 408, 429, 5xx (SPEC §5);
//! everything else is final. Only GET/HEAD are ever re-sent: a POST that creates an activity,
//! or any other write, is never repeated automatically, because Apple has no idempotency key and
//! a duplicate assignment is worse than a visible error (SPEC §5, "do not blindly retry write
//! activities"). `Retry-After` (seconds or HTTP date) is never undercut; without it, exponential
//! backoff with full jitter. The jitter source is injectable so the table tests are exact.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode};

use crate::config::RetryConfig;

/// What one attempt ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP response with this status.
    Status(StatusCode),
    /// No response: a transport failure of this kind.
    Transport(TransportKind),
}

/// Transport failure classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// Could not connect (DNS, refused, TLS handshake).
    Connect,
    /// The attempt timed out.
    Timeout,
    /// The connection broke mid-request or mid-body (reset, HTTP/2 stream reset, EOF).
    Reset,
    /// Anything else (e.g. building the request): not transient.
    Other,
}

impl TransportKind {
    /// Classifies a reqwest error.
    pub fn of(e: &reqwest::Error) -> Self {
        if e.is_timeout() {
            Self::Timeout
        } else if e.is_connect() {
            Self::Connect
        } else if e.is_request() || e.is_body() || e.is_decode() {
            Self::Reset
        } else {
            Self::Other
        }
    }
}

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Give up and return the error.
    Stop,
    /// Try again after this delay.
    RetryAfter(Duration),
}

/// Source of randomness for full jitter: a fraction in `[0, 1)`.
pub trait Jitter: Send + Sync {
    /// A uniformly distributed fraction in `[0, 1)`.
    fn fraction(&self) -> f64;
}

/// Thread-local RNG jitter (default).
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomJitter;

impl Jitter for RandomJitter {
    fn fraction(&self) -> f64 {
        rand::random::<f64>()
    }
}

/// A constant fraction, for tests.
#[derive(Debug, Clone, Copy)]
pub struct FixedJitter(pub f64);

impl Jitter for FixedJitter {
    fn fraction(&self) -> f64 {
        self.0.clamp(0.0, 1.0)
    }
}

/// Whether a method may be re-sent automatically.
pub fn is_replayable(method: &Method) -> bool {
    *method == Method::GET || *method == Method::HEAD
}

/// Whether an outcome is transient (worth retrying for a replayable method).
pub fn is_transient(outcome: Outcome) -> bool {
    match outcome {
        Outcome::Status(s) => {
            s == StatusCode::REQUEST_TIMEOUT
                || s == StatusCode::TOO_MANY_REQUESTS
                || s.is_server_error()
        }
        Outcome::Transport(k) => k != TransportKind::Other,
    }
}

/// Parses `Retry-After` as delta-seconds or an HTTP date (relative to `now`). A date in the past
/// gives zero.
pub fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let raw = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = raw.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = raw.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(raw).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Full-jitter exponential backoff for attempt `attempt` (1-based): uniform in
/// `[0, min(max_delay, base * 2^(attempt-1))]`.
pub fn backoff(config: &RetryConfig, attempt: u32, jitter: &dyn Jitter) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let ceiling = config
        .base_delay
        .saturating_mul(1u32 << exp)
        .min(config.max_delay);
    ceiling.mul_f64(jitter.fraction())
}

/// The policy. `attempt` is the number of attempts made so far (1 after the first), `elapsed`
/// the time since the call started, `deadline` the overall budget of the call, `now` the wall
/// clock for HTTP-date `Retry-After`.
#[expect(
    clippy::too_many_arguments,
    reason = "a pure function of all its inputs, by design"
)]
pub fn decide(
    config: &RetryConfig,
    method: &Method,
    outcome: Outcome,
    headers: Option<&HeaderMap>,
    attempt: u32,
    elapsed: Duration,
    deadline: Duration,
    now: SystemTime,
    jitter: &dyn Jitter,
) -> Decision {
    if !is_replayable(method) || !is_transient(outcome) || attempt >= config.max_attempts {
        return Decision::Stop;
    }
    let retry_after = headers.and_then(|h| parse_retry_after(h, now));
    let delay = match retry_after {
        Some(ra) => ra,
        None => backoff(config, attempt, jitter),
    };
    if elapsed.saturating_add(delay) > deadline {
        return Decision::Stop;
    }
    Decision::RetryAfter(delay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    const NOW_SECS: u64 = 1_767_225_600;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_SECS)
    }

    fn cfg() -> RetryConfig {
        RetryConfig {
            max_attempts: 4,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
        }
    }

    fn run(
        method: Method,
        outcome: Outcome,
        headers: Option<&HeaderMap>,
        attempt: u32,
    ) -> Decision {
        decide(
            &cfg(),
            &method,
            outcome,
            headers,
            attempt,
            Duration::ZERO,
            Duration::from_secs(300),
            now(),
            &FixedJitter(0.5),
        )
    }

    fn status(code: u16) -> Outcome {
        Outcome::Status(StatusCode::from_u16(code).unwrap())
    }

    #[test]
    fn table_of_outcomes_for_get() {
        let half_second = Decision::RetryAfter(Duration::from_millis(500));
        let cases = [
            (status(408), half_second),
            (status(429), half_second),
            (status(500), half_second),
            (status(502), half_second),
            (status(503), half_second),
            (status(504), half_second),
            (Outcome::Transport(TransportKind::Connect), half_second),
            (Outcome::Transport(TransportKind::Timeout), half_second),
            (Outcome::Transport(TransportKind::Reset), half_second),
            (Outcome::Transport(TransportKind::Other), Decision::Stop),
            (status(400), Decision::Stop),
            (status(401), Decision::Stop),
            (status(403), Decision::Stop),
            (status(404), Decision::Stop),
            (status(409), Decision::Stop),
            (status(422), Decision::Stop),
        ];
        for (outcome, expected) in cases {
            assert_eq!(run(Method::GET, outcome, None, 1), expected, "{outcome:?}");
        }
    }

    #[test]
    fn writes_are_never_resent() {
        for m in [Method::POST, Method::PATCH, Method::DELETE, Method::PUT] {
            for o in [
                status(429),
                status(503),
                Outcome::Transport(TransportKind::Reset),
            ] {
                assert_eq!(run(m.clone(), o, None, 1), Decision::Stop, "{m} {o:?}");
            }
        }
    }

    #[test]
    fn max_attempts_stops() {
        assert!(matches!(
            run(Method::GET, status(503), None, 3),
            Decision::RetryAfter(_)
        ));
        assert_eq!(run(Method::GET, status(503), None, 4), Decision::Stop);
    }

    #[test]
    fn retry_after_seconds_is_never_undercut() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("42"));
        assert_eq!(
            run(Method::GET, status(429), Some(&h), 1),
            Decision::RetryAfter(Duration::from_secs(42))
        );
    }

    #[test]
    fn retry_after_http_date_is_relative_to_now() {
        let at = now() + Duration::from_secs(90);
        let mut h = HeaderMap::new();
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_str(&httpdate::fmt_http_date(at)).unwrap(),
        );
        assert_eq!(parse_retry_after(&h, now()), Some(Duration::from_secs(90)));
        let past = now() - Duration::from_secs(90);
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_str(&httpdate::fmt_http_date(past)).unwrap(),
        );
        assert_eq!(parse_retry_after(&h, now()), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(parse_retry_after(&h, now()), None);
    }

    #[test]
    fn deadline_stops_when_the_wait_would_overrun() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("120"));
        let d = decide(
            &cfg(),
            &Method::GET,
            status(429),
            Some(&h),
            1,
            Duration::from_secs(200),
            Duration::from_secs(300),
            now(),
            &FixedJitter(0.0),
        );
        assert_eq!(d, Decision::Stop);
    }

    #[test]
    fn jitter_stays_within_the_exponential_ceiling() {
        let c = cfg();
        for attempt in 1..=10 {
            let ceiling = Duration::from_secs(1u64 << (attempt - 1)).min(c.max_delay);
            assert_eq!(backoff(&c, attempt, &FixedJitter(0.0)), Duration::ZERO);
            let top = backoff(&c, attempt, &FixedJitter(0.999_999));
            assert!(
                top <= ceiling && top + Duration::from_millis(1) >= ceiling,
                "{attempt}"
            );
            for _ in 0..50 {
                assert!(backoff(&c, attempt, &RandomJitter) <= ceiling);
            }
        }
    }
}
