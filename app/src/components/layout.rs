//! The page frame: top bar (organization and user slots, theme), navigation, main area.

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_location;

use crate::api::{SignOut, get_me};
use crate::components::theme::ThemeSwitcher;
use crate::error::AppError;
use crate::model::Me;

/// One entry of the main navigation.
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
}

/// The main navigation, in the order people reach for it.
pub const NAV: [NavItem; 9] = [
    NavItem {
        href: "/devices",
        label: "Devices",
    },
    NavItem {
        href: "/assign",
        label: "Assign devices",
    },
    NavItem {
        href: "/jobs",
        label: "Jobs",
    },
    NavItem {
        href: "/blueprints",
        label: "Blueprints",
    },
    NavItem {
        href: "/configurations",
        label: "Configurations",
    },
    NavItem {
        href: "/directory",
        label: "Directory",
    },
    NavItem {
        href: "/audit",
        label: "Audit",
    },
    NavItem {
        href: "/fleet",
        label: "Fleet",
    },
    NavItem {
        href: "/settings",
        label: "Settings",
    },
];

/// The signed-in user (`None` when signed out), refetched on every navigation so that
/// signing in or out, or a changed role, shows at once.
pub type MeResource = Resource<Result<Option<Me>, AppError>>;

/// Provides the [`MeResource`]; called once by [`crate::App`] inside the router.
pub fn provide_me() {
    let location = use_location();
    let me: MeResource = Resource::new(move || location.pathname.get(), |_| get_me());
    provide_context(me);
}

/// The signed-in user resource provided by [`provide_me`].
pub fn use_me() -> MeResource {
    expect_context::<MeResource>()
}

#[component]
pub fn Layout(children: Children) -> impl IntoView {
    let me = use_me();
    let signed_in = move || me.get().and_then(Result::ok).flatten();
    view! {
        <a class="skip-link" href="#main">"Skip to content"</a>
        <header class="topbar">
            <A href="/" attr:class="brand">
                <span class="brand-mark" aria-hidden="true"></span>
                "Orchard"
            </A>
            <Transition fallback=|| ()>
                {move || signed_in().map(|me| view! { <OrganizationSlot me/> })}
            </Transition>
            <div class="topbar-end">
                <ThemeSwitcher/>
                <Transition fallback=|| {
                    view! {
                        <div class="user-slot" data-slot="user">
                            <span class="slot-value">"…"</span>
                        </div>
                    }
                }>
                    {move || match signed_in() {
                        Some(me) => view! { <UserSlot me/> }.into_any(),
                        None => {
                            view! {
                                <div class="user-slot" data-slot="user">
                                    <span class="slot-value">"Not signed in"</span>
                                </div>
                            }
                                .into_any()
                        }
                    }}
                </Transition>
            </div>
        </header>
        <div class="frame">
            <Transition fallback=|| ()>
                {move || signed_in().map(|me| view! { <Sidebar me/> })}
            </Transition>
            <main id="main" tabindex="-1">
                {children()}
            </main>
        </div>
    }
}

/// The main navigation; Assign devices and Jobs only for admins and operators, Settings
/// only for those who administer something.
#[component]
fn Sidebar(me: Me) -> impl IntoView {
    let settings = me.sees_settings();
    let assign = me.may_assign();
    view! {
        <nav class="sidebar" aria-label="Main">
            <ul>
                {NAV
                    .iter()
                    .filter(|item| settings || item.href != "/settings")
                    .filter(|item| assign || !matches!(item.href, "/assign" | "/jobs"))
                    .map(|item| {
                        view! {
                            <li>
                                <A href=item.href>{item.label}</A>
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        </nav>
    }
}

/// The organization the user works in, with their role there.
#[component]
fn OrganizationSlot(me: Me) -> impl IntoView {
    let summary = match me.organizations.as_slice() {
        [] => "No organization yet".to_owned(),
        [only] => format!("{} · {}", only.name, only.role),
        [first, rest @ ..] => format!("{} · {} (+{} more)", first.name, first.role, rest.len()),
    };
    view! {
        <div class="org-switcher" data-slot="organization">
            <span class="slot-label">"Organization"</span>
            <span class="slot-value">{summary}</span>
        </div>
    }
}

/// Who is signed in, a link to their account, and sign-out (a POST).
#[component]
fn UserSlot(me: Me) -> impl IntoView {
    let sign_out = ServerAction::<SignOut>::new();
    view! {
        <div class="user-slot" data-slot="user">
            <A href="/account" attr:class="slot-value">
                {me.display_name}
            </A>
            <ActionForm action=sign_out attr:class="sign-out">
                <button type="submit">"Sign out"</button>
            </ActionForm>
        </div>
    }
}
