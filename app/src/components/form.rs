//! Labelled form fields whose error message is tied to the input with
//! `aria-describedby`, and the alert that shows an action's failure. Used by the
//! administration and account forms, which post through `ActionForm` so they work with
//! and without JavaScript.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;

use crate::error::AppError;

/// The error of an action's last run, if it failed.
pub fn failure<S>(action: ServerAction<S>) -> Signal<Option<AppError>>
where
    S: ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    S::Output: Send + Sync + 'static,
{
    Signal::derive(move || {
        action
            .value()
            .with(|v| v.as_ref().and_then(|r| r.as_ref().err().cloned()))
    })
}

/// Whether an action's last run succeeded.
pub fn succeeded<S>(action: ServerAction<S>) -> Signal<bool>
where
    S: ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    S::Output: Send + Sync + 'static,
{
    Signal::derive(move || action.value().with(|v| matches!(v, Some(Ok(_)))))
}

/// What to tell a person about an error: the field messages of a validation error,
/// otherwise the error's own sentence.
pub fn explain(error: &AppError) -> String {
    match error {
        AppError::Validation { fields } => fields
            .iter()
            .map(|f| f.message.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

/// One labelled input. `form` and `name` make the element ids unique on the page; the
/// message of `error` for `name` appears below the input and describes it.
#[component]
pub fn Field(
    /// Prefix of the ids, unique per form on the page.
    form: String,
    name: &'static str,
    label: String,
    #[prop(default = "text")] kind: &'static str,
    #[prop(optional)] autocomplete: Option<&'static str>,
    #[prop(optional)] required: bool,
    #[prop(optional, into)] hint: Option<String>,
    #[prop(optional)] inputmode: Option<&'static str>,
    #[prop(into)] error: Signal<Option<AppError>>,
) -> impl IntoView {
    let id = format!("{form}-{name}");
    let error_id = format!("{id}-error");
    let hint_id = format!("{id}-hint");
    let message = Signal::derive(move || error.with(|e| e.as_ref().and_then(|e| e.field_message(name))));
    let has_hint = hint.is_some();
    let described_by = {
        let (error_id, hint_id) = (error_id.clone(), hint_id.clone());
        move || {
            let ids: Vec<&str> = [
                has_hint.then_some(hint_id.as_str()),
                message.with(Option::is_some).then_some(error_id.as_str()),
            ]
            .into_iter()
            .flatten()
            .collect();
            (!ids.is_empty()).then(|| ids.join(" "))
        }
    };
    view! {
        <div class="form-field">
            <label for=id.clone()>{label}</label>
            {hint.map(|text| view! { <p class="field-hint" id=hint_id.clone()>{text}</p> })}
            <input
                id=id
                name=name
                type=kind
                autocomplete=autocomplete
                inputmode=inputmode
                required=required
                aria-invalid=move || message.with(Option::is_some).then_some("true")
                aria-describedby=described_by
            />
            {move || {
                message
                    .get()
                    .map(|text| view! { <p class="field-error" id=error_id.clone()>{text}</p> })
            }}
        </div>
    }
}

/// A form-level alert for errors that belong to no field (refused, conflict, server).
#[component]
pub fn FormAlert(#[prop(into)] error: Signal<Option<AppError>>) -> impl IntoView {
    move || {
        error.get().and_then(|e| match e {
            AppError::Validation { .. } => None,
            other => Some(view! { <p class="form-alert" role="alert">{other.to_string()}</p> }),
        })
    }
}
