//! `/settings/organizations/:org`: an organization's Apple API accounts.
//!
//! Each account shows its identity (client id, key id, key fingerprint, endpoints) and a
//! health line (last token, last success, last error, 429 answers, revocation), with
//! actions to test the connection, rotate the key, revoke and delete (after a
//! confirmation step). Below the list, a form adds an account; the private key is pasted
//! or, with JavaScript, read from a `.pem` file into the same text area.
//!
//! Row actions keep their own state: each account gets its own set of actions, owned by
//! the page rather than the row, so a refetch of the list (after any change) re-renders
//! rows without losing a row's pending flag, error or test report. A form posted without
//! JavaScript comes back with its error in the URL, which names the server function but
//! not the row; such errors are shown once, above the list.

use std::collections::HashMap;

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use super::sync::SyncSection;
use super::{FieldError, SettingsNav, TextField, action_error, field_error, form_error};
use crate::api::{
    AddApiAccount, DeleteApiAccount, RevokeApiAccount, RotateApiKey, TestApiAccount,
    get_api_accounts,
};
use crate::error::AppError;
use crate::model::accounts::{ApiAccount, MAX_ACCOUNTS_PER_ORG, OrganizationAccounts, short_time};
use crate::pages::error::ErrorInPlace;

/// Largest `.pem` file read into the form, in bytes (the server's limit too).
const MAX_PEM_FILE_BYTES: f64 = 16.0 * 1024.0;

/// The actions of one account row. `Copy`: they live in the page's arena.
#[derive(Clone, Copy)]
struct RowActions {
    test: ServerAction<TestApiAccount>,
    rotate: ServerAction<RotateApiKey>,
    revoke: ServerAction<RevokeApiAccount>,
    delete: ServerAction<DeleteApiAccount>,
}

impl RowActions {
    /// New actions; each completed call bumps `changed`, which refetches the list.
    fn new(changed: RwSignal<u64>) -> Self {
        let actions = Self {
            test: ServerAction::new(),
            rotate: ServerAction::new(),
            revoke: ServerAction::new(),
            delete: ServerAction::new(),
        };
        let versions = [
            actions.test.version(),
            actions.rotate.version(),
            actions.revoke.version(),
            actions.delete.version(),
        ];
        for version in versions {
            Effect::watch(
                move || version.get(),
                move |_, _, _| changed.update(|n| *n += 1),
                false,
            );
        }
        actions
    }
}

#[component]
pub fn OrganizationPage() -> impl IntoView {
    let params = use_params_map();
    let org = Memo::new(move |_| params.read().get("org").unwrap_or_default());
    let add = ServerAction::<AddApiAccount>::new();
    let changed = RwSignal::new(0_u64);
    // Refetch after a successful add (not after a refused one, which would re-render
    // and clear the rows' half-filled forms) and after any row action.
    let last_added = move || {
        add.value().with(|v| {
            v.as_ref()
                .and_then(|r| r.as_ref().ok())
                .map(|a| a.id.clone())
        })
    };
    let data = Resource::new(
        move || (org.get(), last_added(), changed.get()),
        |(org, _, _)| get_api_accounts(org),
    );
    let owner = Owner::current().expect("a page renders inside an owner");
    let rows = StoredValue::new(HashMap::<String, RowActions>::new());
    let actions_for = Callback::new(move |id: String| {
        rows.try_update_value(|map| {
            *map.entry(id)
                .or_insert_with(|| owner.with(|| RowActions::new(changed)))
        })
        .expect("the page's row actions outlive its rows")
    });
    let failed = ErrorInPlace::here();

    // The add form stays outside the transition: refetching the list must not clear
    // what someone is typing there.
    view! {
        <Transition fallback=|| view! { <p>"Loading the organization…"</p> }>
            {move || {
                let failed = failed.clone();
                Suspend::new(async move {
                    match data.await {
                        Ok(data) => view! { <OrganizationView data actions_for/> }.into_any(),
                        Err(error) => view! {
                            <Title text="Settings · Orchard"/>
                            <p class="breadcrumb"><a href="/settings">"Settings"</a></p>
                            <h1>"Organization"</h1>
                            {failed.render(error)}
                        }
                            .into_any(),
                    }
                })
            }}
        </Transition>
        <SyncSection org/>
        <AddAccountForm org add/>
    }
}

#[component]
fn OrganizationView(
    data: OrganizationAccounts,
    actions_for: Callback<String, RowActions>,
) -> impl IntoView {
    let OrganizationAccounts {
        organization,
        accounts,
    } = data;
    let count = accounts.len();
    let org_id = organization.id.clone();
    let list = if accounts.is_empty() {
        view! { <p class="empty">"No API account yet. Add one below to connect Apple Business."</p> }
            .into_any()
    } else {
        view! {
            <ul class="account-list">
                {accounts
                    .into_iter()
                    .map(|account| {
                        let actions = actions_for.run(account.id.clone());
                        view! { <AccountRow org=org_id.clone() account actions/> }
                    })
                    .collect_view()}
            </ul>
        }
        .into_any()
    };
    view! {
        <Title text=format!("{} · Settings · Orchard", organization.name)/>
        <p class="breadcrumb">
            <a href="/settings">"Settings"</a>
            " › "
            <span>{organization.name.clone()}</span>
        </p>
        <h1>{organization.name.clone()}</h1>
        <SettingsNav/>
        <section class="settings-section" aria-labelledby="accounts-heading">
            <h2 id="accounts-heading">"Apple API accounts"</h2>
            <p class="lede" data-testid="account-count">
                {format!("{count} of {MAX_ACCOUNTS_PER_ORG} accounts")}
            </p>
            <UrlRowError/>
            {list}
        </section>
    }
}

/// The error of a row's form posted without JavaScript, from the URL.
#[component]
fn UrlRowError() -> impl IntoView {
    let failure = use_context::<leptos::server::ServerActionError>().and_then(|error| {
        let what = [
            (TestApiAccount::PATH, "Testing the connection"),
            (RotateApiKey::PATH, "Rotating the key"),
            (RevokeApiAccount::PATH, "Revoking the account"),
            (DeleteApiAccount::PATH, "Deleting the account"),
        ]
        .into_iter()
        .find(|(path, _)| *path == error.path())?
        .1;
        let error = leptos::server_fn::error::ServerFnUrlError::<AppError>::decode_err(error.err());
        Some(format!("{what} failed: {}", describe(&error)))
    });
    failure.map(|message| view! { <p class="form-error banner" role="alert">{message}</p> })
}

/// An error in one sentence, with the field messages of a validation error.
fn describe(error: &AppError) -> String {
    match error {
        AppError::Validation { fields } => fields
            .iter()
            .map(|f| f.message.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

#[component]
fn AccountRow(org: String, account: ApiAccount, actions: RowActions) -> impl IntoView {
    let RowActions {
        test,
        rotate,
        revoke,
        delete,
    } = actions;
    let state = account.state();
    let id = account.id.clone();
    let heading_id = format!("account-{id}-name");
    let revoked = account.revoked_at.is_some();
    let hidden = || {
        view! {
            <input type="hidden" name="org" value=org.clone()/>
            <input type="hidden" name="account" value=id.clone()/>
        }
    };
    let (hidden_test, hidden_revoke, hidden_rotate, hidden_delete) =
        (hidden(), hidden(), hidden(), hidden());
    let article_id = format!("account-{id}");
    let rotate_key_id = format!("rotate-{id}-key-id");
    let rotate_pem_id = format!("rotate-{id}-pem");
    let report = move || {
        if test.version().get() == 0 {
            return None;
        }
        test.value().with(|v| match v {
            Some(Ok(report)) => Some((report.ok, report.summary())),
            _ => None,
        })
    };
    let row_error = move || {
        [
            action_error(test, true).get(),
            action_error(revoke, true).get(),
            action_error(delete, true).get(),
        ]
        .into_iter()
        .flatten()
        .map(|e| describe(&e))
        .next()
        .or_else(|| form_error(action_error(rotate, true)).get())
    };
    let health = account.health.clone();
    let failing = health.last_error.is_some();
    let fingerprint = account.key_fingerprint.clone();
    let short_fingerprint = fingerprint
        .get(..16)
        .map_or(fingerprint.clone(), |s| format!("{s}…"));

    view! {
        <li>
            <article class="account" id=article_id aria-labelledby=heading_id.clone()>
                <header class="account-head">
                    <h3 id=heading_id.clone()>{account.name.clone()}</h3>
                    <span class=format!("badge badge-{}", state.class())>{state.label()}</span>
                </header>
                <dl class="facts">
                    <div><dt>"Kind"</dt><dd>{account.kind_label()}</dd></div>
                    <div><dt>"Client ID"</dt><dd class="mono">{account.client_id.clone()}</dd></div>
                    <div><dt>"Key ID"</dt><dd class="mono">{account.key_id.clone()}</dd></div>
                    <div>
                        <dt>"Key fingerprint"</dt>
                        <dd class="mono" title=fingerprint>{short_fingerprint}</dd>
                    </div>
                    <div><dt>"API base URL"</dt><dd class="mono">{account.api_base_url.clone()}</dd></div>
                    <div><dt>"Token URL"</dt><dd class="mono">{account.token_url.clone()}</dd></div>
                    <div><dt>"Added"</dt><dd><Time at=account.created_at.clone()/></dd></div>
                    {account.rotated_at.clone().map(|at| view! { <div><dt>"Key rotated"</dt><dd><Time at/></dd></div> })}
                </dl>
                <dl class="health" aria-label="Health">
                    <div><dt>"Last token"</dt><dd><MaybeTime at=health.last_token_at/></dd></div>
                    <div><dt>"Last success"</dt><dd><MaybeTime at=health.last_success_at/></dd></div>
                    <div>
                        <dt>"Last error"</dt>
                        <dd class:problem=failing>
                            {health.last_error.unwrap_or_else(|| "None".to_owned())}
                        </dd>
                    </div>
                    <div><dt>"429 answers"</dt><dd>{health.rate_limited_count}</dd></div>
                    <div><dt>"Revoked"</dt><dd><MaybeTime at=account.revoked_at.clone() none="No"/></dd></div>
                </dl>
                <div class="account-actions">
                    <ActionForm action=test>
                        {hidden_test}
                        <button
                            type="submit"
                            class="button"
                            disabled=move || revoked || test.pending().get()
                            aria-busy=move || test.pending().get().then_some("true")
                        >
                            {move || if test.pending().get() { "Testing…" } else { "Test connection" }}
                        </button>
                    </ActionForm>
                    {(!revoked)
                        .then(|| {
                            view! {
                                <ActionForm action=revoke>
                                    {hidden_revoke}
                                    <button type="submit" class="button" disabled=move || revoke.pending().get()>
                                        {move || if revoke.pending().get() { "Revoking…" } else { "Revoke" }}
                                    </button>
                                </ActionForm>
                            }
                        })}
                </div>
                <p class="form-status" role="status">
                    {move || {
                        report()
                            .map(|(ok, text)| {
                                view! { <span class=if ok { "report ok" } else { "report failed" }>{text}</span> }
                            })
                    }}
                </p>
                <p class="form-error" role="alert">{row_error}</p>
                <details class="disclosure" open=move || rotate.pending().get() || action_error(rotate, true).with(Option::is_some)>
                    <summary>"Rotate key…"</summary>
                    <ActionForm action=rotate attr:class="settings-form">
                        {hidden_rotate}
                        <p class="field-hint">
                            "Create a new key in Apple Business, then enter its key ID and private key. \
                             The old key stops being used at once."
                        </p>
                        <TextField
                            id=rotate_key_id
                            name="key_id"
                            label="New key ID"
                            error=field_error(action_error(rotate, true), "key_id")
                            required=true
                        />
                        <PemField
                            id=rotate_pem_id
                            error=field_error(action_error(rotate, true), "pem")
                        />
                        <div class="form-actions">
                            <button type="submit" class="button primary" disabled=move || rotate.pending().get()>
                                {move || if rotate.pending().get() { "Rotating…" } else { "Rotate key" }}
                            </button>
                        </div>
                    </ActionForm>
                </details>
                <details class="disclosure danger">
                    <summary>"Delete…"</summary>
                    <p>
                        "Deleting removes this account and its private key from Orchard. \
                         It cannot be undone; the key stays valid in Apple Business until you revoke it there."
                    </p>
                    <ActionForm action=delete>
                        {hidden_delete}
                        <button type="submit" class="button danger" disabled=move || delete.pending().get()>
                            {let name = account.name.clone();
                            move || if delete.pending().get() { "Deleting…".to_owned() } else { format!("Delete {name} permanently") }}
                        </button>
                    </ActionForm>
                </details>
            </article>
        </li>
    }
}

/// A UTC time, machine-readable in `datetime`.
#[component]
fn Time(at: String) -> impl IntoView {
    let text = short_time(&at);
    view! { <time datetime=at>{text}</time> }
}

/// A time, or `none` ("Never" by default).
#[component]
fn MaybeTime(at: Option<String>, #[prop(default = "Never")] none: &'static str) -> impl IntoView {
    match at {
        Some(at) => view! { <Time at/> }.into_any(),
        None => none.into_any(),
    }
}

/// The private key: a text area to paste into and, once the page is interactive, a file
/// picker that reads a `.pem` file into it (the file itself is never uploaded).
#[component]
fn PemField(id: String, #[prop(into)] error: Signal<Option<String>>) -> impl IntoView {
    let area = NodeRef::<leptos::html::Textarea>::new();
    let interactive = RwSignal::new(false);
    let file_note = RwSignal::new(None::<String>);
    Effect::new(move |_| interactive.set(true));
    let hint_id = format!("{id}-hint");
    let error_id = format!("{id}-error");
    let file_id = format!("{id}-file");
    let described_by = {
        let (hint_id, error_id) = (hint_id.clone(), error_id.clone());
        move || match error.with(Option::is_some) {
            true => format!("{hint_id} {error_id}"),
            false => hint_id.clone(),
        }
    };
    view! {
        <div class="field">
            <label for=id.clone()>"Private key (.pem)"</label>
            <p class="field-hint" id=hint_id>
                "Paste the whole file, from -----BEGIN PRIVATE KEY----- to the END line. \
                 It is encrypted at rest and never shown again."
            </p>
            <textarea
                id=id
                name="pem"
                node_ref=area
                rows="6"
                required
                autocomplete="off"
                spellcheck="false"
                class="mono"
                aria-invalid=move || error.with(Option::is_some).then_some("true")
                aria-describedby=described_by
            ></textarea>
            <Show when=move || interactive.get()>
                <div class="file-pick">
                    <label for=file_id.clone()>"Or read it from a file"</label>
                    <input
                        id=file_id.clone()
                        type="file"
                        accept=".pem,.p8,.key,application/x-pem-file"
                        on:change=move |ev| read_pem_file(ev, area, file_note)
                    />
                    <p class="field-hint" role="status">{move || file_note.get()}</p>
                </div>
            </Show>
            <FieldError id=error_id error/>
        </div>
    }
}

/// Reads the chosen file's text into the text area (browser only).
fn read_pem_file(
    ev: leptos::ev::Event,
    area: NodeRef<leptos::html::Textarea>,
    note: RwSignal<Option<String>>,
) {
    crate::components::file_text::read_chosen_file(ev, MAX_PEM_FILE_BYTES, move |read| {
        note.set(Some(match read {
            Ok((name, text)) => {
                crate::components::file_text::set_text(area, &text);
                format!("Read {name}.")
            }
            Err(message) => message,
        }));
    });
}

#[component]
fn AddAccountForm(org: Memo<String>, add: ServerAction<AddApiAccount>) -> impl IntoView {
    let error = action_error(add, false);
    let form = NodeRef::<leptos::html::Form>::new();
    let added = move || {
        if add.version().get() == 0 {
            return None;
        }
        add.value().with(|v| match v {
            Some(Ok(account)) => Some(format!(
                "Added {}. Test its connection above.",
                account.name
            )),
            _ => None,
        })
    };
    Effect::watch(
        move || add.value().with(|v| matches!(v, Some(Ok(_)))),
        move |ok, _, _| {
            if *ok && let Some(form) = form.get_untracked() {
                form.reset();
            }
        },
        false,
    );
    let url_error = move || {
        field_error(error, "api_base_url").with(Option::is_some)
            || field_error(error, "token_url").with(Option::is_some)
    };
    view! {
        <section class="settings-section" aria-labelledby="add-account-heading">
            <h2 id="add-account-heading">"Add an API account"</h2>
            <p class="lede">
                "In Apple Business, open Preferences › API, create an account and a private key, \
                 then copy the client ID and key ID here."
            </p>
            <ActionForm action=add node_ref=form attr:class="settings-form">
                <input type="hidden" name="org" value=move || org.get()/>
                <TextField
                    id="account-name".to_owned()
                    name="name"
                    label="Name"
                    hint="How Orchard shows this account, e.g. “Main office”."
                    error=field_error(error, "name")
                    required=true
                />
                <div class="field">
                    <label for="account-kind">"Apple product"</label>
                    <select id="account-kind" name="kind">
                        <option value="business" selected>"Apple Business"</option>
                        <option value="school">"Apple School Manager"</option>
                    </select>
                    <FieldError id="account-kind-error".to_owned() error=field_error(error, "kind")/>
                </div>
                <TextField
                    id="account-client-id".to_owned()
                    name="client_id"
                    label="Client ID"
                    hint="BUSINESSAPI. followed by a UUID (SCHOOLAPI. for Apple School Manager)."
                    error=field_error(error, "client_id")
                    required=true
                />
                <TextField
                    id="account-key-id".to_owned()
                    name="key_id"
                    label="Key ID"
                    hint="The UUID shown next to the key in Apple Business."
                    error=field_error(error, "key_id")
                    required=true
                />
                <PemField id="account-pem".to_owned() error=field_error(error, "pem")/>
                <details class="disclosure" open=url_error>
                    <summary>"Endpoints (optional)"</summary>
                    <p class="field-hint">
                        "Leave these empty to use Apple. Set them to reach a simulator or a proxy instead."
                    </p>
                    <TextField
                        id="account-api-base-url".to_owned()
                        name="api_base_url"
                        label="API base URL"
                        placeholder="https://api-business.apple.com"
                        input_type="url"
                        error=field_error(error, "api_base_url")
                    />
                    <TextField
                        id="account-token-url".to_owned()
                        name="token_url"
                        label="Token URL"
                        placeholder="https://account.apple.com/auth/oauth2/token"
                        input_type="url"
                        error=field_error(error, "token_url")
                    />
                </details>
                <div class="form-actions">
                    <button type="submit" class="button primary" disabled=move || add.pending().get()>
                        {move || if add.pending().get() { "Adding…" } else { "Add account" }}
                    </button>
                </div>
                <p class="form-error" role="alert">{move || form_error(error).get()}</p>
                <p class="form-status" role="status">{added}</p>
            </ActionForm>
        </section>
    }
}
