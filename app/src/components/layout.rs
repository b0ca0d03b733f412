//! The page frame: top bar (organization and user slots, theme), navigation, main area.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::components::theme::ThemeSwitcher;

/// One entry of the main navigation.
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
}

/// The main navigation, in the order people reach for it.
pub const NAV: [NavItem; 8] = [
    NavItem {
        href: "/devices",
        label: "Devices",
    },
    NavItem {
        href: "/assign",
        label: "Assign",
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

#[component]
pub fn Layout(children: Children) -> impl IntoView {
    view! {
        <a class="skip-link" href="#main">"Skip to content"</a>
        <header class="topbar">
            <A href="/" attr:class="brand">
                <span class="brand-mark" aria-hidden="true"></span>
                "Orchard"
            </A>
            <div class="org-switcher" data-slot="organization">
                <span class="slot-label">"Organization"</span>
                <span class="slot-value">"None connected yet"</span>
            </div>
            <div class="topbar-end">
                <ThemeSwitcher/>
                <div class="user-slot" data-slot="user">
                    <span class="slot-value">"Not signed in"</span>
                </div>
            </div>
        </header>
        <div class="frame">
            <nav class="sidebar" aria-label="Main">
                <ul>
                    {NAV
                        .iter()
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
            <main id="main" tabindex="-1">
                {children()}
            </main>
        </div>
    }
}
