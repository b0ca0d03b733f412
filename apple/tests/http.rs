//! The client over real HTTP against tiny in-process axum servers: token caching and
//! single-flight, 401 refresh-and-replay, retry rules, 429 handling, paging guards, decode
//! error paths, the activity log download and secret redaction.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use apple::resources::{activities, blueprints, mdm_servers, org_devices};
use apple::retry::FixedJitter;
use apple::{
    Budget, BudgetConfig, Client, ClientConfig, Cursor, Error, MdmServerId, Observer, PagingError,
    PrivateKey, Rate, SerialNumber, TokenError,
};
use axum::Router;
use axum::extract::{Form, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::TryStreamExt as _;
use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::Verifier as _;
use serde_json::{Value, json};

/// Counters and knobs shared by the handlers of one test server.
#[derive(Default)]
struct Server {
    tokens: AtomicUsize,
    hits: AtomicUsize,
    token_delay_ms: u64,
    /// Token requests answer 400 and echo the assertion (as Apple may).
    reject_tokens: bool,
    verifying_key: Option<p256::ecdsa::VerifyingKey>,
    last_assertion: std::sync::Mutex<String>,
    token_prefix: String,
    /// `expires_in` of issued tokens; 0 means Apple's 3600.
    expires_in: u64,
    /// The first N token requests answer 429 with `Retry-After: 1`.
    throttle_tokens: usize,
}

type Shared = Arc<Server>;

async fn token(State(s): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Response {
    let n = s.tokens.fetch_add(1, Ordering::SeqCst) + 1;
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(
        form["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    assert_eq!(form["scope"], "business.api");
    let assertion = form["client_assertion"].clone();
    if let Some(vk) = &s.verifying_key {
        verify_jwt(vk, &assertion);
    }
    *s.last_assertion.lock().unwrap() = assertion.clone();
    if s.token_delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(s.token_delay_ms)).await;
    }
    if n <= s.throttle_tokens {
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "").into_response();
    }
    if s.reject_tokens {
        let body = json!({"error": "invalid_client", "error_description": format!("bad assertion {assertion}")});
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    let prefix = if s.token_prefix.is_empty() {
        "tok"
    } else {
        &s.token_prefix
    };
    let expires_in = if s.expires_in == 0 {
        3600
    } else {
        s.expires_in
    };
    axum::Json(json!({"access_token": format!("{prefix}-{n}"), "token_type": "Bearer", "expires_in": expires_in, "scope": "business.api"}))
        .into_response()
}

fn verify_jwt(vk: &p256::ecdsa::VerifyingKey, jwt: &str) {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = jwt.split('.').collect();
    let header: Value = serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "ES256");
    let claims: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    assert!(
        claims["aud"]
            .as_str()
            .unwrap()
            .ends_with("/auth/oauth2/v2/token")
    );
    let sig = p256::ecdsa::Signature::from_slice(&b64.decode(parts[2]).unwrap()).unwrap();
    vk.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .unwrap();
}

fn bearer(h: &HeaderMap) -> String {
    h.get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_owned()
}

fn device_doc(serial: &str) -> Value {
    json!({"data": {"type": "orgDevices", "id": serial, "attributes": {"serialNumber": serial, "status": "ASSIGNED", "addedToOrgDateTime": "2025-04-30T22:05:14Z"}}, "links": {"self": "x"}})
}

fn api_error(status: StatusCode) -> Response {
    let body =
        json!({"errors": [{"status": status.as_str(), "code": "X", "title": "t", "detail": "d"}]});
    (status, axum::Json(body)).into_response()
}

async fn spawn(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

struct Setup {
    client: Client,
    server: Shared,
}

fn fast_budget() -> Arc<Budget> {
    Arc::new(Budget::new(BudgetConfig {
        reads: Rate::per_minute(1200),
        writes: Rate::per_minute(1200),
        max_in_flight: 4,
    }))
}

fn config(origin: &str) -> ClientConfig {
    let mut cfg = ClientConfig::apple_business(
        "BUSINESSAPI.c75c0a8a-a026-4dae-99aa-89ea1e1103e5",
        "e339d085-a821-438a-a527-d044edacf50a",
    )
    .with_origin(origin);
    cfg.timeouts.attempt = Duration::from_secs(5);
    cfg
}

async fn setup(server: Server, api: Router<Shared>) -> Setup {
    setup_with(server, api, |c| c, Arc::new(apple::NoopObserver)).await
}

async fn setup_with(
    mut server: Server,
    api: Router<Shared>,
    tweak: impl FnOnce(ClientConfig) -> ClientConfig,
    observer: Arc<dyn Observer>,
) -> Setup {
    let signing = SigningKey::random(&mut rand::rngs::OsRng);
    server.verifying_key = Some(*signing.verifying_key());
    let server = Arc::new(server);
    let router = api
        .route("/auth/oauth2/token", post(token))
        .with_state(server.clone());
    let origin = spawn(router).await;
    let client = Client::builder(
        tweak(config(&origin)),
        PrivateKey::from_signing_key(signing),
        fast_budget(),
    )
    .observer(observer)
    .jitter(Arc::new(FixedJitter(0.0)))
    .build()
    .unwrap();
    Setup { client, server }
}

#[tokio::test]
async fn concurrent_calls_share_one_token_request() {
    let api = Router::new().route(
        "/v1/orgDevices/{id}",
        get(|State(s): State<Shared>, axum::extract::Path(id): axum::extract::Path<String>| async move {
            s.hits.fetch_add(1, Ordering::SeqCst);
            axum::Json(device_doc(&id))
        }),
    );
    let t = setup(
        Server {
            token_delay_ms: 100,
            ..Server::default()
        },
        api,
    )
    .await;
    let calls = (0..16).map(|i| {
        let c = t.client.clone();
        tokio::spawn(async move {
            org_devices::get(&SerialNumber::new(format!("S{i}")))
                .send(&c)
                .await
        })
    });
    for h in calls {
        let doc = h.await.unwrap().unwrap();
        assert!(doc.data.id.as_str().starts_with('S'));
    }
    assert_eq!(t.server.tokens.load(Ordering::SeqCst), 1);
    assert_eq!(t.server.hits.load(Ordering::SeqCst), 16);
    // Later calls reuse the cached token too.
    org_devices::get(&SerialNumber::new("again"))
        .send(&t.client)
        .await
        .unwrap();
    assert_eq!(t.server.tokens.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_401_refreshes_the_token_once_and_replays_once() {
    let api = Router::new().route(
        "/v1/orgDevices/{id}",
        get(|State(s): State<Shared>, h: HeaderMap| async move {
            s.hits.fetch_add(1, Ordering::SeqCst);
            if bearer(&h) == "tok-1" {
                api_error(StatusCode::UNAUTHORIZED)
            } else {
                axum::Json(device_doc("A")).into_response()
            }
        }),
    );
    let t = setup(Server::default(), api).await;
    org_devices::get(&SerialNumber::new("A"))
        .send(&t.client)
        .await
        .unwrap();
    assert_eq!(t.server.tokens.load(Ordering::SeqCst), 2);
    assert_eq!(t.server.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_persistent_401_is_returned_after_one_replay() {
    let api = Router::new().route(
        "/v1/orgDevices/{id}",
        get(|State(s): State<Shared>| async move {
            s.hits.fetch_add(1, Ordering::SeqCst);
            api_error(StatusCode::UNAUTHORIZED)
        }),
    );
    let t = setup(Server::default(), api).await;
    let err = org_devices::get(&SerialNumber::new("A"))
        .send(&t.client)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    assert_eq!(t.server.tokens.load(Ordering::SeqCst), 2);
    assert_eq!(t.server.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn gets_are_retried_on_5xx() {
    let api = Router::new().route(
        "/v1/orgDevices/{id}",
        get(|State(s): State<Shared>| async move {
            if s.hits.fetch_add(1, Ordering::SeqCst) < 2 {
                api_error(StatusCode::SERVICE_UNAVAILABLE)
            } else {
                axum::Json(device_doc("A")).into_response()
            }
        }),
    );
    let t = setup(Server::default(), api).await;
    org_devices::get(&SerialNumber::new("A"))
        .send(&t.client)
        .await
        .unwrap();
    assert_eq!(t.server.hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn an_activity_post_is_never_resent() {
    let api = Router::new().route(
        "/v1/orgDeviceActivities",
        post(|State(s): State<Shared>, body: String| async move {
            s.hits.fetch_add(1, Ordering::SeqCst);
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["data"]["attributes"]["activityType"], "ASSIGN_DEVICES");
            api_error(StatusCode::BAD_GATEWAY)
        }),
    );
    let t = setup(Server::default(), api).await;
    let err = activities::assign(&MdmServerId::new("M1"), &[SerialNumber::new("A")])
        .send(&t.client)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(502));
    assert_eq!(t.server.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_blueprint_relationship_delete_sends_its_body_and_accepts_204() {
    let api = Router::new().route(
        "/v1/blueprints/{id}/relationships/users",
        axum::routing::delete(|h: HeaderMap, body: String| async move {
            assert_eq!(h["content-type"], "application/json");
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v, json!({"data": [{"type": "users", "id": "1234567890"}]}));
            StatusCode::NO_CONTENT
        }),
    );
    let t = setup(Server::default(), api).await;
    blueprints::remove_members(
        &apple::BlueprintId::new("bp"),
        blueprints::BlueprintRelationship::Users,
        ["1234567890"],
    )
    .send(&t.client)
    .await
    .unwrap();
}

#[derive(Default)]
struct Counting {
    rate_limited: AtomicUsize,
    retries: AtomicUsize,
    attempts: AtomicUsize,
    budget_waits: AtomicUsize,
}

impl Observer for Counting {
    fn attempt(&self, _: &apple::AttemptEvent) {
        self.attempts.fetch_add(1, Ordering::SeqCst);
    }
    fn rate_limited(&self, _: &'static str, _: Option<Duration>) {
        self.rate_limited.fetch_add(1, Ordering::SeqCst);
    }
    fn retry(&self, _: &'static str, _: u32, _: Duration) {
        self.retries.fetch_add(1, Ordering::SeqCst);
    }
    fn budget_wait(
        &self,
        _: &'static str,
        _: apple::RequestClass,
        _: apple::Priority,
        _: Duration,
    ) {
        self.budget_waits.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_429_waits_for_retry_after_and_holds_the_account_budget() {
    let api = Router::new().route(
        "/v1/orgDevices/{id}",
        get(|State(s): State<Shared>| async move {
            if s.hits.fetch_add(1, Ordering::SeqCst) == 0 {
                let mut r = api_error(StatusCode::TOO_MANY_REQUESTS);
                r.headers_mut().insert("retry-after", "1".parse().unwrap());
                r
            } else {
                axum::Json(device_doc("A")).into_response()
            }
        }),
    );
    let obs = Arc::new(Counting::default());
    let t = setup_with(Server::default(), api, |c| c, obs.clone()).await;
    let started = Instant::now();
    org_devices::get(&SerialNumber::new("A"))
        .send(&t.client)
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(t.server.hits.load(Ordering::SeqCst), 2);
    assert_eq!(obs.rate_limited.load(Ordering::SeqCst), 1);
    assert_eq!(obs.retries.load(Ordering::SeqCst), 1);
    assert_eq!(obs.attempts.load(Ordering::SeqCst), 2);
    assert_eq!(obs.budget_waits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_429_beyond_the_deadline_is_returned_with_its_retry_after() {
    let api = Router::new().route(
        "/v1/orgDevices/{id}",
        get(|| async {
            let mut r = api_error(StatusCode::TOO_MANY_REQUESTS);
            r.headers_mut()
                .insert("retry-after", "3600".parse().unwrap());
            r
        }),
    );
    let t = setup(Server::default(), api).await;
    let err = org_devices::get(&SerialNumber::new("A"))
        .send(&t.client)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(3600)),
        "{err:?}"
    );
    assert!(t.client.budget().status().held_for.unwrap() > Duration::from_secs(3500));
}

#[tokio::test]
async fn a_slow_attempt_times_out_and_is_retried_up_to_max_attempts() {
    let api = Router::new().route(
        "/v1/orgDevices/{id}",
        get(|State(s): State<Shared>| async move {
            s.hits.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(3)).await;
            axum::Json(device_doc("A"))
        }),
    );
    let t = setup_with(
        Server::default(),
        api,
        |mut c| {
            c.timeouts.attempt = Duration::from_millis(200);
            c.retry.max_attempts = 2;
            c
        },
        Arc::new(apple::NoopObserver),
    )
    .await;
    let err = org_devices::get(&SerialNumber::new("A"))
        .send(&t.client)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert_eq!(t.server.hits.load(Ordering::SeqCst), 2);
}

/// Pages `p0` → `p1` → `p2` (3 items each, last page without cursor), with knobs for the guards.
fn paged_api(mode: &'static str) -> Router<Shared> {
    Router::new().route(
        "/v1/orgDevices",
        get(
            move |State(s): State<Shared>, RawQuery(q): RawQuery| async move {
                s.hits.fetch_add(1, Ordering::SeqCst);
                let q = q.unwrap_or_default();
                let pairs: Vec<(String, String)> = url_pairs(&q);
                let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
                let mut dedup = keys.clone();
                dedup.sort_unstable();
                dedup.dedup();
                assert_eq!(dedup.len(), keys.len(), "duplicated query parameters: {q}");
                assert!(keys.contains(&"limit"), "limit dropped: {q}");
                let cursor = pairs
                    .iter()
                    .find(|(k, _)| k == "cursor")
                    .map(|(_, v)| v.as_str());
                let page: usize = match cursor {
                    None => 0,
                    Some(c) => c.trim_start_matches('p').parse().unwrap(),
                };
                let next = match (mode, page) {
                    ("echo", 1) => Some("p1".to_owned()),
                    (_, p) if p < 2 => Some(format!("p{}", p + 1)),
                    _ => None,
                };
                let items: Vec<Value> = if mode == "empty" && page == 1 {
                    vec![]
                } else {
                    (0..3)
                        .map(|i| json!({"type": "orgDevices", "id": format!("D{page}-{i}")}))
                        .collect()
                };
                let mut paging = json!({"limit": 3});
                if let Some(n) = &next {
                    paging["nextCursor"] = json!(n);
                }
                axum::Json(
                    json!({"data": items, "links": {"self": "x"}, "meta": {"paging": paging}}),
                )
            },
        ),
    )
}

fn url_pairs(q: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{q}"))
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[tokio::test]
async fn items_follow_the_cursor_to_the_last_page() {
    let t = setup(Server::default(), paged_api("ok")).await;
    let ids: Vec<String> = org_devices::list()
        .limit(3)
        .fields(["serialNumber", "status"])
        .items(&t.client)
        .map_ok(|d| d.id.into_inner())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(ids.len(), 9);
    assert_eq!(ids[0], "D0-0");
    assert_eq!(ids[8], "D2-2");
    assert_eq!(t.server.hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn pages_expose_cursors_and_resume_from_a_saved_one() {
    let t = setup(Server::default(), paged_api("ok")).await;
    let pages: Vec<_> = org_devices::list()
        .limit(3)
        .pages(&t.client)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pages.len(), 3);
    assert_eq!(pages[0].cursor, None);
    assert_eq!(pages[0].next_cursor, Some(Cursor::from("p1")));
    assert_eq!(pages[2].next_cursor, None);
    let saved = pages[1].next_cursor.clone().unwrap();
    let rest: Vec<_> = org_devices::list()
        .limit(3)
        .cursor(saved)
        .pages(&t.client)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].items[0].id.as_str(), "D2-0");
}

#[tokio::test]
async fn an_empty_page_with_a_cursor_stops_the_stream() {
    let t = setup(Server::default(), paged_api("empty")).await;
    let err = org_devices::list()
        .limit(3)
        .items(&t.client)
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Paging(PagingError::EmptyPageWithCursor { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_echoed_cursor_stops_the_stream() {
    let t = setup(Server::default(), paged_api("echo")).await;
    let err = org_devices::list()
        .limit(3)
        .items(&t.client)
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Paging(PagingError::CursorNotAdvancing { .. })),
        "{err:?}"
    );
    assert_eq!(t.server.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_page_cap_stops_the_stream() {
    let t = setup(Server::default(), paged_api("ok")).await;
    let mut pages = Vec::new();
    let mut stream = std::pin::pin!(org_devices::list().limit(3).page_cap(2).pages(&t.client));
    let err = loop {
        match stream.try_next().await {
            Ok(Some(p)) => pages.push(p),
            Ok(None) => panic!("cap not enforced"),
            Err(e) => break e,
        }
    };
    assert_eq!(pages.len(), 2);
    assert!(
        matches!(
            err,
            Error::Paging(PagingError::PageCapReached { cap: 2, .. })
        ),
        "{err:?}"
    );
    assert_eq!(t.server.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn decode_errors_name_the_json_path() {
    let api = Router::new().route(
        "/v1/orgDevices",
        get(|| async {
            axum::Json(json!({"data": [
                {"type": "orgDevices", "id": "A", "attributes": {"addedToOrgDateTime": "2025-04-30T22:05:14Z"}},
                {"type": "orgDevices", "id": "B", "attributes": {"addedToOrgDateTime": "yesterday"}}
            ], "links": {"self": "x"}, "meta": {"paging": {"limit": 100}}}))
        }),
    );
    let t = setup(Server::default(), api).await;
    let err = org_devices::list().send(&t.client).await.unwrap_err();
    match err {
        Error::Decode { path, .. } => assert_eq!(path, "data[1].attributes.addedToOrgDateTime"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn token_rejections_never_carry_the_assertion() {
    let t = setup(
        Server {
            reject_tokens: true,
            ..Server::default()
        },
        Router::new(),
    )
    .await;
    let err = mdm_servers::list().send(&t.client).await.unwrap_err();
    let assertion = t.server.last_assertion.lock().unwrap().clone();
    assert!(assertion.len() > 100);
    match &err {
        Error::Token(TokenError::Rejected {
            status: 400,
            error,
            description,
        }) => {
            assert_eq!(error, "invalid_client");
            assert_eq!(description.as_deref(), Some("bad assertion [redacted]"));
        }
        other => panic!("{other:?}"),
    }
    for text in [
        format!("{err}"),
        format!("{err:?}"),
        format!("{:?}", t.client),
    ] {
        assert!(!text.contains(&assertion), "assertion leaked: {text}");
        let sig = assertion.rsplit('.').next().unwrap();
        assert!(!text.contains(sig), "signature leaked: {text}");
    }
}

#[tokio::test]
async fn debug_output_never_contains_key_or_token() {
    let api = Router::new().route(
        "/v1/mdmServers",
        get(|| async {
            axum::Json(
                json!({"data": [], "links": {"self": "x"}, "meta": {"paging": {"limit": 1}}}),
            )
        }),
    );
    let t = setup(
        Server {
            token_prefix: "CANARYTOKEN".to_owned(),
            ..Server::default()
        },
        api,
    )
    .await;
    // Key canary: the PEM and its scalar.
    let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let pem = {
        use p256::pkcs8::EncodePrivateKey as _;
        secret
            .to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
            .unwrap()
            .to_string()
    };
    let key = PrivateKey::from_pem(&pem).unwrap();
    let scalar_hex: String = secret
        .to_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let pem_body: String = pem.lines().nth(1).unwrap().to_owned();
    let page = t.client.test_connection().await.unwrap();
    assert!(page.items.is_empty());
    let cfg = t.client.config().clone();
    let err = Error::Token(TokenError::Rejected {
        status: 400,
        error: "invalid_client".into(),
        description: None,
    });
    let outputs = [
        format!("{key:?}"),
        format!("{:?}", t.client),
        format!("{cfg:?}"),
        format!("{err:?} {err}"),
        format!("{page:?}"),
    ];
    for text in outputs {
        assert!(!text.contains("CANARYTOKEN"), "token leaked: {text}");
        assert!(!text.contains(&scalar_hex), "key leaked: {text}");
        assert!(!text.contains(&pem_body), "pem leaked: {text}");
    }
    assert_eq!(t.server.tokens.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_activity_log_is_fetched_without_the_bearer_token() {
    let blob = Router::new().route(
        "/log.csv",
        get(|h: HeaderMap| async move {
            assert!(h.get("authorization").is_none(), "token sent to the blob store");
            "Serial Number,Device Management Service,Activity,Status,Details\nA1,MDM,ASSIGN_DEVICES,SUCCESS,\nB2,MDM,ASSIGN_DEVICES,FAILED,Device not found in organization\n"
        }),
    );
    let blob_origin = spawn(blob).await;
    let t = setup(Server::default(), Router::new()).await;
    let rows =
        apple::activity_log::download(&t.client, &format!("{blob_origin}/log.csv?Signature=abc"))
            .await
            .unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows[1].failed());
    assert_eq!(t.server.tokens.load(Ordering::SeqCst), 0);
}

fn device_api() -> Router<Shared> {
    Router::new().route(
        "/v1/orgDevices/{id}",
        get(|State(s): State<Shared>, h: HeaderMap| async move {
            s.hits.fetch_add(1, Ordering::SeqCst);
            assert!(bearer(&h).starts_with("tok-"));
            axum::Json(device_doc("A"))
        }),
    )
}

#[tokio::test]
async fn an_expiring_token_is_refreshed_before_it_expires() {
    // expires_in 1 s with a 60 s margin: refreshed after half its lifetime.
    let t = setup(
        Server {
            expires_in: 1,
            ..Server::default()
        },
        device_api(),
    )
    .await;
    org_devices::get(&SerialNumber::new("A"))
        .send(&t.client)
        .await
        .unwrap();
    org_devices::get(&SerialNumber::new("A"))
        .send(&t.client)
        .await
        .unwrap();
    assert_eq!(t.server.tokens.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(700)).await;
    org_devices::get(&SerialNumber::new("A"))
        .send(&t.client)
        .await
        .unwrap();
    assert_eq!(t.server.tokens.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_throttled_token_endpoint_is_waited_out_for_gets() {
    let t = setup(
        Server {
            throttle_tokens: 1,
            ..Server::default()
        },
        device_api(),
    )
    .await;
    let started = Instant::now();
    org_devices::get(&SerialNumber::new("A"))
        .send(&t.client)
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(t.server.tokens.load(Ordering::SeqCst), 2);
    assert_eq!(t.server.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn school_manager_configuration_sends_the_school_scope() {
    let api = Router::new().route(
        "/auth/oauth2/token",
        post(|Form(form): Form<HashMap<String, String>>| async move {
            assert_eq!(form["scope"], "school.api");
            assert!(form["client_id"].starts_with("SCHOOLAPI."));
            axum::Json(json!({"access_token": "tok-1", "token_type": "Bearer", "expires_in": 3600}))
        }),
    )
    .route("/v1/mdmServers", get(|| async {
        axum::Json(json!({"data": [{"type": "mdmServers", "id": "S", "attributes": {"serverName": "x"}}], "links": {"self": "x"}, "meta": {"paging": {"limit": 1}}}))
    }));
    let origin = spawn(api).await;
    let cfg = ClientConfig::apple_school("SCHOOLAPI.27478e71-3bb0-4588-998c-182e2b405577", "k")
        .with_origin(&origin);
    assert_eq!(cfg.scope, "school.api");
    let key = PrivateKey::from_signing_key(SigningKey::random(&mut rand::rngs::OsRng));
    let client = Client::new(cfg, key, fast_budget()).unwrap();
    let page = client.test_connection().await.unwrap();
    assert_eq!(page.items[0].attributes.server_name.as_deref(), Some("x"));
}

#[tokio::test]
async fn activity_polling_stops_at_a_terminal_status() {
    let api = Router::new().route(
        "/v1/orgDeviceActivities/{id}",
        get(|State(s): State<Shared>| async move {
            let n = s.hits.fetch_add(1, Ordering::SeqCst);
            let (status, sub) = if n < 2 { ("IN_PROGRESS", "PROCESSING") } else { ("COMPLETED", "COMPLETED_WITH_FAILURE") };
            axum::Json(json!({"data": {"type": "orgDeviceActivities", "id": "b1481656-b267-480d-b284-a809eed8b041",
                "attributes": {"status": status, "subStatus": sub, "createdDateTime": "2025-05-05T04:15:43.282Z"}}}))
        }),
    );
    let t = setup(Server::default(), api).await;
    let id = apple::ActivityId::new("b1481656-b267-480d-b284-a809eed8b041");
    let done = activities::wait_until_done(
        &t.client,
        &id,
        Duration::from_millis(10),
        Duration::from_secs(10),
        apple::Priority::Background,
    )
    .await
    .unwrap();
    assert_eq!(
        done.attributes.status,
        Some(activities::ActivityStatus::Completed)
    );
    assert_eq!(
        done.attributes.sub_status,
        Some(activities::ActivitySubStatus::CompletedWithFailure)
    );
    assert_eq!(t.server.hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_dropped_connection_is_retried_for_gets() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    // Raw API server: the first connection is closed without an answer, the next one answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_origin = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = connections.clone();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let mut buf = vec![0u8; 8192];
            let _ = sock.read(&mut buf).await;
            if n == 0 {
                drop(sock);
                continue;
            }
            let body = device_doc("A").to_string();
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            sock.write_all(resp.as_bytes()).await.unwrap();
        }
    });
    let token_server = Arc::new(Server::default());
    let token_origin = spawn(
        Router::new()
            .route("/auth/oauth2/token", post(token))
            .with_state(token_server.clone()),
    )
    .await;
    let mut cfg = config(&token_origin);
    cfg.api_base_url = api_origin;
    let key = PrivateKey::from_signing_key(SigningKey::random(&mut rand::rngs::OsRng));
    let client = Client::builder(cfg, key, fast_budget())
        .jitter(Arc::new(FixedJitter(0.0)))
        .build()
        .unwrap();
    let doc = org_devices::get(&SerialNumber::new("A"))
        .send(&client)
        .await
        .unwrap();
    assert_eq!(doc.data.id.as_str(), "A");
    assert_eq!(connections.load(Ordering::SeqCst), 2);
    assert_eq!(token_server.tokens.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn callers_queued_behind_a_failed_token_request_share_its_failure() {
    let t = setup(
        Server {
            reject_tokens: true,
            token_delay_ms: 100,
            ..Server::default()
        },
        Router::new(),
    )
    .await;
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let c = t.client.clone();
            tokio::spawn(async move { mdm_servers::list().send(&c).await })
        })
        .collect();
    let mut rejected = 0;
    let mut shared = 0;
    for h in calls {
        match h.await.unwrap().unwrap_err() {
            Error::Token(TokenError::Rejected { .. }) => rejected += 1,
            Error::Token(TokenError::SharedFailure { transient: false }) => shared += 1,
            other => panic!("{other:?}"),
        }
    }
    // 8 callers through 4 in-flight slots: at most two waves, one token request each.
    assert_eq!(rejected + shared, 8);
    assert!(rejected <= 2, "{rejected} token requests");
    assert_eq!(t.server.tokens.load(Ordering::SeqCst), rejected);
}

#[test]
fn client_requests_and_streams_are_send_for_spawned_tasks() {
    fn is_send<T: Send>(_: &T) {}
    fn is_send_sync<T: Send + Sync + 'static>() {}
    is_send_sync::<Client>();
    is_send_sync::<Budget>();
    let key = PrivateKey::from_signing_key(SigningKey::random(&mut rand::rngs::OsRng));
    let client = Client::new(config("http://127.0.0.1:9"), key, fast_budget()).unwrap();
    let list = org_devices::list();
    is_send(&list.send(&client));
    is_send(&org_devices::list().pages(&client));
    is_send(&org_devices::list().items(&client));
    let assign = activities::assign(&MdmServerId::new("M"), &[SerialNumber::new("A")]);
    is_send(&assign.send(&client));
    is_send(&client.test_connection());
}
