//! HTTP-level tests of the server: the real router on port 0 with a fresh SQLite file.

mod common;

use backend::Config;
use backend::identity::Role;
use common::TestApp;
use leptos::server_fn::ServerFn;
use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION,
    ORIGIN, REFERER, SET_COOKIE,
};

#[tokio::test]
async fn liveness_answers_ok() {
    let app = TestApp::spawn().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn readiness_follows_the_database() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);

    app.store.close().await;

    assert_eq!(
        app.get("/readyz").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
}

/// An instance with one organization and its admin, signed in.
async fn signed_in_admin() -> (TestApp, common::Browser) {
    let app = TestApp::spawn().await;
    let org = app.create_org("Acme").await;
    let browser = app.user_with_role("ada", org, Some(Role::Admin)).await;
    (app, browser)
}

#[tokio::test]
async fn pages_are_rendered_on_the_server_with_the_layout() {
    let (_app, browser) = signed_in_admin().await;
    let response = browser.get("/").await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"<nav aria-label="Main""#), "{html}");
    assert!(html.contains("Welcome to Orchard"));
    assert!(html.contains("storage: SQLite"));
    assert!(html.contains(r#"data-theme="system""#));
    assert!(html.contains("/pkg/orchard.js"));
}

/// Building another app in the same process (every test here does) must not stall the
/// pages rendering meanwhile: see `server::route_list`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_keep_rendering_while_other_apps_are_built() {
    let (_app, browser) = signed_in_admin().await;
    let building = tokio::spawn(async {
        for _ in 0..30 {
            drop(TestApp::spawn().await);
        }
    });
    let mut pages = 0;
    while !building.is_finished() {
        let page = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            let response = browser.get("/").await;
            (response.status(), response.text().await.unwrap())
        })
        .await
        .expect("the home page stalled while another app was being built");
        assert_eq!(page.0, StatusCode::OK);
        assert!(page.1.contains("storage: SQLite"), "{}", page.1);
        pages += 1;
    }
    building.await.unwrap();
    assert!(pages > 1, "only {pages} page(s) rendered during the builds");
}

#[tokio::test]
async fn an_unknown_page_is_a_404_with_the_not_found_page() {
    let (_app, browser) = signed_in_admin().await;
    let response = browser.get("/no/such/page").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.text().await.unwrap().contains("Page not found"));
}

#[tokio::test]
async fn a_failing_database_answers_500_with_an_incident_id() {
    let (app, browser) = signed_in_admin().await;
    app.store.close().await;

    let response = browser.get("/").await;

    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let html = response.text().await.unwrap();
    assert!(html.contains("Something went wrong"), "{html}");
    assert!(html.contains("incident"), "{html}");
    assert!(!html.contains("sqlx"), "internals leaked: {html}");
}

#[tokio::test]
async fn pages_carry_security_headers_and_scripts_carry_the_csp_nonce() {
    let app = TestApp::spawn().await;
    let response = app.get("/login").await;
    let headers = response.headers().clone();
    let csp = headers[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("'wasm-unsafe-eval'"), "{csp}");
    assert!(!csp.contains("'unsafe-inline'"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "same-origin");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a nonce in the CSP");
    let html = response.text().await.unwrap();
    assert!(html.contains(&format!(r#"nonce="{nonce}""#)), "{html}");

    let again = app.get("/login").await;
    let other = again.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(!other.contains(nonce), "nonces must differ per response");
}

#[tokio::test]
async fn a_same_site_server_function_call_sets_the_theme_cookie() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(app.url(app::api::SetTheme::PATH))
        .header(ORIGIN, &app.base)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("theme=dark")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap();
    assert!(cookie.starts_with("orchard_theme=dark;"), "{cookie}");

    let page = app
        .client
        .get(app.url("/login"))
        .header("cookie", "orchard_theme=dark")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"data-theme="dark""#));
}

#[tokio::test]
async fn cross_site_mutations_are_refused() {
    let app = TestApp::spawn().await;
    for (header, value) in [
        ("origin", "http://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let response = app
            .client
            .post(app.url(app::api::SetTheme::PATH))
            .header(header, value)
            .header("host", app.host())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("theme=dark")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{header}: {value}"
        );
        assert!(response.headers().get(SET_COOKIE).is_none());
    }
}

#[tokio::test]
async fn a_form_post_without_javascript_returns_to_the_page_it_came_from() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(app.url(app::api::SetTheme::PATH))
        .header(ORIGIN, &app.base)
        .header(ACCEPT, "text/html")
        .header(REFERER, app.url("/fleet"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("theme=light")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_redirection(), "{}", response.status());
    // leptos appends an empty query (`?`) to the referrer it redirects to.
    let location = response.headers()[LOCATION].to_str().unwrap();
    assert_eq!(location.trim_end_matches('?'), app.url("/fleet"));
}

#[tokio::test]
async fn an_invalid_theme_is_a_validation_error() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(app.url(app::api::SetTheme::PATH))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("theme=purple")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = response.text().await.unwrap();
    assert!(
        body.contains("validation") && body.contains("purple"),
        "{body}"
    );
}

#[tokio::test]
async fn responses_are_compressed_and_assets_served_precompressed() {
    let app = TestApp::spawn().await;
    let page = app
        .client
        .get(app.url("/login"))
        .header(ACCEPT_ENCODING, "br")
        .send()
        .await
        .unwrap();
    assert_eq!(page.headers()[CONTENT_ENCODING], "br");

    let css = app
        .client
        .get(app.url("/pkg/orchard.css"))
        .header(ACCEPT_ENCODING, "br, gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    assert_eq!(css.headers()[CONTENT_ENCODING], "br");
    assert_eq!(css.bytes().await.unwrap().as_ref(), b"precompressed");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let (app, browser) = signed_in_admin().await;
    app.get("/healthz").await;
    browser.get("/no/such/page").await;

    let text = app.get("/metrics").await.text().await.unwrap();

    assert!(
        text.contains(
            r#"orchard_http_requests_total{method="GET",route="/healthz",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"route="unmatched",status="404"} 1"#),
        "{text}"
    );
    assert!(text.contains("orchard_http_request_duration_seconds_bucket"));
}

#[tokio::test]
async fn the_server_stops_when_asked_and_releases_the_port() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.database.url = format!("sqlite://{}/orchard.db", dir.path().display());
    config.vault.key_file = dir.path().join("master.key");
    config.demo.devices = 50;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::serve_with_listener(config, listener, async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let ready = client
        .get(format!("http://{address}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);

    stop.send(()).unwrap();

    server.await.unwrap().unwrap();
    assert!(tokio::net::TcpListener::bind(address).await.is_ok());
}
