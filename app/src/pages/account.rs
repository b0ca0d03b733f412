//! `/account`: the signed-in person's own password and two-step sign-in (TOTP).
//!
//! Enrolment is two posts: "set up" stores a new secret (not enforced yet), and the page
//! shows it as base32 and as an `otpauth://` link for manual entry until a first code
//! confirms it. Recovery codes come back from the server once, on the render after they
//! were issued. All forms are `ActionForm`s and work without JavaScript.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{BeginTotp, ChangePassword, ConfirmTotp, RegenerateRecoveryCodes, get_account};
use crate::components::fields::{Field, failure, succeeded};
use crate::components::form::FormMessage;
use crate::model::account::{AccountView, MIN_PASSWORD_CHARS, PendingTotp};

#[component]
pub fn AccountPage() -> impl IntoView {
    let change = ServerAction::<ChangePassword>::new();
    let begin = ServerAction::<BeginTotp>::new();
    let confirm = ServerAction::<ConfirmTotp>::new();
    let regenerate = ServerAction::<RegenerateRecoveryCodes>::new();
    let account = Resource::new(
        move || {
            (
                change.version().get(),
                begin.version().get(),
                confirm.version().get(),
                regenerate.version().get(),
            )
        },
        |_| get_account(),
    );
    view! {
        <Title text="Your account · Orchard"/>
        <h1>"Your account"</h1>
        <Suspense fallback=|| view! { <p class="status-line">"Loading your account…"</p> }>
            {move || {
                account
                    .get()
                    .map(|result| {
                        result
                            .map(|account| {
                                view! {
                                    <p class="lede">
                                        {format!("Signed in as {} ({}).", account.display_name, account.username)}
                                    </p>
                                    {if account.sso {
                                        view! {
                                            <p class="notice">
                                                "You sign in with SSO: your identity provider manages your \
                                                 password and second step."
                                            </p>
                                        }
                                            .into_any()
                                    } else {
                                        view! {
                                            <PasswordSection action=change/>
                                            <TotpSection account begin confirm regenerate/>
                                        }
                                            .into_any()
                                    }}
                                }
                            })
                    })
            }}
        </Suspense>
    }
}

#[component]
fn PasswordSection(action: ServerAction<ChangePassword>) -> impl IntoView {
    let error = failure(action);
    let done = succeeded(action);
    let hint = format!("At least {MIN_PASSWORD_CHARS} characters; a passphrase is easiest.");
    view! {
        <section class="panel" aria-labelledby="password-heading">
            <h2 id="password-heading">"Password"</h2>
            <ActionForm action attr:class="form-grid">
                <Field
                    form="password"
                    name="current_password"
                    label="Current password"
                    kind="password"
                    autocomplete="current-password"
                    required=true
                    error
                />
                <Field
                    form="password"
                    name="new_password"
                    label="New password"
                    kind="password"
                    autocomplete="new-password"
                    hint
                    required=true
                    error
                />
                <Field
                    form="password"
                    name="new_password_confirm"
                    label="Repeat the new password"
                    kind="password"
                    autocomplete="new-password"
                    required=true
                    error
                />
                <FormMessage error fields=&["current_password", "new_password", "new_password_confirm"]/>
                <div class="form-actions">
                    <button type="submit" class="primary" disabled=move || action.pending().get()>
                        {move || if action.pending().get() { "Changing…" } else { "Change password" }}
                    </button>
                    <p class="form-status" aria-live="polite">
                        {move || done.get().then_some("Your password was changed.")}
                    </p>
                </div>
            </ActionForm>
        </section>
    }
}

#[component]
fn TotpSection(
    account: AccountView,
    begin: ServerAction<BeginTotp>,
    confirm: ServerAction<ConfirmTotp>,
    regenerate: ServerAction<RegenerateRecoveryCodes>,
) -> impl IntoView {
    let AccountView {
        totp_enabled,
        recovery_codes_left,
        pending_totp,
        new_recovery_codes,
        ..
    } = account;
    let state = if totp_enabled {
        view! {
            <p data-testid="totp-state">
                <strong>"On."</strong>
                " Signing in asks for a code from your authenticator app."
            </p>
            <p data-testid="recovery-left">
                {format!("{recovery_codes_left} unused recovery codes left.")}
            </p>
            <ActionForm action=regenerate attr:class="inline-form">
                <button type="submit" disabled=move || regenerate.pending().get()>
                    "Issue new recovery codes"
                </button>
            </ActionForm>
            <FormMessage error=failure(regenerate) fields=&[]/>
        }
        .into_any()
    } else if let Some(pending) = pending_totp {
        view! { <ConfirmTotpForm pending action=confirm/> }.into_any()
    } else {
        view! {
            <p data-testid="totp-state">
                <strong>"Off."</strong>
                " Add a second step: a code from an authenticator app on your phone."
            </p>
            <ActionForm action=begin attr:class="inline-form">
                <button type="submit" class="primary" disabled=move || begin.pending().get()>
                    "Set up two-step sign-in"
                </button>
            </ActionForm>
            <FormMessage error=failure(begin) fields=&[]/>
        }
        .into_any()
    };
    view! {
        <section class="panel" aria-labelledby="totp-heading">
            <h2 id="totp-heading">"Two-step sign-in"</h2>
            {state}
            {(!new_recovery_codes.is_empty()).then(|| view! { <RecoveryCodesOnce codes=new_recovery_codes/> })}
        </section>
    }
}

#[component]
fn ConfirmTotpForm(pending: PendingTotp, action: ServerAction<ConfirmTotp>) -> impl IntoView {
    let error = failure(action);
    view! {
        <ol class="steps">
            <li>
                "In your authenticator app, add an account by entering this key:"
                <p class="secret">
                    <code data-testid="totp-secret">{pending.secret_base32}</code>
                </p>
                "or open this link on the phone: "
                <a class="otpauth" href=pending.otpauth_uri.clone()>{pending.otpauth_uri.clone()}</a>
            </li>
            <li>
                <ActionForm action attr:class="form-grid">
                    <Field
                        form="totp"
                        name="code"
                        label="Then type the 6-digit code it shows"
                        autocomplete="one-time-code"
                        inputmode="numeric"
                        required=true
                        error
                    />
                    <FormMessage error fields=&["code"]/>
                    <div class="form-actions">
                        <button type="submit" class="primary" disabled=move || action.pending().get()>
                            "Turn on two-step sign-in"
                        </button>
                    </div>
                </ActionForm>
            </li>
        </ol>
    }
}

#[component]
fn RecoveryCodesOnce(codes: Vec<String>) -> impl IntoView {
    view! {
        <div class="recovery-codes" role="status">
            <h3>"Your recovery codes"</h3>
            <p>
                "Each code signs you in once if you lose your phone. Save them somewhere safe \
                 now: they are shown only this time."
            </p>
            <ul class="codes" data-testid="recovery-codes">
                {codes.into_iter().map(|c| view! { <li><code>{c}</code></li> }).collect_view()}
            </ul>
        </div>
    }
}
