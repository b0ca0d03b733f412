//! Demo mode: an in-process simulator ("our Apple") serving a generated organization, and a
//! "Demo organization" in Orchard with an API account pointing at it, so a fresh install shows
//! real data over the real code path (token, budget, paging) without an Apple account.
//!
//! Design choices:
//! * The simulator derives its credentials (client id, key id, P-256 key) from the seed, so
//!   the key sealed in the database stays valid across restarts. Only the port changes: on
//!   each start the stored account's URLs are updated. A different seed yields different
//!   credentials; the old demo account is then replaced.
//! * The demo organization is found by its slug, `demo-organization`; `auto` mode runs the
//!   demo only while no other organization has an API account, so it steps aside once a real
//!   account is connected.
//! * The demo key is generated test material, not a customer secret, but it still goes
//!   through the vault like any other key: one code path, no exceptions.

use crate::accounts::{self, AccountKind, AccountUrls, ApiAccountId, NewApiAccount};
use crate::audit::{self, Actor, AuditAction};
use crate::config::{DemoConfig, DemoMode};
use crate::orgs::{NewOrganization, OrgId, Organization};
use crate::store::{Store, StoreError};
use crate::vault::Vault;

/// Name of the demo organization.
pub const DEMO_ORG_NAME: &str = "Demo organization";
/// Slug of the demo organization, which identifies it.
pub const DEMO_ORG_SLUG: &str = "demo-organization";
/// Name of the demo organization's API account.
pub const DEMO_ACCOUNT_NAME: &str = "Demo (simulator)";

/// `Result` of demo setup.
pub type Result<T, E = DemoError> = std::result::Result<T, E>;

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot start the demo simulator")]
    Simulator(#[source] simulator::Error),
    #[error("cannot set up the demo organization")]
    Store(#[from] StoreError),
    #[error("cannot register the demo API account")]
    Account(#[from] accounts::AccountError),
    #[error("cannot record the demo setup in the audit log")]
    Audit(#[from] audit::AuditError),
}

/// The running demo. Dropping it stops the simulator.
#[derive(Debug)]
pub struct DemoHandle {
    simulator: simulator::RunningSimulator,
    org: OrgId,
    account: ApiAccountId,
}

impl DemoHandle {
    /// The demo organization.
    pub fn org(&self) -> OrgId {
        self.org
    }

    /// Its API account (served by the simulator).
    pub fn account(&self) -> ApiAccountId {
        self.account
    }

    /// Where the simulator listens, e.g. `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        self.simulator.base_url()
    }

    /// Stops the simulator, letting open requests finish (at most 5 s).
    pub async fn shutdown(self) {
        self.simulator.shutdown().await;
    }
}

/// Whether the demo should run: `on`, or `auto` while no organization other than the demo
/// one has an API account.
pub async fn demo_wanted(store: &dyn Store, config: &DemoConfig) -> Result<bool> {
    Ok(match config.enabled {
        DemoMode::On => true,
        DemoMode::Off => false,
        DemoMode::Auto => !store.has_api_accounts_outside(DEMO_ORG_SLUG).await?,
    })
}

/// Starts the simulator with `config.seed` and `config.devices`, then creates (or reuses)
/// the demo organization and its API account, pointing the account at the simulator.
#[tracing::instrument(skip_all, fields(devices = config.devices, seed = config.seed))]
pub async fn start_demo(
    store: &dyn Store,
    vault: &Vault,
    config: &DemoConfig,
) -> Result<DemoHandle> {
    let sim = simulator::Simulator::builder()
        .seed(config.seed)
        .devices(config.devices)
        .time_scale(config.time_scale)
        .spawn()
        .await
        .map_err(DemoError::Simulator)?;
    let org = demo_organization(store).await?;
    let urls = AccountUrls {
        api_base_url: sim.base_url().to_owned(),
        token_url: sim.token_url(),
        audience: sim.audience().to_owned(),
    };
    let credentials = sim.credentials();
    let new = NewApiAccount::parse(
        DEMO_ACCOUNT_NAME,
        &credentials.client_id,
        &credentials.key_id,
        &credentials.private_key_pem,
        AccountKind::Business,
        urls.clone(),
    )
    .map_err(accounts::AccountError::from)?;
    let actor = Actor::system();
    let mut account = None;
    for existing in store.list_api_accounts(org.id).await? {
        let view = existing.view;
        let same = view.client_id == new.client_id
            && view.key_id == new.key_id
            && view.key_fingerprint == new.key_fingerprint()
            && view.revoked_at.is_none();
        if same && account.is_none() {
            if view.urls != urls {
                store.update_api_account_urls(view.id, &urls).await?;
                audit::append(
                    store,
                    &actor,
                    AuditAction::ApiAccountUrlsChanged,
                    &format!("api_account:{}", view.id),
                    serde_json::json!({ "api_base_url": urls.api_base_url, "reason": "demo restart" }),
                )
                .await?;
            }
            account = Some(view.id);
        } else if view.name == DEMO_ACCOUNT_NAME {
            // Credentials from another seed: they no longer work.
            store.delete_api_account(view.id).await?;
            audit::append(
                store,
                &actor,
                AuditAction::ApiAccountDeleted,
                &format!("api_account:{}", view.id),
                serde_json::json!({ "reason": "demo seed changed" }),
            )
            .await?;
        }
    }
    let account = match account {
        Some(id) => id,
        None => {
            accounts::add_account(store, vault, &actor, org.id, new)
                .await?
                .id
        }
    };
    tracing::info!(url = sim.base_url(), org = %org.id, "demo organization is served by the built-in simulator");
    Ok(DemoHandle {
        simulator: sim,
        org: org.id,
        account,
    })
}

async fn demo_organization(store: &dyn Store) -> Result<Organization> {
    let find = async || -> Result<Option<Organization>> {
        Ok(store
            .list_organizations()
            .await?
            .into_iter()
            .find(|o| o.slug == DEMO_ORG_SLUG))
    };
    if let Some(org) = find().await? {
        return Ok(org);
    }
    let new = NewOrganization::parse(DEMO_ORG_NAME).expect("the demo organization name is valid");
    match store.create_organization(&new).await {
        Ok(org) => Ok(org),
        // Another instance created it first.
        Err(StoreError::Conflict { .. }) => {
            find().await?.ok_or(DemoError::Store(StoreError::NotFound {
                entity: "organization",
            }))
        }
        Err(e) => Err(e.into()),
    }
}
