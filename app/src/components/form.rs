//! Small pieces every form uses: a field's error message and the form-level error line.
//!
//! Errors come from a server action's result: a validation error names its field, any
//! other error is shown once for the whole form.

use leptos::prelude::*;

use crate::error::AppError;

/// The id of the element holding `field`'s error, for `aria-describedby`.
pub fn error_id(form: &str, field: &str) -> String {
    format!("{form}-{field}-error")
}

/// The message for `field` when the last result was a validation error about it.
#[component]
pub fn FieldMessage(
    /// The form's id prefix, so ids stay unique on pages with several forms.
    form: &'static str,
    field: &'static str,
    #[prop(into)] error: Signal<Option<AppError>>,
) -> impl IntoView {
    let message = move || error.get().and_then(|e| e.field_message(field));
    view! {
        <p class="field-error" id=error_id(form, field) hidden=move || message().is_none()>
            {message}
        </p>
    }
}

/// The form-level error: anything that is not about one of `fields`.
#[component]
pub fn FormMessage(
    #[prop(into)] error: Signal<Option<AppError>>,
    fields: &'static [&'static str],
) -> impl IntoView {
    let message = move || {
        error.get().and_then(|e| match &e {
            AppError::Validation { fields: faults }
                if faults.iter().all(|f| fields.contains(&f.field.as_str())) =>
            {
                None
            }
            other => Some(other.to_string()),
        })
    };
    view! {
        <p class="form-error" role="alert" hidden=move || message().is_none()>
            {message}
        </p>
    }
}
