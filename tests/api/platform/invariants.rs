//! docs/design.md invariants 1, 2, 5 and 6, each tried as an attack after the legitimate
//! access is shown to work.

use rowguard::platform::db::{Database, PoolOptions, RuntimeRole, Scope, rls_audit};

use crate::{fixtures::*, helpers::TestDb};

#[tokio::test]
async fn the_context_lives_only_as_long_as_its_transaction() {
    let test_db = TestDb::new().await;
    seed_two_tenants(&test_db).await;
    let db = test_db.database(1);

    let (tx, _) = db
        .begin(&as_alice_of_a().in_store(Some(STORE_A1)))
        .await
        .unwrap();
    let row = tx
        .query_one(
            "SELECT current_setting('app.tenant_id'), current_setting('app.store_id'), current_user::text",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), TENANT_A.to_string());
    assert_eq!(row.get::<_, String>(1), STORE_A1.to_string());
    assert_eq!(row.get::<_, String>(2), "rowguard_api");
    tx.commit().await.unwrap();

    // The pool has one connection: this is the same session, after COMMIT.
    let session = db.admin_connection().await.unwrap();
    let row = session
        .query_one(
            "SELECT coalesce(current_setting('app.tenant_id', true), ''),
                    coalesce(current_setting('app.store_id', true), ''),
                    current_user::text",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, String>(0),
        "",
        "app.tenant_id survived the transaction"
    );
    assert_eq!(
        row.get::<_, String>(1),
        "",
        "app.store_id survived the transaction"
    );
    assert_ne!(
        row.get::<_, String>(2),
        "rowguard_api",
        "the role switch survived the transaction"
    );
}

#[tokio::test]
async fn the_runtime_role_is_nologin_nosuperuser_nobypassrls_and_owns_nothing() {
    let test_db = TestDb::new().await;
    let superuser = test_db.superuser().await;
    let role = rls_audit::runtime_role(&superuser).await.unwrap();
    assert!(role.exists);
    assert!(!role.superuser);
    assert!(!role.bypass_rls);
    assert!(!role.can_login);
    assert!(
        role.owned_relations.is_empty(),
        "{:?}",
        role.owned_relations
    );
}

#[tokio::test]
async fn the_runtime_role_cannot_switch_row_level_security_off() {
    let test_db = TestDb::new().await;
    seed_two_tenants(&test_db).await;
    let db = test_db.database(1);

    let (tx, _) = db.begin(&as_alice_of_a()).await.unwrap();
    let visible: i64 = tx
        .query_one("SELECT count(*) FROM products", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(visible, 1, "the legitimate read works");
    let error = tx
        .batch_execute("ALTER TABLE products DISABLE ROW LEVEL SECURITY")
        .await
        .expect_err("the runtime role disabled row-level security");
    assert_eq!(error.sqlstate(), Some("42501"), "{error:?}");
    tx.rollback().await;

    let (tx, _) = db.begin(&as_alice_of_a()).await.unwrap();
    tx.batch_execute("SET LOCAL row_security = off")
        .await
        .unwrap();
    let error = tx
        .query_one("SELECT count(*) FROM products", &[])
        .await
        .expect_err("with row_security off, the runtime role read a table with policies");
    assert_eq!(error.sqlstate(), Some("42501"), "{error:?}");
    tx.rollback().await;
}

#[tokio::test]
async fn the_audit_reports_a_runtime_role_that_could_bypass_row_level_security() {
    let test_db = TestDb::new().await;
    let mut superuser = test_db.superuser().await;
    let report = rls_audit::report(&superuser).await.unwrap();
    assert_eq!(
        rls_audit::problems(&report),
        Vec::<String>::new(),
        "a migrated database is clean"
    );

    // Roles are cluster-wide: make the change inside a transaction that is never
    // committed, so no other test ever sees it.
    let tx = superuser.transaction().await.unwrap();
    tx.batch_execute("ALTER ROLE rowguard_api BYPASSRLS")
        .await
        .unwrap();
    let report = rls_audit::report(&tx).await.unwrap();
    tx.rollback().await.unwrap();
    let problems = rls_audit::problems(&report);
    assert!(
        problems.iter().any(|p| p.contains("BYPASSRLS")),
        "{problems:?}"
    );
}

#[tokio::test]
async fn every_tenant_scoped_table_has_tenant_id_in_its_primary_or_a_unique_key() {
    let test_db = TestDb::new().await;
    let superuser = test_db.superuser().await;
    for table in tenant_scoped_tables(&superuser).await {
        let keyed: bool = superuser
            .query_one(
                "SELECT EXISTS (
                     SELECT 1 FROM pg_constraint k
                     JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey)
                     WHERE k.conrelid = format('public.%I', $1::text)::regclass
                       AND k.contype IN ('p', 'u') AND a.attname = 'tenant_id')",
                &[&table],
            )
            .await
            .unwrap()
            .get(0);
        assert!(keyed, "{table} has no primary or unique key with tenant_id");
    }
}

#[tokio::test]
async fn every_foreign_key_between_tenant_scoped_tables_includes_tenant_id_on_both_sides() {
    let test_db = TestDb::new().await;
    let superuser = test_db.superuser().await;
    let rows = superuser
        .query(
            "SELECT k.conname::text,
                    EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = k.conrelid
                            AND a.attnum = ANY (k.conkey) AND a.attname = 'tenant_id'),
                    EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = k.confrelid
                            AND a.attnum = ANY (k.confkey) AND a.attname = 'tenant_id')
             FROM pg_constraint k
             WHERE k.contype = 'f'
               AND k.connamespace = 'public'::regnamespace
               AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = k.conrelid AND a.attname = 'tenant_id')
               AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = k.confrelid AND a.attname = 'tenant_id')",
            &[],
        )
        .await
        .unwrap();
    assert!(
        rows.len() >= 5,
        "expected the core model's composite foreign keys"
    );
    for row in rows {
        let (name, local, foreign): (String, bool, bool) = (row.get(0), row.get(1), row.get(2));
        assert!(
            local && foreign,
            "foreign key {name} is not composite on tenant_id"
        );
    }
}

#[tokio::test]
async fn a_row_cannot_reference_another_tenants_row() {
    let test_db = TestDb::new().await;
    seed_two_tenants(&test_db).await;
    let db = test_db.database(1);

    let (tx, _) = db.begin(&as_alice_of_a()).await.unwrap();
    tx.execute(
        "INSERT INTO store_users (tenant_id, store_id, user_id) VALUES ($1, $2, $3)",
        &[&TENANT_A, &STORE_A2, &ALICE_OF_A],
    )
    .await
    .expect("linking a member to a store of the same tenant works");
    tx.rollback().await;

    // Foreign-key checks bypass row-level security; the composite key still stops it.
    let (tx, _) = db.begin(&as_alice_of_a()).await.unwrap();
    let error = tx
        .execute(
            "INSERT INTO store_users (tenant_id, store_id, user_id) VALUES ($1, $2, $3)",
            &[&TENANT_A, &STORE_B1, &ALICE_OF_A],
        )
        .await
        .expect_err("linked a member of A to a store of B");
    // foreign_key_violation of the composite key, which the server reports as a conflict.
    assert!(
        matches!(
            error,
            rowguard::error::Error::Constraint { kind: rowguard::error::ConstraintKind::ForeignKey, ref name }
                if name == "store_users_tenant_id_store_id_fkey"
        ),
        "{error:?}"
    );
    tx.rollback().await;
}

#[tokio::test]
async fn the_runtime_role_cannot_read_credentials_but_the_login_function_answers() {
    let test_db = TestDb::new().await;
    seed_two_tenants(&test_db).await;
    let db = test_db.database(1);
    let credentials = Database::connect_with(
        test_db.url.parse().unwrap(),
        RuntimeRole::Auth,
        &PoolOptions::default(),
    )
    .unwrap();

    let lookup = "SELECT user_id, password_hash FROM app.login_lookup('alice@a.example', '127.0.0.1', 900, 10, 100, 30, 60)";
    let (tx, _) = credentials.begin(&Scope::anonymous()).await.unwrap();
    let row = tx
        .query_one(lookup, &[])
        .await
        .expect("the definer function answers the credential role what login needs");
    assert_eq!(row.get::<_, uuid::Uuid>(0), ALICE_OF_A);
    tx.rollback().await;

    // Requests cannot ask it: a password hash is nothing a request needs.
    let (tx, _) = db.begin(&Scope::anonymous()).await.unwrap();
    let error = tx.query_one(lookup, &[]).await.expect_err(lookup);
    assert!(
        format!("{error:?}").contains("permission denied"),
        "{error:?}"
    );
    tx.rollback().await;

    for attack in [
        "SELECT password_hash FROM auth.user_credentials",
        "UPDATE auth.user_credentials SET password_hash = 'x'",
    ] {
        let (tx, _) = db.begin(&as_alice_of_a()).await.unwrap();
        let error = tx.execute(attack, &[]).await.expect_err(attack);
        assert_eq!(error.sqlstate(), Some("42501"), "{attack}: {error:?}");
        tx.rollback().await;
    }
}

#[tokio::test]
async fn every_security_definer_function_has_a_fixed_search_path() {
    let test_db = TestDb::new().await;
    let superuser = test_db.superuser().await;
    let rows = superuser
        .query(
            "SELECT p.oid::regprocedure::text,
                    EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
            &[],
        )
        .await
        .unwrap();
    assert!(
        !rows.is_empty(),
        "the credential functions are SECURITY DEFINER"
    );
    for row in rows {
        let (function, fixed): (String, bool) = (row.get(0), row.get(1));
        assert!(
            fixed,
            "{function} is SECURITY DEFINER without a fixed search_path"
        );
    }
}
