//! The "Device sync" section of an organization's Settings page: per API account, the live
//! progress of a running sync (phase, pages, items, rate, time left, waiting for the
//! budget) and its health (last success and how long it took, last error, 429 answers,
//! time spent waiting for the request budget), with "Sync now".
//!
//! With JavaScript the section refreshes every two seconds while a sync runs; without it,
//! "Sync now" posts the form and the page comes back with the new state.

use leptos::prelude::*;

use super::{action_error, form_error};
use crate::api::{SyncNow, get_sync_status};
use crate::model::devices::{AccountSync, ago, thousands};
use crate::pages::error::ErrorInPlace;

#[component]
pub fn SyncSection(org: Memo<String>) -> impl IntoView {
    let sync_now = ServerAction::<SyncNow>::new();
    let tick = RwSignal::new(0_u64);
    let status = Resource::new(
        move || (org.get(), sync_now.version().get(), tick.get()),
        |(org, _, _)| get_sync_status(org),
    );
    let failed = ErrorInPlace::here();
    // Poll while a sync runs (only in the browser; the server renders once).
    #[cfg(feature = "hydrate")]
    {
        let running = move || {
            status.with(|s| {
                s.as_ref()
                    .and_then(|r| r.as_ref().ok())
                    .is_some_and(|accounts| accounts.iter().any(|a| a.state == "running"))
            })
        };
        if let Ok(handle) = set_interval_with_handle(
            move || {
                if running() {
                    tick.update(|n| *n += 1);
                }
            },
            std::time::Duration::from_secs(2),
        ) {
            on_cleanup(move || handle.clear());
        }
    }
    view! {
        <section class="settings-section" aria-labelledby="sync-heading">
            <h2 id="sync-heading">"Device sync"</h2>
            <p class="field-hint">
                "Orchard copies each account's devices, device management services, users, \
                 groups, Blueprints, configurations, apps, packages and Apple's audit events \
                 from Apple on a schedule, within the account's request budget. Pages read that \
                 copy."
            </p>
            {move || {
                form_error(action_error(sync_now, false))
                    .get()
                    .map(|message| view! { <p class="form-error" role="alert">{message}</p> })
            }}
            <Transition fallback=|| view! { <p class="status-line">"Loading the sync status…"</p> }>
                {move || {
                    status.get().map(|result| match result {
                        Ok(accounts) if accounts.is_empty() => {
                            view! { <p class="notice">"Add an API account to start syncing."</p> }
                                .into_any()
                        }
                        Ok(accounts) => view! {
                            <ul class="sync-list">
                                {accounts
                                    .into_iter()
                                    .map(|a| view! { <SyncItem org=org.get_untracked() account=a action=sync_now/> })
                                    .collect_view()}
                            </ul>
                        }
                            .into_any(),
                        Err(error) => failed.render(error).into_any(),
                    })
                }}
            </Transition>
        </section>
    }
}

#[component]
fn SyncItem(org: String, account: AccountSync, action: ServerAction<SyncNow>) -> impl IntoView {
    let AccountSync {
        account_id,
        account_name,
        latest_run,
        state,
        progress,
        last_success_at,
        last_duration_secs,
        last_error,
        rate_limited,
        budget_wait_secs,
        devices_read,
        rows_written,
        directory,
        now,
    } = account;
    let headline = match state.as_str() {
        "running" => "Syncing now".to_owned(),
        "never" => "Never synced".to_owned(),
        _ => match last_success_at {
            Some(at) => format!("Last synced {}", ago(at, now)),
            None => "No successful sync yet".to_owned(),
        },
    };
    let health = {
        let mut parts = Vec::new();
        if let Some(secs) = last_duration_secs {
            parts.push(format!("last full run took {secs} s"));
        }
        parts.push(format!(
            "latest run: {} devices read, {} rows written",
            thousands(devices_read),
            thousands(rows_written)
        ));
        parts.push(format!("{rate_limited} answers 429 (rate limited)"));
        parts.push(format!(
            "{budget_wait_secs} s waiting for the request budget"
        ));
        parts.join(" · ")
    };
    let mirrored = (!directory.is_empty()).then(|| {
        let parts: Vec<String> = directory
            .iter()
            .map(|(what, n)| format!("{} {what}", thousands(*n)))
            .collect();
        format!("Also copied: {}.", parts.join(" · "))
    });
    let running = state == "running";
    let item = account_id.clone();
    view! {
        <li class="sync-item" data-account=item data-run=latest_run.map(|id| id.to_string())>
            <h3>{account_name}</h3>
            <p class="sync-headline" data-testid="sync-state">{headline}</p>
            {progress.map(|line| view! { <p class="status-line" role="status">{line}</p> })}
            <p class="field-hint">{health}</p>
            {mirrored.map(|line| view! { <p class="field-hint" data-testid="sync-directory">{line}</p> })}
            {last_error.map(|e| view! { <p class="form-error">"Last error: " {e}</p> })}
            <ActionForm action>
                <input type="hidden" name="org" value=org/>
                <input type="hidden" name="account" value=account_id/>
                <button type="submit" disabled=running>"Sync now"</button>
            </ActionForm>
        </li>
    }
}
