//! Identity storage and services, written once and run against both backends
//! (harness in `common/`). Time is always passed in, never read from the wall clock.

#[macro_use]
mod common;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backend::identity::login::{
    AuthenticatedUser, Authenticator, LoginAttempt, LoginError, LoginPolicy, SecondFactor,
};
use backend::identity::password::{HashCost, Password, PasswordHasher};
use backend::identity::sessions::{
    Clock, DbSessionStore, SessionData, SessionTimeouts, SessionValidity,
};
use backend::identity::setup::{self, SetupError};
use backend::identity::totp::{self, SealError, SecretSealer, TotpSecret};
use backend::identity::users::{self, NewLocalUser, SsoIdentity, UserAdminError};
use backend::identity::{Role, UserId};
use backend::orgs::{NewOrganization, OrgId};
use backend::store::identity::{NewUser, SealedSecret};
use backend::store::{IdentityStore, Store, StoreError};
use common::Ctx;
use time::OffsetDateTime;
use time::macros::datetime;
use tower_sessions_core::Session;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store::{ExpiredDeletion, SessionStore};
use zeroize::Zeroizing;

both_backends!(
    users_read_back_equal_and_names_are_unique_in_any_case,
    sso_identities_are_unique_and_found_by_issuer_and_subject,
    memberships_are_set_replaced_and_removed,
    totp_steps_only_move_forward,
    recovery_codes_are_single_use_and_reset_with_totp,
    sessions_survive_a_restart_and_expired_ones_are_deleted,
    session_creation_never_overwrites_an_existing_id,
    a_signed_in_session_survives_a_restart_and_cycling_its_id_drops_the_old_one,
    sign_in_failures_all_look_alike,
    a_correct_sign_in_records_the_time_and_returns_memberships,
    accounts_are_throttled_after_five_failures_with_a_growing_delay_across_restarts,
    client_addresses_are_throttled_after_ten_attempts_a_minute,
    totp_is_asked_only_after_a_correct_password_and_codes_work_once,
    setup_creates_the_first_admin_once_and_tokens_expire,
    concurrent_setup_redemptions_create_exactly_one_admin,
    administrators_manage_users_roles_and_passwords,
    sso_users_are_created_once_and_their_roles_follow_the_groups,
    organization_creators_become_their_admins,
    sso_rules_from_settings_and_configuration_grant_the_most_powerful_role,
);

const T0: OffsetDateTime = datetime!(2026-03-02 09:00:00 UTC);

fn hasher() -> PasswordHasher {
    PasswordHasher::with_cost(HashCost::TEST_ONLY, 2)
}

/// Stands in for the vault: XOR with a fixed key, refusing another row's context.
struct TestSealer;

impl SecretSealer for TestSealer {
    fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<SealedSecret, SealError> {
        Ok(SealedSecret {
            ciphertext: plaintext.iter().map(|b| b ^ 0x5a).collect(),
            nonce: context.to_vec(),
        })
    }

    fn open(&self, context: &[u8], sealed: &SealedSecret) -> Result<Zeroizing<Vec<u8>>, SealError> {
        if sealed.nonce != context {
            return Err(SealError("wrong context".to_owned()));
        }
        Ok(Zeroizing::new(
            sealed.ciphertext.iter().map(|b| b ^ 0x5a).collect(),
        ))
    }
}

fn authenticator() -> Authenticator {
    Authenticator {
        hasher: hasher(),
        sealer: Arc::new(TestSealer),
        policy: LoginPolicy::default(),
    }
}

fn new_user(username: &str) -> NewUser {
    NewUser {
        id: UserId::random(),
        username: username.to_owned(),
        display_name: format!("{username} display"),
        email: Some(format!("{username}@example.com")),
        password_hash: None,
        instance_admin: false,
        oidc: None,
        created_at: T0,
    }
}

const PASSWORD: &str = "correct horse battery staple";

async fn local_user(store: &dyn IdentityStore, username: &str) -> UserId {
    users::create_user(
        store,
        &hasher(),
        &NewLocalUser {
            username: username.to_owned(),
            display_name: String::new(),
            email: None,
            password: Password::new(PASSWORD),
            instance_admin: false,
        },
        T0,
    )
    .await
    .unwrap()
    .id
}

fn attempt(username: &str, password: &str, addr: &str) -> LoginAttempt {
    LoginAttempt {
        username: username.to_owned(),
        password: Password::new(password),
        second_factor: None,
        client_addr: addr.parse::<IpAddr>().unwrap(),
    }
}

#[track_caller]
fn assert_conflict(err: StoreError, expected: &str) {
    match err {
        StoreError::Conflict { constraint } => assert_eq!(constraint, expected),
        other => panic!("expected a conflict on {expected}, got {other:?}"),
    }
}

async fn org(store: &dyn Store, name: &str) -> OrgId {
    store
        .create_organization(&NewOrganization::parse(name).unwrap())
        .await
        .unwrap()
        .id
}

async fn users_read_back_equal_and_names_are_unique_in_any_case(ctx: &Ctx) {
    let store = ctx.store.as_ref();
    let mut new = new_user("Ann.Lee");
    new.password_hash = Some("$argon2id$v=19$stub".to_owned());
    let created = store.create_user(&new).await.unwrap();
    assert_eq!(created.username, "Ann.Lee");
    assert_eq!(created.created_at, T0);
    assert_eq!(
        created.password_hash.as_deref(),
        Some("$argon2id$v=19$stub")
    );
    assert!(!created.instance_admin && !created.disabled && !created.totp_enabled);
    assert_eq!(store.user(created.id).await.unwrap(), created);
    assert_eq!(store.user_by_username("ann.lee").await.unwrap(), created);
    assert_eq!(store.user_by_username(" ANN.LEE ").await.unwrap(), created);

    let err = store.create_user(&new_user("ANN.lee")).await.unwrap_err();
    assert_conflict(err, "users_username_key");
    assert_eq!(store.count_users().await.unwrap(), 1);
    assert!(matches!(
        store.user(UserId::random()).await,
        Err(StoreError::NotFound { entity: "user" })
    ));
    assert!(matches!(
        store.set_disabled(UserId::random(), true).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn sso_identities_are_unique_and_found_by_issuer_and_subject(ctx: &Ctx) {
    let store = ctx.store.as_ref();
    let mut a = new_user("a");
    a.oidc = Some(("https://idp.example".to_owned(), "sub-1".to_owned()));
    let a = store.create_user(&a).await.unwrap();
    let mut b = new_user("b");
    b.oidc = Some(("https://other.example".to_owned(), "sub-1".to_owned()));
    store.create_user(&b).await.unwrap();

    let found = store
        .user_by_oidc("https://idp.example", "sub-1")
        .await
        .unwrap();
    assert_eq!(found, a);
    assert!(found.password_hash.is_none());
    let mut clash = new_user("c");
    clash.oidc = Some(("https://idp.example".to_owned(), "sub-1".to_owned()));
    assert_conflict(
        store.create_user(&clash).await.unwrap_err(),
        "users_oidc_key",
    );
    assert!(matches!(
        store.user_by_oidc("https://idp.example", "sub-2").await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn memberships_are_set_replaced_and_removed(ctx: &Ctx) {
    let store = ctx.store.as_ref();
    let user = store.create_user(&new_user("ann")).await.unwrap().id;
    let (acme, beta) = (org(store, "Acme").await, org(store, "Beta").await);

    store
        .set_membership(user, acme, Role::Viewer)
        .await
        .unwrap();
    store
        .set_membership(user, acme, Role::Operator)
        .await
        .unwrap();
    let roles: Vec<_> = store
        .memberships_of(user)
        .await
        .unwrap()
        .iter()
        .map(|m| (m.org_id, m.role))
        .collect();
    assert_eq!(roles, [(acme, Role::Operator)]);
    // What every signed-in request reads, in one statement: the same as the two reads.
    store
        .set_membership(user, beta, Role::Helpdesk)
        .await
        .unwrap();
    let (row, memberships) = store.user_with_memberships(user).await.unwrap();
    assert!(row == store.user(user).await.unwrap());
    assert_eq!(memberships, store.memberships_of(user).await.unwrap());
    assert_eq!(memberships.len(), 2);
    assert!(matches!(
        store.user_with_memberships(UserId::random()).await,
        Err(StoreError::NotFound { .. })
    ));

    assert!(matches!(
        store
            .set_membership(user, OrgId::random(), Role::Admin)
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store
            .set_membership(UserId::random(), acme, Role::Admin)
            .await,
        Err(StoreError::NotFound { .. })
    ));

    store
        .replace_memberships(user, &[(beta, Role::Helpdesk)])
        .await
        .unwrap();
    let all = store.list_memberships().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(
        (all[0].user_id, all[0].org_id, all[0].role),
        (user, beta, Role::Helpdesk)
    );

    store.remove_membership(user, beta).await.unwrap();
    assert!(store.memberships_of(user).await.unwrap().is_empty());
    let (_, memberships) = store.user_with_memberships(user).await.unwrap();
    assert!(memberships.is_empty());
    assert!(matches!(
        store.remove_membership(user, beta).await,
        Err(StoreError::NotFound {
            entity: "membership"
        })
    ));
}

async fn totp_steps_only_move_forward(ctx: &Ctx) {
    let store = ctx.store.as_ref();
    let user = store.create_user(&new_user("ann")).await.unwrap().id;
    let sealed = SealedSecret {
        ciphertext: vec![1, 2, 3],
        nonce: vec![9; 12],
    };
    store.set_totp(user, Some(&sealed), true).await.unwrap();
    let row = store.user(user).await.unwrap();
    assert_eq!(row.totp_secret, Some(sealed.clone()));
    assert!(row.totp_enabled);

    assert!(store.advance_totp_step(user, 100).await.unwrap());
    assert!(!store.advance_totp_step(user, 100).await.unwrap(), "replay");
    assert!(
        !store.advance_totp_step(user, 99).await.unwrap(),
        "older step"
    );
    assert!(store.advance_totp_step(user, 101).await.unwrap());

    store.set_totp(user, Some(&sealed), true).await.unwrap();
    assert!(
        store.advance_totp_step(user, 50).await.unwrap(),
        "re-enrolment clears the guard"
    );
}

async fn recovery_codes_are_single_use_and_reset_with_totp(ctx: &Ctx) {
    let store = ctx.store.as_ref();
    let user = store.create_user(&new_user("ann")).await.unwrap().id;
    let sealed = SealedSecret {
        ciphertext: vec![1],
        nonce: vec![2],
    };
    store.set_totp(user, Some(&sealed), true).await.unwrap();
    store
        .replace_recovery_codes(user, &[[1; 32], [2; 32]])
        .await
        .unwrap();
    assert_eq!(store.unused_recovery_codes(user).await.unwrap(), 2);

    assert!(store.use_recovery_code(user, &[1; 32], T0).await.unwrap());
    assert!(
        !store.use_recovery_code(user, &[1; 32], T0).await.unwrap(),
        "used twice"
    );
    assert!(
        !store.use_recovery_code(user, &[3; 32], T0).await.unwrap(),
        "unknown"
    );
    assert_eq!(store.unused_recovery_codes(user).await.unwrap(), 1);

    store.set_totp(user, None, false).await.unwrap();
    let row = store.user(user).await.unwrap();
    assert!(row.totp_secret.is_none() && !row.totp_enabled);
    assert_eq!(store.unused_recovery_codes(user).await.unwrap(), 0);
}

/// A clock the test moves by hand.
fn manual_clock(start: OffsetDateTime) -> (Clock, Arc<Mutex<OffsetDateTime>>) {
    let now = Arc::new(Mutex::new(start));
    let read = now.clone();
    (Clock::from_fn(move || *read.lock().unwrap()), now)
}

fn record(expiry: OffsetDateTime, user: &str) -> Record {
    let mut data = std::collections::HashMap::new();
    data.insert("auth.user_id".to_owned(), serde_json::json!(user));
    Record {
        id: Id::default(),
        data,
        expiry_date: expiry,
    }
}

async fn sessions_survive_a_restart_and_expired_ones_are_deleted(ctx: &Ctx) {
    let (clock, now) = manual_clock(T0);
    let sessions = DbSessionStore::new(ctx.store.clone(), clock.clone());
    let mut long = record(T0 + Duration::from_secs(3600), "long");
    let mut short = record(T0 + Duration::from_secs(60), "short");
    sessions.create(&mut long).await.unwrap();
    sessions.create(&mut short).await.unwrap();
    long.data
        .insert("auth.last_seen".to_owned(), serde_json::json!(1));
    sessions.save(&long).await.unwrap();

    let restarted: Arc<dyn Store> = ctx.reconnect().await;
    let after_restart = DbSessionStore::new(restarted.clone(), clock);
    assert_eq!(
        after_restart.load(&long.id).await.unwrap(),
        Some(long.clone())
    );
    assert_eq!(
        after_restart.load(&short.id).await.unwrap(),
        Some(short.clone())
    );

    *now.lock().unwrap() = T0 + Duration::from_secs(61);
    assert_eq!(
        after_restart.load(&short.id).await.unwrap(),
        None,
        "expired, though not yet deleted"
    );
    after_restart.delete_expired().await.unwrap();
    assert_eq!(
        restarted
            .delete_expired_sessions(T0 + Duration::from_secs(61))
            .await
            .unwrap(),
        0
    );
    assert!(after_restart.load(&long.id).await.unwrap().is_some());

    after_restart.delete(&long.id).await.unwrap();
    assert_eq!(after_restart.load(&long.id).await.unwrap(), None);
    after_restart.delete(&long.id).await.unwrap();
    restarted.close().await;
}

async fn session_creation_never_overwrites_an_existing_id(ctx: &Ctx) {
    let (clock, _) = manual_clock(T0);
    let sessions = DbSessionStore::new(ctx.store.clone(), clock);
    let mut first = record(T0 + Duration::from_secs(600), "first");
    sessions.create(&mut first).await.unwrap();
    let mut second = record(T0 + Duration::from_secs(600), "second");
    second.id = first.id;
    sessions.create(&mut second).await.unwrap();
    assert_ne!(second.id, first.id, "a colliding id is replaced");
    assert_eq!(sessions.load(&first.id).await.unwrap(), Some(first));
    assert_eq!(sessions.load(&second.id).await.unwrap(), Some(second));
}

async fn a_signed_in_session_survives_a_restart_and_cycling_its_id_drops_the_old_one(ctx: &Ctx) {
    let (clock, _) = manual_clock(T0);
    let sessions = Arc::new(DbSessionStore::new(ctx.store.clone(), clock.clone()));
    let anonymous = Session::new(None, sessions.clone(), None);
    anonymous.insert("oauth.csrf_state", "x").await.unwrap();
    anonymous.save().await.unwrap();
    let old_id = anonymous.id().unwrap();

    let bucket = SessionData::new(UserId::random(), T0);
    anonymous.cycle_id().await.unwrap();
    bucket.store(&anonymous).await.unwrap();
    anonymous.save().await.unwrap();
    let new_id = anonymous.id().unwrap();
    assert_ne!(new_id, old_id);
    assert_eq!(
        sessions.load(&old_id).await.unwrap(),
        None,
        "the pre-login id is gone"
    );

    let restarted: Arc<dyn Store> = ctx.reconnect().await;
    let after = Session::new(
        Some(new_id),
        Arc::new(DbSessionStore::new(restarted.clone(), clock)),
        None,
    );
    let loaded = SessionData::load(&after)
        .await
        .unwrap()
        .expect("still signed in");
    assert_eq!(loaded, bucket);
    assert_eq!(
        SessionTimeouts::default().check(&loaded, T0),
        SessionValidity::Valid
    );
    restarted.close().await;
}

async fn sign_in_failures_all_look_alike(ctx: &Ctx) {
    let store = ctx.store.as_ref();
    let auth = authenticator();
    let ann = local_user(store, "ann").await;
    local_user(store, "bob").await;
    store.set_disabled(ann, true).await.unwrap();
    let sso = store.create_user(&new_user("sso-only")).await.unwrap();
    assert!(sso.password_hash.is_none());

    for (i, (username, password)) in [
        ("nobody", PASSWORD),
        ("bob", "wrong password here"),
        ("ann", PASSWORD),
        ("sso-only", PASSWORD),
        ("sso-only", ""),
    ]
    .into_iter()
    .enumerate()
    {
        let err = auth
            .authenticate(
                store,
                &attempt(username, password, &format!("10.0.0.{i}")),
                T0,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, LoginError::InvalidCredentials),
            "{username}: {err:?}"
        );
        assert_eq!(err.to_string(), "the username or password is not correct");
    }
}

async fn a_correct_sign_in_records_the_time_and_returns_memberships(ctx: &Ctx) {
    let store = ctx.store.as_ref();
    let ann = local_user(store, "Ann").await;
    let acme = org(store, "Acme").await;
    store
        .set_membership(ann, acme, Role::Helpdesk)
        .await
        .unwrap();
    let user: AuthenticatedUser = authenticator()
        .authenticate(store, &attempt("ANN", PASSWORD, "10.0.0.1"), T0)
        .await
        .unwrap();
    assert_eq!((user.user_id, user.username.as_str()), (ann, "Ann"));
    assert_eq!(user.auth_time, T0);
    assert!(!user.used_recovery_code);
    assert_eq!(user.memberships.len(), 1);
    assert_eq!(user.memberships[0].role, Role::Helpdesk);
    assert_eq!(store.user(ann).await.unwrap().last_login_at, Some(T0));
}

async fn accounts_are_throttled_after_five_failures_with_a_growing_delay_across_restarts(
    ctx: &Ctx,
) {
    let store = ctx.store.as_ref();
    let auth = authenticator();
    local_user(store, "ann").await;
    // Failures come from different addresses so only the account limit applies.
    for i in 0..5 {
        let err = auth
            .authenticate(
                store,
                &attempt("ann", "wrong password!!", &format!("10.0.1.{i}")),
                T0,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, LoginError::InvalidCredentials), "{err:?}");
    }
    let err = auth
        .authenticate(
            store,
            &attempt("ann", PASSWORD, "10.0.2.1"),
            T0 + Duration::from_secs(10),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, LoginError::Throttled { retry_after } if retry_after == Duration::from_secs(20)),
        "even the right password waits: {err:?}"
    );

    let restarted: Arc<dyn Store> = ctx.reconnect().await;
    let later = T0 + Duration::from_secs(30);
    let err = auth
        .authenticate(
            restarted.as_ref(),
            &attempt("ann", "wrong password!!", "10.0.2.2"),
            later,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, LoginError::InvalidCredentials),
        "delay over: {err:?}"
    );
    let err = auth
        .authenticate(
            restarted.as_ref(),
            &attempt("ann", PASSWORD, "10.0.2.3"),
            later + Duration::from_secs(59),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, LoginError::Throttled { retry_after } if retry_after == Duration::from_secs(1)),
        "the sixth failure doubles the delay to 60 s: {err:?}"
    );
    let ok = auth
        .authenticate(
            restarted.as_ref(),
            &attempt("ann", PASSWORD, "10.0.2.4"),
            later + Duration::from_secs(60),
        )
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    let err = auth
        .authenticate(
            restarted.as_ref(),
            &attempt("ann", "wrong password!!", "10.0.2.5"),
            later + Duration::from_secs(61),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, LoginError::InvalidCredentials),
        "success clears failures: {err:?}"
    );
    restarted.close().await;
}

async fn client_addresses_are_throttled_after_ten_attempts_a_minute(ctx: &Ctx) {
    let store = ctx.store.as_ref();
    let auth = authenticator();
    for i in 0..10 {
        let at = T0 + Duration::from_secs(i);
        let err = auth
            .authenticate(
                store,
                &attempt(&format!("user{i}"), "whatever password", "192.0.2.7"),
                at,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, LoginError::InvalidCredentials), "{err:?}");
    }
    let err = auth
        .authenticate(
            store,
            &attempt("user10", "whatever password", "192.0.2.7"),
            T0 + Duration::from_secs(20),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, LoginError::Throttled { retry_after } if retry_after == Duration::from_secs(40)),
        "{err:?}"
    );
    let other = auth
        .authenticate(
            store,
            &attempt("user10", "whatever password", "192.0.2.8"),
            T0 + Duration::from_secs(20),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(other, LoginError::InvalidCredentials),
        "another address is not limited: {other:?}"
    );
    let err = auth
        .authenticate(
            store,
            &attempt("user11", "whatever password", "192.0.2.7"),
            T0 + Duration::from_secs(60),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, LoginError::InvalidCredentials),
        "the oldest attempt left the window: {err:?}"
    );
    let pruned = backend::identity::login::prune_attempts(
        store,
        &auth.policy,
        T0 + Duration::from_secs(400),
    )
    .await
    .unwrap();
    assert_eq!(pruned, 12 + 12);
}

async fn totp_is_asked_only_after_a_correct_password_and_codes_work_once(ctx: &Ctx) {
    let store = ctx.store.as_ref();
    let auth = authenticator();
    let ann = local_user(store, "ann").await;
    let enrollment = totp::begin_enrollment(store, &TestSealer, ann, "Orchard")
        .await
        .unwrap();
    assert!(
        enrollment
            .otpauth_uri
            .starts_with("otpauth://totp/Orchard:ann?secret=")
    );
    let stored = store.user(ann).await.unwrap();
    assert!(!stored.totp_enabled, "not enforced before confirmation");
    assert_ne!(
        stored.totp_secret.as_ref().unwrap().ciphertext,
        enrollment.secret.base32().as_bytes()
    );

    let secret = TotpSecret::from_bytes(
        TestSealer
            .open(
                format!("orchard.totp:{ann}").as_bytes(),
                stored.totp_secret.as_ref().unwrap(),
            )
            .unwrap()
            .to_vec(),
    );
    let code_at = |at: OffsetDateTime| secret.code_at_step(totp::step_at(at));
    let codes = totp::confirm_enrollment(store, &TestSealer, ann, &code_at(T0), T0)
        .await
        .unwrap();
    assert_eq!(codes.0.len(), 10);
    assert!(store.user(ann).await.unwrap().totp_enabled);

    let t1 = T0 + Duration::from_secs(60);
    let err = auth
        .authenticate(store, &attempt("ann", "wrong password!!", "10.0.0.1"), t1)
        .await
        .unwrap_err();
    assert!(matches!(err, LoginError::InvalidCredentials), "{err:?}");
    let err = auth
        .authenticate(store, &attempt("ann", PASSWORD, "10.0.0.1"), t1)
        .await
        .unwrap_err();
    assert!(matches!(err, LoginError::TotpRequired), "{err:?}");

    let mut with_code = attempt("ann", PASSWORD, "10.0.0.1");
    with_code.second_factor = Some(SecondFactor::new(code_at(t1)));
    assert!(auth.authenticate(store, &with_code, t1).await.is_ok());
    let err = auth
        .authenticate(store, &with_code, t1 + Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        matches!(err, LoginError::InvalidSecondFactor),
        "a replayed code: {err:?}"
    );

    let mut with_recovery = attempt("ann", PASSWORD, "10.0.0.2");
    with_recovery.second_factor = Some(SecondFactor::new(codes.0[3].to_lowercase()));
    let user = auth
        .authenticate(store, &with_recovery, t1 + Duration::from_secs(10))
        .await
        .unwrap();
    assert!(user.used_recovery_code);
    let err = auth
        .authenticate(store, &with_recovery, t1 + Duration::from_secs(11))
        .await
        .unwrap_err();
    assert!(
        matches!(err, LoginError::InvalidSecondFactor),
        "a used recovery code: {err:?}"
    );
    assert_eq!(store.unused_recovery_codes(ann).await.unwrap(), 9);

    users::reset_totp(store, ann).await.unwrap();
    assert!(
        auth.authenticate(
            store,
            &attempt("ann", PASSWORD, "10.0.0.3"),
            t1 + Duration::from_secs(12)
        )
        .await
        .is_ok()
    );
}

async fn setup_creates_the_first_admin_once_and_tokens_expire(ctx: &Ctx) {
    let store = ctx.store.as_ref();
    let ttl = Duration::from_secs(3600);
    let expired = setup::create_setup_token(store, ttl, T0).await.unwrap();
    let token = setup::create_setup_token(store, ttl, T0 + Duration::from_secs(3000))
        .await
        .unwrap();
    assert_eq!(token.expose().len(), 43);
    assert_eq!(format!("{token:?}"), "SetupToken(***)");

    let late = T0 + Duration::from_secs(3600);
    let pw = Password::new(PASSWORD);
    let err = setup::redeem_setup_token(store, &hasher(), expired.expose(), "admin", &pw, late)
        .await
        .unwrap_err();
    assert!(matches!(err, SetupError::InvalidToken), "expired: {err:?}");
    let err = setup::redeem_setup_token(store, &hasher(), "made-up", "admin", &pw, late)
        .await
        .unwrap_err();
    assert!(matches!(err, SetupError::InvalidToken), "unknown: {err:?}");
    let err = setup::redeem_setup_token(
        store,
        &hasher(),
        token.expose(),
        "admin",
        &Password::new("short"),
        late,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SetupError::PasswordRule(_)), "{err:?}");

    let admin = setup::redeem_setup_token(store, &hasher(), token.expose(), "admin", &pw, late)
        .await
        .unwrap();
    assert!(admin.instance_admin);
    assert!(
        authenticator()
            .authenticate(store, &attempt("admin", PASSWORD, "10.0.0.1"), late)
            .await
            .is_ok()
    );

    let err = setup::redeem_setup_token(store, &hasher(), token.expose(), "admin2", &pw, late)
        .await
        .unwrap_err();
    assert!(matches!(err, SetupError::InvalidToken), "used: {err:?}");
    let err = setup::create_setup_token(store, ttl, late)
        .await
        .unwrap_err();
    assert!(matches!(err, SetupError::AlreadyDone), "{err:?}");
    assert_eq!(store.count_users().await.unwrap(), 1);
}

async fn concurrent_setup_redemptions_create_exactly_one_admin(ctx: &Ctx) {
    let ttl = Duration::from_secs(600);
    let mut tokens = Vec::new();
    for _ in 0..4 {
        tokens.push(
            setup::create_setup_token(ctx.store.as_ref(), ttl, T0)
                .await
                .unwrap(),
        );
    }
    // Two racers per token: the same token twice, and different tokens against each other.
    let racers = tokens
        .iter()
        .chain(tokens.iter())
        .enumerate()
        .map(|(i, token)| {
            let store = ctx.store.clone();
            let token = token.expose().to_owned();
            tokio::spawn(async move {
                setup::redeem_setup_token(
                    store.as_ref(),
                    &hasher(),
                    &token,
                    &format!("admin{i}"),
                    &Password::new(PASSWORD),
                    T0,
                )
                .await
            })
        });
    let results = futures::future::join_all(racers).await;
    let mut wins = 0;
    for result in results {
        match result.unwrap() {
            Ok(_) => wins += 1,
            Err(SetupError::AlreadyDone | SetupError::InvalidToken) => {}
            Err(e) => panic!("unexpected failure: {e:?}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(ctx.store.count_users().await.unwrap(), 1);
}

async fn administrators_manage_users_roles_and_passwords(ctx: &Ctx) {
    let store = ctx.store.as_ref();
    let auth = authenticator();
    let ann = local_user(store, "ann").await;
    let bob = local_user(store, "bob").await;
    let acme = org(store, "Acme").await;

    let err = users::create_user(
        store,
        &hasher(),
        &NewLocalUser {
            username: "ANN".to_owned(),
            display_name: "Another Ann".to_owned(),
            email: None,
            password: Password::new(PASSWORD),
            instance_admin: false,
        },
        T0,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, UserAdminError::UsernameTaken), "{err:?}");

    users::set_role(store, ann, acme, Role::Operator)
        .await
        .unwrap();
    users::set_role(store, bob, acme, Role::Viewer)
        .await
        .unwrap();
    users::remove_membership(store, bob, acme).await.unwrap();
    let listed = users::list_users(store).await.unwrap();
    let summary: Vec<_> = listed
        .iter()
        .map(|u| (u.user.username.as_str(), u.memberships.len()))
        .collect();
    assert_eq!(summary, [("ann", 1), ("bob", 0)]);
    assert_eq!(
        listed[0].user.display_name, "ann",
        "a blank display name falls back to the username"
    );

    let err = users::set_password(store, &hasher(), ann, &Password::new("ann"))
        .await
        .unwrap_err();
    assert!(matches!(err, UserAdminError::PasswordRule(_)), "{err:?}");
    users::set_password(
        store,
        &hasher(),
        ann,
        &Password::new("a brand new passphrase"),
    )
    .await
    .unwrap();
    let err = auth
        .authenticate(store, &attempt("ann", PASSWORD, "10.0.0.1"), T0)
        .await
        .unwrap_err();
    assert!(matches!(err, LoginError::InvalidCredentials));
    assert!(
        auth.authenticate(
            store,
            &attempt("ann", "a brand new passphrase", "10.0.0.1"),
            T0
        )
        .await
        .is_ok()
    );

    users::set_disabled(store, ann, true).await.unwrap();
    let err = auth
        .authenticate(
            store,
            &attempt("ann", "a brand new passphrase", "10.0.0.1"),
            T0,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, LoginError::InvalidCredentials));
    users::set_disabled(store, ann, false).await.unwrap();
    assert!(
        auth.authenticate(
            store,
            &attempt("ann", "a brand new passphrase", "10.0.0.1"),
            T0
        )
        .await
        .is_ok()
    );
}

async fn sso_users_are_created_once_and_their_roles_follow_the_groups(ctx: &Ctx) {
    let store = ctx.store.as_ref();
    let (acme, beta) = (org(store, "Acme").await, org(store, "Beta").await);
    local_user(store, "carol").await;
    let identity = SsoIdentity {
        issuer: "https://idp.example".to_owned(),
        subject: "0001".to_owned(),
        preferred_username: "carol".to_owned(),
        display_name: "Carol C".to_owned(),
        email: Some("carol@example.com".to_owned()),
    };
    let first = users::find_or_create_sso_user(store, &identity, &[(acme, Role::Admin)], T0)
        .await
        .unwrap();
    assert_ne!(first.username, "carol", "the local carol is not taken over");
    assert!(first.username.starts_with("carol-"), "{}", first.username);
    assert!(first.password_hash.is_none());
    assert_eq!(
        first.oidc,
        Some(("https://idp.example".to_owned(), "0001".to_owned()))
    );

    let renamed = SsoIdentity {
        display_name: "Carol Renamed".to_owned(),
        ..identity.clone()
    };
    let again = users::find_or_create_sso_user(store, &renamed, &[(beta, Role::Viewer)], T0)
        .await
        .unwrap();
    assert_eq!(again.id, first.id);
    assert_eq!(again.display_name, "Carol Renamed");
    let roles: Vec<_> = store
        .memberships_of(first.id)
        .await
        .unwrap()
        .iter()
        .map(|m| (m.org_id, m.role))
        .collect();
    assert_eq!(roles, [(beta, Role::Viewer)]);

    store.set_disabled(first.id, true).await.unwrap();
    let err = users::find_or_create_sso_user(store, &identity, &[], T0)
        .await
        .unwrap_err();
    assert!(matches!(err, UserAdminError::Disabled), "{err:?}");
    assert_eq!(
        store.memberships_of(first.id).await.unwrap().len(),
        1,
        "untouched when disabled"
    );
}

async fn organization_creators_become_their_admins(ctx: &Ctx) {
    let store = ctx.store.as_ref();
    let mut admin = new_user("root");
    admin.instance_admin = true;
    let admin = store.create_user(&admin).await.unwrap().id;
    let plain = store.create_user(&new_user("plain")).await.unwrap().id;

    let org = users::create_organization_as(store, admin, &NewOrganization::parse("Acme").unwrap())
        .await
        .unwrap();
    let roles = store.memberships_of(admin).await.unwrap();
    assert_eq!((roles[0].org_id, roles[0].role), (org.id, Role::Admin));

    let err = users::create_organization_as(store, plain, &NewOrganization::parse("Beta").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, UserAdminError::NotInstanceAdmin), "{err:?}");
    assert_eq!(store.list_organizations().await.unwrap().len(), 1);
}

async fn sso_rules_from_settings_and_configuration_grant_the_most_powerful_role(ctx: &Ctx) {
    use backend::audit::Actor;
    use backend::identity::sso::{self, SsoRuleError};
    use backend::oidc::GroupRoleRule;

    let store = ctx.store.as_ref();
    let acme = org(store, "Acme").await;
    let globex = org(store, "Globex").await;
    let actor = Actor::system();
    sso::add_rule(store, &actor, " it-staff ", acme, Role::Operator, T0)
        .await
        .unwrap();
    sso::add_rule(store, &actor, "auditors", globex, Role::Viewer, T0)
        .await
        .unwrap();
    assert!(matches!(
        sso::add_rule(store, &actor, "it-staff", acme, Role::Admin, T0).await,
        Err(SsoRuleError::Taken)
    ));
    assert!(matches!(
        sso::add_rule(
            store,
            &actor,
            "x",
            OrgId(uuid::Uuid::new_v4()),
            Role::Admin,
            T0
        )
        .await,
        Err(SsoRuleError::Store(StoreError::NotFound { .. }))
    ));
    let rules = store.list_sso_rules().await.unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(
        (rules[1].group.as_str(), rules[1].role),
        ("it-staff", Role::Operator)
    );
    assert_eq!(rules[1].created_at, T0);

    let configured = vec![
        GroupRoleRule {
            group: "it-staff".to_owned(),
            organization: "acme".to_owned(),
            role: Role::Helpdesk,
        },
        GroupRoleRule {
            group: "auditors".to_owned(),
            organization: "globex".to_owned(),
            role: Role::Admin,
        },
        GroupRoleRule {
            group: "it-staff".to_owned(),
            organization: "no-such-org".to_owned(),
            role: Role::Admin,
        },
    ];
    let groups = |names: &[&str]| names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let mut roles = sso::roles_for_groups(store, &configured, &groups(&["it-staff", "auditors"]))
        .await
        .unwrap();
    roles.sort();
    let mut expected = vec![(acme, Role::Operator), (globex, Role::Admin)];
    expected.sort();
    assert_eq!(roles, expected);
    assert!(
        sso::roles_for_groups(store, &configured, &[])
            .await
            .unwrap()
            .is_empty()
    );

    sso::delete_rule(store, &actor, "it-staff", acme)
        .await
        .unwrap();
    assert!(matches!(
        sso::delete_rule(store, &actor, "it-staff", acme).await,
        Err(SsoRuleError::Store(StoreError::NotFound { .. }))
    ));
    let roles = sso::roles_for_groups(store, &configured, &groups(&["it-staff"]))
        .await
        .unwrap();
    assert_eq!(roles, vec![(acme, Role::Helpdesk)]);
}
