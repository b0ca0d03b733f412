//! The Orchard server: wires configuration, storage, Leptos routes and middleware.
//!
//! `main.rs` only loads the configuration and calls [`serve_with_listener`], which tests
//! call too, with port 0, a fresh database and their own shutdown signal.

pub mod api_errors;
pub mod assign_csv;
pub mod auth;
pub mod export;
pub mod job_export;
pub mod metrics;
pub mod oidc;
pub mod security;
pub mod telemetry;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use app::ssr::AppState;
use app::{App, shell};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use backend::accounts::Clients;
use backend::identity::login::{Authenticator, LoginPolicy};
use backend::identity::password::PasswordHasher;
use backend::identity::sessions::{Clock, DbSessionStore, SessionTimeouts};
use backend::jobs::JobRunner;
use backend::mirror::index::DeviceIndex;
use backend::mirror::overview::Overviews;
use backend::mirror::sync::SyncEngine;
use backend::oidc::ProviderCache;
use backend::vault::Vault;
use backend::{Config, Store};
use leptos::config::LeptosOptions;
use leptos_axum::{AxumRouteListing, LeptosRoutes, generate_route_list};
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;

use crate::metrics::Metrics;

/// How often the sync scheduler looks for due accounts (each look is a few small queries).
const SCHEDULER_TICK: std::time::Duration = std::time::Duration::from_secs(15);

/// Serves Orchard on `listener` until `shutdown` resolves, then lets in-flight requests
/// finish (up to `server.shutdown_grace_secs`).
pub async fn serve_with_listener(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let address = listener.local_addr().context("listener address")?;
    let store = backend::store::connect(&config.database)
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                backend::config::redact_url_password(&config.database.url)
            )
        })?;
    let vault = Arc::new(
        Vault::open_at_startup(&config.vault, store.as_ref())
            .await
            .context("cannot open the credential vault")?,
    );
    let demo = if backend::demo::demo_wanted(store.as_ref(), &config.demo)
        .await
        .context("cannot decide whether to run the demo organization")?
    {
        let demo = backend::demo::start_demo(store.as_ref(), &vault, &config.demo)
            .await
            .context("cannot start the demo organization")?;
        tracing::info!(
            simulator = demo.base_url(),
            "no Apple account is configured: serving a demo organization from the built-in simulator"
        );
        Some(demo)
    } else {
        None
    };
    let grace = config.server.shutdown_grace();
    print_setup_link_if_needed(&config, store.as_ref(), address)
        .await
        .context("cannot create the first-run setup link")?;
    let state = app_state(config, store.clone(), vault, address)?;
    let housekeeping = spawn_housekeeping(&state);
    let preload = spawn_index_preload(&state);
    // Unfinished jobs resume at once: a chunk caught mid-request is reconciled, not re-sent.
    let job_runner = state.config.jobs.run.then(|| state.jobs.spawn());
    let scheduler = state.config.mirror.schedule.then(|| {
        tokio::spawn(state.sync.clone().schedule(
            state.config.mirror.sync_interval(),
            state.config.mirror.retry(),
            SCHEDULER_TICK,
        ))
    });
    let router = build_app(state);

    tracing::info!(
        url = %format!("http://{address}"),
        storage = store.kind().label(),
        "Orchard is listening on http://{address}"
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = stop_tx.send(true);
    })
    .into_future();
    tokio::pin!(server);
    let mut stop_rx = stop_rx;
    tokio::select! {
        result = &mut server => result.context("server error")?,
        () = async { let _ = stop_rx.wait_for(|stop| *stop).await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_secs = grace.as_secs(), "requests still running after the grace period; stopping anyway");
        }
    }
    housekeeping.abort();
    preload.abort();
    if let Some(job_runner) = job_runner {
        // Job tasks stop with the runtime; every step is persisted, the next start resumes.
        job_runner.abort();
    }
    if let Some(scheduler) = scheduler {
        // A sync in progress stops here; its checkpoint makes the next start resume it.
        scheduler.abort();
    }
    if let Some(demo) = demo {
        demo.shutdown().await;
    }
    store.close().await;
    Ok(())
}

/// `orchard rotate-master-key`: re-encrypts every sealed value under a new master key.
/// Run it with Orchard stopped. The new key comes from `ORCHARD_NEW_MASTER_KEY` (64 hex
/// characters) or is generated; with a key file the file is replaced, with
/// `ORCHARD_MASTER_KEY` the new key must be given and then configured before restarting.
pub async fn rotate_master_key(config: &Config) -> anyhow::Result<()> {
    use backend::vault::{MasterKey, rotate_configured_key};

    let new = match std::env::var("ORCHARD_NEW_MASTER_KEY") {
        Ok(hex) => MasterKey::from_hex(hex.trim()).context("ORCHARD_NEW_MASTER_KEY")?,
        Err(_) if config.vault.master_key.is_some() => anyhow::bail!(
            "the master key comes from the environment: set ORCHARD_NEW_MASTER_KEY to the new \
             key (openssl rand -hex 32), run this again, then configure it as the master key"
        ),
        Err(_) => MasterKey::generate(),
    };
    let store = backend::store::connect(&config.database)
        .await
        .context("cannot open the database")?;
    let rotation = rotate_configured_key(&config.vault, store.as_ref(), &new)
        .await
        .context("master key rotation failed; nothing was changed")?;
    store.close().await;
    if rotation.key_file_replaced {
        tracing::info!(
            values = rotation.values,
            key_file = %config.vault.key_file.display(),
            "master key rotated; the key file now holds the new key (back it up)"
        );
    } else {
        tracing::warn!(
            values = rotation.values,
            "master key rotated: set ORCHARD_MASTER_KEY to the value of ORCHARD_NEW_MASTER_KEY before starting Orchard"
        );
    }
    Ok(())
}

/// The pages' routes, generated once per process. Generating them renders the app while a
/// process-wide flag of `leptos_server` holds every resource that starts loading meanwhile,
/// for good (leptos issue #4773): a page rendered then, by another app of the same
/// process, never answered. The binary builds one app; a test binary builds many at once.
pub fn route_list() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// The router with every route and middleware; no listener, so tests can `oneshot` it.
pub fn build_app(state: AppState) -> Router {
    let metrics = Metrics::default();
    let sessions = DbSessionStore::new(identity_store(&state.store), Clock::system());
    let callback = state.config.oidc.redirect_path.clone();
    let routes = route_list();
    let options = state.leptos_options.clone();

    let site = Router::new()
        .leptos_routes_with_context(
            &state,
            routes,
            {
                let state = state.clone();
                move || leptos::prelude::provide_context(state.clone())
            },
            move || shell(options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(
            {
                let state = state.clone();
                move || leptos::prelude::provide_context(state.clone())
            },
            shell,
        ))
        .route("/devices/export.csv", get(export::devices_csv))
        .route("/jobs/{job}/results.csv", get(job_export::job_results_csv))
        .route("/assign/{draft}/preview.csv", get(assign_csv::preview_csv))
        .route("/auth/oidc/start", get(oidc::start))
        .route(&callback, get(oidc::callback))
        // Innermost first: error statuses, then who is signed in (and the sign-in gate),
        // the session cookie and record around it, and outermost the refusal of cross-site
        // mutations, before any session work.
        .layer(axum::middleware::from_fn(api_errors::status_from_error))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(auth::session_layer(&state.config, sessions))
        .layer(axum::middleware::from_fn(security::reject_cross_site));

    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(metrics::endpoint).with_state(metrics.clone()),
        )
        .merge(site)
        .with_state(state)
        .layer(axum::middleware::from_fn(security::headers))
        .layer(CompressionLayer::new())
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            metrics::track,
        ))
}

/// The state shared by every request of an instance listening on `address`.
pub fn app_state(
    config: Config,
    store: Arc<dyn Store>,
    vault: Arc<Vault>,
    address: SocketAddr,
) -> anyhow::Result<AppState> {
    let authenticator = Authenticator {
        hasher: PasswordHasher::new(config.auth.max_concurrent_hashes),
        sealer: vault.clone(),
        policy: LoginPolicy::from(&config.auth),
    };
    let oidc = ProviderCache::new(&config.oidc)
        .context("cannot build the HTTP client for single sign-on")?
        .map(Arc::new);
    let clients = Clients::with_budget_config(store.clone(), vault.clone(), config.budget.apple());
    let index = Arc::new(DeviceIndex::new());
    Ok(AppState {
        leptos_options: leptos_options(&config, address),
        sync: SyncEngine::with_options(
            store.clone(),
            clients.clone(),
            index.clone(),
            config.mirror.lease_ttl(),
            config.mirror.audit_history(),
        ),
        jobs: JobRunner::new(
            store.clone(),
            clients.clone(),
            index.clone(),
            config.jobs.clone(),
        ),
        index,
        overviews: Arc::new(Overviews::new()),
        clients,
        authenticator,
        timeouts: SessionTimeouts::from(&config.auth),
        oidc,
        config: Arc::new(config),
        store,
        vault,
    })
}

/// While no user exists, creates a one-time setup link and prints it to the console (never
/// to the log, which may be shipped elsewhere). With `auth.setup_link_file` set, the link is
/// also written there (mode 0600) for automated first runs such as the browser tests.
async fn print_setup_link_if_needed(
    config: &Config,
    store: &dyn Store,
    address: SocketAddr,
) -> anyhow::Result<()> {
    use backend::identity::setup::{SetupError, create_setup_token};

    let ttl = std::time::Duration::from_secs(config.auth.setup_token_ttl_secs);
    let token = match create_setup_token(store, ttl, backend::identity::now_utc()).await {
        Ok(token) => token,
        Err(SetupError::AlreadyDone) => return Ok(()),
        Err(err) => return Err(err.into()),
    };
    let origin = match config.server.public_url.trim_end_matches('/') {
        "" => format!("http://{address}"),
        origin => origin.to_owned(),
    };
    let link = format!("{origin}/setup?token={}", token.expose());
    eprintln!(
        "\n  No user exists yet. Create the first administrator within {} minutes at:\n\n    {link}\n",
        ttl.as_secs() / 60
    );
    if !config.auth.setup_link_file.as_os_str().is_empty() {
        write_private(&config.auth.setup_link_file, &link)
            .with_context(|| format!("cannot write {}", config.auth.setup_link_file.display()))?;
    }
    tracing::info!("first-run setup link printed to the console");
    Ok(())
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}

/// The store seen as identity storage (trait upcast).
fn identity_store(store: &Arc<dyn Store>) -> Arc<dyn backend::store::IdentityStore> {
    store.clone()
}

/// Background upkeep: expired sessions and old sign-in attempts are deleted periodically.
/// Builds every organization's search index in the background at start (seconds for a
/// million devices), so the first search of the day does not pay for it; searches before
/// it is ready are answered by SQL.
fn spawn_index_preload(state: &AppState) -> tokio::task::JoinHandle<()> {
    let (store, index) = (state.store.clone(), state.index.clone());
    tokio::spawn(async move {
        let orgs = match store.list_organizations().await {
            Ok(orgs) => orgs,
            Err(err) => {
                tracing::warn!(
                    error = &err as &dyn std::error::Error,
                    "search index preload"
                );
                return;
            }
        };
        for org in orgs {
            let started = std::time::Instant::now();
            match index.load(store.as_ref(), org.id).await {
                Ok(()) => tracing::info!(
                    org = %org.id,
                    ms = started.elapsed().as_millis() as u64,
                    bytes = index.memory_bytes(org.id).unwrap_or(0),
                    "search index ready"
                ),
                Err(err) => {
                    tracing::warn!(org = %org.id, error = &err as &dyn std::error::Error, "search index preload");
                }
            }
        }
    })
}

fn spawn_housekeeping(state: &AppState) -> tokio::task::JoinHandle<()> {
    let sessions = DbSessionStore::new(identity_store(&state.store), Clock::system());
    let store = identity_store(&state.store);
    let drafts = state.store.clone();
    let policy = state.authenticator.policy.clone();
    tokio::spawn(async move {
        let every = std::time::Duration::from_secs(300);
        let sessions = backend::identity::sessions::delete_expired_sessions_every(sessions, every);
        let attempts = backend::identity::login::prune_attempts_every(
            store.clone(),
            policy,
            Clock::system(),
            every,
        );
        let (sessions, attempts, ()) =
            tokio::join!(sessions, attempts, drafts_expire(&drafts, every));
        if let Err(err) = sessions {
            tracing::warn!(error = %err, "expired-session cleanup stopped");
        }
        if let Err(err) = attempts {
            tracing::warn!(
                error = &err as &dyn std::error::Error,
                "sign-in attempt pruning stopped"
            );
        }
    })
}

/// Deletes expired assignment-wizard drafts every `every`, for ever.
async fn drafts_expire(store: &Arc<dyn Store>, every: std::time::Duration) {
    loop {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        match store.delete_expired_drafts(now).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(drafts = n, "expired assignment drafts deleted"),
            Err(err) => tracing::warn!(
                error = &err as &dyn std::error::Error,
                "expired assignment draft cleanup"
            ),
        }
        tokio::time::sleep(every).await;
    }
}

fn leptos_options(config: &Config, address: SocketAddr) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("orchard")
        .site_root(config.site.root.to_string_lossy().into_owned())
        .site_pkg_dir("pkg")
        .site_addr(address)
        .build()
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(err) => {
            tracing::warn!(
                error = &err as &dyn std::error::Error,
                "readiness check failed"
            );
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
