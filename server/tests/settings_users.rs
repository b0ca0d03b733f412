//! User administration, the account page's server functions and Orchard's audit log,
//! over HTTP against the real router and a fresh SQLite file.

mod common;

use app::api::{
    BeginTotp, ChangePassword, ConfirmTotp, CreateUser, GetAccount, GetMe, ListAudit, ListUsers,
    RegenerateRecoveryCodes, RemoveUserRole, ResetUserPassword, ResetUserTotp, SetUserDisabled,
    SetUserRole, SignIn,
};
use backend::identity::Role;
use backend::identity::totp::{TotpSecret, step_at};
use common::{Browser, PASSWORD, TestApp};
use leptos::server_fn::ServerFn;
use reqwest::StatusCode;
use serde_json::Value;

const NEW_PASSWORD: &str = "a brand new passphrase";

/// The JSON body of a response that must have `status`.
#[track_caller]
fn expect_status(status: StatusCode, response: &reqwest::Response) {
    assert_eq!(
        response.status(),
        status,
        "unexpected status for {}",
        response.url()
    );
}

async fn json(response: reqwest::Response, status: StatusCode) -> Value {
    let url = response.url().clone();
    let actual = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(actual, status, "{url}: {body}");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

/// An instance administrator, signed in, and the demo-like organization they manage.
async fn admin_and_org(app: &TestApp) -> (Browser, backend::orgs::OrgId) {
    let org = app.create_org("Demo organization").await;
    let admin = app.create_user("root", true).await;
    app.grant(admin, org, Role::Admin).await;
    (app.sign_in("root", PASSWORD).await, org)
}

async fn create_user(admin: &Browser, username: &str, org: &str, role: &str) -> String {
    let response = admin
        .call(
            CreateUser::PATH,
            &[
                ("username", username),
                ("display_name", "Helen Desk"),
                ("email", ""),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
                ("org", org),
                ("role", role),
            ],
        )
        .await;
    json(response, StatusCode::OK)
        .await
        .as_str()
        .expect("the new user's id")
        .to_owned()
}

async fn sign_in_status(
    app: &TestApp,
    username: &str,
    password: &str,
    code: &str,
) -> (StatusCode, Value) {
    let response = app
        .browser()
        .call(
            SignIn::PATH,
            &[
                ("username", username),
                ("password", password),
                ("code", code),
            ],
        )
        .await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Enrols TOTP for a signed-in user through the account functions; returns the secret
/// as the page showed it and the recovery codes shown once.
async fn enrol_totp(user: &Browser) -> (TotpSecret, Vec<String>) {
    json(user.call(BeginTotp::PATH, &[]).await, StatusCode::OK).await;
    let account = json(user.get(GetAccount::PATH).await, StatusCode::OK).await;
    let base32 = account["pending_totp"]["secret_base32"].as_str().unwrap();
    assert!(
        account["pending_totp"]["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/Orchard:")
    );
    let secret = TotpSecret::from_base32(base32).unwrap();
    let code = secret.code_at_step(step_at(time::OffsetDateTime::now_utc()));
    json(
        user.call(ConfirmTotp::PATH, &[("code", &code)]).await,
        StatusCode::OK,
    )
    .await;
    let account = json(user.get(GetAccount::PATH).await, StatusCode::OK).await;
    assert_eq!(account["totp_enabled"], true);
    assert_eq!(
        account["pending_totp"],
        Value::Null,
        "an enforced secret is never shown again"
    );
    let codes: Vec<String> = serde_json::from_value(account["new_recovery_codes"].clone()).unwrap();
    let again = json(user.get(GetAccount::PATH).await, StatusCode::OK).await;
    assert_eq!(
        again["new_recovery_codes"],
        serde_json::json!([]),
        "codes are shown once"
    );
    assert_eq!(again["recovery_codes_left"], 10);
    (secret, codes)
}

/// The next TOTP code, one step ahead: the current step may be spent already, and the
/// server accepts one step of drift.
fn next_code(secret: &TotpSecret) -> String {
    secret.code_at_step(step_at(time::OffsetDateTime::now_utc()) + 1)
}

#[tokio::test]
async fn a_created_user_with_a_role_signs_in_and_sees_that_role() {
    let app = TestApp::spawn().await;
    let (admin, org) = admin_and_org(&app).await;

    create_user(&admin, "helen", &org.to_string(), "helpdesk").await;
    let helen = app.sign_in("helen", PASSWORD).await;
    let me = json(helen.get(GetMe::PATH).await, StatusCode::OK).await;

    assert_eq!(me["username"], "helen");
    assert_eq!(me["display_name"], "Helen Desk");
    assert_eq!(me["organizations"][0]["name"], "Demo organization");
    assert_eq!(me["organizations"][0]["role"], "helpdesk");
    let users = json(admin.get(ListUsers::PATH).await, StatusCode::OK).await;
    let listed = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "helen")
        .unwrap();
    assert_eq!(listed["roles"][0]["role"], "helpdesk");
    assert_eq!(listed["sso"], false);
    assert!(listed["last_sign_in"].is_string(), "{listed}");
    assert!(
        !users.to_string().contains("argon2"),
        "password hashes never leave the server"
    );
}

#[tokio::test]
async fn a_taken_username_and_a_weak_password_are_field_errors() {
    let app = TestApp::spawn().await;
    let (admin, _) = admin_and_org(&app).await;

    let taken = admin
        .call(
            CreateUser::PATH,
            &[
                ("username", "ROOT"),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ],
        )
        .await;
    let weak = admin
        .call(
            CreateUser::PATH,
            &[
                ("username", "ann"),
                ("password", "short"),
                ("password_confirm", "short"),
            ],
        )
        .await;

    let taken = json(taken, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(taken["fields"][0]["field"], "username");
    let weak = json(weak, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(weak["fields"][0]["field"], "password");
}

#[tokio::test]
async fn roles_are_set_replaced_and_removed_and_take_effect_at_once() {
    let app = TestApp::spawn().await;
    let (admin, org) = admin_and_org(&app).await;
    let id = create_user(&admin, "olga", "", "").await;
    let olga = app.sign_in("olga", PASSWORD).await;
    let org = org.to_string();

    json(
        admin
            .call(
                SetUserRole::PATH,
                &[("user", &id), ("org", &org), ("role", "operator")],
            )
            .await,
        StatusCode::OK,
    )
    .await;
    let me = json(olga.get(GetMe::PATH).await, StatusCode::OK).await;
    assert_eq!(me["organizations"][0]["role"], "operator");

    json(
        admin
            .call(RemoveUserRole::PATH, &[("user", &id), ("org", &org)])
            .await,
        StatusCode::OK,
    )
    .await;
    let me = json(olga.get(GetMe::PATH).await, StatusCode::OK).await;
    assert_eq!(me["organizations"], serde_json::json!([]));

    let bad = admin
        .call(
            SetUserRole::PATH,
            &[("user", &id), ("org", &org), ("role", "owner")],
        )
        .await;
    assert_eq!(
        json(bad, StatusCode::UNPROCESSABLE_ENTITY).await["fields"][0]["field"],
        "role"
    );
}

#[tokio::test]
async fn an_organization_admin_manages_roles_in_their_organization_only() {
    let app = TestApp::spawn().await;
    let (_, demo) = admin_and_org(&app).await;
    let other = app.create_org("Other organization").await;
    let org_admin = app.user_with_role("oskar", demo, Some(Role::Admin)).await;
    let viewer = app.create_user("vic", false).await.to_string();

    let here = org_admin
        .call(
            SetUserRole::PATH,
            &[
                ("user", &viewer),
                ("org", &demo.to_string()),
                ("role", "viewer"),
            ],
        )
        .await;
    let elsewhere = org_admin
        .call(
            SetUserRole::PATH,
            &[
                ("user", &viewer),
                ("org", &other.to_string()),
                ("role", "viewer"),
            ],
        )
        .await;
    let list = org_admin.get(ListUsers::PATH).await;

    expect_status(StatusCode::OK, &here);
    expect_status(StatusCode::FORBIDDEN, &elsewhere);
    expect_status(StatusCode::FORBIDDEN, &list);
}

#[tokio::test]
async fn disabling_a_user_ends_their_session_and_refuses_their_sign_in() {
    let app = TestApp::spawn().await;
    let (admin, org) = admin_and_org(&app).await;
    let id = create_user(&admin, "dana", &org.to_string(), "viewer").await;
    let dana = app.sign_in("dana", PASSWORD).await;
    expect_status(StatusCode::OK, &dana.get(GetAccount::PATH).await);

    json(
        admin
            .call(
                SetUserDisabled::PATH,
                &[("user", &id), ("disabled", "true")],
            )
            .await,
        StatusCode::OK,
    )
    .await;

    expect_status(StatusCode::UNAUTHORIZED, &dana.get(GetAccount::PATH).await);
    let (status, _) = sign_in_status(&app, "dana", PASSWORD, "").await;
    assert_ne!(status, StatusCode::OK, "a disabled user cannot sign in");

    json(
        admin
            .call(
                SetUserDisabled::PATH,
                &[("user", &id), ("disabled", "false")],
            )
            .await,
        StatusCode::OK,
    )
    .await;
    let (status, _) = sign_in_status(&app, "dana", PASSWORD, "").await;
    assert_eq!(status, StatusCode::OK, "enabled again");
}

#[tokio::test]
async fn an_administrator_cannot_disable_themself() {
    let app = TestApp::spawn().await;
    let (admin, _) = admin_and_org(&app).await;
    let users = json(admin.get(ListUsers::PATH).await, StatusCode::OK).await;
    let my_id = users["my_id"].as_str().unwrap().to_owned();

    let response = admin
        .call(
            SetUserDisabled::PATH,
            &[("user", &my_id), ("disabled", "true")],
        )
        .await;

    expect_status(StatusCode::CONFLICT, &response);
    expect_status(StatusCode::OK, &admin.get(ListUsers::PATH).await);
}

#[tokio::test]
async fn after_totp_enrolment_sign_in_needs_a_code_and_a_recovery_code_works_once() {
    let app = TestApp::spawn().await;
    let (admin, org) = admin_and_org(&app).await;
    create_user(&admin, "tina", &org.to_string(), "helpdesk").await;
    let tina = app.sign_in("tina", PASSWORD).await;

    let (secret, recovery) = enrol_totp(&tina).await;
    assert_eq!(recovery.len(), 10);

    let (status, outcome) = sign_in_status(&app, "tina", PASSWORD, "").await;
    assert_eq!(
        (status, outcome),
        (StatusCode::OK, Value::from("code_required"))
    );
    let (status, _) = sign_in_status(&app, "tina", PASSWORD, "000000").await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a wrong code is refused"
    );
    let (status, outcome) = sign_in_status(&app, "tina", PASSWORD, &next_code(&secret)).await;
    assert_eq!(
        (status, outcome),
        (StatusCode::OK, Value::from("signed_in"))
    );

    let (status, outcome) = sign_in_status(&app, "tina", PASSWORD, &recovery[0]).await;
    assert_eq!(
        (status, outcome),
        (StatusCode::OK, Value::from("signed_in"))
    );
    let (status, _) = sign_in_status(&app, "tina", PASSWORD, &recovery[0]).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a recovery code works once"
    );

    let account = json(tina.get(GetAccount::PATH).await, StatusCode::OK).await;
    assert_eq!(account["recovery_codes_left"], 9);
}

#[tokio::test]
async fn a_wrong_confirmation_code_leaves_totp_off() {
    let app = TestApp::spawn().await;
    let (admin, org) = admin_and_org(&app).await;
    create_user(&admin, "walt", &org.to_string(), "viewer").await;
    let walt = app.sign_in("walt", PASSWORD).await;
    json(walt.call(BeginTotp::PATH, &[]).await, StatusCode::OK).await;

    let wrong = walt.call(ConfirmTotp::PATH, &[("code", "12345")]).await;

    assert_eq!(
        json(wrong, StatusCode::UNPROCESSABLE_ENTITY).await["fields"][0]["field"],
        "code"
    );
    let account = json(walt.get(GetAccount::PATH).await, StatusCode::OK).await;
    assert_eq!(account["totp_enabled"], false);
    assert!(
        account["pending_totp"]["secret_base32"].is_string(),
        "the enrolment is still pending"
    );
    let (_, outcome) = sign_in_status(&app, "walt", PASSWORD, "").await;
    assert_eq!(
        outcome,
        Value::from("signed_in"),
        "an unconfirmed secret is not enforced"
    );
}

#[tokio::test]
async fn regenerated_recovery_codes_replace_the_old_ones() {
    let app = TestApp::spawn().await;
    let (admin, org) = admin_and_org(&app).await;
    create_user(&admin, "rita", &org.to_string(), "viewer").await;
    let rita = app.sign_in("rita", PASSWORD).await;
    let (_, old) = enrol_totp(&rita).await;

    json(
        rita.call(RegenerateRecoveryCodes::PATH, &[]).await,
        StatusCode::OK,
    )
    .await;
    let account = json(rita.get(GetAccount::PATH).await, StatusCode::OK).await;
    let new: Vec<String> = serde_json::from_value(account["new_recovery_codes"].clone()).unwrap();

    assert_eq!(new.len(), 10);
    let (status, _) = sign_in_status(&app, "rita", PASSWORD, &old[0]).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "old codes stop working"
    );
    let (status, _) = sign_in_status(&app, "rita", PASSWORD, &new[0]).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn an_administrator_resets_a_lost_second_factor() {
    let app = TestApp::spawn().await;
    let (admin, org) = admin_and_org(&app).await;
    let id = create_user(&admin, "lars", &org.to_string(), "viewer").await;
    let lars = app.sign_in("lars", PASSWORD).await;
    enrol_totp(&lars).await;
    let (_, outcome) = sign_in_status(&app, "lars", PASSWORD, "").await;
    assert_eq!(outcome, Value::from("code_required"));

    json(
        admin.call(ResetUserTotp::PATH, &[("user", &id)]).await,
        StatusCode::OK,
    )
    .await;

    let (_, outcome) = sign_in_status(&app, "lars", PASSWORD, "").await;
    assert_eq!(outcome, Value::from("signed_in"));
}

#[tokio::test]
async fn an_administrator_resets_a_forgotten_password() {
    let app = TestApp::spawn().await;
    let (admin, org) = admin_and_org(&app).await;
    let id = create_user(&admin, "fay", &org.to_string(), "viewer").await;

    json(
        admin
            .call(
                ResetUserPassword::PATH,
                &[("user", &id), ("password", NEW_PASSWORD)],
            )
            .await,
        StatusCode::OK,
    )
    .await;

    let (old, _) = sign_in_status(&app, "fay", PASSWORD, "").await;
    let (new, _) = sign_in_status(&app, "fay", NEW_PASSWORD, "").await;
    assert_eq!(
        (old, new),
        (StatusCode::UNPROCESSABLE_ENTITY, StatusCode::OK)
    );
}

#[tokio::test]
async fn a_password_change_needs_the_current_password() {
    let app = TestApp::spawn().await;
    let (admin, org) = admin_and_org(&app).await;
    create_user(&admin, "carl", &org.to_string(), "viewer").await;
    let carl = app.sign_in("carl", PASSWORD).await;
    let change = |current: &'static str, confirm: &'static str| {
        let carl = carl.clone();
        async move {
            carl.call(
                ChangePassword::PATH,
                &[
                    ("current_password", current),
                    ("new_password", NEW_PASSWORD),
                    ("new_password_confirm", confirm),
                ],
            )
            .await
        }
    };

    let wrong = json(
        change("not my password", NEW_PASSWORD).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let mismatch = json(
        change(PASSWORD, "something else").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(wrong["fields"][0]["field"], "current_password");
    assert_eq!(mismatch["fields"][0]["field"], "new_password_confirm");
    assert_eq!(
        sign_in_status(&app, "carl", PASSWORD, "").await.0,
        StatusCode::OK
    );

    json(change(PASSWORD, NEW_PASSWORD).await, StatusCode::OK).await;
    assert_eq!(
        sign_in_status(&app, "carl", PASSWORD, "").await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        sign_in_status(&app, "carl", NEW_PASSWORD, "").await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn only_instance_administrators_reach_user_administration_and_the_audit_log() {
    let app = TestApp::spawn().await;
    let (admin, org) = admin_and_org(&app).await;
    let target = create_user(&admin, "hugo", &org.to_string(), "helpdesk").await;
    let hugo = app.sign_in("hugo", PASSWORD).await;
    let signed_out = app.browser();

    for browser in [&hugo, &signed_out] {
        let expected = if std::ptr::eq(browser, &hugo) {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::UNAUTHORIZED
        };
        expect_status(expected, &browser.get(ListUsers::PATH).await);
        expect_status(expected, &browser.get(ListAudit::PATH).await);
        let calls: [(&str, Vec<(&str, &str)>); 4] = [
            (
                CreateUser::PATH,
                vec![
                    ("username", "x"),
                    ("password", PASSWORD),
                    ("password_confirm", PASSWORD),
                ],
            ),
            (
                SetUserDisabled::PATH,
                vec![("user", &target), ("disabled", "true")],
            ),
            (ResetUserTotp::PATH, vec![("user", &target)]),
            (
                ResetUserPassword::PATH,
                vec![("user", &target), ("password", NEW_PASSWORD)],
            ),
        ];
        for (path, form) in calls {
            expect_status(expected, &browser.call(path, &form).await);
        }
    }
    expect_status(
        StatusCode::UNAUTHORIZED,
        &signed_out.get(GetAccount::PATH).await,
    );
    expect_status(StatusCode::FORBIDDEN, &hugo.get("/settings/users").await);
    expect_status(StatusCode::FORBIDDEN, &hugo.get("/settings/audit").await);
    expect_status(StatusCode::OK, &hugo.get("/account").await);
    expect_status(StatusCode::OK, &admin.get("/settings/users").await);
}

#[tokio::test]
async fn cross_site_posts_to_user_administration_are_refused() {
    let app = TestApp::spawn().await;
    let (admin, _) = admin_and_org(&app).await;

    let response = admin
        .call_cross_site(
            CreateUser::PATH,
            &[
                ("username", "mallory"),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ],
        )
        .await;

    expect_status(StatusCode::FORBIDDEN, &response);
    let users = json(admin.get(ListUsers::PATH).await, StatusCode::OK).await;
    assert!(!users.to_string().contains("mallory"));
}

#[tokio::test]
async fn the_audit_log_lists_administrative_changes_newest_first_and_verifies() {
    let app = TestApp::spawn().await;
    let (admin, org) = admin_and_org(&app).await;
    let id = create_user(&admin, "audra", &org.to_string(), "helpdesk").await;
    json(
        admin
            .call(
                SetUserDisabled::PATH,
                &[("user", &id), ("disabled", "true")],
            )
            .await,
        StatusCode::OK,
    )
    .await;

    let page = json(admin.get(ListAudit::PATH).await, StatusCode::OK).await;
    let actions: Vec<&str> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "user.disable",
            "user.set_role",
            "user.create",
            "auth.sign_in"
        ],
        "newest first"
    );
    assert_eq!(page["chain"]["state"], "intact");
    let created = &page["entries"][2];
    assert_eq!(created["actor"], "root", "actor ids are shown as usernames");
    assert_eq!(created["subject_label"], "user audra");
    assert_eq!(created["client_addr"], "127.0.0.1");
    assert!(
        !page.to_string().contains(PASSWORD),
        "no secrets in the log"
    );

    let filtered = format!("{}?action=user.create&actor=root", ListAudit::PATH);
    let page = json(admin.get(&filtered).await, StatusCode::OK).await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 1);
    let nobody = format!("{}?actor=nobody", ListAudit::PATH);
    let page = json(admin.get(&nobody).await, StatusCode::OK).await;
    assert_eq!(page["entries"], serde_json::json!([]));
    let bad_day = format!("{}?since=yesterday", ListAudit::PATH);
    expect_status(StatusCode::UNPROCESSABLE_ENTITY, &admin.get(&bad_day).await);

    let html = admin.get("/settings/audit").await.text().await.unwrap();
    assert!(html.contains("The hash chain verifies"), "{html}");
    assert!(html.contains("user.create"));
}

#[tokio::test]
async fn the_audit_log_pages_backwards_with_a_cursor() {
    let app = TestApp::spawn().await;
    let (admin, org) = admin_and_org(&app).await;
    let id = create_user(&admin, "paula", &org.to_string(), "viewer").await;
    for round in 0..60 {
        let disabled = if round % 2 == 0 { "true" } else { "false" };
        json(
            admin
                .call(
                    SetUserDisabled::PATH,
                    &[("user", &id), ("disabled", disabled)],
                )
                .await,
            StatusCode::OK,
        )
        .await;
    }

    let first = json(admin.get(ListAudit::PATH).await, StatusCode::OK).await;
    let before = first["next_before"].as_i64().expect("an older page");
    let second = json(
        admin
            .get(&format!("{}?before={before}", ListAudit::PATH))
            .await,
        StatusCode::OK,
    )
    .await;

    let seqs = |page: &Value| -> Vec<i64> {
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_i64().unwrap())
            .collect()
    };
    let (first, second_seqs) = (seqs(&first), seqs(&second));
    assert_eq!(first.len(), 50);
    assert_eq!(first.last().copied(), Some(before));
    assert_eq!(second_seqs.first().copied(), Some(before - 1));
    assert_eq!(
        first.len() + second_seqs.len(),
        63,
        "every entry exactly once"
    );
    assert_eq!(second["next_before"], Value::Null);
}
