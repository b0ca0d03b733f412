//! Sign-in, sessions and the sign-in gate over real HTTP: who gets in, for how long, and
//! what a signed-out or cross-site request gets.

mod common;

use std::time::Duration;

use backend::identity::Role;
use backend::identity::setup::create_setup_token;
use common::{PASSWORD, TestApp};
use leptos::server_fn::ServerFn;
use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE};

fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("orchard_session="))
        .map(str::to_owned)
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("orchard_session=")
        .to_owned()
}

/// Signs in with a raw client and returns the `Set-Cookie` of the session.
async fn sign_in_raw(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    app.client
        .post(app.url(app::api::SignIn::PATH))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(common::serde_urlencoded(&[
            ("username", username),
            ("password", password),
        ]))
        .send()
        .await
        .unwrap()
}

async fn get_with_cookie(app: &TestApp, path: &str, cookie: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .header("cookie", format!("orchard_session={cookie}"))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn before_the_first_user_every_page_leads_to_setup() {
    let app = TestApp::spawn().await;
    let response = app.get("/devices").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/setup");
    assert_eq!(app.get("/setup").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn signed_out_pages_redirect_to_sign_in_and_server_functions_answer_401() {
    let app = TestApp::spawn().await;
    app.create_user("ada", true).await;

    let page = app.get("/fleet?range=90").await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(page.headers()[LOCATION], "/login?next=/fleet%3Frange%3D90");

    let call = app.get(app::api::GetSystemStatus::PATH).await;
    assert_eq!(call.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(call.text().await.unwrap(), r#"{"kind":"unauthenticated"}"#);

    for public in ["/login", "/setup", "/favicon.svg", "/healthz"] {
        assert_ne!(
            app.get(public).await.status(),
            StatusCode::SEE_OTHER,
            "{public} must be reachable signed out"
        );
    }
}

#[tokio::test]
async fn the_session_cookie_is_http_only_lax_and_not_secure_on_loopback() {
    let app = TestApp::spawn().await;
    app.create_user("ada", false).await;
    let response = sign_in_raw(&app, "ada", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = session_cookie(&response).expect("a session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn the_session_cookie_is_secure_behind_an_https_origin() {
    let app = TestApp::spawn_with(|c| c.server.public_url = "https://orchard.example".into()).await;
    app.create_user("ada", false).await;
    let cookie = session_cookie(&sign_in_raw(&app, "ada", PASSWORD).await).unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn signing_in_again_rotates_the_session_id_and_retires_the_old_one() {
    let app = TestApp::spawn().await;
    app.create_user("ada", false).await;
    app.create_user("bob", false).await;
    let first = cookie_value(&session_cookie(&sign_in_raw(&app, "ada", PASSWORD).await).unwrap());

    // The same browser signs in again (as someone else): a new id, the old one is gone.
    let response = app
        .client
        .post(app.url(app::api::SignIn::PATH))
        .header("cookie", format!("orchard_session={first}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(common::serde_urlencoded(&[
            ("username", "bob"),
            ("password", PASSWORD),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let second = cookie_value(&session_cookie(&response).unwrap());
    assert_ne!(first, second);
    assert_eq!(
        get_with_cookie(&app, "/", &first).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        get_with_cookie(&app, "/", &second).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn sign_out_deletes_the_session_record() {
    let app = TestApp::spawn().await;
    let org = app.create_org("Acme").await;
    let browser = app.user_with_role("ada", org, Some(Role::Viewer)).await;
    assert_eq!(browser.get("/").await.status(), StatusCode::OK);

    let response = browser.call(app::api::SignOut::PATH, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);

    assert_eq!(browser.get("/").await.status(), StatusCode::SEE_OTHER);
    let call = browser.call(app::api::SignOut::PATH, &[]).await;
    assert_eq!(call.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sign_out_from_another_site_is_refused_and_the_session_lives_on() {
    let app = TestApp::spawn().await;
    let org = app.create_org("Acme").await;
    let browser = app.user_with_role("ada", org, Some(Role::Viewer)).await;

    let response = browser.call_cross_site(app::api::SignOut::PATH, &[]).await;

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(browser.get("/").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn sign_in_from_another_site_is_refused() {
    let app = TestApp::spawn().await;
    app.create_user("ada", false).await;
    let response = app
        .browser()
        .call_cross_site(
            app::api::SignIn::PATH,
            &[("username", "ada"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(session_cookie(&response).is_none());
}

#[tokio::test]
async fn sessions_survive_a_restart() {
    let app = TestApp::spawn().await;
    app.create_user("ada", false).await;
    let cookie = cookie_value(&session_cookie(&sign_in_raw(&app, "ada", PASSWORD).await).unwrap());

    let restarted = app.restart().await;
    drop(app);

    let response = get_with_cookie(&restarted, "/", &cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("ada"));
}

#[tokio::test]
async fn a_session_ends_after_its_absolute_lifetime() {
    let app = TestApp::spawn_with(|c| c.auth.absolute_timeout_secs = 1).await;
    app.create_user("ada", false).await;
    let cookie = cookie_value(&session_cookie(&sign_in_raw(&app, "ada", PASSWORD).await).unwrap());
    assert_eq!(
        get_with_cookie(&app, "/", &cookie).await.status(),
        StatusCode::OK
    );

    // Session times are kept in whole seconds: two seconds are certainly past one.
    tokio::time::sleep(Duration::from_secs(2)).await;

    assert_eq!(
        get_with_cookie(&app, "/", &cookie).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn a_disabled_user_is_signed_out_on_the_next_request() {
    let app = TestApp::spawn().await;
    let org = app.create_org("Acme").await;
    let browser = app.user_with_role("ada", org, Some(Role::Operator)).await;
    assert_eq!(browser.get("/").await.status(), StatusCode::OK);
    let ada = app.store.user_by_username("ada").await.unwrap().id;

    app.store.set_disabled(ada, true).await.unwrap();

    assert_eq!(browser.get("/").await.status(), StatusCode::SEE_OTHER);
    let again = sign_in_raw(&app, "ada", PASSWORD).await;
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn failed_sign_ins_look_the_same_for_unknown_users_and_wrong_passwords() {
    let app = TestApp::spawn().await;
    app.create_user("ada", false).await;
    let wrong = sign_in_raw(&app, "ada", "wrong password, long enough").await;
    let unknown = sign_in_raw(&app, "nobody", "wrong password, long enough").await;
    assert_eq!(wrong.status(), unknown.status());
    assert_eq!(wrong.text().await.unwrap(), unknown.text().await.unwrap());
}

#[tokio::test]
async fn an_address_gets_ten_attempts_a_minute() {
    let app = TestApp::spawn_with(|c| c.auth.address_max_attempts = 10).await;
    app.create_user("ada", false).await;
    for attempt in 0..10 {
        let response = sign_in_raw(
            &app,
            &format!("user{attempt}"),
            "wrong password, long enough",
        )
        .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "attempt {attempt}"
        );
    }

    let eleventh = sign_in_raw(&app, "ada", PASSWORD).await;

    assert_eq!(eleventh.status(), StatusCode::TOO_MANY_REQUESTS);
    let body = eleventh.text().await.unwrap();
    assert!(body.contains("too_many_requests"), "{body}");
}

#[tokio::test]
async fn an_account_waits_after_five_failures_even_with_the_right_password() {
    let app = TestApp::spawn().await;
    app.create_user("ada", false).await;
    for _ in 0..5 {
        let response = sign_in_raw(&app, "ada", "wrong password, long enough").await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    let right = sign_in_raw(&app, "ada", PASSWORD).await;

    assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(session_cookie(&right).is_none());
    // Another account from the same address is not held up.
    app.create_user("bob", false).await;
    assert_eq!(
        sign_in_raw(&app, "bob", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn sign_ins_and_failures_are_in_the_audit_log() {
    let app = TestApp::spawn().await;
    app.create_user("ada", false).await;
    sign_in_raw(&app, "ada", "wrong password, long enough").await;
    sign_in_raw(&app, "ada", PASSWORD).await;

    let entries = backend::audit::list(
        app.store.as_ref(),
        &backend::audit::AuditFilter::default(),
        backend::audit::AuditPage {
            before: None,
            limit: 10,
        },
    )
    .await
    .unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["auth.sign_in", "auth.sign_in_failed"]);
    assert_eq!(entries[1].client_addr.as_deref(), Some("127.0.0.1"));
    assert!(!entries[1].details.contains(PASSWORD));
    backend::audit::verify_chain(app.store.as_ref())
        .await
        .unwrap();
}

#[tokio::test]
async fn the_setup_link_creates_one_administrator_who_is_signed_in() {
    let app = TestApp::spawn().await;
    let demo = app.create_org("Demo organization").await;
    let token = create_setup_token(
        app.store.as_ref(),
        Duration::from_secs(600),
        backend::identity::now_utc(),
    )
    .await
    .unwrap();
    let browser = app.browser();
    let form = [
        ("token", token.expose()),
        ("username", "root"),
        ("password", PASSWORD),
        ("password_confirm", PASSWORD),
    ];

    let response = browser.call(app::api::CompleteSetup::PATH, &form).await;

    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap()
    );
    assert_eq!(browser.get("/welcome").await.status(), StatusCode::OK);
    let root = app.store.user_by_username("root").await.unwrap();
    assert!(root.instance_admin);
    let roles = app.store.memberships_of(root.id).await.unwrap();
    assert_eq!(roles.len(), 1);
    assert_eq!((roles[0].org_id, roles[0].role), (demo, Role::Admin));

    let again = app
        .browser()
        .call(app::api::CompleteSetup::PATH, &form)
        .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn setup_refuses_a_wrong_token_and_mismatched_passwords_by_field() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let wrong = browser
        .call(
            app::api::CompleteSetup::PATH,
            &[
                ("token", "not-a-token"),
                ("username", "root"),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ],
        )
        .await;
    assert!(wrong.text().await.unwrap().contains(r#""field":"token""#));
    let differ = browser
        .call(
            app::api::CompleteSetup::PATH,
            &[
                ("token", "not-a-token"),
                ("username", "root"),
                ("password", PASSWORD),
                ("password_confirm", "something else entirely"),
            ],
        )
        .await;
    assert!(
        differ
            .text()
            .await
            .unwrap()
            .contains(r#""field":"password_confirm""#)
    );
    assert_eq!(app.store.count_users().await.unwrap(), 0);
}

#[tokio::test]
async fn after_sign_in_the_user_goes_to_a_relative_next_only() {
    let app = TestApp::spawn().await;
    app.create_user("ada", false).await;
    for (next, expected) in [
        ("/devices?q=C02", "/devices?q=C02"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/login", "/"),
    ] {
        let response = app
            .client
            .post(app.url(app::api::SignIn::PATH))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "text/html")
            .body(common::serde_urlencoded(&[
                ("username", "ada"),
                ("password", PASSWORD),
                ("next", next),
            ]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FOUND, "{next}");
        assert_eq!(response.headers()[LOCATION], expected, "{next}");
    }
}

#[tokio::test]
async fn a_session_ends_after_the_idle_timeout() {
    let app = TestApp::spawn_with(|c| c.auth.idle_timeout_secs = 1).await;
    app.create_user("ada", false).await;
    let cookie = cookie_value(&session_cookie(&sign_in_raw(&app, "ada", PASSWORD).await).unwrap());

    tokio::time::sleep(Duration::from_secs(2)).await;

    assert_eq!(
        get_with_cookie(&app, "/", &cookie).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn an_account_with_totp_needs_the_code_and_a_plain_form_is_sent_to_the_code_step() {
    use backend::identity::totp::{self, TotpSecret};

    let app = TestApp::spawn().await;
    let ada = app.create_user("ada", false).await;
    let enrollment = totp::begin_enrollment(app.store.as_ref(), app.vault.as_ref(), ada, "Orchard")
        .await
        .unwrap();
    let secret = TotpSecret::from_bytes(decode_base32(&enrollment.secret.base32()));
    let now = backend::identity::now_utc();
    let step = totp::step_at(now);
    totp::confirm_enrollment(
        app.store.as_ref(),
        app.vault.as_ref(),
        ada,
        &secret.code_at_step(step - 1),
        now,
    )
    .await
    .unwrap();

    let with_script = sign_in_raw(&app, "ada", PASSWORD).await;
    assert_eq!(with_script.status(), StatusCode::OK);
    assert!(session_cookie(&with_script).is_none());
    assert_eq!(with_script.text().await.unwrap(), r#""code_required""#);

    let plain_form = app
        .client
        .post(app.url(app::api::SignIn::PATH))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "text/html")
        .body(common::serde_urlencoded(&[
            ("username", "ada"),
            ("password", PASSWORD),
            ("next", "/fleet"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(plain_form.status(), StatusCode::FOUND);
    assert_eq!(
        plain_form.headers()[LOCATION],
        "/login?step=code&username=ada&next=/fleet"
    );

    let browser = app.browser();
    let wrong = browser
        .call(
            app::api::SignIn::PATH,
            &[
                ("username", "ada"),
                ("password", PASSWORD),
                ("code", "000000"),
            ],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.text().await.unwrap().contains(r#""field":"code""#));
    let code = secret.code_at_step(step);
    let right = browser
        .call(
            app::api::SignIn::PATH,
            &[("username", "ada"), ("password", PASSWORD), ("code", &code)],
        )
        .await;
    assert_eq!(right.status(), StatusCode::OK);
    assert_eq!(browser.get("/").await.status(), StatusCode::OK);
}

/// RFC 4648 base32 without padding, as authenticator apps read it.
fn decode_base32(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0_u64;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|c| *c != b'=') {
        let value = ALPHABET.iter().position(|a| *a == c).expect("base32") as u64;
        bits = (bits << 5) | value;
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}
