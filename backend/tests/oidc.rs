//! The OIDC relying party against a real provider (`end2end/oidc/provider.mjs`, the npm
//! `oidc-provider` package run by node) and, for tokens no honest provider issues, against
//! a small in-process stub serving ID tokens signed with a test key.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use backend::config::{ClientAuthMethod, OidcConfig, SecretString};
use backend::oidc::{self, GroupRoleMap, GroupRoleRule, OidcError, OidcProvider, PendingLogin};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use p256::ecdsa::signature::Signer as _;
use rand::RngCore as _;
use reqwest::Url;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};

/// Our callback as registered at the test provider; the flow stops before requesting it.
const REDIRECT_URI: &str = "http://127.0.0.1:9/auth/oidc/callback";
const SECRET: &str = "orchard-test-secret";
/// Generous: node starts slowly on a busy 2-core machine.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

// ---- the real provider ---------------------------------------------------------------

fn end2end_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../end2end")
}

/// Checks that node is installed and installs the npm packages once if they are missing.
fn ensure_node_packages() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let result = READY.get_or_init(|| {
        let node = std::process::Command::new("node").arg("--version").output();
        if !node.is_ok_and(|o| o.status.success()) {
            return Err(
                "node is not installed (the OIDC tests run end2end/oidc/provider.mjs); \
                        install Debian's nodejs and npm"
                    .to_owned(),
            );
        }
        let dir = end2end_dir();
        if dir.join("node_modules/oidc-provider/package.json").exists() {
            return Ok(());
        }
        let status = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
            .status()
            .map_err(|e| format!("cannot run npm ci in {}: {e}", dir.display()))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("npm ci in {} failed: {status}", dir.display()))
        }
    });
    if let Err(message) = result {
        panic!("{message}");
    }
}

/// A running `provider.mjs`; killed when dropped.
struct NodeProvider {
    issuer: String,
    _child: tokio::process::Child,
}

impl NodeProvider {
    async fn start() -> Self {
        ensure_node_packages();
        let mut child = tokio::process::Command::new("node")
            .arg(end2end_dir().join("oidc/provider.mjs"))
            .arg("0")
            .env("OIDC_REDIRECT_URIS", REDIRECT_URI)
            .env("OIDC_CLIENT_SECRET", SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn node end2end/oidc/provider.mjs");
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut stderr = child.stderr.take().unwrap();
        let ready = tokio::time::timeout(READY_TIMEOUT, async {
            while let Some(line) = stdout.next_line().await.ok().flatten() {
                if let Some(issuer) = line.strip_prefix("OIDC provider ready at ") {
                    return Some(issuer.to_owned());
                }
            }
            None
        })
        .await;
        match ready {
            Ok(Some(issuer)) => {
                // Keep draining both pipes so the provider never blocks on a full pipe.
                tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
                tokio::spawn(async move {
                    let mut sink = Vec::new();
                    let _ = stderr.read_to_end(&mut sink).await;
                });
                Self {
                    issuer,
                    _child: child,
                }
            }
            _ => {
                let _ = child.start_kill();
                let mut message = String::new();
                let _ = tokio::time::timeout(
                    Duration::from_secs(5),
                    stderr.read_to_string(&mut message),
                )
                .await;
                panic!("the OIDC provider did not print its ready line:\n{message}");
            }
        }
    }
}

fn config(issuer: &str, client_id: &str) -> OidcConfig {
    OidcConfig {
        enabled: true,
        issuer: issuer.to_owned(),
        client_id: client_id.to_owned(),
        client_secret: SecretString::new(SECRET),
        ..OidcConfig::default()
    }
}

async fn discover(config: &OidcConfig) -> Result<OidcProvider, OidcError> {
    OidcProvider::discover(config, oidc::http_client().unwrap()).await
}

/// Drives the provider's login form like a browser would, with a cookie jar and without
/// following the final redirect to our callback; returns the callback's query.
async fn sign_in_at_provider(authorization_url: &Url, login: &str) -> BTreeMap<String, String> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut cookies: BTreeMap<String, String> = BTreeMap::new();
    let mut url = authorization_url.clone();
    let mut form: Option<Vec<(String, String)>> = None;
    for _ in 0..12 {
        let jar = cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let request = match form.take() {
            Some(fields) => http.post(url.clone()).form(&fields),
            None => http.get(url.clone()),
        };
        let response = request.header("cookie", jar).send().await.unwrap();
        for set in response.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            if let Some((name, value)) = pair.split_once('=') {
                cookies.insert(name.trim().to_owned(), value.to_owned());
            }
        }
        let status = response.status();
        if status.is_redirection() {
            let location = response.headers()["location"].to_str().unwrap();
            let next = url.join(location).unwrap();
            if next.as_str().starts_with(REDIRECT_URI) {
                return next.query_pairs().into_owned().collect();
            }
            url = next;
            continue;
        }
        let page = response.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "provider page: {page}");
        let action = between(&page, "action=\"", "\"").expect("a form on the provider's page");
        let prompt = between(&page, "name=\"prompt\" value=\"", "\"").unwrap_or_default();
        let mut fields = vec![("prompt".to_owned(), prompt.clone())];
        if prompt == "login" {
            fields.push(("login".to_owned(), login.to_owned()));
            fields.push(("password".to_owned(), "any password".to_owned()));
        }
        url = url.join(&action.replace("&amp;", "&")).unwrap();
        form = Some(fields);
    }
    panic!("the provider never redirected back to {REDIRECT_URI}");
}

fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(text[from..from + len].to_owned())
}

/// A copy of a pending login, as a second read of the same session record would give.
fn copy_of(pending: &PendingLogin) -> PendingLogin {
    serde_json::from_value(serde_json::to_value(pending).unwrap()).unwrap()
}

fn role_map() -> GroupRoleMap {
    let rule = |group: &str, organization: &str, role| GroupRoleRule {
        group: group.to_owned(),
        organization: organization.to_owned(),
        role,
    };
    GroupRoleMap::new(vec![
        rule(
            "orchard-helpdesk",
            "acme",
            backend::identity::Role::Helpdesk,
        ),
        rule("orchard-admins", "acme", backend::identity::Role::Admin),
        rule(
            "orchard-operators",
            "acme",
            backend::identity::Role::Operator,
        ),
        rule(
            "orchard-helpdesk",
            "globex",
            backend::identity::Role::Viewer,
        ),
    ])
}

#[tokio::test]
async fn alice_signs_in_through_the_real_provider_with_her_groups_mapped_to_roles() {
    let node = NodeProvider::start().await;
    let provider = discover(&config(&node.issuer, "orchard")).await.unwrap();

    let (url, pending) = provider.begin(REDIRECT_URI, Some("/devices?q=C02"));
    assert_eq!(pending.next(), Some("/devices?q=C02"));
    let query: BTreeMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["scope"], "openid profile email groups");
    assert_eq!(query["code_challenge_method"], "S256");
    let callback = sign_in_at_provider(&url, "alice").await;
    let identity = provider
        .complete(pending, &callback["state"], &callback["code"])
        .await
        .unwrap();

    assert_eq!(identity.issuer, node.issuer);
    assert_eq!(identity.subject, "alice");
    assert_eq!(identity.email.as_deref(), Some("alice@example.test"));
    assert!(identity.email_verified);
    assert_eq!(identity.name.as_deref(), Some("Alice Admin"));
    assert_eq!(identity.preferred_username.as_deref(), Some("alice"));
    assert_eq!(identity.groups, ["orchard-admins", "orchard-helpdesk"]);
    assert_eq!(
        role_map().map_groups(&identity.groups),
        [
            ("acme".to_owned(), "admin".to_owned()),
            ("globex".to_owned(), "viewer".to_owned())
        ]
    );
}

#[tokio::test]
async fn hank_signs_in_with_client_secret_post_and_an_es256_id_token() {
    let node = NodeProvider::start().await;
    let mut config = config(&node.issuer, "orchard-post");
    config.client_auth = ClientAuthMethod::ClientSecretPost;
    let provider = discover(&config).await.unwrap();

    let (url, pending) = provider.begin(REDIRECT_URI, Some("//evil.example/"));
    assert_eq!(pending.next(), None, "a protocol-relative next is dropped");
    let callback = sign_in_at_provider(&url, "hank").await;
    let identity = provider
        .complete(pending, &callback["state"], &callback["code"])
        .await
        .unwrap();

    assert_eq!(identity.subject, "hank");
    assert_eq!(identity.groups, ["orchard-helpdesk"]);
    assert_eq!(
        role_map().map_groups(&identity.groups),
        [
            ("acme".to_owned(), "helpdesk".to_owned()),
            ("globex".to_owned(), "viewer".to_owned())
        ]
    );
}

#[tokio::test]
async fn a_wrong_state_is_refused_and_a_replayed_callback_fails() {
    let node = NodeProvider::start().await;
    let provider = discover(&config(&node.issuer, "orchard")).await.unwrap();
    let (url, pending) = provider.begin(REDIRECT_URI, None);
    // The session record the caller removes before completing; a racing request or a
    // stale copy could still hold these bytes.
    let stale = copy_of(&pending);
    let forged = copy_of(&pending);
    let callback = sign_in_at_provider(&url, "olivia").await;

    let err = provider
        .complete(forged, "forged-state", &callback["code"])
        .await
        .unwrap_err();
    assert!(matches!(err, OidcError::StateMismatch), "{err:?}");

    let identity = provider
        .complete(pending, &callback["state"], &callback["code"])
        .await
        .unwrap();
    assert_eq!(identity.subject, "olivia");

    let err = provider
        .complete(stale, &callback["state"], &callback["code"])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OidcError::TokenExchange { status: 400, error: Some(e) } if e == "invalid_grant"),
        "{err:?}"
    );
    assert!(!err.to_string().contains(&callback["code"]), "{err}");
}

#[tokio::test]
async fn discovery_refuses_a_provider_announcing_another_issuer() {
    let node = NodeProvider::start().await;
    let err = discover(&config(&format!("{}/", node.issuer), "orchard"))
        .await
        .unwrap_err();
    assert!(matches!(err, OidcError::WrongIssuer { .. }), "{err:?}");
}

// ---- crafted tokens from an in-process stub ----------------------------------------------

/// What the stub's token endpoint answers, and what it last received.
struct Stub {
    issuer: String,
    jwks: Value,
    token_status: StatusCode,
    token_body: String,
    token_headers: Vec<(&'static str, String)>,
    last_request: Option<(HeaderMap, String)>,
}

type Shared = Arc<Mutex<Stub>>;

struct StubProvider {
    issuer: String,
    shared: Shared,
    key: p256::ecdsa::SigningKey,
}

const KID: &str = "test-key";
const CLIENT: &str = "orchard";

fn random_signing_key() -> p256::ecdsa::SigningKey {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    p256::ecdsa::SigningKey::from_slice(&bytes).unwrap()
}

fn jwk(key: &p256::ecdsa::SigningKey, kid: &str) -> Value {
    let point = key.verifying_key().to_encoded_point(false);
    json!({
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
        "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
    })
}

impl StubProvider {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let key = random_signing_key();
        let shared = Arc::new(Mutex::new(Stub {
            issuer: issuer.clone(),
            jwks: json!({ "keys": [jwk(&key, KID)] }),
            token_status: StatusCode::OK,
            token_body: String::new(),
            token_headers: Vec::new(),
            last_request: None,
        }));
        let app =
            axum::Router::new()
                .route(
                    "/.well-known/openid-configuration",
                    get(|State(s): State<Shared>| async move {
                        let issuer = s.lock().unwrap().issuer.clone();
                        axum::Json(json!({
                            "issuer": issuer,
                            "authorization_endpoint": format!("{issuer}/auth"),
                            "token_endpoint": format!("{issuer}/token"),
                            "jwks_uri": format!("{issuer}/jwks"),
                            "code_challenge_methods_supported": ["S256"],
                        }))
                    }),
                )
                .route(
                    "/jwks",
                    get(|State(s): State<Shared>| async move {
                        axum::Json(s.lock().unwrap().jwks.clone())
                    }),
                )
                .route(
                    "/token",
                    post(
                        |State(s): State<Shared>, headers: HeaderMap, body: String| async move {
                            let mut stub = s.lock().unwrap();
                            stub.last_request = Some((headers, body));
                            let mut response =
                                (stub.token_status, stub.token_body.clone()).into_response();
                            for (name, value) in &stub.token_headers {
                                response.headers_mut().insert(*name, value.parse().unwrap());
                            }
                            response
                        },
                    ),
                )
                .with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            issuer,
            shared,
            key,
        }
    }

    fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    /// Claims a correct ID token for `nonce` would carry.
    fn claims(&self, nonce: &str) -> Value {
        json!({
            "iss": self.issuer, "sub": "crafted", "aud": CLIENT, "nonce": nonce,
            "iat": Self::now(), "exp": Self::now() + 300,
            "email": "crafted@example.test", "groups": ["orchard-admins"],
        })
    }

    fn sign(&self, header: &Value, claims: &Value, key: &p256::ecdsa::SigningKey) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature: p256::ecdsa::Signature = key.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    fn answer_with_id_token(&self, id_token: &str) {
        let mut stub = self.shared.lock().unwrap();
        stub.token_status = StatusCode::OK;
        stub.token_headers.clear();
        stub.token_body = json!({
            "access_token": "opaque", "token_type": "Bearer", "expires_in": 300,
            "id_token": id_token,
        })
        .to_string();
    }

    /// Starts a sign-in, lets `make_token` craft the ID token from the nonce, and completes.
    async fn complete_with(
        &self,
        provider: &OidcProvider,
        make_token: impl FnOnce(&str) -> String,
    ) -> Result<backend::oidc::OidcIdentity, OidcError> {
        let (url, pending) = provider.begin(REDIRECT_URI, None);
        let query: BTreeMap<_, _> = url.query_pairs().into_owned().collect();
        self.answer_with_id_token(&make_token(&query["nonce"]));
        provider
            .complete(pending, &query["state"], "the-code")
            .await
    }
}

fn es256(kid: &str) -> Value {
    json!({ "alg": "ES256", "typ": "JWT", "kid": kid })
}

#[tokio::test]
async fn crafted_id_tokens_are_checked_claim_by_claim() {
    let stub = StubProvider::start().await;
    let provider = discover(&config(&stub.issuer, CLIENT)).await.unwrap();
    let other_key = random_signing_key();
    let stub = &stub;

    let identity = stub
        .complete_with(&provider, |n| {
            stub.sign(&es256(KID), &stub.claims(n), &stub.key)
        })
        .await
        .unwrap();
    assert_eq!(identity.subject, "crafted");
    assert_eq!(identity.groups, ["orchard-admins"]);
    assert!(!identity.email_verified);

    type Case<'a> = (
        &'a str,
        Box<dyn Fn(&str) -> String + 'a>,
        fn(&OidcError) -> bool,
    );
    let with = |edit: fn(&mut Value)| {
        move |nonce: &str| {
            let mut claims = stub.claims(nonce);
            edit(&mut claims);
            stub.sign(&es256(KID), &claims, &stub.key)
        }
    };
    let cases: Vec<Case> = vec![
        (
            "another audience",
            Box::new(with(|c| c["aud"] = json!("someone-else"))),
            |e| matches!(e, OidcError::WrongAudience),
        ),
        (
            "several audiences without azp",
            Box::new(with(|c| c["aud"] = json!([CLIENT, "someone-else"]))),
            |e| matches!(e, OidcError::WrongAudience),
        ),
        (
            "azp naming another client",
            Box::new(with(|c| c["azp"] = json!("someone-else"))),
            |e| matches!(e, OidcError::WrongAudience),
        ),
        (
            "expired an hour ago",
            Box::new(with(|c| c["exp"] = json!(StubProvider::now() - 3600))),
            |e| matches!(e, OidcError::Expired),
        ),
        (
            "issued an hour from now",
            Box::new(with(|c| c["iat"] = json!(StubProvider::now() + 3600))),
            |e| matches!(e, OidcError::IssuedInFuture),
        ),
        (
            "another nonce",
            Box::new(with(|c| c["nonce"] = json!("replayed-nonce"))),
            |e| matches!(e, OidcError::NonceMismatch),
        ),
        (
            "no nonce",
            Box::new(with(|c| {
                c.as_object_mut().unwrap().remove("nonce");
            })),
            |e| matches!(e, OidcError::NonceMismatch),
        ),
        (
            "another issuer",
            Box::new(with(|c| c["iss"] = json!("https://evil.example"))),
            |e| matches!(e, OidcError::WrongIssuer { .. }),
        ),
        (
            "no exp",
            Box::new(with(|c| {
                c.as_object_mut().unwrap().remove("exp");
            })),
            |e| matches!(e, OidcError::MissingClaim { claim: "exp" }),
        ),
        (
            "signed by another key under the same kid",
            Box::new(|n: &str| stub.sign(&es256(KID), &stub.claims(n), &other_key)),
            |e| matches!(e, OidcError::BadSignature),
        ),
        (
            "payload swapped after signing",
            Box::new(|n: &str| {
                let signed = stub.sign(&es256(KID), &stub.claims(n), &stub.key);
                let mut parts: Vec<String> = signed.split('.').map(str::to_owned).collect();
                let mut claims = stub.claims(n);
                claims["sub"] = json!("admin");
                parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
                parts.join(".")
            }),
            |e| matches!(e, OidcError::BadSignature),
        ),
        (
            "alg none",
            Box::new(|n: &str| {
                let header = URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string());
                let claims = URL_SAFE_NO_PAD.encode(stub.claims(n).to_string());
                format!("{header}.{claims}.")
            }),
            |e| matches!(e, OidcError::UnsupportedAlgorithm { .. }),
        ),
        (
            "alg HS256",
            Box::new(|n: &str| {
                stub.sign(
                    &json!({"alg": "HS256", "kid": KID}),
                    &stub.claims(n),
                    &stub.key,
                )
            }),
            |e| matches!(e, OidcError::UnsupportedAlgorithm { .. }),
        ),
        (
            "RS256 header on an EC signature",
            Box::new(|n: &str| {
                stub.sign(
                    &json!({"alg": "RS256", "kid": KID}),
                    &stub.claims(n),
                    &stub.key,
                )
            }),
            |e| matches!(e, OidcError::UnknownKey { .. }),
        ),
        (
            "an unknown kid",
            Box::new(|n: &str| stub.sign(&es256("rotated"), &stub.claims(n), &other_key)),
            |e| matches!(e, OidcError::UnknownKey { .. }),
        ),
        (
            "not a JWT",
            Box::new(|_: &str| "not-a-jwt".to_owned()),
            |e| matches!(e, OidcError::MalformedToken { .. }),
        ),
    ];
    for (name, make_token, expected) in cases {
        let result = stub.complete_with(&provider, make_token).await;
        match result {
            Err(e) => assert!(expected(&e), "{name}: got {e:?}"),
            Ok(identity) => panic!("{name}: accepted as {identity:?}"),
        }
    }

    let identity = stub
        .complete_with(&provider, |n| {
            let mut claims = stub.claims(n);
            claims["aud"] = json!([CLIENT, "api"]);
            claims["azp"] = json!(CLIENT);
            stub.sign(&es256(KID), &claims, &stub.key)
        })
        .await
        .unwrap();
    assert_eq!(
        identity.subject, "crafted",
        "several audiences with azp = client"
    );
}

#[tokio::test]
async fn the_token_request_carries_the_pkce_verifier_and_basic_client_credentials() {
    let stub = StubProvider::start().await;
    let provider = discover(&config(&stub.issuer, CLIENT)).await.unwrap();
    let (url, pending) = provider.begin(REDIRECT_URI, None);
    let query: BTreeMap<_, _> = url.query_pairs().into_owned().collect();
    stub.answer_with_id_token(&stub.sign(&es256(KID), &stub.claims(&query["nonce"]), &stub.key));

    provider
        .complete(pending, &query["state"], "the-code")
        .await
        .unwrap();

    let (headers, body) = stub.shared.lock().unwrap().last_request.take().unwrap();
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code"], "the-code");
    assert_eq!(form["redirect_uri"], REDIRECT_URI);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(form["code_verifier"].as_bytes()));
    assert_eq!(challenge, query["code_challenge"]);
    assert!(!form.contains_key("client_secret"));
    let expected = format!("Basic {}", STANDARD.encode(format!("{CLIENT}:{SECRET}")));
    assert_eq!(headers["authorization"], expected.as_str());
    for q in ["state", "nonce", "code_challenge"] {
        assert!(query[q].len() >= 43, "{q} carries at least 256 bits");
    }
}

#[tokio::test]
async fn token_endpoint_errors_keep_only_the_status_and_the_oauth_error_code() {
    let stub = StubProvider::start().await;
    let provider = discover(&config(&stub.issuer, CLIENT)).await.unwrap();
    {
        let mut s = stub.shared.lock().unwrap();
        s.token_status = StatusCode::BAD_REQUEST;
        s.token_body =
            json!({"error": "invalid_grant", "error_description": "code the-code is spent"})
                .to_string();
    }
    let (url, pending) = provider.begin(REDIRECT_URI, None);
    let state = url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let err = provider
        .complete(pending, &state, "the-code")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OidcError::TokenExchange { status: 400, error: Some(e) } if e == "invalid_grant"),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains("the-code"));
}

#[tokio::test]
async fn the_token_client_does_not_follow_redirects() {
    let stub = StubProvider::start().await;
    let provider = discover(&config(&stub.issuer, CLIENT)).await.unwrap();
    {
        let mut s = stub.shared.lock().unwrap();
        s.token_status = StatusCode::TEMPORARY_REDIRECT;
        s.token_body = String::new();
        s.token_headers = vec![(
            "location",
            "http://169.254.169.254/latest/meta-data".to_owned(),
        )];
    }
    let (url, pending) = provider.begin(REDIRECT_URI, None);
    let state = url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let err = provider
        .complete(pending, &state, "the-code")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            OidcError::TokenExchange {
                status: 307,
                error: None
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_pending_login_older_than_ten_minutes_is_refused() {
    let stub = StubProvider::start().await;
    let provider = discover(&config(&stub.issuer, CLIENT)).await.unwrap();
    let (url, pending) = provider.begin(REDIRECT_URI, None);
    let state = url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let mut record = serde_json::to_value(&pending).unwrap();
    record["created_at"] = json!(StubProvider::now() - 11 * 60);
    let old: PendingLogin = serde_json::from_value(record).unwrap();
    let err = provider
        .complete(old, &state, "the-code")
        .await
        .unwrap_err();
    assert!(matches!(err, OidcError::PendingExpired), "{err:?}");
}

#[tokio::test]
async fn a_rotated_key_is_fetched_on_an_unknown_kid_but_not_more_often_than_allowed() {
    let stub = StubProvider::start().await;
    let rotated = random_signing_key();
    let throttled = discover(&config(&stub.issuer, CLIENT)).await.unwrap();
    let eager = discover(&config(&stub.issuer, CLIENT))
        .await
        .unwrap()
        .with_jwks_refresh_interval(Duration::ZERO);
    stub.shared.lock().unwrap().jwks = json!({ "keys": [jwk(&rotated, "rotated")] });

    let err = stub
        .complete_with(&throttled, |n| {
            stub.sign(&es256("rotated"), &stub.claims(n), &rotated)
        })
        .await
        .unwrap_err();
    assert!(matches!(err, OidcError::UnknownKey { .. }), "{err:?}");

    let identity = stub
        .complete_with(&eager, |n| {
            stub.sign(&es256("rotated"), &stub.claims(n), &rotated)
        })
        .await
        .unwrap();
    assert_eq!(identity.subject, "crafted");
}
