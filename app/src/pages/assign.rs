//! The bulk-assignment wizard, steps 1 to 3, for admins and operators:
//!
//! * `/assign`: choose the devices: paste serial numbers or a CSV file (with JavaScript, also
//!   read from a file), or take the devices handed over from the Devices page (`serials=`, a
//!   selection; `filter=`, every device of a filter). Continuing stores a draft.
//! * `/assign/:draft`: the same step for a draft: change the devices, choose the CSV column.
//! * `/assign/:draft/action`: choose what happens: assign to a service, unassign, and the
//!   migration variants where the mirror knows migration fields.
//! * `/assign/:draft/preview`: what would happen to every entry, computed from the mirror, in
//!   groups with counts, the full list in pages, and a CSV download. Nothing is sent.
//! * `/assign/:draft/confirm`: step 4, in [`super::jobs`] with the job pages.
//!
//! Every step is a page with a real form posted to a server function, so the wizard works
//! without JavaScript; the draft holds the state between steps, across reloads.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::{
    ChooseAction, SaveDevices, TakeFilteredDevices, get_action_choices, get_assign_start,
    get_draft_input, get_preview,
};
use crate::components::fields::{explain, failure};
use crate::error::AppError;
use crate::model::assign::{
    ActionChoices, AssignStart, ColumnChoice, DraftInputView, InputSummary, PreviewView,
};
use crate::model::devices::{freshness_line, thousands};
use crate::model::query_escape;
use crate::pages::error::ErrorInPlace;

/// Largest file read into the text area, in bytes (the server's limit).
const MAX_FILE_BYTES: f64 = 12.0 * 1024.0 * 1024.0;

/// The wizard's steps, for the step list.
const STEPS: [&str; 6] = [
    "Choose devices",
    "Choose the action",
    "Preview",
    "Confirm",
    "Progress",
    "Results",
];

/// The list of steps, `current` (1-based) marked.
#[component]
fn Steps(current: usize) -> impl IntoView {
    view! {
        <ol class="wizard-steps" aria-label="Steps">
            {STEPS
                .iter()
                .enumerate()
                .map(|(i, label)| {
                    let here = i + 1 == current;
                    view! {
                        <li class:current=here class:done=i + 1 < current aria-current=here.then_some("step")>
                            {*label}
                        </li>
                    }
                })
                .collect_view()}
        </ol>
    }
}

/// The heading and step list every wizard page starts with.
#[component]
pub(crate) fn WizardHead(step: usize) -> impl IntoView {
    view! {
        <Title text=format!("{} · Assign devices · Orchard", STEPS[step - 1])/>
        <h1>"Assign devices"</h1>
        <Steps current=step/>
    }
}

/// A table's header row of `columns` (`numeric` ones right-aligned).
fn head_row(columns: &[(&'static str, bool)]) -> impl IntoView + use<> {
    let cells = columns
        .iter()
        .map(|(label, numeric)| view! { <th scope="col" class:numeric=*numeric>{*label}</th> })
        .collect_view();
    view! { <thead><tr>{cells}</tr></thead> }
}

/// The draft id of the current route.
pub(crate) fn draft_param() -> Memo<String> {
    let params = use_params_map();
    Memo::new(move |_| params.read().get("draft").unwrap_or_default())
}

/// "112 entries: 100 serial numbers, 5 duplicates, 7 not serial numbers".
fn summary_line(s: &InputSummary) -> String {
    let mut parts = vec![format!(
        "{} serial number{}",
        thousands(s.serials),
        if s.serials == 1 { "" } else { "s" }
    )];
    if s.duplicates > 0 {
        parts.push(format!("{} repeated", thousands(s.duplicates)));
    }
    if s.malformed > 0 {
        parts.push(format!("{} not serial numbers", thousands(s.malformed)));
    }
    format!(
        "{} entries: {} · {}",
        thousands(s.entries),
        parts.join(", "),
        s.source
    )
}

#[component]
pub fn AssignPage() -> impl IntoView {
    let query = use_query_map();
    let start = Resource::new(
        move || {
            query.with(|q| {
                (
                    q.get("org"),
                    q.get_all("serials").unwrap_or_default().join(","),
                    q.get("filter"),
                )
            })
        },
        |(org, serials, filter)| get_assign_start(org, serials, filter),
    );
    let failed = ErrorInPlace::here();
    view! {
        <WizardHead step=1/>
        <Suspense fallback=|| view! { <p class="status-line">"Loading…"</p> }>
            {move || {
                let failed = failed.clone();
                Suspend::new(async move {
                    match start.await {
                        Ok(start) => view! { <StartView start/> }.into_any(),
                        Err(error) => failed.render(error).into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

#[component]
fn StartView(start: AssignStart) -> impl IntoView {
    let AssignStart {
        org,
        prefill,
        filter,
        freshness,
    } = start;
    let origin = (!prefill.is_empty()).then(|| "selection".to_owned());
    let take = ServerAction::<TakeFilteredDevices>::new();
    let take_error = failure(take);
    let org_id = org.id.clone();
    view! {
        <p class="lede">{org.name.clone()} " · " {freshness_line(&freshness)}</p>
        {filter.map(|offer| {
            let org_id = org_id.clone();
            view! {
                <section class="wizard-section" aria-labelledby="filter-heading">
                    <h2 id="filter-heading">"Devices of a filter"</h2>
                    <p data-testid="filter-offer">
                        {format!("{} devices match {}.", thousands(offer.total), offer.description)}
                    </p>
                    {if offer.too_many {
                        view! {
                            <p class="notice" role="status">
                                "One run takes at most 50,000 devices. Narrow the filter on the Devices page."
                            </p>
                        }
                            .into_any()
                    } else {
                        view! {
                            <ActionForm action=take>
                                <input type="hidden" name="org" value=org_id/>
                                <input type="hidden" name="filter" value=offer.query/>
                                <button type="submit" class="button primary">
                                    {format!("Use these {} devices", thousands(offer.total))}
                                </button>
                            </ActionForm>
                        }
                            .into_any()
                    }}
                    <p class="form-error" role="alert">{move || take_error.get().map(|e| explain(&e))}</p>
                    <p>"Or give the devices below instead."</p>
                </section>
            }
        })}
        <DevicesForm
            org=org.id
            draft=None
            text=prefill
            format="detect".to_owned()
            columns=Vec::new()
            column=None
            origin
        />
    }
}

/// Step 1's form: the text area (pasted serials or CSV), how to read it, the CSV column.
#[component]
fn DevicesForm(
    org: String,
    draft: Option<String>,
    text: String,
    format: String,
    columns: Vec<ColumnChoice>,
    column: Option<u32>,
    origin: Option<String>,
) -> impl IntoView {
    let save = ServerAction::<SaveDevices>::new();
    let error = failure(save);
    let field = move |name: &'static str| {
        Signal::derive(move || error.with(|e| e.as_ref().and_then(|e| e.field_message(name))))
    };
    let text_error = field("text");
    let column_error = field("column");
    let form_error = Signal::derive(move || {
        error.with(|e| match e {
            Some(AppError::Validation { .. }) | None => None,
            Some(other) => Some(other.to_string()),
        })
    });
    let area = NodeRef::<leptos::html::Textarea>::new();
    let csv_choice = NodeRef::<leptos::html::Input>::new();
    let interactive = RwSignal::new(false);
    Effect::new(move |_| interactive.set(true));
    let file_note = RwSignal::new(None::<String>);
    let read_file = move |ev: leptos::ev::Event| {
        crate::components::file_text::read_chosen_file(ev, MAX_FILE_BYTES, move |read| {
            file_note.set(Some(match read {
                Ok((name, text)) => {
                    crate::components::file_text::set_text(area, &text);
                    if name.to_ascii_lowercase().ends_with(".csv")
                        && let Some(csv) = csv_choice.get_untracked()
                    {
                        csv.set_checked(true);
                    }
                    format!("Read {name} into the box above.")
                }
                Err(message) => message,
            }));
        });
    };
    let described_by = move || {
        if text_error.with(Option::is_some) {
            "assign-text-hint assign-text-error"
        } else {
            "assign-text-hint"
        }
    };
    let formats = [
        ("detect", "Find out from the text"),
        ("serials", "Serial numbers, any separators"),
        ("csv", "CSV with columns (choose the column below)"),
    ];
    view! {
        <ActionForm action=save attr:class="wizard-form" attr:id="devices-form">
            <input type="hidden" name="org" value=org/>
            {draft.map(|d| view! { <input type="hidden" name="draft" value=d/> })}
            {origin.map(|o| view! { <input type="hidden" name="origin" value=o/> })}
            <div class="field">
                <label for="assign-text">"Serial numbers or a CSV file"</label>
                <p class="field-hint" id="assign-text-hint">
                    "One per line, or separated by commas, semicolons, tabs or spaces, in upper or \
                     lower case; repeats and typos are shown in the preview, never sent. A CSV file \
                     (from a spreadsheet, or Orchard's device export) can be pasted whole: its serial \
                     number column is found from the header."
                </p>
                <textarea
                    id="assign-text"
                    name="text"
                    node_ref=area
                    rows="12"
                    class="mono"
                    spellcheck="false"
                    autocomplete="off"
                    aria-describedby=described_by
                    aria-invalid=move || text_error.with(Option::is_some).then_some("true")
                >
                    {text}
                </textarea>
                <Show when=move || interactive.get()>
                    <div class="file-pick">
                        <label for="assign-file">"Or read a CSV or text file"</label>
                        <input
                            id="assign-file"
                            type="file"
                            accept=".csv,.txt,.tsv,text/csv,text/plain"
                            on:change=read_file
                        />
                        <p class="field-hint" role="status">{move || file_note.get()}</p>
                    </div>
                </Show>
                <p class="field-error" id="assign-text-error" hidden=move || text_error.with(Option::is_none)>
                    {text_error}
                </p>
            </div>
            <fieldset class="field choices">
                <legend>"Read it as"</legend>
                {formats
                    .into_iter()
                    .map(|(value, label)| {
                        let id = format!("assign-format-{value}");
                        let checked = value == format || (format.is_empty() && value == "detect");
                        let node = if value == "csv" { Some(csv_choice) } else { None };
                        let input = match node {
                            Some(node) => view! {
                                <input type="radio" id=id.clone() name="format" value=value checked=checked node_ref=node/>
                            }
                                .into_any(),
                            None => view! {
                                <input type="radio" id=id.clone() name="format" value=value checked=checked/>
                            }
                                .into_any(),
                        };
                        view! { <label for=format!("assign-format-{value}") class="check">{input} {label}</label> }
                    })
                    .collect_view()}
            </fieldset>
            {(!columns.is_empty())
                .then(|| {
                    view! {
                        <div class="field">
                            <label for="assign-column">"Column with the serial numbers"</label>
                            <select id="assign-column" name="column">
                                <option value="">"Find it from the header and values"</option>
                                {columns
                                    .into_iter()
                                    .map(|c| {
                                        let selected = Some(c.number) == column;
                                        view! { <option value=c.number.to_string() selected=selected>{c.label}</option> }
                                    })
                                    .collect_view()}
                            </select>
                            <p class="field-error" hidden=move || column_error.with(Option::is_none)>{column_error}</p>
                        </div>
                    }
                })}
            <div class="form-actions">
                <button type="submit" class="button primary" disabled=move || save.pending().get()>
                    {move || if save.pending().get() { "Reading…" } else { "Continue" }}
                </button>
            </div>
            <p class="form-error" role="alert">{form_error}</p>
        </ActionForm>
    }
}

#[component]
pub fn DraftInputPage() -> impl IntoView {
    let draft = draft_param();
    let data = Resource::new(move || draft.get(), get_draft_input);
    let failed = ErrorInPlace::here();
    view! {
        <WizardHead step=1/>
        <Suspense fallback=|| view! { <p class="status-line">"Loading the draft…"</p> }>
            {move || {
                let failed = failed.clone();
                Suspend::new(async move {
                    match data.await {
                        Ok(view) => view! { <DraftInputBody view/> }.into_any(),
                        Err(error) => failed.render(error).into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

#[component]
fn DraftInputBody(view: DraftInputView) -> impl IntoView {
    let DraftInputView {
        draft,
        org,
        format,
        text,
        label: _,
        columns,
        column,
        summary,
        error,
    } = view;
    let next = format!("/assign/{draft}/action");
    view! {
        <p class="lede">{org.name.clone()}</p>
        {error.map(|message| view! {
            <p class="form-error banner" role="alert" data-testid="input-error">
                {format!("The devices cannot be read: {message} Fix the text or choose the column below.")}
            </p>
        })}
        {summary.map(|s| view! {
            <p data-testid="input-summary">
                {summary_line(&s)} " · " <a href=next>"Keep these and choose the action"</a>
            </p>
        })}
        <DevicesForm org=org.id draft=Some(draft) text format columns column origin=None/>
    }
}

#[component]
pub fn ActionPage() -> impl IntoView {
    let draft = draft_param();
    let data = Resource::new(move || draft.get(), get_action_choices);
    let failed = ErrorInPlace::here();
    view! {
        <WizardHead step=2/>
        <Suspense fallback=|| view! { <p class="status-line">"Loading…"</p> }>
            {move || {
                let failed = failed.clone();
                Suspend::new(async move {
                    match data.await {
                        Ok(choices) => view! { <ActionView choices/> }.into_any(),
                        Err(error) => failed.render(error).into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

/// The actions, by `JobAction::kind` name, and whether they need a service / a deadline.
const ACTIONS: [(&str, &str, bool, bool, bool); 5] = [
    (
        "assign",
        "Assign to a device management service",
        true,
        false,
        false,
    ),
    (
        "unassign",
        "Unassign from a device management service",
        true,
        false,
        false,
    ),
    (
        "assign_with_migration_deadline",
        "Assign, and migrate without erase by a deadline",
        true,
        true,
        true,
    ),
    (
        "update_migration_deadline",
        "Move the deadline of a migration in progress",
        false,
        true,
        true,
    ),
    (
        "cancel_migration",
        "Cancel a migration in progress",
        false,
        false,
        true,
    ),
];

#[component]
fn ActionView(choices: ActionChoices) -> impl IntoView {
    let ActionChoices {
        draft,
        org,
        input,
        input_error,
        services,
        migration,
        chosen,
        deadline_min,
        deadline_max,
    } = choices;
    let choose = ServerAction::<ChooseAction>::new();
    let error = failure(choose);
    let field = move |name: &'static str| {
        Signal::derive(move || error.with(|e| e.as_ref().and_then(|e| e.field_message(name))))
    };
    let (kind_error, service_error, deadline_error) =
        (field("kind"), field("service"), field("deadline"));
    let form_error = Signal::derive(move || {
        error.with(|e| match e {
            Some(AppError::Validation { .. }) | None => None,
            Some(other) => Some(other.to_string()),
        })
    });
    let back = format!("/assign/{draft}");
    if let Some(message) = input_error {
        return view! {
            <p class="form-error banner" role="alert">
                {format!("The devices cannot be read: {message}")} " "
                <a href=back>"Fix the devices"</a>
            </p>
        }
        .into_any();
    }
    let current = if chosen.kind.is_empty() {
        "assign".to_owned()
    } else {
        chosen.kind.clone()
    };
    let chosen_service = chosen.service.clone().unwrap_or_default();
    view! {
        <p class="lede" data-testid="input-summary">
            {org.name.clone()} " · " {summary_line(&input)} " · " <a href=back>"Change the devices"</a>
        </p>
        <ActionForm action=choose attr:class="wizard-form" attr:id="action-form">
            <input type="hidden" name="draft" value=draft/>
            <fieldset class="field choices" aria-describedby="action-kind-error">
                <legend>"What should happen to these devices?"</legend>
                {ACTIONS
                    .into_iter()
                    .filter(|(_, _, _, _, needs_migration)| migration || !needs_migration)
                    .map(|(value, label, _, _, _)| {
                        let id = format!("action-{value}");
                        let label_for = id.clone();
                        let checked = value == current;
                        view! {
                            <label for=label_for class="check">
                                <input type="radio" id=id name="kind" value=value checked=checked/>
                                {label}
                            </label>
                        }
                    })
                    .collect_view()}
                <p class="field-error" id="action-kind-error" hidden=move || kind_error.with(Option::is_none)>
                    {kind_error}
                </p>
            </fieldset>
            <div class="field">
                <label for="action-service">"Device management service"</label>
                <p class="field-hint" id="action-service-hint">
                    "The service to assign to or unassign from. The number is the devices on it now."
                </p>
                <select
                    id="action-service"
                    name="service"
                    aria-describedby="action-service-hint action-service-error"
                    aria-invalid=move || service_error.with(Option::is_some).then_some("true")
                >
                    <option value="">"Choose a service…"</option>
                    {services
                        .into_iter()
                        .map(|s| {
                            let selected = s.id == chosen_service;
                            let label = format!("{} ({} devices)", s.name, thousands(s.device_count));
                            view! { <option value=s.id selected=selected>{label}</option> }
                        })
                        .collect_view()}
                </select>
                <p class="field-error" id="action-service-error" hidden=move || service_error.with(Option::is_none)>
                    {service_error}
                </p>
            </div>
            {migration
                .then(|| {
                    view! {
                        <div class="field">
                            <label for="action-deadline">"Migration deadline"</label>
                            <p class="field-hint" id="action-deadline-hint">
                                {format!(
                                    "For the migration actions: a day from {deadline_min} to {deadline_max} \
                                     (Apple allows at most 90 days ahead). Devices must migrate by the start \
                                     of that day (00:00 UTC); a deadline moved earlier is enforced on the \
                                     device at once, without deferral.",
                                )}
                            </p>
                            <input
                                type="date"
                                id="action-deadline"
                                name="deadline"
                                min=deadline_min.clone()
                                max=deadline_max.clone()
                                value=chosen.deadline.clone().unwrap_or_default()
                                aria-describedby="action-deadline-hint action-deadline-error"
                                aria-invalid=move || deadline_error.with(Option::is_some).then_some("true")
                            />
                            <p class="field-error" id="action-deadline-error" hidden=move || deadline_error.with(Option::is_none)>
                                {deadline_error}
                            </p>
                        </div>
                    }
                })}
            <div class="form-actions">
                <button type="submit" class="button primary" disabled=move || choose.pending().get()>
                    "Preview"
                </button>
            </div>
            <p class="form-error" role="alert">{form_error}</p>
        </ActionForm>
    }
    .into_any()
}

/// The preview's URL for a group and page.
fn preview_href(draft: &str, group: Option<&str>, page: u32) -> String {
    let mut href = format!("/assign/{draft}/preview");
    let mut sep = '?';
    if let Some(g) = group {
        href.push_str(&format!("{sep}group={}", query_escape(g)));
        sep = '&';
    }
    if page > 1 {
        href.push_str(&format!("{sep}page={page}"));
    }
    href
}

#[component]
pub fn PreviewPage() -> impl IntoView {
    let draft = draft_param();
    let query = use_query_map();
    let data = Resource::new(
        move || {
            (
                draft.get(),
                query.with(|q| q.get("group")),
                query.with(|q| q.get("page").and_then(|p| p.parse::<u32>().ok())),
            )
        },
        |(draft, group, page)| get_preview(draft, group, page),
    );
    let failed = ErrorInPlace::here();
    view! {
        <WizardHead step=3/>
        <Transition fallback=|| view! { <p class="status-line">"Computing the preview…"</p> }>
            {move || {
                let draft = draft.get();
                data.get()
                    .map(|result| match result {
                        Ok(preview) => view! { <PreviewBody preview/> }.into_any(),
                        Err(AppError::Conflict { message }) => {
                            view! {
                                <p class="notice" role="status">
                                    {message} " " <a href=format!("/assign/{draft}/action")>"Choose the action"</a>
                                </p>
                            }
                                .into_any()
                        }
                        Err(error) => failed.render(error).into_any(),
                    })
            }}
        </Transition>
    }
}

#[component]
fn PreviewBody(preview: PreviewView) -> impl IntoView {
    let PreviewView {
        draft,
        org,
        action,
        input,
        counts,
        moves,
        to_send,
        skipped,
        action_error,
        sendable,
        rows,
        group,
        page,
        pages,
        listed,
        freshness,
    } = preview;
    let list_heading = group
        .as_deref()
        .and_then(|g| counts.iter().find(|c| c.key == g))
        .map_or("Every entry".to_owned(), |c| c.label.clone());
    let total: u64 = counts.iter().map(|c| c.count).sum();
    let all_href = preview_href(&draft, None, 1);
    let count_rows = counts
        .iter()
        .map(|c| {
            let href = preview_href(&draft, Some(&c.key), 1);
            let current = group.as_deref() == Some(c.key.as_str());
            view! {
                <tr class:sends=c.sends>
                    <th scope="row">
                        <a href=href aria-current=current.then_some("page")>{c.label.clone()}</a>
                    </th>
                    <td class="numeric" data-testid=format!("count-{}", c.key)>{thousands(c.count)}</td>
                    <td>{if c.sends { "Sent to Apple" } else { "Skipped" }}</td>
                </tr>
            }
        })
        .collect_view();
    let previous = (page > 1).then(|| preview_href(&draft, group.as_deref(), page - 1));
    let next = (page < pages).then(|| preview_href(&draft, group.as_deref(), page + 1));
    view! {
        <p class="lede" data-testid="preview-action">
            <strong>{action}</strong> " · " {summary_line(&input)}
        </p>
        <p class="status-line">{org.name.clone()} " · " {freshness_line(&freshness)}</p>
        {action_error.map(|message| view! {
            <p class="form-error banner" role="alert">
                {message} " " <a href=format!("/assign/{draft}/action")>"Change the action"</a>
            </p>
        })}
        <p role="status" data-testid="preview-summary">
            {format!(
                "{} will be sent to Apple; {} skipped. Nothing has been sent yet.",
                thousands(to_send),
                thousands(skipped)
            )}
        </p>
        <div class="table-scroll">
            <table class="data-table preview-counts">
                <caption>"Entries per group"</caption>
                {head_row(&[("Group", false), ("Entries", true), ("Outcome", false)])}
                <tbody>{count_rows}</tbody>
                <tfoot>
                    <tr>
                        <th scope="row"><a href=all_href aria-current=group.is_none().then_some("page")>"All entries"</a></th>
                        <td class="numeric" data-testid="count-all">{thousands(total)}</td>
                        <td></td>
                    </tr>
                </tfoot>
            </table>
        </div>
        {(!moves.is_empty()).then(|| view! {
            <section aria-labelledby="moves-heading">
                <h2 id="moves-heading">"Moving from"</h2>
                <ul class="moves">
                    {moves
                        .into_iter()
                        .map(|m| view! { <li>{format!("{}: {}", m.from, thousands(m.count))}</li> })
                        .collect_view()}
                </ul>
            </section>
        })}
        <div class="wizard-actions">
            <a class="button-link" href=format!("/assign/{draft}/preview.csv") rel="external" download>
                "Download the preview (CSV)"
            </a>
            <a href=format!("/assign/{draft}/action")>"Change the action"</a>
            <a href=format!("/assign/{draft}")>"Change the devices"</a>
            {sendable.then(|| view! {
                <a class="button-link primary" href=format!("/assign/{draft}/confirm")>"Continue to confirm"</a>
            })}
        </div>
        <section aria-labelledby="entries-heading">
            <h2 id="entries-heading">{format!("{list_heading} ({})", thousands(listed))}</h2>
            <div class="table-scroll">
                <table class="data-table preview-list">
                    <caption class="sr-only">"Entries and what happens to them"</caption>
                    {head_row(&[("Where", false), ("As written", false), ("Result", false), ("Why", false)])}
                    <tbody>
                        {rows
                            .into_iter()
                            .map(|r| {
                                let serial = r.serial.clone().unwrap_or_default();
                                view! {
                                    <tr data-group=r.group.clone() data-serial=serial>
                                        <td>{format!("line {}, col. {}", r.line, r.column)}</td>
                                        <th scope="row" class="mono">{r.input}</th>
                                        <td>{r.label}</td>
                                        <td>{r.detail}</td>
                                    </tr>
                                }
                            })
                            .collect_view()}
                    </tbody>
                </table>
            </div>
            <nav class="pager" aria-label="Preview pages">
                {previous.map(|href| view! { <a href=href rel="prev">"Previous page"</a> })}
                {(pages > 1).then(|| format!("Page {page} of {pages}"))}
                {next.map(|href| view! { <a href=href rel="next">"Next page"</a> })}
            </nav>
        </section>
    }
}
