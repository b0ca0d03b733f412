//! First run: the one-time link printed to the console opens this page, which creates
//! the first administrator. Without a token it explains where to find the link.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::CompleteSetup;
use crate::components::form::{FieldMessage, FormMessage, error_id};

#[component]
pub fn SetupPage() -> impl IntoView {
    let query = use_query_map();
    let token = move || query.read().get("token").unwrap_or_default();
    let action = ServerAction::<CompleteSetup>::new();
    let error = Signal::derive(move || action.value().get().and_then(Result::err));

    view! {
        <Title text="Set up Orchard"/>
        <section class="auth-card" aria-labelledby="setup-heading">
            <h1 id="setup-heading">"Set up Orchard"</h1>
            <Show
                when=move || !token().is_empty()
                fallback=|| {
                    view! {
                        <p class="notice" role="status">
                            "To create the first administrator, open the one-time setup link that \
                             Orchard printed to its console when it started. Restart Orchard for \
                             a new link if it has expired."
                        </p>
                    }
                }
            >
                <p class="lede">
                    "Create the first administrator. There is no default account: this is the \
                     only way in until you add more users."
                </p>
                <ActionForm action attr:class="stacked-form" attr:id="setup-form">
                    <input type="hidden" name="token" value=token/>
                    <FieldMessage form="setup" field="token" error/>
                    <label for="setup-username">"Username"</label>
                    <input
                        id="setup-username"
                        name="username"
                        autocomplete="username"
                        required
                        aria-describedby=error_id("setup", "username")
                    />
                    <FieldMessage form="setup" field="username" error/>
                    <label for="setup-password">"Password (at least 12 characters)"</label>
                    <input
                        id="setup-password"
                        name="password"
                        type="password"
                        autocomplete="new-password"
                        required
                        aria-describedby=error_id("setup", "password")
                    />
                    <FieldMessage form="setup" field="password" error/>
                    <label for="setup-password-confirm">"Password again"</label>
                    <input
                        id="setup-password-confirm"
                        name="password_confirm"
                        type="password"
                        autocomplete="new-password"
                        required
                        aria-describedby=error_id("setup", "password_confirm")
                    />
                    <FieldMessage form="setup" field="password_confirm" error/>
                    <FormMessage
                        error
                        fields=&["token", "username", "password", "password_confirm"]
                    />
                    <button type="submit" class="primary" disabled=move || action.pending().get()>
                        "Create administrator"
                    </button>
                </ActionForm>
            </Show>
        </section>
    }
}
