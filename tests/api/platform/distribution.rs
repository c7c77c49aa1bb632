//! The "distributable by tenant" rule of `rowguard policies --check` and the Citus
//! statements of `rowguard policies --citus` (docs/design.md invariant 5): each
//! breakage is made on the test's own database and must be named.

use std::collections::BTreeMap;

use super::policies::{check_fails_naming, rowguard, stdout};
use crate::helpers::TestDb;

#[tokio::test]
async fn policies_check_fails_naming_a_tenant_table_without_tenant_id_in_its_primary_key() {
    let db = TestDb::new().await;
    check_fails_naming(
        &db,
        "CREATE TABLE credit_notes (tenant_id uuid NOT NULL REFERENCES tenants (id), id uuid PRIMARY KEY)",
        "table public.credit_notes: not distributable: primary key (id) does not include tenant_id",
    )
    .await;
}

#[tokio::test]
async fn policies_check_fails_naming_a_tenant_table_without_a_primary_key() {
    let db = TestDb::new().await;
    check_fails_naming(
        &db,
        "CREATE TABLE credit_notes (tenant_id uuid NOT NULL REFERENCES tenants (id), id uuid)",
        "table public.credit_notes: not distributable: no primary key",
    )
    .await;
}

#[tokio::test]
async fn policies_check_fails_naming_a_foreign_key_between_tenant_tables_without_the_tenant() {
    let db = TestDb::new().await;
    // A store's id alone made referenceable, then referenced alone: the reference
    // could cross tenants (foreign-key checks bypass row-level security), and Citus
    // could not check it on one server.
    check_fails_naming(
        &db,
        "ALTER TABLE stores ADD CONSTRAINT stores_id_key UNIQUE (id);
         CREATE TABLE shelf_notes (tenant_id uuid NOT NULL, id uuid NOT NULL,
             store_id uuid NOT NULL REFERENCES stores (id), PRIMARY KEY (tenant_id, id))",
        "table public.shelf_notes: not distributable: foreign key shelf_notes_store_id_fkey to public.stores does not include tenant_id = public.stores.tenant_id",
    )
    .await;
}

#[tokio::test]
async fn policies_check_fails_naming_a_reference_to_the_tenants_by_another_column() {
    let db = TestDb::new().await;
    check_fails_naming(
        &db,
        "CREATE TABLE referrals (tenant_id uuid NOT NULL REFERENCES tenants (id),
             referred_tenant_id uuid NOT NULL REFERENCES tenants (id),
             PRIMARY KEY (tenant_id, referred_tenant_id))",
        "table public.referrals: not distributable: foreign key referrals_referred_tenant_id_fkey to public.tenants is not on tenant_id = public.tenants.id",
    )
    .await;
}

#[tokio::test]
async fn policies_check_fails_naming_a_global_table_that_is_not_named_as_a_reference_table() {
    let db = TestDb::new().await;
    check_fails_naming(
        &db,
        "CREATE TABLE currencies (code text PRIMARY KEY)",
        "table public.currencies: not distributable: no tenant_id column, and not named as a reference or coordinator table",
    )
    .await;
}

#[tokio::test]
async fn policies_check_fails_naming_a_reference_table_that_points_at_a_tenant_table() {
    let db = TestDb::new().await;
    check_fails_naming(
        &db,
        "ALTER TABLE plans ADD COLUMN launched_by uuid;
         ALTER TABLE plans ADD CONSTRAINT plans_launched_by_fkey FOREIGN KEY (launched_by) REFERENCES tenants (id)",
        "table public.plans: not distributable: foreign key plans_launched_by_fkey of a table copied to every server points at public.tenants",
    )
    .await;
}

/// The names in `statements` given to `function`, e.g. `create_reference_table`.
fn tables_given_to(statements: &str, function: &str) -> Vec<String> {
    let opening = format!("SELECT {function}('");
    statements
        .lines()
        .filter_map(|line| line.strip_prefix(opening.as_str()))
        .filter_map(|rest| rest.split('\'').next())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn policies_citus_places_every_table_of_the_schema_once() {
    let db = TestDb::new().await;
    let output = rowguard(&db, &["policies", "--citus"]).await;
    let statements = stdout(&output);
    assert!(output.status.success(), "{statements}");

    let catalog: BTreeMap<String, bool> = db
        .superuser()
        .await
        .query(
            "SELECT format('%s.%s', n.nspname, c.relname),
                    EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                            AND a.attname = 'tenant_id' AND NOT a.attisdropped)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND n.nspname IN ('public', 'app', 'auth')",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let distributed = tables_given_to(&statements, "create_distributed_table");
    let replicated = tables_given_to(&statements, "create_reference_table");
    let kept = statements
        .lines()
        .filter_map(|line| line.strip_prefix("--   "))
        .filter_map(|line| line.split(':').next())
        .map(str::to_string)
        .filter(|name| catalog.contains_key(name))
        .collect::<Vec<_>>();
    for (table, has_tenant_id) in &catalog {
        let places = [&distributed, &replicated, &kept]
            .iter()
            .filter(|list| list.contains(table))
            .count();
        assert_eq!(places, 1, "{table} is placed {places} times:\n{statements}");
        if *has_tenant_id && !kept.contains(table) {
            assert!(
                statements.contains(&format!(
                    "SELECT create_distributed_table('{table}', 'tenant_id', colocate_with => 'public.tenants');"
                )),
                "{table} is not distributed by tenant_id with the tenants:\n{statements}"
            );
        }
    }
    assert!(statements.contains("SELECT create_distributed_table('public.tenants', 'id');"));
    // A table is distributed only after the tables it references.
    let position = |table: &str| distributed.iter().position(|t| t == table).unwrap();
    assert!(position("public.tenants") < position("public.stores"));
    assert!(position("public.stores") < position("public.inventory"));
    assert!(position("public.products") < position("public.inventory"));
}

#[tokio::test]
async fn policies_citus_leaves_out_and_names_a_table_that_breaks_the_rule() {
    let db = TestDb::new().await;
    db.superuser()
        .await
        .batch_execute("CREATE TABLE credit_notes (tenant_id uuid NOT NULL REFERENCES tenants (id), id uuid PRIMARY KEY)")
        .await
        .unwrap();
    let output = rowguard(&db, &["policies", "--citus"]).await;
    let statements = stdout(&output);
    assert!(!output.status.success(), "{statements}");
    assert!(
        statements.contains("-- left out, see above: public.credit_notes"),
        "{statements}"
    );
    assert!(
        !tables_given_to(&statements, "create_distributed_table")
            .contains(&"public.credit_notes".to_string()),
        "{statements}"
    );
}
