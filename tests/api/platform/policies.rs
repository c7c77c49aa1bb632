//! `rowguard policies [--check]` (docs/design.md invariant 7) and the start-up self-check
//! (invariants 2 and 3): each breakage is made on the test's own database and must be
//! named.

use std::process::Output;

use rowguard::app::Application;

use crate::helpers::{TestDb, test_settings};

pub(super) async fn rowguard(db: &TestDb, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_rowguard"));
    command
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn");
    command.output().await.expect("rowguard runs")
}

pub(super) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(super) async fn check_fails_naming(db: &TestDb, breakage: &str, expected: &str) {
    let output = rowguard(db, &["policies", "--check"]).await;
    assert!(
        output.status.success(),
        "a migrated database passes: {}",
        stdout(&output)
    );

    db.superuser().await.batch_execute(breakage).await.unwrap();
    let output = rowguard(db, &["policies", "--check"]).await;
    let text = stdout(&output);
    assert!(
        !output.status.success(),
        "--check passed after: {breakage}\n{text}"
    );
    assert!(
        text.contains(expected),
        "--check did not say {expected:?} after {breakage}:\n{text}"
    );
}

#[tokio::test]
async fn policies_check_passes_on_a_migrated_database() {
    let db = TestDb::new().await;
    let output = rowguard(&db, &["policies", "--check"]).await;
    let text = stdout(&output);
    assert!(
        output.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("check: ok"), "{text}");
    assert!(
        text.contains("public.products"),
        "the report lists the tables: {text}"
    );
}

#[tokio::test]
async fn policies_check_fails_naming_the_table_when_a_policy_is_dropped() {
    let db = TestDb::new().await;
    check_fails_naming(
        &db,
        "DROP POLICY tenant_isolation ON products",
        "table public.products: no policy for SELECT",
    )
    .await;
}

#[tokio::test]
async fn policies_check_fails_naming_the_table_when_rls_is_disabled() {
    let db = TestDb::new().await;
    check_fails_naming(
        &db,
        "ALTER TABLE stores DISABLE ROW LEVEL SECURITY",
        "table public.stores: row-level security is not enabled",
    )
    .await;
}

#[tokio::test]
async fn policies_check_fails_naming_the_table_when_rls_is_not_forced() {
    let db = TestDb::new().await;
    check_fails_naming(
        &db,
        "ALTER TABLE roles NO FORCE ROW LEVEL SECURITY",
        "table public.roles: row-level security is not forced",
    )
    .await;
}

#[tokio::test]
async fn policies_check_fails_when_a_policy_no_longer_constrains_the_tenant() {
    let db = TestDb::new().await;
    check_fails_naming(
        &db,
        "ALTER POLICY tenant_isolation ON products USING (true) WITH CHECK (true)",
        "table public.products: policy tenant_isolation USING does not constrain tenant_id",
    )
    .await;
}

#[tokio::test]
async fn policies_check_fails_when_a_live_policy_differs_from_its_file() {
    let db = TestDb::new().await;
    // Still tenant-constrained, so only the comparison with the file can catch it.
    check_fails_naming(
        &db,
        "ALTER POLICY tenant_isolation ON products USING (tenant_id = (SELECT app.current_tenant_id()) AND price_cents > 0)",
        "table public.products: live policy tenant_isolation is not in policies/products.sql",
    )
    .await;
}

#[tokio::test]
async fn policies_check_fails_on_a_new_tenant_table_without_row_level_security() {
    let db = TestDb::new().await;
    check_fails_naming(
        &db,
        "CREATE TABLE credit_notes (tenant_id uuid NOT NULL, id uuid NOT NULL, PRIMARY KEY (tenant_id, id))",
        "table public.credit_notes: row-level security is not enabled",
    )
    .await;
}

#[tokio::test]
async fn policies_check_changes_nothing_in_the_database() {
    let db = TestDb::new().await;
    let superuser = db.superuser().await;
    superuser
        .batch_execute("ALTER POLICY tenant_isolation ON products USING (tenant_id = (SELECT app.current_tenant_id()) AND price_cents > 0)")
        .await
        .unwrap();
    let output = rowguard(&db, &["policies", "--check"]).await;
    assert!(!output.status.success());
    let qual: String = superuser
        .query_one(
            "SELECT qual FROM pg_policies WHERE tablename = 'products' AND policyname = 'tenant_isolation'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        qual.contains("price_cents"),
        "--check rewrote the live policy: {qual}"
    );
}

#[tokio::test]
async fn policies_report_is_available_as_json() {
    let db = TestDb::new().await;
    let output = rowguard(&db, &["policies", "--format", "json"]).await;
    assert!(output.status.success());
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let products = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|table| table["table"] == "products")
        .expect("products is reported");
    assert_eq!(products["rls_enabled"], true);
    assert_eq!(products["rls_forced"], true);
    assert_eq!(products["policies"][0]["command"], "ALL");
    assert_eq!(report["runtime_role"]["bypass_rls"], false);
}

#[tokio::test]
async fn the_server_refuses_to_start_when_a_tenant_table_lacks_forced_rls() {
    let db = TestDb::new().await;
    let settings = test_settings(&db.url);
    Application::build(&settings)
        .await
        .expect("a correct database starts");

    // Policy files are re-applied at start-up, so break what they do not restore:
    // a new tenant-scoped table without row-level security.
    db.superuser()
        .await
        .batch_execute("CREATE TABLE credit_notes (tenant_id uuid NOT NULL, id uuid NOT NULL, PRIMARY KEY (tenant_id, id))")
        .await
        .unwrap();
    let error = Application::build(&settings)
        .await
        .err()
        .expect("the server refused to start");
    let message = format!("{error:#}");
    assert!(message.contains("refusing to start"), "{message}");
    assert!(message.contains("public.credit_notes"), "{message}");
}

#[tokio::test]
async fn policies_check_fails_on_an_always_true_policy() {
    let db = TestDb::new().await;
    check_fails_naming(
        &db,
        "CREATE POLICY open_door ON products FOR SELECT USING (tenant_id = (SELECT app.current_tenant_id()) OR true)",
        "table public.products: policy open_door USING is always true",
    )
    .await;
}

#[tokio::test]
async fn policies_check_fails_when_the_runtime_role_owns_a_table() {
    let db = TestDb::new().await;
    check_fails_naming(
        &db,
        "ALTER TABLE products OWNER TO rowguard_api",
        "role rowguard_api owns public.products",
    )
    .await;
}

#[tokio::test]
async fn policies_check_fails_on_a_security_definer_function_without_a_fixed_search_path() {
    let db = TestDb::new().await;
    check_fails_naming(
        &db,
        "CREATE FUNCTION app.leaky() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS 'SELECT count(*) FROM public.products'",
        "function app.leaky(): SECURITY DEFINER without a fixed search_path",
    )
    .await;
}

#[tokio::test]
async fn policies_check_fails_on_a_view_that_is_not_security_invoker() {
    let db = TestDb::new().await;
    check_fails_naming(
        &db,
        "CREATE VIEW all_products AS SELECT * FROM products",
        "view public.all_products: not security_invoker",
    )
    .await;
}

#[tokio::test]
async fn policies_check_accepts_a_security_invoker_view() {
    let db = TestDb::new().await;
    db.superuser()
        .await
        .batch_execute("CREATE VIEW cheap_products WITH (security_invoker = true) AS SELECT * FROM products WHERE price_cents < 100")
        .await
        .unwrap();
    let output = rowguard(&db, &["policies", "--check"]).await;
    assert!(output.status.success(), "{}", stdout(&output));
}

#[tokio::test]
async fn policies_check_fails_on_a_store_scoped_table_without_row_level_security() {
    let db = TestDb::new().await;
    check_fails_naming(
        &db,
        "CREATE TABLE shelf_labels (store_id uuid NOT NULL, label text)",
        "table public.shelf_labels: row-level security is not enabled",
    )
    .await;
}

#[tokio::test]
async fn policies_check_fails_when_a_policy_of_a_file_is_missing_from_the_database() {
    let db = TestDb::new().await;
    // Replaced by an equivalent policy under another name: only the files know.
    check_fails_naming(
        &db,
        "DROP POLICY tenant_isolation ON stores;
         CREATE POLICY renamed ON stores USING (tenant_id = (SELECT app.current_tenant_id()))
             WITH CHECK (tenant_id = (SELECT app.current_tenant_id()))",
        "table public.stores: policy tenant_isolation of policies/stores.sql is missing or differs",
    )
    .await;
}
