//! What this instance is: version and storage. A database that does not answer turns
//! into an error for the surrounding error boundary (500 with an incident id).

use leptos::prelude::*;

use crate::api::get_system_status;

#[component]
pub fn InstanceStatus() -> impl IntoView {
    let status = Resource::new(|| (), |_| get_system_status());
    view! {
        <Suspense fallback=|| view! { <p class="status-line">"Checking the server…"</p> }>
            {move || {
                status
                    .get()
                    .map(|result| {
                        result
                            .map(|s| {
                                view! {
                                    <p class="status-line" data-testid="status-line">
                                        {format!("Orchard {} · storage: {}", s.version, s.database)}
                                    </p>
                                }
                            })
                    })
            }}
        </Suspense>
    }
}
