//! The roles the server connects as (README, "Database roles"; attack review finding
//! 8): SQL that runs in a request session, as an injection would, cannot reach
//! credentials, not even by resetting its role; the credential flows' pool can; and a
//! server whose login roles could do more refuses to start.

use rowguard::{
    app::Application,
    config::Environment,
    platform::db::{Scope, roles},
};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{TestApp, as_user, spawn_app, test_settings};

/// What SQL running as the request role used to be able to do with other users'
/// credentials (each was a working attack before the credential functions moved to
/// rowguard_auth).
const CREDENTIAL_ATTACKS: [&str; 11] = [
    "SELECT password_hash FROM app.user_for_invitation('victim@b.example')",
    "SELECT password_hash FROM app.login_lookup('victim@b.example', 'x', 900, 10, 100)",
    "SELECT password_hash FROM app.login_lookup('victim@b.example', 'x', 900, 10, 100, 30, 60)",
    "SELECT app.current_user_password_hash()",
    "SELECT app.set_current_user_password('$argon2id$planted', NULL)",
    "SELECT app.issue_refresh_token(gen_random_uuid(), '\\x00'::bytea, now() + interval '1 day')",
    "SELECT * FROM app.complete_login('victim@b.example', NULL, NULL, gen_random_uuid(), '\\x01'::bytea, now() + interval '1 day')",
    "SELECT app.request_password_reset('victim@b.example', 'planted', '\\x02'::bytea, now() + interval '1 hour', 5)",
    "SELECT app.session_password_hash(gen_random_uuid())",
    "SELECT app.set_session_password(gen_random_uuid(), '$argon2id$planted')",
    "SELECT * FROM app.invitation_account('\\x03'::bytea)",
];

/// `attack`, run in a request transaction of `scope` after `setup` (nothing when
/// empty), is refused with "permission denied": as the request's runtime role, after
/// `RESET ROLE` to the login role, and after trying to become the credential role.
async fn assert_denied_to_a_request_session(
    app: &TestApp,
    scope: &Scope,
    setup: &str,
    attack: &str,
) {
    for escape in ["", "RESET ROLE", "SET ROLE rowguard_auth"] {
        let (tx, _) = app.database.begin(scope).await.unwrap();
        let attempt = async {
            for statement in [setup, escape] {
                if !statement.is_empty() {
                    tx.batch_execute(statement).await?;
                }
            }
            tx.batch_execute(attack).await
        }
        .await;
        let error = attempt.expect_err(&format!("{escape}; {attack}"));
        assert!(
            format!("{error:?}").contains("permission denied"),
            "{escape}; {attack}: {error:?}"
        );
        tx.rollback().await;
    }
}

#[tokio::test]
async fn sql_in_a_request_session_cannot_reach_credentials_even_by_resetting_its_role() {
    let app = spawn_app().await;
    let attacker = app.tenant("attacker@a.example", "Attacker Co").await;
    let victim = app.tenant("victim@b.example", "Victim Co").await;
    let (attacker_tenant, attacker_user): (Uuid, Uuid) = (
        attacker.id.parse().unwrap(),
        attacker.owner_id.parse().unwrap(),
    );

    // The credential flows' pool reads what login needs.
    let (tx, _) = app.credentials.begin(&Scope::anonymous()).await.unwrap();
    let row = tx
        .query_one(
            "SELECT user_id, password_hash FROM app.login_lookup('victim@b.example', 'x', 900, 10, 100, 30, 60)",
            &[],
        )
        .await
        .expect("the credential role calls the login function");
    assert_eq!(row.get::<_, Uuid>(0).to_string(), victim.owner_id);
    assert!(row.get::<_, Option<String>>(1).is_some());
    tx.rollback().await;

    let victims_context = format!(
        "SELECT set_config('app.user_id', '{}', true)",
        victim.owner_id
    );
    let attacker_scope = Scope::tenant(attacker_tenant, attacker_user);
    for attack in CREDENTIAL_ATTACKS {
        // The settings are the request's to set: the functions must not trust them.
        assert_denied_to_a_request_session(&app, &attacker_scope, &victims_context, attack).await;
    }

    // Nothing the attempts did remains: the victim signs in with their own password.
    app.login_ok("victim@b.example").await;
    assert_eq!(
        app.login("victim@b.example", "$argon2id$planted")
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn a_request_session_that_resets_its_role_can_read_nothing() {
    let app = spawn_app().await;
    let owner = app.tenant("owner@a.example", "Acme").await;
    let scope = Scope::tenant(owner.id.parse().unwrap(), owner.owner_id.parse().unwrap());

    let (tx, _) = app.database.begin(&scope).await.unwrap();
    let row = tx
        .query_one("SELECT count(*) FROM public.tenants", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1, "the runtime role sees its tenant");
    tx.rollback().await;

    for read in [
        "SELECT count(*) FROM public.tenants",
        "SELECT count(*) FROM public.users",
        "SELECT app.current_tenant_id()",
    ] {
        let (tx, _) = app.database.begin(&scope).await.unwrap();
        tx.batch_execute("RESET ROLE").await.unwrap();
        let who = tx
            .query_one("SELECT current_user::text", &[])
            .await
            .unwrap();
        assert_eq!(who.get::<_, String>(0), roles::API_LOGIN);
        let error = tx.batch_execute(read).await.expect_err(read);
        assert!(
            format!("{error:?}").contains("permission denied"),
            "{read}: {error:?}"
        );
        tx.rollback().await;
    }
}

/// The session check reads `public.sessions` under its policy (sql/V24): a request
/// sees the one session it names, cannot list anyone's, and cannot bring an ended one
/// back, as itself, after resetting its role, or by trying to become the credential
/// role.
#[tokio::test]
async fn a_request_sees_only_the_session_it_names_and_cannot_revive_an_ended_one() {
    let app = spawn_app().await;
    let attacker = app.register("attacker@a.example", "Attacker Co").await;
    let victim = app.tenant("victim@b.example", "Victim Co").await;
    let (tenant, user): (Uuid, Uuid) = (
        attacker["tenant"]["id"].as_str().unwrap().parse().unwrap(),
        attacker["user"]["id"].as_str().unwrap().parse().unwrap(),
    );
    let superuser = app.db.superuser().await;
    let session_of = async |user: &str| -> Uuid {
        superuser
            .query_one(
                "SELECT id FROM sessions WHERE user_id = $1::text::uuid",
                &[&user],
            )
            .await
            .unwrap()
            .get(0)
    };
    let own = session_of(&user.to_string()).await;
    let victims = session_of(&victim.owner_id).await;
    let scope = Scope {
        session_id: Some(own),
        ..Scope::tenant(tenant, user)
    };
    let count = async |tx: &rowguard::platform::db::RequestTx, sql: &str| -> i64 {
        tx.query_one(sql, &[]).await.unwrap().get(0)
    };

    // The legitimate read: the opening statement finds the session alive, and the
    // request sees that one row.
    let (tx, access) = app.database.begin(&scope).await.unwrap();
    assert!(access.session_active);
    assert_eq!(count(&tx, "SELECT count(*) FROM sessions").await, 1);
    // Posing as the victim does not show the victim's session.
    tx.batch_execute(&format!(
        "SELECT set_config('app.user_id', '{}', true)",
        victim.owner_id
    ))
    .await
    .unwrap();
    let theirs = format!(
        "SELECT count(*) FROM sessions WHERE user_id = '{}'",
        victim.owner_id
    );
    assert_eq!(count(&tx, &theirs).await, 0);
    tx.rollback().await;

    // Once logged out, no request can make the session live again, nor plant one.
    app.auth_logout(&json!({"refresh_token": attacker["refresh_token"]}))
        .await;
    let (tx, access) = app.database.begin(&scope).await.unwrap();
    assert!(!access.session_active, "the logout ended the session");
    tx.rollback().await;
    let revivals = [
        format!("UPDATE sessions SET live_until = 'infinity' WHERE id = '{own}'"),
        format!(
            "INSERT INTO sessions (id, user_id, live_until) VALUES (gen_random_uuid(), '{user}', 'infinity')"
        ),
        format!("DELETE FROM sessions WHERE id = '{victims}'"),
    ];
    for attack in &revivals {
        assert_denied_to_a_request_session(&app, &scope, "", attack).await;
    }
    let (tx, access) = app.database.begin(&scope).await.unwrap();
    assert!(!access.session_active, "the session stayed ended");
    tx.rollback().await;
    let still = superuser
        .query_one(
            "SELECT live_until > now() FROM sessions WHERE id = $1",
            &[&victims],
        )
        .await
        .unwrap();
    assert!(still.get::<_, bool>(0), "the victim's session is untouched");
}

/// A refresh token is issued only to an active user and into a family of its own
/// user (sql/V24): a user disabled between the password check and the start of the
/// session gets none, and no one's token revives another user's session.
#[tokio::test]
async fn no_session_starts_for_a_disabled_user_nor_in_another_users_family() {
    let app = spawn_app().await;
    let ada = app.tenant("ada@a.example", "Ada Co").await;
    let bob = app.tenant("bob@b.example", "Bob Co").await;
    let (tenant, user): (Uuid, Uuid) = (ada.id.parse().unwrap(), ada.owner_id.parse().unwrap());
    let superuser = app.db.superuser().await;
    let issue = "SELECT app.issue_refresh_token($1, '\\x0a0b'::bytea || $2::text::bytea, now() + interval '1 day')";
    let issue_in = async |family: Uuid, salt: &str| {
        let (tx, _) = app
            .credentials
            .begin(&Scope::tenant(tenant, user))
            .await
            .unwrap();
        let issued = tx.execute(issue, &[&family, &salt]).await;
        match issued {
            Ok(_) => {
                tx.commit().await.unwrap();
                Ok(())
            }
            Err(error) => {
                tx.rollback().await;
                Err(format!("{error:?}"))
            }
        }
    };
    // The legitimate path: an active user's new session is live.
    let fresh = Uuid::new_v4();
    issue_in(fresh, "1")
        .await
        .expect("an active user gets a session");
    let live = "SELECT coalesce(bool_or(live_until > now()), false) FROM sessions WHERE id = $1";
    assert!(
        superuser
            .query_one(live, &[&fresh])
            .await
            .unwrap()
            .get::<_, bool>(0)
    );

    // Into Bob's session: refused, and Bob's session is as it was.
    let bobs: Uuid = superuser
        .query_one(
            "SELECT id FROM sessions WHERE user_id = $1::text::uuid",
            &[&bob.owner_id],
        )
        .await
        .unwrap()
        .get(0);
    let refused = issue_in(bobs, "2")
        .await
        .expect_err("another user's family");
    assert_eq!(refused, "Unauthenticated", "RGS01, answered 401");

    // Disabled between the password check and the session: refused, nothing live.
    superuser
        .execute(
            "UPDATE users SET status = 'disabled' WHERE id = $1",
            &[&user],
        )
        .await
        .unwrap();
    let late = Uuid::new_v4();
    let refused = issue_in(late, "3").await.expect_err("a disabled user");
    assert_eq!(refused, "Unauthenticated", "RGS01, answered 401");
    assert!(
        !superuser
            .query_one(live, &[&late])
            .await
            .unwrap()
            .get::<_, bool>(0)
    );
    assert!(
        !superuser
            .query_one(live, &[&fresh])
            .await
            .unwrap()
            .get::<_, bool>(0)
    );
}

#[tokio::test]
async fn a_server_whose_request_login_role_can_become_more_than_rowguard_api_refuses_to_start() {
    let app = spawn_app().await;
    let owner_url = app.db.url.clone();
    let owner = owner_url.parse().unwrap();
    let (api, auth) = roles::development_logins(&owner).await.unwrap();
    let password = |config: &tokio_postgres::Config| {
        config
            .get_password()
            .map(|p| String::from_utf8(p.to_vec()).unwrap())
    };
    let auth_url = as_user(&owner_url, roles::AUTH_LOGIN, password(&auth).as_deref());

    // Given its login roles' URLs, and no owner, a server starts and serves logins.
    let mut settings = test_settings(&as_user(
        &owner_url,
        roles::API_LOGIN,
        password(&api).as_deref(),
    ));
    settings.database.auth_database_url = Some(auth_url.as_str().into());
    let server = Application::build(&settings)
        .await
        .expect("a server with its own login roles starts");
    drop(server);
    app.register("someone@a.example", "Acme").await;

    // A request login role that could become rowguard_auth, or a role that reads
    // everything, is refused: with SET ROLE it would have their rights.
    let superuser = app.db.superuser().await;
    for (extra, complaint) in [
        ("rowguard_auth", "can also become rowguard_auth"),
        ("pg_read_all_data", "can also become pg_read_all_data"),
    ] {
        let bad = format!("rowguard_test_bad_login_{}", std::process::id());
        let bad_password = hex::encode(Uuid::new_v4().as_bytes());
        superuser
            .batch_execute(&format!(
                "DROP ROLE IF EXISTS {bad};
                 CREATE ROLE {bad} LOGIN NOINHERIT PASSWORD '{bad_password}';
                 GRANT rowguard_api, {extra} TO {bad};"
            ))
            .await
            .unwrap();
        let mut settings = test_settings(&as_user(&owner_url, &bad, Some(&bad_password)));
        settings.database.auth_database_url = Some(auth_url.as_str().into());
        let refused = Application::build(&settings).await;
        superuser
            .batch_execute(&format!("DROP ROLE {bad}"))
            .await
            .unwrap();
        let error = refused.err().expect("the server refused to start");
        assert!(format!("{error:#}").contains(complaint), "{error:#}");
    }
}

#[tokio::test]
async fn in_production_one_database_url_for_everything_is_refused() {
    let app = spawn_app().await;
    let mut settings = test_settings(&app.db.url);
    // The same settings serve in development (every other test does so).
    Application::build(&settings)
        .await
        .expect("development takes the one URL as the owner's");

    settings.database.environment = Environment::Production;
    settings.jwt_secret = Some(hex::encode(rand::random::<[u8; 32]>()).as_str().into());
    settings.smtp_url = Some("smtp://127.0.0.1:2525".into());
    settings.public_url = Some("https://app.example".into());
    let error = Application::build(&settings)
        .await
        .err()
        .expect("production refuses one URL for everything");
    assert!(
        format!("{error:#}").contains("ROWGUARD_AUTH_DATABASE_URL"),
        "{error:#}"
    );
}

#[tokio::test]
async fn a_request_updates_only_the_columns_handlers_write() {
    let app = spawn_app().await;
    let owner = app.tenant("owner@a.example", "Acme").await;
    let scope = Scope::tenant(owner.id.parse().unwrap(), owner.owner_id.parse().unwrap());

    // What handlers write: a tenant's name, a role's name.
    for allowed in [
        "UPDATE tenants SET name = 'Acme Ltd', updated_at = now()",
        "UPDATE roles SET name = 'Crew', description = 'x', updated_at = now() WHERE name = 'Staff'",
    ] {
        let (tx, _) = app.database.begin(&scope).await.unwrap();
        tx.batch_execute(allowed).await.expect(allowed);
        tx.rollback().await;
    }
    // What no handler writes: the tenant's status, a role's system flag, the keys that
    // place a row in a tenant or a store.
    for attack in [
        "UPDATE tenants SET status = 'active'",
        "UPDATE roles SET is_system = false",
        "UPDATE tenant_users SET last_used_at = now()",
        "UPDATE user_roles SET store_id = NULL",
        "UPDATE stores SET tenant_id = tenant_id",
        "UPDATE products SET tenant_id = tenant_id",
    ] {
        let (tx, _) = app.database.begin(&scope).await.unwrap();
        let error = tx.batch_execute(attack).await.expect_err(attack);
        assert!(
            format!("{error:?}").contains("permission denied"),
            "{attack}: {error:?}"
        );
        tx.rollback().await;
    }
}
