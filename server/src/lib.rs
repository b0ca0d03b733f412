//! The Orchard server: wires configuration, storage, Leptos routes and middleware.
//!
//! `main.rs` only loads the configuration and calls [`serve_with_listener`], which tests
//! call too, with port 0, a fresh database and their own shutdown signal.

pub mod metrics;
pub mod security;
pub mod telemetry;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use app::ssr::AppState;
use app::{App, shell};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use backend::accounts::Clients;
use backend::vault::Vault;
use backend::{Config, Store};
use leptos::config::LeptosOptions;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;

use crate::metrics::Metrics;

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
    let router = build_app(app_state(config, store.clone(), vault, address));

    tracing::info!(
        url = %format!("http://{address}"),
        storage = store.kind().label(),
        "Orchard is listening on http://{address}"
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, router)
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
    if let Some(demo) = demo {
        demo.shutdown().await;
    }
    store.close().await;
    Ok(())
}

/// The router with every route and middleware; no listener, so tests can `oneshot` it.
pub fn build_app(state: AppState) -> Router {
    let metrics = Metrics::default();
    let routes = generate_route_list(App);
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
) -> AppState {
    AppState {
        leptos_options: leptos_options(&config, address),
        clients: Clients::new(store.clone(), vault.clone()),
        config: Arc::new(config),
        store,
        vault,
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
