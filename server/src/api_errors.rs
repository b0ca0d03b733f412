//! HTTP statuses for server-function errors.
//!
//! Leptos answers every failed server function with 500 and the error in the body. This
//! layer reads that body back as an [`AppError`] and gives the response the error's own
//! status (403 for `Forbidden`, 422 for `Validation`, ...), so clients, logs and metrics
//! tell a refusal from a crash. The body is unchanged, so the browser's server-function
//! client decodes it as before. Plain form posts (no JavaScript) are redirects and pass
//! through untouched.

use app::error::AppError;
use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::{StatusCode, header};

/// Largest error body read back; AppError bodies are a few hundred bytes.
const MAX_ERROR_BODY: usize = 16 * 1024;

/// Maps a server function's 500 + JSON `AppError` to the error's status.
pub async fn error_status(request: Request, next: Next) -> Response {
    let is_api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_api || !json || response.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_ERROR_BODY).await else {
        return Response::from_parts(parts, Body::empty());
    };
    if let Ok(error) = serde_json::from_slice::<AppError>(&bytes) {
        parts.status =
            StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    }
    Response::from_parts(parts, Body::from(bytes))
}
