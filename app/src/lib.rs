//! Orchard's pages, components and server functions.
//!
//! Compiled twice: with `ssr` into the server, with `hydrate` into the browser's wasm.
//! Data flows browser → component → `#[server]` fn (in `api/`) → `backend` → `apple`.

pub mod api;
pub mod components;
pub mod error;
pub mod model;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod ssr;

use leptos::prelude::*;
use leptos_meta::{Link, Meta, MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{SsrMode, path};

use crate::components::layout::{Layout, provide_me};
use crate::components::theme::{ThemeContext, initial_theme};
use crate::pages::account::AccountPage;
use crate::pages::areas::AreaPage;
use crate::pages::assign::{ActionPage, AssignPage, DraftInputPage, PreviewPage};
use crate::pages::devices::{DevicePage, DevicesPage, ServicesPage};
use crate::pages::error::ErrorPage;
use crate::pages::home::HomePage;
use crate::pages::jobs::{ConfirmPage, JobPage, JobsPage};
use crate::pages::login::LoginPage;
use crate::pages::not_found::NotFoundPage;
use crate::pages::settings::accounts::OrganizationPage;
use crate::pages::settings::audit::AuditPage;
use crate::pages::settings::organizations::SettingsPage;
use crate::pages::settings::sso::SsoSettingsPage;
use crate::pages::settings::users::UsersPage;
use crate::pages::setup::SetupPage;
use crate::pages::welcome::WelcomePage;

/// The HTML document around the app; rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    ssr::provide_request_nonce();
    let theme = initial_theme();
    view! {
        <!DOCTYPE html>
        <html lang="en" data-theme=theme.as_str()>
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The application: layout, routes, and the error boundary around every page.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    provide_context(ThemeContext(RwSignal::new(initial_theme())));
    // Taken here, where the request's context is always reachable: see `set_status`.
    #[cfg(feature = "ssr")]
    let response = use_context::<leptos_axum::ResponseOptions>();

    view! {
        <Stylesheet id="orchard" href="/pkg/orchard.css"/>
        <Link rel="icon" type_="image/svg+xml" href="/favicon.svg"/>
        <Meta name="color-scheme" content="light dark"/>
        <Title text="Orchard"/>
        <Router>
            <CurrentUserProvider>
            <Layout>
                <ErrorBoundary fallback=move |errors| {
                    #[cfg(feature = "ssr")]
                    crate::pages::error::set_status(response.as_ref(), &errors);
                    view! { <ErrorPage errors/> }
                }>
                    // Every page shows the signed-in user in the top bar: `Async` renders
                    // once that is known, so pages are complete without JavaScript.
                    <Routes fallback=|| view! { <NotFoundPage/> }>
                        <Route path=path!("/") view=HomePage ssr=SsrMode::Async/>
                        <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async/>
                        <Route path=path!("/setup") view=SetupPage ssr=SsrMode::Async/>
                        <Route path=path!("/welcome") view=WelcomePage ssr=SsrMode::Async/>
                        <Route path=path!("/devices") view=DevicesPage ssr=SsrMode::Async/>
                        <Route path=path!("/devices/:serial") view=DevicePage ssr=SsrMode::Async/>
                        <Route path=path!("/services") view=ServicesPage ssr=SsrMode::Async/>
                        <Route path=path!("/assign") view=AssignPage ssr=SsrMode::Async/>
                        <Route path=path!("/assign/:draft") view=DraftInputPage ssr=SsrMode::Async/>
                        <Route path=path!("/assign/:draft/action") view=ActionPage ssr=SsrMode::Async/>
                        <Route path=path!("/assign/:draft/preview") view=PreviewPage ssr=SsrMode::Async/>
                        <Route
                            path=path!("/assign/:draft/confirm")
                            view=ConfirmPage
                            ssr=SsrMode::Async
                        />
                        <Route path=path!("/jobs") view=JobsPage ssr=SsrMode::Async/>
                        <Route path=path!("/jobs/:id") view=JobPage ssr=SsrMode::Async/>
                        <Route
                            path=path!("/blueprints")
                            view=|| view! { <AreaPage path="/blueprints"/> }
                            ssr=SsrMode::Async
                        />
                        <Route
                            path=path!("/configurations")
                            view=|| view! { <AreaPage path="/configurations"/> }
                            ssr=SsrMode::Async
                        />
                        <Route
                            path=path!("/directory")
                            view=|| view! { <AreaPage path="/directory"/> }
                            ssr=SsrMode::Async
                        />
                        <Route
                            path=path!("/audit")
                            view=|| view! { <AreaPage path="/audit"/> }
                            ssr=SsrMode::Async
                        />
                        <Route
                            path=path!("/fleet")
                            view=|| view! { <AreaPage path="/fleet"/> }
                            ssr=SsrMode::Async
                        />
                        <Route path=path!("/settings") view=SettingsPage ssr=SsrMode::Async/>
                        <Route path=path!("/settings/sso") view=SsoSettingsPage ssr=SsrMode::Async/>
                        <Route
                            path=path!("/settings/organizations/:org")
                            view=OrganizationPage
                            ssr=SsrMode::Async
                        />
                        <Route path=path!("/settings/users") view=UsersPage ssr=SsrMode::Async/>
                        <Route path=path!("/settings/audit") view=AuditPage ssr=SsrMode::Async/>
                        <Route path=path!("/account") view=AccountPage ssr=SsrMode::Async/>
                    </Routes>
                </ErrorBoundary>
            </Layout>
            </CurrentUserProvider>
        </Router>
    }
}

/// Provides the signed-in user to everything inside the router.
#[component]
fn CurrentUserProvider(children: Children) -> impl IntoView {
    provide_me();
    children()
}
