//! The role matrix: every server function and every page, called by every kind of caller,
//! compared with the table below. A server function or route missing from the table fails
//! the test, so a new one cannot ship without deciding who may use it.
//!
//! Outcomes are about the access check only: `ok` means the call got past it (a 2xx, or a
//! domain answer such as 404/409/422 for arguments that are valid for some callers only),
//! `no` is 403, `out` is 401 for server functions and a redirect to sign-in for pages.

mod common;

use std::collections::BTreeSet;
use std::fmt;

use backend::identity::Role;
use common::{Browser, TestApp};
use leptos::server_fn::ServerFn;
use reqwest::StatusCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    No,
    Out,
}
use Outcome::{No, Ok as Yes, Out};

/// The callers, in the column order of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    SignedOut,
    /// Signed in without a role in the organization.
    NoRole,
    Viewer,
    Helpdesk,
    Operator,
    Admin,
    /// Admin of another organization only.
    OtherAdmin,
    /// Instance administrator without a role in the organization.
    InstanceAdmin,
}

const CALLERS: [Caller; 8] = [
    Caller::SignedOut,
    Caller::NoRole,
    Caller::Viewer,
    Caller::Helpdesk,
    Caller::Operator,
    Caller::Admin,
    Caller::OtherAdmin,
    Caller::InstanceAdmin,
];

/// Ids the arguments refer to.
struct Fixture {
    org: String,
    other_org: String,
}

type Args = fn(&Fixture) -> Vec<(&'static str, String)>;

struct Row {
    path: &'static str,
    get: bool,
    args: Args,
    expect: [Outcome; 8],
}

fn none(_: &Fixture) -> Vec<(&'static str, String)> {
    Vec::new()
}

/// Every server function. Columns: signed out, no role, viewer, helpdesk, operator, admin,
/// admin of another organization, instance admin.
fn server_functions() -> Vec<Row> {
    use app::api::*;
    vec![
        Row {
            path: GetMe::PATH,
            get: true,
            args: none,
            expect: [Yes, Yes, Yes, Yes, Yes, Yes, Yes, Yes],
        },
        Row {
            path: GetSignInOptions::PATH,
            get: true,
            args: none,
            expect: [Yes, Yes, Yes, Yes, Yes, Yes, Yes, Yes],
        },
        Row {
            path: SetTheme::PATH,
            get: false,
            args: |_| vec![("theme", "dark".into())],
            expect: [Yes, Yes, Yes, Yes, Yes, Yes, Yes, Yes],
        },
        Row {
            path: GetSystemStatus::PATH,
            get: true,
            args: none,
            expect: [Out, Yes, Yes, Yes, Yes, Yes, Yes, Yes],
        },
        Row {
            path: SignIn::PATH,
            get: false,
            args: |_| vec![("username", "nobody".into()), ("password", "wrong".into())],
            expect: [Yes, Yes, Yes, Yes, Yes, Yes, Yes, Yes],
        },
        Row {
            path: SignOut::PATH,
            get: false,
            args: none,
            expect: [Out, Yes, Yes, Yes, Yes, Yes, Yes, Yes],
        },
        Row {
            path: CompleteSetup::PATH,
            get: false,
            args: |_| {
                vec![
                    ("token", "x".into()),
                    ("username", "late".into()),
                    ("password", "a long enough password".into()),
                    ("password_confirm", "a long enough password".into()),
                ]
            },
            expect: [Yes, Yes, Yes, Yes, Yes, Yes, Yes, Yes],
        },
        Row {
            path: ListOrganizations::PATH,
            get: true,
            args: none,
            expect: [Out, Yes, Yes, Yes, Yes, Yes, Yes, Yes],
        },
        Row {
            path: CreateOrganization::PATH,
            get: false,
            // An empty name: past the check it is a 422, and nothing is created.
            args: |_| vec![("name", String::new())],
            expect: [Out, No, No, No, No, No, No, Yes],
        },
        Row {
            path: GetApiAccounts::PATH,
            get: true,
            args: |f| vec![("org", f.org.clone())],
            expect: MANAGE_ACCOUNTS,
        },
        Row {
            path: AddApiAccount::PATH,
            get: false,
            // A malformed client id: past the check it is a 422, and nothing is added.
            args: |f| {
                vec![
                    ("org", f.org.clone()),
                    ("name", "Probe".into()),
                    ("client_id", "x".into()),
                    ("key_id", "x".into()),
                    ("pem", "x".into()),
                ]
            },
            expect: MANAGE_ACCOUNTS,
        },
        Row {
            path: TestApiAccount::PATH,
            get: false,
            args: unknown_account,
            expect: MANAGE_ACCOUNTS,
        },
        Row {
            path: RotateApiKey::PATH,
            get: false,
            args: |f| {
                let mut args = unknown_account(f);
                args.extend([("key_id", "x".into()), ("pem", "x".into())]);
                args
            },
            expect: MANAGE_ACCOUNTS,
        },
        Row {
            path: RevokeApiAccount::PATH,
            get: false,
            args: unknown_account,
            expect: MANAGE_ACCOUNTS,
        },
        Row {
            path: DeleteApiAccount::PATH,
            get: false,
            args: unknown_account,
            expect: MANAGE_ACCOUNTS,
        },
    ]
}

/// Admins of the organization only (`ManageAccounts`).
const MANAGE_ACCOUNTS: [Outcome; 8] = [Out, No, No, No, No, Yes, No, No];

/// An API account id that does not exist: past the check it is a 404, and nothing changes.
fn unknown_account(f: &Fixture) -> Vec<(&'static str, String)> {
    vec![
        ("org", f.org.clone()),
        ("account", "00000000-0000-4000-8000-000000000000".into()),
    ]
}

/// Every page. Same columns.
fn pages(f: &Fixture) -> Vec<(String, [Outcome; 8])> {
    let open = [Yes, Yes, Yes, Yes, Yes, Yes, Yes, Yes];
    let signed_in = [Out, Yes, Yes, Yes, Yes, Yes, Yes, Yes];
    vec![
        ("/login".into(), open),
        ("/setup".into(), open),
        ("/".into(), signed_in),
        ("/welcome".into(), signed_in),
        ("/devices".into(), signed_in),
        ("/assign".into(), signed_in),
        ("/blueprints".into(), signed_in),
        ("/configurations".into(), signed_in),
        ("/directory".into(), signed_in),
        ("/audit".into(), signed_in),
        ("/fleet".into(), signed_in),
        ("/settings".into(), signed_in),
        (
            format!("/settings/organizations/{}", f.org),
            MANAGE_ACCOUNTS,
        ),
    ]
}

/// Route patterns of the pages table, for the completeness check (`{org}` for ids, as
/// axum 0.8 spells route parameters).
fn page_patterns(f: &Fixture) -> BTreeSet<String> {
    pages(f)
        .into_iter()
        .map(|(path, _)| path.replace(&f.org, "{org}").replace(&f.other_org, "{org}"))
        .collect()
}

struct Mismatch {
    what: String,
    caller: Caller,
    expected: Outcome,
    got: String,
}

impl fmt::Debug for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} as {:?}: expected {:?}, got {}",
            self.what, self.caller, self.expected, self.got
        )
    }
}

struct World {
    app: TestApp,
    fixture: Fixture,
    acme: backend::orgs::OrgId,
    other: backend::orgs::OrgId,
    next_user: std::sync::atomic::AtomicUsize,
}

impl World {
    async fn new() -> Self {
        let app = TestApp::spawn().await;
        let acme = app.create_org("Acme").await;
        let other = app.create_org("Other").await;
        Self {
            fixture: Fixture {
                org: acme.to_string(),
                other_org: other.to_string(),
            },
            app,
            acme,
            other,
            next_user: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// A fresh browser for `caller`: a new user each time, so that sign-out or a disabled
    /// account in one call cannot change the next.
    async fn browser(&self, caller: Caller) -> Browser {
        let n = self
            .next_user
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("{caller:?}-{n}").to_lowercase();
        let app = &self.app;
        match caller {
            Caller::SignedOut => app.browser(),
            Caller::NoRole => app.user_with_role(&name, self.acme, None).await,
            Caller::Viewer => {
                app.user_with_role(&name, self.acme, Some(Role::Viewer))
                    .await
            }
            Caller::Helpdesk => {
                app.user_with_role(&name, self.acme, Some(Role::Helpdesk))
                    .await
            }
            Caller::Operator => {
                app.user_with_role(&name, self.acme, Some(Role::Operator))
                    .await
            }
            Caller::Admin => {
                app.user_with_role(&name, self.acme, Some(Role::Admin))
                    .await
            }
            Caller::OtherAdmin => {
                app.user_with_role(&name, self.other, Some(Role::Admin))
                    .await
            }
            Caller::InstanceAdmin => {
                app.create_user(&name, true).await;
                app.sign_in(&name, common::PASSWORD).await
            }
        }
    }
}

fn classify_call(status: StatusCode) -> Option<Outcome> {
    match status {
        StatusCode::UNAUTHORIZED => Some(Out),
        StatusCode::FORBIDDEN => Some(No),
        s if s.is_success()
            || matches!(
                s,
                StatusCode::NOT_FOUND
                    | StatusCode::CONFLICT
                    | StatusCode::UNPROCESSABLE_ENTITY
                    | StatusCode::TOO_MANY_REQUESTS
                    | StatusCode::SERVICE_UNAVAILABLE
            ) =>
        {
            Some(Yes)
        }
        _ => None,
    }
}

fn classify_page(response: &reqwest::Response) -> Option<Outcome> {
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match response.status() {
        StatusCode::OK => Some(Yes),
        StatusCode::FORBIDDEN => Some(No),
        StatusCode::SEE_OTHER if location.starts_with("/login") => Some(Out),
        _ => None,
    }
}

#[tokio::test]
async fn every_server_function_checks_the_role_as_the_table_says() {
    let world = World::new().await;
    let rows = server_functions();

    let registered: BTreeSet<&str> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| path)
        .collect();
    let listed: BTreeSet<&str> = rows.iter().map(|r| r.path).collect();
    let unlisted: Vec<_> = registered.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "server functions missing from the table: {unlisted:?}"
    );

    let mut mismatches = Vec::new();
    for row in &rows {
        for (caller, expected) in CALLERS.into_iter().zip(row.expect) {
            let browser = world.browser(caller).await;
            let args = (row.args)(&world.fixture);
            let form: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let response = if row.get {
                let query = common::serde_urlencoded(&form);
                browser.get(&format!("{}?{query}", row.path)).await
            } else {
                browser.call(row.path, &form).await
            };
            let status = response.status();
            let got = classify_call(status);
            if got != Some(expected) {
                mismatches.push(Mismatch {
                    what: row.path.to_owned(),
                    caller,
                    expected,
                    got: format!("{status} {}", response.text().await.unwrap_or_default()),
                });
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} unexpected results:\n{mismatches:#?}",
        mismatches.len()
    );
}

#[tokio::test]
async fn every_page_checks_sign_in_and_role_as_the_table_says() {
    let world = World::new().await;
    // A user must exist, or every page leads to first-run setup instead.
    world.app.create_user("someone", false).await;

    let routes: BTreeSet<String> = leptos_axum::generate_route_list(app::App)
        .iter()
        .map(|r| r.path().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    let listed = page_patterns(&world.fixture);
    let unlisted: Vec<_> = routes.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "pages missing from the table: {unlisted:?}"
    );

    let mut mismatches = Vec::new();
    for (path, expect) in pages(&world.fixture) {
        for (caller, expected) in CALLERS.into_iter().zip(expect) {
            let response = world.browser(caller).await.get(&path).await;
            let got = classify_page(&response);
            if got != Some(expected) {
                mismatches.push(Mismatch {
                    what: path.clone(),
                    caller,
                    expected,
                    got: format!(
                        "{} {:?}",
                        response.status(),
                        response.headers().get("location")
                    ),
                });
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} unexpected results:\n{mismatches:#?}",
        mismatches.len()
    );
}
