//! The two-tenant fixture (`tests/fixtures/two_tenants.sql`) and its ids.

use rowguard::platform::db::Scope;
use tokio_postgres::Client;
use uuid::Uuid;

use crate::helpers::TestDb;

pub const TENANT_A: Uuid = Uuid::from_u128(0xaaaaaaaa_0000_4000_8000_000000000000);
pub const TENANT_B: Uuid = Uuid::from_u128(0xbbbbbbbb_0000_4000_8000_000000000000);
pub const ALICE_OF_A: Uuid = Uuid::from_u128(0x00000000_0000_4000_8000_0000000000a0);
pub const SAM_OF_A: Uuid = Uuid::from_u128(0x00000000_0000_4000_8000_0000000000a9);
pub const BOB_OF_B: Uuid = Uuid::from_u128(0x00000000_0000_4000_8000_0000000000b0);
pub const STORE_A1: Uuid = Uuid::from_u128(0x00000000_0000_4000_8000_0000000000a1);
pub const STORE_A2: Uuid = Uuid::from_u128(0x00000000_0000_4000_8000_0000000000a2);
pub const STORE_B1: Uuid = Uuid::from_u128(0x00000000_0000_4000_8000_0000000000b1);

pub async fn seed_two_tenants(db: &TestDb) -> Client {
    let superuser = db.superuser().await;
    superuser
        .batch_execute(include_str!("../fixtures/two_tenants.sql"))
        .await
        .expect("the two-tenant fixture loads");
    superuser
}

pub fn as_alice_of_a() -> Scope {
    Scope::tenant(TENANT_A, ALICE_OF_A)
}

pub fn as_bob_of_b() -> Scope {
    Scope::tenant(TENANT_B, BOB_OF_B)
}

/// Every tenant-scoped table (a `tenant_id` column in schema public), from the catalog.
pub async fn tenant_scoped_tables(superuser: &Client) -> Vec<String> {
    let rows = superuser
        .query(
            "SELECT c.relname::text
             FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    let tables: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
    assert!(
        tables.len() >= 8,
        "expected the core model's tenant tables, found {tables:?}"
    );
    tables
}

/// The tenant-scoped tables the runtime role may read at all. The others (the job
/// queue, whose payloads carry secrets) it reaches only through SECURITY DEFINER
/// functions: privileges isolate them before any policy does
/// (`the_runtime_role_reads_no_row_of_a_tenant_scoped_table_it_holds_no_privilege_on`).
pub async fn tables_the_runtime_role_reads(superuser: &Client) -> Vec<String> {
    let mut readable = Vec::new();
    for table in tenant_scoped_tables(superuser).await {
        let may: bool = superuser
            .query_one(
                // A column grant counts: api_keys is readable but for its secret_hash.
                "SELECT has_any_column_privilege('rowguard_api', format('public.%I', $1::text), 'SELECT')",
                &[&table],
            )
            .await
            .unwrap()
            .get(0);
        if may {
            readable.push(table);
        }
    }
    readable
}

/// Tables whose policies also require the context's store.
pub async fn store_scoped_tables(superuser: &Client) -> Vec<String> {
    let rows = superuser
        .query(
            "SELECT DISTINCT tablename::text FROM pg_policies
             WHERE schemaname = 'public' AND qual LIKE '%current_store_id()%' ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    rows.iter().map(|row| row.get(0)).collect()
}

/// `"table"` quoted by the server, for building per-table statements in tests.
pub async fn quoted(superuser: &Client, table: &str) -> String {
    superuser
        .query_one("SELECT format('public.%I', $1::text)", &[&table])
        .await
        .unwrap()
        .get(0)
}
