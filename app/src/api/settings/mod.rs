//! Server functions of the Settings area, one module per resource.

pub mod accounts;
pub mod organizations;

/// Gives a failed call the HTTP status of its error (403, 404, 422, …) instead of the
/// generic 500 of server functions, so clients and tests can rely on it. A form posted
/// without JavaScript is left alone: it must stay a redirect back to its page, which
/// carries the error in the URL.
#[cfg(feature = "ssr")]
pub(crate) fn with_status<T>(
    result: Result<T, crate::error::AppError>,
) -> Result<T, crate::error::AppError> {
    use leptos::prelude::use_context;

    if let Err(error) = &result {
        let plain_form =
            crate::ssr::request_header("accept").is_some_and(|accept| accept.contains("text/html"));
        let response = use_context::<leptos_axum::ResponseOptions>();
        if let (false, Some(response)) = (plain_form, response) {
            response.set_status(
                http::StatusCode::from_u16(error.status())
                    .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR),
            );
        }
    }
    result
}
