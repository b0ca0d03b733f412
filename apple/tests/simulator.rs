//! The typed client against a spawned simulator over real HTTP: every endpoint family of
//! SPEC §6, paging resume, token refresh mid-stream, 429 with and without `Retry-After`, 5xx,
//! resets, dropped connections, an echoed cursor, and a property test of paging under random
//! faults compared to the simulator's `/_sim/truth`.
//!
//! The two crates share no code: the simulator renders its JSON from SPEC, the client decodes it
//! into its own types, so a success here means both read SPEC the same way. Timing assertions use
//! what the client's [`Observer`] and the simulator's stats recorded, never wall-clock sleeps.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apple::activity_log;
use apple::resources::activities::{self, ActivityStatus};
use apple::resources::audit_events::{self, AuditEventType};
use apple::resources::blueprints::{
    self, BlueprintFields, BlueprintMembers, BlueprintRelationship,
};
use apple::resources::configurations::{self, ConfigurationFields, CustomSettingsValues};
use apple::resources::mdm_servers::{self, MdmServerCertificate, MdmServerPatch, NewMdmServer};
use apple::resources::org_devices::MdmMigrationStatus;
use apple::resources::{
    apps, mdm_devices, org_devices, organizational_units, packages, user_groups, users,
};
use apple::retry::FixedJitter;
use apple::{
    Budget, BudgetConfig, Client, ClientConfig, Cursor, Error, MdmServerId, Observer, PagingError,
    Priority, PrivateKey, Rate, RetryConfig, SerialNumber,
};
use futures::TryStreamExt as _;
use proptest::prelude::*;
use serde_json::Value;
use simulator::{Budget as SimBudget, CloseMode, FaultConfig, RunningSimulator, Simulator};

/// A serial the generator never produces (it is not in any simulated org).
const NOT_IN_ORG: &str = "F2KZ3N4G5HD3";

/// Everything the client reported, in order, with when it was reported.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<(Instant, Event)>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Event {
    Status(u16),
    Transport,
    Timeout,
    TokenFailed,
    RateLimited(Option<Duration>),
    Retry(Duration),
    Token(bool),
}

impl Recorder {
    fn events(&self) -> Vec<Event> {
        self.timed().into_iter().map(|(_, e)| e).collect()
    }
    fn timed(&self) -> Vec<(Instant, Event)> {
        self.events.lock().unwrap().clone()
    }
    fn push(&self, e: Event) {
        self.events.lock().unwrap().push((Instant::now(), e));
    }
}

impl Observer for Recorder {
    fn attempt(&self, event: &apple::AttemptEvent) {
        self.push(match event.outcome {
            apple::AttemptOutcome::Status(s) => Event::Status(s),
            apple::AttemptOutcome::TokenError => Event::TokenFailed,
            apple::AttemptOutcome::Timeout => Event::Timeout,
            _ => Event::Transport,
        });
    }
    fn rate_limited(&self, _endpoint: &'static str, retry_after: Option<Duration>) {
        self.push(Event::RateLimited(retry_after));
    }
    fn retry(&self, _endpoint: &'static str, _attempt: u32, delay: Duration) {
        self.push(Event::Retry(delay));
    }
    fn token_refresh(&self, ok: bool) {
        self.push(Event::Token(ok));
    }
}

/// Client configuration for a simulator: its URLs and credentials, short retry delays.
fn config(sim: &RunningSimulator) -> ClientConfig {
    let creds = sim.credentials();
    let mut cfg =
        ClientConfig::apple_business(&creds.client_id, &creds.key_id).with_origin(sim.base_url());
    cfg.retry = RetryConfig {
        max_attempts: 8,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(100),
    };
    cfg.timeouts.attempt = Duration::from_secs(20);
    cfg
}

/// A budget that never makes a test wait (the simulator budget is what these tests exercise).
fn unlimited() -> Arc<Budget> {
    Arc::new(Budget::new(BudgetConfig {
        reads: Rate {
            count: 100_000,
            per: Duration::from_secs(1),
        },
        writes: Rate {
            count: 100_000,
            per: Duration::from_secs(1),
        },
        max_in_flight: 4,
    }))
}

fn client_with(sim: &RunningSimulator, cfg: ClientConfig, observer: Arc<Recorder>) -> Client {
    let key = PrivateKey::from_pem(&sim.credentials().private_key_pem).unwrap();
    Client::builder(cfg, key, unlimited())
        .observer(observer)
        .jitter(Arc::new(FixedJitter(1.0)))
        .build()
        .unwrap()
}

fn client(sim: &RunningSimulator) -> (Client, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    (client_with(sim, config(sim), rec.clone()), rec)
}

/// `/_sim/truth` device lines (the summary line dropped).
async fn truth(sim: &RunningSimulator) -> Vec<Value> {
    let text = reqwest::get(format!("{}/_sim/truth", sim.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .skip(1)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Serials `GET /v1/orgDevices` must list: every device not released.
async fn listed_serials(sim: &RunningSimulator) -> BTreeSet<String> {
    truth(sim)
        .await
        .iter()
        .filter(|d| d["released"] == false)
        .map(|d| d["serialNumber"].as_str().unwrap().to_owned())
        .collect()
}

/// Asserts `got` holds every serial of `want` exactly once.
fn assert_exactly_once(got: &[String], want: &BTreeSet<String>) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for s in got {
        *counts.entry(s).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "served more than once: {twice:?}");
    let got: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(got.len(), want.len(), "device count differs from the truth");
    assert!(got == *want, "devices differ from the truth");
}

/// Pages `orgDevices` like the sync engine: on any error, resumes from the cursor after the
/// last page that was fully processed. Returns the serials and the number of resumes.
async fn page_with_resume(client: &Client, limit: u32, max_resumes: usize) -> (Vec<String>, usize) {
    let mut serials = Vec::new();
    let mut saved: Option<Cursor> = None;
    let mut resumes = 0;
    loop {
        let mut req = org_devices::list()
            .limit(limit)
            .fields(["serialNumber"])
            .priority(Priority::Background);
        if let Some(c) = &saved {
            req = req.cursor(c.clone());
        }
        let mut pages = std::pin::pin!(req.pages(client));
        let failed = loop {
            match pages.try_next().await {
                Ok(Some(page)) => {
                    serials.extend(page.items.into_iter().map(|d| d.id.into_inner()));
                    match page.next_cursor {
                        Some(next) => saved = Some(next),
                        None => return (serials, resumes),
                    }
                }
                Ok(None) => return (serials, resumes),
                Err(e) => break e,
            }
        };
        resumes += 1;
        assert!(
            resumes <= max_resumes,
            "too many resumes, last error: {failed:?}"
        );
    }
}

fn all_statuses(stats: &simulator::Stats, route: &str) -> BTreeMap<u16, u64> {
    stats.requests.get(route).cloned().unwrap_or_default()
}

const PROFILE: &str = r#"<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>PayloadContent</key><array><dict><key>PayloadType</key><string>com.apple.airplay.security</string></dict></array><key>PayloadType</key><string>Configuration</string></dict></plist>"#;

fn profile(xml: &str) -> CustomSettingsValues {
    CustomSettingsValues {
        configuration_profile: Some(xml.to_owned()),
        filename: Some("airplay.mobileconfig".to_owned()),
    }
}

/// Polls `cond` (one client call per round) until it holds; bounded.
async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: never happened");
}

// ----- every endpoint family -----

#[tokio::test]
async fn every_endpoint_family_through_the_client() {
    let sim = Simulator::builder()
        .seed(101)
        .devices(400)
        .time_scale(200.0)
        .spawn()
        .await
        .unwrap();
    let (client, _) = client(&sim);
    client.test_connection().await.unwrap();
    let truth_lines = truth(&sim).await;

    // orgDevices: list (all pages), get, AppleCare, activation lock, assigned server.
    let devices = org_devices::list()
        .limit(100)
        .collect_all(&client, 10_000)
        .await
        .unwrap();
    let listed: Vec<String> = devices.iter().map(|d| d.id.as_str().to_owned()).collect();
    assert_exactly_once(&listed, &listed_serials(&sim).await);
    let assigned = truth_lines
        .iter()
        .find(|d| d["status"] == "ASSIGNED" && d["released"] == false)
        .unwrap();
    let serial = SerialNumber::new(assigned["serialNumber"].as_str().unwrap());
    let server_id = assigned["assignedServerId"].as_str().unwrap();
    let one = org_devices::get(&serial).send(&client).await.unwrap().data;
    assert_eq!(one.id, serial);
    assert!(one.attributes.added_to_org_date_time.is_some());
    org_devices::apple_care_coverage(&serial)
        .collect_all(&client, 100)
        .await
        .unwrap();
    let lock = org_devices::activation_lock_status(&serial)
        .send(&client)
        .await
        .unwrap();
    assert_eq!(lock.data.id, serial);
    let linkage = org_devices::assigned_server_id(&serial)
        .send(&client)
        .await
        .unwrap()
        .data;
    assert_eq!(
        org_devices::linkage_server_id(&linkage),
        Some(MdmServerId::new(server_id))
    );
    let server = org_devices::assigned_server(&serial)
        .send(&client)
        .await
        .unwrap()
        .data;
    assert_eq!(server.id.as_str(), server_id);
    let unassigned = truth_lines
        .iter()
        .find(|d| d["status"] == "UNASSIGNED" && d["released"] == false)
        .unwrap();
    let unassigned = SerialNumber::new(unassigned["serialNumber"].as_str().unwrap());
    let none = org_devices::assigned_server_id(&unassigned)
        .send(&client)
        .await
        .unwrap()
        .data;
    assert_eq!(none, None, "an unassigned device links to no server");
    let err = org_devices::assigned_server(&unassigned)
        .send(&client)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = org_devices::get(&SerialNumber::new(NOT_IN_ORG))
        .send(&client)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::NotFound { errors, .. } if errors[0].code.as_deref() == Some("NOT_FOUND")),
        "{err:?}"
    );

    // mdmDevices (built-in device management is on by default).
    let mdm = mdm_devices::list().limit(5).send(&client).await.unwrap();
    assert!(!mdm.items.is_empty(), "the generator enrolls some devices");
    let detail = mdm_devices::details(&mdm.items[0].id)
        .send(&client)
        .await
        .unwrap();
    assert_eq!(detail.data.id, mdm.items[0].id);

    // mdmServers: list, get, devices linkage against the truth, create, update, delete.
    let servers = mdm_servers::list()
        .collect_all(&client, 1000)
        .await
        .unwrap();
    let sid = MdmServerId::new(server_id);
    assert!(servers.iter().any(|s| s.id == sid));
    let got = mdm_servers::get(&sid).send(&client).await.unwrap().data;
    let linked: Vec<String> = mdm_servers::device_ids(&sid)
        .limit(50)
        .collect_all(&client, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    let want: BTreeSet<String> = truth_lines
        .iter()
        .filter(|d| d["assignedServerId"] == server_id && d["released"] == false)
        .map(|d| d["serialNumber"].as_str().unwrap().to_owned())
        .collect();
    assert_exactly_once(&linked, &want);
    assert_eq!(got.attributes.device_count, Some(want.len() as u64));
    let created = mdm_servers::create(NewMdmServer {
        server_name: "Integration MDM".into(),
        server_certificate: MdmServerCertificate {
            name: "it.cer".into(),
            data: "MIIDXTCCAkWgAwIBAgIJALx".into(),
        },
        enable_mdm_disown_flag: Some(true),
        default_product_families: None,
    })
    .send(&client)
    .await
    .unwrap()
    .data;
    assert_eq!(
        created.attributes.server_name.as_deref(),
        Some("Integration MDM")
    );
    let renamed = mdm_servers::update(
        &created.id,
        MdmServerPatch {
            server_name: Some("Renamed MDM".into()),
            ..MdmServerPatch::default()
        },
    )
    .send(&client)
    .await
    .unwrap()
    .data;
    assert_eq!(
        renamed.attributes.server_name.as_deref(),
        Some("Renamed MDM")
    );
    let err = mdm_servers::delete(&sid).send(&client).await.unwrap_err();
    assert_eq!(err.status(), Some(409), "a server with devices: {err:?}");

    // Activities: assign (with a serial not in the org), poll, CSV; unassign; release.
    let free: Vec<SerialNumber> = truth_lines
        .iter()
        .filter(|d| d["status"] == "UNASSIGNED" && d["released"] == false)
        .skip(1)
        .take(2)
        .map(|d| SerialNumber::new(d["serialNumber"].as_str().unwrap()))
        .collect();
    let mut batch = free.clone();
    batch.push(SerialNumber::new(NOT_IN_ORG));
    let activity = activities::assign(&created.id, &batch)
        .send(&client)
        .await
        .unwrap()
        .data;
    let done = activities::wait_until_done(
        &client,
        &activity.id,
        Duration::from_millis(10),
        Duration::from_secs(30),
        Priority::Interactive,
    )
    .await
    .unwrap();
    assert_eq!(done.attributes.status, Some(ActivityStatus::Completed));
    let url = done.attributes.download_url.clone().unwrap();
    let rows = activity_log::download(&client, &url).await.unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    for row in &rows {
        let expect_failed = row.serial_number.as_str() == NOT_IN_ORG;
        assert_eq!(row.failed(), expect_failed, "{row:?}");
    }
    for s in &free {
        let (client, s, want) = (&client, s, &created.id);
        eventually("assignment visible after the lag", || async move {
            let l = org_devices::assigned_server_id(s)
                .send(client)
                .await
                .unwrap();
            org_devices::linkage_server_id(&l.data).as_ref() == Some(want)
        })
        .await;
    }
    let unassign = activities::unassign(&created.id, &free)
        .send(&client)
        .await
        .unwrap()
        .data;
    let done = activities::wait_until_done(
        &client,
        &unassign.id,
        Duration::from_millis(10),
        Duration::from_secs(30),
        Priority::Interactive,
    )
    .await
    .unwrap();
    assert_eq!(done.attributes.status, Some(ActivityStatus::Completed));
    {
        let (client, id) = (&client, &created.id);
        eventually("server emptied after unassign", || async move {
            mdm_servers::device_ids(id)
                .send(client)
                .await
                .unwrap()
                .items
                .is_empty()
        })
        .await;
    }
    mdm_servers::delete(&created.id)
        .send(&client)
        .await
        .unwrap();
    let err = mdm_servers::get(&created.id)
        .send(&client)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");

    let released = activities::release(std::slice::from_ref(&serial))
        .send(&client)
        .await
        .unwrap()
        .data;
    let done = activities::wait_until_done(
        &client,
        &released.id,
        Duration::from_millis(10),
        Duration::from_secs(30),
        Priority::Interactive,
    )
    .await
    .unwrap();
    assert_eq!(done.attributes.status, Some(ActivityStatus::Completed));
    {
        let (client, serial) = (&client, &serial);
        eventually("release visible on the single GET", || async move {
            org_devices::get(serial)
                .send(client)
                .await
                .unwrap()
                .data
                .attributes
                .released_from_org_date_time
                .is_some()
        })
        .await;
    }
    let after = org_devices::list()
        .limit(1000)
        .collect_all(&client, 10_000)
        .await
        .unwrap();
    assert!(
        after.iter().all(|d| d.id != serial),
        "released devices leave the list"
    );

    // Users, groups and their members, organizational units and their users.
    let user_list = users::list().limit(10).send(&client).await.unwrap();
    let user = users::get(&user_list.items[0].id)
        .send(&client)
        .await
        .unwrap();
    assert_eq!(user.data.id, user_list.items[0].id);
    let groups = user_groups::list()
        .collect_all(&client, 1000)
        .await
        .unwrap();
    let group = groups
        .iter()
        .find(|g| g.attributes.total_member_count.unwrap_or(0) > 0)
        .unwrap();
    user_groups::get(&group.id).send(&client).await.unwrap();
    let members = user_groups::user_ids(&group.id)
        .collect_all(&client, 100_000)
        .await
        .unwrap();
    assert_eq!(
        Some(members.len() as u64),
        group.attributes.total_member_count
    );
    let ous = organizational_units::list()
        .collect_all(&client, 1000)
        .await
        .unwrap();
    organizational_units::get(&ous[0].id)
        .send(&client)
        .await
        .unwrap();
    let mut ou_users = 0;
    for ou in &ous {
        ou_users += organizational_units::user_ids(&ou.id)
            .collect_all(&client, 100_000)
            .await
            .unwrap()
            .len();
    }
    assert!(ou_users > 0, "some OU has users");

    // Apps and packages.
    let app_list = apps::list().collect_all(&client, 1000).await.unwrap();
    apps::get(&app_list[0].id).send(&client).await.unwrap();
    let pkg_list = packages::list().collect_all(&client, 1000).await.unwrap();
    packages::get(&pkg_list[0].id).send(&client).await.unwrap();

    // Configurations: CRUD, and a bad plist surfaces as a typed 422.
    let cfg = configurations::create("IT profile", None, profile(PROFILE))
        .send(&client)
        .await
        .unwrap()
        .data;
    let fetched = configurations::get(&cfg.id)
        .send(&client)
        .await
        .unwrap()
        .data;
    assert_eq!(
        fetched
            .attributes
            .custom_settings_values
            .and_then(|c| c.configuration_profile)
            .as_deref(),
        Some(PROFILE)
    );
    let updated = configurations::update(
        &cfg.id,
        ConfigurationFields {
            name: Some("IT profile 2".into()),
            ..ConfigurationFields::default()
        },
    )
    .send(&client)
    .await
    .unwrap()
    .data;
    assert_eq!(updated.attributes.name.as_deref(), Some("IT profile 2"));
    assert!(
        configurations::list()
            .collect_all(&client, 1000)
            .await
            .unwrap()
            .iter()
            .any(|c| c.id == cfg.id)
    );
    for bad in [
        "not xml at all!",
        "<plist><dict><key>Other</key><string/></dict></plist>",
    ] {
        let err = configurations::create("Bad", None, profile(bad))
            .send(&client)
            .await
            .unwrap_err();
        let Error::Api { status, errors, .. } = &err else {
            panic!("expected a typed Api error, got {err:?}");
        };
        assert_eq!(*status, 422);
        let pointer = errors[0].source.as_ref().and_then(|s| s.pointer.clone());
        assert!(
            pointer.is_some_and(|p| p.ends_with("configurationProfile")),
            "{errors:?}"
        );
    }

    // Blueprints: CRUD and all six relationships.
    let device_ids: Vec<String> = after
        .iter()
        .take(3)
        .map(|d| d.id.as_str().to_owned())
        .collect();
    let bp = blueprints::create(
        "IT blueprint",
        Some("made by the client".into()),
        BlueprintMembers::default()
            .set(BlueprintRelationship::Apps, [app_list[0].id.as_str()])
            .set(
                BlueprintRelationship::Users,
                [user_list.items[0].id.as_str()],
            ),
    )
    .send(&client)
    .await
    .unwrap()
    .data;
    blueprints::get(&bp.id).send(&client).await.unwrap();
    let bp2 = blueprints::update(
        &bp.id,
        BlueprintFields {
            name: Some("IT blueprint 2".into()),
            description: None,
        },
        BlueprintMembers::default(),
    )
    .send(&client)
    .await
    .unwrap()
    .data;
    assert_eq!(bp2.attributes.name.as_deref(), Some("IT blueprint 2"));
    assert!(
        blueprints::list()
            .collect_all(&client, 1000)
            .await
            .unwrap()
            .iter()
            .any(|b| b.id == bp.id)
    );
    let member_of = |rel: BlueprintRelationship| -> Vec<String> {
        match rel {
            BlueprintRelationship::Apps => app_list
                .iter()
                .take(2)
                .map(|a| a.id.as_str().to_owned())
                .collect(),
            BlueprintRelationship::Configurations => vec![cfg.id.as_str().to_owned()],
            BlueprintRelationship::Packages => pkg_list
                .iter()
                .take(2)
                .map(|p| p.id.as_str().to_owned())
                .collect(),
            BlueprintRelationship::OrgDevices => device_ids.clone(),
            BlueprintRelationship::Users => user_list
                .items
                .iter()
                .take(2)
                .map(|u| u.id.as_str().to_owned())
                .collect(),
            BlueprintRelationship::UserGroups => vec![group.id.as_str().to_owned()],
        }
    };
    for rel in BlueprintRelationship::ALL {
        let ids = member_of(rel);
        blueprints::add_members(&bp.id, rel, &ids)
            .send(&client)
            .await
            .unwrap();
        let now: BTreeSet<String> = blueprints::member_ids(&bp.id, rel)
            .collect_all(&client, 10_000)
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                assert_eq!(r.kind, rel.as_str());
                r.id
            })
            .collect();
        assert!(ids.iter().all(|i| now.contains(i)), "{rel:?}: {now:?}");
        blueprints::remove_members(&bp.id, rel, &ids[..1])
            .send(&client)
            .await
            .unwrap();
        let after_remove: BTreeSet<String> = blueprints::member_ids(&bp.id, rel)
            .collect_all(&client, 10_000)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert!(!after_remove.contains(&ids[0]), "{rel:?}");
        assert_eq!(after_remove.len(), now.len() - 1, "{rel:?}");
    }
    // `include` brings the members back as typed resources.
    let with = blueprints::get(&bp.id)
        .include(&BlueprintRelationship::ALL)
        .send(&client)
        .await
        .unwrap();
    let kinds: BTreeSet<&str> = with
        .included
        .iter()
        .map(|i| match i {
            apple::model::Included::App(_) => "apps",
            apple::model::Included::Package(_) => "packages",
            apple::model::Included::OrgDevice(_) => "orgDevices",
            apple::model::Included::User(_) => "users",
            apple::model::Included::Configuration(_) => "configurations",
            apple::model::Included::UserGroup(_) => "userGroups",
            apple::model::Included::MdmServer(_) => "mdmServers",
            apple::model::Included::Other(v) => panic!("undecoded include {v}"),
        })
        .collect();
    // Each relationship kept all but the first member it was given.
    let want: BTreeSet<&str> = BlueprintRelationship::ALL
        .into_iter()
        .filter(|r| member_of(*r).len() > 1)
        .map(|r| r.as_str())
        .collect();
    assert_eq!(kinds, want);
    let listed = blueprints::list()
        .include(&[BlueprintRelationship::Apps])
        .include_limit(BlueprintRelationship::Apps, 1)
        .send(&client)
        .await
        .unwrap();
    assert!(listed.items.iter().any(|b| b.id == bp.id));
    // A configuration used by a blueprint cannot be deleted (a typed 409) until the blueprint is.
    blueprints::add_members(
        &bp.id,
        BlueprintRelationship::Configurations,
        [cfg.id.as_str()],
    )
    .send(&client)
    .await
    .unwrap();
    let err = configurations::delete(&cfg.id)
        .send(&client)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Api { status: 409, .. }), "{err:?}");
    blueprints::delete(&bp.id).send(&client).await.unwrap();
    let err = blueprints::get(&bp.id).send(&client).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    configurations::delete(&cfg.id).send(&client).await.unwrap();

    // Audit events: a range, and type and subject filters.
    let start = time::OffsetDateTime::now_utc() - time::Duration::days(400);
    let end = time::OffsetDateTime::now_utc() + time::Duration::days(1);
    let all = audit_events::list(start, end)
        .limit(1000)
        .collect_all(&client, 1_000_000)
        .await
        .unwrap();
    assert!(!all.is_empty());
    let typed = audit_events::list(start, end)
        .event_type(&AuditEventType::DeviceAssignedToServer)
        .collect_all(&client, 1_000_000)
        .await
        .unwrap();
    assert!(!typed.is_empty(), "our assignment was audited");
    assert!(
        typed
            .iter()
            .all(|e| e.attributes.kind == Some(AuditEventType::DeviceAssignedToServer))
    );
    let subject = free[0].as_str();
    let about = audit_events::list(start, end)
        .subject_id(subject)
        .collect_all(&client, 1_000_000)
        .await
        .unwrap();
    assert!(!about.is_empty());
    assert!(
        about
            .iter()
            .all(|e| e.attributes.subject_id.as_deref() == Some(subject))
    );

    // The simulator side of the fixture walk: every documented `/v1` endpoint of the fixture
    // index was answered with a 2xx by the simulator and decoded by the client above.
    let stats = sim.stats();
    let index: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/apple-business-api/fixtures/_index.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut missing = Vec::new();
    let mut documented = 0;
    for e in index["entries"].as_array().unwrap() {
        let (Some(method), Some(path)) = (e["method"].as_str(), e["path"].as_str()) else {
            continue;
        };
        if !path.starts_with("/v1/") {
            continue;
        }
        documented += 1;
        let route = match path.strip_prefix("/v1/blueprints/{id}/relationships/") {
            Some(_) => "/v1/blueprints/{id}/relationships/{rel}".to_owned(),
            None => path.to_owned(),
        };
        let key = format!("{method} {route}");
        if !all_statuses(&stats, &key)
            .keys()
            .any(|s| (200..300).contains(s))
        {
            missing.push(key);
        }
    }
    assert_eq!(documented, 57);
    assert!(missing.is_empty(), "never answered with 2xx: {missing:?}");
}

// ----- paging -----

#[tokio::test]
async fn paging_resumes_from_a_saved_cursor() {
    let sim = Simulator::builder()
        .seed(102)
        .devices(950)
        .spawn()
        .await
        .unwrap();
    let (client, _) = client(&sim);
    let first = org_devices::list().limit(100).send(&client).await.unwrap();
    let second = org_devices::list()
        .limit(100)
        .cursor(first.next_cursor.clone().unwrap())
        .send(&client)
        .await
        .unwrap();
    // A "restart": a new stream from the cursor persisted after the second page.
    let rest: Vec<String> = org_devices::list()
        .limit(100)
        .cursor(second.next_cursor.clone().unwrap())
        .items(&client)
        .map_ok(|d| d.id.into_inner())
        .try_collect()
        .await
        .unwrap();
    let mut all: Vec<String> = first
        .items
        .iter()
        .chain(&second.items)
        .map(|d| d.id.as_str().to_owned())
        .collect();
    all.extend(rest);
    assert_exactly_once(&all, &listed_serials(&sim).await);
    assert_eq!(sim.stats().pages_fetched_twice(), 0);
}

#[tokio::test]
async fn token_expiring_mid_stream_is_refreshed_without_an_error() {
    let sim = Simulator::builder()
        .seed(103)
        .devices(600)
        .faults(FaultConfig {
            token_lifetime_secs: Some(1),
            latency_ms: 100,
            ..FaultConfig::default()
        })
        .spawn()
        .await
        .unwrap();
    let (client, rec) = client(&sim);
    // 30 pages at ≥ 100 ms each outlive several one-second tokens.
    let (serials, resumes) = page_with_resume(&client, 20, 0).await;
    assert_eq!(resumes, 0);
    assert_exactly_once(&serials, &listed_serials(&sim).await);
    let stats = sim.stats();
    assert!(stats.tokens_minted >= 2, "minted {}", stats.tokens_minted);
    let refreshes = rec
        .events()
        .iter()
        .filter(|e| **e == Event::Token(true))
        .count() as u64;
    assert_eq!(refreshes, stats.tokens_minted);
}

/// Checks that every retry after a 429 was scheduled at least as far out as the 429 asked for
/// (or, without `Retry-After`, the full backoff), and that the next attempt really came no
/// earlier (its event is recorded when it finished, so the gap is a lower bound on the wait).
/// Returns how many 429s the client saw.
fn assert_retry_after_respected(events: &[(Instant, Event)], cfg: &RetryConfig) -> usize {
    let mut seen = 0;
    let mut attempt = 0u32;
    for (i, (at, e)) in events.iter().enumerate() {
        match e {
            Event::Status(429) => attempt += 1,
            Event::Status(_) => attempt = 0,
            Event::RateLimited(ra) => {
                seen += 1;
                let delay = events[i + 1..]
                    .iter()
                    .find_map(|(_, e)| match e {
                        Event::Retry(d) => Some(*d),
                        _ => None,
                    })
                    .expect("a 429 on a GET is retried");
                let floor = match ra {
                    Some(ra) => *ra,
                    None => apple::retry::backoff(cfg, attempt, &FixedJitter(1.0)),
                };
                assert!(delay >= floor, "retried after {delay:?}, asked {floor:?}");
                let next = events[i + 1..]
                    .iter()
                    .find_map(|(t, e)| matches!(e, Event::Status(_)).then_some(*t))
                    .expect("the retry was sent");
                assert!(
                    next - *at >= floor,
                    "next attempt after {:?}, asked {floor:?}",
                    next - *at
                );
            }
            _ => {}
        }
    }
    seen
}

#[tokio::test]
async fn rate_limits_with_retry_after_are_never_undercut() {
    // 5 GETs per Apple minute, one Apple minute = 1 real second.
    let sim = Simulator::builder()
        .seed(104)
        .devices(300)
        .time_scale(60.0)
        .faults(FaultConfig {
            get_budget: Some(SimBudget {
                requests: 5,
                window_secs: 60.0,
            }),
            ..FaultConfig::default()
        })
        .spawn()
        .await
        .unwrap();
    let (client, rec) = client(&sim);
    let (serials, resumes) = page_with_resume(&client, 25, 0).await;
    assert_eq!(resumes, 0);
    assert_exactly_once(&serials, &listed_serials(&sim).await);
    let seen = assert_retry_after_respected(&rec.timed(), &config(&sim).retry);
    let events = rec.events();
    let stats = sim.stats();
    assert!(seen > 0, "12 pages at 5 per window must hit the budget");
    assert_eq!(seen as u64, stats.rate_limited);
    assert!(events.contains(&Event::RateLimited(Some(Duration::from_secs(1)))));
    assert_eq!(stats.pages_fetched_twice(), 0, "a 429 serves no page");
}

#[tokio::test]
async fn rate_limits_without_retry_after_back_off_until_the_window_passes() {
    let sim = Simulator::builder()
        .seed(105)
        .devices(300)
        .time_scale(60.0)
        .faults(FaultConfig {
            get_budget: Some(SimBudget {
                requests: 5,
                window_secs: 30.0,
            }),
            omit_retry_after: true,
            ..FaultConfig::default()
        })
        .spawn()
        .await
        .unwrap();
    let mut cfg = config(&sim);
    // Backoff 100, 200, 400, 800, 1000 ms... (jitter fixed at 1.0) spans a 0.5 s window.
    cfg.retry = RetryConfig {
        max_attempts: 10,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
    };
    let rec = Arc::new(Recorder::default());
    let client = client_with(&sim, cfg.clone(), rec.clone());
    let (serials, resumes) = page_with_resume(&client, 25, 0).await;
    assert_eq!(resumes, 0);
    assert_exactly_once(&serials, &listed_serials(&sim).await);
    assert!(rec.events().contains(&Event::RateLimited(None)));
    let seen = assert_retry_after_respected(&rec.timed(), &cfg.retry);
    assert_eq!(seen as u64, sim.stats().rate_limited);
}

#[tokio::test]
async fn server_errors_are_retried() {
    let sim = Simulator::builder()
        .seed(106)
        .devices(500)
        .faults(FaultConfig {
            error_rate: 0.3,
            ..FaultConfig::default()
        })
        .spawn()
        .await
        .unwrap();
    let (client, rec) = client(&sim);
    let (serials, resumes) = page_with_resume(&client, 20, 0).await;
    assert_eq!(resumes, 0);
    assert_exactly_once(&serials, &listed_serials(&sim).await);
    let stats = sim.stats();
    assert!(stats.injected_errors > 0);
    let five_xx = rec
        .events()
        .iter()
        .filter(|e| matches!(e, Event::Status(s) if *s >= 500))
        .count() as u64;
    assert_eq!(five_xx, stats.injected_errors);
    assert_eq!(stats.pages_fetched_twice(), 0, "a 5xx serves no page");
}

#[tokio::test]
async fn connection_resets_are_retried() {
    let sim = Simulator::builder()
        .seed(107)
        .devices(500)
        .faults(FaultConfig {
            reset_rate: 0.3,
            ..FaultConfig::default()
        })
        .spawn()
        .await
        .unwrap();
    let (client, rec) = client(&sim);
    let (serials, resumes) = page_with_resume(&client, 20, 0).await;
    assert_eq!(resumes, 0);
    assert_exactly_once(&serials, &listed_serials(&sim).await);
    let stats = sim.stats();
    assert!(stats.connections_reset > 0);
    let transport = rec
        .events()
        .iter()
        .filter(|e| **e == Event::Transport)
        .count() as u64;
    assert_eq!(transport, stats.connections_reset);
}

#[tokio::test]
async fn connections_closed_after_n_pages_in_both_modes() {
    for mode in [CloseMode::Graceful, CloseMode::Abort] {
        let sim = Simulator::builder()
            .seed(108)
            .devices(500)
            .faults(FaultConfig {
                close_connection_after_pages: Some(3),
                close_mode: mode,
                ..FaultConfig::default()
            })
            .spawn()
            .await
            .unwrap();
        let (client, rec) = client(&sim);
        let (serials, resumes) = page_with_resume(&client, 20, 0).await;
        assert_eq!(resumes, 0, "{mode:?}");
        assert_exactly_once(&serials, &listed_serials(&sim).await);
        let stats = sim.stats();
        let transport = rec
            .events()
            .iter()
            .filter(|e| **e == Event::Transport)
            .count() as u64;
        match mode {
            CloseMode::Graceful => {
                assert!(stats.connections_closed >= 5, "{stats:?}");
                assert_eq!(transport, 0, "a graceful close is invisible");
                assert_eq!(stats.pages_fetched_twice(), 0);
            }
            CloseMode::Abort => {
                assert!(stats.connections_reset >= 5, "{stats:?}");
                assert_eq!(transport, stats.connections_reset, "{mode:?}");
            }
        }
    }
}

#[tokio::test]
async fn an_echoed_cursor_stops_the_stream_and_a_resume_completes_it() {
    let sim = Simulator::builder()
        .seed(109)
        .devices(300)
        .faults(FaultConfig {
            echo_cursor_once: true,
            ..FaultConfig::default()
        })
        .spawn()
        .await
        .unwrap();
    let (client, _) = client(&sim);
    // Without resuming, the stream ends with the paging guard.
    let err = org_devices::list()
        .limit(50)
        .items(&client)
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Paging(PagingError::CursorNotAdvancing {
                endpoint: "orgDevices.list"
            })
        ),
        "{err:?}"
    );
    // Re-armed: the sync engine's way (resume from the last good cursor) gets every device once.
    sim.set_faults(FaultConfig {
        echo_cursor_once: true,
        ..FaultConfig::default()
    });
    let (serials, resumes) = page_with_resume(&client, 50, 3).await;
    assert_eq!(resumes, 1);
    assert_exactly_once(&serials, &listed_serials(&sim).await);
}

// ----- property: paging under random faults -----

fn run_paging_under_faults(
    seed: u64,
    devices: usize,
    limit: u32,
    faults: FaultConfig,
) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let sim = Simulator::builder()
            .seed(seed)
            .devices(devices)
            .faults(faults)
            .spawn()
            .await
            .unwrap();
        let mut cfg = config(&sim);
        // Few attempts, so that failures reach the resume path too.
        cfg.retry.max_attempts = 2;
        cfg.retry.base_delay = Duration::from_millis(1);
        let client = client_with(&sim, cfg, Arc::new(Recorder::default()));
        let (serials, _resumes) = page_with_resume(&client, limit, 500).await;
        let want = listed_serials(&sim).await;
        let got: BTreeSet<String> = serials.iter().cloned().collect();
        prop_assert_eq!(got.len(), serials.len(), "a device was served twice");
        prop_assert!(got == want, "devices differ from the truth");
        sim.shutdown().await;
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn paging_under_random_faults_returns_every_device_exactly_once(
        seed in any::<u64>(),
        devices in 300usize..3000,
        limit in prop::sample::select(vec![50u32, 100, 250, 1000]),
        error_rate in 0.0f64..0.3,
        reset_rate in 0.0f64..0.3,
        close_after in prop::option::of(1u32..6),
        abort in any::<bool>(),
        echo in any::<bool>(),
    ) {
        let faults = FaultConfig {
            error_rate,
            reset_rate,
            close_connection_after_pages: close_after,
            close_mode: if abort { CloseMode::Abort } else { CloseMode::Graceful },
            echo_cursor_once: echo,
            seed: Some(seed.rotate_left(17)),
            ..FaultConfig::default()
        };
        run_paging_under_faults(seed, devices, limit, faults)?;
    }
}

#[tokio::test]
async fn a_budget_at_the_simulators_rate_causes_no_429() {
    // The simulator allows 5 GETs per Apple minute (one real second, a fixed window). The
    // client's budget is 5 per 1.3 s: the same count, with a margin for the gap between the
    // client's clock (when a request leaves) and the simulator's (when it arrives).
    let sim = Simulator::builder()
        .seed(110)
        .devices(300)
        .time_scale(60.0)
        .spawn()
        .await
        .unwrap();
    let key = PrivateKey::from_pem(&sim.credentials().private_key_pem).unwrap();
    let budget = Arc::new(Budget::new(BudgetConfig {
        reads: Rate {
            count: 5,
            per: Duration::from_millis(1300),
        },
        ..BudgetConfig::default()
    }));
    let client = Client::new(config(&sim), key, budget).unwrap();
    // Mint the token before the limit starts, so its latency does not skew the first window.
    client.test_connection().await.unwrap();
    sim.set_faults(FaultConfig {
        get_budget: Some(SimBudget {
            requests: 5,
            window_secs: 60.0,
        }),
        ..FaultConfig::default()
    });
    let (serials, resumes) = page_with_resume(&client, 25, 0).await;
    assert_eq!(resumes, 0);
    assert_exactly_once(&serials, &listed_serials(&sim).await);
    assert_eq!(
        sim.stats().rate_limited,
        0,
        "never more than `count` requests in any `per`"
    );
}

#[tokio::test]
async fn fan_out_stays_under_the_in_flight_cap() {
    // The simulator cuts off responses beyond 4 concurrent requests of one client (Apple's edge
    // resetting HTTP/2 streams); the client's budget allows 4 in flight, shared by all callers.
    let sim = Simulator::builder()
        .seed(111)
        .devices(100)
        .faults(FaultConfig {
            max_concurrent_requests: Some(4),
            latency_ms: 30,
            ..FaultConfig::default()
        })
        .spawn()
        .await
        .unwrap();
    let (client, rec) = client(&sim);
    client.test_connection().await.unwrap();
    let serials: Vec<SerialNumber> = listed_serials(&sim)
        .await
        .into_iter()
        .take(24)
        .map(SerialNumber::new)
        .collect();
    let lookups = serials.iter().map(|s| {
        let client = client.clone();
        async move {
            org_devices::apple_care_coverage(s)
                .collect_all(&client, 100)
                .await
        }
    });
    for r in futures::future::join_all(lookups).await {
        r.unwrap();
    }
    assert_eq!(sim.stats().connections_reset, 0);
    assert!(!rec.events().contains(&Event::Transport));
}

#[tokio::test]
async fn a_rate_limited_token_refresh_waits_for_retry_after() {
    // Tokens live one second; one mint per two real seconds is allowed, so refreshes are
    // answered 429 with a Retry-After, and once the token has expired the client must wait.
    let sim = Simulator::builder()
        .seed(112)
        .devices(300)
        .time_scale(60.0)
        .faults(FaultConfig {
            token_lifetime_secs: Some(1),
            token_budget: Some(SimBudget {
                requests: 1,
                window_secs: 120.0,
            }),
            latency_ms: 100,
            ..FaultConfig::default()
        })
        .spawn()
        .await
        .unwrap();
    let (client, rec) = client(&sim);
    let (serials, resumes) = page_with_resume(&client, 20, 0).await;
    assert_eq!(resumes, 0);
    assert_exactly_once(&serials, &listed_serials(&sim).await);
    let stats = sim.stats();
    assert!(stats.rate_limited > 0, "{stats:?}");
    assert!(stats.tokens_minted >= 2);
    let events = rec.events();
    let mut token_failures = 0;
    for (i, e) in events.iter().enumerate() {
        if *e == Event::TokenFailed {
            token_failures += 1;
            let delay = events[i + 1..].iter().find_map(|e| match e {
                Event::Retry(d) => Some(*d),
                _ => None,
            });
            // Retry-After is whole seconds, at least one.
            assert!(delay >= Some(Duration::from_secs(1)), "{delay:?}");
        }
    }
    assert!(token_failures > 0, "{events:?}");
}

#[tokio::test]
async fn writes_are_sent_once_and_gets_exhaust_their_attempts() {
    let sim = Simulator::builder()
        .seed(113)
        .devices(50)
        .spawn()
        .await
        .unwrap();
    let (client, _) = client(&sim);
    let servers = mdm_servers::list().send(&client).await.unwrap().items;
    let server = servers
        .iter()
        .find(|s| s.attributes.server_type == Some(mdm_servers::MdmServerType::Mdm))
        .unwrap();
    // A typed 422 for too many devices in one activity (SPEC: at most 1000).
    let many: Vec<SerialNumber> = (0..1001)
        .map(|i| SerialNumber::new(format!("XX{i:010}")))
        .collect();
    let err = activities::assign(&server.id, &many)
        .send(&client)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Api { status: 422, .. }), "{err:?}");

    sim.set_faults(FaultConfig {
        error_rate: 1.0,
        ..FaultConfig::default()
    });
    sim.reset_stats();
    let serial = SerialNumber::new(listed_serials(&sim).await.pop_first().unwrap());
    let err = activities::assign(&server.id, std::slice::from_ref(&serial))
        .send(&client)
        .await
        .unwrap_err();
    assert!(
        err.status().is_some_and(|s| s >= 500),
        "a 5xx on a write is returned: {err:?}"
    );
    let stats = sim.stats();
    let posts: u64 = all_statuses(&stats, "POST /v1/orgDeviceActivities")
        .values()
        .sum();
    assert_eq!(posts, 1, "a write is never re-sent");
    assert!(stats.activities_per_serial.is_empty());

    let err = org_devices::get(&serial).send(&client).await.unwrap_err();
    assert!(err.status().is_some_and(|s| s >= 500), "{err:?}");
    let gets: u64 = all_statuses(&sim.stats(), "GET /v1/orgDevices/{id}")
        .values()
        .sum();
    assert_eq!(gets, u64::from(config(&sim).retry.max_attempts));
}

#[tokio::test]
async fn a_school_org_through_the_school_client() {
    let sim = Simulator::builder()
        .seed(114)
        .devices(120)
        .school()
        .spawn()
        .await
        .unwrap();
    let creds = sim.credentials();
    assert!(creds.client_id.starts_with("SCHOOLAPI."));
    let mut cfg =
        ClientConfig::apple_school(&creds.client_id, &creds.key_id).with_origin(sim.base_url());
    cfg.retry = config(&sim).retry;
    let client = client_with(&sim, cfg, Arc::new(Recorder::default()));
    client.test_connection().await.unwrap();
    let (serials, _) = page_with_resume(&client, 50, 0).await;
    assert_exactly_once(&serials, &listed_serials(&sim).await);
    let err = users::list().send(&client).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn a_slow_simulator_times_out_each_attempt() {
    let sim = Simulator::builder()
        .seed(115)
        .devices(20)
        .spawn()
        .await
        .unwrap();
    let mut cfg = config(&sim);
    cfg.timeouts.attempt = Duration::from_millis(100);
    cfg.retry.max_attempts = 2;
    let rec = Arc::new(Recorder::default());
    let client = client_with(&sim, cfg, rec.clone());
    client.test_connection().await.unwrap();
    // Latency is added after auth, so only API calls are slow.
    sim.set_faults(FaultConfig {
        latency_ms: 2_000,
        ..FaultConfig::default()
    });
    let err = org_devices::list().send(&client).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    let timeouts = rec
        .events()
        .iter()
        .filter(|e| **e == Event::Timeout)
        .count();
    assert_eq!(timeouts, 2, "both attempts timed out");
}

#[tokio::test]
async fn migration_deadline_activities_through_the_client() {
    let sim = Simulator::builder()
        .seed(116)
        .devices(400)
        .time_scale(500.0)
        .spawn()
        .await
        .unwrap();
    let (client, _) = client(&sim);
    let server = mdm_servers::list()
        .send(&client)
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|s| s.attributes.server_type == Some(mdm_servers::MdmServerType::Mdm))
        .unwrap();
    let capable = org_devices::list()
        .limit(1000)
        .collect_all(&client, 10_000)
        .await
        .unwrap()
        .into_iter()
        .find(|d| {
            d.attributes.is_mdm_migration_capable == Some(true)
                && d.attributes.mdm_migration_status.is_none()
        })
        .expect("a migration-capable device");
    let serials = [capable.id.clone()];
    let now = time::OffsetDateTime::now_utc();
    let err = activities::assign_with_migration_deadline(
        &server.id,
        &serials,
        now + time::Duration::days(91),
    )
    .send(&client)
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Api { status: 409, .. }), "{err:?}");
    let run = |req: activities::CreateActivity| {
        let client = client.clone();
        async move {
            let a = req.send(&client).await.unwrap().data;
            let done = activities::wait_until_done(
                &client,
                &a.id,
                Duration::from_millis(10),
                Duration::from_secs(30),
                Priority::Interactive,
            )
            .await
            .unwrap();
            assert_eq!(done.attributes.status, Some(ActivityStatus::Completed));
        }
    };
    run(activities::assign_with_migration_deadline(
        &server.id,
        &serials,
        now + time::Duration::days(30),
    ))
    .await;
    // Effects show after the (scaled) assignment lag: poll the device, bounded.
    let deadline_becomes = |want: Option<i64>| {
        let (client, serial) = (&client, &capable.id);
        async move {
            for _ in 0..400 {
                let d = org_devices::get(serial).send(client).await.unwrap().data;
                let got = d
                    .attributes
                    .mdm_migration_deadline_date_time
                    .map(|t| t.unix_timestamp());
                if got == want {
                    return d;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("the migration deadline never became {want:?}");
        }
    };
    let assigned = deadline_becomes(Some((now + time::Duration::days(30)).unix_timestamp())).await;
    assert_eq!(
        assigned.attributes.mdm_migration_status,
        Some(MdmMigrationStatus::Requested)
    );
    run(activities::update_migration_deadline(
        &serials,
        now + time::Duration::days(10),
    ))
    .await;
    deadline_becomes(Some((now + time::Duration::days(10)).unix_timestamp())).await;
    run(activities::cancel_migration(&serials)).await;
    deadline_becomes(None).await;
}

#[tokio::test]
async fn a_failed_early_refresh_keeps_using_the_valid_token() {
    // Tokens live 6 s and are refreshed early (at half-life here); the token endpoint allows
    // one mint per 20 real seconds, so the early refresh is answered 429. The current token is
    // still valid for three more seconds, which is enough for the rest of the stream.
    let sim = Simulator::builder()
        .seed(117)
        .devices(800)
        .time_scale(60.0)
        .faults(FaultConfig {
            token_lifetime_secs: Some(6),
            token_budget: Some(SimBudget {
                requests: 1,
                window_secs: 1200.0,
            }),
            latency_ms: 100,
            ..FaultConfig::default()
        })
        .spawn()
        .await
        .unwrap();
    let (client, rec) = client(&sim);
    // 40 pages at ≥ 100 ms: the stream outlives the refresh point (3 s) but not the token.
    let started = Instant::now();
    let (serials, resumes) = page_with_resume(&client, 20, 0).await;
    assert_eq!(resumes, 0);
    assert_exactly_once(&serials, &listed_serials(&sim).await);
    let stats = sim.stats();
    if started.elapsed() < Duration::from_millis(5500) {
        // Only meaningful if the stream ended before the token expired (a very busy machine
        // could stretch it; then waiting for a new token is right).
        assert_eq!(stats.tokens_minted, 1);
        assert!(stats.rate_limited >= 1, "the early refresh was tried");
        let events = rec.events();
        assert!(!events.contains(&Event::TokenFailed), "{events:?}");
        assert!(
            !events.iter().any(|e| matches!(e, Event::Retry(_))),
            "{events:?}"
        );
    }
}
