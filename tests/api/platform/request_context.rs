//! The request transaction (`db::request_tx`): what its opening statement answers,
//! and a pooled connection never carrying one request's context into the next.

use rowguard::platform::db::{Database, Scope};
use uuid::Uuid;

use crate::{fixtures::*, helpers::TestDb};

async fn visible_product_tenants(db: &Database, scope: &Scope) -> Vec<Uuid> {
    let (tx, _) = db.begin(scope).await.unwrap();
    let rows = tx
        .query("SELECT DISTINCT tenant_id FROM products", &[])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    rows.iter().map(|row| row.get(0)).collect()
}

async fn backend_pid(db: &Database) -> i32 {
    let (tx, _) = db.begin(&Scope::anonymous()).await.unwrap();
    let pid = tx
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    tx.commit().await.unwrap();
    pid
}

/// What the next requests on the connection see: each tenant its own rows, and no
/// context nothing.
async fn assert_no_context_left(db: &Database) {
    assert_eq!(
        visible_product_tenants(db, &as_bob_of_b()).await,
        vec![TENANT_B]
    );
    assert_eq!(
        visible_product_tenants(db, &Scope::anonymous()).await,
        Vec::<Uuid>::new()
    );
}

#[tokio::test]
async fn the_opening_statement_answers_membership_store_and_permission() {
    let test_db = TestDb::new().await;
    seed_two_tenants(&test_db).await;
    let db = test_db.database(1);

    let (tx, access) = db
        .begin(
            &as_alice_of_a()
                .in_store(Some(STORE_A1))
                .requiring("products.view")
                .with_permissions(),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(access.tenant_active && access.member_active && access.store_accessible);
    assert!(access.permission_granted);
    assert!(
        access
            .permissions
            .unwrap()
            .contains(&"audit.view".to_string()),
        "the Owner holds every permission"
    );

    // Another tenant's store, named while acting in tenant A.
    let (tx, access) = db
        .begin(&as_alice_of_a().in_store(Some(STORE_B1)))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(access.member_active && !access.store_accessible);

    // A member of B claiming tenant A.
    let (tx, access) = db
        .begin(&Scope::tenant(TENANT_A, BOB_OF_B).with_permissions())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(access.tenant_active && !access.member_active);
    assert_eq!(access.permissions, Some(vec![]));
}

#[tokio::test]
async fn the_opening_statement_lists_permissions_only_when_asked() {
    let test_db = TestDb::new().await;
    seed_two_tenants(&test_db).await;
    let db = test_db.database(1);

    let asked = as_alice_of_a().requiring("audit.view").with_permissions();
    let (tx, access) = db.begin(&asked).await.unwrap();
    tx.commit().await.unwrap();
    assert!(access.permission_granted);
    assert!(
        access
            .permissions
            .unwrap()
            .contains(&"audit.view".to_string())
    );

    // Not asked: the permission is still checked, the list is not made.
    let (tx, access) = db
        .begin(&as_alice_of_a().requiring("audit.view"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(access.permission_granted);
    assert_eq!(access.permissions, None);
    let (tx, access) = db
        .begin(&as_bob_of_b().requiring("no.such_permission"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(access.member_active && !access.permission_granted);
}

#[tokio::test]
async fn store_scoped_roles_grant_their_permissions_only_in_their_store() {
    let test_db = TestDb::new().await;
    seed_two_tenants(&test_db).await;
    let db = test_db.database(1);
    let sam = Scope::tenant(TENANT_A, SAM_OF_A).requiring("inventory.view");

    let (tx, in_a1) = db
        .begin(&sam.clone().in_store(Some(STORE_A1)))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(in_a1.store_accessible && in_a1.permission_granted);

    let (tx, in_a2) = db
        .begin(&sam.clone().in_store(Some(STORE_A2)))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(!in_a2.store_accessible && !in_a2.permission_granted);

    let (tx, no_store) = db.begin(&sam).await.unwrap();
    tx.commit().await.unwrap();
    assert!(
        !no_store.permission_granted,
        "a store role grants nothing tenant-wide"
    );
}

#[tokio::test]
async fn a_suspended_tenant_or_membership_is_reported_inactive() {
    let test_db = TestDb::new().await;
    let superuser = seed_two_tenants(&test_db).await;
    let db = test_db.database(1);

    superuser
        .execute(
            "UPDATE tenant_users SET status = 'suspended' WHERE user_id = $1",
            &[&SAM_OF_A],
        )
        .await
        .unwrap();
    let (tx, access) = db.begin(&Scope::tenant(TENANT_A, SAM_OF_A)).await.unwrap();
    tx.commit().await.unwrap();
    assert!(access.tenant_active && !access.member_active);

    superuser
        .execute(
            "UPDATE tenants SET status = 'suspended' WHERE id = $1",
            &[&TENANT_A],
        )
        .await
        .unwrap();
    let (tx, access) = db.begin(&as_alice_of_a()).await.unwrap();
    tx.commit().await.unwrap();
    assert!(!access.tenant_active);
}

#[tokio::test]
async fn a_pool_of_one_connection_never_shows_one_tenants_context_to_the_next() {
    let test_db = TestDb::new().await;
    seed_two_tenants(&test_db).await;
    let db = test_db.database(1);
    let first = backend_pid(&db).await;

    for _ in 0..3 {
        assert_eq!(
            visible_product_tenants(&db, &as_alice_of_a()).await,
            vec![TENANT_A]
        );
        assert_eq!(
            visible_product_tenants(&db, &as_bob_of_b()).await,
            vec![TENANT_B]
        );
        assert_eq!(
            visible_product_tenants(&db, &Scope::anonymous()).await,
            Vec::<Uuid>::new()
        );
    }
    assert_eq!(
        backend_pid(&db).await,
        first,
        "one connection served every request"
    );
}

/// The opening statement is planned once per connection, never per request, whatever
/// the connection ran first. With PostgreSQL's default choice, a connection whose
/// first requests were anonymous (logins, on the credentials pool) kept planning it
/// afresh on every later request, because an anonymous scope's custom plan folds
/// away to almost nothing and the generic plan never looked as cheap.
#[tokio::test]
async fn the_opening_statement_is_planned_once_per_connection_whatever_it_ran_first() {
    let test_db = TestDb::new().await;
    seed_two_tenants(&test_db).await;
    let db = test_db.database(1);

    for _ in 0..8 {
        let (tx, access) = db.begin(&Scope::anonymous()).await.unwrap();
        tx.commit().await.unwrap();
        assert!(!access.tenant_active);
    }
    for _ in 0..8 {
        let (tx, access) = db
            .begin(&as_alice_of_a().requiring("products.view"))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert!(access.member_active && access.permission_granted);
    }

    let (tx, _) = db.begin(&Scope::anonymous()).await.unwrap();
    let row = tx
        .query_one(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements \
             WHERE statement LIKE 'SELECT $6::uuid IS NULL OR EXISTS%'",
            &[],
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let (generic, custom): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!(custom, 0, "no execution planned the statement again");
    assert!(
        generic >= 17,
        "every execution ran the generic plan: {generic}"
    );
}

#[tokio::test]
async fn a_request_that_failed_mid_transaction_leaks_nothing_to_the_next() {
    let test_db = TestDb::new().await;
    seed_two_tenants(&test_db).await;
    let db = test_db.database(1);
    let first = backend_pid(&db).await;

    // A's request fails mid-transaction, and is rolled back as handlers do.
    let (tx, _) = db.begin(&as_alice_of_a()).await.unwrap();
    tx.execute("SELECT 1 / 0", &[])
        .await
        .expect_err("division by zero");
    tx.rollback().await;
    assert_eq!(
        visible_product_tenants(&db, &as_bob_of_b()).await,
        vec![TENANT_B]
    );
    assert_eq!(
        backend_pid(&db).await,
        first,
        "a rolled-back connection is reused"
    );

    // A's request fails and is abandoned without ROLLBACK (an early return, a panic,
    // a cancelled future): its connection must not be reused.
    let (tx, _) = db.begin(&as_alice_of_a()).await.unwrap();
    tx.execute("SELECT 1 / 0", &[])
        .await
        .expect_err("division by zero");
    drop(tx);
    assert_no_context_left(&db).await;
    assert_ne!(
        backend_pid(&db).await,
        first,
        "an abandoned connection was reused"
    );
}

#[tokio::test]
async fn a_last_statement_sent_with_its_commit_commits_and_leaves_the_connection_clean() {
    let test_db = TestDb::new().await;
    seed_two_tenants(&test_db).await;
    let db = test_db.database(1);
    let first = backend_pid(&db).await;

    let (tx, _) = db.begin(&as_alice_of_a()).await.unwrap();
    let statement = tx
        .prepare(
            "INSERT INTO products (tenant_id, sku, name, price_cents)
             VALUES (app.current_tenant_id(), 'COMMITTED-1', 'Committed', 1) RETURNING tenant_id",
        )
        .await
        .unwrap();
    let rows = tx.query_and_commit(&statement, &[]).await.unwrap();
    assert_eq!(rows[0].get::<_, Uuid>(0), TENANT_A);

    // Committed: another session sees the row; the pooled connection carries no
    // context and is reused.
    let found = test_db
        .superuser()
        .await
        .query(
            "SELECT tenant_id FROM products WHERE sku = 'COMMITTED-1'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].get::<_, Uuid>(0), TENANT_A);
    assert_no_context_left(&db).await;
    assert_eq!(
        backend_pid(&db).await,
        first,
        "a committed connection is reused"
    );
}

#[tokio::test]
async fn a_failed_last_statement_sent_with_its_commit_is_rolled_back_and_leaks_nothing() {
    let test_db = TestDb::new().await;
    seed_two_tenants(&test_db).await;
    let db = test_db.database(1);
    let first = backend_pid(&db).await;

    // The legitimate case first: the same statement succeeds with a valid divisor.
    let (tx, _) = db.begin(&as_alice_of_a()).await.unwrap();
    let statement = tx.prepare("SELECT 10 / $1::int").await.unwrap();
    let rows = tx.query_and_commit(&statement, &[&2i32]).await.unwrap();
    assert_eq!(rows[0].get::<_, i32>(0), 5);

    // The transaction writes, then its last statement fails.
    let (tx, _) = db.begin(&as_alice_of_a()).await.unwrap();
    tx.execute(
        "INSERT INTO products (tenant_id, sku, name, price_cents)
         VALUES (app.current_tenant_id(), 'ROLLED-BACK-1', 'Rolled back', 1)",
        &[],
    )
    .await
    .unwrap();
    let statement = tx.prepare("SELECT 10 / $1::int").await.unwrap();
    tx.query_and_commit(&statement, &[&0i32])
        .await
        .expect_err("division by zero");

    // PostgreSQL answered the COMMIT of the failed transaction by rolling it back:
    // another session sees no row.
    let found = test_db
        .superuser()
        .await
        .query("SELECT 1 FROM products WHERE sku = 'ROLLED-BACK-1'", &[])
        .await
        .unwrap();
    assert!(found.is_empty());
    assert_no_context_left(&db).await;
    assert_eq!(
        backend_pid(&db).await,
        first,
        "the rolled-back connection is reused, clean"
    );
}

#[tokio::test]
async fn an_abandoned_open_transaction_is_discarded_not_pooled() {
    let test_db = TestDb::new().await;
    seed_two_tenants(&test_db).await;
    let db = test_db.database(1);

    // Open and healthy, but never finished: the next request must not run inside it.
    let (tx, _) = db.begin(&as_alice_of_a()).await.unwrap();
    tx.execute("UPDATE products SET name = 'uncommitted'", &[])
        .await
        .unwrap();
    drop(tx);

    assert_eq!(
        visible_product_tenants(&db, &as_bob_of_b()).await,
        vec![TENANT_B]
    );
    let superuser = test_db.superuser().await;
    let name: String = superuser
        .query_one(
            "SELECT name FROM products WHERE tenant_id = $1",
            &[&TENANT_A],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        name, "A widget",
        "the abandoned transaction's write was committed"
    );
}

#[tokio::test]
async fn a_thousand_alternating_requests_of_two_tenants_on_one_connection_never_cross() {
    let test_db = TestDb::new().await;
    seed_two_tenants(&test_db).await;
    let db = test_db.database(1);
    let (mut ok, mut failed, mut abandoned, mut cancelled) = (0, 0, 0, 0);
    for n in 0..1000 {
        let (scope, own) = if n % 2 == 0 {
            (as_alice_of_a(), TENANT_A)
        } else {
            (as_bob_of_b(), TENANT_B)
        };
        let (tx, _) = db.begin(&scope).await.unwrap();
        let rows = tx
            .query("SELECT DISTINCT tenant_id FROM products", &[])
            .await
            .unwrap();
        let seen: Vec<Uuid> = rows.iter().map(|row| row.get(0)).collect();
        assert_eq!(seen, vec![own], "request {n} saw {seen:?}");
        let setting: String = tx
            .query_one("SELECT current_setting('app.tenant_id')", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(setting, own.to_string(), "request {n}");
        match n % 10 {
            // Fails mid-transaction and is rolled back, as handlers do.
            3 => {
                tx.execute("SELECT 1 / 0", &[])
                    .await
                    .expect_err("division by zero");
                tx.rollback().await;
                failed += 1;
            }
            // Fails and is abandoned without ROLLBACK (an early return, a panic).
            5 => {
                tx.execute("SELECT 1 / 0", &[])
                    .await
                    .expect_err("division by zero");
                drop(tx);
                abandoned += 1;
            }
            // Cancelled while a statement runs (a client that went away).
            7 => {
                let slow = tx.execute("SELECT pg_sleep(1)", &[]);
                assert!(
                    tokio::time::timeout(std::time::Duration::from_millis(2), slow)
                        .await
                        .is_err()
                );
                drop(tx);
                cancelled += 1;
            }
            _ => {
                tx.commit().await.unwrap();
                ok += 1;
            }
        }
    }
    assert_eq!((ok, failed, abandoned, cancelled), (700, 100, 100, 100));
}
