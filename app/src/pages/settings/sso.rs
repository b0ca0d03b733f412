//! `/settings/sso`: single sign-on for instance administrators. Shows the provider as
//! configured (what to register at the provider) and manages the group → role rules;
//! rules from the configuration file are listed read-only beside them.

use leptos::prelude::*;
use leptos_meta::Title;

use super::{SettingsNav, TextField, action_error, field_error, form_error};
use crate::api::{AddSsoRule, DeleteSsoRule, get_sso_settings};
use crate::model::sso::{SsoRule, SsoSettings};
use crate::pages::error::ErrorInPlace;

/// The roles a rule can grant, most powerful first.
const ROLES: [&str; 4] = ["admin", "operator", "helpdesk", "viewer"];

#[component]
pub fn SsoSettingsPage() -> impl IntoView {
    let add = ServerAction::<AddSsoRule>::new();
    let remove = ServerAction::<DeleteSsoRule>::new();
    let settings = Resource::new(
        move || (add.version().get(), remove.version().get()),
        |_| get_sso_settings(),
    );
    let failed = ErrorInPlace::here();
    view! {
        <Title text="Single sign-on · Settings · Orchard"/>
        <h1>"Settings"</h1>
        <SettingsNav/>
        <Transition fallback=|| view! { <p>"Loading single sign-on settings…"</p> }>
            {move || {
                let failed = failed.clone();
                Suspend::new(async move {
                    match settings.await {
                        Ok(settings) => view! { <SsoView settings add remove/> }.into_any(),
                        Err(error) => failed.render(error).into_any(),
                    }
                })
            }}
        </Transition>
    }
}

#[component]
fn SsoView(
    settings: SsoSettings,
    add: ServerAction<AddSsoRule>,
    remove: ServerAction<DeleteSsoRule>,
) -> impl IntoView {
    let provider = if settings.enabled {
        view! {
            <dl class="facts">
                <dt>"Issuer"</dt>
                <dd>
                    <code>{settings.issuer}</code>
                </dd>
                <dt>"Client id"</dt>
                <dd>
                    <code>{settings.client_id}</code>
                </dd>
                <dt>"Redirect URL to register"</dt>
                <dd>
                    <code>{settings.redirect_url}</code>
                </dd>
                <dt>"Groups claim"</dt>
                <dd>
                    <code>{settings.groups_claim}</code>
                </dd>
                <dt>"Button"</dt>
                <dd>{settings.button_label}</dd>
            </dl>
        }
        .into_any()
    } else {
        view! {
            <p class="notice" role="status">
                "Single sign-on is off. Set the " <code>"[oidc]"</code>
                " section of the configuration (issuer, client id and secret) and restart Orchard."
            </p>
        }
        .into_any()
    };
    let remove_error = form_error(action_error(remove, false));
    view! {
        <section class="settings-section" aria-labelledby="sso-provider-heading">
            <h2 id="sso-provider-heading">"Identity provider"</h2>
            {provider}
        </section>
        <section class="settings-section" aria-labelledby="sso-rules-heading">
            <h2 id="sso-rules-heading">"Groups and roles"</h2>
            <p class="lede">
                "At every SSO sign-in, a person's groups decide their role in each organization; \
                 the most powerful role wins. Changes apply at their next sign-in."
            </p>
            <RuleTable rules=settings.configured_rules caption="From the configuration file" remove=None/>
            <RuleTable rules=settings.stored_rules caption="Added here" remove=Some(remove)/>
            {move || remove_error.get().map(|m| view! { <p class="form-error" role="alert">{m}</p> })}
            <AddRuleForm organizations=settings.organizations add/>
        </section>
    }
}

#[component]
fn RuleTable(
    rules: Vec<SsoRule>,
    caption: &'static str,
    remove: Option<ServerAction<DeleteSsoRule>>,
) -> impl IntoView {
    if rules.is_empty() {
        return view! { <p class="empty">{format!("{caption}: none.")}</p> }.into_any();
    }
    view! {
        <table class="data-table">
            <caption>{caption}</caption>
            <thead>
                <tr>
                    <th scope="col">"Group"</th>
                    <th scope="col">"Organization"</th>
                    <th scope="col">"Role"</th>
                    {remove.map(|_| view! { <th scope="col">"Action"</th> })}
                </tr>
            </thead>
            <tbody>
                {rules
                    .into_iter()
                    .map(|rule| {
                        let (org_id, group) = (rule.org_id.clone(), rule.group.clone());
                        let label = format!(
                            "Remove the rule for {} in {}",
                            rule.group,
                            rule.organization,
                        );
                        let action = remove
                            .map(move |remove| {
                                view! {
                                    <td>
                                        <ActionForm action=remove>
                                            <input type="hidden" name="org" value=org_id/>
                                            <input type="hidden" name="group" value=group/>
                                            <button type="submit" class="danger" aria-label=label>
                                                "Remove"
                                            </button>
                                        </ActionForm>
                                    </td>
                                }
                            });
                        view! {
                            <tr>
                                <td>
                                    <code>{rule.group}</code>
                                </td>
                                <td>{rule.organization}</td>
                                <td>{rule.role}</td>
                                {action}
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

#[component]
fn AddRuleForm(
    organizations: Vec<crate::model::sso::SsoOrganization>,
    add: ServerAction<AddSsoRule>,
) -> impl IntoView {
    let error = action_error(add, false);
    view! {
        <ActionForm action=add attr:class="stacked-form" attr:aria-labelledby="sso-add-heading">
            <h3 id="sso-add-heading">"Add a rule"</h3>
            <TextField
                id="sso-group".to_owned()
                name="group"
                label="Group (exactly as in the groups claim)"
                error=field_error(error, "group")
                required=true
            />
            <label for="sso-org">"Organization"</label>
            <select id="sso-org" name="org" required>
                {organizations
                    .into_iter()
                    .map(|org| view! { <option value=org.id>{org.name}</option> })
                    .collect_view()}
            </select>
            <label for="sso-role">"Role"</label>
            <select id="sso-role" name="role">
                {ROLES
                    .into_iter()
                    .map(|role| view! { <option value=role selected=role == "viewer">{role}</option> })
                    .collect_view()}
            </select>
            {move || form_error(error).get().map(|m| view! { <p class="form-error" role="alert">{m}</p> })}
            <button type="submit" class="primary" disabled=move || add.pending().get()>
                "Add rule"
            </button>
        </ActionForm>
    }
}
