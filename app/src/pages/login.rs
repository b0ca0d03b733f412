//! The sign-in page: username and password, a one-time code when the account asks for
//! one, and "Sign in with SSO" when single sign-on is configured.
//!
//! Without JavaScript the form posts to the server function and the server redirects:
//! to where the user was going, back here with the error in the URL, or back here with
//! `step=code` when a code is needed (the password must then be typed again).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::{SignIn, get_sign_in_options};
use crate::components::form::{FieldMessage, FormMessage, error_id};
use crate::model::{SignInOutcome, query_escape};

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_default();
    let sso_error = move || query.read().get("sso_error");
    let code_step = move || query.read().get("step").as_deref() == Some("code");
    let username = move || query.read().get("username").unwrap_or_default();

    let options = Resource::new(|| (), |_| get_sign_in_options());
    let action = ServerAction::<SignIn>::new();
    let value = action.value();
    let error = Signal::derive(move || value.get().and_then(Result::err));
    let needs_code =
        move || code_step() || matches!(value.get(), Some(Ok(SignInOutcome::CodeRequired)));

    view! {
        <Title text="Sign in · Orchard"/>
        <section class="auth-card" aria-labelledby="sign-in-heading">
            <h1 id="sign-in-heading">"Sign in"</h1>
            {move || {
                sso_error()
                    .map(|message| view! { <p class="form-error" role="alert">{message}</p> })
            }}
            <Suspense fallback=|| ()>
                {move || {
                    options
                        .get()
                        .and_then(Result::ok)
                        .filter(|o| o.setup_pending)
                        .map(|_| {
                            view! {
                                <p class="notice" role="status">
                                    "No administrator exists yet. Open the one-time setup link \
                                     that Orchard printed to its console when it started."
                                </p>
                            }
                        })
                }}
            </Suspense>
            <ActionForm action attr:class="stacked-form" attr:id="sign-in-form">
                <input type="hidden" name="next" value=next/>
                <label for="sign-in-username">"Username"</label>
                <input
                    id="sign-in-username"
                    name="username"
                    autocomplete="username"
                    required
                    autofocus
                    value=username
                />
                <label for="sign-in-password">"Password"</label>
                <input
                    id="sign-in-password"
                    name="password"
                    type="password"
                    autocomplete="current-password"
                    required
                    aria-describedby=error_id("sign-in", "password")
                />
                <FieldMessage form="sign-in" field="password" error/>
                <Show when=needs_code>
                    <p class="notice" role="status">
                        {move || {
                            if code_step() && value.get().is_none() {
                                "This account uses a one-time code. Type your password again \
                                 and the code from your authenticator app (or a recovery code)."
                            } else {
                                "Enter the code from your authenticator app, or a recovery code."
                            }
                        }}
                    </p>
                    <label for="sign-in-code">"One-time code"</label>
                    <input
                        id="sign-in-code"
                        name="code"
                        autocomplete="one-time-code"
                        inputmode="numeric"
                        required
                        aria-describedby=error_id("sign-in", "code")
                    />
                    <FieldMessage form="sign-in" field="code" error/>
                </Show>
                <FormMessage error fields=&["password", "code"]/>
                <button type="submit" class="primary" disabled=move || action.pending().get()>
                    "Sign in"
                </button>
            </ActionForm>
            <Suspense fallback=|| ()>
                {move || {
                    options
                        .get()
                        .and_then(Result::ok)
                        .and_then(|o| o.sso_label)
                        .map(|label| {
                            let href = move || {
                                let next = next();
                                if next.is_empty() {
                                    "/auth/oidc/start".to_owned()
                                } else {
                                    format!("/auth/oidc/start?next={}", query_escape(&next))
                                }
                            };
                            view! {
                                <div class="sso">
                                    <span class="divider">"or"</span>
                                    <a class="button" href=href rel="external">
                                        {label}
                                    </a>
                                </div>
                            }
                        })
                }}
            </Suspense>
        </section>
    }
}
