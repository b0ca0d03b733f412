//! `orchard`: loads the configuration, starts logging, then serves until SIGTERM/SIGINT;
//! `orchard rotate-master-key` re-encrypts the vault under a new master key instead.

use anyhow::{Context, bail};

/// mimalloc rather than the system allocator: a search page parses a few dozen device rows
/// into owned strings on every keystroke, and the bench (`make bench`) measured the
/// system's malloc at about half of that parse.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = backend::Config::load().context("invalid configuration")?;
    server::telemetry::init(&config.log);
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => {
            let listener = tokio::net::TcpListener::bind(config.server.listen)
                .await
                .with_context(|| format!("cannot listen on {}", config.server.listen))?;
            server::serve_with_listener(config, listener, server::shutdown_signal()).await
        }
        Some("rotate-master-key") => server::rotate_master_key(&config).await,
        Some(other) => bail!(
            "unknown command {other:?}: run `orchard` to serve, or `orchard rotate-master-key` \
             (with Orchard stopped) to re-encrypt the vault under a new master key"
        ),
    }
}
