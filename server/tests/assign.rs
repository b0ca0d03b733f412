//! The assignment wizard over HTTP: an operator's paste becomes a draft, an action and a
//! preview (server functions and the CSV download agree with the mirror), a CSV fault sends
//! the person back to step 1 with the text kept, a draft is nobody else's business, and a
//! job's per-serial results download whole, for its organization's operators only.

mod common;

use app::api::{ChooseAction, GetDraftInput, GetPreview, SaveDevices};
use backend::identity::roles::Role;
use backend::mirror::DeviceAttributes;
use common::{Browser, TestApp, mirror_with_services};
use leptos::server_fn::ServerFn;
use reqwest::StatusCode;

fn device(serial: &str) -> DeviceAttributes {
    DeviceAttributes {
        serial: serial.to_owned(),
        status: Some("UNASSIGNED".to_owned()),
        migration_capable: Some(true),
        ..DeviceAttributes::default()
    }
}

/// The path a server function's answer sends the browser to.
fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn json(browser: &Browser, path: &str, draft: &str) -> (StatusCode, serde_json::Value) {
    let response = browser.get(&format!("{path}?draft={draft}")).await;
    let status = response.status();
    let body = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_previews_a_paste_and_nobody_else_sees_the_draft() {
    let app = TestApp::spawn().await;
    let org = app.create_org("Assigners").await;
    let devices: Vec<DeviceAttributes> = ["NEW0000001", "MOVE000001", "THERE00001"]
        .into_iter()
        .map(device)
        .collect();
    mirror_with_services(
        &app,
        org,
        &devices,
        &[("S1", "Jamf Pro"), ("S2", "Intune")],
        &[("MOVE000001", "S1"), ("THERE00001", "S2")],
    )
    .await;
    let olivia = app
        .user_with_role("olivia", org, Some(Role::Operator))
        .await;
    let org = org.to_string();

    let saved = olivia
        .call(
            SaveDevices::PATH,
            &[
                ("org", org.as_str()),
                (
                    "text",
                    "new0000001, MOVE000001\nTHERE00001\tTHERE00001 bad! UNKNOWN0001",
                ),
            ],
        )
        .await;
    let next = location(&saved);
    let draft = next
        .strip_prefix("/assign/")
        .and_then(|rest| rest.strip_suffix("/action"))
        .unwrap_or_else(|| panic!("goes on to the action: {next:?}"))
        .to_owned();

    // A deadline beyond Apple's 90 days is refused, naming the field.
    let refused = olivia
        .call(
            ChooseAction::PATH,
            &[
                ("draft", draft.as_str()),
                ("kind", "update_migration_deadline"),
                ("deadline", "2999-01-01"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("\"field\":\"deadline\"")
    );

    let chosen = olivia
        .call(
            ChooseAction::PATH,
            &[
                ("draft", draft.as_str()),
                ("kind", "assign"),
                ("service", "S2"),
            ],
        )
        .await;
    assert_eq!(location(&chosen), format!("/assign/{draft}/preview"));

    let (status, preview) = json(&olivia, GetPreview::PATH, &draft).await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    let counts: Vec<(String, u64)> = preview["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["key"].as_str().unwrap().to_owned(),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, u64)> = [
        ("assign", 1),
        ("move", 1),
        ("already_there", 1),
        ("not_in_org", 1),
        ("duplicate", 1),
        ("malformed", 1),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_owned(), n))
    .collect();
    assert_eq!(counts, expected);
    assert_eq!(preview["action"], "Assign to Intune");
    assert_eq!(preview["moves"][0]["from"], "Jamf Pro");
    assert_eq!(preview["to_send"], 2);
    assert_eq!(preview["sendable"], true);

    let csv = olivia.get(&format!("/assign/{draft}/preview.csv")).await;
    assert_eq!(csv.status(), StatusCode::OK);
    let body = csv.text().await.unwrap();
    let lines: Vec<&str> = body.trim_end().split("\r\n").collect();
    assert_eq!(lines.len(), 7);
    assert_eq!(
        lines[1],
        "1,1,new0000001,NEW0000001,send,assign,on no service now; assigned to Intune,,Intune"
    );
    assert_eq!(
        lines[2],
        "1,13,MOVE000001,MOVE000001,send,move,moves from Jamf Pro to Intune,Jamf Pro,Intune"
    );

    // Another operator of the same organization: the draft does not exist for them.
    let oscar = app
        .user_with_role("oscar", olivia_org(&org), Some(Role::Operator))
        .await;
    assert_eq!(
        json(&oscar, GetPreview::PATH, &draft).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        oscar
            .get(&format!("/assign/{draft}/preview.csv"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let overwrite = oscar
        .call(
            SaveDevices::PATH,
            &[
                ("org", org.as_str()),
                ("draft", draft.as_str()),
                ("text", "X"),
            ],
        )
        .await;
    assert_eq!(overwrite.status(), StatusCode::NOT_FOUND);
    // Helpdesk: refused before any lookup.
    let hank = app
        .user_with_role("hank", olivia_org(&org), Some(Role::Helpdesk))
        .await;
    assert_eq!(
        json(&hank, GetPreview::PATH, &draft).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        hank.get(&format!("/assign/{draft}/preview.csv"))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    // The creator's draft is unchanged.
    assert_eq!(
        json(&olivia, GetPreview::PATH, &draft).await.1["to_send"],
        2
    );
}

fn olivia_org(org: &str) -> backend::orgs::OrgId {
    backend::orgs::OrgId(org.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_fault_returns_to_step_one_with_the_text_and_the_line() {
    let app = TestApp::spawn().await;
    let org = app.create_org("Assigners").await;
    let olivia = app
        .user_with_role("olivia", org, Some(Role::Operator))
        .await;
    let org = org.to_string();
    let text = "Serial Number,Owner\nC02XL0GSJGH5,Ann\n\"F5KZQ1M2N3P4,Bob\n";
    let saved = olivia
        .call(
            SaveDevices::PATH,
            &[("org", org.as_str()), ("text", text), ("format", "detect")],
        )
        .await;
    let next = location(&saved);
    assert!(!next.ends_with("/action"), "stays on step 1: {next}");
    let draft = next.strip_prefix("/assign/").unwrap().to_owned();
    let (status, input) = json(&olivia, GetDraftInput::PATH, &draft).await;
    assert_eq!(status, StatusCode::OK, "{input}");
    assert_eq!(input["text"], text);
    assert_eq!(input["format"], "csv");
    assert!(
        input["error"]
            .as_str()
            .unwrap()
            .starts_with("Line 3: the quoted cell 1 is never closed"),
        "{input}"
    );
    // Fixed and sent again: on to the action, the column detected from the header.
    let fixed = olivia
        .call(
            SaveDevices::PATH,
            &[
                ("org", org.as_str()),
                ("draft", draft.as_str()),
                (
                    "text",
                    "Serial Number,Owner\nC02XL0GSJGH5,Ann\nF5KZQ1M2N3P4,Bob\n",
                ),
                ("format", "csv"),
            ],
        )
        .await;
    assert_eq!(location(&fixed), format!("/assign/{draft}/action"));
    let (_, input) = json(&olivia, GetDraftInput::PATH, &draft).await;
    assert_eq!(input["column"], 1);
    assert_eq!(input["summary"]["serials"], 2);
    assert_eq!(input["summary"]["source"], "CSV, column 1 (Serial Number)");

    // An empty box is a field error, and no draft is made.
    let empty = olivia
        .call(SaveDevices::PATH, &[("org", org.as_str()), ("text", "  ")])
        .await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(empty.text().await.unwrap().contains("\"field\":\"text\""));
}

/// Step 6's download: every serial of the job with its result, past one page of 1000, in
/// serial order, reasons quoted; for the job's organization and its operators only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_results_download_holds_every_serial_for_operators_only() {
    let app = TestApp::spawn().await;
    let org = app.create_org("Assigners").await;
    let other = app.create_org("Elsewhere").await;
    let account = common::mirror(&app, org, &[device("NEW0000001")]).await;
    let to_send: Vec<String> = (0..2_500).map(|i| format!("R{i:09}")).collect();
    let job = backend::jobs::create_job(
        app.store.as_ref(),
        &backend::audit::Actor::system(),
        backend::jobs::NewJob {
            org,
            account,
            action: backend::jobs::JobAction::Unassign {
                service_id: "S1".to_owned(),
            },
            to_send: to_send.clone(),
            skipped: vec![(
                "bad!".to_owned(),
                "malformed: \"bad!\" is not a serial number, line 2".to_owned(),
            )],
            retry_of: None,
            chunk_size: 1000,
        },
    )
    .await
    .unwrap();
    let path = format!("/jobs/{job}/results.csv?org={org}");

    let olivia = app
        .user_with_role("olivia", org, Some(Role::Operator))
        .await;
    let response = olivia.get(&path).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let body = response.text().await.unwrap();
    let lines: Vec<&str> = body.trim_end().split("\r\n").collect();
    assert_eq!(
        lines[0],
        "serial_number,result,verified_at_apple,activity_id,reason"
    );
    assert_eq!(lines.len(), 1 + 2_500 + 1);
    assert_eq!(
        lines[1..=2_500].to_vec(),
        to_send
            .iter()
            .map(|s| format!("{s},pending,no,,"))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        lines[2_501],
        "bad!,skipped,no,,\"malformed: \"\"bad!\"\" is not a serial number, line 2\""
    );

    let hank = app.user_with_role("hank", org, Some(Role::Helpdesk)).await;
    assert_eq!(hank.get(&path).await.status(), StatusCode::FORBIDDEN);
    // An operator elsewhere names their own organization: the job is not theirs.
    let oscar = app
        .user_with_role("oscar", other, Some(Role::Operator))
        .await;
    assert_eq!(oscar.get(&path).await.status(), StatusCode::FORBIDDEN);
    let theirs = format!("/jobs/{job}/results.csv?org={other}");
    assert_eq!(oscar.get(&theirs).await.status(), StatusCode::NOT_FOUND);
    let signed_out = app.get(&path).await;
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER);
    assert!(location(&signed_out).starts_with("/login?next="));
}
