//! The error page shown by error boundaries (during SSR it sets the HTTP status that
//! matches the error, the worst one when several occurred), and the same alert in place of
//! a page's content.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::error::AppError;

/// The errors an error boundary caught, as wire errors.
fn app_errors(errors: &ArcRwSignal<Errors>) -> Vec<AppError> {
    errors
        .get_untracked()
        .into_iter()
        .map(|(_, e)| {
            e.downcast_ref::<AppError>()
                .cloned()
                .unwrap_or_else(|| AppError::Request {
                    message: e.to_string(),
                })
        })
        .collect()
}

/// Sets the response status for `errors` (the worst one) through `response`, a handle
/// taken where the request's context is known to be reachable. The boundary's fallback
/// can render from an async resolution where `use_context` finds nothing, which used
/// to serve a quarter of concurrent refusals as 200.
#[cfg(feature = "ssr")]
pub fn set_status(response: Option<&leptos_axum::ResponseOptions>, errors: &ArcRwSignal<Errors>) {
    let status = app_errors(errors)
        .iter()
        .map(AppError::status)
        .max()
        .unwrap_or(500);
    if let Some(response) = response {
        response.set_status(
            http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR),
        );
    }
}

/// Renders the errors caught by an `ErrorBoundary`.
#[component]
pub fn ErrorPage(errors: ArcRwSignal<Errors>) -> impl IntoView {
    #[cfg(feature = "ssr")]
    set_status(
        use_context::<leptos_axum::ResponseOptions>().as_ref(),
        &errors,
    );
    let list = app_errors(&errors);
    let status = list.iter().map(AppError::status).max().unwrap_or(500);
    let title = list.first().map_or("Error", AppError::title);
    view! {
        <Title text=format!("{title} · Orchard")/>
        <section class="error-page" role="alert" data-status=status>
            <h1>{title}</h1>
            <ul>
                {list
                    .into_iter()
                    .map(|e| view! { <li>{e.to_string()}</li> })
                    .collect_view()}
            </ul>
        </section>
    }
}

/// An error shown where a page's content would have been: the alert of [`ErrorPage`]
/// under the page's own heading. Pages render a failed resource with it instead of throwing
/// to the boundary: during server rendering, an error thrown from a resolved `Suspense`
/// sometimes reached no boundary and the page came out without its message. Pages use it
/// through [`ErrorInPlace`], which also sets the response's status.
#[component]
pub fn InlineError(error: AppError) -> impl IntoView {
    view! {
        <section class="error-page" role="alert" data-status=error.status()>
            <p><strong>{error.title()}</strong></p>
            <p>{error.to_string()}</p>
        </section>
    }
}

/// A page's way to show a failed resource in place with the status the error boundary
/// would have set: taken while the page component runs, where the request's context is
/// reachable (see [`set_status`]), and used where the failure is rendered, which during
/// server rendering can be an async resolution without that context. Refusals already
/// set their status in the role check; this covers the rest (404, 500, …) too.
#[derive(Clone, Default)]
pub struct ErrorInPlace {
    #[cfg(feature = "ssr")]
    response: Option<leptos_axum::ResponseOptions>,
}

impl ErrorInPlace {
    pub fn here() -> Self {
        Self {
            #[cfg(feature = "ssr")]
            response: use_context::<leptos_axum::ResponseOptions>(),
        }
    }

    /// Sets the response's status for `error` (on the server; the worst one when a page
    /// shows several failures) and renders [`InlineError`].
    pub fn render(&self, error: AppError) -> impl IntoView + use<> {
        #[cfg(feature = "ssr")]
        if let Some(response) = &self.response
            && let Ok(status) = http::StatusCode::from_u16(error.status())
        {
            let mut parts = response
                .0
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if parts.status.is_none_or(|set| set < status) {
                parts.status = Some(status);
            }
        }
        view! { <InlineError error/> }
    }
}
