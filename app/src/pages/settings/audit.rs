//! `/settings/audit`: Orchard's own audit log for instance administrators, newest first.
//!
//! The filters are a GET form, so the URL holds them (shareable, works without
//! JavaScript); "Older entries" carries the keyset cursor (`before`) in the URL too.
//! The line above the table says whether the hash chain verifies.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

use super::SettingsNav;
use crate::api::list_audit;
use crate::components::fields::explain;
use crate::model::users::{AuditEntryView, AuditLogPage, ChainStatus};
use crate::pages::error::ErrorInPlace;

/// The filter fields, in the order of the form and the URL.
const FILTERS: [&str; 4] = ["actor", "action", "since", "until"];

#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let param = move |name: &str| query.with(|q| q.get(name).filter(|v| !v.trim().is_empty()));
    let page = Resource::new(
        move || {
            (
                param("actor"),
                param("action"),
                param("since"),
                param("until"),
                param("before").and_then(|b| b.parse::<i64>().ok()),
            )
        },
        |(actor, action, since, until, before)| list_audit(actor, action, since, until, before),
    );
    let failed = ErrorInPlace::here();
    view! {
        <Title text="Orchard audit log · Orchard"/>
        <SettingsNav/>
        <h1>"Orchard audit log"</h1>
        <p class="lede">
            "Every sign-in and administrative change made in Orchard, newest first. \
             Each entry is chained to the one before by a hash, so edits show."
        </p>
        <Suspense fallback=|| view! { <p class="status-line">"Loading the audit log…"</p> }>
            {move || {
                page.get()
                    .map(|result| {
                        let current: Vec<(&'static str, String)> = FILTERS
                            .iter()
                            .filter_map(|name| param(name).map(|v| (*name, v)))
                            .collect();
                        match result {
                            Ok(page) => view! { <AuditView page current/> }.into_any(),
                            Err(error) if error.field_message("since").is_some()
                                || error.field_message("until").is_some() => {
                                view! {
                                    <FilterForm current actions=Vec::new()/>
                                    <p class="form-error" role="alert">{explain(&error)}</p>
                                }
                                    .into_any()
                            }
                            Err(error) => failed.render(error).into_any(),
                        }
                    })
            }}
        </Suspense>
    }
}

#[component]
fn AuditView(page: AuditLogPage, current: Vec<(&'static str, String)>) -> impl IntoView {
    let AuditLogPage {
        entries,
        next_before,
        chain,
        actions,
    } = page;
    let older = next_before.map(|before| {
        let mut params = current.clone();
        params.push(("before", before.to_string()));
        format!("/settings/audit?{}", query_string(&params))
    });
    let empty = entries.is_empty();
    view! {
        {match chain {
            ChainStatus::Intact => view! {
                <p class="chain chain-ok" data-testid="chain-status">
                    "The hash chain verifies: no entry was changed, removed or inserted."
                </p>
            }
                .into_any(),
            ChainStatus::BrokenAt { seq } => view! {
                <p class="chain chain-broken" role="alert" data-testid="chain-status">
                    {format!("The hash chain is broken at entry {seq}: the log was altered there.")}
                </p>
            }
                .into_any(),
        }}
        <FilterForm current actions/>
        {if empty {
            view! { <p class="notice">"No entries match these filters."</p> }.into_any()
        } else {
            view! {
                <div class="table-scroll">
                    <table class="data-table audit-table">
                        <caption class="sr-only">"Audit log entries, newest first"</caption>
                        <thead>
                            <tr>
                                <th scope="col">"#"</th>
                                <th scope="col">"Time (UTC)"</th>
                                <th scope="col">"Actor"</th>
                                <th scope="col">"Address"</th>
                                <th scope="col">"Action"</th>
                                <th scope="col">"Subject"</th>
                                <th scope="col">"Details"</th>
                            </tr>
                        </thead>
                        <tbody>{entries.into_iter().map(entry_row).collect_view()}</tbody>
                    </table>
                </div>
            }
                .into_any()
        }}
        <nav class="pager" aria-label="Audit log pages">
            {older.map(|href| view! { <a href=href rel="next">"Older entries"</a> })}
        </nav>
    }
}

fn entry_row(entry: AuditEntryView) -> impl IntoView {
    let details = (entry.details != "{}").then_some(entry.details);
    view! {
        <tr>
            <td class="numeric">{entry.seq}</td>
            <td>
                <time datetime=entry.at.clone()>{entry.at.replace('T', " ").replace('Z', "")}</time>
            </td>
            <td>{entry.actor}</td>
            <td class="mono">{entry.client_addr.unwrap_or_default()}</td>
            <td><code>{entry.action}</code></td>
            <td title=entry.subject>{entry.subject_label}</td>
            <td class="mono details">{details}</td>
        </tr>
    }
}

#[component]
fn FilterForm(current: Vec<(&'static str, String)>, actions: Vec<String>) -> impl IntoView {
    let value = move |name: &str| {
        current
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let chosen_action = value("action");
    view! {
        <Form method="GET" action="/settings/audit" attr:class="filter-bar" attr:aria-label="Filter the audit log">
            <div class="form-field">
                <label for="audit-actor">"Actor"</label>
                <input id="audit-actor" name="actor" type="search" value=value("actor") placeholder="username or system"/>
            </div>
            <div class="form-field">
                <label for="audit-action">"Action"</label>
                <select id="audit-action" name="action">
                    <option value="">"Any action"</option>
                    {actions
                        .into_iter()
                        .map(|a| {
                            let selected = a == chosen_action;
                            view! { <option value=a.clone() selected=selected>{a.clone()}</option> }
                        })
                        .collect_view()}
                </select>
            </div>
            <div class="form-field">
                <label for="audit-since">"From"</label>
                <input id="audit-since" name="since" type="date" value=value("since")/>
            </div>
            <div class="form-field">
                <label for="audit-until">"To"</label>
                <input id="audit-until" name="until" type="date" value=value("until")/>
            </div>
            <div class="form-actions">
                <button type="submit">"Filter"</button>
                <a href="/settings/audit">"Clear"</a>
            </div>
        </Form>
    }
}

/// `name=value&…` with each value percent-encoded (no URL library in wasm).
fn query_string(params: &[(&str, String)]) -> String {
    params
        .iter()
        .map(|(name, value)| format!("{name}={}", percent_encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_page_link_keeps_the_filters_encoded() {
        let params = [
            ("actor", "ann lee&co".to_owned()),
            ("before", "42".to_owned()),
        ];
        assert_eq!(query_string(&params), "actor=ann%20lee%26co&before=42");
    }
}
