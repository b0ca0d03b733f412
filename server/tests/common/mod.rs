//! The real router on port 0 over a fresh SQLite file, with helpers to create users,
//! organizations and roles, and to sign in over HTTP as a browser would.
//!
//! Each test binary includes this module (`mod common;`) and uses what it needs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use backend::identity::password::{HashCost, Password, PasswordHasher};
use backend::identity::users::{NewLocalUser, create_user};
use backend::identity::{Role, UserId};
use backend::orgs::{NewOrganization, OrgId};
use backend::vault::{MasterKey, Vault};
use backend::{Config, Store};
use leptos::server_fn::ServerFn;
use reqwest::header::{CONTENT_TYPE, ORIGIN};

/// Longest any request of a test may take: a server that never answers fails the test
/// with the request's URL in the panic instead of hanging the suite.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// A password every test user gets; long enough for the password rules.
pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub base: String,
    pub store: Arc<dyn Store>,
    pub vault: Arc<Vault>,
    pub config: Config,
    /// A client without cookies or redirects, for raw requests.
    pub client: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
    dir: Arc<tempfile::TempDir>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestApp {
    /// A fresh instance with default settings.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// A fresh instance; `configure` may change the settings first.
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> Self {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let key = MasterKey::generate();
        Self::start(dir, key, configure).await
    }

    /// A second instance on the same database and master key (a restart).
    pub async fn restart(&self) -> Self {
        let key = MasterKey::from_hex(&std::fs::read_to_string(self.key_file()).unwrap()).unwrap();
        let config = self.config.clone();
        Self::start(self.dir.clone(), key, move |c| *c = config).await
    }

    async fn start(
        dir: Arc<tempfile::TempDir>,
        key: MasterKey,
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let site = dir.path().join("site");
        std::fs::create_dir_all(site.join("pkg")).unwrap();
        std::fs::write(site.join("pkg/orchard.css"), "body{}").unwrap();
        std::fs::write(site.join("pkg/orchard.css.br"), b"precompressed").unwrap();
        std::fs::write(dir.path().join("master.key"), key.to_hex().as_bytes()).unwrap();
        let mut config = Config::default();
        config.database.url = format!("sqlite://{}/orchard.db", dir.path().display());
        config.site.root = site;
        config.vault.key_file = dir.path().join("master.key");
        // Every test client signs in from 127.0.0.1; tests of the per-address limit set it.
        config.auth.address_max_attempts = 100_000;
        configure(&mut config);
        let store = backend::store::connect(&config.database).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let vault = Arc::new(Vault::new(&key));
        let state =
            server::app_state(config.clone(), store.clone(), vault.clone(), address).unwrap();
        let app = server::build_app(state);
        let server = tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await;
        });
        Self {
            base: format!("http://{address}"),
            store,
            vault,
            config,
            client: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            server,
            dir,
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("master.key")
    }

    pub fn database_file(&self) -> PathBuf {
        self.dir.path().join("orchard.db")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn host(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// Creates a local user with [`PASSWORD`].
    pub async fn create_user(&self, username: &str, instance_admin: bool) -> UserId {
        let hasher = PasswordHasher::with_cost(HashCost::TEST_ONLY, 2);
        let new = NewLocalUser {
            username: username.to_owned(),
            display_name: String::new(),
            email: None,
            password: Password::new(PASSWORD),
            instance_admin,
        };
        create_user(
            self.store.as_ref(),
            &hasher,
            &new,
            backend::identity::now_utc(),
        )
        .await
        .unwrap()
        .id
    }

    pub async fn create_org(&self, name: &str) -> OrgId {
        self.store
            .create_organization(&NewOrganization::parse(name).unwrap())
            .await
            .unwrap()
            .id
    }

    pub async fn grant(&self, user: UserId, org: OrgId, role: Role) {
        self.store.set_membership(user, org, role).await.unwrap();
    }

    /// A user with `role` in `org` (or none), signed in: returns their browser.
    pub async fn user_with_role(&self, username: &str, org: OrgId, role: Option<Role>) -> Browser {
        let id = self.create_user(username, false).await;
        if let Some(role) = role {
            self.grant(id, org, role).await;
        }
        self.sign_in(username, PASSWORD).await
    }

    /// A fresh browser (cookie jar, no redirects followed) on this instance.
    pub fn browser(&self) -> Browser {
        Browser {
            base: self.base.clone(),
            client: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    /// Signs in through the sign-in server function; panics unless it succeeds.
    pub async fn sign_in(&self, username: &str, password: &str) -> Browser {
        let browser = self.browser();
        let response = browser
            .call(
                app::api::SignIn::PATH,
                &[("username", username), ("password", password)],
            )
            .await;
        assert_eq!(
            response.status(),
            reqwest::StatusCode::OK,
            "sign-in of {username} failed: {}",
            response.text().await.unwrap_or_default()
        );
        browser
    }
}

/// A browser-like client: keeps cookies, sends same-origin headers on calls.
#[derive(Clone)]
pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
}

impl Browser {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// Calls a server function (form-encoded POST) from one of Orchard's own pages.
    pub async fn call(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header(ORIGIN, &self.base)
            .header("sec-fetch-site", "same-origin")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(serde_urlencoded(form))
            .send()
            .await
            .unwrap()
    }

    /// The same call as a page on another site would make it.
    pub async fn call_cross_site(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header(ORIGIN, "https://evil.example")
            .header("sec-fetch-site", "cross-site")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(serde_urlencoded(form))
            .send()
            .await
            .unwrap()
    }
}

/// `a=1&b=two%20words`.
pub fn serde_urlencoded(form: &[(&str, &str)]) -> String {
    form.iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Stores `devices` in the organization's mirror the way a sync does (one page), under a new
/// API account, and returns the account.
pub async fn mirror(
    app: &TestApp,
    org: OrgId,
    devices: &[backend::mirror::DeviceAttributes],
) -> backend::accounts::ApiAccountId {
    mirror_with_services(app, org, devices, &[], &[]).await
}

/// [`mirror`], then the services `(id, name)` and which device is on which service
/// `(serial, service id)`, as the end of a sync stores them.
pub async fn mirror_with_services(
    app: &TestApp,
    org: OrgId,
    devices: &[backend::mirror::DeviceAttributes],
    services: &[(&str, &str)],
    membership: &[(&str, &str)],
) -> backend::accounts::ApiAccountId {
    use backend::accounts::{self, AccountKind, AccountUrls, NewApiAccount};
    use backend::mirror::ServiceAttributes;
    use backend::mirror::sync::{Known, SyncCause, SyncPhase, store_devices};
    use backend::store::mirror::{Checkpoint, DeviceChange};

    let pem = {
        use p256::pkcs8::EncodePrivateKey as _;
        p256::SecretKey::random(&mut rand::rngs::OsRng)
            .to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
            .unwrap()
            .to_string()
    };
    let new = NewApiAccount::parse(
        "Mirrored",
        &format!("BUSINESSAPI.{}", uuid::Uuid::new_v4()),
        &uuid::Uuid::new_v4().to_string(),
        &pem,
        AccountKind::Business,
        AccountUrls::apple(AccountKind::Business),
    )
    .unwrap();
    let actor = backend::audit::Actor {
        user_id: None,
        client_addr: None,
    };
    let account = accounts::add_account(app.store.as_ref(), &app.vault, &actor, org, new)
        .await
        .unwrap()
        .id;
    let run = app
        .store
        .start_sync_run(org, account, SyncCause::Manual, 1)
        .await
        .unwrap();
    let checkpoint = Checkpoint {
        run: run.id,
        phase: SyncPhase::ServiceList,
        cursor: None,
        service_index: 0,
        rate_limited: 0,
        budget_wait_ms: 0,
        now: 1_700_000_000,
    };
    store_devices(
        app.store.as_ref(),
        org,
        account,
        &checkpoint,
        devices,
        Known::Maybe,
    )
    .await
    .unwrap();
    if services.is_empty() {
        return account;
    }
    let services: Vec<ServiceAttributes> = services
        .iter()
        .map(|(id, name)| ServiceAttributes {
            id: (*id).to_owned(),
            name: (*name).to_owned(),
            server_type: Some("MDM".to_owned()),
            default_families: None,
            created_at: None,
            updated_at: None,
        })
        .collect();
    app.store
        .store_services(org, account, &checkpoint, &services)
        .await
        .unwrap();
    let changes: Vec<DeviceChange> = membership
        .iter()
        .map(|(serial, service)| DeviceChange {
            serial: (*serial).to_owned(),
            absent_since: None,
            service_id: Some((*service).to_owned()),
        })
        .collect();
    app.store
        .finish_sync_run(org, run.id, &changes, 1_700_000_000, None)
        .await
        .unwrap();
    account
}
