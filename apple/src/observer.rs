//! Metrics hooks.
//!
//! Design: a small trait with no-op defaults that the client calls synchronously on the request
//! path; implementations must be cheap (increment a counter, record a histogram). The server
//! will export them to Prometheus. Events carry endpoint names (`orgDevices.list`), never URLs
//! with ids, so label cardinality stays bounded.

use std::time::Duration;

use crate::budget::{Priority, RequestClass};

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// An HTTP response with this status.
    Status(u16),
    /// A transport failure (no response).
    TransportError,
    /// The per-attempt timeout fired.
    Timeout,
    /// Getting a token failed before the request was sent.
    TokenError,
}

/// One finished attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptEvent {
    /// Endpoint name, e.g. `orgDevices.list`.
    pub endpoint: &'static str,
    /// HTTP method.
    pub method: &'static str,
    /// Outcome.
    pub outcome: AttemptOutcome,
    /// 1-based attempt number.
    pub attempt: u32,
    /// Latency of this attempt (send to last body byte).
    pub latency: Duration,
}

/// Receives client events. Every method has a no-op default.
pub trait Observer: Send + Sync {
    /// After every attempt.
    fn attempt(&self, _event: &AttemptEvent) {}
    /// Apple answered 429.
    fn rate_limited(&self, _endpoint: &'static str, _retry_after: Option<Duration>) {}
    /// A retry is scheduled after `delay`; `attempt` is the attempt that failed.
    fn retry(&self, _endpoint: &'static str, _attempt: u32, _delay: Duration) {}
    /// A request waited `waited` for the account budget (zero when it did not wait).
    fn budget_wait(
        &self,
        _endpoint: &'static str,
        _class: RequestClass,
        _priority: Priority,
        _waited: Duration,
    ) {
    }
    /// A token was requested; `ok` tells whether it succeeded.
    fn token_refresh(&self, _ok: bool) {}
}

/// The default observer: does nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopObserver;

impl Observer for NoopObserver {}
