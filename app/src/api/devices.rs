//! The device pages' server functions: the device list (search), a device's record, the
//! device management services, and the sync status and "Sync now" of Settings.
//!
//! They read the mirror, never Apple (a page costs no request of the account's budget),
//! except a device's AppleCare coverage and Activation Lock: Apple serves those one device
//! per call, so they are fetched when the device is opened, then cached.
//! `org` is the organization's id; when a page has none in its URL, the viewer's first
//! organization (by name) whose role allows the page is used.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use crate::error::AppError;
use crate::model::devices::{
    AccountSync, DeviceCoverage, DeviceDetail, DeviceFilterChoices, DeviceList, ServiceList,
};

/// One page of the device list. `query` is the page's URL query string (`q`, `family`,
/// `model`, `status`, `service`, `source`, `added_from`, `added_to`, `absent`, `sort`,
/// `after`, `limit`; see `backend::mirror::search::DeviceQuery::from_params`).
#[server(input = GetUrl, prefix = "/api")]
pub async fn list_devices(
    #[server(default)] org: Option<String>,
    #[server(default)] query: String,
) -> Result<DeviceList, AppError> {
    use backend::identity::roles::Permission;

    use crate::model::devices::DeviceRow;

    let (user, org) = ssr::organization_id(org.as_deref(), Permission::ViewDevices).await?;
    let query = ssr::device_query(&query)?;
    let state = crate::ssr::state()?;
    let store = state.store.as_ref();
    let overview = state.overviews.get(store, org).await?;
    let org = &overview.organization;
    let page = state.index.search(store, org.id, &query).await?;
    let name_of = |id: &Option<String>| {
        id.as_deref()
            .and_then(|id| overview.service_name(id))
            .map(str::to_owned)
    };
    Ok(DeviceList {
        rows: page
            .devices
            .iter()
            .map(|d| DeviceRow {
                serial: d.serial.clone(),
                model: d.model.clone(),
                family: d.product_family.clone(),
                status: d.status.clone(),
                service_name: name_of(&d.service_id),
                service_id: d.service_id.clone(),
                added_at: d.added_at,
                absent_since: d.absent_since,
            })
            .collect(),
        total: page.total,
        next: page.next,
        freshness: ssr::freshness_of(&state, org.id, &overview).await?,
        may_export: user.may(org.id, Permission::ExportData),
        may_assign: user.may(org.id, Permission::AssignDevices),
        org: ssr::org_ref(org),
    })
}

/// The organization and the service and model choices of the device list's filter form.
/// The models come from the in-memory search index, not a scan of the mirror.
#[server(input = GetUrl, prefix = "/api")]
pub async fn get_device_filters(
    #[server(default)] org: Option<String>,
) -> Result<DeviceFilterChoices, AppError> {
    use backend::identity::roles::Permission;

    use crate::model::devices::ServiceChoice;

    let (_, org) = ssr::organization(org.as_deref(), Permission::ViewDevices).await?;
    let state = crate::ssr::state()?;
    let store = state.store.as_ref();
    let services = store.service_names(org.id).await?;
    let models = state.index.models(store, org.id).await?;
    Ok(DeviceFilterChoices {
        models,
        services: services
            .into_iter()
            .filter(|s| s.absent_since.is_none())
            .map(|s| ServiceChoice {
                id: s.id,
                name: s.name,
            })
            .collect(),
        org: ssr::org_ref(&org),
    })
}

/// A device's record by serial (exact).
#[server(input = GetUrl, prefix = "/api")]
pub async fn get_device(
    #[server(default)] org: Option<String>,
    serial: String,
) -> Result<DeviceDetail, AppError> {
    use backend::identity::roles::Permission;

    let (user, org) = ssr::organization(org.as_deref(), Permission::ViewDevices).await?;
    let state = crate::ssr::state()?;
    let store = state.store.as_ref();
    let Some(d) = store.device(org.id, serial.trim()).await? else {
        return Err(AppError::NotFound {
            what: format!("A device with serial number {}", serial.trim()),
        });
    };
    // Both in the same answer: nested resources of their own would render (and hydrate)
    // apart from the record.
    let coverage = ssr::coverage(&user, org.id, &d.serial, ssr::Ask::Never).await?;
    let may_read_history = user.may(org.id, Permission::ViewAudit);
    // Service names, read once for the assignment and the history's job descriptions.
    let services: std::collections::HashMap<String, String> =
        if d.service_id.is_some() || may_read_history {
            store
                .service_names(org.id)
                .await?
                .into_iter()
                .map(|s| (s.id, s.name))
                .collect()
        } else {
            std::collections::HashMap::new()
        };
    let service_name = d
        .service_id
        .as_ref()
        .and_then(|id| services.get(id).cloned());
    let history = if may_read_history {
        let history =
            crate::api::jobs::ssr::device_history(&state, &user, org.id, &d.serial, services);
        Some(history.await?)
    } else {
        None
    };
    let blueprints = ssr::blueprints_of(org.id, &d.serial).await?;
    let apple_events = if may_read_history {
        Some(ssr::apple_events(org.id, &d.serial).await?)
    } else {
        None
    };
    Ok(DeviceDetail {
        attributes: ssr::attributes(&d),
        serial: d.serial,
        model: d.model,
        family: d.product_family,
        status: d.status,
        service_id: d.service_id,
        service_name,
        absent_since: d.absent_since,
        first_seen_at: d.first_seen_at,
        changed_at: d.changed_at,
        freshness: ssr::freshness(&state, org.id).await?,
        coverage,
        history,
        blueprints,
        apple_events,
        org: ssr::org_ref(&org),
    })
}

/// A device's AppleCare coverage and Activation Lock. With `ask_apple` unset: what Orchard
/// has cached, however old (the device page renders from this without waiting for Apple).
/// With it: asked of Apple now when nothing is cached or it is older than `[mirror]
/// coverage_max_age_secs`. Apple's problems (device unknown there, limits, no answer) come
/// back in `problem`, for the page to show next to the rest of the record.
#[server(input = GetUrl, prefix = "/api")]
pub async fn get_device_coverage(
    #[server(default)] org: Option<String>,
    serial: String,
    #[server(default)] ask_apple: bool,
) -> Result<DeviceCoverage, AppError> {
    use backend::identity::roles::Permission;

    let (user, org) = ssr::organization(org.as_deref(), Permission::ViewDevices).await?;
    ssr::require_device(org.id, serial.trim()).await?;
    let ask = if ask_apple {
        ssr::Ask::IfStale
    } else {
        ssr::Ask::Never
    };
    ssr::coverage(&user, org.id, serial.trim(), ask).await
}

/// "Refresh from Apple": asks Apple again, whatever the age of what Orchard has, for the
/// device's record, service and audit events (written to the mirror as a sync would) and
/// for its AppleCare coverage and Activation Lock. Answers the coverage; the page then
/// reloads the record.
#[server(prefix = "/api")]
pub async fn refresh_device_coverage(
    org: String,
    serial: String,
) -> Result<DeviceCoverage, AppError> {
    use backend::identity::roles::Permission;

    let (user, org) = ssr::organization(Some(&org), Permission::RefreshFromApple).await?;
    let serial = serial.trim();
    ssr::require_device(org.id, serial).await?;
    let (record_problem, record_changed) = ssr::refresh_record(org.id, serial).await?;
    let mut coverage = ssr::coverage(&user, org.id, serial, ssr::Ask::Always).await?;
    if coverage.problem.is_none() {
        coverage.problem = record_problem;
    }
    coverage.record_changed = record_changed;
    Ok(coverage)
}

/// The organization's device management services with their device counts.
#[server(input = GetUrl, prefix = "/api")]
pub async fn list_services(
    #[server(default)] org: Option<String>,
) -> Result<ServiceList, AppError> {
    use backend::identity::roles::Permission;

    use crate::model::devices::ServiceRow;

    let (_, org) = ssr::organization(org.as_deref(), Permission::ViewServices).await?;
    let state = crate::ssr::state()?;
    let rows = state
        .store
        .services(org.id)
        .await?
        .into_iter()
        .map(|s| ServiceRow {
            id: s.id,
            name: s.name,
            server_type: s.server_type,
            default_families: s.default_families,
            device_count: s.device_count,
            absent_since: s.absent_since,
        })
        .collect();
    Ok(ServiceList {
        rows,
        freshness: ssr::freshness(&state, org.id).await?,
        org: ssr::org_ref(&org),
    })
}

/// The sync of each of the organization's API accounts: live progress and health.
#[server(input = GetUrl, prefix = "/api")]
pub async fn get_sync_status(org: String) -> Result<Vec<AccountSync>, AppError> {
    use backend::identity::roles::Permission;

    let (_, org) = ssr::organization(Some(&org), Permission::ManageAccounts).await?;
    let state = crate::ssr::state()?;
    ssr::account_syncs(&state, org.id).await
}

/// Starts a sync of one API account now (resuming an interrupted one). `Conflict` when one
/// is already running.
#[server(prefix = "/api")]
pub async fn sync_now(org: String, account: String) -> Result<(), AppError> {
    use backend::identity::roles::Permission;
    use backend::mirror::sync::SyncCause;

    let (_, org) = ssr::organization(Some(&org), Permission::RefreshFromApple).await?;
    let state = crate::ssr::state()?;
    let account = ssr::account_of(&state, org.id, &account).await?;
    if account.revoked_at.is_some() {
        return Err(AppError::Conflict {
            message: "This API account is revoked; it cannot sync.".to_owned(),
        });
    }
    if !state.sync.request(org.id, account.id, SyncCause::Manual) {
        return Err(AppError::Conflict {
            message: "A sync of this account is already running.".to_owned(),
        });
    }
    Ok(())
}

#[cfg(feature = "ssr")]
pub(crate) mod ssr {
    use backend::accounts::ApiAccountView;
    use backend::identity::roles::Permission;
    use backend::mirror::DeviceRecord;
    use backend::mirror::overview::Overview;
    use backend::mirror::search::DeviceQuery;
    use backend::mirror::sync::RunState;
    use backend::orgs::{OrgId, Organization};

    use crate::error::{AppError, FieldError};
    use crate::model::devices::{
        AccountSync, AppleEvent, CoverageFacts, CoverageItem, DeviceCoverage, Freshness, LockState,
        Named, OrgRef,
    };
    use crate::ssr::AppState;
    use crate::ssr::auth::{CurrentUser, parse_org, refuse, require_permission, require_user};

    /// The organization a page is about, and a viewer whose role there allows `permission`.
    /// Without an id: the viewer's first organization (by name) that allows it.
    pub async fn organization(
        id: Option<&str>,
        permission: Permission,
    ) -> Result<(CurrentUser, Organization), AppError> {
        let state = crate::ssr::state()?;
        let store = state.store.as_ref();
        match id.map(str::trim).filter(|id| !id.is_empty()) {
            Some(id) => {
                let org = parse_org(id)?;
                let user = require_permission(org, permission)?;
                Ok((user, store.organization(org).await?))
            }
            None => {
                let user = require_user()?;
                let mut allowed = Vec::new();
                for org in store.list_organizations().await? {
                    if user.may(org.id, permission) {
                        allowed.push(org);
                    }
                }
                match allowed.into_iter().next() {
                    Some(org) => Ok((user, org)),
                    None => {
                        tracing::info!(user = %user.id, ?permission, "no organization allows this");
                        Err(refuse(AppError::Forbidden))
                    }
                }
            }
        }
    }

    /// [`organization`]'s id only: an id in the URL is checked against the viewer's
    /// memberships without reading the organization (for callers that read it otherwise).
    pub async fn organization_id(
        id: Option<&str>,
        permission: Permission,
    ) -> Result<(CurrentUser, OrgId), AppError> {
        match id.map(str::trim).filter(|id| !id.is_empty()) {
            Some(id) => {
                let org = parse_org(id)?;
                Ok((require_permission(org, permission)?, org))
            }
            None => organization(None, permission)
                .await
                .map(|(user, org)| (user, org.id)),
        }
    }

    pub fn org_ref(org: &Organization) -> OrgRef {
        OrgRef {
            id: org.id.to_string(),
            name: org.name.clone(),
        }
    }

    /// Parses a device list's URL query string; a bad parameter is a field error named
    /// after it, so the page can show it next to the control.
    pub fn device_query(query: &str) -> Result<DeviceQuery, AppError> {
        let query = query.strip_prefix('?').unwrap_or(query);
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        DeviceQuery::from_params(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).map_err(|e| {
            AppError::Validation {
                fields: vec![FieldError {
                    field: e.parameter.to_owned(),
                    message: e.message,
                }],
            }
        })
    }

    /// When [`coverage`] asks Apple.
    pub enum Ask {
        Never,
        /// When nothing is cached or the cache is older than the configured age.
        IfStale,
        Always,
    }

    /// The Blueprints that name the device (present ones), by name.
    pub async fn blueprints_of(org: OrgId, serial: &str) -> Result<Vec<Named>, AppError> {
        use backend::mirror::directory::ObjectKind;

        let state = crate::ssr::state()?;
        let owners = state
            .store
            .owners_of(org, ObjectKind::Blueprints, "orgDevices", serial)
            .await?;
        Ok(owners
            .into_iter()
            .filter(|o| o.absent_since.is_none())
            .map(|o| Named {
                id: o.id,
                name: o.name,
            })
            .collect())
    }

    /// Apple's latest audit events about the device, told for people.
    pub async fn apple_events(org: OrgId, serial: &str) -> Result<Vec<AppleEvent>, AppError> {
        /// Enough for a device's story; the rest stays in Apple's audit.
        const SHOWN: u32 = 50;
        let state = crate::ssr::state()?;
        let events = state.store.device_audit_events(org, serial, SHOWN).await?;
        Ok(events
            .into_iter()
            .map(|e| AppleEvent {
                at: e.occurred_at,
                what: e.describe(),
                by: match (e.actor_name.as_deref(), e.actor_type.as_deref()) {
                    (Some(name), _) if !name.trim().is_empty() => name.trim().to_owned(),
                    (_, Some("SYSTEM")) => "Apple".to_owned(),
                    (_, Some("API_USER")) => "an API account".to_owned(),
                    _ => "someone in Apple Business".to_owned(),
                },
                failed: e.outcome.as_deref() == Some("FAILURE"),
            })
            .collect())
    }

    /// Re-reads the device's record, service and audit events from Apple into the mirror.
    /// Answers Apple's problem as a sentence for the page, if any, and whether the mirror
    /// changed.
    pub async fn refresh_record(
        org: OrgId,
        serial: &str,
    ) -> Result<(Option<String>, bool), AppError> {
        use backend::mirror::coverage::CoverageError;
        use backend::mirror::refresh;

        let state = crate::ssr::state()?;
        let history = state.config.mirror.audit_history();
        let refreshed = refresh::device(
            state.store.as_ref(),
            &state.clients,
            &state.index,
            org,
            serial,
            history,
            now(),
        )
        .await;
        match refreshed {
            Ok(r) => {
                if let Some(problem) = r.events_problem {
                    tracing::info!(%problem, "device refresh: Apple's audit events not read");
                }
                Ok((None, r.changed || r.new_events > 0))
            }
            Err(CoverageError::NotMirrored) => Err(AppError::NotFound {
                what: format!("A device with serial number {serial}"),
            }),
            Err(CoverageError::Store(e)) => Err(e.into()),
            Err(CoverageError::Account(e)) => {
                tracing::warn!(error = %e, "device refresh: the API account cannot be used");
                let problem = "The organization's API account cannot be used right now; an \
                               administrator can check it in Settings.";
                Ok((Some(problem.to_owned()), false))
            }
            Err(other) => Ok((Some(format!("Apple could not be asked: {other}.")), false)),
        }
    }

    /// `NotFound` unless the organization's mirror has the device.
    pub async fn require_device(org: OrgId, serial: &str) -> Result<(), AppError> {
        let state = crate::ssr::state()?;
        match state.store.device(org, serial).await? {
            Some(_) => Ok(()),
            None => Err(AppError::NotFound {
                what: format!("A device with serial number {serial}"),
            }),
        }
    }

    /// A mirrored device's coverage for [`super::get_device`],
    /// [`super::get_device_coverage`] and [`super::refresh_device_coverage`].
    pub async fn coverage(
        user: &CurrentUser,
        org: OrgId,
        serial: &str,
        ask: Ask,
    ) -> Result<DeviceCoverage, AppError> {
        use backend::mirror::coverage::{self, CoverageError};

        let state = crate::ssr::state()?;
        let store = state.store.as_ref();
        let now = now();
        let max_age = i64::try_from(state.config.mirror.coverage_max_age_secs).unwrap_or(i64::MAX);
        let cached = coverage::cached(store, org, serial).await?;
        let stale = cached
            .as_ref()
            .is_none_or(|c| now - c.fetched_at >= max_age);
        let asking = match ask {
            Ask::Never => false,
            Ask::IfStale => stale,
            Ask::Always => true,
        };
        let (facts, problem) = if asking {
            match coverage::fetch(store, &state.clients, org, serial, now).await {
                Ok(fresh) => (Some(fresh), None),
                Err(CoverageError::NotMirrored) => {
                    return Err(AppError::NotFound {
                        what: format!("A device with serial number {serial}"),
                    });
                }
                Err(CoverageError::Store(e)) => return Err(e.into()),
                Err(CoverageError::Account(e)) => {
                    tracing::warn!(error = %e, "device coverage: the API account cannot be used");
                    let problem = "The organization's API account cannot be used right now; \
                                   an administrator can check it in Settings.";
                    (cached, Some(problem.to_owned()))
                }
                Err(other) => (cached, Some(format!("Apple could not be asked: {other}."))),
            }
        } else {
            (cached, None)
        };
        let stale = facts.as_ref().is_none_or(|c| now - c.fetched_at >= max_age);
        Ok(DeviceCoverage {
            facts: facts.map(coverage_facts),
            problem,
            stale,
            may_refresh: user.may(org, Permission::RefreshFromApple),
            now,
            record_changed: false,
        })
    }

    fn coverage_facts(facts: backend::mirror::coverage::CoverageAndLock) -> CoverageFacts {
        use backend::mirror::coverage::ActivationLock;

        CoverageFacts {
            coverage: facts
                .coverage
                .into_iter()
                .map(|c| CoverageItem {
                    description: c.description.unwrap_or_else(|| "Coverage".to_owned()),
                    status: c.status,
                    payment_type: c.payment_type,
                    agreement_number: c.agreement_number,
                    starts_at: c.starts_at,
                    ends_at: c.ends_at,
                    canceled: c.canceled.unwrap_or(false),
                })
                .collect(),
            lock: match facts.activation_lock {
                ActivationLock::Known {
                    locked: true,
                    lock_type,
                } => LockState::Locked {
                    lock_type: lock_type.filter(|t| t != "NONE"),
                },
                ActivationLock::Known { locked: false, .. } => LockState::NotLocked,
                ActivationLock::Unavailable { reason } => LockState::Unavailable { reason },
            },
            fetched_at: facts.fetched_at,
        }
    }

    /// The organization's API accounts (views: no key material).
    async fn accounts(
        store: &dyn backend::Store,
        org: OrgId,
    ) -> Result<Vec<ApiAccountView>, AppError> {
        Ok(store
            .list_api_accounts(org)
            .await?
            .into_iter()
            .map(|r| r.view)
            .collect())
    }

    pub fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    /// When the organization last synced, whether it syncs now, and its device count.
    pub async fn freshness(state: &AppState, org: OrgId) -> Result<Freshness, AppError> {
        let overview = state.overviews.get(state.store.as_ref(), org).await?;
        freshness_of(state, org, &overview).await
    }

    /// [`freshness`] from an overview already at hand.
    ///
    /// Runs on every pause in typing: the count comes from the search index when it is
    /// built (no aggregate over the mirror), and the runs from the overview.
    pub async fn freshness_of(
        state: &AppState,
        org: OrgId,
        overview: &Overview,
    ) -> Result<Freshness, AppError> {
        let devices = match state.index.present_count(org) {
            Some(n) => n,
            None => state.store.mirror_summary(org).await?.devices,
        };
        let mut freshness = Freshness {
            devices,
            now: now(),
            ..Freshness::default()
        };
        for (account, runs) in &overview.accounts {
            // The devices, not the directory that follows them in the same run.
            let devices_pending = |r: &backend::mirror::sync::SyncRun| {
                r.state == RunState::Running && r.devices_done_at().is_none()
            };
            if runs
                .first()
                .is_some_and(|r| devices_pending(r) && r.error.is_none())
                || (state.sync.is_running(*account) && runs.first().is_none_or(devices_pending))
            {
                freshness.syncing = true;
            }
            let done = runs.iter().filter_map(|r| r.devices_done_at()).max();
            freshness.synced_at = freshness.synced_at.max(done);
        }
        Ok(freshness)
    }

    pub async fn account_of(
        state: &AppState,
        org: OrgId,
        id: &str,
    ) -> Result<ApiAccountView, AppError> {
        let id = uuid::Uuid::try_parse(id.trim()).ok();
        accounts(state.store.as_ref(), org)
            .await?
            .into_iter()
            .find(|a| Some(a.id.0) == id)
            .ok_or_else(|| AppError::NotFound {
                what: "The API account".to_owned(),
            })
    }

    pub async fn account_syncs(state: &AppState, org: OrgId) -> Result<Vec<AccountSync>, AppError> {
        let store = state.store.as_ref();
        let mut out = Vec::new();
        for account in accounts(store, org).await? {
            let runs = store.sync_runs(account.id, 20).await?;
            let latest = runs.first();
            let success = runs.iter().find(|r| r.state == RunState::Succeeded);
            let progress = state.sync.progress(account.id).map(|p| {
                let mut line = format!(
                    "{} · {} pages · {} items · {:.0} items/s",
                    p.phase.as_str().replace('_', " "),
                    p.pages,
                    p.items,
                    p.rate
                );
                if let Some(eta) = p.eta_seconds {
                    line.push_str(&format!(" · about {} s left", eta));
                }
                if p.waiting_for_budget {
                    line.push_str(" · waiting for the request budget");
                }
                line
            });
            out.push(AccountSync {
                account_id: account.id.to_string(),
                account_name: account.name.clone(),
                latest_run: latest.map(|r| r.id.0),
                // A sync this process just started may not have stored its run yet.
                state: match latest {
                    _ if state.sync.is_running(account.id) => "running".to_owned(),
                    None => "never".to_owned(),
                    Some(run) => run.state.as_str().to_owned(),
                },
                progress,
                last_success_at: success.and_then(|r| r.finished_at),
                last_duration_secs: success
                    .and_then(|r| r.finished_at.map(|end| end - r.started_at)),
                last_error: latest.and_then(|r| r.error.clone()),
                rate_limited: latest.map_or(0, |r| r.rate_limited),
                budget_wait_secs: latest.map_or(0, |r| r.budget_wait_ms / 1000),
                devices_read: latest.map_or(0, |r| r.items),
                rows_written: latest.map_or(0, |r| r.written),
                directory: store
                    .object_counts(org, account.id)
                    .await?
                    .into_iter()
                    .map(|c| (c.kind.label().to_owned(), c.present))
                    .collect(),
                now: now(),
            });
        }
        Ok(out)
    }

    /// Apple's attributes of a device beyond the headline ones, labelled, in display order.
    pub fn attributes(d: &DeviceRecord) -> Vec<(String, String)> {
        let day = |t: Option<i64>| t.map(crate::model::devices::day);
        let flag = |b: Option<bool>| b.map(|b| if b { "yes" } else { "no" }.to_owned());
        [
            ("Product type", d.product_type.clone()),
            ("Capacity", d.capacity.clone()),
            ("Color", d.color.clone()),
            ("Part number", d.part_number.clone()),
            ("Order number", d.order_number.clone()),
            ("Ordered", day(d.ordered_at)),
            ("Added to the organization", day(d.added_at)),
            ("Updated at Apple", day(d.apple_updated_at)),
            ("Purchase source", d.purchase_source_type.clone()),
            ("Purchase source id", d.purchase_source_id.clone()),
            ("IMEI", d.imei.clone()),
            ("MEID", d.meid.clone()),
            ("EID", d.eid.clone()),
            ("Wi-Fi MAC address", d.wifi_mac.clone()),
            ("Bluetooth MAC address", d.bluetooth_mac.clone()),
            ("Ethernet MAC address", d.ethernet_mac.clone()),
            ("Can migrate without erase", flag(d.migration_capable)),
            ("Migration status", d.migration_status.clone()),
            ("Migration deadline", day(d.migration_deadline)),
        ]
        .into_iter()
        .filter_map(|(label, value)| {
            value
                .filter(|v| !v.is_empty())
                .map(|v| (label.to_owned(), v))
        })
        .collect()
    }
}
