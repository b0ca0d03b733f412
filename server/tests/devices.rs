//! The device list's CSV export over HTTP: exactly the filtered devices, every page of
//! them, with formula-looking cells defused, and only for roles that may export.

mod common;

use backend::identity::roles::Role;
use backend::mirror::DeviceAttributes;
use common::{TestApp, mirror};
use reqwest::StatusCode;

fn device(serial: &str, model: &str, family: &str) -> DeviceAttributes {
    DeviceAttributes {
        serial: serial.to_owned(),
        model: Some(model.to_owned()),
        product_family: Some(family.to_owned()),
        status: Some("UNASSIGNED".to_owned()),
        added_at: Some(1_700_000_000),
        ..DeviceAttributes::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_streams_exactly_the_filtered_devices_to_roles_that_may_export() {
    let app = TestApp::spawn().await;
    let org = app.create_org("Exporters").await;
    // 1,234 iPads (more than two of the export's 500-row pages) and some Macs.
    let mut devices: Vec<DeviceAttributes> = (0..1234)
        .map(|i| device(&format!("DMPQ{i:06}"), "iPad Air", "iPad"))
        .collect();
    devices.extend((0..300).map(|i| device(&format!("C02X{i:06}"), "MacBook Air", "Mac")));
    devices.push(device("FORMULA00001", "=HYPERLINK(\"http://x\")", "Mac"));
    mirror(&app, org, &devices).await;

    let viewer = app.user_with_role("vera", org, Some(Role::Viewer)).await;
    let path = format!("/devices/export.csv?org={org}&family=iPad&sort=serial&after=ignored");
    // Compressed, as browsers ask for it (the compression layer polls the body past its end).
    let compressed = viewer
        .client
        .get(viewer.url(&path))
        .header("accept-encoding", "gzip, br")
        .send()
        .await
        .unwrap();
    assert_eq!(compressed.status(), StatusCode::OK);
    assert!(compressed.bytes().await.is_ok(), "the stream ends cleanly");
    let response = viewer.get(&path).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("exporters-devices.csv")
    );
    let body = response.text().await.unwrap();
    let lines: Vec<&str> = body.trim_end().split("\r\n").collect();
    assert!(lines[0].starts_with("serial_number,model,product_family,"));
    assert_eq!(lines.len(), 1 + 1234, "every iPad, no Mac");
    let serials: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap())
        .collect();
    let mut sorted = serials.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted, serials, "in serial order, each once across pages");
    assert!(serials.iter().all(|s| s.starts_with("DMPQ")));

    // Text search and the formula guard.
    let body = viewer
        .get(&format!("/devices/export.csv?org={org}&q=FORMULA"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        body.contains("FORMULA00001,\"'=HYPERLINK(\"\"http://x\"\")\",Mac,"),
        "{body}"
    );

    // A bad parameter is a 422 naming it, before any CSV is sent.
    let bad = viewer
        .get(&format!("/devices/export.csv?org={org}&sort=sideways"))
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().await.unwrap().contains("`sort`"));

    // No role in the organization: refused; signed out: sent to sign in.
    let outsider = app.user_with_role("otto", org, None).await;
    assert_eq!(outsider.get(&path).await.status(), StatusCode::FORBIDDEN);
    let anonymous = app.browser().get(&path).await;
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert!(
        anonymous.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login")
    );
}

/// Pages that cannot show what was asked say why where their content would be, with the
/// status the error calls for, on every request: an error thrown to the error boundary
/// during server rendering sometimes came out as a bare heading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_and_missing_pages_say_why_in_place_with_their_status() {
    let app = TestApp::spawn().await;
    let org = app.create_org("Explainers").await;
    mirror(&app, org, &[device("C02EXPLAIN01", "MacBook Air", "Mac")]).await;
    let outsider = app.user_with_role("otto", org, None).await;
    let viewer = app.user_with_role("vera", org, Some(Role::Viewer)).await;
    let helpdesk = app.user_with_role("hank", org, Some(Role::Helpdesk)).await;
    let operator = app.user_with_role("olga", org, Some(Role::Operator)).await;
    let refused = (StatusCode::FORBIDDEN, "Your role does not allow this.");
    let no_job = (StatusCode::NOT_FOUND, "This job was not found.");
    let cases = [
        (&outsider, format!("/devices?org={org}"), refused),
        (
            &outsider,
            format!("/devices/C02EXPLAIN01?org={org}"),
            refused,
        ),
        (
            &viewer,
            format!("/devices/NOSUCHSERIAL?org={org}"),
            (
                StatusCode::NOT_FOUND,
                "A device with serial number NOSUCHSERIAL was not found.",
            ),
        ),
        (&viewer, format!("/services?org={org}"), refused),
        (&helpdesk, "/settings".to_owned(), refused),
        (&helpdesk, "/settings/users".to_owned(), refused),
        (&helpdesk, "/settings/sso".to_owned(), refused),
        (&helpdesk, "/settings/audit".to_owned(), refused),
        (&helpdesk, format!("/settings/organizations/{org}"), refused),
        // The wizard's and jobs' pages, which showed failures in place first.
        (&helpdesk, format!("/assign?org={org}"), refused),
        (&operator, format!("/jobs/999999?org={org}"), no_job),
    ];
    for _ in 0..5 {
        for (browser, path, (status, message)) in &cases {
            let response = browser.get(path).await;
            assert_eq!(response.status(), *status, "{path}");
            let body = response.text().await.unwrap();
            assert!(
                body.contains(r#"role="alert""#) && body.contains(message),
                "{path}: no alert saying {message:?} in {body}"
            );
        }
    }
    // The device exists for those who may see it.
    let page = viewer
        .get(&format!("/devices/C02EXPLAIN01?org={org}"))
        .await;
    assert_eq!(page.status(), StatusCode::OK);
}
