//! The 404 page. During SSR it sets the response status, so crawlers and scripts see 404.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

#[component]
pub fn NotFoundPage() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Page not found · Orchard"/>
        <h1>"Page not found"</h1>
        <p class="lede">"There is no page at this address. It may have moved, or the link is mistyped."</p>
        <p>
            <A href="/">"Go to the start page"</A>
        </p>
    }
}
