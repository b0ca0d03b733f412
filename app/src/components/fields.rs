//! A labelled input with its hint and error tied to it by `aria-describedby`, and small
//! readers of a server action's last result. Built on [`super::form`]'s message parts;
//! used by the administration and account forms.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;

use super::form::{FieldMessage, error_id};
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

/// What to tell a person about an error in one line: the field messages of a validation
/// error, otherwise the error's own sentence.
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

/// One labelled input named `name`. Its id is `<form>-<name>`; the hint and the
/// validation message for `name` describe it.
#[component]
pub fn Field(
    /// Prefix of the ids, unique per form on the page.
    form: &'static str,
    name: &'static str,
    #[prop(into)] label: String,
    #[prop(default = "text")] kind: &'static str,
    #[prop(optional)] autocomplete: Option<&'static str>,
    #[prop(optional)] required: bool,
    #[prop(optional, into)] hint: Option<String>,
    #[prop(optional)] inputmode: Option<&'static str>,
    #[prop(into)] error: Signal<Option<AppError>>,
) -> impl IntoView {
    let id = format!("{form}-{name}");
    let hint_id = format!("{id}-hint");
    let invalid = Signal::derive(move || {
        error.with(|e| e.as_ref().is_some_and(|e| e.field_message(name).is_some()))
    });
    let described_by = {
        let (hint_id, error_id) = (
            hint.is_some().then(|| hint_id.clone()),
            error_id(form, name),
        );
        move || {
            let ids: Vec<&str> = [
                hint_id.as_deref(),
                invalid.get().then_some(error_id.as_str()),
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
                aria-invalid=move || invalid.get().then_some("true")
                aria-describedby=described_by
            />
            <FieldMessage form field=name error/>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validation_error_is_explained_by_its_field_messages() {
        let error = AppError::validation("code", "That code is not correct.");
        assert_eq!(explain(&error), "That code is not correct.");
        assert_eq!(
            explain(&AppError::Forbidden),
            AppError::Forbidden.to_string()
        );
    }
}
