//! docs/design.md invariants 3 and 4 at the SQL level, as the runtime role, through the
//! real request transaction: every tenant-scoped table, found from the catalog.
//! Each test first shows the legitimate access working, then tries the attack.

use rowguard::platform::db::Scope;

use crate::{fixtures::*, helpers::TestDb};

async fn runtime_role_may(superuser: &tokio_postgres::Client, table: &str, command: &str) -> bool {
    superuser
        .query_one(
            "SELECT has_table_privilege('rowguard_api', format('public.%I', $1::text), $2)",
            &[&table, &command],
        )
        .await
        .unwrap()
        .get(0)
}

async fn count_in(db: &rowguard::platform::db::Database, scope: &Scope, sql: &str) -> i64 {
    let (tx, _) = db.begin(scope).await.unwrap();
    let count: i64 = tx.query_one(sql, &[]).await.unwrap().get(0);
    tx.commit().await.unwrap();
    count
}

#[tokio::test]
async fn the_fixture_has_rows_of_both_tenants_in_every_tenant_scoped_table() {
    let test_db = TestDb::new().await;
    let superuser = seed_two_tenants(&test_db).await;
    for table in tenant_scoped_tables(&superuser).await {
        let name = quoted(&superuser, &table).await;
        for tenant in [TENANT_A, TENANT_B] {
            let count: i64 = superuser
                .query_one(
                    &format!("SELECT count(*) FROM {name} WHERE tenant_id = $1"),
                    &[&tenant],
                )
                .await
                .unwrap()
                .get(0);
            assert!(
                count > 0,
                "tests/fixtures/two_tenants.sql has no row of {tenant} in {table}"
            );
        }
    }
}

#[tokio::test]
async fn a_tenant_sees_its_own_rows_and_none_of_another_tenant_in_every_tenant_scoped_table() {
    let test_db = TestDb::new().await;
    let superuser = seed_two_tenants(&test_db).await;
    let db = test_db.database(2);
    // In a store the user can reach, so store-scoped tables show rows too.
    let scope = as_alice_of_a().in_store(Some(STORE_A1));
    for table in tables_the_runtime_role_reads(&superuser).await {
        let name = quoted(&superuser, &table).await;
        let own = count_in(&db, &scope, &format!("SELECT count(*) FROM {name}")).await;
        assert!(own > 0, "tenant A sees none of its own rows in {table}");
        let foreign = count_in(
            &db,
            &scope,
            &format!("SELECT count(*) FROM {name} WHERE tenant_id <> '{TENANT_A}'"),
        )
        .await;
        assert_eq!(
            foreign, 0,
            "tenant A sees rows of another tenant in {table}"
        );
    }
}

#[tokio::test]
async fn inserting_a_row_of_another_tenant_fails_in_every_tenant_scoped_table() {
    let test_db = TestDb::new().await;
    let superuser = seed_two_tenants(&test_db).await;
    let db = test_db.database(2);
    let scope = as_alice_of_a().in_store(Some(STORE_A1));
    for table in tables_the_runtime_role_reads(&superuser).await {
        let name = quoted(&superuser, &table).await;
        let row_of_b: serde_json::Value = superuser
            .query_one(
                &format!("SELECT to_jsonb(t) FROM {name} t WHERE tenant_id = $1 LIMIT 1"),
                &[&TENANT_B],
            )
            .await
            .unwrap()
            .get(0);
        let (tx, _) = db.begin(&scope).await.unwrap();
        let error = tx
            .execute(
                &format!(
                    "INSERT INTO {name} SELECT * FROM jsonb_populate_record(NULL::{name}, $1)"
                ),
                &[&row_of_b],
            )
            .await
            .expect_err(&format!(
                "inserted a row of tenant B into {table} as tenant A"
            ));
        assert_eq!(error.sqlstate(), Some("42501"), "{table}: {error:?}");
        // Where the runtime role may insert only some columns (usage_periods: never
        // the metered count), the privilege refuses a whole row before any policy.
        let refused_by = if runtime_role_may(&superuser, &table, "INSERT").await {
            "row-level security"
        } else {
            "permission denied"
        };
        assert!(
            format!("{error:?}").contains(refused_by),
            "{table}: {error:?}"
        );
        tx.rollback().await;
    }
}

#[tokio::test]
async fn moving_a_row_to_another_tenant_fails_in_every_tenant_scoped_table() {
    let test_db = TestDb::new().await;
    let superuser = seed_two_tenants(&test_db).await;
    let db = test_db.database(2);
    let scope = as_alice_of_a().in_store(Some(STORE_A1));
    for table in tables_the_runtime_role_reads(&superuser).await {
        let name = quoted(&superuser, &table).await;
        // Legitimate: tenant A can update its own rows, where the runtime role may
        // update at all (append-only tables refuse every UPDATE: checked below too).
        if runtime_role_may(&superuser, &table, "UPDATE").await {
            let (tx, _) = db.begin(&scope).await.unwrap();
            let updated = tx
                .execute(&format!("UPDATE {name} SET tenant_id = tenant_id"), &[])
                .await
                .unwrap();
            assert!(
                updated > 0,
                "tenant A cannot update its own rows in {table}"
            );
            tx.rollback().await;
        }

        let (tx, _) = db.begin(&scope).await.unwrap();
        let error = tx
            .execute(&format!("UPDATE {name} SET tenant_id = $1"), &[&TENANT_B])
            .await
            .expect_err(&format!("moved a row of {table} to tenant B"));
        assert_eq!(error.sqlstate(), Some("42501"), "{table}: {error:?}");
        tx.rollback().await;
    }
}

#[tokio::test]
async fn updating_or_deleting_another_tenants_rows_touches_nothing_in_every_tenant_scoped_table() {
    let test_db = TestDb::new().await;
    let superuser = seed_two_tenants(&test_db).await;
    let db = test_db.database(2);
    let scope = as_alice_of_a().in_store(Some(STORE_A1));
    for table in tables_the_runtime_role_reads(&superuser).await {
        let name = quoted(&superuser, &table).await;
        let count_b = format!("SELECT count(*) FROM {name} WHERE tenant_id = '{TENANT_B}'");
        let before: i64 = superuser.query_one(&count_b, &[]).await.unwrap().get(0);
        for (command, sql) in [
            (
                "UPDATE",
                format!("UPDATE {name} SET tenant_id = tenant_id WHERE tenant_id = $1"),
            ),
            ("DELETE", format!("DELETE FROM {name} WHERE tenant_id = $1")),
        ] {
            let (tx, _) = db.begin(&scope).await.unwrap();
            let result = tx.execute(&sql, &[&TENANT_B]).await;
            if runtime_role_may(&superuser, &table, command).await {
                assert_eq!(
                    result.unwrap(),
                    0,
                    "tenant A touched rows of tenant B in {table} by {command}"
                );
                tx.commit().await.unwrap();
            } else {
                let error = result.expect_err(&format!("{command} on append-only {table}"));
                assert_eq!(error.sqlstate(), Some("42501"), "{table}: {error:?}");
                tx.rollback().await;
            }
        }
        let after: i64 = superuser.query_one(&count_b, &[]).await.unwrap().get(0);
        assert_eq!(before, after, "rows of tenant B in {table} changed");
    }
}

#[tokio::test]
async fn without_a_tenant_context_nothing_is_visible_or_writable_in_any_tenant_scoped_table() {
    let test_db = TestDb::new().await;
    let superuser = seed_two_tenants(&test_db).await;
    let db = test_db.database(2);
    for table in tables_the_runtime_role_reads(&superuser).await {
        let name = quoted(&superuser, &table).await;
        let visible = count_in(
            &db,
            &Scope::anonymous(),
            &format!("SELECT count(*) FROM {name}"),
        )
        .await;
        assert_eq!(visible, 0, "{table} shows rows without a tenant context");

        let row_of_a: serde_json::Value = superuser
            .query_one(
                &format!("SELECT to_jsonb(t) FROM {name} t WHERE tenant_id = $1 LIMIT 1"),
                &[&TENANT_A],
            )
            .await
            .unwrap()
            .get(0);
        let (tx, _) = db.begin(&Scope::anonymous()).await.unwrap();
        let error = tx
            .execute(
                &format!(
                    "INSERT INTO {name} SELECT * FROM jsonb_populate_record(NULL::{name}, $1)"
                ),
                &[&row_of_a],
            )
            .await
            .expect_err(&format!("inserted into {table} without a tenant context"));
        assert_eq!(error.sqlstate(), Some("42501"), "{table}: {error:?}");
        tx.rollback().await;
    }
}

#[tokio::test]
async fn an_empty_or_missing_tenant_setting_shows_nothing_and_raises_no_cast_error() {
    let test_db = TestDb::new().await;
    let superuser = seed_two_tenants(&test_db).await;
    let db = test_db.database(1);
    for table in tables_the_runtime_role_reads(&superuser).await {
        let name = quoted(&superuser, &table).await;
        // Missing: no opening statement, so no context at all, on a fresh transaction.
        // Empty: what a setting reads as after an earlier transaction set it locally.
        for value in [None, Some("")] {
            let (tx, _) = db.begin(&Scope::anonymous()).await.unwrap();
            if let Some(value) = value {
                tx.execute("SELECT set_config('app.tenant_id', $1, true)", &[&value])
                    .await
                    .unwrap();
            }
            let count: i64 = tx
                .query_one(&format!("SELECT count(*) FROM {name}"), &[])
                .await
                .unwrap_or_else(|error| panic!("{table} with app.tenant_id = {value:?}: {error:?}"))
                .get(0);
            assert_eq!(
                count, 0,
                "{table} shows rows with app.tenant_id = {value:?}"
            );
            tx.commit().await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_malformed_tenant_setting_shows_nothing() {
    let test_db = TestDb::new().await;
    let superuser = seed_two_tenants(&test_db).await;
    let db = test_db.database(1);
    for table in tables_the_runtime_role_reads(&superuser).await {
        let name = quoted(&superuser, &table).await;
        let (tx, _) = db.begin(&Scope::anonymous()).await.unwrap();
        tx.execute(
            "SELECT set_config('app.tenant_id', 'not-a-uuid', true)",
            &[],
        )
        .await
        .unwrap();
        // Only hand-written SQL can set such a value; the statement fails closed.
        match tx
            .query_one(&format!("SELECT count(*) FROM {name}"), &[])
            .await
        {
            Ok(row) => assert_eq!(row.get::<_, i64>(0), 0, "{table}"),
            // invalid_text_representation, which the server reports as a bad request.
            Err(error) => assert!(
                matches!(error, rowguard::error::Error::BadRequest(ref detail) if detail.contains("not in a valid format")),
                "{table}: {error:?}"
            ),
        }
        tx.rollback().await;
    }
}

#[tokio::test]
async fn a_store_scoped_table_shows_only_the_rows_of_the_context_store() {
    let test_db = TestDb::new().await;
    let superuser = seed_two_tenants(&test_db).await;
    let db = test_db.database(2);
    let tables = store_scoped_tables(&superuser).await;
    assert!(
        tables.contains(&"inventory".to_string()),
        "inventory is store-scoped: {tables:?}"
    );
    for table in tables {
        let name = quoted(&superuser, &table).await;
        let in_a1 = as_alice_of_a().in_store(Some(STORE_A1));
        let own = count_in(&db, &in_a1, &format!("SELECT count(*) FROM {name}")).await;
        assert!(own > 0, "{table}: the store's own rows are invisible");
        let other_store = count_in(
            &db,
            &in_a1,
            &format!("SELECT count(*) FROM {name} WHERE store_id <> '{STORE_A1}'"),
        )
        .await;
        assert_eq!(other_store, 0, "{table}: rows of another store are visible");
        let no_store = count_in(
            &db,
            &as_alice_of_a(),
            &format!("SELECT count(*) FROM {name}"),
        )
        .await;
        assert_eq!(
            no_store, 0,
            "{table}: rows are visible without a store in the context"
        );
    }
}

#[tokio::test]
async fn writing_inventory_of_another_store_of_the_same_tenant_fails() {
    let test_db = TestDb::new().await;
    seed_two_tenants(&test_db).await;
    let db = test_db.database(2);
    let in_a1 = as_alice_of_a().in_store(Some(STORE_A1));
    let product: uuid::Uuid = uuid::Uuid::from_u128(0x00000000_0000_4000_8000_0000000000a5);

    let (tx, _) = db.begin(&in_a1).await.unwrap();
    let updated = tx
        .execute(
            "UPDATE inventory SET quantity = quantity + 1 WHERE product_id = $1",
            &[&product],
        )
        .await
        .unwrap();
    assert_eq!(updated, 1, "only the A1 row is updated, not A2's");
    tx.rollback().await;

    let (tx, _) = db.begin(&in_a1).await.unwrap();
    let error = tx
        .execute(
            "INSERT INTO inventory (tenant_id, store_id, product_id, quantity) VALUES ($1, $2, $3, 1)",
            &[&TENANT_A, &STORE_A2, &product],
        )
        .await
        .expect_err("wrote inventory of store A2 with store A1 in the context");
    assert_eq!(error.sqlstate(), Some("42501"));
    tx.rollback().await;
}

#[tokio::test]
async fn a_tenant_sees_only_itself_in_the_tenants_table() {
    let test_db = TestDb::new().await;
    seed_two_tenants(&test_db).await;
    let db = test_db.database(2);
    let (tx, _) = db.begin(&as_alice_of_a()).await.unwrap();
    let ids: Vec<uuid::Uuid> = tx
        .query("SELECT id FROM tenants", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(ids, vec![TENANT_A]);
    let renamed = tx
        .execute(
            "UPDATE tenants SET name = 'hijacked' WHERE id = $1",
            &[&TENANT_B],
        )
        .await
        .unwrap();
    assert_eq!(renamed, 0);
    let error = tx
        .execute("DELETE FROM tenants WHERE id = $1", &[&TENANT_A])
        .await
        .expect_err("the runtime role deleted a tenant");
    assert_eq!(error.sqlstate(), Some("42501"));
    tx.rollback().await;
}

#[tokio::test]
async fn a_user_sees_the_members_of_their_tenant_and_no_user_of_another_tenant() {
    let test_db = TestDb::new().await;
    seed_two_tenants(&test_db).await;
    let db = test_db.database(2);
    let (tx, _) = db.begin(&as_alice_of_a()).await.unwrap();
    let mut ids: Vec<uuid::Uuid> = tx
        .query("SELECT id FROM users", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    ids.sort();
    assert_eq!(ids, vec![ALICE_OF_A, SAM_OF_A]);
    let changed = tx
        .execute(
            "UPDATE users SET full_name = 'hijacked' WHERE id = $1",
            &[&BOB_OF_B],
        )
        .await
        .unwrap();
    assert_eq!(changed, 0, "changed a user of another tenant");
    let changed = tx
        .execute(
            "UPDATE users SET full_name = 'also hijacked' WHERE id = $1",
            &[&SAM_OF_A],
        )
        .await
        .unwrap();
    assert_eq!(changed, 0, "changed another member's profile");
    let changed = tx
        .execute(
            "UPDATE users SET full_name = 'Alice A.' WHERE id = $1",
            &[&ALICE_OF_A],
        )
        .await
        .unwrap();
    assert_eq!(changed, 1, "a user can change their own profile");
    tx.rollback().await;
}

#[tokio::test]
async fn the_runtime_role_reads_no_row_of_a_tenant_scoped_table_it_holds_no_privilege_on() {
    let test_db = TestDb::new().await;
    let superuser = seed_two_tenants(&test_db).await;
    let db = test_db.database(1);
    let readable = tables_the_runtime_role_reads(&superuser).await;
    let closed: Vec<String> = tenant_scoped_tables(&superuser)
        .await
        .into_iter()
        .filter(|table| !readable.contains(table))
        .collect();
    assert!(closed.contains(&"jobs".to_string()), "{closed:?}");
    for table in closed {
        let name = quoted(&superuser, &table).await;
        // The rows are there, of tenant A too...
        let rows: i64 = superuser
            .query_one(
                &format!("SELECT count(*) FROM {name} WHERE tenant_id = $1"),
                &[&TENANT_A],
            )
            .await
            .unwrap()
            .get(0);
        assert!(rows > 0, "no row of tenant A in {table}");
        // ...and not even tenant A's own context reads or writes them.
        for statement in [
            format!("SELECT count(*) FROM {name}"),
            format!("DELETE FROM {name}"),
        ] {
            let (tx, _) = db.begin(&as_alice_of_a()).await.unwrap();
            let error = tx.batch_execute(&statement).await.expect_err(&statement);
            assert!(
                format!("{error:?}").contains("permission denied"),
                "{statement}: {error:?}"
            );
            tx.rollback().await;
        }
    }
}
