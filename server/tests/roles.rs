//! The role matrix: every server function and every page, called by every kind of caller,
//! compared with the table below. A server function or route missing from the table fails
//! the test, so a new one cannot ship without deciding who may use it.
//!
//! Outcomes are about the access check only: `ok` means the call got past it (a 2xx, or a
//! domain answer such as 404/409/422 for arguments that are valid for some callers only),
//! `no` is 403, `out` is 401 for server functions and a redirect to sign-in for pages.
//!
//! The same crawl, with a canary private key added, shows that the key appears in no
//! response, no TRACE log line and no byte of the database.

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
            expect: ADMINISTERS_SOMETHING,
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
        Row {
            path: GetSsoSettings::PATH,
            get: true,
            args: none,
            expect: INSTANCE_ADMIN,
        },
        Row {
            path: AddSsoRule::PATH,
            get: false,
            // An empty group: past the check it is a 422, and nothing is added.
            args: |f| {
                vec![
                    ("org", f.org.clone()),
                    ("group", String::new()),
                    ("role", "viewer".into()),
                ]
            },
            expect: INSTANCE_ADMIN,
        },
        Row {
            path: DeleteSsoRule::PATH,
            get: false,
            args: |f| vec![("org", f.org.clone()), ("group", "no-such-group".into())],
            expect: INSTANCE_ADMIN,
        },
        Row {
            path: ListUsers::PATH,
            get: true,
            args: none,
            expect: INSTANCE_ADMIN,
        },
        Row {
            path: CreateUser::PATH,
            get: false,
            // An empty username: past the check it is a 422, and nothing is created.
            args: |_| {
                vec![
                    ("username", String::new()),
                    ("password", String::new()),
                    ("password_confirm", String::new()),
                ]
            },
            expect: INSTANCE_ADMIN,
        },
        Row {
            path: SetUserRole::PATH,
            get: false,
            args: |f| {
                let mut args = unknown_user(f);
                args.push(("role", "viewer".into()));
                args
            },
            expect: MANAGE_ROLES,
        },
        Row {
            path: RemoveUserRole::PATH,
            get: false,
            args: unknown_user,
            expect: MANAGE_ROLES,
        },
        Row {
            path: SetUserDisabled::PATH,
            get: false,
            args: |f| {
                let mut args = unknown_user(f);
                args.push(("disabled", "true".into()));
                args
            },
            expect: INSTANCE_ADMIN,
        },
        Row {
            path: ResetUserTotp::PATH,
            get: false,
            args: unknown_user,
            expect: INSTANCE_ADMIN,
        },
        Row {
            path: ResetUserPassword::PATH,
            get: false,
            args: |f| {
                let mut args = unknown_user(f);
                args.push(("password", "a long enough password".into()));
                args
            },
            expect: INSTANCE_ADMIN,
        },
        Row {
            path: ListDevices::PATH,
            get: true,
            args: |f| vec![("org", f.org.clone()), ("query", "q=C02&sort=model".into())],
            expect: VIEW_DEVICES,
        },
        Row {
            path: GetDeviceFilters::PATH,
            get: true,
            args: |f| vec![("org", f.org.clone())],
            expect: VIEW_DEVICES,
        },
        Row {
            path: GetDevice::PATH,
            get: true,
            // No such device: past the check it is a 404.
            args: |f| vec![("org", f.org.clone()), ("serial", "NOSUCHSERIAL".into())],
            expect: VIEW_DEVICES,
        },
        Row {
            path: GetDeviceCoverage::PATH,
            get: true,
            args: |f| vec![("org", f.org.clone()), ("serial", "NOSUCHSERIAL".into())],
            expect: VIEW_DEVICES,
        },
        Row {
            path: RefreshDeviceCoverage::PATH,
            get: false,
            args: |f| vec![("org", f.org.clone()), ("serial", "NOSUCHSERIAL".into())],
            expect: REFRESH_FROM_APPLE,
        },
        Row {
            path: ListServices::PATH,
            get: true,
            args: |f| vec![("org", f.org.clone())],
            expect: VIEW_SERVICES,
        },
        Row {
            path: GetAssignStart::PATH,
            get: true,
            args: |f| vec![("org", f.org.clone()), ("serials", "C02XL0GSJGH5".into())],
            expect: ASSIGN_DEVICES,
        },
        Row {
            path: SaveDevices::PATH,
            get: false,
            // Empty text: past the check it is a 422, and no draft is made.
            args: |f| vec![("org", f.org.clone()), ("text", String::new())],
            expect: ASSIGN_DEVICES,
        },
        Row {
            path: SaveDevices::PATH,
            get: false,
            // Someone's draft (nobody's): past the check it is a 404, and nothing changes.
            args: |f| {
                vec![
                    ("org", f.org.clone()),
                    ("draft", DRAFT.into()),
                    ("text", "C02XL0GSJGH5".into()),
                ]
            },
            expect: DRAFT_OWNER,
        },
        Row {
            path: TakeFilteredDevices::PATH,
            get: false,
            // A filter matching nothing: past the check it is a 422, and no draft is made.
            args: |f| vec![("org", f.org.clone()), ("filter", "q=NOSUCHDEVICE".into())],
            expect: ASSIGN_DEVICES,
        },
        Row {
            path: GetDraftInput::PATH,
            get: true,
            args: unknown_draft,
            expect: DRAFT_OWNER,
        },
        Row {
            path: GetActionChoices::PATH,
            get: true,
            args: unknown_draft,
            expect: DRAFT_OWNER,
        },
        Row {
            path: ChooseAction::PATH,
            get: false,
            args: |f| {
                let mut args = unknown_draft(f);
                args.extend([("kind", "assign".into()), ("service", "S1".into())]);
                args
            },
            expect: DRAFT_OWNER,
        },
        Row {
            path: GetPreview::PATH,
            get: true,
            args: unknown_draft,
            expect: DRAFT_OWNER,
        },
        Row {
            path: GetSyncStatus::PATH,
            get: true,
            args: |f| vec![("org", f.org.clone())],
            expect: MANAGE_ACCOUNTS,
        },
        Row {
            path: SyncNow::PATH,
            get: false,
            args: unknown_account,
            expect: REFRESH_FROM_APPLE,
        },
        Row {
            path: GetConfirmation::PATH,
            get: true,
            // No such draft: past the check it is a 404.
            args: unknown_draft,
            expect: DRAFT_OWNER,
        },
        Row {
            path: StartJob::PATH,
            get: false,
            args: unknown_draft,
            expect: DRAFT_OWNER,
        },
        Row {
            path: ListJobs::PATH,
            get: true,
            args: |f| vec![("org", f.org.clone())],
            expect: ASSIGN_DEVICES,
        },
        Row {
            path: GetJob::PATH,
            get: true,
            args: unknown_job,
            expect: ASSIGN_DEVICES,
        },
        Row {
            path: GetJobResults::PATH,
            get: true,
            args: unknown_job,
            expect: ASSIGN_DEVICES,
        },
        Row {
            path: CancelJob::PATH,
            get: false,
            args: unknown_job,
            expect: ASSIGN_DEVICES,
        },
        Row {
            path: RetryFailed::PATH,
            get: false,
            args: unknown_job,
            expect: ASSIGN_DEVICES,
        },
        Row {
            path: ListAudit::PATH,
            get: true,
            args: none,
            expect: INSTANCE_ADMIN,
        },
        Row {
            path: GetAccount::PATH,
            get: true,
            args: none,
            expect: SIGNED_IN,
        },
        Row {
            path: ChangePassword::PATH,
            get: false,
            // Empty passwords: past the check it is a 422, and nothing changes.
            args: |_| {
                vec![
                    ("current_password", String::new()),
                    ("new_password", String::new()),
                    ("new_password_confirm", String::new()),
                ]
            },
            expect: SIGNED_IN,
        },
        Row {
            path: BeginTotp::PATH,
            get: false,
            args: none,
            expect: SIGNED_IN,
        },
        Row {
            path: ConfirmTotp::PATH,
            get: false,
            // Without a pending enrolment: past the check it is a 409.
            args: |_| vec![("code", "000000".into())],
            expect: SIGNED_IN,
        },
        Row {
            path: RegenerateRecoveryCodes::PATH,
            get: false,
            // Without TOTP: past the check it is a 409, and no codes are issued.
            args: none,
            expect: SIGNED_IN,
        },
    ]
}

/// Any signed-in user, about themself.
const SIGNED_IN: [Outcome; 8] = [Out, Yes, Yes, Yes, Yes, Yes, Yes, Yes];

/// Roles in the organization: its admins (`ManageUsers`) and instance administrators.
const MANAGE_ROLES: [Outcome; 8] = [Out, No, No, No, No, Yes, No, Yes];

/// A user id that does not exist, in the organization: past the check it is a 404 or a
/// no-op, and nobody changes.
fn unknown_user(f: &Fixture) -> Vec<(&'static str, String)> {
    vec![
        ("user", "00000000-0000-4000-8000-000000000000".into()),
        ("org", f.org.clone()),
    ]
}

/// Instance administrators only.
const INSTANCE_ADMIN: [Outcome; 8] = [Out, No, No, No, No, No, No, Yes];

/// Whoever administers some organization, or the instance.
const ADMINISTERS_SOMETHING: [Outcome; 8] = [Out, No, No, No, No, Yes, Yes, Yes];

/// The organization's device list and records (`ViewDevices`: every role).
const VIEW_DEVICES: [Outcome; 8] = [Out, No, Yes, Yes, Yes, Yes, No, No];

/// Device management services (`ViewServices`: all but viewers).
const VIEW_SERVICES: [Outcome; 8] = [Out, No, No, Yes, Yes, Yes, No, No];

/// Asking Apple for fresh data (`RefreshFromApple`: all but viewers).
const REFRESH_FROM_APPLE: [Outcome; 8] = [Out, No, No, Yes, Yes, Yes, No, No];

/// Assigning devices in the organization (`AssignDevices`: admins and operators).
const ASSIGN_DEVICES: [Outcome; 8] = [Out, No, No, No, Yes, Yes, No, No];

/// A wizard draft by id: whoever may assign devices somewhere gets past the check (and then
/// finds only their own drafts: 404 here); helpdesk, viewers and roleless users are refused.
const DRAFT_OWNER: [Outcome; 8] = [Out, No, No, No, Yes, Yes, Yes, No];

/// A draft id nobody has.
const DRAFT: &str = "00000000-0000-4000-8000-00000000d4af";

fn unknown_draft(_: &Fixture) -> Vec<(&'static str, String)> {
    vec![("draft", DRAFT.into())]
}

/// Admins of the organization only (`ManageAccounts`).
const MANAGE_ACCOUNTS: [Outcome; 8] = [Out, No, No, No, No, Yes, No, No];

/// A job that does not exist: past the check it is a 404, and nothing changes.
fn unknown_job(f: &Fixture) -> Vec<(&'static str, String)> {
    vec![("org", f.org.clone()), ("job", JOB.into())]
}

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
        // Without `org`: the viewer's first organization that allows it (the other
        // organization's admin sees theirs); nobody's without a role anywhere.
        ("/devices".into(), [Out, No, Yes, Yes, Yes, Yes, Yes, No]),
        (format!("/devices?org={}", f.org), VIEW_DEVICES),
        // No such device: past the check it is a 404.
        (format!("/devices/{SERIAL}?org={}", f.org), VIEW_DEVICES),
        ("/services".into(), [Out, No, No, Yes, Yes, Yes, Yes, No]),
        (format!("/services?org={}", f.org), VIEW_SERVICES),
        // Without `org`: the viewer's first organization where they may assign.
        ("/assign".into(), [Out, No, No, No, Yes, Yes, Yes, No]),
        (format!("/assign?org={}", f.org), ASSIGN_DEVICES),
        (format!("/assign/{DRAFT}"), DRAFT_OWNER),
        (format!("/assign/{DRAFT}/action"), DRAFT_OWNER),
        (format!("/assign/{DRAFT}/preview"), DRAFT_OWNER),
        (format!("/assign/{DRAFT}/confirm"), DRAFT_OWNER),
        ("/jobs".into(), [Out, No, No, No, Yes, Yes, Yes, No]),
        (format!("/jobs?org={}", f.org), ASSIGN_DEVICES),
        (format!("/jobs/{JOB}?org={}", f.org), ASSIGN_DEVICES),
        ("/blueprints".into(), signed_in),
        ("/configurations".into(), signed_in),
        ("/directory".into(), signed_in),
        ("/audit".into(), signed_in),
        ("/fleet".into(), signed_in),
        ("/settings".into(), ADMINISTERS_SOMETHING),
        ("/settings/sso".into(), INSTANCE_ADMIN),
        ("/settings/users".into(), INSTANCE_ADMIN),
        ("/settings/audit".into(), INSTANCE_ADMIN),
        ("/account".into(), signed_in),
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
        .map(|(path, _)| {
            let path = path.split('?').next().unwrap_or_default();
            path.replace(&f.org, "{org}")
                .replace(&f.other_org, "{org}")
                .replace(SERIAL, "{serial}")
                .replace(DRAFT, "{draft}")
                .replace(JOB, "{id}")
        })
        .collect()
}

/// A serial number no organization has, for the device page's row.
const SERIAL: &str = "NOSUCHSERIAL";
/// A job id no organization has.
const JOB: &str = "987654321";

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
        // A user must exist, or every page leads to first-run setup instead.
        app.create_user("someone", false).await;
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

fn classify_page(answer: &Answer) -> Option<Outcome> {
    let location = answer.location.as_deref().unwrap_or_default();
    match answer.status {
        // Allowed in, and the thing asked for does not exist.
        StatusCode::OK | StatusCode::NOT_FOUND => Some(Yes),
        StatusCode::FORBIDDEN => Some(No),
        StatusCode::SEE_OTHER if location.starts_with("/login") => Some(Out),
        _ => None,
    }
}

/// One answer of the crawl: who asked for what, and what came back.
struct Answer {
    what: String,
    caller: Caller,
    expected: Outcome,
    status: StatusCode,
    location: Option<String>,
    body: String,
}

/// Calls every server function of the table as every caller (a fresh user each time).
async fn call_every_server_function(world: &World) -> Vec<Answer> {
    let mut answers = Vec::new();
    for row in server_functions() {
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
            answers.push(answer(row.path.to_owned(), caller, expected, response).await);
        }
    }
    answers
}

/// Opens every page of the table as every caller.
async fn open_every_page(world: &World) -> Vec<Answer> {
    let mut answers = Vec::new();
    for (path, expect) in pages(&world.fixture) {
        for (caller, expected) in CALLERS.into_iter().zip(expect) {
            let response = world.browser(caller).await.get(&path).await;
            answers.push(answer(path.clone(), caller, expected, response).await);
        }
    }
    answers
}

async fn answer(
    what: String,
    caller: Caller,
    expected: Outcome,
    response: reqwest::Response,
) -> Answer {
    Answer {
        what,
        caller,
        expected,
        status: response.status(),
        location: response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: response.text().await.unwrap_or_default(),
    }
}

fn mismatches(answers: &[Answer], classify: fn(&Answer) -> Option<Outcome>) -> Vec<Mismatch> {
    answers
        .iter()
        .filter(|a| classify(a) != Some(a.expected))
        .map(|a| Mismatch {
            what: a.what.clone(),
            caller: a.caller,
            expected: a.expected,
            got: format!(
                "{} {:?} {}",
                a.status,
                a.location,
                a.body.chars().take(200).collect::<String>()
            ),
        })
        .collect()
}

#[tokio::test]
async fn every_server_function_checks_the_role_as_the_table_says() {
    let registered: BTreeSet<&str> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| path)
        .collect();
    let listed: BTreeSet<&str> = server_functions().iter().map(|r| r.path).collect();
    let unlisted: Vec<_> = registered.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "server functions missing from the table: {unlisted:?}"
    );

    let world = World::new().await;
    let answers = call_every_server_function(&world).await;

    let mismatches = mismatches(&answers, |a| classify_call(a.status));
    assert!(
        mismatches.is_empty(),
        "{} unexpected results:\n{mismatches:#?}",
        mismatches.len()
    );
}

#[tokio::test]
async fn every_page_checks_sign_in_and_role_as_the_table_says() {
    let world = World::new().await;
    let routes: BTreeSet<String> = server::route_list()
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

    let answers = open_every_page(&world).await;

    let mismatches = mismatches(&answers, classify_page);
    assert!(
        mismatches.is_empty(),
        "{} unexpected results:\n{mismatches:#?}",
        mismatches.len()
    );
}

/// The preview download of the wizard (a plain route, not a server function) checks access
/// as the wizard's functions do.
#[tokio::test]
async fn the_preview_csv_checks_the_role_as_the_wizard_does() {
    let world = World::new().await;
    let mut mismatches = Vec::new();
    for (caller, expected) in CALLERS.into_iter().zip(DRAFT_OWNER) {
        let browser = world.browser(caller).await;
        let path = format!("/assign/{DRAFT}/preview.csv");
        let a = answer(
            path,
            caller,
            expected,
            browser.get(&format!("/assign/{DRAFT}/preview.csv")).await,
        )
        .await;
        // Signed out, the sign-in gate redirects (as for pages); otherwise the route answers.
        let got = classify_page(&a).or_else(|| classify_call(a.status));
        if got != Some(expected) || a.status.is_success() {
            mismatches.push(format!(
                "{caller:?}: expected {expected:?}, got {} {:?}",
                a.status, a.location
            ));
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}

/// Every state-changing server function refuses a call from another site, whoever is
/// signed in: the refusal happens before the function runs.
#[tokio::test]
async fn every_mutation_refuses_a_cross_site_request() {
    let world = World::new().await;
    let mut accepted = Vec::new();
    for row in server_functions().into_iter().filter(|r| !r.get) {
        for caller in [Caller::SignedOut, Caller::Admin, Caller::InstanceAdmin] {
            let browser = world.browser(caller).await;
            let args = (row.args)(&world.fixture);
            let form: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let response = browser.call_cross_site(row.path, &form).await;
            if response.status() != StatusCode::FORBIDDEN
                || !response
                    .text()
                    .await
                    .unwrap_or_default()
                    .contains("Cross-site")
            {
                accepted.push(format!("{} as {caller:?}", row.path));
            }
        }
    }
    assert!(
        accepted.is_empty(),
        "cross-site calls not refused: {accepted:#?}"
    );
}

/// A canary private key, added through the server function behind the API account form
/// and used for a connection test, appears in no response of the whole crawl (every page
/// and server function, every caller), in no log line at TRACE level, and in no byte of
/// the database files.
#[tokio::test]
async fn a_canary_private_key_never_leaves_the_vault() {
    let logs = capture_trace_logs();
    let world = World::new().await;
    let canary = Canary::new();
    let sim = simulator::Simulator::builder()
        .seed(7)
        .devices(20)
        .spawn()
        .await
        .unwrap();
    let client_id = format!("BUSINESSAPI.{}", uuid::Uuid::new_v4());
    let key_id = uuid::Uuid::new_v4().to_string();
    sim.register_key(&client_id, &key_id, &canary.public_pem)
        .unwrap();
    let admin = world.browser(Caller::Admin).await;

    let added = admin
        .call(
            app::api::AddApiAccount::PATH,
            &[
                ("org", world.fixture.org.as_str()),
                ("name", "Canary"),
                ("client_id", client_id.as_str()),
                ("key_id", key_id.as_str()),
                ("pem", canary.pem.as_str()),
                ("api_base_url", sim.base_url()),
                ("token_url", sim.token_url().as_str()),
            ],
        )
        .await;
    assert_eq!(added.status(), StatusCode::OK);
    let added = added.text().await.unwrap();
    canary.assert_absent("the add answer", added.as_bytes());
    let account = added
        .split("\"id\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the new account's id")
        .to_owned();
    let tested = admin
        .call(
            app::api::TestApiAccount::PATH,
            &[
                ("org", world.fixture.org.as_str()),
                ("account", account.as_str()),
            ],
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        tested.contains("\"ok\":true"),
        "the canary key must work: {tested}"
    );
    canary.assert_absent("the test answer", tested.as_bytes());

    let mut answers = call_every_server_function(&world).await;
    answers.extend(open_every_page(&world).await);
    for path in ["/metrics", "/healthz", "/readyz"] {
        let response = world.app.get(path).await;
        answers.push(answer(path.to_owned(), Caller::SignedOut, Yes, response).await);
    }
    for a in &answers {
        canary.assert_absent(&format!("{} as {:?}", a.what, a.caller), a.body.as_bytes());
    }
    assert!(
        answers.len() > 200,
        "the crawl covered {} answers",
        answers.len()
    );

    let logs = logs.lock().unwrap().clone();
    assert!(
        logs.windows(5).any(|w| w == b"TRACE"),
        "TRACE lines were captured ({} bytes)",
        logs.len()
    );
    canary.assert_absent("the TRACE log", &logs);

    let mut files = 0;
    for suffix in ["", "-wal", "-shm"] {
        let path = world.app.dir().join(format!("orchard.db{suffix}"));
        if let Ok(bytes) = std::fs::read(&path) {
            canary.assert_absent(&path.display().to_string(), &bytes);
            files += 1;
        }
    }
    assert!(files >= 1);
}

/// A fresh P-256 key and every form it could leak in.
struct Canary {
    pem: String,
    public_pem: String,
    needles: Vec<Vec<u8>>,
}

impl Canary {
    fn new() -> Self {
        use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};

        let key = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let public_pem = key.public_key().to_public_key_pem(LineEnding::LF).unwrap();
        let der = key.to_pkcs8_der().unwrap().as_bytes().to_vec();
        let scalar = key.to_bytes().to_vec();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let mut needles: Vec<Vec<u8>> = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .map(|l| l.as_bytes().to_vec())
            .collect();
        needles.extend([
            body.into_bytes(),
            der,
            scalar.clone(),
            hex(&scalar).into_bytes(),
        ]);
        Self {
            pem,
            public_pem,
            needles,
        }
    }

    #[track_caller]
    fn assert_absent(&self, what: &str, haystack: &[u8]) {
        for needle in &self.needles {
            assert!(
                !haystack
                    .windows(needle.len())
                    .any(|w| w == needle.as_slice()),
                "{what} contains canary key material"
            );
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Installs a TRACE-level subscriber for this test binary, writing into memory.
fn capture_trace_logs() -> std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    use std::sync::{Arc, Mutex, OnceLock};

    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || MemoryWriter(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other subscriber");
        buffer
    })
    .clone()
}

struct MemoryWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for MemoryWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
