//! Light and dark themes. The default follows the operating system; a choice made here
//! is stored in a cookie by a server function, so it works without JavaScript and the
//! server renders the right theme on the first paint.

use leptos::prelude::*;

use crate::api::SetTheme;
use crate::model::Theme;

/// The theme in force, provided by [`crate::App`].
#[derive(Clone, Copy)]
pub struct ThemeContext(pub RwSignal<Theme>);

/// The theme this page was rendered with: the cookie during SSR, the `<html>`
/// attribute that SSR wrote when hydrating.
pub fn initial_theme() -> Theme {
    #[cfg(feature = "ssr")]
    {
        crate::ssr::request_header("cookie")
            .and_then(|h| Theme::from_cookie_header(&h))
            .unwrap_or_default()
    }
    #[cfg(not(feature = "ssr"))]
    {
        document()
            .document_element()
            .and_then(|html| html.get_attribute("data-theme"))
            .and_then(|value| value.parse().ok())
            .unwrap_or_default()
    }
}

/// Three buttons, one per theme; the current one is pressed.
#[component]
pub fn ThemeSwitcher() -> impl IntoView {
    let ThemeContext(theme) = expect_context::<ThemeContext>();
    let action = ServerAction::<SetTheme>::new();

    Effect::new(move |_| {
        if let Some(Ok(chosen)) = action.value().get() {
            theme.set(chosen);
        }
    });
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        let value = theme.get().as_str();
        if let Some(html) = document().document_element() {
            let _ = html.set_attribute("data-theme", value);
        }
    });

    view! {
        <ActionForm action=action attr:class="theme-switcher" attr:aria-label="Colour theme">
            {Theme::ALL
                .into_iter()
                .map(|t| {
                    view! {
                        <button
                            type="submit"
                            name="theme"
                            value=t.as_str()
                            aria-pressed=move || (theme.get() == t).to_string()
                            title=format!("{} theme", t.label())
                        >
                            {t.label()}
                        </button>
                    }
                })
                .collect_view()}
        </ActionForm>
    }
}
