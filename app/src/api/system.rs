//! Facts about this Orchard instance for the status line.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use crate::error::AppError;
use crate::model::SystemStatus;

/// Version and database of this instance. Fails (500 with an incident id) when the
/// database does not answer, so the status line tells the truth.
#[server(input = GetUrl, prefix = "/api")]
pub async fn get_system_status() -> Result<SystemStatus, AppError> {
    crate::ssr::auth::require_user()?;
    let state = crate::ssr::state()?;
    state.store.ping().await?;
    Ok(SystemStatus {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        database: state.store.kind().label().to_owned(),
    })
}
