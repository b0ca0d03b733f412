//! After setup: the two ways to start — explore the demo organization, or connect an
//! Apple Business account.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use crate::components::layout::use_me;

#[component]
pub fn WelcomePage() -> impl IntoView {
    let me = use_me();
    let demo = move || {
        me.get().and_then(Result::ok).flatten().and_then(|me| {
            me.organizations
                .into_iter()
                .find(|o| o.slug == "demo-organization")
        })
    };
    view! {
        <Title text="Welcome · Orchard"/>
        <h1>"Orchard is ready"</h1>
        <p class="lede">"You are signed in as the first administrator. How would you like to start?"</p>
        <ul class="area-cards">
            <li class="card">
                <h2>"Explore a demo organization"</h2>
                <Suspense fallback=|| view! { <p>"Looking for the demo organization…"</p> }>
                    {move || match demo() {
                        Some(org) => {
                            view! {
                                <p>
                                    "A simulated Apple Business organization is running inside \
                                     this server, with thousands of devices to try things on."
                                </p>
                                <A href=format!("/settings/organizations/{}", org.id)>
                                    {format!("Open {}", org.name)}
                                </A>
                            }
                                .into_any()
                        }
                        None => {
                            view! {
                                <p>
                                    "The demo runs when no Apple account is connected and \
                                     demo mode is not switched off ("
                                    <code>"[demo] enabled"</code>
                                    ")."
                                </p>
                            }
                                .into_any()
                        }
                    }}
                </Suspense>
            </li>
            <li class="card">
                <h2>"Connect Apple Business"</h2>
                <p>
                    "Create an organization and add an API account: the client id, key id and \
                     the private key (.pem) from Apple Business. The key is encrypted at rest \
                     and never shown again."
                </p>
                <A href="/settings">"Go to Settings"</A>
            </li>
        </ul>
    }
}
