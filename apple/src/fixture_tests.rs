//! Decodes every body in `../shared/apple-business-api/fixtures/` into the client type that
//! reads (or writes) it. The set of handled files must equal the set of files present, minus
//! [`SKIPPED`], so a new fixture fails this test until it is mapped.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Serialize;
use serde::de::DeserializeOwned;
use time::macros::datetime;

use crate::auth::{AssertionClaims, OAuthErrorBody, TokenResponse, token_form};
use crate::client::Client;
use crate::config::ClientConfig;
use crate::error::ErrorResponse;
use crate::model::{CollectionDocument, Document, Included, Resource, ResourceIdentifier};
use crate::resources::activities::{
    self, ActivityCreateRequest, ActivityStatus, OrgDeviceActivity,
};
use crate::resources::apps::App;
use crate::resources::audit_events::{AuditEvent, AuditEventData, AuditEventType};
use crate::resources::blueprints::{
    self, Blueprint, BlueprintFields, BlueprintMembers, BlueprintRelationship,
    BlueprintWriteRequest, LinkagesRequest,
};
use crate::resources::configurations::{
    self, Configuration, ConfigurationPlatform, ConfigurationWriteRequest,
};
use crate::resources::mdm_devices::{MdmDevice, MdmDeviceDetail};
use crate::resources::mdm_servers::{
    self, MdmServer, MdmServerCreateRequest, MdmServerPatch, MdmServerProductFamily,
    MdmServerUpdateRequest,
};
use crate::resources::org_devices::{ActivationLockStatus, AppleCareCoverage, OrgDevice};
use crate::resources::organizational_units::OrganizationalUnit;
use crate::resources::packages::Package;
use crate::resources::user_groups::UserGroup;
use crate::resources::users::User;
use crate::{BlueprintId, ConfigurationId, MdmServerId, SerialNumber};

/// Files deliberately not decoded here, with the reason.
const SKIPPED: &[(&str, &str)] = &[(
    "seed-dataset.json",
    "simulator seed (a whole organisation in the simulator's own layout), not an API body",
)];

fn fixtures_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/apple-business-api/fixtures"
    ));
    assert!(
        dir.join("_index.json").is_file(),
        "fixtures not found at {} (CI must check out shared/ beside the repository)",
        dir.display()
    );
    dir
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixtures_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[track_caller]
fn decode<T: DeserializeOwned>(name: &str) -> T {
    let text = read(name);
    Client::decode("fixture", text.as_bytes()).unwrap_or_else(|e| match e {
        crate::Error::Decode { path, source, .. } => panic!("{name}: at `{path}`: {source}"),
        other => panic!("{name}: {other}"),
    })
}

trait Kind {
    fn kind(&self) -> &str;
}

impl<I, A> Kind for Resource<I, A> {
    fn kind(&self) -> &str {
        &self.kind
    }
}

impl Kind for ResourceIdentifier {
    fn kind(&self) -> &str {
        &self.kind
    }
}

#[track_caller]
fn single<T: DeserializeOwned + Kind>(name: &str, kind: &str) -> Document<T> {
    let doc: Document<T> = decode(name);
    assert_eq!(doc.data.kind(), kind, "{name}");
    doc
}

#[track_caller]
fn collection<T: DeserializeOwned + Kind>(name: &str, kind: &str) -> CollectionDocument<T> {
    let doc: CollectionDocument<T> = decode(name);
    assert!(!doc.data.is_empty(), "{name}: empty data");
    for item in &doc.data {
        assert_eq!(item.kind(), kind, "{name}");
    }
    assert!(
        doc.meta.as_ref().and_then(|m| m.paging.as_ref()).is_some(),
        "{name}: no paging"
    );
    doc
}

/// Decodes a request fixture into `T`, re-encodes it, and checks nothing was lost or added.
#[track_caller]
fn round_trip<T: DeserializeOwned + Serialize>(name: &str) -> T {
    let value: T = decode(name);
    let original: serde_json::Value = serde_json::from_str(&read(name)).unwrap();
    assert_eq!(
        serde_json::to_value(&value).unwrap(),
        original,
        "{name}: round trip differs"
    );
    value
}

#[track_caller]
fn same_json<T: Serialize>(built: Option<&T>, name: &str) {
    let original: serde_json::Value = serde_json::from_str(&read(name)).unwrap();
    assert_eq!(
        serde_json::to_value(built.unwrap()).unwrap(),
        original,
        "{name}: builder differs"
    );
}

fn null_body(name: &str) {
    assert_eq!(
        read(name).trim(),
        "null",
        "{name}: 204 fixture should be null"
    );
}

fn rel_of(stem: &str) -> BlueprintRelationship {
    match stem {
        "apps" => BlueprintRelationship::Apps,
        "configurations" => BlueprintRelationship::Configurations,
        "packages" => BlueprintRelationship::Packages,
        "org-devices" => BlueprintRelationship::OrgDevices,
        "users" => BlueprintRelationship::Users,
        "user-groups" => BlueprintRelationship::UserGroups,
        other => panic!("unknown relationship {other}"),
    }
}

/// Handles one file; returns false if the name is not mapped.
fn handle(name: &str) -> bool {
    let bp = BlueprintId::new("blueprint-12345");
    match name {
        "_index.json" => {
            let index: serde_json::Value = decode(name);
            for entry in index["entries"].as_array().unwrap() {
                for key in ["response", "request"] {
                    if let Some(f) = entry[key].as_str() {
                        assert!(fixtures_dir().join(f).is_file(), "index names missing {f}");
                    }
                }
            }
        }
        "activity-log.example.csv" => {
            let rows = crate::activity_log::parse(&read(name)).unwrap();
            assert_eq!(rows.len(), 2);
            assert!(!rows[0].failed());
            assert!(rows[1].failed());
            assert_eq!(
                rows[1].details.as_deref(),
                Some("Device not found in organization")
            );
        }
        "client-assertion.decoded.json" => {
            let v: serde_json::Value = decode(name);
            assert_eq!(v["header"]["alg"], "ES256");
            let claims: AssertionClaims = serde_json::from_value(v["payload"].clone()).unwrap();
            assert_eq!(claims.aud, crate::config::ASSERTION_AUDIENCE);
            assert_eq!(claims.iss, claims.sub);
        }
        "post-oauth2-token.json" => {
            let t: TokenResponse = decode(name);
            assert_eq!(t.expires_in, Some(3600));
            assert_eq!(t.token_type.as_deref(), Some("Bearer"));
            assert!(!t.access_token.is_empty());
        }
        "post-oauth2-token.error-invalid-client.json" => {
            let e: OAuthErrorBody = decode(name);
            assert_eq!(e.error, "invalid_client");
            assert!(e.error_description.is_some());
        }
        "post-oauth2-token.request.form.json" => {
            let v: serde_json::Map<String, serde_json::Value> = decode(name);
            let cfg = ClientConfig::apple_business(
                "BUSINESSAPI.c75c0a8a-a026-4dae-99aa-89ea1e1103e5",
                "e339d085-a821-438a-a527-d044edacf50a",
            );
            let form = token_form(&cfg, "<ES256-signed JWT>");
            let expected: BTreeSet<&str> = v
                .keys()
                .map(String::as_str)
                .filter(|k| !k.starts_with('_'))
                .collect();
            assert_eq!(
                form.iter().map(|(k, _)| *k).collect::<BTreeSet<_>>(),
                expected
            );
            for (k, val) in form {
                assert_eq!(v[k], val, "form field {k}");
            }
        }
        n if n.starts_with("error-") => {
            let e: ErrorResponse = decode(n);
            assert!(!e.errors.is_empty(), "{n}");
            let status: u16 = n[6..9].parse().unwrap();
            assert_eq!(e.errors[0].status.as_deref(), Some(&n[6..9]), "{n}");
            let err = crate::client::status_error(
                "fixture",
                reqwest::StatusCode::from_u16(status).unwrap(),
                None,
                read(n).as_bytes(),
            );
            assert_eq!(err.status(), Some(status));
        }
        "get-org-devices.json" => {
            let doc = collection::<OrgDevice>(name, "orgDevices");
            let a = &doc.data[0].attributes;
            assert_eq!(a.purchase_source(), Some("-2085650007946880"));
            assert!(a.added_to_org_date_time.is_some() && a.order_date_time.is_some());
            assert_eq!(
                doc.meta
                    .unwrap()
                    .paging
                    .unwrap()
                    .next_cursor
                    .unwrap()
                    .as_str()
                    .len(),
                75
            );
        }
        "get-orgdevice-information.json" | "get-orgdevice-information.full.json" => {
            let doc = single::<OrgDevice>(name, "orgDevices");
            assert!(doc.data.attributes.purchase_source().is_some());
        }
        "get-all-applecare-coverage-for-an-orgdevice.json" => {
            collection::<AppleCareCoverage>(name, "appleCareCoverage");
        }
        "get-the-activation-lock-status-information-for-an-orgdevice.json" => {
            single::<ActivationLockStatus>(name, "activationLockStatus");
        }
        "get-the-assigned-server-id-for-an-orgdevice.json" => {
            let doc: Document<Option<ResourceIdentifier>> = decode(name);
            assert_eq!(doc.data.unwrap().kind, "mdmServers");
        }
        "get-the-assigned-server-information-for-an-orgdevice.json"
        | "get-mdmserver-information.json"
        | "create-an-mdmserver.json"
        | "update-an-mdmserver.json" => {
            single::<MdmServer>(name, "mdmServers");
        }
        "get-apple-mdm-enrolled-devices.json" => {
            collection::<MdmDevice>(name, "mdmDevices");
        }
        "get-the-details-for-apple-mdm-enrolled-device.json" => {
            single::<MdmDeviceDetail>(name, "mdmDeviceDetails");
        }
        "get-mdm-servers.json" => {
            collection::<MdmServer>(name, "mdmServers");
        }
        "get-all-device-ids-for-an-mdmserver.json"
        | "get-all-orgdevice-ids-for-a-blueprint.json" => {
            collection::<ResourceIdentifier>(name, "orgDevices");
        }
        "create-an-mdmserver.request.json" => {
            let body: MdmServerCreateRequest = round_trip(name);
            let built = mdm_servers::create(body.data.attributes.clone());
            same_json(built.body(), name);
        }
        "update-an-mdmserver.request.json" => {
            round_trip::<MdmServerUpdateRequest>(name);
            let built = mdm_servers::update(
                &MdmServerId::new("2A87349736CF4614A94F624E705841BE"),
                MdmServerPatch {
                    server_name: Some("Marketing Team MDM (Renamed)".to_owned()),
                    default_product_families: Some(vec![
                        MdmServerProductFamily::IPad,
                        MdmServerProductFamily::IPhone,
                    ]),
                    ..MdmServerPatch::default()
                },
            );
            same_json(built.body(), name);
        }
        "create-an-orgdeviceactivity.json"
        | "create-an-orgdeviceactivity.migration.json"
        | "get-orgdeviceactivity-information.json" => {
            let doc = single::<OrgDeviceActivity>(name, "orgDeviceActivities");
            assert!(doc.data.attributes.status.is_some());
            assert!(!matches!(
                doc.data.attributes.status,
                Some(ActivityStatus::Unknown(_))
            ));
        }
        n if n.starts_with("create-an-orgdeviceactivity.request.") => {
            let body: ActivityCreateRequest = round_trip(n);
            let serials: Vec<SerialNumber> = body
                .data
                .relationships
                .devices
                .data
                .iter()
                .map(|d| SerialNumber::new(d.id.clone()))
                .collect();
            let server = body
                .data
                .relationships
                .mdm_server
                .as_ref()
                .map(|s| MdmServerId::new(s.data.id.clone()));
            let deadline = body
                .data
                .attributes
                .activity_type_metadata
                .as_ref()
                .map(|m| m.mdm_migration_deadline_date_time);
            let variant = n.trim_start_matches("create-an-orgdeviceactivity.request.");
            let built = match variant {
                "assign.json" => activities::assign(server.as_ref().unwrap(), &serials),
                "unassign.json" => activities::unassign(server.as_ref().unwrap(), &serials),
                "assign-with-migration-deadline.json" => {
                    assert_eq!(deadline, Some(datetime!(2026-03-15 17:00 UTC)));
                    activities::assign_with_migration_deadline(
                        server.as_ref().unwrap(),
                        &serials,
                        deadline.unwrap(),
                    )
                }
                "update-migration-deadline.json" => {
                    activities::update_migration_deadline(&serials, deadline.unwrap())
                }
                "cancel-migration.json" => activities::cancel_migration(&serials),
                "release.json" => activities::release(&serials),
                other => panic!("unmapped activity request {other}"),
            };
            same_json(built.body(), n);
        }
        "get-users.json" => {
            collection::<User>(name, "users");
        }
        "get-user-information.json" => {
            single::<User>(name, "users");
        }
        "get-user-groups.json" => {
            collection::<UserGroup>(name, "userGroups");
        }
        "get-usergroup-information.json" => {
            single::<UserGroup>(name, "userGroups");
        }
        "get-all-user-ids-for-a-user-group.json"
        | "get-all-user-ids-for-an-organizationalunit.json"
        | "get-all-user-ids-for-a-blueprint.json" => {
            collection::<ResourceIdentifier>(name, "users");
        }
        "get-organizational-units.json" => {
            collection::<OrganizationalUnit>(name, "organizationalUnits");
        }
        "get-organizationalunit-information.json" => {
            single::<OrganizationalUnit>(name, "organizationalUnits");
        }
        "get-apps.json" => {
            collection::<App>(name, "apps");
        }
        "get-app-information.json" => {
            single::<App>(name, "apps");
        }
        "get-packages.json" => {
            collection::<Package>(name, "packages");
        }
        "get-package-information.json" => {
            single::<Package>(name, "packages");
        }
        "get-blueprints.json" => {
            collection::<Blueprint>(name, "blueprints");
        }
        "get-blueprint-information.json"
        | "create-a-blueprint.json"
        | "update-a-blueprint.json" => {
            single::<Blueprint>(name, "blueprints");
        }
        "get-blueprint-information.include-apps.json" => {
            let doc = single::<Blueprint>(name, "blueprints");
            assert!(matches!(doc.included.first(), Some(Included::App(_))));
        }
        "create-a-blueprint.request.json" => {
            let body: BlueprintWriteRequest = round_trip(name);
            let fields = body.data.attributes.clone().unwrap();
            let built = blueprints::create(
                fields.name.unwrap(),
                fields.description,
                body.data.relationships.clone().unwrap(),
            );
            same_json(built.body(), name);
        }
        "update-a-blueprint.request.json" => {
            round_trip::<BlueprintWriteRequest>(name);
            let built = blueprints::update(
                &bp,
                BlueprintFields {
                    name: None,
                    description: Some("Updated description".to_owned()),
                },
                BlueprintMembers::default()
                    .set(BlueprintRelationship::Apps, ["361309726"])
                    .set(
                        BlueprintRelationship::Users,
                        ["user-215", "user-225", "user-235"],
                    ),
            );
            same_json(built.body(), name);
        }
        "get-all-app-ids-for-a-blueprint.json" => {
            collection::<ResourceIdentifier>(name, "apps");
        }
        "get-all-configuration-ids-for-a-blueprint.json" => {
            collection::<ResourceIdentifier>(name, "configurations");
        }
        "get-all-package-ids-for-a-blueprint.json" => {
            collection::<ResourceIdentifier>(name, "packages");
        }
        "get-all-user-group-ids-for-a-blueprint.json" => {
            collection::<ResourceIdentifier>(name, "userGroups");
        }
        n if (n.starts_with("add-") || n.starts_with("remove-"))
            && n.ends_with(".request.json") =>
        {
            let body: LinkagesRequest = round_trip(n);
            let (add, rest) = match n.strip_prefix("add-") {
                Some(r) => (true, r),
                None => (false, n.trim_start_matches("remove-")),
            };
            let stem = rest
                .split(if add { "-to-" } else { "-from-" })
                .next()
                .unwrap();
            let rel = rel_of(stem);
            let ids: Vec<String> = body.data.iter().map(|d| d.id.clone()).collect();
            let built = if add {
                blueprints::add_members(&bp, rel, &ids)
            } else {
                blueprints::remove_members(&bp, rel, &ids)
            };
            same_json(built.body(), n);
        }
        n if n.starts_with("add-") || n.starts_with("remove-") || n.starts_with("delete-") => {
            null_body(n);
        }
        "get-configurations.json" => {
            let doc = collection::<Configuration>(name, "configurations");
            assert!(
                doc.data
                    .iter()
                    .all(|c| c.attributes.custom_settings_values.is_none())
            );
        }
        "get-configuration-information.json"
        | "create-a-configuration.json"
        | "update-a-configuration.json" => {
            single::<Configuration>(name, "configurations");
        }
        "create-a-configuration.request.json" => {
            let body: ConfigurationWriteRequest = round_trip(name);
            let a = body.data.attributes.clone();
            let built = configurations::create(
                a.name.unwrap(),
                a.configured_for_platforms,
                a.custom_settings_values.unwrap(),
            );
            same_json(built.body(), name);
        }
        "update-a-configuration.request.json" => {
            let body: ConfigurationWriteRequest = round_trip(name);
            let a = body.data.attributes.clone();
            assert_eq!(
                a.configured_for_platforms,
                Some(vec![
                    ConfigurationPlatform::Ios,
                    ConfigurationPlatform::MacOs
                ])
            );
            let built = configurations::update(&ConfigurationId::new("config-12345"), a);
            same_json(built.body(), name);
        }
        "get-audit-events.json" | "get-audit-events.more-types.json" => {
            let doc = collection::<AuditEvent>(name, "auditEvents");
            for e in &doc.data {
                let a = &e.attributes;
                assert!(
                    !matches!(a.kind, Some(AuditEventType::Unknown(_)) | None),
                    "{name}"
                );
                let data = a.event_data().expect("event data");
                if let AuditEventData::Other { key, .. } = &data {
                    assert!(
                        !matches!(
                            a.kind,
                            Some(AuditEventType::DeviceAddedToOrg)
                                | Some(AuditEventType::DeviceAssignedToServer)
                        ),
                        "{name}: {key} not typed"
                    );
                }
            }
        }
        _ => return false,
    }
    true
}

#[test]
fn every_fixture_decodes_into_its_client_type() {
    let dir = fixtures_dir();
    let present: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let skipped: BTreeSet<String> = SKIPPED.iter().map(|(n, _)| (*n).to_owned()).collect();
    let mut unmapped = Vec::new();
    let mut handled = BTreeSet::new();
    for name in &present {
        if skipped.contains(name) {
            continue;
        }
        if handle(name) {
            handled.insert(name.clone());
        } else {
            unmapped.push(name.clone());
        }
    }
    assert!(
        unmapped.is_empty(),
        "fixtures without a mapping: {unmapped:?}"
    );
    let expected: BTreeSet<String> = present.difference(&skipped).cloned().collect();
    assert_eq!(handled, expected);
    assert!(
        handled.len() > 90,
        "suspiciously few fixtures: {}",
        handled.len()
    );
}

/// Method and path of every request constructor, with `ID` for path ids.
fn catalogue() -> Vec<(String, String, &'static str)> {
    use crate::resources::{
        apps, audit_events, mdm_devices, org_devices, organizational_units, packages, user_groups,
        users,
    };
    use crate::{
        ActivityId, AppId, MdmDeviceId, OrganizationalUnitId, PackageId, UserGroupId, UserId,
    };
    fn list<T>(r: crate::ListRequest<T>) -> (String, String, &'static str) {
        ("GET".to_owned(), r.path.clone(), r.endpoint)
    }
    fn one<T: DeserializeOwned>(r: crate::GetRequest<T>) -> (String, String, &'static str) {
        ("GET".to_owned(), r.path.clone(), r.endpoint)
    }
    fn write<B: Serialize, R: crate::request::WriteResponse>(
        r: crate::WriteRequest<B, R>,
    ) -> (String, String, &'static str) {
        (r.method.to_string(), r.path.clone(), r.endpoint)
    }
    let serial = SerialNumber::new("ID");
    let server = MdmServerId::new("ID");
    let bp = BlueprintId::new("ID");
    let cfg = ConfigurationId::new("ID");
    let now = time::OffsetDateTime::UNIX_EPOCH;
    let mut out = vec![
        list(org_devices::list()),
        one(org_devices::get(&serial)),
        list(org_devices::apple_care_coverage(&serial)),
        one(org_devices::activation_lock_status(&serial)),
        one(org_devices::assigned_server_id(&serial)),
        one(org_devices::assigned_server(&serial)),
        list(mdm_devices::list()),
        one(mdm_devices::details(&MdmDeviceId::new("ID"))),
        list(mdm_servers::list()),
        one(mdm_servers::get(&server)),
        write(mdm_servers::create(mdm_servers::NewMdmServer {
            server_name: "n".into(),
            server_certificate: mdm_servers::MdmServerCertificate {
                name: "c".into(),
                data: "d".into(),
            },
            enable_mdm_disown_flag: None,
            default_product_families: None,
        })),
        write(mdm_servers::update(&server, MdmServerPatch::default())),
        write(mdm_servers::delete(&server)),
        list(mdm_servers::device_ids(&server)),
        write(activities::release(std::slice::from_ref(&serial))),
        one(activities::get(&ActivityId::new("ID"))),
        list(users::list()),
        one(users::get(&UserId::new("ID"))),
        list(user_groups::list()),
        one(user_groups::get(&UserGroupId::new("ID"))),
        list(user_groups::user_ids(&UserGroupId::new("ID"))),
        list(organizational_units::list()),
        one(organizational_units::get(&OrganizationalUnitId::new("ID"))),
        list(organizational_units::user_ids(&OrganizationalUnitId::new(
            "ID",
        ))),
        list(apps::list()),
        one(apps::get(&AppId::new("ID"))),
        list(packages::list()),
        one(packages::get(&PackageId::new("ID"))),
        list(blueprints::list()),
        write(blueprints::create("n", None, BlueprintMembers::default())),
        one(blueprints::get(&bp)),
        write(blueprints::update(
            &bp,
            BlueprintFields::default(),
            BlueprintMembers::default(),
        )),
        write(blueprints::delete(&bp)),
        list(configurations::list()),
        write(configurations::create("n", None, Default::default())),
        one(configurations::get(&cfg)),
        write(configurations::update(&cfg, Default::default())),
        write(configurations::delete(&cfg)),
        list(audit_events::list(now, now)),
    ];
    for rel in BlueprintRelationship::ALL {
        out.push(list(blueprints::member_ids(&bp, rel)));
        out.push(write(blueprints::add_members(&bp, rel, ["x"])));
        out.push(write(blueprints::remove_members(&bp, rel, ["x"])));
    }
    out
}

#[test]
fn the_catalogue_matches_every_endpoint_of_the_fixture_index() {
    let index: serde_json::Value = decode("_index.json");
    let documented: BTreeSet<(String, String)> = index["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            Some((
                e["method"].as_str()?.to_owned(),
                e["path"].as_str()?.to_owned(),
            ))
        })
        .filter(|(_, p)| p.starts_with("/v1/"))
        .map(|(m, p)| (m, p.replace("{id}", "ID")))
        .collect();
    let built = catalogue();
    let ours: BTreeSet<(String, String)> = built
        .iter()
        .map(|(m, p, _)| (m.clone(), p.clone()))
        .collect();
    assert_eq!(
        ours.len(),
        built.len(),
        "two constructors hit the same endpoint"
    );
    assert_eq!(ours, documented);
    assert_eq!(ours.len(), 57);
    let names: BTreeSet<&str> = built.iter().map(|(_, _, n)| *n).collect();
    assert_eq!(names.len(), 57, "endpoint names must be unique");
}
