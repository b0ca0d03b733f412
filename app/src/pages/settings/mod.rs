//! The Settings area: its sub-navigation, shared form helpers, and one module per page.
//!
//! Every form here is an `ActionForm`, so it works without JavaScript (a plain POST
//! that returns to the page) and with it (no reload). Field errors come back as
//! `AppError::Validation` and are shown next to their field, wired with
//! `aria-invalid` and `aria-describedby`.

pub mod accounts;
pub mod audit;
pub mod organizations;
pub mod sso;
pub mod sync;
pub mod users;

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_router::hooks::use_location;

use crate::error::AppError;

/// The Settings sub-navigation. Organizations is current on the hub and on every
/// organization's page.
#[component]
pub fn SettingsNav() -> impl IntoView {
    let path = use_location().pathname;
    let current = move |href: &'static str| {
        let path = path.get();
        let here = if href == "/settings" {
            path == "/settings" || path.starts_with("/settings/organizations/")
        } else {
            path == href || path.starts_with(&format!("{href}/"))
        };
        here.then_some("page")
    };
    view! {
        <nav class="settings-nav" aria-label="Settings">
            <ul>
                <li>
                    <a href="/settings" aria-current=move || current("/settings")>
                        "Organizations"
                    </a>
                </li>
                <li>
                    <a href="/settings/users" aria-current=move || current("/settings/users")>
                        "Users"
                    </a>
                </li>
                <li>
                    <a href="/settings/sso" aria-current=move || current("/settings/sso")>
                        "Single sign-on"
                    </a>
                </li>
                <li>
                    <a href="/settings/audit" aria-current=move || current("/settings/audit")>
                        "Audit log"
                    </a>
                </li>
            </ul>
        </nav>
    }
}

/// The error of an action's last call. With `dispatched_only`, an error that came from
/// the URL (a form posted without JavaScript) is ignored: the URL names the server
/// function but not the row whose form was posted, so rows show only their own calls.
pub(crate) fn action_error<S>(
    action: ServerAction<S>,
    dispatched_only: bool,
) -> Signal<Option<AppError>>
where
    S: ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    S::Output: Send + Sync + 'static,
{
    Signal::derive(move || {
        if dispatched_only && action.version().get() == 0 {
            return None;
        }
        action.value().with(|v| match v {
            Some(Err(e)) => Some(e.clone()),
            _ => None,
        })
    })
}

/// The message for `field` in an action's last validation error.
pub(crate) fn field_error(
    error: Signal<Option<AppError>>,
    field: &'static str,
) -> Signal<Option<String>> {
    Signal::derive(move || error.with(|e| e.as_ref().and_then(|e| e.field_message(field))))
}

/// The message for an error that belongs to no field (forbidden, conflict, …).
pub(crate) fn form_error(error: Signal<Option<AppError>>) -> Signal<Option<String>> {
    Signal::derive(move || {
        error.with(|e| match e {
            Some(AppError::Validation { .. }) | None => None,
            Some(other) => Some(other.to_string()),
        })
    })
}

/// A labelled text input with its hint and error. `id` must be unique on the page;
/// the error paragraph is `{id}-error` and the hint `{id}-hint`.
#[component]
pub(crate) fn TextField(
    id: String,
    name: &'static str,
    label: &'static str,
    #[prop(optional)] hint: Option<&'static str>,
    #[prop(into)] error: Signal<Option<String>>,
    #[prop(optional)] required: bool,
    #[prop(optional)] placeholder: Option<&'static str>,
    #[prop(default = "text")] input_type: &'static str,
) -> impl IntoView {
    let hint_id = format!("{id}-hint");
    let error_id = format!("{id}-error");
    let described_by = {
        let (hint_id, error_id) = (hint_id.clone(), error_id.clone());
        move || {
            let ids: Vec<&str> = [
                hint.map(|_| hint_id.as_str()),
                error.with(Option::is_some).then_some(error_id.as_str()),
            ]
            .into_iter()
            .flatten()
            .collect();
            (!ids.is_empty()).then(|| ids.join(" "))
        }
    };
    view! {
        <div class="field">
            <label for=id.clone()>{label}</label>
            {hint.map(|text| view! { <p class="field-hint" id=hint_id.clone()>{text}</p> })}
            <input
                id=id
                name=name
                type=input_type
                required=required
                placeholder=placeholder
                autocomplete="off"
                spellcheck="false"
                aria-invalid=move || error.with(Option::is_some).then_some("true")
                aria-describedby=described_by
            />
            <FieldError id=error_id error/>
        </div>
    }
}

/// The error paragraph of one field, present only while there is an error.
#[component]
pub(crate) fn FieldError(id: String, #[prop(into)] error: Signal<Option<String>>) -> impl IntoView {
    move || {
        error
            .get()
            .map(|message| view! { <p class="field-error" id=id.clone()>{message}</p> })
    }
}
