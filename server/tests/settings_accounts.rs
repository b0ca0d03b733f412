//! Settings → Organizations and Apple API accounts, over HTTP against the real router,
//! with the in-process simulator as Apple.
//!
//! Server functions are called as the browser calls them: form-encoded POSTs (GET for
//! reads) from a signed-in cookie jar with same-origin headers.

mod common;

use backend::identity::Role;
use backend::orgs::OrgId;
use common::{Browser, TestApp};
use leptos::server_fn::ServerFn;
use p256::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION, ORIGIN, REFERER};
use serde_json::Value;
use simulator::RunningSimulator;

use app::api::{
    AddApiAccount, CreateOrganization, DeleteApiAccount, GetApiAccounts, ListOrganizations,
    RevokeApiAccount, RotateApiKey, TestApiAccount,
};

/// A P-256 key: PKCS#8 PEM of the private half, SPKI PEM of the public half.
struct Key {
    private_pem: String,
    public_pem: String,
}

fn new_key() -> Key {
    let key = p256::SecretKey::random(&mut rand::rngs::OsRng);
    Key {
        private_pem: key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
        public_pem: key.public_key().to_public_key_pem(LineEnding::LF).unwrap(),
    }
}

/// An instance, a simulator, an organization and its signed-in admin.
struct Fixture {
    app: TestApp,
    sim: RunningSimulator,
    org: OrgId,
    admin: Browser,
}

impl Fixture {
    async fn new() -> Self {
        let app = TestApp::spawn().await;
        let sim = simulator::Simulator::builder()
            .seed(11)
            .devices(20)
            .spawn()
            .await
            .unwrap();
        let org = app.create_org("Acme").await;
        let admin = app.user_with_role("ada", org, Some(Role::Admin)).await;
        Self {
            app,
            sim,
            org,
            admin,
        }
    }

    fn org(&self) -> String {
        self.org.to_string()
    }

    /// The form of an account the simulator accepts, named `name`.
    fn simulator_form(&self, name: &str) -> Vec<(&'static str, String)> {
        let creds = self.sim.credentials();
        vec![
            ("org", self.org()),
            ("name", name.to_owned()),
            ("kind", "business".to_owned()),
            ("client_id", creds.client_id.clone()),
            ("key_id", creds.key_id.clone()),
            ("pem", creds.private_key_pem.clone()),
            ("api_base_url", self.sim.base_url().to_owned()),
            ("token_url", self.sim.token_url()),
        ]
    }

    /// Adds the simulator's account as the admin; returns its id.
    async fn add_simulator_account(&self, name: &str) -> String {
        let response = call(&self.admin, AddApiAccount::PATH, &self.simulator_form(name)).await;
        let account = expect_ok(response).await;
        account["id"].as_str().unwrap().to_owned()
    }

    async fn accounts(&self, browser: &Browser) -> reqwest::Response {
        browser
            .get(&format!("{}?org={}", GetApiAccounts::PATH, self.org()))
            .await
    }
}

async fn call(browser: &Browser, path: &str, form: &[(&str, String)]) -> reqwest::Response {
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    browser.call(path, &pairs).await
}

/// No line of the key's base64 body appears in `body`.
#[track_caller]
fn assert_no_key_material(body: &str, pem: &str) {
    for line in pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(
            !body.contains(line),
            "a response contains private key material"
        );
    }
}

async fn expect_ok(response: reqwest::Response) -> Value {
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Asserts the status and the error's `kind`; returns the error.
async fn expect_error(response: reqwest::Response, status: StatusCode, kind: &str) -> Value {
    assert_eq!(response.status(), status);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["kind"], kind, "{error}");
    error
}

#[tokio::test]
async fn an_admin_adds_tests_rotates_revokes_and_deletes_an_account() {
    let f = Fixture::new().await;
    let creds = f.sim.credentials().clone();

    let response = call(
        &f.admin,
        AddApiAccount::PATH,
        &f.simulator_form("Main office"),
    )
    .await;
    let body = response.text().await.unwrap();
    assert_no_key_material(&body, &creds.private_key_pem);
    let added: Value = serde_json::from_str(&body).unwrap();
    let id = added["id"].as_str().unwrap().to_owned();
    assert_eq!(added["name"], "Main office");
    assert_eq!(added["client_id"], creds.client_id.as_str());
    assert_eq!(added["api_base_url"], f.sim.base_url());
    assert_eq!(added["key_fingerprint"].as_str().unwrap().len(), 64);
    assert!(added["health"]["last_success_at"].is_null());

    let report = expect_ok(
        call(
            &f.admin,
            TestApiAccount::PATH,
            &[("org", f.org()), ("account", id.clone())],
        )
        .await,
    )
    .await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["token_ok"], true);

    let body = f.accounts(&f.admin).await.text().await.unwrap();
    assert_no_key_material(&body, &creds.private_key_pem);
    let listed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(listed["organization"]["name"], "Acme");
    let health = &listed["accounts"][0]["health"];
    assert!(health["last_success_at"].is_string(), "{listed}");
    assert!(health["last_token_at"].is_string());
    assert!(health["last_error"].is_null());

    let next = new_key();
    let next_key_id = uuid::Uuid::new_v4().to_string();
    f.sim
        .register_key(&creds.client_id, &next_key_id, &next.public_pem)
        .unwrap();
    let response = call(
        &f.admin,
        RotateApiKey::PATH,
        &[
            ("org", f.org()),
            ("account", id.clone()),
            ("key_id", next_key_id.clone()),
            ("pem", next.private_pem.clone()),
        ],
    )
    .await;
    let body = response.text().await.unwrap();
    assert_no_key_material(&body, &next.private_pem);
    let rotated: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(rotated["key_id"], next_key_id.as_str());
    assert_ne!(rotated["key_fingerprint"], added["key_fingerprint"]);
    assert!(rotated["rotated_at"].is_string());
    let report = expect_ok(
        call(
            &f.admin,
            TestApiAccount::PATH,
            &[("org", f.org()), ("account", id.clone())],
        )
        .await,
    )
    .await;
    assert_eq!(report["ok"], true, "the rotated key works: {report}");

    let revoked = expect_ok(
        call(
            &f.admin,
            RevokeApiAccount::PATH,
            &[("org", f.org()), ("account", id.clone())],
        )
        .await,
    )
    .await;
    assert!(revoked["revoked_at"].is_string());
    let refused = call(
        &f.admin,
        TestApiAccount::PATH,
        &[("org", f.org()), ("account", id.clone())],
    )
    .await;
    let error = expect_error(refused, StatusCode::CONFLICT, "conflict").await;
    assert_eq!(error["message"], "The API account is revoked.");

    let deleted = call(
        &f.admin,
        DeleteApiAccount::PATH,
        &[("org", f.org()), ("account", id.clone())],
    )
    .await;
    assert_eq!(deleted.status(), StatusCode::OK);
    let listed = expect_ok(f.accounts(&f.admin).await).await;
    assert_eq!(listed["accounts"], Value::Array(vec![]));

    let actions: Vec<String> = audit_actions(&f.app).await;
    for action in [
        "api_account.add",
        "api_account.test",
        "api_account.rotate_key",
        "api_account.revoke",
        "api_account.delete",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
}

async fn audit_actions(app: &TestApp) -> Vec<String> {
    backend::audit::list(
        app.store.as_ref(),
        &backend::audit::AuditFilter::default(),
        backend::audit::AuditPage {
            before: None,
            limit: 500,
        },
    )
    .await
    .unwrap()
    .into_iter()
    .map(|e| e.action)
    .collect()
}

#[tokio::test]
async fn each_fault_in_a_new_account_is_reported_on_its_field() {
    let f = Fixture::new().await;
    let faults: [(&str, &str, &str, &str); 8] = [
        ("name", "   ", "name", "The account name is empty."),
        (
            "client_id",
            "ACME.123",
            "client_id",
            "The client id must be",
        ),
        (
            "client_id",
            "SCHOOLAPI.0f5b8f5e-7d0b-4e0e-9a55-3c1f1d0a2b3c",
            "client_id",
            "The client id is for school",
        ),
        ("key_id", "ABC123", "key_id", "The key id must be a UUID"),
        ("pem", "not a key", "pem", "The private key"),
        (
            "api_base_url",
            "ftp://example.test",
            "api_base_url",
            "The API base URL must be",
        ),
        (
            "token_url",
            "example.test/token",
            "token_url",
            "The token URL must be",
        ),
        (
            "kind",
            "enterprise",
            "kind",
            "Choose Apple Business or Apple School Manager.",
        ),
    ];
    for (input, value, field, message) in faults {
        let mut form = f.simulator_form("Faulty");
        form.iter_mut().find(|(k, _)| *k == input).unwrap().1 = value.to_owned();

        let response = call(&f.admin, AddApiAccount::PATH, &form).await;

        let error = expect_error(response, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
        let fields = error["fields"].as_array().unwrap();
        assert_eq!(fields.len(), 1, "{error}");
        assert_eq!(fields[0]["field"], field, "{input}={value}: {error}");
        let text = fields[0]["message"].as_str().unwrap();
        assert!(text.starts_with(message), "{input}={value}: {text}");
    }
    let listed = expect_ok(f.accounts(&f.admin).await).await;
    assert_eq!(
        listed["accounts"],
        Value::Array(vec![]),
        "nothing was added"
    );
}

#[tokio::test]
async fn a_bad_key_on_rotation_names_the_field_and_keeps_the_old_key() {
    let f = Fixture::new().await;
    let id = f.add_simulator_account("Main").await;

    let response = call(
        &f.admin,
        RotateApiKey::PATH,
        &[
            ("org", f.org()),
            ("account", id.clone()),
            ("key_id", uuid::Uuid::new_v4().to_string()),
            (
                "pem",
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----".into(),
            ),
        ],
    )
    .await;

    let error = expect_error(response, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    assert_eq!(error["fields"][0]["field"], "pem");
    let listed = expect_ok(f.accounts(&f.admin).await).await;
    assert_eq!(
        listed["accounts"][0]["key_id"],
        f.sim.credentials().key_id.as_str()
    );
}

#[tokio::test]
async fn the_fifty_first_account_is_refused_with_the_limit_in_the_message() {
    let f = Fixture::new().await;
    for n in 0..50 {
        f.add_simulator_account(&format!("Account {n:02}")).await;
    }

    let response = call(
        &f.admin,
        AddApiAccount::PATH,
        &f.simulator_form("One too many"),
    )
    .await;

    let error = expect_error(response, StatusCode::CONFLICT, "conflict").await;
    assert_eq!(
        error["message"],
        "An organization can have at most 50 API accounts."
    );
}

#[tokio::test]
async fn other_roles_and_admins_of_other_organizations_are_forbidden() {
    let f = Fixture::new().await;
    let id = f.add_simulator_account("Main").await;
    let other = f.app.create_org("Globex").await;
    let mut callers = Vec::new();
    for (name, role) in [
        ("olga", Role::Operator),
        ("hugo", Role::Helpdesk),
        ("vera", Role::Viewer),
    ] {
        callers.push((name, f.app.user_with_role(name, f.org, Some(role)).await));
    }
    callers.push((
        "admin of another organization",
        f.app.user_with_role("otto", other, Some(Role::Admin)).await,
    ));
    callers.push(("no role", f.app.user_with_role("nina", f.org, None).await));
    let account = [("org", f.org()), ("account", id.clone())];
    let mut rotate = account.to_vec();
    rotate.extend([
        ("key_id", uuid::Uuid::new_v4().to_string()),
        ("pem", new_key().private_pem),
    ]);

    for (who, browser) in &callers {
        let responses = [
            f.accounts(browser).await,
            call(browser, AddApiAccount::PATH, &f.simulator_form("Mine")).await,
            call(browser, TestApiAccount::PATH, &account).await,
            call(browser, RotateApiKey::PATH, &rotate).await,
            call(browser, RevokeApiAccount::PATH, &account).await,
            call(browser, DeleteApiAccount::PATH, &account).await,
        ];
        for (n, response) in responses.into_iter().enumerate() {
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{who}, call {n}");
            assert_eq!(
                response.text().await.unwrap(),
                r#"{"kind":"forbidden"}"#,
                "{who}, call {n}"
            );
        }
    }
    let listed = expect_ok(f.accounts(&f.admin).await).await;
    assert_eq!(listed["accounts"].as_array().unwrap().len(), 1);
    assert!(listed["accounts"][0]["revoked_at"].is_null());
}

#[tokio::test]
async fn an_account_of_another_organization_is_not_found_through_ones_own() {
    let f = Fixture::new().await;
    let other = f.app.create_org("Globex").await;
    let otto = f.app.user_with_role("otto", other, Some(Role::Admin)).await;
    let theirs = f.add_simulator_account("Acme's").await;

    for path in [
        TestApiAccount::PATH,
        RevokeApiAccount::PATH,
        DeleteApiAccount::PATH,
    ] {
        let response = call(
            &otto,
            path,
            &[("org", other.to_string()), ("account", theirs.clone())],
        )
        .await;
        expect_error(response, StatusCode::NOT_FOUND, "not_found").await;
    }
    let listed = expect_ok(f.accounts(&f.admin).await).await;
    assert!(listed["accounts"][0]["revoked_at"].is_null(), "untouched");
}

#[tokio::test]
async fn signed_out_callers_get_401() {
    let f = Fixture::new().await;
    let id = f.add_simulator_account("Main").await;
    let stranger = f.app.browser();

    let responses = [
        f.accounts(&stranger).await,
        call(&stranger, AddApiAccount::PATH, &f.simulator_form("Mine")).await,
        call(
            &stranger,
            TestApiAccount::PATH,
            &[("org", f.org()), ("account", id.clone())],
        )
        .await,
        call(
            &stranger,
            DeleteApiAccount::PATH,
            &[("org", f.org()), ("account", id.clone())],
        )
        .await,
        call(
            &stranger,
            CreateOrganization::PATH,
            &[("name", "Mine".into())],
        )
        .await,
        stranger.get(ListOrganizations::PATH).await,
    ];

    for response in responses {
        expect_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
}

#[tokio::test]
async fn cross_site_posts_are_refused_before_anything_changes() {
    let f = Fixture::new().await;
    let id = f.add_simulator_account("Main").await;

    let form: Vec<(&str, String)> = f.simulator_form("Planted");
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let add = f.admin.call_cross_site(AddApiAccount::PATH, &pairs).await;
    let delete = f
        .admin
        .call_cross_site(
            DeleteApiAccount::PATH,
            &[("org", &f.org()), ("account", &id)],
        )
        .await;

    assert_eq!(add.status(), StatusCode::FORBIDDEN);
    assert_eq!(delete.status(), StatusCode::FORBIDDEN);
    let listed = expect_ok(f.accounts(&f.admin).await).await;
    let names: Vec<&str> = listed["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Main"]);
}

#[tokio::test]
async fn organizations_are_listed_by_role_and_created_only_by_instance_admins() {
    let f = Fixture::new().await;
    let other = f.app.create_org("Globex").await;
    f.app
        .user_with_role("vera", other, Some(Role::Viewer))
        .await;
    let root_id = f.app.create_user("root", true).await;
    let root = f.app.sign_in("root", common::PASSWORD).await;

    let listed = expect_ok(f.admin.get(ListOrganizations::PATH).await).await;
    assert_eq!(listed["may_create"], false);
    let names: Vec<&str> = listed["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Acme"],
        "an org admin sees only their organizations"
    );

    let refused = call(
        &f.admin,
        CreateOrganization::PATH,
        &[("name", "Mine".into())],
    )
    .await;
    expect_error(refused, StatusCode::FORBIDDEN, "forbidden").await;

    let created = expect_ok(
        call(
            &root,
            CreateOrganization::PATH,
            &[("name", "  Initech Ltd ".into())],
        )
        .await,
    )
    .await;
    assert_eq!(created["name"], "Initech Ltd");
    assert_eq!(created["slug"], "initech-ltd");
    assert_eq!(created["role"], "admin");
    let new_org: OrgId = OrgId(created["id"].as_str().unwrap().parse().unwrap());
    let memberships = f.app.store.memberships_of(root_id).await.unwrap();
    assert!(
        memberships
            .iter()
            .any(|m| m.org_id == new_org && m.role == Role::Admin),
        "the creator administers the new organization"
    );
    assert!(
        audit_actions(&f.app)
            .await
            .iter()
            .any(|a| a == "organization.create")
    );

    let listed = expect_ok(root.get(ListOrganizations::PATH).await).await;
    assert_eq!(listed["may_create"], true);
    let hub = root.get("/settings").await.text().await.unwrap();
    assert!(hub.contains("Create an organization"), "{hub}");
    let all: Vec<(&str, bool)> = listed["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["name"].as_str().unwrap(),
                o["manageable"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        all,
        [("Acme", false), ("Globex", false), ("Initech Ltd", true)],
        "an instance admin sees every organization"
    );

    for (name, message) in [
        ("initech ltd!", "An organization with this name"),
        ("", "The organization name is empty."),
        (
            "!!!",
            "The organization name needs at least one letter or digit.",
        ),
    ] {
        let response = call(&root, CreateOrganization::PATH, &[("name", name.into())]).await;
        let error = expect_error(response, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
        assert_eq!(error["fields"][0]["field"], "name");
        let text = error["fields"][0]["message"].as_str().unwrap();
        assert!(text.starts_with(message), "{name}: {text}");
    }
}

#[tokio::test]
async fn the_organization_page_renders_accounts_with_their_health_for_admins_only() {
    let f = Fixture::new().await;
    let id = f.add_simulator_account("Main office").await;
    call(
        &f.admin,
        TestApiAccount::PATH,
        &[("org", f.org()), ("account", id.clone())],
    )
    .await;
    let viewer = f
        .app
        .user_with_role("vera", f.org, Some(Role::Viewer))
        .await;
    let page = format!("/settings/organizations/{}", f.org);

    let response = f.admin.get(&page).await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains("<h1>Acme</h1>"), "{html}");
    assert!(html.contains("Main office"));
    assert!(html.contains("Working"));
    assert!(html.contains("Last success"));
    assert!(html.contains(f.sim.base_url()));
    assert_no_key_material(&html, &f.sim.credentials().private_key_pem);

    let hub = f.admin.get("/settings").await.text().await.unwrap();
    assert!(hub.contains(&format!(r#"href="{page}""#)), "{hub}");
    assert!(
        !hub.contains("Create an organization"),
        "only instance administrators get the form"
    );

    assert_eq!(viewer.get(&page).await.status(), StatusCode::FORBIDDEN);
    let stranger = f.app.browser().get(&page).await;
    assert!(stranger.status().is_redirection());
    assert!(
        stranger.headers()[LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/login")
    );
}

#[tokio::test]
async fn a_form_posted_without_javascript_returns_to_the_page_with_its_error() {
    let f = Fixture::new().await;
    let page = f.app.url(&format!("/settings/organizations/{}", f.org));
    let mut form = f.simulator_form("Faulty");
    form.iter_mut().find(|(k, _)| *k == "client_id").unwrap().1 = "nope".into();
    let body: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let response = f
        .admin
        .client
        .post(f.admin.url(AddApiAccount::PATH))
        .header(ORIGIN, &f.admin.base)
        .header("sec-fetch-site", "same-origin")
        .header(ACCEPT, "text/html")
        .header(REFERER, &page)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(common::serde_urlencoded(&body))
        .send()
        .await
        .unwrap();

    assert!(response.status().is_redirection(), "{}", response.status());
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(location.starts_with(&page), "{location}");
    assert!(location.contains("__err="), "{location}");
    let html = f
        .admin
        .get(location.trim_start_matches(&f.admin.base))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("The client id must be BUSINESSAPI.&lt;uuid&gt;")
            || html.contains("The client id must be BUSINESSAPI.<uuid>"),
        "the field error is on the page: {html}"
    );
    assert!(html.contains(r#"id="account-client-id-error""#));
}
