//! `/settings/users`: instance administrators list Orchard's users, create local users,
//! give and take roles per organization, disable, and reset a second factor or password.
//!
//! Every form is an `ActionForm`, so the page works without JavaScript (the post is
//! answered by a redirect back here, errors travel in the URL). Hydrated, each row keeps
//! its own actions, so one row's pending state or error never shows on another; a
//! success refetches the list (except a password reset, which only says so in its row,
//! as nothing listed changes). Errors of row actions that came back in the URL (no
//! JavaScript) cannot name their row, so the page shows them once above the table.

use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;

use super::SettingsNav;
use crate::api::{
    CreateUser, RemoveUserRole, ResetUserPassword, ResetUserTotp, SetUserDisabled, SetUserRole,
    list_users,
};
use crate::components::fields::{Field, explain, failure, succeeded};
use crate::components::form::FormMessage;
use crate::model::users::{OrgOption, ROLES, UserSummary, UsersOverview, role_label};
use crate::pages::error::ErrorInPlace;

/// Bumped by a row after a successful change, so the list is loaded again.
#[derive(Clone, Copy)]
struct Reload(RwSignal<u32>);

#[component]
pub fn UsersPage() -> impl IntoView {
    let create = ServerAction::<CreateUser>::new();
    let reload = RwSignal::new(0_u32);
    provide_context(Reload(reload));
    let overview = Resource::new(
        move || (create.version().get(), reload.get()),
        |_| list_users(),
    );
    let failed = ErrorInPlace::here();
    view! {
        <Title text="Users · Orchard"/>
        <SettingsNav/>
        <h1>"Users"</h1>
        <p class="lede">
            "People who may sign in to Orchard and their role in each organization. \
             Disabled users are signed out on their next click."
        </p>
        <UrlErrors/>
        <Suspense fallback=|| view! { <p class="status-line">"Loading users…"</p> }>
            {move || {
                overview
                    .get()
                    .map(|result| match result {
                        // Not `into_any`: the table's view type is too deep for it in wasm.
                        Ok(overview) => Either::Left(view! {
                            <UserTable overview=overview.clone()/>
                            <CreateUserForm action=create organizations=overview.organizations/>
                        }),
                        Err(error) => Either::Right(failed.render(error)),
                    })
            }}
        </Suspense>
    }
}

/// Failures of row actions posted without JavaScript, read back from the URL.
#[component]
fn UrlErrors() -> impl IntoView {
    let errors = [
        failure(ServerAction::<SetUserRole>::new()),
        failure(ServerAction::<RemoveUserRole>::new()),
        failure(ServerAction::<SetUserDisabled>::new()),
        failure(ServerAction::<ResetUserTotp>::new()),
        failure(ServerAction::<ResetUserPassword>::new()),
    ];
    move || {
        errors
            .iter()
            .find_map(|e| e.get())
            .map(|e| view! { <p class="form-error" role="alert">{explain(&e)}</p> })
    }
}

#[component]
fn UserTable(overview: UsersOverview) -> impl IntoView {
    let UsersOverview {
        users,
        organizations,
        my_id,
    } = overview;
    view! {
        <div class="table-scroll">
            <table class="data-table users-table">
                <caption class="sr-only">"Orchard users"</caption>
                <thead>
                    <tr>
                        <th scope="col">"User"</th>
                        <th scope="col">"Sign-in"</th>
                        <th scope="col">"Last sign-in"</th>
                        <th scope="col">"Roles"</th>
                        <th scope="col">"Actions"</th>
                    </tr>
                </thead>
                <tbody>
                    {users
                        .into_iter()
                        .map(|user| {
                            let is_me = user.id == my_id;
                            view! {
                                <UserRowView user organizations=organizations.clone() is_me/>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// One of a row's actions, with its own pending state and error. When `reload` is given,
/// a success loads the list again (the row shows what changed).
fn row_action<S>(reload: Option<RwSignal<u32>>) -> ServerAction<S>
where
    S: leptos::server_fn::ServerFn<Error = crate::error::AppError> + Clone + Send + Sync + 'static,
    S::Output: Send + Sync + 'static,
{
    let action = ServerAction::<S>::new();
    // An error read from the URL belongs to no row in particular; `UrlErrors` shows it.
    action.value().set(None);
    if let Some(reload) = reload {
        Effect::new(move |_| {
            if action.value().with(|v| matches!(v, Some(Ok(_)))) {
                reload.update(|n| *n += 1);
            }
        });
    }
    action
}

#[component]
fn UserRowView(user: UserSummary, organizations: Vec<OrgOption>, is_me: bool) -> impl IntoView {
    let Reload(reload) = expect_context::<Reload>();
    let set_role = row_action::<SetUserRole>(Some(reload));
    let remove_role = row_action::<RemoveUserRole>(Some(reload));
    let disable = row_action::<SetUserDisabled>(Some(reload));
    let reset_totp = row_action::<ResetUserTotp>(Some(reload));
    // Nothing in the list shows a password: the row stays and says it was changed.
    let reset_password = row_action::<ResetUserPassword>(None);
    let errors = [
        failure(set_role),
        failure(remove_role),
        failure(disable),
        failure(reset_totp),
        failure(reset_password),
    ];
    let row_error = Signal::derive(move || errors.iter().find_map(|e| e.get()));
    let password_done = succeeded(reset_password);
    let row_id = format!("user-{}", user.id);
    let error_id = format!("{row_id}-error");
    let UserSummary {
        id,
        username,
        display_name,
        email,
        sso,
        totp_enabled,
        disabled,
        instance_admin,
        last_sign_in,
        roles,
    } = user;
    let has_roles = !roles.is_empty();
    let role_items = roles
        .into_iter()
        .map(|r| {
            let label = format!("Remove {username}'s role in {}", r.org_name);
            let id = id.clone();
            view! {
                <li>
                    <span>
                        {r.org_name} ": " <strong>{role_label(&r.role).to_owned()}</strong>
                    </span>
                    <ActionForm action=remove_role attr:class="inline-form">
                        <input type="hidden" name="user" value=id/>
                        <input type="hidden" name="org" value=r.org_id/>
                        <button
                            type="submit"
                            class="link-button"
                            aria-label=label
                            disabled=move || remove_role.pending().get()
                        >
                            "Remove"
                        </button>
                    </ActionForm>
                </li>
            }
        })
        .collect_view();
    let org_options = organizations
        .into_iter()
        .map(|o| view! { <option value=o.id>{o.name}</option> })
        .collect_view();
    let disable_form = if !is_me || disabled {
        Some({
            let verb = if disabled { "Enable" } else { "Disable" };
            let (id, label) = (id.clone(), format!("{verb} {username}"));
            view! {
                <ActionForm action=disable attr:class="inline-form">
                    <input type="hidden" name="user" value=id.clone()/>
                    <input type="hidden" name="disabled" value=(!disabled).to_string()/>
                    <button
                        type="submit"
                        class:danger=!disabled
                        disabled=move || disable.pending().get()
                        aria-label=label
                    >
                        {verb}
                    </button>
                </ActionForm>
            }
        })
    } else {
        None
    };
    let totp_form = if totp_enabled && !sso {
        Some({
            let (id, label) = (id.clone(), format!("Reset TOTP of {username}"));
            view! {
                <ActionForm action=reset_totp attr:class="inline-form">
                    <input type="hidden" name="user" value=id.clone()/>
                    <button
                        type="submit"
                        disabled=move || reset_totp.pending().get()
                        aria-label=label
                    >
                        "Reset TOTP"
                    </button>
                </ActionForm>
            }
        })
    } else {
        None
    };
    let password_form = if !sso {
        Some({
            let field_id = format!("{row_id}-password");
            let (id, label, error_id) = (
                id.clone(),
                format!("New password for {username}"),
                error_id.clone(),
            );
            view! {
                <details class="row-disclosure">
                    <summary>"Reset password"</summary>
                    <ActionForm action=reset_password attr:class="inline-form">
                        <input type="hidden" name="user" value=id.clone()/>
                        <label for=field_id.clone()>{label}</label>
                        <input
                            id=field_id
                            name="password"
                            type="password"
                            autocomplete="new-password"
                            minlength="12"
                            required
                            aria-describedby=error_id.clone()
                        />
                        <button type="submit" disabled=move || reset_password.pending().get()>
                            {move || {
                                if reset_password.pending().get() { "Saving…" } else { "Set password" }
                            }}
                        </button>
                    </ActionForm>
                </details>
            }
        })
    } else {
        None
    };
    let (org_field, role_field) = (format!("{row_id}-org"), format!("{row_id}-role"));
    let last = match last_sign_in {
        Some(at) => view! { <time datetime=at.clone()>{short_time(&at)}</time> }.into_any(),
        None => view! { <span class="muted">"Never"</span> }.into_any(),
    };
    view! {
        <tr id=row_id.clone() data-username=username.clone() class:disabled-user=disabled>
            <th scope="row">
                <span class="user-name">{display_name}</span>
                <span class="user-login">{username.clone()}</span>
                {email.map(|e| view! { <span class="user-email">{e}</span> })}
            </th>
            <td>
                <ul class="badges">
                    <li class="badge">{if sso { "SSO" } else { "Local" }}</li>
                    {(!sso)
                        .then(|| {
                            view! {
                                <li class="badge">
                                    {if totp_enabled { "TOTP on" } else { "TOTP off" }}
                                </li>
                            }
                        })}
                    {instance_admin
                        .then(|| view! { <li class="badge badge-accent">"Instance admin"</li> })}
                    {disabled.then(|| view! { <li class="badge badge-danger">"Disabled"</li> })}
                </ul>
            </td>
            <td>{last}</td>
            <td>
                <ul class="role-list">
                    {role_items}
                    {(!has_roles).then(|| view! { <li class="muted">"No role"</li> })}
                </ul>
                <details class="row-disclosure">
                    <summary>"Set a role"</summary>
                    <ActionForm action=set_role attr:class="inline-form">
                        <input type="hidden" name="user" value=id/>
                        <label for=org_field.clone()>"Organization"</label>
                        <select id=org_field name="org" required>
                            {org_options}
                        </select>
                        <label for=role_field.clone()>"Role"</label>
                        <RoleSelect id=role_field with_none=false/>
                        <button type="submit" disabled=move || set_role.pending().get()>
                            {move || if set_role.pending().get() { "Saving…" } else { "Save role" }}
                        </button>
                    </ActionForm>
                </details>
            </td>
            <td class="row-actions">
                {disable_form}
                {totp_form}
                {password_form}
                <p class="row-status" id=error_id.clone() aria-live="polite">
                    {move || {
                        row_error
                            .get()
                            .map(|e| view! { <span class="field-error">{explain(&e)}</span> })
                    }}
                    {move || password_done.get().then_some("Password changed.")}
                </p>
            </td>
        </tr>
    }
}

/// The four roles, optionally after a "no role" choice.
#[component]
fn RoleSelect(id: String, with_none: bool) -> impl IntoView {
    view! {
        <select id=id name="role" required=!with_none>
            {with_none.then(|| view! { <option value="">"No role"</option> })}
            {ROLES
                .iter()
                .map(|(name, label)| view! { <option value=*name>{*label}</option> })
                .collect_view()}
        </select>
    }
}

#[component]
fn CreateUserForm(
    action: ServerAction<CreateUser>,
    organizations: Vec<OrgOption>,
) -> impl IntoView {
    let error = failure(action);
    let created = succeeded(action);
    view! {
        <section class="panel" aria-labelledby="new-user-heading">
            <h2 id="new-user-heading">"Create a local user"</h2>
            <ActionForm action attr:class="form-grid">
                <Field form="new-user" name="username" label="Username" autocomplete="off" required=true error/>
                <Field form="new-user" name="display_name" label="Display name" autocomplete="off" error/>
                <Field form="new-user" name="email" label="Email (optional)" kind="email" autocomplete="off" error/>
                <Field
                    form="new-user"
                    name="password"
                    label="Initial password"
                    kind="password"
                    autocomplete="new-password"
                    hint="At least 12 characters. Tell the person over a separate channel.".to_owned()
                    required=true
                    error
                />
                <Field
                    form="new-user"
                    name="password_confirm"
                    label="Repeat the password"
                    kind="password"
                    autocomplete="new-password"
                    required=true
                    error
                />
                <div class="form-field">
                    <label for="new-user-org">"Organization"</label>
                    <select id="new-user-org" name="org">
                        <option value="">"None yet"</option>
                        {organizations
                            .into_iter()
                            .map(|o| view! { <option value=o.id>{o.name}</option> })
                            .collect_view()}
                    </select>
                </div>
                <div class="form-field">
                    <label for="new-user-role">"Role there"</label>
                    <RoleSelect id="new-user-role".to_owned() with_none=true/>
                </div>
                <FormMessage
                    error
                    fields=&["username", "display_name", "email", "password", "password_confirm"]
                />
                <div class="form-actions">
                    <button type="submit" class="primary" disabled=move || action.pending().get()>
                        {move || if action.pending().get() { "Creating…" } else { "Create user" }}
                    </button>
                    <p class="form-status" aria-live="polite">
                        {move || created.get().then_some("User created.")}
                    </p>
                </div>
            </ActionForm>
        </section>
    }
}

/// `2026-11-26T12:30:05Z` → `2026-11-26 12:30 UTC`, without a time library in wasm.
fn short_time(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..16)) {
        (Some(day), Some(minute)) => format!("{day} {minute} UTC"),
        _ => rfc3339.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::short_time;

    #[test]
    fn times_are_shortened_to_the_minute() {
        assert_eq!(short_time("2026-11-26T12:30:05Z"), "2026-11-26 12:30 UTC");
        assert_eq!(short_time("soon"), "soon");
    }
}
