//! API accounts, the vault and the audit log, written once and run on SQLite and PostgreSQL.

mod common;

use std::sync::Arc;

use backend::accounts::{
    self, AccountError, AccountInputError, AccountKind, AccountUrls, ApiAccountView, Clients,
    MAX_ACCOUNTS_PER_ORG, NewApiAccount, ValidatedKey,
};
use backend::audit::{self, Actor, AuditError, AuditFilter, AuditPage};
use backend::config::SecretString;
use backend::config::{DemoConfig, DemoMode, VaultConfig};
use backend::demo;
use backend::orgs::{NewOrganization, OrgId};
use backend::store::DatabaseKind;
use backend::vault::{self, MasterKey, Vault, VaultError};
use base64::Engine as _;
use common::Ctx;
use p256::pkcs8::{EncodePrivateKey as _, LineEnding};

both_backends!(
    accounts_list_without_secrets_and_read_back_equal,
    an_organization_cannot_have_more_than_fifty_accounts,
    rotate_revoke_and_delete_are_audited_and_the_chain_verifies,
    a_canary_key_appears_in_no_stored_byte_debug_output_or_error,
    test_connection_against_the_simulator_records_health,
    a_wrong_key_id_records_a_sanitized_last_error,
    a_hundred_concurrent_appends_keep_the_chain_intact,
    a_tampered_audit_row_is_named_by_its_seq,
    the_vault_creates_its_key_file_and_refuses_a_wrong_key,
    a_missing_key_file_is_refused_once_secrets_exist,
    master_key_rotation_re_encrypts_every_value,
    rotating_the_configured_key_replaces_the_key_file,
    the_demo_organization_survives_a_restart_on_a_new_port,
);

fn test_vault() -> Vault {
    Vault::new(&MasterKey::from_hex(&"0123456789abcdef".repeat(4)).unwrap())
}

/// A fresh P-256 key as PKCS#8 PEM, plus its base64 body and DER for canary searches.
struct Canary {
    pem: String,
    body: String,
    der: Vec<u8>,
}

fn canary() -> Canary {
    let key = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    let der = base64::engine::general_purpose::STANDARD
        .decode(&body)
        .unwrap();
    Canary { pem, body, der }
}

impl Canary {
    /// Every fragment that must never appear: each PEM line, the whole body, the DER.
    #[track_caller]
    fn assert_absent_from_text(&self, what: &str, text: &str) {
        for line in self.pem.lines().filter(|l| !l.starts_with("-----")) {
            assert!(
                !text.contains(line),
                "{what} contains a PEM line of the canary key"
            );
        }
        assert!(
            !text.contains(&self.body),
            "{what} contains the canary's base64"
        );
        assert!(
            !text.contains(&hex::encode(&self.der)),
            "{what} contains the canary's DER in hex"
        );
    }

    #[track_caller]
    fn assert_absent_from_bytes(&self, what: &str, bytes: &[u8]) {
        let needles: Vec<&[u8]> = self
            .pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::as_bytes)
            .chain([self.der.as_slice(), &self.der[self.der.len() - 40..]])
            .collect();
        for needle in needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{what} contains canary key bytes"
            );
        }
    }
}

async fn org(ctx: &Ctx, name: &str) -> OrgId {
    ctx.store
        .create_organization(&NewOrganization::parse(name).unwrap())
        .await
        .unwrap()
        .id
}

fn new_account(name: &str, pem: &str, urls: AccountUrls) -> NewApiAccount {
    NewApiAccount::parse(
        name,
        &format!("BUSINESSAPI.{}", uuid::Uuid::new_v4()),
        &uuid::Uuid::new_v4().to_string(),
        pem,
        AccountKind::Business,
        urls,
    )
    .unwrap()
}

fn admin() -> Actor {
    Actor {
        user_id: Some(uuid::Uuid::new_v4()),
        client_addr: Some("192.0.2.7".parse().unwrap()),
    }
}

async fn accounts_list_without_secrets_and_read_back_equal(ctx: &Ctx) {
    let vault = test_vault();
    let org = org(ctx, "Acme").await;
    let c = canary();
    let new = new_account("Main", &c.pem, AccountUrls::apple(AccountKind::Business));
    let fingerprint = new.key_fingerprint().to_owned();
    let added = accounts::add_account(&*ctx.store, &vault, &admin(), org, new)
        .await
        .unwrap();
    assert_eq!(added.key_fingerprint, fingerprint);
    assert_eq!(added.key_fingerprint.len(), 64);
    let listed = accounts::list_accounts(&*ctx.store, org).await.unwrap();
    assert_eq!(listed, vec![added.clone()]);
    let record = ctx.store.api_account(added.id).await.unwrap();
    assert_eq!(record.view, added);
    let opened = vault
        .open(
            &vault::api_account_key_aad(&added.id.to_string()),
            &record.sealed_key,
        )
        .unwrap();
    assert_eq!(opened.expose(), c.pem.trim().as_bytes());
    assert!(
        accounts::list_accounts(&*ctx.store, OrgId::random())
            .await
            .unwrap()
            .is_empty()
    );
}

async fn an_organization_cannot_have_more_than_fifty_accounts(ctx: &Ctx) {
    let vault = test_vault();
    let org = org(ctx, "Big MSP").await;
    let c = canary();
    for i in 0..MAX_ACCOUNTS_PER_ORG {
        let new = new_account(
            &format!("A{i}"),
            &c.pem,
            AccountUrls::apple(AccountKind::Business),
        );
        accounts::add_account(&*ctx.store, &vault, &Actor::system(), org, new)
            .await
            .unwrap();
    }
    let new = new_account(
        "one too many",
        &c.pem,
        AccountUrls::apple(AccountKind::Business),
    );
    let err = accounts::add_account(&*ctx.store, &vault, &Actor::system(), org, new)
        .await
        .unwrap_err();
    assert!(matches!(err, AccountError::LimitReached), "{err:?}");
    assert!(err.to_string().contains("at most 50"), "{err}");
    let other = self::org(ctx, "Other").await;
    let new = new_account("fine", &c.pem, AccountUrls::apple(AccountKind::Business));
    accounts::add_account(&*ctx.store, &vault, &Actor::system(), other, new)
        .await
        .unwrap();
}

async fn rotate_revoke_and_delete_are_audited_and_the_chain_verifies(ctx: &Ctx) {
    let store = &*ctx.store;
    let vault = Arc::new(test_vault());
    let clients = Clients::new(ctx.store.clone(), vault.clone());
    let org = org(ctx, "Acme").await;
    let actor = admin();
    let added = accounts::add_account(
        store,
        &vault,
        &actor,
        org,
        new_account(
            "Main",
            &canary().pem,
            AccountUrls::apple(AccountKind::Business),
        ),
    )
    .await
    .unwrap();
    let second = canary();
    let new_key_id = uuid::Uuid::new_v4().to_string();
    let rotated = accounts::rotate_key(
        store,
        &vault,
        &clients,
        &actor,
        added.id,
        &new_key_id,
        &second.pem,
    )
    .await
    .unwrap();
    assert_eq!(rotated.key_id, new_key_id);
    assert_ne!(rotated.key_fingerprint, added.key_fingerprint);
    assert!(rotated.rotated_at.is_some());
    let revoked = accounts::revoke(store, &clients, &actor, added.id)
        .await
        .unwrap();
    assert!(revoked.revoked_at.is_some());
    let err = clients.for_account(added.id).await.unwrap_err();
    assert!(matches!(err, AccountError::Revoked), "{err:?}");
    accounts::delete(store, &clients, &actor, added.id)
        .await
        .unwrap();
    assert!(
        accounts::list_accounts(store, org)
            .await
            .unwrap()
            .is_empty()
    );

    let entries = audit::list(
        store,
        &AuditFilter::default(),
        AuditPage {
            before: None,
            limit: 50,
        },
    )
    .await
    .unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "api_account.delete",
            "api_account.revoke",
            "api_account.rotate_key",
            "api_account.add"
        ]
    );
    assert!(
        entries
            .iter()
            .all(|e| e.actor == actor.user_id.unwrap().to_string())
    );
    assert!(
        entries
            .iter()
            .all(|e| e.client_addr.as_deref() == Some("192.0.2.7"))
    );
    let only_adds = audit::list(
        store,
        &AuditFilter {
            action: Some("api_account.add".into()),
            ..AuditFilter::default()
        },
        AuditPage {
            before: None,
            limit: 50,
        },
    )
    .await
    .unwrap();
    assert_eq!(only_adds.len(), 1);
    let older = audit::list(
        store,
        &AuditFilter::default(),
        AuditPage {
            before: Some(3),
            limit: 50,
        },
    )
    .await
    .unwrap();
    assert_eq!(older.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 1]);
    audit::verify_chain(store).await.unwrap();
}

async fn a_canary_key_appears_in_no_stored_byte_debug_output_or_error(ctx: &Ctx) {
    let store = &*ctx.store;
    let vault = Arc::new(test_vault());
    let clients = Clients::new(ctx.store.clone(), vault.clone());
    let c = canary();
    let org = org(ctx, "Canary Corp").await;
    let mut debug_outputs = Vec::new();

    let new = new_account("Canary", &c.pem, AccountUrls::apple(AccountKind::Business));
    debug_outputs.push(format!("{new:?}"));
    debug_outputs.push(format!("{:?}", ValidatedKey::parse(&c.pem).unwrap()));
    let view = accounts::add_account(store, &vault, &admin(), org, new)
        .await
        .unwrap();
    debug_outputs.push(format!("{view:?}"));
    debug_outputs.push(serde_json::to_string(&view).unwrap());
    let record = store.api_account(view.id).await.unwrap();
    debug_outputs.push(format!("{record:?}"));
    let opened = vault
        .open(
            &vault::api_account_key_aad(&view.id.to_string()),
            &record.sealed_key,
        )
        .unwrap();
    debug_outputs.push(format!("{opened:?}"));
    let client = clients.for_account(view.id).await.unwrap();
    debug_outputs.push(format!("{client:?}"));
    debug_outputs.push(format!("{clients:?}"));
    debug_outputs.push(format!("{vault:?}"));
    let listed = accounts::list_accounts(store, org).await.unwrap();
    debug_outputs.push(format!("{listed:?}"));
    let entries = audit::list(
        store,
        &AuditFilter::default(),
        AuditPage {
            before: None,
            limit: 50,
        },
    )
    .await
    .unwrap();
    debug_outputs.push(format!("{entries:?}"));
    let rotated = accounts::rotate_key(
        store,
        &vault,
        &clients,
        &admin(),
        view.id,
        &uuid::Uuid::new_v4().to_string(),
        &c.pem,
    )
    .await
    .unwrap();
    debug_outputs.push(format!("{rotated:?}"));
    for (i, printed) in debug_outputs.iter().enumerate() {
        c.assert_absent_from_text(&format!("debug output #{i}"), printed);
    }

    // Errors for corrupted or wrong input never echo the key.
    let mut errors = Vec::new();
    let mut corrupted = c.pem.clone();
    let mid = corrupted.len() / 2;
    corrupted.replace_range(mid..mid + 1, "!");
    let truncated = c.pem[..c.pem.len() / 2].to_owned();
    let relabelled = c.pem.replace("PRIVATE KEY", "CERTIFICATE");
    let no_end = c.pem.replace("-----END PRIVATE KEY-----", "");
    let body_only = c.body.clone();
    for bad in [&corrupted, &truncated, &relabelled, &no_end, &body_only] {
        let err = NewApiAccount::parse(
            "x",
            &format!("BUSINESSAPI.{}", uuid::Uuid::new_v4()),
            &uuid::Uuid::new_v4().to_string(),
            bad,
            AccountKind::Business,
            AccountUrls::apple(AccountKind::Business),
        )
        .unwrap_err();
        assert!(matches!(
            err,
            AccountInputError::Key(_) | AccountInputError::KeyWrongBlock
        ));
        errors.push(format!("{err} / {err:?}"));
        let err = accounts::rotate_key(
            store,
            &vault,
            &clients,
            &admin(),
            view.id,
            &uuid::Uuid::new_v4().to_string(),
            bad,
        )
        .await
        .unwrap_err();
        errors.push(format!("{err} / {err:?}"));
    }
    // A valid key with a bad client id: the error names the field, not the key.
    let err = NewApiAccount::parse(
        "x",
        "nope",
        "nope",
        &c.pem,
        AccountKind::Business,
        AccountUrls::apple(AccountKind::Business),
    )
    .unwrap_err();
    errors.push(format!("{err} / {err:?}"));
    for (i, message) in errors.iter().enumerate() {
        c.assert_absent_from_text(&format!("error #{i}"), message);
    }

    // Not one plaintext byte in the database file or its WAL.
    if let Some(file) = &ctx.sqlite_file {
        let wal = file.with_extension("db-wal");
        for path in [file.clone(), wal.clone()] {
            if let Ok(bytes) = std::fs::read(&path) {
                c.assert_absent_from_bytes(&path.display().to_string(), &bytes);
            }
        }
        ctx.store.close().await;
        let bytes = std::fs::read(file).unwrap();
        assert!(bytes.len() > 4096);
        c.assert_absent_from_bytes("the SQLite file after checkpoint", &bytes);
    } else {
        assert_eq!(ctx.kind(), DatabaseKind::Postgres);
        for table in ["api_accounts", "audit_log", "vault_meta"] {
            let dump = ctx.postgres_table_text(table).await;
            c.assert_absent_from_text(&format!("PostgreSQL table {table}"), &dump);
        }
        assert!(
            ctx.postgres_table_text("api_accounts")
                .await
                .contains("\\x")
        );
    }
}

async fn test_connection_against_the_simulator_records_health(ctx: &Ctx) {
    let sim = simulator::Simulator::builder()
        .seed(7)
        .devices(20)
        .spawn()
        .await
        .unwrap();
    let store = &*ctx.store;
    let vault = Arc::new(test_vault());
    let clients = Clients::new(ctx.store.clone(), vault.clone());
    let org = org(ctx, "Sim").await;
    let creds = sim.credentials();
    let new = NewApiAccount::parse(
        "Simulated",
        &creds.client_id,
        &creds.key_id,
        &creds.private_key_pem,
        AccountKind::Business,
        AccountUrls {
            api_base_url: sim.base_url().to_owned(),
            token_url: sim.token_url(),
            audience: sim.audience().to_owned(),
        },
    )
    .unwrap();
    let view = accounts::add_account(store, &vault, &admin(), org, new)
        .await
        .unwrap();
    let report = accounts::test_connection(store, &clients, &admin(), view.id)
        .await
        .unwrap();
    assert!(report.ok && report.token_ok, "{report:?}");
    let after = store.api_account(view.id).await.unwrap().view;
    assert!(after.last_token_at.is_some());
    assert!(after.last_success_at.is_some());
    assert_eq!(after.last_error, None);
    let a = clients.for_account(view.id).await.unwrap();
    let b = clients.for_account(view.id).await.unwrap();
    assert!(
        Arc::ptr_eq(a.budget(), b.budget()),
        "callers share one budget"
    );
    assert!(Arc::ptr_eq(a.budget(), &clients.budget(view.id)));
    sim.shutdown().await;
}

async fn a_wrong_key_id_records_a_sanitized_last_error(ctx: &Ctx) {
    let sim = simulator::Simulator::builder()
        .seed(8)
        .devices(10)
        .spawn()
        .await
        .unwrap();
    let store = &*ctx.store;
    let vault = Arc::new(test_vault());
    let clients = Clients::new(ctx.store.clone(), vault.clone());
    let org = org(ctx, "Sim").await;
    let creds = sim.credentials();
    let new = NewApiAccount::parse(
        "Wrong kid",
        &creds.client_id,
        &uuid::Uuid::new_v4().to_string(),
        &creds.private_key_pem,
        AccountKind::Business,
        AccountUrls {
            api_base_url: sim.base_url().to_owned(),
            token_url: sim.token_url(),
            audience: sim.audience().to_owned(),
        },
    )
    .unwrap();
    let view = accounts::add_account(store, &vault, &admin(), org, new)
        .await
        .unwrap();
    let report = accounts::test_connection(store, &clients, &admin(), view.id)
        .await
        .unwrap();
    assert!(!report.ok && !report.token_ok, "{report:?}");
    let after = store.api_account(view.id).await.unwrap().view;
    let error = after.last_error.expect("a recorded error");
    assert!(
        error.chars().count() <= accounts::MAX_ERROR_CHARS,
        "{error}"
    );
    assert!(error.contains("token"), "{error}");
    assert!(after.last_success_at.is_none());
    assert!(after.last_token_at.is_none());
    let body: String = creds
        .private_key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    for line in creds
        .private_key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
    {
        assert!(!error.contains(line), "{error}");
    }
    assert!(!error.contains(&body));
    assert!(!error.contains("eyJ"), "no JWT in {error}");
    sim.shutdown().await;
}

async fn a_hundred_concurrent_appends_keep_the_chain_intact(ctx: &Ctx) {
    let mut tasks = Vec::new();
    for i in 0..100 {
        let store = ctx.store.clone();
        tasks.push(tokio::spawn(async move {
            audit::append(
                &*store,
                &Actor::system(),
                audit::AuditAction::ApiAccountTested,
                &format!("api_account:{i}"),
                serde_json::json!({ "i": i }),
            )
            .await
            .unwrap()
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap().seq);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=100).collect::<Vec<i64>>());
    audit::verify_chain(&*ctx.store).await.unwrap();
}

async fn a_tampered_audit_row_is_named_by_its_seq(ctx: &Ctx) {
    for i in 0..10 {
        audit::append(
            &*ctx.store,
            &Actor::system(),
            audit::AuditAction::ApiAccountAdded,
            &format!("api_account:{i}"),
            serde_json::json!({}),
        )
        .await
        .unwrap();
    }
    audit::verify_chain(&*ctx.store).await.unwrap();
    ctx.execute_raw("UPDATE audit_log SET subject = 'api_account:forged' WHERE seq = 7")
        .await;
    let err = audit::verify_chain(&*ctx.store).await.unwrap_err();
    assert!(matches!(err, AuditError::TamperedAt { seq: 7 }), "{err:?}");
    assert!(err.to_string().contains('7'));
    ctx.execute_raw("DELETE FROM audit_log WHERE seq = 4").await;
    let err = audit::verify_chain(&*ctx.store).await.unwrap_err();
    assert!(matches!(err, AuditError::TamperedAt { seq: 4 }), "{err:?}");
}

fn vault_config(ctx: &Ctx, master_key: Option<&str>) -> VaultConfig {
    VaultConfig {
        master_key: master_key.map(|k| SecretString::from(k.to_owned())),
        key_file: ctx.dir.join("keys/master.key"),
    }
}

async fn the_vault_creates_its_key_file_and_refuses_a_wrong_key(ctx: &Ctx) {
    let config = vault_config(ctx, None);
    let vault = Vault::open_at_startup(&config, &*ctx.store).await.unwrap();
    assert!(config.key_file.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&config.key_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Same key file: opens again.
    Vault::open_at_startup(&config, &*ctx.store).await.unwrap();
    let org = org(ctx, "Acme").await;
    accounts::add_account(
        &*ctx.store,
        &vault,
        &Actor::system(),
        org,
        new_account(
            "Main",
            &canary().pem,
            AccountUrls::apple(AccountKind::Business),
        ),
    )
    .await
    .unwrap();
    let other = MasterKey::generate().to_hex();
    let err = Vault::open_at_startup(&vault_config(ctx, Some(&other)), &*ctx.store)
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::WrongMasterKey), "{err:?}");
    assert!(err.to_string().contains("wrong master key"));
    assert!(!err.to_string().contains(other.as_str()));
}

async fn a_missing_key_file_is_refused_once_secrets_exist(ctx: &Ctx) {
    let config = vault_config(ctx, None);
    let vault = Vault::open_at_startup(&config, &*ctx.store).await.unwrap();
    let org = org(ctx, "Acme").await;
    accounts::add_account(
        &*ctx.store,
        &vault,
        &Actor::system(),
        org,
        new_account(
            "Main",
            &canary().pem,
            AccountUrls::apple(AccountKind::Business),
        ),
    )
    .await
    .unwrap();
    std::fs::remove_file(&config.key_file).unwrap();
    let err = Vault::open_at_startup(&config, &*ctx.store)
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::KeyFileMissing { .. }), "{err:?}");
    assert!(
        !config.key_file.exists(),
        "no new key replaces the lost one"
    );
}

async fn master_key_rotation_re_encrypts_every_value(ctx: &Ctx) {
    let old_hex = MasterKey::generate().to_hex();
    let old = Vault::open_at_startup(&vault_config(ctx, Some(&old_hex)), &*ctx.store)
        .await
        .unwrap();
    let org = org(ctx, "Acme").await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let view: ApiAccountView = accounts::add_account(
            &*ctx.store,
            &old,
            &Actor::system(),
            org,
            new_account(
                &format!("A{i}"),
                &canary().pem,
                AccountUrls::apple(AccountKind::Business),
            ),
        )
        .await
        .unwrap();
        ids.push(view.id);
    }
    let new_hex = MasterKey::generate().to_hex();
    let new = Vault::new(&MasterKey::from_hex(&new_hex).unwrap());
    let count = vault::rotate_master_key(&*ctx.store, &old, &new)
        .await
        .unwrap();
    assert_eq!(count, 4, "three keys and the key check");
    let rotations = audit::list(
        &*ctx.store,
        &AuditFilter {
            action: Some("vault.rotate_master_key".into()),
            ..AuditFilter::default()
        },
        AuditPage {
            before: None,
            limit: 10,
        },
    )
    .await
    .unwrap();
    assert_eq!(rotations.len(), 1);
    for id in ids {
        let record = ctx.store.api_account(id).await.unwrap();
        let aad = vault::api_account_key_aad(&id.to_string());
        assert!(old.open(&aad, &record.sealed_key).is_err());
        assert!(new.open(&aad, &record.sealed_key).is_ok());
    }
    Vault::open_at_startup(&vault_config(ctx, Some(&new_hex)), &*ctx.store)
        .await
        .unwrap();
    let err = Vault::open_at_startup(&vault_config(ctx, Some(&old_hex)), &*ctx.store)
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::WrongMasterKey), "{err:?}");
    // Rotating with the wrong old key changes nothing.
    let err = vault::rotate_master_key(&*ctx.store, &old, &new)
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::Store(_)), "{err:?}");
    Vault::open_at_startup(&vault_config(ctx, Some(&new_hex)), &*ctx.store)
        .await
        .unwrap();
}

async fn the_demo_organization_survives_a_restart_on_a_new_port(ctx: &Ctx) {
    let store = &*ctx.store;
    let vault = Arc::new(test_vault());
    let config = DemoConfig {
        enabled: DemoMode::Auto,
        devices: 50,
        seed: 3,
        ..DemoConfig::default()
    };
    assert!(demo::demo_wanted(store, &config).await.unwrap());
    let first = demo::start_demo(store, &vault, &config).await.unwrap();
    let (org, account, first_url) = (first.org(), first.account(), first.base_url().to_owned());
    let second = demo::start_demo(store, &vault, &config).await.unwrap();
    first.shutdown().await;
    assert_eq!(second.org(), org);
    assert_eq!(second.account(), account);
    let view = store.api_account(account).await.unwrap().view;
    assert_eq!(view.urls.api_base_url, second.base_url());
    assert_ne!(view.urls.api_base_url, first_url);
    let clients = Clients::new(ctx.store.clone(), vault.clone());
    let report = accounts::test_connection(store, &clients, &Actor::system(), account)
        .await
        .unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(accounts::list_accounts(store, org).await.unwrap().len(), 1);
    second.shutdown().await;
    // A real account elsewhere switches `auto` off.
    let real = self::org(ctx, "Real").await;
    accounts::add_account(
        store,
        &vault,
        &Actor::system(),
        real,
        new_account(
            "Prod",
            &canary().pem,
            AccountUrls::apple(AccountKind::Business),
        ),
    )
    .await
    .unwrap();
    assert!(!demo::demo_wanted(store, &config).await.unwrap());
}

async fn rotating_the_configured_key_replaces_the_key_file(ctx: &Ctx) {
    let config = vault_config(ctx, None);
    let old = Vault::open_at_startup(&config, &*ctx.store).await.unwrap();
    let org = org(ctx, "Acme").await;
    let c = canary();
    let view = accounts::add_account(
        &*ctx.store,
        &old,
        &Actor::system(),
        org,
        new_account("A", &c.pem, AccountUrls::apple(AccountKind::Business)),
    )
    .await
    .unwrap();
    let before = std::fs::read_to_string(&config.key_file).unwrap();
    let new = MasterKey::generate();

    let rotation = vault::rotate_configured_key(&config, &*ctx.store, &new)
        .await
        .unwrap();

    assert_eq!(rotation.values, 2, "the account key and the key check");
    assert!(rotation.key_file_replaced);
    let after = std::fs::read_to_string(&config.key_file).unwrap();
    assert_ne!(before, after);
    assert_eq!(after.trim(), new.to_hex().as_str());
    assert!(!config.key_file.with_extension("key.new").exists());
    let reopened = Vault::open_at_startup(&config, &*ctx.store).await.unwrap();
    let record = ctx.store.api_account(view.id).await.unwrap();
    let aad = vault::api_account_key_aad(&view.id.to_string());
    let opened = reopened.open(&aad, &record.sealed_key).unwrap();
    assert!(
        opened.expose() == c.pem.trim_end().as_bytes(),
        "the account key opens under the new master key"
    );
    // The old key no longer opens the database.
    let old_hex = before.trim().to_owned();
    assert!(
        Vault::open_at_startup(&vault_config(ctx, Some(&old_hex)), &*ctx.store)
            .await
            .is_err()
    );
}
