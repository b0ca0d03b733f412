//! `/devices`: find a device while typing; `/devices/:serial`: its record; `/services`: the
//! device management services.
//!
//! The list is a GET form, so the URL holds the search, filters, order and page (shareable,
//! the back button works, and it works without JavaScript). With JavaScript, typing updates
//! the URL after a short pause (replacing the history entry, so Back leaves the page rather
//! than replaying keystrokes), and the list follows; the previous results stay on screen
//! until the new ones arrive, and only the latest answer is shown however fast one types.
//! The search box has focus on load and on "/".

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_location, use_params_map, use_query_map};

use crate::api::{
    RefreshDeviceCoverage, get_device, get_device_filters, list_devices, list_services,
};
use crate::components::fields::explain;
use crate::error::AppError;
use crate::model::devices::{
    APPLECARE_STATES, AppleEvent, CoverageFacts, DeviceCoverage, DeviceDetail, DeviceFilterChoices,
    DeviceList, DeviceRow, LockState, PURCHASE_SOURCES, ServiceList, ago, day, freshness_line,
    payment_label, thousands,
};
use crate::model::jobs::{DeviceHistory, outcome_label, status_label};
use crate::model::query_escape;
use crate::pages::error::ErrorInPlace;

/// Apple's product families, as the filter offers them.
const FAMILIES: [&str; 6] = ["iPhone", "iPad", "Mac", "AppleTV", "Watch", "Vision"];
/// Sort orders: URL value and label.
const SORTS: [(&str, &str); 5] = [
    ("serial", "Serial number"),
    ("added_newest", "Newest first"),
    ("added_oldest", "Oldest first"),
    ("model", "Model"),
    ("changed", "Last changed"),
];
/// Pause after the last keystroke before the list follows.
#[cfg(feature = "hydrate")]
const TYPING_PAUSE: std::time::Duration = std::time::Duration::from_millis(150);

/// `name=value&…`, values percent-encoded.
fn query_string(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(name, value)| format!("{name}={}", query_escape(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The current URL's parameters, in order.
fn current_params() -> Vec<(String, String)> {
    use_query_map().with_untracked(|q| {
        q.clone()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    })
}

#[component]
pub fn DevicesPage() -> impl IntoView {
    let query = use_query_map();
    let location = use_location();
    let org = move || query.with(|q| q.get("org"));
    let list = Resource::new(
        move || (org(), location.search.get()),
        |(org, search)| list_devices(org, search),
    );
    // The form has its own data, which depends on the organization only: it stays mounted
    // while the results change, so typing is never interrupted. A page opened without
    // `org` gains it from the form's first navigation; that is the organization the form
    // already shows, so it must not load the form again (which would replace the search
    // box being typed in, and lose the keystrokes after the first pause).
    let form_org = RwSignal::new(None::<String>);
    let form_key = Memo::new(move |previous: Option<&Option<String>>| {
        let wanted = org();
        match previous {
            Some(previous) if wanted.is_some() && wanted == form_org.get_untracked() => {
                previous.clone()
            }
            _ => wanted,
        }
    });
    let choices = Resource::new(move || form_key.get(), get_device_filters);
    let failed = ErrorInPlace::here();
    view! {
        <Title text="Devices · Orchard"/>
        <h1>"Devices"</h1>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                // On failure the list below, loaded with the same role check, shows why.
                choices.await.ok().map(|choices| {
                    form_org.set(Some(choices.org.id.clone()));
                    view! { <SearchForm choices/> }
                })
            })}
        </Suspense>
        <Transition fallback=|| view! { <p class="status-line">"Loading devices…"</p> }>
            {move || {
                list.get()
                    .map(|result| match result {
                        Ok(list) => view! { <DeviceListView list/> }.into_any(),
                        Err(error @ AppError::Validation { .. }) => {
                            view! { <p class="form-error" role="alert">{explain(&error)}</p> }
                                .into_any()
                        }
                        Err(error) => failed.render(error).into_any(),
                    })
            }}
        </Transition>
    }
}

#[component]
fn DeviceListView(list: DeviceList) -> impl IntoView {
    let DeviceList {
        org,
        rows,
        total,
        next,
        freshness,
        may_export,
        may_assign,
    } = list;
    let params = current_params();
    let without = |names: &[&str]| -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = params
            .iter()
            .filter(|(k, v)| !names.contains(&k.as_str()) && !v.is_empty())
            .cloned()
            .collect();
        if !out.iter().any(|(k, _)| k == "org") {
            out.insert(0, ("org".to_owned(), org.id.clone()));
        }
        out
    };
    let first_page = params
        .iter()
        .any(|(k, _)| k == "after")
        .then(|| format!("/devices?{}", query_string(&without(&["after"]))));
    let next_page = next.map(|after| {
        let mut p = without(&["after"]);
        p.push(("after".to_owned(), after));
        format!("/devices?{}", query_string(&p))
    });
    let export = may_export.then(|| {
        format!(
            "/devices/export.csv?{}",
            query_string(&without(&["after", "limit"]))
        )
    });
    // The whole filter, for "Assign all N matching" (the wizard resolves it on the server).
    let assign_all = may_assign.then(|| {
        let filter: Vec<(String, String)> = without(&["after", "limit", "org"]);
        format!(
            "/assign?org={}&filter={}",
            query_escape(&org.id),
            query_escape(&query_string(&filter))
        )
    });
    let shown = rows.len();
    let summary = match total {
        0 => "No devices match.".to_owned(),
        1 => "1 device matches.".to_owned(),
        n if n as usize == shown => format!("{} devices match.", thousands(n)),
        n => format!("{} devices match; showing {shown}.", thousands(n)),
    };
    let org_id = org.id.clone();
    view! {
        <p class="lede" data-testid="freshness">
            {org.name.clone()} " · " {freshness_line(&freshness)} " · "
            <a href=format!("/services?org={}", query_escape(&org.id))>"Device management services"</a>
        </p>
        <div class="list-summary">
            <p role="status" data-testid="result-count">{summary}</p>
            {export.map(|href| view! { <a class="button-link" href=href rel="external">"Export CSV"</a> })}
        </div>
        // Selected rows go to the wizard as `serials=` (the row checkboxes belong to this
        // form through their `form` attribute), with or without JavaScript.
        {may_assign.then(|| view! {
            <form id="assign-selection" method="get" action="/assign" class="selection-bar">
                <input type="hidden" name="org" value=org.id.clone()/>
                <button type="submit" class="button">"Assign selected…"</button>
                {assign_all.map(|href| view! {
                    <a class="button-link" href=href rel="external">
                        {format!("Assign all {} matching…", thousands(total))}
                    </a>
                })}
            </form>
        })}
        {(!rows.is_empty()).then(move || view! {
            <div class="table-scroll">
                <table class="data-table device-table">
                    <caption class="sr-only">"Devices"</caption>
                    <thead>
                        <tr>
                            {may_assign.then(|| view! { <th scope="col"><span class="sr-only">"Select"</span></th> })}
                            <th scope="col">"Serial number"</th>
                            <th scope="col">"Model"</th>
                            <th scope="col">"Family"</th>
                            <th scope="col">"Status"</th>
                            <th scope="col">"Service"</th>
                            <th scope="col">"Added"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {rows.into_iter().map(move |row| device_row(&org_id, row, may_assign)).collect_view()}
                    </tbody>
                </table>
            </div>
        })}
        <nav class="pager" aria-label="Device list pages">
            {first_page.map(|href| view! { <a href=href>"First page"</a> })}
            {next_page.map(|href| view! { <a href=href rel="next">"Next page"</a> })}
        </nav>
    }
}

fn device_row(org: &str, row: DeviceRow, selectable: bool) -> impl IntoView + use<> {
    let href = format!(
        "/devices/{}?org={}",
        query_escape(&row.serial),
        query_escape(org)
    );
    let status = match (row.absent_since, row.status.as_deref()) {
        (Some(at), _) => format!("Released {}", day(at)),
        (None, Some("ASSIGNED")) => "Assigned".to_owned(),
        (None, Some("UNASSIGNED")) => "Unassigned".to_owned(),
        (None, other) => other.unwrap_or("—").to_owned(),
    };
    let serial = row.serial.clone();
    let select = selectable.then(|| {
        let label = format!("Select {}", row.serial);
        view! {
            <td class="select">
                <input
                    type="checkbox"
                    name="serials"
                    value=row.serial.clone()
                    form="assign-selection"
                    aria-label=label
                />
            </td>
        }
    });
    view! {
        <tr data-serial=serial>
            {select}
            <th scope="row" class="mono"><A href=href>{row.serial}</A></th>
            <td>{row.model.unwrap_or_default()}</td>
            <td>{row.family.unwrap_or_default()}</td>
            <td>{status}</td>
            <td>{row.service_name.or(row.service_id).unwrap_or_else(|| "—".to_owned())}</td>
            <td>{row.added_at.map(day).unwrap_or_default()}</td>
        </tr>
    }
}

/// The search box and filters: a GET form that also drives the list while typing.
#[component]
fn SearchForm(choices: DeviceFilterChoices) -> impl IntoView {
    let DeviceFilterChoices {
        org,
        services,
        models,
    } = choices;
    let org = org.id;
    let query = use_query_map();
    let value = move |name: &str| query.with_untracked(|q| q.get(name).unwrap_or_default());
    let families: Vec<String> = query.with_untracked(|q| q.get_all("family").unwrap_or_default());
    let chosen = |current: &str, v: &str| current == v;
    let status = value("status");
    let service = value("service");
    let sort = value("sort");
    let model = value("model");
    let source = value("source");
    let applecare = value("applecare");
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(v, label)| ((*v).to_owned(), (*label).to_owned()))
            .collect()
    };
    let statuses = pairs(&[("assigned", "Assigned"), ("unassigned", "Unassigned")]);
    let services: Vec<(String, String)> =
        std::iter::once(("none".to_owned(), "No service".to_owned()))
            .chain(services.into_iter().map(|s| (s.id, s.name)))
            .collect();
    let models: Vec<(String, String)> = models.into_iter().map(|m| (m.clone(), m)).collect();
    let sources = pairs(&PURCHASE_SOURCES);
    let applecare_states = pairs(&APPLECARE_STATES);
    let input = NodeRef::<leptos::html::Input>::new();
    let form = NodeRef::<leptos::html::Form>::new();
    follow_typing(input, form);
    view! {
        <form method="get" action="/devices" node_ref=form class="filter-bar device-search" role="search">
            <input type="hidden" name="org" value=org.clone()/>
            <div class="form-field search-field">
                <label for="device-q">"Serial number, model, order number, IMEI…"</label>
                <input
                    id="device-q"
                    name="q"
                    type="search"
                    autocomplete="off"
                    spellcheck="false"
                    autofocus
                    aria-keyshortcuts="/"
                    node_ref=input
                    value=value("q")
                />
            </div>
            <fieldset class="form-field family-filter">
                <legend>"Product family"</legend>
                {FAMILIES
                    .iter()
                    .map(|f| {
                        let checked = families.iter().any(|c| c == f);
                        let id = format!("family-{}", f.to_lowercase());
                        let label_for = id.clone();
                        view! {
                            <label for=label_for class="check">
                                <input id=id type="checkbox" name="family" value=*f checked=checked/>
                                {*f}
                            </label>
                        }
                    })
                    .collect_view()}
            </fieldset>
            <FilterSelect id="device-status" name="status" label="Status" choices=statuses current=status/>
            <FilterSelect id="device-service" name="service" label="Service" choices=services current=service/>
            <FilterSelect id="device-model" name="model" label="Model" choices=models current=model/>
            <FilterSelect id="device-source" name="source" label="Purchase source" choices=sources current=source/>
            <FilterSelect id="device-applecare" name="applecare" label="AppleCare" choices=applecare_states current=applecare/>
            <div class="form-field">
                <label for="device-added-from">"Added from"</label>
                <input id="device-added-from" type="date" name="added_from" value=value("added_from")/>
            </div>
            <div class="form-field">
                <label for="device-added-to">"Added until"</label>
                <input id="device-added-to" type="date" name="added_to" value=value("added_to")/>
            </div>
            <div class="form-field">
                <label for="device-sort">"Order"</label>
                <select id="device-sort" name="sort">
                    {SORTS
                        .iter()
                        .map(|(v, label)| {
                            let selected = chosen(&sort, v) || (sort.is_empty() && *v == "serial");
                            view! { <option value=*v selected=selected>{*label}</option> }
                        })
                        .collect_view()}
                </select>
            </div>
            <div class="form-actions">
                <button type="submit">"Search"</button>
                // A full load: the form's fields start over too.
                <a href=format!("/devices?org={}", query_escape(&org)) rel="external">"Clear"</a>
            </div>
        </form>
    }
}

/// A filter's `<select>`: "Any", then `choices` (value, label). A value from the URL that
/// the choices lack (a released model, an older link) is offered too, so submitting the
/// form keeps the filter the list shows.
#[component]
fn FilterSelect(
    id: &'static str,
    name: &'static str,
    label: &'static str,
    mut choices: Vec<(String, String)>,
    current: String,
) -> impl IntoView {
    if !current.is_empty() && !choices.iter().any(|(v, _)| *v == current) {
        choices.push((current.clone(), current.clone()));
    }
    view! {
        <div class="form-field">
            <label for=id>{label}</label>
            <select id=id name=name>
                <option value="">"Any"</option>
                {choices
                    .into_iter()
                    .map(|(value, text)| {
                        let selected = value == current;
                        view! { <option value=value selected=selected>{text}</option> }
                    })
                    .collect_view()}
            </select>
        </div>
    }
}

/// With JavaScript: the list follows the search box and the dates after a pause in typing,
/// and the other filters as soon as they change; "/" focuses the search box. Without it the
/// form's button submits.
#[cfg(feature = "hydrate")]
fn follow_typing(input: NodeRef<leptos::html::Input>, form: NodeRef<leptos::html::Form>) {
    use leptos::ev;
    use leptos_router::NavigateOptions;
    use leptos_router::hooks::use_navigate;
    use wasm_bindgen::JsCast as _;

    let navigate = use_navigate();
    let pending = StoredValue::new(None::<TimeoutHandle>);
    // The URL of the form as it stands, minus the page cursor (a new search starts over).
    let form_url = move || -> Option<String> {
        let form = form.get_untracked()?;
        let data = web_sys::FormData::new_with_form(&form).ok()?;
        let mut params = Vec::new();
        let entries = js_sys::try_iter(&data).ok()??;
        for entry in entries.flatten() {
            let pair: js_sys::Array = entry.unchecked_into();
            let name = pair.get(0).as_string().unwrap_or_default();
            let value = pair.get(1).as_string().unwrap_or_default();
            if !value.is_empty() {
                params.push((name, value));
            }
        }
        Some(format!("/devices?{}", query_string(&params)))
    };
    let go = move || {
        if let Some(url) = form_url() {
            navigate(
                &url,
                NavigateOptions {
                    replace: true,
                    scroll: false,
                    ..NavigateOptions::default()
                },
            );
        }
    };
    // After a pause: typing, and dates (which change with each digit of the year).
    let after_pause = {
        let go = go.clone();
        move || {
            if let Some(handle) = pending.get_value() {
                handle.clear();
            }
            pending.set_value(set_timeout_with_handle(go.clone(), TYPING_PAUSE).ok());
        }
    };
    let typing = after_pause.clone();
    Effect::new(move |_| {
        let Some(field) = input.get() else { return };
        let typing = typing.clone();
        let on_input = wasm_bindgen::closure::Closure::<dyn Fn(web_sys::Event)>::new(
            move |_: web_sys::Event| typing(),
        );
        let _ = field.add_event_listener_with_callback("input", on_input.as_ref().unchecked_ref());
        on_input.forget();
    });
    Effect::new(move |_| {
        let Some(form) = form.get() else { return };
        let go_changed = go.clone();
        let after_pause = after_pause.clone();
        let changed = wasm_bindgen::closure::Closure::<dyn Fn(web_sys::Event)>::new(
            move |event: web_sys::Event| {
                let kind = event
                    .target()
                    .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
                    .map(|i| i.type_());
                match kind.as_deref() {
                    // The search box follows its `input` events.
                    Some("search") => {}
                    Some("date") => after_pause(),
                    _ => go_changed(),
                }
            },
        );
        let _ = form.add_event_listener_with_callback("change", changed.as_ref().unchecked_ref());
        changed.forget();
        // Enter or the button: the same navigation, without a full page load.
        let go = go.clone();
        let submitted = wasm_bindgen::closure::Closure::<dyn Fn(web_sys::Event)>::new(
            move |event: web_sys::Event| {
                event.prevent_default();
                go();
            },
        );
        let _ = form.add_event_listener_with_callback("submit", submitted.as_ref().unchecked_ref());
        submitted.forget();
    });
    let handle = window_event_listener(ev::keydown, move |event| {
        if event.key() != "/" || event.ctrl_key() || event.meta_key() || event.alt_key() {
            return;
        }
        let typing = event
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .is_some_and(|e| matches!(e.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"));
        if typing {
            return;
        }
        if let Some(field) = input.get_untracked() {
            event.prevent_default();
            let _ = field.focus();
            field.select();
        }
    });
    on_cleanup(move || handle.remove());
}

#[cfg(not(feature = "hydrate"))]
fn follow_typing(_: NodeRef<leptos::html::Input>, _: NodeRef<leptos::html::Form>) {}

#[component]
pub fn DevicePage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let device = Resource::new(
        move || {
            (
                query.with(|q| q.get("org")),
                params.with(|p| p.get("serial").unwrap_or_default()),
            )
        },
        |(org, serial)| get_device(org, serial),
    );
    provide_context(ReloadDevice(device));
    let failed = ErrorInPlace::here();
    view! {
        <Title text="Device · Orchard"/>
        // A transition: reloading after "Refresh from Apple" keeps the page in view.
        <Transition fallback=|| view! { <p class="status-line">"Loading the device…"</p> }>
            {move || {
                device.get().map(|result| match result {
                    Ok(device) => view! { <DeviceView device/> }.into_any(),
                    Err(error) => {
                        let serial = params.with(|p| p.get("serial").unwrap_or_default());
                        view! {
                            <p class="breadcrumb"><a href="/devices">"Devices"</a></p>
                            <h1 class="mono">{serial}</h1>
                            {failed.render(error)}
                        }
                            .into_any()
                    }
                })
            }}
        </Transition>
    }
}

/// Loads the device page's record again (after "Refresh from Apple" changed it).
#[derive(Clone, Copy)]
struct ReloadDevice(
    #[cfg_attr(
        not(feature = "hydrate"),
        allow(dead_code, reason = "read by the browser only")
    )]
    Resource<Result<DeviceDetail, AppError>>,
);

#[component]
fn DeviceView(device: DeviceDetail) -> impl IntoView {
    let DeviceDetail {
        org,
        serial,
        model,
        family,
        status,
        service_id,
        service_name,
        absent_since,
        attributes,
        first_seen_at,
        changed_at,
        freshness,
        coverage,
        history,
        blueprints,
        apple_events,
    } = device;
    let back = format!("/devices?org={}", query_escape(&org.id));
    let assignment = match (status.as_deref(), service_id) {
        (_, Some(id)) => {
            let href = format!(
                "/devices?org={}&service={}",
                query_escape(&org.id),
                query_escape(&id)
            );
            let name = service_name.unwrap_or_else(|| id.clone());
            view! { <span>"Assigned to " <a href=href>{name}</a></span> }.into_any()
        }
        (Some("ASSIGNED"), None) => {
            view! { <span>"Assigned (service not synced yet)"</span> }.into_any()
        }
        _ => view! { <span>"Not assigned to a device management service"</span> }.into_any(),
    };
    view! {
        <Title text=format!("{serial} · Devices · Orchard")/>
        <p class="breadcrumb"><a href=back>"Devices"</a></p>
        <h1 class="mono">{serial.clone()}</h1>
        <p class="lede">
            {[model, family].into_iter().flatten().collect::<Vec<_>>().join(" · ")}
        </p>
        {absent_since.map(|at| view! {
            <p class="notice" role="status">
                {format!("Apple no longer returns this device (released from the organization) since {}.", day(at))}
            </p>
        })}
        <p data-testid="assignment">{assignment}</p>
        <p data-testid="blueprints">
            {if blueprints.is_empty() {
                "In no Blueprint".to_owned()
            } else {
                let names = blueprints.into_iter().map(|b| b.name).collect::<Vec<_>>();
                let label = if names.len() == 1 { "Blueprint: " } else { "Blueprints: " };
                format!("{label}{}", names.join(", "))
            }}
        </p>
        <dl class="attributes">
            {attributes
                .into_iter()
                .map(|(label, value)| view! { <dt>{label}</dt> <dd>{value}</dd> })
                .collect_view()}
            <dt>"First seen by Orchard"</dt>
            <dd>{day(first_seen_at)}</dd>
            <dt>"Last changed in Orchard's copy"</dt>
            <dd>{day(changed_at)}</dd>
        </dl>
        <p class="status-line">{freshness_line(&freshness)}</p>
        <CoverageSection org=org.id.clone() serial initial=coverage/>
        {history.map(|history| view! { <HistoryView history org=org.id/> })}
        {apple_events.map(|events| view! { <AppleEventsView events/> })}
    }
}

/// Apple's audit events about the device (for those who may read the audit), as mirrored.
#[component]
fn AppleEventsView(events: Vec<AppleEvent>) -> impl IntoView {
    view! {
        <section aria-labelledby="apple-events-heading">
            <h2 id="apple-events-heading">"Apple's record of this device"</h2>
            {if events.is_empty() {
                view! {
                    <p>"Apple's audit holds no event about this device in the synced period."</p>
                }
                    .into_any()
            } else {
                view! {
                    <div class="table-scroll">
                        <table class="data-table" data-testid="apple-events">
                            <caption class="sr-only">"Apple's audit events about this device"</caption>
                            <thead>
                                <tr>
                                    <th scope="col">"When"</th>
                                    <th scope="col">"What"</th>
                                    <th scope="col">"By"</th>
                                </tr>
                            </thead>
                            <tbody>
                                {events
                                    .into_iter()
                                    .map(|e| {
                                        let what = if e.failed {
                                            format!("{} (failed)", e.what)
                                        } else {
                                            e.what
                                        };
                                        view! {
                                            <tr>
                                                <td>{day(e.at)}</td>
                                                <td>{what}</td>
                                                <td>{e.by}</td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()}
                            </tbody>
                        </table>
                    </div>
                }
                    .into_any()
            }}
        </section>
    }
}

/// The jobs that included the device (for those who may read the audit).
#[component]
fn HistoryView(history: DeviceHistory, org: String) -> impl IntoView {
    let DeviceHistory {
        jobs,
        may_open,
        now,
    } = history;
    let org_q = query_escape(&org);
    view! {
        <section aria-labelledby="history-heading">
            <h2 id="history-heading">"Changes made through Orchard"</h2>
            {if jobs.is_empty() {
                view! { <p>"No job of Orchard's has included this device."</p> }.into_any()
            } else {
                view! {
                    <div class="table-scroll">
                        <table class="data-table" data-testid="device-jobs">
                            <caption class="sr-only">"Jobs that included this device"</caption>
                            <thead>
                                <tr>
                                    <th scope="col">"Job"</th>
                                    <th scope="col">"What"</th>
                                    <th scope="col">"Started by"</th>
                                    <th scope="col">"When"</th>
                                    <th scope="col">"Job status"</th>
                                    <th scope="col">"This device"</th>
                                </tr>
                            </thead>
                            <tbody>
                                {jobs
                                    .into_iter()
                                    .map(|line| {
                                        let id = format!("#{}", line.job.id);
                                        let job = if may_open {
                                            let href = format!("/jobs/{}?org={org_q}", line.job.id);
                                            view! { <a href=href>{id}</a> }.into_any()
                                        } else {
                                            id.into_any()
                                        };
                                        let result = match line.reason {
                                            Some(reason) => format!("{}: {reason}", outcome_label(&line.outcome)),
                                            None => outcome_label(&line.outcome).to_owned(),
                                        };
                                        view! {
                                            <tr data-job=line.job.id>
                                                <th scope="row">{job}</th>
                                                <td>{line.job.action}</td>
                                                <td>{line.job.created_by}</td>
                                                <td>{ago(line.job.created_at, now)}</td>
                                                <td>{status_label(&line.job.status)}</td>
                                                <td>{result}</td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()}
                            </tbody>
                        </table>
                    </div>
                }
                    .into_any()
            }}
        </section>
    }
}

/// AppleCare coverage and Activation Lock. The page renders what Orchard has cached (it
/// never waits for Apple); in the browser, a missing or old answer is then asked of Apple.
/// "Refresh from Apple" asks again (without JavaScript too: a plain form post).
#[component]
fn CoverageSection(org: String, serial: String, initial: DeviceCoverage) -> impl IntoView {
    let refresh = ServerAction::<RefreshDeviceCoverage>::new();
    let shown = RwSignal::new(initial);
    let asking = RwSignal::new(false);
    #[cfg(feature = "hydrate")]
    {
        use crate::api::get_device_coverage;

        if shown.with_untracked(|c| c.stale && c.problem.is_none()) {
            let (org, serial) = (org.clone(), serial.clone());
            // Runs after hydration, so the first render matches the server's.
            leptos::task::spawn_local(async move {
                asking.set(true);
                let answer = get_device_coverage(Some(org), serial, true).await;
                asking.set(false);
                match answer {
                    Ok(coverage) => shown.set(coverage),
                    Err(error) => shown.update(|c| c.problem = Some(explain(&error))),
                }
            });
        }
        let reload = use_context::<ReloadDevice>();
        Effect::new(move |_| match refresh.value().get() {
            Some(Ok(coverage)) => {
                // The record, its service or Apple's events changed: show them.
                let reload = reload.filter(|_| coverage.record_changed);
                shown.set(coverage);
                if let Some(ReloadDevice(device)) = reload {
                    device.refetch();
                }
            }
            Some(Err(error)) => shown.update(|c| c.problem = Some(explain(&error))),
            None => {}
        });
    }
    view! {
        <section class="coverage" aria-labelledby="coverage-heading">
            <h2 id="coverage-heading">"AppleCare and Activation Lock"</h2>
            {move || {
                let (org, serial) = (org.clone(), serial.clone());
                view! { <CoverageView coverage=shown.get() asking refresh org serial/> }
            }}
        </section>
    }
}

#[component]
fn CoverageView(
    coverage: DeviceCoverage,
    asking: RwSignal<bool>,
    refresh: ServerAction<RefreshDeviceCoverage>,
    org: String,
    serial: String,
) -> impl IntoView {
    let DeviceCoverage {
        facts,
        problem,
        stale,
        may_refresh,
        now,
        record_changed: _,
    } = coverage;
    let fetched_at = facts.as_ref().map(|f| f.fetched_at);
    let again = stale && problem.is_none();
    let status = move || match fetched_at {
        Some(at) if again && asking.get() => {
            format!("From Apple {}; asking Apple again…", ago(at, now))
        }
        Some(at) => format!("From Apple {}.", ago(at, now)),
        None if again && asking.get() => "Asking Apple…".to_owned(),
        None => "Not fetched from Apple yet.".to_owned(),
    };
    view! {
        <p class="status-line" data-testid="coverage-status">{status}</p>
        {problem.map(|p| view! { <p class="notice" role="status">{p}</p> })}
        {facts.map(|f| view! { <CoverageFactsView facts=f/> })}
        {may_refresh.then(|| view! {
            <ActionForm action=refresh>
                <input type="hidden" name="org" value=org/>
                <input type="hidden" name="serial" value=serial/>
                <button type="submit" class="secondary">"Refresh from Apple"</button>
            </ActionForm>
        })}
    }
}

#[component]
fn CoverageFactsView(facts: CoverageFacts) -> impl IntoView {
    let lock = match facts.lock {
        LockState::Locked { lock_type } => match lock_type.as_deref() {
            Some("MDM") => "On (set by the device management service)".to_owned(),
            Some("USER") => "On (set by the device's user)".to_owned(),
            _ => "On".to_owned(),
        },
        LockState::NotLocked => "Off".to_owned(),
        LockState::Unavailable { reason } => format!("Apple could not report it ({reason})"),
    };
    view! {
        <dl class="attributes">
            <dt>"Activation Lock"</dt>
            <dd data-testid="activation-lock">{lock}</dd>
        </dl>
        {if facts.coverage.is_empty() {
            view! { <p>"Apple lists no coverage for this device."</p> }.into_any()
        } else {
            view! {
                <div class="table-scroll">
                    <table class="data-table" data-testid="coverage">
                        <caption class="sr-only">"AppleCare coverage"</caption>
                        <thead>
                            <tr>
                                <th scope="col">"Coverage"</th>
                                <th scope="col">"Status"</th>
                                <th scope="col">"Payment"</th>
                                <th scope="col">"Agreement"</th>
                                <th scope="col">"From"</th>
                                <th scope="col">"Until"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {facts
                                .coverage
                                .into_iter()
                                .map(|c| {
                                    let status = match (c.status.as_deref(), c.canceled) {
                                        (_, true) => "Canceled",
                                        (Some("ACTIVE"), _) => "Active",
                                        (Some("INACTIVE"), _) => "Inactive",
                                        _ => "Unknown",
                                    };
                                    view! {
                                        <tr>
                                            <th scope="row">{c.description}</th>
                                            <td>{status}</td>
                                            <td>{c.payment_type.as_deref().map(payment_label).map(str::to_owned)}</td>
                                            <td class="mono">{c.agreement_number}</td>
                                            <td>{c.starts_at.map(day)}</td>
                                            <td>{c.ends_at.map(day)}</td>
                                        </tr>
                                    }
                                })
                                .collect_view()}
                        </tbody>
                    </table>
                </div>
            }
                .into_any()
        }}
    }
}

#[component]
pub fn ServicesPage() -> impl IntoView {
    let query = use_query_map();
    let list = Resource::new(move || query.with(|q| q.get("org")), list_services);
    let failed = ErrorInPlace::here();
    view! {
        <Title text="Device management services · Orchard"/>
        <h1>"Device management services"</h1>
        <Suspense fallback=|| view! { <p class="status-line">"Loading services…"</p> }>
            {move || {
                list.get().map(|result| match result {
                    Ok(list) => view! { <ServicesView list/> }.into_any(),
                    Err(error) => failed.render(error).into_any(),
                })
            }}
        </Suspense>
    }
}

#[component]
fn ServicesView(list: ServiceList) -> impl IntoView {
    let ServiceList {
        org,
        rows,
        freshness,
    } = list;
    let devices_of = {
        let org = org.id.clone();
        move |service: &str| {
            format!(
                "/devices?org={}&service={}",
                query_escape(&org),
                query_escape(service)
            )
        }
    };
    let unassigned = devices_of("none");
    view! {
        <p class="lede">{org.name.clone()} " · " {freshness_line(&freshness)}</p>
        {if rows.is_empty() {
            view! { <p class="notice">"No device management services are mirrored yet."</p> }.into_any()
        } else {
            view! {
                <div class="table-scroll">
                    <table class="data-table">
                        <caption class="sr-only">"Device management services"</caption>
                        <thead>
                            <tr>
                                <th scope="col">"Service"</th>
                                <th scope="col">"Type"</th>
                                <th scope="col">"Default product families"</th>
                                <th scope="col" class="numeric">"Devices"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {rows
                                .into_iter()
                                .map(|s| {
                                    let href = devices_of(&s.id);
                                    let name = match s.absent_since {
                                        Some(at) => format!("{} (removed {})", s.name, day(at)),
                                        None => s.name,
                                    };
                                    view! {
                                        <tr>
                                            <th scope="row">{name}</th>
                                            <td>{s.server_type.unwrap_or_default()}</td>
                                            <td>{s.default_families.unwrap_or_default()}</td>
                                            <td class="numeric"><a href=href>{thousands(s.device_count)}</a></td>
                                        </tr>
                                    }
                                })
                                .collect_view()}
                        </tbody>
                    </table>
                </div>
            }
                .into_any()
        }}
        <p><a href=unassigned>"Devices in no service"</a></p>
    }
}
