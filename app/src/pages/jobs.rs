//! The assignment wizard's last steps and the Jobs page:
//!
//! * `/assign/:draft/confirm` (step 4): exactly what will change; above the threshold the
//!   number of devices is typed to confirm. Starting writes the job, then opens its page.
//! * `/jobs/:id` (steps 5 and 6): live progress (chunks, devices, waiting for Apple's POST
//!   budget, Apple's activity status), then the result of every serial with a CSV download,
//!   "Retry failed" and "Cancel".
//! * `/jobs`: every job of the organization, who started it, when, what, and how it ended.
//!
//! With JavaScript a running job's page refreshes every two seconds; without it, the page
//! offers a "Refresh" link. Every form posts without JavaScript too.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};

use super::assign::{WizardHead, draft_param};
use super::settings::{FieldError, action_error, field_error, form_error};
use crate::api::{
    CancelJob, RetryFailed, StartJob, get_confirmation, get_job, get_job_results, list_jobs,
};
use crate::model::devices::{ago, thousands};
use crate::model::jobs::{
    ConfirmView, JobList, JobSummary, JobView, ResultPage, outcome_label, status_label,
};
use crate::model::query_escape;
use crate::pages::error::ErrorInPlace;

/// How often a running job's page asks for news.
#[cfg(feature = "hydrate")]
const POLL: std::time::Duration = std::time::Duration::from_secs(2);

fn org_param() -> Memo<String> {
    let query = use_query_map();
    Memo::new(move |_| query.with(|q| q.get("org").unwrap_or_default()))
}

#[component]
pub fn ConfirmPage() -> impl IntoView {
    let draft = draft_param();
    let view = Resource::new(move || draft.get(), get_confirmation);
    let failed = ErrorInPlace::here();
    view! {
        <WizardHead step=4/>
        <Suspense fallback=|| view! { <p class="status-line">"Reading the plan…"</p> }>
            {move || {
                view.get().map(|result| match result {
                    Ok(view) => view! { <ConfirmForm view/> }.into_any(),
                    Err(error) => failed.render(error).into_any(),
                })
            }}
        </Suspense>
    }
}

#[component]
fn ConfirmForm(view: ConfirmView) -> impl IntoView {
    let start = ServerAction::<StartJob>::new();
    let error = action_error(start, false);
    let typed_error = field_error(error, "typed");
    let needs_typed = view.needs_typed_count();
    let ConfirmView {
        org,
        draft,
        action,
        to_send,
        skipped,
        groups,
        moves,
        threshold,
        chunks,
    } = view;
    let back = format!("/assign/{draft}/preview");
    let requests = if chunks == 1 {
        "1 request".to_owned()
    } else {
        format!("{chunks} requests")
    };
    view! {
        <section class="confirm" aria-labelledby="confirm-heading">
            <h2 id="confirm-heading" data-testid="confirm-action">{action} " · " {org.name}</h2>
            <p class="lede" data-testid="confirm-summary">
                <strong>{thousands(to_send)}</strong>
                {if to_send == 1 { " device will change" } else { " devices will change" }}
                {format!(", sent to Apple in {requests}. {} left out.", thousands(skipped))}
            </p>
            {(!moves.is_empty()).then(|| view! {
                <ul class="count-list" aria-label="Where the devices come from">
                    {moves.into_iter().map(|m| view! {
                        <li>{m.label} ": " <strong>{thousands(m.count)}</strong></li>
                    }).collect_view()}
                </ul>
            })}
            <details>
                <summary>"Every group of the preview"</summary>
                <ul class="count-list">
                    {groups.into_iter().map(|g| view! {
                        <li>{g.label} ": " <strong>{thousands(g.count)}</strong></li>
                    }).collect_view()}
                </ul>
            </details>
            {move || form_error(error).get().map(|message| view! {
                <p class="form-error" role="alert">{message}</p>
            })}
            <ActionForm action=start>
                <input type="hidden" name="draft" value=draft/>
                {needs_typed.then(|| view! {
                    <div class="field">
                        <label for="confirm-typed">
                            {format!("Type {to_send} to confirm")}
                        </label>
                        <p class="field-hint" id="confirm-typed-hint">
                            {format!("More than {threshold} devices: type the number of devices that will change.")}
                        </p>
                        <input
                            id="confirm-typed"
                            name="typed"
                            inputmode="numeric"
                            autocomplete="off"
                            required
                            aria-describedby="confirm-typed-hint"
                            aria-invalid=move || typed_error.with(Option::is_some).then_some("true")
                        />
                        <FieldError id="confirm-typed-error".to_owned() error=typed_error/>
                    </div>
                })}
                <div class="form-actions">
                    <button type="submit" disabled=move || start.pending().get()>
                        "Start the job"
                    </button>
                    <a href=back>"Back to the preview"</a>
                </div>
            </ActionForm>
        </section>
    }
}

#[component]
pub fn JobsPage() -> impl IntoView {
    let query = use_query_map();
    let list = Resource::new(
        move || {
            query.with(|q| {
                (
                    q.get("org"),
                    q.get("before").and_then(|b| b.parse::<i64>().ok()),
                )
            })
        },
        |(org, before)| list_jobs(org, before),
    );
    let failed = ErrorInPlace::here();
    view! {
        <Title text="Jobs · Orchard"/>
        <h1>"Jobs"</h1>
        <Suspense fallback=|| view! { <p class="status-line">"Loading jobs…"</p> }>
            {move || {
                list.get().map(|result| match result {
                    Ok(list) => view! { <JobListView list/> }.into_any(),
                    Err(error) => failed.render(error).into_any(),
                })
            }}
        </Suspense>
    }
}

#[component]
fn JobListView(list: JobList) -> impl IntoView {
    let JobList {
        org,
        jobs,
        next,
        now,
    } = list;
    let org_q = query_escape(&org.id);
    let assign = format!("/assign?org={org_q}");
    let older = next.map(|before| format!("/jobs?org={org_q}&before={before}"));
    view! {
        <p class="lede">{org.name.clone()} " · " <a href=assign>"Assign devices"</a></p>
        {if jobs.is_empty() {
            view! { <p class="notice">"No jobs yet. Jobs appear here once an assignment starts."</p> }
                .into_any()
        } else {
            let org_q = org_q.clone();
            view! {
                <div class="table-scroll">
                    <table class="data-table">
                        <caption class="sr-only">"Jobs, newest first"</caption>
                        <thead>
                            <tr>
                                <th scope="col">"Job"</th>
                                <th scope="col">"What"</th>
                                <th scope="col">"Started by"</th>
                                <th scope="col">"When"</th>
                                <th scope="col">"Status"</th>
                                <th scope="col" class="num">"Succeeded"</th>
                                <th scope="col" class="num">"Failed"</th>
                                <th scope="col" class="num">"Skipped"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {jobs.into_iter().map(|job| job_row(&org_q, job, now)).collect_view()}
                        </tbody>
                    </table>
                </div>
            }
                .into_any()
        }}
        {older.map(|href| view! {
            <nav class="pager" aria-label="Job pages"><a href=href>"Older jobs"</a></nav>
        })}
    }
}

fn job_row(org_q: &str, job: JobSummary, now: i64) -> impl IntoView + use<> {
    let href = format!("/jobs/{}?org={org_q}", job.id);
    view! {
        <tr data-job=job.id>
            <th scope="row"><A href=href>{format!("#{}", job.id)}</A></th>
            <td>{job.action}</td>
            <td>{job.created_by}</td>
            <td>{ago(job.created_at, now)}</td>
            <td>{status_label(&job.status)}</td>
            <td class="num">{thousands(job.succeeded)}</td>
            <td class="num">{thousands(job.failed)}</td>
            <td class="num">{thousands(job.skipped)}</td>
        </tr>
    }
}

#[component]
pub fn JobPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let org = org_param();
    let id = Memo::new(move |_| {
        params.with(|p| {
            p.get("id")
                .and_then(|id| id.parse::<i64>().ok())
                .unwrap_or(0)
        })
    });
    let cancel = ServerAction::<CancelJob>::new();
    let tick = RwSignal::new(0_u64);
    let job = Resource::new(
        move || (org.get(), id.get(), cancel.version().get(), tick.get()),
        |(org, id, _, _)| get_job(org, id),
    );
    // The results follow the job while it runs (new outcomes arrive chunk by chunk).
    let results = Resource::new(
        move || {
            let (outcome, after) = query.with(|q| (q.get("outcome"), q.get("after")));
            (org.get(), id.get(), outcome, after, tick.get())
        },
        |(org, id, outcome, after, _)| get_job_results(org, id, outcome, after),
    );
    #[cfg(feature = "hydrate")]
    {
        let running = move || {
            job.with(|j| {
                j.as_ref()
                    .and_then(|r| r.as_ref().ok())
                    .is_some_and(|v| !v.job.is_finished())
            })
        };
        if let Ok(handle) = set_interval_with_handle(
            move || {
                if running() {
                    tick.update(|n| *n += 1);
                }
            },
            POLL,
        ) {
            on_cleanup(move || handle.clear());
        }
    }
    let failed = ErrorInPlace::here();
    let results_failed = failed.clone();
    view! {
        <Title text=move || format!("Job #{} · Orchard", id.get())/>
        <h1>{move || format!("Job #{}", id.get())}</h1>
        <Transition fallback=|| view! { <p class="status-line">"Loading the job…"</p> }>
            {move || {
                job.get().map(|result| match result {
                    Ok(view) => view! { <JobProgressView view cancel/> }.into_any(),
                    Err(error) => failed.render(error).into_any(),
                })
            }}
        </Transition>
        <Transition fallback=|| ()>
            {move || {
                results.get().map(|result| match result {
                    Ok(page) => view! {
                        <ResultsView org=org.get_untracked() job=id.get_untracked() page/>
                    }
                        .into_any(),
                    Err(error) => results_failed.render(error).into_any(),
                })
            }}
        </Transition>
    }
}

#[component]
fn JobProgressView(view: JobView, cancel: ServerAction<CancelJob>) -> impl IntoView {
    let retry = ServerAction::<RetryFailed>::new();
    let error = Signal::derive(move || {
        form_error(action_error(cancel, false))
            .get()
            .or_else(|| form_error(action_error(retry, false)).get())
    });
    let JobView {
        org,
        job,
        chunks,
        chunks_planned,
        chunks_submitted,
        chunks_completed,
        chunks_failed,
        chunks_cancelled,
        chunks_verifying,
        waiting_for_budget,
        next_slot_in_secs,
        apple_status,
        retried_by,
        now,
    } = view;
    let org_q = query_escape(&org.id);
    let finished = job.is_finished();
    let done = job.succeeded + job.failed + job.skipped;
    let percent = (done * 100).checked_div(job.devices).unwrap_or(100);
    let waiting = waiting_for_budget.then(|| match next_slot_in_secs {
        Some(secs) => format!("Waiting for Apple's request budget: next request in {secs} s."),
        None => "Waiting for Apple's request budget.".to_owned(),
    });
    let retry_of = job.retry_of.map(|first| {
        let href = format!("/jobs/{first}?org={org_q}");
        view! { <p>"Retries the failures of " <a href=href>{format!("job #{first}")}</a> "."</p> }
    });
    let retries = (!retried_by.is_empty()).then(|| {
        let org_q = org_q.clone();
        view! {
            <p>
                "Failures retried by "
                {retried_by.into_iter().map(|id| {
                    let href = format!("/jobs/{id}?org={org_q}");
                    view! { <a href=href>{format!("job #{id}")}</a> " " }
                }).collect_view()}
            </p>
        }
    });
    let refresh = format!("/jobs/{}?org={org_q}", job.id);
    let org_id = org.id.clone();
    view! {
        <p class="lede">
            <span data-testid="job-action">{job.action.clone()}</span>
            " · started by " {job.created_by.clone()} " " {ago(job.created_at, now)}
        </p>
        {retry_of}
        <p class="job-status" role="status" data-testid="job-status" data-status=job.status.clone()>
            {status_label(&job.status)}
            {job.finished_at.map(|at| format!(" · finished {}", ago(at, now)))}
        </p>
        <progress max="100" value=percent.to_string() aria-label="Devices done">
            {format!("{percent}%")}
        </progress>
        <dl class="attributes job-counts">
            <dt>"Devices done"</dt>
            <dd data-testid="devices-done">
                {format!("{} of {}", thousands(done), thousands(job.devices))}
            </dd>
            <dt>"Succeeded"</dt>
            <dd data-testid="count-succeeded">{thousands(job.succeeded)}</dd>
            <dt>"Failed"</dt>
            <dd data-testid="count-failed">{thousands(job.failed)}</dd>
            <dt>"Skipped"</dt>
            <dd data-testid="count-skipped">{thousands(job.skipped)}</dd>
            <dt>"Requests to Apple"</dt>
            <dd>
                {format!(
                    "{chunks} in all · {chunks_planned} not sent yet · {chunks_submitted} at Apple · {chunks_completed} done"
                )}
                {(chunks_failed > 0).then(|| format!(" · {chunks_failed} refused"))}
                {(chunks_cancelled > 0).then(|| format!(" · {chunks_cancelled} cancelled"))}
                {(chunks_verifying > 0).then(|| format!(" · {chunks_verifying} being verified"))}
            </dd>
            {apple_status.map(|s| view! { <dt>"Apple's activity"</dt> <dd>{s}</dd> })}
        </dl>
        {waiting.map(|line| view! { <p class="status-line">{line}</p> })}
        {retries}
        {move || error.get().map(|message| view! { <p class="form-error" role="alert">{message}</p> })}
        <div class="form-actions">
            {(!finished).then(|| view! {
                <a href=refresh.clone() rel="external">"Refresh"</a>
                <ActionForm action=cancel>
                    <input type="hidden" name="org" value=org_id.clone()/>
                    <input type="hidden" name="job" value=job.id/>
                    <button type="submit" class="secondary">"Cancel the job"</button>
                </ActionForm>
            })}
            {(finished && job.failed > 0).then(|| view! {
                <ActionForm action=retry>
                    <input type="hidden" name="org" value=org.id.clone()/>
                    <input type="hidden" name="job" value=job.id/>
                    <button type="submit">{format!("Retry the {} failed", thousands(job.failed))}</button>
                </ActionForm>
            })}
        </div>
    }
}

#[component]
fn ResultsView(org: String, job: i64, page: ResultPage) -> impl IntoView {
    let query = use_query_map();
    let outcome = query.with_untracked(|q| q.get("outcome").unwrap_or_default());
    let org_q = query_escape(&org);
    let base = format!("/jobs/{job}?org={org_q}");
    let csv = format!("/jobs/{job}/results.csv?org={org_q}");
    let filters = [
        ("", "All"),
        ("failed", "Failed"),
        ("succeeded", "Succeeded"),
        ("skipped", "Skipped"),
        ("pending", "Pending"),
    ];
    let next = page.next.map(|after| {
        format!(
            "{base}&outcome={}&after={}",
            query_escape(&outcome),
            query_escape(&after)
        )
    });
    view! {
        <section aria-labelledby="results-heading">
            <h2 id="results-heading">"Result per serial number"</h2>
            <nav class="filter-links" aria-label="Show results">
                {filters.into_iter().map(|(value, label)| {
                    let href = if value.is_empty() { base.clone() } else { format!("{base}&outcome={value}") };
                    let current = (value == outcome).then_some("page");
                    view! { <a href=href aria-current=current>{label}</a> }
                }).collect_view()}
                <a class="button-link" href=csv rel="external" download>"Download results (CSV)"</a>
            </nav>
            {if page.rows.is_empty() {
                view! { <p class="notice">"No serial numbers here."</p> }.into_any()
            } else {
                view! {
                    <div class="table-scroll">
                        <table class="data-table" data-testid="results">
                            <caption class="sr-only">"Result per serial number"</caption>
                            <thead>
                                <tr>
                                    <th scope="col">"Serial number"</th>
                                    <th scope="col">"Result"</th>
                                    <th scope="col">"Reason"</th>
                                    <th scope="col">"Verified at Apple"</th>
                                </tr>
                            </thead>
                            <tbody>
                                {page.rows.into_iter().map(|row| view! {
                                    <tr data-outcome=row.outcome.clone()>
                                        <th scope="row" class="mono">{row.serial}</th>
                                        <td>{outcome_label(&row.outcome)}</td>
                                        <td>{row.reason.unwrap_or_default()}</td>
                                        <td>{if row.verified { "Yes" } else { "" }}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }
                    .into_any()
            }}
            {next.map(|href| view! { <nav class="pager" aria-label="Result pages"><a href=href>"Next page"</a></nav> })}
        </section>
    }
}
