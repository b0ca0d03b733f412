//! The status line: version and database of this instance, or why they are unknown.

use leptos::prelude::*;

use crate::api::get_system_status;

#[component]
pub fn StatusLine() -> impl IntoView {
    let status = Resource::new(|| (), |_| get_system_status());
    view! {
        <p class="status-line" data-testid="status-line">
            <Suspense fallback=|| "Checking the server…">
                {move || {
                    status
                        .get()
                        .map(|result| match result {
                            Ok(s) => {
                                format!("Orchard {} · storage: {}", s.version, s.database)
                            }
                            Err(e) => format!("Server status unavailable: {e}"),
                        })
                }}
            </Suspense>
        </p>
    }
}
