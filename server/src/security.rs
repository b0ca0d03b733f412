//! Security middleware: response headers (with a per-request CSP nonce) and the
//! refusal of cross-site state-changing requests.

use app::ssr::CspNonce;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

/// Adds the security headers and makes a fresh CSP nonce available to the renderer.
pub async fn headers(mut request: Request, next: Next) -> Response {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    request.extensions_mut().insert(CspNonce(nonce.clone()));
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    // 'wasm-unsafe-eval' allows compiling the hydration wasm and nothing else; inline
    // scripts run only with this response's nonce.
    let csp = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // `same-origin` keeps the Referer on our own form posts (a no-JS server-function
    // form redirects back to it) and sends nothing to other sites.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// Refuses state-changing requests that a browser marks as coming from another site.
///
/// Browsers send `Sec-Fetch-Site` (modern) or at least `Origin` on every POST; a request
/// with neither did not come from a browser page and cannot carry a victim's cookies
/// cross-site, so it passes.
pub async fn reject_cross_site(request: Request, next: Next) -> Response {
    if is_safe(request.method()) || is_same_site(request.headers()) {
        next.run(request).await
    } else {
        (
            StatusCode::FORBIDDEN,
            "Cross-site request refused: this action must come from an Orchard page.",
        )
            .into_response()
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn is_same_site(headers: &HeaderMap) -> bool {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    match (text(header::ORIGIN), text(header::HOST)) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin_host(origin) == Some(host),
        (Some(_), None) => false,
    }
}

/// `https://orchard.example:8443` → `orchard.example:8443`; `null` and junk → `None`.
fn origin_host(origin: &str) -> Option<&str> {
    let (_, rest) = origin.split_once("://")?;
    (!rest.is_empty() && !rest.contains('/')).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn fetch_metadata_decides_when_present() {
        assert!(is_same_site(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!is_same_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(!is_same_site(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!is_same_site(&headers(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "http://orchard.test"),
            ("host", "orchard.test"),
        ])));
    }

    #[test]
    fn the_origin_must_match_the_host_without_fetch_metadata() {
        assert!(is_same_site(&headers(&[
            ("origin", "http://127.0.0.1:3000"),
            ("host", "127.0.0.1:3000"),
        ])));
        assert!(!is_same_site(&headers(&[
            ("origin", "http://evil.test"),
            ("host", "127.0.0.1:3000"),
        ])));
        assert!(!is_same_site(&headers(&[
            ("origin", "null"),
            ("host", "127.0.0.1:3000"),
        ])));
    }

    #[test]
    fn requests_without_browser_headers_pass() {
        assert!(is_same_site(&headers(&[("host", "127.0.0.1:3000")])));
    }
}
