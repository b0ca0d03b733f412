//! HTTP-level tests of the simulator with plain `reqwest` and `serde_json::Value`.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use simulator::{Behaviour, Budget, CloseMode, FaultConfig, Simulator};
use std::collections::HashSet;
use std::time::Duration;

// ----- auth -----

#[tokio::test]
async fn token_endpoint_accepts_a_good_assertion_in_form_body_query_string_and_v2_path() {
    let sim = Simulator::builder()
        .seed(1)
        .devices(10)
        .spawn()
        .await
        .unwrap();
    let http = reqwest::Client::new();

    let r = http
        .post(sim.token_url())
        .form(&form(&sim, &assertion(&sim), "business.api"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3600);
    assert_eq!(v["scope"], "business.api");
    let keys: HashSet<_> = v.as_object().unwrap().keys().cloned().collect();
    let fixture_keys: HashSet<_> = fixture("post-oauth2-token.json")
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys, fixture_keys);

    let query: Vec<String> = form(&sim, &assertion(&sim), "business.api")
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect();
    let r = http
        .post(format!("{}?{}", sim.token_url(), query.join("&")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "params in the query string (Apple's curl sample)"
    );

    let r = http
        .post(format!("{}/auth/oauth2/v2/token", sim.base_url()))
        .form(&form(&sim, &assertion(&sim), "business.api"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the /v2/ path some SDKs use");
    let token = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = http
        .get(format!("{}/v1/orgDevices", sim.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn token_endpoint_rejects_bad_assertions_with_invalid_client() {
    let sim = Simulator::builder()
        .seed(2)
        .devices(10)
        .spawn()
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let c = sim.credentials().clone();
    let t = now();
    let header = json!({ "alg": "ES256", "kid": c.key_id });
    let claims = |aud: &str, iat: i64, exp: i64| json!({ "iss": c.client_id, "sub": c.client_id, "aud": aud, "iat": iat, "exp": exp, "jti": "x" });
    let other_key = p256::ecdsa::SigningKey::from(p256::SecretKey::random(&mut rand::rngs::OsRng));
    let cases = [
        (
            "bad signature",
            sign(&other_key, &header, &claims(sim.audience(), t, t + 600)),
        ),
        (
            "wrong aud",
            sign(
                &key_of(&sim),
                &header,
                &claims("https://example.com/token", t, t + 600),
            ),
        ),
        (
            "expired",
            sign(
                &key_of(&sim),
                &header,
                &claims(sim.audience(), t - 1000, t - 10),
            ),
        ),
        (
            "exp beyond 180 days",
            sign(
                &key_of(&sim),
                &header,
                &claims(sim.audience(), t, t + 181 * 86_400),
            ),
        ),
        (
            "unknown kid",
            sign(
                &key_of(&sim),
                &json!({ "alg": "ES256", "kid": "00000000-0000-0000-0000-000000000000" }),
                &claims(sim.audience(), t, t + 600),
            ),
        ),
        (
            "alg HS256",
            sign(
                &key_of(&sim),
                &json!({ "alg": "HS256", "kid": c.key_id }),
                &claims(sim.audience(), t, t + 600),
            ),
        ),
        ("not a jwt", "abc".to_string()),
    ];
    for (name, jwt) in cases {
        let r = http
            .post(sim.token_url())
            .form(&form(&sim, &jwt, "business.api"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{name}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_client", "{name}: {v}");
        assert!(v["error_description"].is_string());
    }
    let r = http
        .post(sim.token_url())
        .form(&form(&sim, &assertion(&sim), "school.api"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_scope");
    let mut bad_grant = form(&sim, &assertion(&sim), "business.api");
    bad_grant[0].1 = "password".into();
    let r = http
        .post(sim.token_url())
        .form(&bad_grant)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
    // The simulator's own token URL is an accepted audience too.
    let own = sign(
        &key_of(&sim),
        &header,
        &claims(
            &format!("{}/auth/oauth2/v2/token", sim.base_url()),
            t,
            t + 600,
        ),
    );
    let r = http
        .post(sim.token_url())
        .form(&form(&sim, &own, "business.api"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn api_requires_a_valid_unexpired_bearer_token() {
    let api = start(
        Simulator::builder()
            .seed(3)
            .devices(10)
            .behaviour(Behaviour {
                token_lifetime_secs: 1,
                ..Behaviour::default()
            }),
    )
    .await;
    let r = api
        .http
        .get(api.url("/v1/orgDevices"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    apple_error(&r.json().await.unwrap(), 401);
    let r = api
        .http
        .get(api.url("/v1/orgDevices"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = api.get("/v1/orgDevices").await;
    assert_eq!(status, 401, "token lifetime of 1 s has passed");
    apple_error(&body, 401);
}

// ----- paging, fields, errors -----

#[tokio::test]
async fn paging_at_limit_1000_returns_every_device_exactly_once() {
    let api = start(Simulator::builder().seed(4).devices(4_321)).await;
    let mut seen = HashSet::new();
    let mut url = api.url("/v1/orgDevices?limit=1000");
    let mut pages = 0;
    loop {
        let (status, page) = api.get_url(&url).await.unwrap();
        assert_eq!(status, 200);
        pages += 1;
        assert_eq!(page["meta"]["paging"]["limit"], 1000);
        for d in page["data"].as_array().unwrap() {
            assert!(
                seen.insert(d["id"].as_str().unwrap().to_string()),
                "device served twice: {}",
                d["id"]
            );
            assert_eq!(d["id"], d["attributes"]["serialNumber"]);
        }
        match page["links"]["next"].as_str() {
            Some(next) => {
                assert!(page["meta"]["paging"]["nextCursor"].as_str().is_some());
                url = next.to_string();
            }
            None => {
                assert!(page["meta"]["paging"].get("nextCursor").is_none());
                break;
            }
        }
    }
    assert_eq!(pages, 5);
    let truth: HashSet<String> = api
        .truth()
        .await
        .iter()
        .map(|d| d["serialNumber"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(seen, truth);
}

#[tokio::test]
async fn limits_outside_1_to_1000_are_parameter_errors() {
    let api = start(Simulator::builder().seed(5).devices(10)).await;
    for bad in ["1001", "0", "-3", "ten"] {
        let (status, body) = api.get(&format!("/v1/orgDevices?limit={bad}")).await;
        assert_eq!(status, 400, "limit={bad}");
        let e = apple_error(&body, 400);
        assert_eq!(e["source"]["parameter"], "limit");
        assert_eq!(e["code"], "PARAMETER_ERROR.INVALID");
    }
    let (status, body) = api.get("/v1/orgDevices?cursor=bm90LWEtY3Vyc29y").await;
    assert_eq!(status, 400);
    assert_eq!(apple_error(&body, 400)["source"]["parameter"], "cursor");
    let (status, _) = api.get("/v1/orgDevices?bogus=1").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn sparse_fieldsets_keep_only_the_named_members_and_reject_unknown_names() {
    let api = start(Simulator::builder().seed(6).devices(20)).await;
    let (status, page) = api
        .get("/v1/orgDevices?fields[orgDevices]=serialNumber,status")
        .await;
    assert_eq!(status, 200);
    for d in page["data"].as_array().unwrap() {
        let keys: Vec<&String> = d["attributes"].as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 2, "{d}");
        assert!(
            d["attributes"]["serialNumber"].is_string() && d["attributes"]["status"].is_string()
        );
        assert!(d.get("relationships").is_none());
    }
    let (_, page) = api
        .get("/v1/orgDevices?fields%5BorgDevices%5D=assignedServer")
        .await;
    assert!(page["data"][0]["relationships"]["assignedServer"].is_object());
    assert!(
        page["data"][0]["relationships"]
            .get("appleCareCoverage")
            .is_none()
    );
    let (status, body) = api
        .get("/v1/orgDevices?fields[orgDevices]=serialNumber,colour")
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        apple_error(&body, 400)["source"]["parameter"],
        "fields[orgDevices]"
    );
}

#[tokio::test]
async fn unknown_ids_answer_apples_404_document() {
    let api = start(Simulator::builder().seed(7).devices(10)).await;
    let (status, body) = api.get("/v1/orgDevices/XABC123X0ABC123X0").await;
    assert_eq!(status, 404);
    let e = apple_error(&body, 404);
    assert_eq!(e["code"], "NOT_FOUND");
    assert_eq!(
        e["detail"],
        "There is no resource of type 'orgDevices' with id 'XABC123X0ABC123X0'"
    );
    let fixture = fixture("error-404-not-found.json");
    assert_eq!(key_set(&e), key_set(&fixture["errors"][0]));
    for path in [
        "/v1/mdmServers/NOPE",
        "/v1/blueprints/nope",
        "/v1/configurations/nope",
        "/v1/orgDeviceActivities/nope",
        "/v1/users/0",
        "/v1/nothing-here",
    ] {
        let (status, body) = api.get(path).await;
        assert_eq!(status, 404, "{path}");
        apple_error(&body, 404);
    }
}

fn key_set(v: &Value) -> HashSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

// ----- activities -----

async fn poll_activity(api: &Api, id: &str) -> Value {
    for _ in 0..200 {
        let (status, doc) = api.get(&format!("/v1/orgDeviceActivities/{id}")).await;
        assert_eq!(status, 200);
        if doc["data"]["attributes"]["status"] == "COMPLETED" {
            return doc;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("activity {id} never completed");
}

async fn unassigned_serials(api: &Api, n: usize) -> Vec<String> {
    api.truth()
        .await
        .iter()
        .filter(|d| d["status"] == "UNASSIGNED")
        .take(n)
        .map(|d| d["serialNumber"].as_str().unwrap().to_string())
        .collect()
}

async fn first_mdm_server(api: &Api) -> String {
    let (_, servers) = api.get("/v1/mdmServers").await;
    servers["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["attributes"]["serverType"] == "MDM")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn assign_body(kind: &str, server: Option<&str>, serials: &[String]) -> Value {
    let mut rels = json!({ "devices": { "data": serials.iter().map(|s| json!({ "type": "orgDevices", "id": s })).collect::<Vec<_>>() } });
    if let Some(server) = server {
        rels["mdmServer"] = json!({ "data": { "type": "mdmServers", "id": server } });
    }
    json!({ "data": { "type": "orgDeviceActivities", "attributes": { "activityType": kind }, "relationships": rels } })
}

#[tokio::test]
async fn activity_moves_through_its_statuses_and_logs_unknown_serials_as_failed_in_the_csv() {
    let api = start(Simulator::builder().seed(8).devices(200).time_scale(100.0)).await;
    let server = first_mdm_server(&api).await;
    let mut serials = unassigned_serials(&api, 2).await;
    serials.push("F2KZ3N4G5HD3".into());
    let (status, created) = api
        .send(
            Method::POST,
            "/v1/orgDeviceActivities",
            &assign_body("ASSIGN_DEVICES", Some(&server), &serials),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["data"]["attributes"]["status"], "IN_PROGRESS");
    assert_eq!(created["data"]["attributes"]["subStatus"], "SUBMITTED");
    let id = created["data"]["id"].as_str().unwrap().to_string();

    let done = poll_activity(&api, &id).await;
    let attrs = &done["data"]["attributes"];
    assert_eq!(attrs["subStatus"], "COMPLETED_WITH_FAILURE");
    assert!(attrs["completedDateTime"].is_string());
    let url = attrs["downloadUrl"].as_str().unwrap();
    assert!(url.contains("ABM-ActivityLog_"));
    let csv = api
        .http
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let expected_header =
        std::fs::read_to_string(fixtures_dir().join("activity-log.example.csv")).unwrap();
    assert_eq!(csv.lines().next(), expected_header.lines().next());
    assert!(
        csv.contains(&format!("{},", serials[0]))
            && csv.lines().filter(|l| l.contains(",SUCCESS,")).count() == 2,
        "{csv}"
    );
    assert!(
        csv.contains("F2KZ3N4G5HD3,") && csv.contains("FAILED,Device not found in organization"),
        "{csv}"
    );

    let stats = api.stats().await;
    assert_eq!(stats["activitiesPerSerial"]["F2KZ3N4G5HD3"], 1);

    let forged = url.replace("Signature=", "Signature=0");
    assert_eq!(api.http.get(forged).send().await.unwrap().status(), 403);
}

#[tokio::test]
async fn activity_requests_are_validated() {
    let api = start(
        Simulator::builder()
            .seed(9)
            .devices(50)
            .behaviour(Behaviour {
                max_devices_per_activity: 3,
                ..Behaviour::default()
            }),
    )
    .await;
    let server = first_mdm_server(&api).await;
    let serials = unassigned_serials(&api, 4).await;
    let (status, body) = api
        .send(
            Method::POST,
            "/v1/orgDeviceActivities",
            &assign_body("ASSIGN_DEVICES", Some("0000"), &serials[..1]),
        )
        .await;
    assert_eq!(status, 409);
    apple_error(&body, 409);
    let (status, _) = api
        .send(
            Method::POST,
            "/v1/orgDeviceActivities",
            &assign_body("ASSIGN_DEVICES", Some(&server), &serials),
        )
        .await;
    assert_eq!(status, 422, "over the per-activity maximum");
    let (status, _) = api
        .send(
            Method::POST,
            "/v1/orgDeviceActivities",
            &assign_body("ASSIGN_DEVICES", None, &serials[..1]),
        )
        .await;
    assert_eq!(status, 422, "assign needs a server");
    let (status, _) = api
        .send(
            Method::POST,
            "/v1/orgDeviceActivities",
            &assign_body("REBOOT_DEVICES", None, &serials[..1]),
        )
        .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn assignment_becomes_visible_only_after_the_lag() {
    let behaviour = Behaviour {
        activity_phase_secs: [0.0, 0.0, 0.0],
        assignment_lag_secs: 1.5,
        ..Behaviour::default()
    };
    let api = start(
        Simulator::builder()
            .seed(10)
            .devices(100)
            .behaviour(behaviour),
    )
    .await;
    let server = first_mdm_server(&api).await;
    let serial = unassigned_serials(&api, 1).await.remove(0);
    let (status, created) = api
        .send(
            Method::POST,
            "/v1/orgDeviceActivities",
            &assign_body(
                "ASSIGN_DEVICES",
                Some(&server),
                std::slice::from_ref(&serial),
            ),
        )
        .await;
    assert_eq!(status, 201);
    let done = poll_activity(&api, created["data"]["id"].as_str().unwrap()).await;
    assert_eq!(
        done["data"]["attributes"]["subStatus"],
        "COMPLETED_WITH_SUCCESS"
    );
    let (_, device) = api.get(&format!("/v1/orgDevices/{serial}")).await;
    assert_eq!(
        device["data"]["attributes"]["status"], "UNASSIGNED",
        "completed but still within the lag"
    );
    let (_, linkage) = api
        .get(&format!(
            "/v1/orgDevices/{serial}/relationships/assignedServer"
        ))
        .await;
    assert!(linkage["data"].is_null());

    tokio::time::sleep(Duration::from_millis(1700)).await;
    let (_, device) = api.get(&format!("/v1/orgDevices/{serial}")).await;
    assert_eq!(device["data"]["attributes"]["status"], "ASSIGNED");
    let (_, linkage) = api
        .get(&format!(
            "/v1/orgDevices/{serial}/relationships/assignedServer"
        ))
        .await;
    assert_eq!(linkage["data"]["id"], json!(server));
    let mut found = false;
    let mut url = api.url(&format!(
        "/v1/mdmServers/{server}/relationships/devices?limit=1000"
    ));
    loop {
        let (_, page) = api.get_url(&url).await.unwrap();
        found |= page["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == json!(serial));
        match page["links"]["next"].as_str() {
            Some(n) => url = n.to_string(),
            None => break,
        }
    }
    assert!(found, "device listed under its new server");
    let (_, events) = api.get(&format!("/v1/auditEvents?filter[startTimestamp]=2000-01-01T00:00:00Z&filter[endTimestamp]=2100-01-01T00:00:00Z&filter[subjectId]={serial}&filter[type]=DEVICE_ASSIGNED_TO_SERVER")).await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1, "{events}");
}

#[tokio::test]
async fn release_removes_the_device_from_lists_but_single_get_shows_the_date() {
    let behaviour = Behaviour {
        activity_phase_secs: [0.0, 0.0, 0.0],
        assignment_lag_secs: 0.0,
        ..Behaviour::default()
    };
    let api = start(
        Simulator::builder()
            .seed(11)
            .devices(30)
            .behaviour(behaviour),
    )
    .await;
    let serial = unassigned_serials(&api, 1).await.remove(0);
    let (status, created) = api
        .send(
            Method::POST,
            "/v1/orgDeviceActivities",
            &assign_body("RELEASE_DEVICES", None, std::slice::from_ref(&serial)),
        )
        .await;
    assert_eq!(status, 201);
    poll_activity(&api, created["data"]["id"].as_str().unwrap()).await;
    let (_, device) = api.get(&format!("/v1/orgDevices/{serial}")).await;
    assert!(device["data"]["attributes"]["releasedFromOrgDateTime"].is_string());
    let (_, list) = api.get("/v1/orgDevices?limit=1000").await;
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["id"] != json!(serial))
    );
}

#[tokio::test]
async fn deleting_a_service_with_devices_conflicts() {
    let api = start(Simulator::builder().seed(12).devices(300)).await;
    let server = first_mdm_server(&api).await;
    let (status, body) = api
        .send(
            Method::DELETE,
            &format!("/v1/mdmServers/{server}"),
            &Value::Null,
        )
        .await;
    assert_eq!(status, 409);
    apple_error(&body, 409);
    let create = json!({ "data": { "type": "mdmServers", "attributes": { "serverName": "Empty", "serverCertificate": { "name": "a.cer", "data": "MIIDXTCCAkWgAwIBAgIJALx" } } } });
    let (status, created) = api.send(Method::POST, "/v1/mdmServers", &create).await;
    assert_eq!(status, 201);
    assert_eq!(created["data"]["attributes"]["deviceCount"], 0);
    let id = created["data"]["id"].as_str().unwrap();
    assert_eq!(
        api.send(Method::POST, "/v1/mdmServers", &create).await.0,
        409,
        "duplicate name"
    );
    assert_eq!(
        api.send(
            Method::DELETE,
            &format!("/v1/mdmServers/{id}"),
            &Value::Null
        )
        .await
        .0,
        204
    );
    assert_eq!(api.get(&format!("/v1/mdmServers/{id}")).await.0, 404);
}

// ----- budgets and connection faults -----

#[tokio::test]
async fn get_budget_answers_429_with_retry_after_and_can_omit_it() {
    let faults = FaultConfig {
        get_budget: Some(Budget {
            requests: 3,
            window_secs: 120.0,
        }),
        post_budget: Some(Budget {
            requests: 1,
            window_secs: 3600.0,
        }),
        ..FaultConfig::default()
    };
    let api = start(
        Simulator::builder()
            .seed(13)
            .devices(10)
            .time_scale(60.0)
            .faults(faults.clone()),
    )
    .await;
    for _ in 0..3 {
        assert_eq!(api.get("/v1/mdmServers").await.0, 200);
    }
    let r = api
        .http
        .get(api.url("/v1/mdmServers"))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=2).contains(&retry),
        "120 Apple seconds at scale 60 is two real seconds, got {retry}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(apple_error(&body, 429)["code"], "RATE_LIMIT_EXCEEDED");
    // Asking again at once undercuts the Retry-After just sent; the stats count it.
    assert_eq!(api.stats().await["retryAfterUndercut"], 0);
    assert_eq!(api.get("/v1/mdmServers").await.0, 429);
    assert_eq!(api.stats().await["retryAfterUndercut"], 1);

    // POSTs have their own budget.
    let bad = json!({ "data": { "type": "blueprints", "attributes": { "name": "" } } });
    assert_eq!(api.send(Method::POST, "/v1/blueprints", &bad).await.0, 422);
    assert_eq!(api.send(Method::POST, "/v1/blueprints", &bad).await.0, 429);

    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(api.get("/v1/mdmServers").await.0, 200, "a new window");
    assert_eq!(
        api.stats().await["retryAfterUndercut"],
        1,
        "waiting out Retry-After is no undercut, nor is a POST after a GET's 429"
    );

    let silent = FaultConfig {
        omit_retry_after: true,
        ..faults
    };
    api.http
        .post(api.url("/_sim/faults"))
        .json(&silent)
        .send()
        .await
        .unwrap();
    for _ in 0..3 {
        api.get("/v1/mdmServers").await;
    }
    let r = api
        .http
        .get(api.url("/v1/mdmServers"))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_none());
    assert!(api.stats().await["rateLimited"].as_u64().unwrap() >= 3);
}

#[tokio::test]
async fn token_mint_budget_answers_429() {
    let faults = FaultConfig {
        token_budget: Some(Budget {
            requests: 2,
            window_secs: 3600.0,
        }),
        ..FaultConfig::default()
    };
    let sim = Simulator::builder()
        .seed(14)
        .devices(5)
        .faults(faults)
        .spawn()
        .await
        .unwrap();
    let http = reqwest::Client::new();
    for expected in [200, 200, 429] {
        let r = http
            .post(sim.token_url())
            .form(&form(&sim, &assertion(&sim), "business.api"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), expected);
    }
    assert_eq!(sim.stats().tokens_minted, 2);
}

/// Pages through all devices, retrying a failed page from its saved cursor.
async fn page_all_with_resume(api: &Api, first: &str) -> (Vec<String>, usize) {
    let mut serials = Vec::new();
    let mut failures = 0;
    let mut url = api.url(first);
    'pages: loop {
        for _attempt in 0..3 {
            match api.get_url(&url).await {
                Ok((200, page)) => {
                    serials.extend(
                        page["data"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|d| d["id"].as_str().unwrap().to_string()),
                    );
                    match page["links"]["next"].as_str() {
                        Some(n) => {
                            url = n.to_string();
                            continue 'pages;
                        }
                        None => break 'pages,
                    }
                }
                Ok((status, body)) => panic!("unexpected {status}: {body}"),
                Err(_) => failures += 1,
            }
        }
        panic!("page failed three times: {url}");
    }
    (serials, failures)
}

#[tokio::test]
async fn connection_is_closed_after_n_pages_and_the_client_resumes_from_its_cursor() {
    let faults = FaultConfig {
        close_connection_after_pages: Some(2),
        close_mode: CloseMode::Graceful,
        ..FaultConfig::default()
    };
    let api = start(Simulator::builder().seed(15).devices(1_000).faults(faults)).await;
    let (serials, failures) = page_all_with_resume(&api, "/v1/orgDevices?limit=100").await;
    assert_eq!(
        failures, 0,
        "graceful close is transparent to a client that honours Connection: close"
    );
    assert_eq!(serials.len(), 1_000);
    assert!(api.stats().await["connectionsClosed"].as_u64().unwrap() >= 4);

    let abort = FaultConfig {
        close_connection_after_pages: Some(2),
        close_mode: CloseMode::Abort,
        ..FaultConfig::default()
    };
    api.sim.set_faults(abort);
    let (serials, failures) = page_all_with_resume(&api, "/v1/orgDevices?limit=100").await;
    assert!(
        failures >= 2,
        "aborted connections surface as errors ({failures})"
    );
    let unique: HashSet<_> = serials.iter().collect();
    assert_eq!(
        (serials.len(), unique.len()),
        (1_000, 1_000),
        "resuming from the cursor neither skips nor repeats"
    );
    let stats = api.stats().await;
    assert!(stats["connectionsReset"].as_u64().unwrap() >= 2);
    assert!(
        stats["pagesFetchedTwice"].as_u64().unwrap() >= 1,
        "retried pages are counted per cursor"
    );
}

#[tokio::test]
async fn echoed_cursor_is_returned_once() {
    let faults = FaultConfig {
        echo_cursor_once: true,
        ..FaultConfig::default()
    };
    let api = start(Simulator::builder().seed(16).devices(50).faults(faults)).await;
    let (_, p1) = api.get("/v1/orgDevices?limit=10").await;
    let c1 = p1["meta"]["paging"]["nextCursor"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, p2) = api
        .get(&format!("/v1/orgDevices?limit=10&cursor={c1}"))
        .await;
    assert_eq!(
        p2["meta"]["paging"]["nextCursor"],
        json!(c1),
        "the fault echoes the request cursor"
    );
    let (_, p2b) = api
        .get(&format!("/v1/orgDevices?limit=10&cursor={c1}"))
        .await;
    assert_ne!(p2b["meta"]["paging"]["nextCursor"], json!(c1), "only once");
}

#[tokio::test]
async fn error_rate_faults_are_deterministic_for_a_seed() {
    async fn run() -> Vec<u16> {
        let faults = FaultConfig {
            error_rate: 0.3,
            seed: Some(99),
            ..FaultConfig::default()
        };
        let api = start(Simulator::builder().seed(17).devices(5).faults(faults)).await;
        let mut out = Vec::new();
        for _ in 0..30 {
            out.push(api.get("/v1/mdmServers").await.0);
        }
        out
    }
    let a = run().await;
    assert_eq!(a, run().await);
    assert!(a.iter().any(|s| *s >= 500) && a.contains(&200), "{a:?}");
}

// ----- blueprints and configurations -----

#[tokio::test]
async fn blueprint_create_needs_a_name_content_and_members() {
    let api = start(Simulator::builder().seed(18).devices(20)).await;
    let (_, users) = api.get("/v1/users?limit=2").await;
    let user = users["data"][0]["id"].as_str().unwrap().to_string();
    let body = |name: &str, rels: Value| json!({ "data": { "type": "blueprints", "attributes": { "name": name, "description": "d" }, "relationships": rels } });
    let apps = json!({ "data": [{ "type": "apps", "id": "361309726" }, { "type": "apps", "id": "does-not-exist" }] });
    let users_rel = json!({ "data": [{ "type": "users", "id": user }] });

    assert_eq!(
        api.send(
            Method::POST,
            "/v1/blueprints",
            &body("Only content", json!({ "apps": apps }))
        )
        .await
        .0,
        422
    );
    assert_eq!(
        api.send(
            Method::POST,
            "/v1/blueprints",
            &body("Only members", json!({ "users": users_rel }))
        )
        .await
        .0,
        422
    );
    assert_eq!(
        api.send(
            Method::POST,
            "/v1/blueprints",
            &body("  ", json!({ "apps": apps, "users": users_rel }))
        )
        .await
        .0,
        422
    );
    let wrong_type =
        json!({ "apps": { "data": [{ "type": "users", "id": user }] }, "users": users_rel });
    assert_eq!(
        api.send(Method::POST, "/v1/blueprints", &body("Typo", wrong_type))
            .await
            .0,
        409
    );

    let (status, created) = api
        .send(
            Method::POST,
            "/v1/blueprints",
            &body("Sales", json!({ "apps": apps, "users": users_rel })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert!(
        created["data"]["relationships"]["apps"]["links"]["include"].is_string(),
        "POST responses use include links"
    );
    let id = created["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        api.send(
            Method::POST,
            "/v1/blueprints",
            &body("Sales", json!({ "apps": apps, "users": users_rel }))
        )
        .await
        .0,
        409
    );

    let (_, linkage) = api
        .get(&format!("/v1/blueprints/{id}/relationships/apps"))
        .await;
    assert_eq!(
        linkage["data"],
        json!([{ "type": "apps", "id": "361309726" }]),
        "unknown ids are dropped silently"
    );

    let add = json!({ "data": [{ "type": "apps", "id": "409201541" }] });
    assert_eq!(
        api.send(
            Method::POST,
            &format!("/v1/blueprints/{id}/relationships/apps"),
            &add
        )
        .await
        .0,
        204
    );
    assert_eq!(
        api.send(
            Method::POST,
            &format!("/v1/blueprints/{id}/relationships/apps"),
            &add
        )
        .await
        .0,
        204,
        "idempotent"
    );
    let (_, linkage) = api
        .get(&format!("/v1/blueprints/{id}/relationships/apps"))
        .await;
    assert_eq!(linkage["data"].as_array().unwrap().len(), 2);
    assert_eq!(
        api.send(
            Method::DELETE,
            &format!("/v1/blueprints/{id}/relationships/apps"),
            &add
        )
        .await
        .0,
        204
    );
    let (_, linkage) = api
        .get(&format!("/v1/blueprints/{id}/relationships/apps"))
        .await;
    assert_eq!(linkage["data"].as_array().unwrap().len(), 1);

    let patch = json!({ "data": { "type": "blueprints", "id": id, "attributes": { "description": "new" }, "relationships": { "apps": { "data": [{ "type": "apps", "id": "409201541" }] } } } });
    let (status, patched) = api
        .send(Method::PATCH, &format!("/v1/blueprints/{id}"), &patch)
        .await;
    assert_eq!(status, 200);
    assert_eq!(patched["data"]["attributes"]["description"], "new");
    assert_eq!(
        patched["data"]["attributes"]["name"], "Sales",
        "PATCH keeps omitted attributes"
    );
    let (_, inc) = api.get(&format!("/v1/blueprints/{id}?include=apps")).await;
    assert_eq!(
        inc["data"]["relationships"]["apps"]["data"],
        json!([{ "type": "apps", "id": "409201541" }]),
        "PATCH replaces the set"
    );
    assert_eq!(inc["included"][0]["attributes"]["name"], "Numbers");
    let (status, _) = api
        .get(&format!("/v1/blueprints/{id}?include=widgets"))
        .await;
    assert_eq!(status, 400);
    let mismatched = json!({ "data": { "type": "blueprints", "id": "other", "attributes": {} } });
    assert_eq!(
        api.send(Method::PATCH, &format!("/v1/blueprints/{id}"), &mismatched)
            .await
            .0,
        409
    );
    assert_eq!(
        api.send(
            Method::DELETE,
            &format!("/v1/blueprints/{id}"),
            &Value::Null
        )
        .await
        .0,
        204
    );
    assert_eq!(api.get(&format!("/v1/blueprints/{id}")).await.0, 404);
}

#[tokio::test]
async fn configuration_profiles_are_validated_as_plists() {
    let api = start(Simulator::builder().seed(19).devices(5)).await;
    let good = fixture("create-a-configuration.request.json");
    let with_profile = |profile: &str| {
        let mut b = good.clone();
        b["data"]["attributes"]["customSettingsValues"]["configurationProfile"] = json!(profile);
        b
    };
    let (status, created) = api.send(Method::POST, "/v1/configurations", &good).await;
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        created["data"]["attributes"]["customSettingsValues"]["filename"],
        "Airplay.mobileconfig"
    );

    for bad in [
        "<plist><dict><key>PayloadContent</key></plist>",
        "not xml at all!",
        "<plist version=\"1.0\"><dict><key>PayloadContent</key><array/></dict></plist>",
        "<plist><dict><key>Other</key><string/></dict></plist>",
    ] {
        let (status, body) = api
            .send(Method::POST, "/v1/configurations", &with_profile(bad))
            .await;
        assert_eq!(status, 422, "{bad}");
        assert!(
            apple_error(&body, 422)["source"]["pointer"]
                .as_str()
                .unwrap()
                .ends_with("configurationProfile")
        );
    }
    let mut other_type = good.clone();
    other_type["data"]["attributes"]["type"] = json!("WIFI");
    assert_eq!(
        api.send(Method::POST, "/v1/configurations", &other_type)
            .await
            .0,
        409
    );
    let mut bad_name = good.clone();
    bad_name["data"]["attributes"]["customSettingsValues"]["filename"] = json!("profile.xml");
    assert_eq!(
        api.send(Method::POST, "/v1/configurations", &bad_name)
            .await
            .0,
        422
    );

    let (_, list) = api.get("/v1/configurations?limit=1000").await;
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["attributes"]["customSettingsValues"].is_null()),
        "lists never carry payloads"
    );
    let (_, one) = api.get(&format!("/v1/configurations/{id}")).await;
    assert!(
        one["data"]["attributes"]["customSettingsValues"]["configurationProfile"]
            .as_str()
            .unwrap()
            .contains("PayloadContent")
    );
    let patch = json!({ "data": { "type": "configurations", "id": id, "attributes": { "name": "Renamed" } } });
    let (status, patched) = api
        .send(Method::PATCH, &format!("/v1/configurations/{id}"), &patch)
        .await;
    assert_eq!(status, 200);
    assert_eq!(patched["data"]["attributes"]["name"], "Renamed");
    let empty_patch = json!({ "data": { "type": "configurations", "id": id, "attributes": {} } });
    assert_eq!(
        api.send(
            Method::PATCH,
            &format!("/v1/configurations/{id}"),
            &empty_patch
        )
        .await
        .0,
        422
    );
    assert_eq!(
        api.send(
            Method::DELETE,
            &format!("/v1/configurations/{id}"),
            &Value::Null
        )
        .await
        .0,
        204
    );
}

// ----- generator -----

#[tokio::test]
async fn the_same_seed_generates_the_same_org() {
    async fn dump(seed: u64) -> (Vec<Value>, Value) {
        let api = start(Simulator::builder().seed(seed).devices(3_000)).await;
        let (_, page) = api.get("/v1/orgDevices?limit=50").await;
        let page =
            serde_json::from_str(&page["data"].to_string().replace(api.sim.base_url(), "BASE"))
                .unwrap();
        (api.truth().await, page)
    }
    let a = dump(21).await;
    let b = dump(21).await;
    assert_eq!(a, b);
    let c = dump(22).await;
    assert_ne!(a.0, c.0);
    let families: HashSet<&str> =
        a.0.iter()
            .map(|d| d["productFamily"].as_str().unwrap())
            .collect();
    assert!(families.len() >= 5, "{families:?}");
    let unassigned = a.0.iter().filter(|d| d["status"] == "UNASSIGNED").count();
    assert!(
        unassigned > 100 && unassigned < 1_000,
        "some devices are unassigned: {unassigned}"
    );
}

#[test]
fn device_store_stays_small_per_device() {
    let f = simulator::generated_footprint(5, 200_000);
    assert_eq!(f.devices, 200_000);
    assert!(
        f.device_bytes <= 64,
        "device record is {} bytes",
        f.device_bytes
    );
    assert!(f.bytes_per_device() <= 160, "{f:?}");
    assert!(
        f.bytes_per_device() * 1_000_000 < 256 * 1024 * 1024,
        "a million devices must stay well under 1 GB: {f:?}"
    );
}

#[tokio::test]
async fn mutate_hook_changes_the_org_for_incremental_sync_tests() {
    let api = start(Simulator::builder().seed(23).devices(10)).await;
    let server = first_mdm_server(&api).await;
    let r: Value = api
        .http
        .post(api.url("/_sim/mutate"))
        .json(&json!({ "op": "addDevices", "count": 3, "serverId": server }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let added: Vec<String> = r["serials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert_eq!(added.len(), 3);
    let (_, d) = api.get(&format!("/v1/orgDevices/{}", added[0])).await;
    assert_eq!(d["data"]["attributes"]["status"], "ASSIGNED");
    api.http.post(api.url("/_sim/mutate")).json(&json!({ "op": "setAttributes", "serials": [added[0]], "attributes": { "color": "ORANGE" } })).send().await.unwrap();
    let (_, d) = api.get(&format!("/v1/orgDevices/{}", added[0])).await;
    assert_eq!(d["data"]["attributes"]["color"], "ORANGE");
    api.http
        .post(api.url("/_sim/mutate"))
        .json(&json!({ "op": "reassignDevices", "serials": [added[1]], "serverId": null }))
        .send()
        .await
        .unwrap();
    let (_, d) = api.get(&format!("/v1/orgDevices/{}", added[1])).await;
    assert_eq!(d["data"]["attributes"]["status"], "UNASSIGNED");
    let r: Value = api
        .http
        .post(api.url("/_sim/mutate"))
        .json(&json!({ "op": "releaseDevices", "serials": [added[2], "NOPE"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["unknown"], json!(["NOPE"]));
    let (_, list) = api.get("/v1/orgDevices?limit=1000").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 12);
}

#[tokio::test]
async fn school_orgs_use_school_scope_and_hide_business_only_paths() {
    let sim = Simulator::builder()
        .seed(24)
        .devices(10)
        .school()
        .spawn()
        .await
        .unwrap();
    assert!(sim.credentials().client_id.starts_with("SCHOOLAPI."));
    let http = reqwest::Client::new();
    let r = http
        .post(sim.token_url())
        .form(&form(&sim, &assertion(&sim), "school.api"))
        .send()
        .await
        .unwrap();
    let token = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = http
        .get(format!("{}/v1/users", sim.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http
        .get(format!("{}/v1/orgDevices", sim.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

// ----- document shapes vs fixtures -----

/// Compares the key sets of two documents recursively (objects: same keys; arrays: first
/// elements). `allow` lists keys that may be present on one side only; an entry ending in
/// `*` matches by prefix. Paging members (`next`, `nextCursor`) depend on data and are
/// always allowed.
fn shape_diff(ours: &Value, theirs: &Value, path: &str, allow: &[&str], out: &mut Vec<String>) {
    let allowed = |k: &str| {
        matches!(k, "next" | "nextCursor")
            || allow
                .iter()
                .any(|a| a.strip_suffix('*').map_or(*a == k, |p| k.starts_with(p)))
    };
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            for k in a.keys().filter(|k| !b.contains_key(*k) && !allowed(k)) {
                out.push(format!("{path}.{k}: only in the simulator"));
            }
            for k in b.keys().filter(|k| !a.contains_key(*k) && !allowed(k)) {
                out.push(format!("{path}.{k}: only in the fixture"));
            }
            for (k, v) in a {
                if let Some(w) = b.get(k) {
                    shape_diff(v, w, &format!("{path}.{k}"), allow, out);
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if !a.is_empty() && !b.is_empty() => {
            shape_diff(&a[0], &b[0], &format!("{path}[0]"), allow, out)
        }
        _ => {}
    }
}

const SERVER_EXTRAS: &[&str] = &[
    "enableMdmDisownFlag",
    "defaultProductFamilies",
    "status",
    "deviceCount",
    "lastConnectedDateTime",
    "lastConnectedIp",
];

#[tokio::test]
async fn documents_have_the_same_keys_as_the_fixtures() {
    let behaviour = Behaviour {
        activity_phase_secs: [0.0, 0.0, 0.0],
        assignment_lag_secs: 0.0,
        ..Behaviour::default()
    };
    let api = start(
        Simulator::builder()
            .seed(30)
            .from_seed_dataset(fixtures_dir().join("seed-dataset.json"))
            .behaviour(behaviour),
    )
    .await;
    // A generated device (not one whose attributes come verbatim from the dataset).
    let added: Value = api
        .http
        .post(api.url("/_sim/mutate"))
        .json(&json!({ "op": "addDevices", "count": 1 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let generated = format!("/v1/orgDevices/{}", added["serials"][0].as_str().unwrap());
    let server_devices_extra: Vec<&str> = [SERVER_EXTRAS, &["links"]].concat();
    let device_extras = [
        "wifiMacAddress",
        "bluetoothMacAddress",
        "ethernetMacAddress",
        "isMdmMigrationCapable",
        "mdmMigrationStatus",
        "mdmMigrationDeadlineDateTime",
        "purchaseSourceId",
        "purchaseSourceUid",
    ];
    let gets: Vec<(&str, &str, &[&str])> = vec![
        (
            "/v1/orgDevices?limit=1",
            "get-org-devices.json",
            &device_extras,
        ),
        (&generated, "get-orgdevice-information.full.json", &[]),
        (
            "/v1/orgDevices/C39J8W1H3VG5",
            "get-orgdevice-information.full.json",
            &[],
        ),
        (
            "/v1/orgDevices/XABC123X0ABC123X0/appleCareCoverage",
            "get-all-applecare-coverage-for-an-orgdevice.json",
            &[],
        ),
        (
            "/v1/orgDevices/C39J8W1H3VG5/activationLockStatus",
            "get-the-activation-lock-status-information-for-an-orgdevice.json",
            &[],
        ),
        (
            "/v1/orgDevices/DVVS36G1YD3JKQNI/relationships/assignedServer",
            "get-the-assigned-server-id-for-an-orgdevice.json",
            &[],
        ),
        (
            "/v1/orgDevices/DVVS36G1YD3JKQNI/assignedServer",
            "get-the-assigned-server-information-for-an-orgdevice.json",
            &server_devices_extra,
        ),
        ("/v1/mdmDevices", "get-apple-mdm-enrolled-devices.json", &[]),
        (
            "/v1/mdmDevices/H9KLM2N3P4Q5/details",
            "get-the-details-for-apple-mdm-enrolled-device.json",
            &[],
        ),
        (
            "/v1/mdmServers",
            "get-mdm-servers.json",
            &server_devices_extra,
        ),
        (
            "/v1/mdmServers/1F97349736CF4614A94F624E705841AD",
            "get-mdmserver-information.json",
            &[],
        ),
        (
            "/v1/mdmServers/1F97349736CF4614A94F624E705841AD/relationships/devices",
            "get-all-device-ids-for-an-mdmserver.json",
            &[],
        ),
        ("/v1/users", "get-users.json", &[]),
        ("/v1/users/1234567890", "get-user-information.json", &[]),
        ("/v1/userGroups", "get-user-groups.json", &[]),
        (
            "/v1/userGroups/UG123456",
            "get-usergroup-information.json",
            &[],
        ),
        (
            "/v1/userGroups/UG123456/relationships/users",
            "get-all-user-ids-for-a-user-group.json",
            &[],
        ),
        (
            "/v1/organizationalUnits",
            "get-organizational-units.json",
            &[],
        ),
        (
            "/v1/organizationalUnits/OU789012",
            "get-organizationalunit-information.json",
            &[],
        ),
        (
            "/v1/organizationalUnits/OU789012/relationships/users",
            "get-all-user-ids-for-an-organizationalunit.json",
            &[],
        ),
        ("/v1/apps", "get-apps.json", &[]),
        ("/v1/apps/361309726", "get-app-information.json", &[]),
        ("/v1/packages", "get-packages.json", &[]),
        (
            "/v1/packages/pkg-12345",
            "get-package-information.json",
            &[],
        ),
        ("/v1/blueprints", "get-blueprints.json", &[]),
        (
            "/v1/blueprints/blueprint-12345",
            "get-blueprint-information.json",
            &[],
        ),
        (
            "/v1/blueprints/blueprint-12345?include=apps",
            "get-blueprint-information.include-apps.json",
            &[],
        ),
        (
            "/v1/blueprints/blueprint-12345/relationships/apps",
            "get-all-app-ids-for-a-blueprint.json",
            &[],
        ),
        ("/v1/configurations", "get-configurations.json", &[]),
        (
            "/v1/configurations/config-12345",
            "get-configuration-information.json",
            &[],
        ),
        (
            "/v1/auditEvents?filter[startTimestamp]=2000-01-01T00:00:00Z&filter[endTimestamp]=2100-01-01T00:00:00Z",
            "get-audit-events.json",
            &[],
        ),
        ("/v1/orgDevices?limit=1001", "error-400-parameter.json", &[]),
        ("/v1/orgDevices/NOPE", "error-404-not-found.json", &[]),
    ];
    let mut problems = Vec::new();
    for (path, name, allow) in gets {
        let (_, ours) = api.get(path).await;
        shape_diff(&ours, &fixture(name), name, allow, &mut problems);
    }

    let writes: Vec<(Method, &str, &str, &str, &[&str])> = vec![
        (
            Method::POST,
            "/v1/mdmServers",
            "create-an-mdmserver.request.json",
            "create-an-mdmserver.json",
            &[
                "defaultProductFamilies",
                "lastConnectedDateTime",
                "lastConnectedIp",
            ],
        ),
        (
            Method::PATCH,
            "/v1/mdmServers/2A87349736CF4614A94F624E705841BE",
            "update-an-mdmserver.request.json",
            "update-an-mdmserver.json",
            &["lastConnectedDateTime", "lastConnectedIp"],
        ),
        (
            Method::POST,
            "/v1/blueprints",
            "create-a-blueprint.request.json",
            "create-a-blueprint.json",
            &[],
        ),
        (
            Method::PATCH,
            "/v1/blueprints/blueprint-12345",
            "update-a-blueprint.request.json",
            "update-a-blueprint.json",
            &[],
        ),
        (
            Method::POST,
            "/v1/configurations",
            "create-a-configuration.request.json",
            "create-a-configuration.json",
            &[],
        ),
        (
            Method::PATCH,
            "/v1/configurations/config-12345",
            "update-a-configuration.request.json",
            "update-a-configuration.json",
            &[],
        ),
        (
            Method::POST,
            "/v1/orgDeviceActivities",
            "create-an-orgdeviceactivity.request.assign.json",
            "create-an-orgdeviceactivity.json",
            &[],
        ),
    ];
    let mut activity = None;
    for (method, path, request, response, allow) in writes {
        let mut body = fixture(request);
        if request == "create-an-mdmserver.request.json" {
            body["data"]["attributes"]["serverName"] = json!("Marketing Team MDM 2");
        }
        if request == "update-a-configuration.request.json" {
            // The example's profile is a truncated placeholder ("<?xml ...?>...").
            body["data"]["attributes"]["customSettingsValues"]["configurationProfile"] =
                json!(generated_profile());
        }
        if request == "create-a-blueprint.request.json" {
            // The example's user ids are not in the seed org and would be dropped, leaving no member.
            body["data"]["relationships"]["users"]["data"][0]["id"] = json!("1234567890");
        }
        let (status, ours) = api.send(method, path, &body).await;
        assert!(status == 200 || status == 201, "{path}: {status} {ours}");
        shape_diff(&ours, &fixture(response), response, allow, &mut problems);
        if path.ends_with("orgDeviceActivities") {
            activity = ours["data"]["id"].as_str().map(String::from);
        }
    }
    let done = poll_activity(&api, &activity.unwrap()).await;
    shape_diff(
        &done,
        &fixture("get-orgdeviceactivity-information.json"),
        "get-orgdeviceactivity-information.json",
        &[],
        &mut problems,
    );

    let (_, unauthorized) = {
        let r = api
            .http
            .get(api.url("/v1/orgDevices"))
            .send()
            .await
            .unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    };
    shape_diff(
        &unauthorized,
        &fixture("error-401-unauthorized.json"),
        "error-401-unauthorized.json",
        &[],
        &mut problems,
    );
    let (_, conflict) = api
        .send(
            Method::POST,
            "/v1/orgDeviceActivities",
            &assign_body(
                "ASSIGN_DEVICES",
                Some("1F97349736CF4614A94F624E705841AE"),
                &["C39J8W1H3VG5".into()],
            ),
        )
        .await;
    shape_diff(
        &conflict,
        &fixture("error-409-conflict.json"),
        "error-409-conflict.json",
        &[],
        &mut problems,
    );
    let mut bad_profile = fixture("create-a-configuration.request.json");
    bad_profile["data"]["attributes"]["customSettingsValues"]["configurationProfile"] =
        json!("<plist/>");
    let (_, unprocessable) = api
        .send(Method::POST, "/v1/configurations", &bad_profile)
        .await;
    shape_diff(
        &unprocessable,
        &fixture("error-422-unprocessable.json"),
        "error-422-unprocessable.json",
        &[],
        &mut problems,
    );

    assert!(
        problems.is_empty(),
        "shape differences:\n{}",
        problems.join("\n")
    );
}

#[tokio::test]
async fn activities_older_than_the_retention_are_not_found() {
    // One real second is 30 Apple days.
    let api = start(
        Simulator::builder()
            .seed(31)
            .devices(20)
            .time_scale(30.0 * 86_400.0),
    )
    .await;
    let serial = unassigned_serials(&api, 1).await.remove(0);
    let (status, created) = api
        .send(
            Method::POST,
            "/v1/orgDeviceActivities",
            &assign_body("RELEASE_DEVICES", None, &[serial]),
        )
        .await;
    assert_eq!(status, 201);
    let path = format!(
        "/v1/orgDeviceActivities/{}",
        created["data"]["id"].as_str().unwrap()
    );
    assert_eq!(api.get(&path).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, body) = api.get(&path).await;
    assert_eq!(status, 404);
    apple_error(&body, 404);
}

#[tokio::test]
async fn reset_faults_cut_responses_and_latency_slows_them() {
    let faults = FaultConfig {
        reset_rate: 1.0,
        ..FaultConfig::default()
    };
    let api = start(Simulator::builder().seed(32).devices(50).faults(faults)).await;
    assert!(
        api.get_url(&api.url("/v1/orgDevices")).await.is_err(),
        "the body is cut off"
    );
    api.sim.set_faults(FaultConfig {
        latency_ms: 150,
        ..FaultConfig::default()
    });
    let t = std::time::Instant::now();
    assert_eq!(api.get("/v1/mdmServers").await.0, 200);
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert!(api.sim.stats().connections_reset >= 1);
}

#[tokio::test]
async fn migration_deadline_activities_validate_the_deadline_and_mark_devices() {
    let behaviour = Behaviour {
        activity_phase_secs: [0.0, 0.0, 0.0],
        assignment_lag_secs: 0.0,
        ..Behaviour::default()
    };
    let api = start(
        Simulator::builder()
            .seed(33)
            .devices(400)
            .behaviour(behaviour),
    )
    .await;
    let server = first_mdm_server(&api).await;
    let mut capable = None;
    let mut url = api.url("/v1/orgDevices?limit=1000");
    while capable.is_none() {
        let (_, page) = api.get_url(&url).await.unwrap();
        capable = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| {
                d["attributes"]["isMdmMigrationCapable"] == true
                    && d["attributes"]["mdmMigrationStatus"].is_null()
            })
            .map(|d| d["id"].as_str().unwrap().to_string());
        if capable.is_none() {
            url = page["links"]["next"]
                .as_str()
                .expect("a migration-capable device exists")
                .to_string();
        }
    }
    let serial = capable.unwrap();
    let body = |deadline: time::OffsetDateTime| {
        let mut b = assign_body(
            "ASSIGN_DEVICES_WITH_MDM_MIGRATION_DEADLINE",
            Some(&server),
            std::slice::from_ref(&serial),
        );
        let text = deadline
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        b["data"]["attributes"]["activityTypeMetadata"] =
            json!({ "mdmMigrationDeadlineDateTime": text });
        b
    };
    let now = time::OffsetDateTime::now_utc();
    let (status, err) = api
        .send(
            Method::POST,
            "/v1/orgDeviceActivities",
            &body(now + time::Duration::days(91)),
        )
        .await;
    assert_eq!(status, 409, "more than 90 days ahead");
    assert!(
        apple_error(&err, 409)["source"]["pointer"]
            .as_str()
            .unwrap()
            .ends_with("mdmMigrationDeadlineDateTime")
    );
    let (status, created) = api
        .send(
            Method::POST,
            "/v1/orgDeviceActivities",
            &body(now + time::Duration::days(30)),
        )
        .await;
    assert_eq!(status, 201);
    poll_activity(&api, created["data"]["id"].as_str().unwrap()).await;
    let (_, device) = api.get(&format!("/v1/orgDevices/{serial}")).await;
    assert_eq!(
        device["data"]["attributes"]["mdmMigrationStatus"],
        "REQUESTED"
    );
    assert!(device["data"]["attributes"]["mdmMigrationDeadlineDateTime"].is_string());
    assert_eq!(device["data"]["attributes"]["status"], "ASSIGNED");
}

#[tokio::test]
async fn audit_events_require_a_valid_time_range_and_honour_filters() {
    let api = start(Simulator::builder().seed(34).devices(300)).await;
    let (status, body) = api
        .get("/v1/auditEvents?filter[endTimestamp]=2100-01-01T00:00:00Z")
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        apple_error(&body, 400)["source"]["parameter"],
        "filter[startTimestamp]"
    );
    let (status, _) = api.get("/v1/auditEvents?filter[startTimestamp]=2026-02-01T00:00:00Z&filter[endTimestamp]=2026-01-01T00:00:00Z").await;
    assert_eq!(status, 400, "end before start");
    let (status, _) = api.get("/v1/auditEvents?filter[startTimestamp]=yesterday&filter[endTimestamp]=2026-01-01T00:00:00Z").await;
    assert_eq!(status, 400);
    let range =
        "filter[startTimestamp]=2000-01-01T00:00:00Z&filter[endTimestamp]=2100-01-01T00:00:00Z";
    let (status, all) = api
        .get(&format!("/v1/auditEvents?{range}&limit=1000"))
        .await;
    assert_eq!(status, 200);
    let events = all["data"].as_array().unwrap();
    assert!(
        !events.is_empty(),
        "the generator back-fills 90 days of history"
    );
    let times: Vec<&str> = events
        .iter()
        .map(|e| e["attributes"]["eventDateTime"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");
    let (_, typed) = api.get(&format!("/v1/auditEvents?{range}&filter[type]=ACCOUNT_ADDED&fields[auditEvents]=type,eventDataAccountAdded")).await;
    for e in typed["data"].as_array().unwrap() {
        assert_eq!(e["attributes"]["type"], "ACCOUNT_ADDED");
        assert_eq!(e["attributes"].as_object().unwrap().len(), 2);
    }
    let stats = api.stats().await;
    assert_eq!(stats["requests"]["GET /v1/auditEvents"]["400"], 3);
    assert_eq!(stats["requests"]["GET /v1/auditEvents"]["200"], 2);
}

#[tokio::test]
async fn apps_and_packages_are_forbidden_without_built_in_device_management() {
    let api = start(
        Simulator::builder()
            .seed(35)
            .devices(5)
            .builtin_device_management(false),
    )
    .await;
    for path in ["/v1/apps", "/v1/packages", "/v1/apps/361309726"] {
        let (status, body) = api.get(path).await;
        assert_eq!(status, 403, "{path}");
        assert_eq!(apple_error(&body, 403)["code"], "FORBIDDEN_ERROR");
    }
    assert_eq!(api.get("/v1/mdmDevices").await.0, 200);
}

#[tokio::test]
async fn extra_client_keys_can_be_registered_and_shutdown_stops_serving() {
    use p256::pkcs8::{EncodePublicKey, LineEnding};
    let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let pem = secret
        .public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let client = "BUSINESSAPI.27478e71-3bb0-4588-998c-182e2b405577";
    let sim = Simulator::builder()
        .seed(36)
        .devices(5)
        .client_key(client, "kid-1", pem.clone())
        .spawn()
        .await
        .unwrap();
    sim.register_key(client, "kid-2", &pem).unwrap();
    assert!(sim.register_key(client, "kid-3", "not a pem").is_err());
    let key = p256::ecdsa::SigningKey::from(secret);
    let http = reqwest::Client::new();
    for kid in ["kid-1", "kid-2"] {
        let t = now();
        let jwt = sign(
            &key,
            &json!({ "alg": "ES256", "kid": kid }),
            &json!({ "iss": client, "sub": client, "aud": sim.audience(), "iat": t, "exp": t + 60 }),
        );
        let mut f = form(&sim, &jwt, "business.api");
        f[1].1 = client.to_string();
        let r = http.post(sim.token_url()).form(&f).send().await.unwrap();
        assert_eq!(r.status(), 200, "{kid}");
    }
    let base = sim.base_url().to_string();
    sim.shutdown().await;
    assert!(
        reqwest::Client::new()
            .get(format!("{base}/_sim/stats"))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn fan_out_beyond_the_concurrency_limit_gets_streams_reset() {
    let faults = FaultConfig {
        max_concurrent_requests: Some(2),
        latency_ms: 200,
        ..FaultConfig::default()
    };
    let api = start(Simulator::builder().seed(37).devices(20).faults(faults)).await;
    let serials: Vec<String> = api
        .truth()
        .await
        .iter()
        .take(8)
        .map(|d| d["serialNumber"].as_str().unwrap().to_string())
        .collect();
    let urls: Vec<String> = serials
        .iter()
        .map(|s| api.url(&format!("/v1/orgDevices/{s}/appleCareCoverage")))
        .collect();
    let results = futures::future::join_all(urls.iter().map(|u| api.get_url(u))).await;
    let ok = results.iter().filter(|r| matches!(r, Ok((200, _)))).count();
    assert!((2..8).contains(&ok), "{ok} of 8 succeeded");
    assert!(api.sim.stats().connections_reset >= 1);
}

fn generated_profile() -> String {
    fixture("create-a-configuration.request.json")["data"]["attributes"]["customSettingsValues"]["configurationProfile"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn generated_collections_have_the_same_keys_as_the_fixtures() {
    let api = start(Simulator::builder().seed(38).devices(500)).await;
    let server_extra: Vec<&str> = [SERVER_EXTRAS, &["links"]].concat();
    let lists: Vec<(&str, &str, &[&str])> = vec![
        ("/v1/mdmServers", "get-mdm-servers.json", &server_extra),
        ("/v1/mdmDevices", "get-apple-mdm-enrolled-devices.json", &[]),
        ("/v1/users", "get-users.json", &[]),
        ("/v1/userGroups", "get-user-groups.json", &[]),
        (
            "/v1/organizationalUnits",
            "get-organizational-units.json",
            &[],
        ),
        ("/v1/apps", "get-apps.json", &[]),
        ("/v1/packages", "get-packages.json", &[]),
        ("/v1/blueprints", "get-blueprints.json", &[]),
        ("/v1/configurations", "get-configurations.json", &[]),
        (
            "/v1/auditEvents?filter[startTimestamp]=2000-01-01T00:00:00Z&filter[endTimestamp]=2100-01-01T00:00:00Z",
            "get-audit-events.json",
            &["eventData*"],
        ),
    ];
    let mut problems = Vec::new();
    for (path, name, allow) in lists {
        let (status, ours) = api.get(path).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            !ours["data"].as_array().unwrap().is_empty(),
            "{path} is empty"
        );
        shape_diff(&ours, &fixture(name), name, allow, &mut problems);
    }
    let (_, list) = api.get("/v1/mdmDevices?limit=1").await;
    let id = list["data"][0]["id"].as_str().unwrap();
    let (_, details) = api.get(&format!("/v1/mdmDevices/{id}/details")).await;
    shape_diff(
        &details,
        &fixture("get-the-details-for-apple-mdm-enrolled-device.json"),
        "details",
        &[],
        &mut problems,
    );
    let (_, coverage) = api
        .get(&format!("/v1/orgDevices/{id}/appleCareCoverage"))
        .await;
    shape_diff(
        &coverage,
        &fixture("get-all-applecare-coverage-for-an-orgdevice.json"),
        "coverage",
        &[],
        &mut problems,
    );
    let (_, lock) = api
        .get(&format!("/v1/orgDevices/{id}/activationLockStatus"))
        .await;
    shape_diff(
        &lock,
        &fixture("get-the-activation-lock-status-information-for-an-orgdevice.json"),
        "lock",
        &[],
        &mut problems,
    );
    assert!(
        problems.is_empty(),
        "shape differences:\n{}",
        problems.join("\n")
    );
}
