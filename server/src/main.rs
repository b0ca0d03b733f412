//! `orchard`: loads the configuration, starts logging, serves until SIGTERM/SIGINT.

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = backend::Config::load().context("invalid configuration")?;
    server::telemetry::init(&config.log);
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    server::serve_with_listener(config, listener, server::shutdown_signal()).await
}
