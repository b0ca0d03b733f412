//! `/settings`: the Settings hub. Lists the organizations the user administers (every
//! organization for an instance administrator) and lets instance administrators create
//! one.

use leptos::prelude::*;
use leptos_meta::Title;

use super::{SettingsNav, TextField, action_error, field_error, form_error};
use crate::api::{CreateOrganization, list_organizations};
use crate::model::accounts::{OrganizationList, OrganizationSummary};
use crate::pages::error::ErrorInPlace;

#[component]
pub fn SettingsPage() -> impl IntoView {
    let create = ServerAction::<CreateOrganization>::new();
    let organizations = Resource::new(move || create.version().get(), |_| list_organizations());
    let failed = ErrorInPlace::here();
    view! {
        <Title text="Settings · Orchard"/>
        <h1>"Settings"</h1>
        <SettingsNav/>
        <section class="settings-section" aria-labelledby="organizations-heading">
            <h2 id="organizations-heading">"Organizations"</h2>
            <Transition fallback=|| view! { <p>"Loading organizations…"</p> }>
                {move || {
                    let failed = failed.clone();
                    Suspend::new(async move {
                        match organizations.await {
                            Ok(list) => view! { <OrganizationListing list create/> }.into_any(),
                            Err(error) => failed.render(error).into_any(),
                        }
                    })
                }}
            </Transition>
        </section>
    }
}

#[component]
fn OrganizationListing(
    list: OrganizationList,
    create: ServerAction<CreateOrganization>,
) -> impl IntoView {
    let OrganizationList {
        may_create,
        organizations,
    } = list;
    let listing = if organizations.is_empty() {
        view! { <p class="empty">"You administer no organization yet."</p> }.into_any()
    } else {
        view! {
            <ul class="org-list">
                {organizations.into_iter().map(|org| view! { <OrganizationItem org/> }).collect_view()}
            </ul>
        }
            .into_any()
    };
    view! {
        {listing}
        {may_create.then(|| view! { <CreateOrganizationForm create/> })}
    }
}

#[component]
fn OrganizationItem(org: OrganizationSummary) -> impl IntoView {
    let role = org.role.clone().map_or_else(
        || "No role (instance administrator)".to_owned(),
        |role| format!("Your role: {role}"),
    );
    let name = if org.manageable {
        view! { <a href=format!("/settings/organizations/{}", org.id)>{org.name}</a> }.into_any()
    } else {
        view! { <span>{org.name}</span> }.into_any()
    };
    view! {
        <li class="org-item">
            <span class="org-name">{name}</span>
            <span class="org-role">{role}</span>
            {(!org.manageable)
                .then(|| {
                    view! {
                        <span class="org-note">
                            "Give yourself the admin role under Users to manage its API accounts."
                        </span>
                    }
                })}
        </li>
    }
}

#[component]
fn CreateOrganizationForm(create: ServerAction<CreateOrganization>) -> impl IntoView {
    let error = action_error(create, false);
    let created = move || {
        create.value().with(|v| match v {
            Some(Ok(org)) => Some(format!("Created {}.", org.name)),
            _ => None,
        })
    };
    view! {
        <section class="settings-section" aria-labelledby="create-organization-heading">
            <h2 id="create-organization-heading">"Create an organization"</h2>
            <ActionForm action=create attr:class="settings-form">
                <TextField
                    id="organization-name".to_owned()
                    name="name"
                    label="Name"
                    hint="You become its administrator. Up to 100 characters."
                    error=field_error(error, "name")
                    required=true
                />
                <div class="form-actions">
                    <button type="submit" class="button primary" disabled=move || create.pending().get()>
                        {move || if create.pending().get() { "Creating…" } else { "Create organization" }}
                    </button>
                </div>
                <p class="form-error" role="alert">{move || form_error(error).get()}</p>
                <p class="form-status" role="status">{created}</p>
            </ActionForm>
        </section>
    }
}
