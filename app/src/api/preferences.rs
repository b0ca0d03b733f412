//! Per-browser preferences, kept in cookies so the server renders them on first paint.

use leptos::prelude::*;

use crate::error::AppError;
use crate::model::Theme;

/// Remembers the colour theme for this browser (one year). A form post without
/// JavaScript is redirected back to the page it came from.
#[server(prefix = "/api")]
pub async fn set_theme(theme: String) -> Result<Theme, AppError> {
    use http::{HeaderValue, header::SET_COOKIE};

    let theme: Theme = theme
        .parse()
        .map_err(|message: String| AppError::validation("theme", message))?;
    let cookie = format!(
        "{}={}; Path=/; Max-Age=31536000; SameSite=Lax",
        crate::model::THEME_COOKIE,
        theme.as_str()
    );
    let response = expect_context::<leptos_axum::ResponseOptions>();
    let value = HeaderValue::from_str(&cookie).map_err(|_| crate::ssr::internal("bad cookie"))?;
    response.append_header(SET_COOKIE, value);
    Ok(theme)
}
