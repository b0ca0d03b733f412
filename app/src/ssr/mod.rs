//! Server-only glue for pages and server functions: the shared state, access checks
//! ([`auth`]), the request's CSP nonce, and the mapping of internal errors to [`AppError`].

pub mod assign;
pub mod auth;

use std::sync::Arc;

use backend::accounts::Clients;
use backend::identity::login::Authenticator;
use backend::identity::sessions::SessionTimeouts;
use backend::oidc::ProviderCache;
use backend::vault::Vault;
use backend::{Config, Store, StoreError};
use leptos::config::LeptosOptions;
use leptos::prelude::*;

use crate::error::AppError;

/// Everything a server function may need, handed to Leptos as context and to axum as state.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    /// Opens sealed secrets; only the backend's account and identity services use it.
    pub vault: Arc<Vault>,
    /// One `apple::Client` and request budget per Apple API account.
    pub clients: Arc<Clients>,
    /// Keeps the device mirror in step with Apple; one per instance.
    pub sync: Arc<backend::mirror::sync::SyncEngine>,
    /// The in-memory search index of the mirror (fed by `sync`).
    pub index: Arc<backend::mirror::index::DeviceIndex>,
    /// Each organization, its service names and recent sync runs, reused for a second: what
    /// the device list repeats on every keystroke besides its rows.
    pub overviews: Arc<backend::mirror::overview::Overviews>,
    /// Runs confirmed bulk-assignment jobs; one per instance. Confirm and cancel through it
    /// (`jobs.confirm`, `jobs.cancel`) so it starts or stops at once.
    pub jobs: Arc<backend::jobs::JobRunner>,
    /// Password and second-factor checks with throttling; one hashing pool per instance.
    pub authenticator: Authenticator,
    /// Idle and absolute session limits.
    pub timeouts: SessionTimeouts,
    /// The SSO provider, discovered on first use; `None` when SSO is off.
    pub oidc: Option<Arc<ProviderCache>>,
    pub leptos_options: LeptosOptions,
}

impl axum::extract::FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// The application state inside a server function or a render.
pub fn state() -> Result<AppState, AppError> {
    use_context::<AppState>().ok_or_else(|| internal("application state missing from context"))
}

/// The per-request nonce that the security-header middleware put into the CSP.
#[derive(Debug, Clone)]
pub struct CspNonce(pub String);

/// Makes the request's CSP nonce available to the hydration scripts.
pub fn provide_request_nonce() {
    let nonce = use_context::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<CspNonce>().cloned());
    if let Some(CspNonce(value)) = nonce {
        provide_context(leptos::nonce::Nonce::from_value(value));
    }
}

/// A request header of the current render or server-function call.
pub fn request_header(name: &str) -> Option<String> {
    use_context::<http::request::Parts>()
        .and_then(|parts| parts.headers.get(name).cloned())
        .and_then(|v| v.to_str().ok().map(str::to_owned))
}

/// Logs an internal failure with a fresh incident id and returns the id-only wire error.
pub fn internal(context: &str) -> AppError {
    let incident_id = incident_id();
    tracing::error!(%incident_id, "{context}");
    AppError::Internal { incident_id }
}

fn incident_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound { entity } => AppError::NotFound {
                what: capitalize(entity),
            },
            StoreError::Conflict { .. } => AppError::Conflict {
                message: "This conflicts with an existing record.".to_owned(),
            },
            other => {
                let incident_id = incident_id();
                tracing::error!(%incident_id, error = &other as &dyn std::error::Error, "storage failure");
                AppError::Internal { incident_id }
            }
        }
    }
}

/// A backend message (`the name is empty`) as a sentence for people (`The name is empty.`).
pub fn sentence(message: &str) -> String {
    let mut out = capitalize(message);
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
