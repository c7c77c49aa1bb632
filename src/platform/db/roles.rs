//! The database roles the server connects as (README, "Database roles"), and the
//! start-up check that they are what they must be.
//!
//! Two runtime roles, made by the migrations: `rowguard_api`, which every request
//! transaction runs as, and `rowguard_auth`, which the credential flows run as
//! (`rowguard_api`'s rights plus the functions that read or change credentials). The
//! server reaches them through two login roles, in PostgREST's "authenticator" model:
//! each is NOINHERIT, owns nothing and holds no right of its own but membership of its
//! runtime role. A statement that got into a request transaction (an injection) can
//! `RESET ROLE` back to its login role and have no rights at all, and can never become
//! `rowguard_auth`: the credentials are out of its reach, whatever settings it sets.
//!
//! An operator creates the login roles (with passwords) and gives their URLs; in
//! development, given only the owner's URL (or the embedded cluster), the server makes
//! them itself.

use anyhow::Context;
use sha2::{Digest, Sha256};
use tokio_postgres::Config;

use super::{Database, RuntimeRole, connect_once};

/// The login role of request sessions: becomes `rowguard_api`, nothing else.
pub const API_LOGIN: &str = "rowguard_api_login";
/// The login role of the credential flows: becomes `rowguard_auth`, nothing else.
pub const AUTH_LOGIN: &str = "rowguard_auth_login";

/// Development only: creates the two login roles if they are missing, and returns
/// `owner` as each of them. With a password in `owner`, each login role's password is
/// derived from it (so concurrent servers of one owner agree on it, and nobody who
/// lacks the owner's password learns it); without one (trust authentication), they
/// have none. Runs after the migrations, which make the runtime roles.
pub async fn development_logins(owner: &Config) -> anyhow::Result<(Config, Config)> {
    let client = connect_once(owner)
        .await
        .context("connecting as the owner to make the development login roles")?;
    let mut configs = Vec::with_capacity(2);
    for (login, runtime) in [
        (API_LOGIN, RuntimeRole::Api),
        (AUTH_LOGIN, RuntimeRole::Auth),
    ] {
        let password = owner.get_password().map(|owner_password| {
            let mut digest = Sha256::new();
            digest.update(b"rowguard development login role\0");
            digest.update(login.as_bytes());
            digest.update(b"\0");
            digest.update(owner_password);
            hex::encode(digest.finalize())
        });
        // The names are constants of this file and the password is hex: nothing here
        // is input. Roles are cluster-wide and servers of several databases (one per
        // test) may start at once, so creation and grants tolerate a concurrent twin.
        let (create_password, alter) = match &password {
            Some(password) => (
                format!("PASSWORD '{password}'"),
                format!(
                    "BEGIN ALTER ROLE {login} PASSWORD '{password}';
                     EXCEPTION WHEN OTHERS THEN NULL; END;"
                ),
            ),
            None => ("PASSWORD NULL".to_string(), String::new()),
        };
        let role = runtime.name();
        client
            .batch_execute(&format!(
                "DO $$
                 BEGIN
                     IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = '{login}') THEN
                         BEGIN
                             CREATE ROLE {login} LOGIN NOINHERIT NOSUPERUSER NOBYPASSRLS
                                 NOCREATEDB NOCREATEROLE {create_password};
                         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
                         END;
                     ELSE
                         {alter}
                     END IF;
                     IF NOT pg_catalog.pg_has_role('{login}', '{role}', 'MEMBER') THEN
                         BEGIN
                             GRANT {role} TO {login};
                         EXCEPTION WHEN unique_violation THEN NULL;
                         END;
                     END IF;
                 END
                 $$"
            ))
            .await
            .with_context(|| {
                format!(
                    "making the development login role {login} (the owner needs CREATEROLE; \
                     or create the login roles and give DATABASE_URL and \
                     ROWGUARD_AUTH_DATABASE_URL: README, \"Database roles\")"
                )
            })?;
        let mut config = owner.clone();
        config.user(login);
        if let Some(password) = &password {
            config.password(password);
        }
        configs.push(config);
    }
    let auth = configs.pop();
    let api = configs.pop();
    api.zip(auth)
        .context("two login roles were made, not fewer")
}

/// What is wrong with the pools' login roles, in words for the operator: each must be
/// neither superuser nor BYPASSRLS, NOINHERIT, own nothing, hold no right of its own,
/// and be able to become its runtime role and no other role (not the other runtime
/// role, not the tables' owner, not a predefined role such as `pg_read_all_data`); and
/// the runtime roles must become nothing more than `rowguard_auth` -> `rowguard_api`.
pub async fn problems(pools: [&Database; 2]) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    for db in pools {
        let runtime = db.runtime_role();
        let other = match runtime {
            RuntimeRole::Api => RuntimeRole::Auth,
            RuntimeRole::Auth => RuntimeRole::Api,
        };
        let client = db.admin_connection().await?;
        let row = client
            .query_one(
                "SELECT r.rolname::text, r.rolsuper, r.rolbypassrls, r.rolinherit,
                        pg_has_role(r.oid, $1::text, 'MEMBER'),
                        pg_has_role(r.oid, $2::text, 'MEMBER'),
                        ARRAY(SELECT m.rolname::text FROM pg_roles m
                              WHERE m.oid <> r.oid AND pg_has_role(r.oid, m.oid, 'MEMBER')
                              ORDER BY 1),
                        ARRAY(SELECT format('%I.%I', n.nspname, c.relname)
                              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                              WHERE (c.relowner = r.oid
                                     OR (c.relkind IN ('r', 'p', 'v', 'm')
                                         AND (has_any_column_privilege(r.oid, c.oid, 'SELECT, INSERT, UPDATE, REFERENCES')
                                              OR has_table_privilege(r.oid, c.oid, 'DELETE, TRUNCATE, TRIGGER'))))
                                AND n.nspname IN ('app', 'auth', 'public')
                              ORDER BY 1),
                        ARRAY(SELECT p.oid::regprocedure::text
                              FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                              WHERE n.nspname IN ('app', 'auth', 'public')
                                AND (p.proowner = r.oid OR has_function_privilege(r.oid, p.oid, 'EXECUTE'))
                              ORDER BY 1)
                 FROM pg_roles r WHERE r.rolname = session_user",
                &[&runtime.name(), &other.name()],
            )
            .await?;
        let login: String = row.try_get(0)?;
        let who = format!("the login role {login} (of {})", runtime.name());
        if row.try_get::<_, bool>(1)? {
            problems.push(format!("{who} is a superuser"));
        }
        if row.try_get::<_, bool>(2)? {
            problems.push(format!("{who} has BYPASSRLS"));
        }
        if row.try_get::<_, bool>(3)? {
            problems.push(format!(
                "{who} inherits its roles' rights (ALTER ROLE {login} NOINHERIT)"
            ));
        }
        if !row.try_get::<_, bool>(4)? {
            problems.push(format!(
                "{who} cannot become {} (GRANT {} TO {login})",
                runtime.name(),
                runtime.name()
            ));
        }
        // rowguard_auth is a member of rowguard_api, so only one direction is wrong.
        if runtime == RuntimeRole::Api && row.try_get::<_, bool>(5)? {
            problems.push(format!("{who} can also become {}", other.name()));
        }
        // With SET ROLE, a NOINHERIT login role has the rights of every role it is a
        // member of: exactly its runtime role (and, for rowguard_auth, rowguard_api),
        // nothing more (not the owner, not pg_read_all_data, not another login).
        let reachable: Vec<String> = row.try_get(6)?;
        let allowed: &[&str] = match runtime {
            RuntimeRole::Api => &["rowguard_api"],
            RuntimeRole::Auth => &["rowguard_api", "rowguard_auth"],
        };
        let beyond: Vec<&str> = reachable
            .iter()
            .map(String::as_str)
            .filter(|role| !allowed.contains(role))
            .collect();
        if !beyond.is_empty() {
            problems.push(format!("{who} can also become {}", beyond.join(", ")));
        }
        let relations: Vec<String> = row.try_get(7)?;
        if !relations.is_empty() {
            problems.push(format!(
                "{who} owns or has rights of its own on {}",
                relations.join(", ")
            ));
        }
        let functions: Vec<String> = row.try_get(8)?;
        if !functions.is_empty() {
            problems.push(format!(
                "{who} owns or may call {} by itself",
                functions.join(", ")
            ));
        }
    }
    // The runtime roles themselves: rowguard_api becomes nothing, rowguard_auth only
    // rowguard_api.
    let client = pools[0].admin_connection().await?;
    for (runtime, allowed) in [
        (RuntimeRole::Api, &[][..]),
        (RuntimeRole::Auth, &["rowguard_api"][..]),
    ] {
        let reachable: Vec<String> = client
            .query_one(
                "SELECT ARRAY(SELECT m.rolname::text FROM pg_roles m, pg_roles r
                              WHERE r.rolname = $1 AND m.oid <> r.oid
                                AND pg_has_role(r.oid, m.oid, 'MEMBER')
                              ORDER BY 1)",
                &[&runtime.name()],
            )
            .await?
            .try_get(0)?;
        let beyond: Vec<&str> = reachable
            .iter()
            .map(String::as_str)
            .filter(|role| !allowed.contains(role))
            .collect();
        if !beyond.is_empty() {
            problems.push(format!(
                "{} can become {}",
                runtime.name(),
                beyond.join(", ")
            ));
        }
    }
    Ok(problems)
}
