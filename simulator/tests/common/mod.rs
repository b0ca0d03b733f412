//! Shared helpers for the HTTP-level tests: plain `reqwest` + `serde_json::Value`,
//! and an ES256 assertion signer written here (not shared with the simulator or
//! the client crate) so a signing bug cannot hide on both sides.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey;
use serde_json::{Value, json};
use simulator::{RunningSimulator, SimulatorBuilder};

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Signs a compact JWS (ES256) over `header` and `claims`.
pub fn sign(key: &SigningKey, header: &Value, claims: &Value) -> String {
    let h = URL_SAFE_NO_PAD.encode(header.to_string());
    let c = URL_SAFE_NO_PAD.encode(claims.to_string());
    let sig: Signature = key.sign(format!("{h}.{c}").as_bytes());
    format!("{h}.{c}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

pub fn key_of(sim: &RunningSimulator) -> SigningKey {
    SigningKey::from_pkcs8_pem(&sim.credentials().private_key_pem)
        .expect("simulator key is PKCS#8 PEM")
}

/// A valid assertion for the simulator's credentials.
pub fn assertion(sim: &RunningSimulator) -> String {
    let c = sim.credentials();
    let t = now();
    sign(
        &key_of(sim),
        &json!({ "alg": "ES256", "kid": c.key_id }),
        &json!({ "iss": c.client_id, "sub": c.client_id, "aud": sim.audience(), "iat": t, "exp": t + 600, "jti": "test" }),
    )
}

pub fn form(sim: &RunningSimulator, assertion: &str, scope: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", sim.credentials().client_id.clone()),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
        ),
        ("client_assertion", assertion.into()),
        ("scope", scope.into()),
    ]
}

pub struct Api {
    pub sim: RunningSimulator,
    pub http: reqwest::Client,
    pub token: String,
}

pub async fn token_for(sim: &RunningSimulator, http: &reqwest::Client) -> String {
    let r = http
        .post(sim.token_url())
        .form(&form(sim, &assertion(sim), "business.api"))
        .send()
        .await
        .expect("token request");
    assert_eq!(r.status(), 200, "token endpoint refused a good assertion");
    let v: Value = r.json().await.expect("token json");
    v["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

pub async fn start(builder: SimulatorBuilder) -> Api {
    let sim = builder.spawn().await.expect("simulator starts");
    let http = reqwest::Client::new();
    let token = token_for(&sim, &http).await;
    Api { sim, http, token }
}

impl Api {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.sim.base_url(), path)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_url(&self, url: &str) -> Result<(u16, Value), reqwest::Error> {
        let r = self.http.get(url).bearer_auth(&self.token).send().await?;
        let status = r.status().as_u16();
        Ok((status, r.json().await?))
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Every line of `GET /_sim/truth` after the summary.
    pub async fn truth(&self) -> Vec<Value> {
        let text = self
            .http
            .get(self.url("/_sim/truth"))
            .send()
            .await
            .expect("truth")
            .text()
            .await
            .expect("truth body");
        text.lines()
            .skip(1)
            .map(|l| serde_json::from_str(l).expect("ndjson line"))
            .collect()
    }

    pub async fn stats(&self) -> Value {
        self.http
            .get(self.url("/_sim/stats"))
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("stats json")
    }
}

/// Asserts the Apple error shape and returns the first error.
#[track_caller]
pub fn apple_error(body: &Value, status: u16) -> Value {
    let e = &body["errors"][0];
    assert_eq!(
        e["status"],
        json!(status.to_string()),
        "status must be a string: {body}"
    );
    for k in ["id", "code", "title", "detail"] {
        assert!(e[k].is_string(), "error member {k} missing: {body}");
    }
    e.clone()
}

pub fn fixtures_dir() -> std::path::PathBuf {
    std::env::var_os("ORCHARD_FIXTURES")
        .map(Into::into)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/apple-business-api/fixtures")
        })
}

pub fn fixture(name: &str) -> Value {
    let path = fixtures_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {name}: {e}"))
}
