//! The error page shown by error boundaries. During SSR it sets the HTTP status that
//! matches the error (the worst one when several occurred).

use leptos::prelude::*;
use leptos_meta::Title;

use crate::error::AppError;

/// Renders the errors caught by an `ErrorBoundary`.
#[component]
pub fn ErrorPage(errors: ArcRwSignal<Errors>) -> impl IntoView {
    let list: Vec<AppError> = errors
        .get_untracked()
        .into_iter()
        .map(|(_, e)| {
            e.downcast_ref::<AppError>()
                .cloned()
                .unwrap_or_else(|| AppError::Request {
                    message: e.to_string(),
                })
        })
        .collect();
    let status = list.iter().map(AppError::status).max().unwrap_or(500);
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(
            http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR),
        );
    }
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
