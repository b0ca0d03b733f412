//! The landing page: what Orchard is and where each task lives.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use crate::components::layout::NAV;
use crate::components::status::InstanceStatus;
use crate::pages::areas::AREAS;

#[component]
pub fn HomePage() -> impl IntoView {
    view! {
        <Title text="Orchard"/>
        <h1>"Welcome to Orchard"</h1>
        <p class="lede">
            "One fast, shared and audited place for your Apple Business fleet: find any device \
             while you type, assign thousands of devices with a preview and per-serial results, \
             and see who changed what."
        </p>
        <ul class="area-cards">
            {NAV
                .iter()
                .map(|item| {
                    let summary = AREAS
                        .iter()
                        .find(|a| a.path == item.href)
                        .map_or("", |a| a.summary);
                    view! {
                        <li class="card">
                            <h2>
                                <A href=item.href>{item.label}</A>
                            </h2>
                            <p>{summary}</p>
                        </li>
                    }
                })
                .collect_view()}
        </ul>
        <section class="instance" aria-labelledby="instance-heading">
            <h2 id="instance-heading">"This instance"</h2>
            <InstanceStatus/>
        </section>
    }
}
