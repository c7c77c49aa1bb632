//! `rowguard db seed`: a demo tenant for a newcomer to sign in to, made through the
//! services the API uses (so it obeys the same rules, limits and policies): two
//! stores, products with stock in each, and a member of each system role.

use std::process::ExitCode;

use uuid::Uuid;

use super::{open, refuse};
use crate::{
    config::{DbSeedArgs, Environment},
    error::Error,
    modules::{AppState, products, rbac, stores, tenancy},
    platform::{
        auth::OpaqueToken,
        db::{RequestTx, Scope},
        domain::{Email, Name, Password},
    },
};

const TENANT: &str = "Demo Retail";
/// Every feature and room for the demo; a plan of the catalog (sql/V12).
const PLAN: &str = "business";
const OWNER_EMAIL: &str = "owner@demo.example.com";

/// The members: email, name, system role, and whether the role is for the first
/// store only (else tenant-wide). The Owner is the first.
const MEMBERS: &[(&str, &str, &str, bool)] = &[
    (OWNER_EMAIL, "Olive Owner", "Owner", false),
    ("admin@demo.example.com", "Adam Admin", "Admin", false),
    (
        "manager@demo.example.com",
        "Mona Manager",
        "Store Manager",
        true,
    ),
    ("staff@demo.example.com", "Sam Staff", "Staff", true),
];

/// Name, code, address.
const STORES: &[(&str, &str, &str)] = &[
    ("Downtown", "DT", "1 Market Street"),
    ("Airport", "AP", "Terminal 2"),
];

/// SKU, name, price in cents, and the stock of each store.
const PRODUCTS: &[(&str, &str, i64, [i64; 2])] = &[
    ("COF-250", "Coffee beans 250 g", 899, [40, 12]),
    ("TEA-100", "Green tea 100 g", 549, [25, 30]),
    ("MUG-01", "Ceramic mug", 1299, [10, 0]),
    ("CUP-12", "Paper cups (12)", 299, [100, 60]),
];

/// The password every demo member signs in with: ROWGUARD_SEED_PASSWORD, or a new
/// random one (printed once).
const PASSWORD_VARIABLE: &str = "ROWGUARD_SEED_PASSWORD";

pub async fn seed(args: &DbSeedArgs) -> anyhow::Result<ExitCode> {
    let mut settings = args.database.settings();
    if settings.database.environment == Environment::Production {
        return refuse(
            "rowguard db seed makes demo accounts with known passwords: refused with \
             ROWGUARD_ENV=production",
        );
    }
    let (password, generated) = match std::env::var(PASSWORD_VARIABLE) {
        Ok(password) if !password.is_empty() => (password, false),
        _ => (OpaqueToken::generate().token, true),
    };
    if let Some((email, _, _, _)) = MEMBERS.iter().find_map(|member| {
        let email = Email::parse(member.0).ok()?;
        Password::parse(&password, Some(&email))
            .err()
            .map(|_| member)
    }) {
        return refuse(format!(
            "{PASSWORD_VARIABLE} is refused as a password for {email} (as registration would)"
        ));
    }
    settings.default_plan = PLAN.into();
    let (state, _target) = open(&settings).await?;

    let mut hashes = Vec::with_capacity(MEMBERS.len());
    for _ in MEMBERS {
        hashes.push(state.identity.hasher.hash(&password).await?);
    }
    let (tenant_id, owner_id) = (Uuid::new_v4(), Uuid::new_v4());
    let tx = state
        .identity
        .credentials
        .begin_context(&Scope::tenant(tenant_id, owner_id))
        .await?;
    let made = make_tenant(&state, &tx, tenant_id, owner_id, &hashes).await;
    let (store_ids, product_ids) = match made {
        Ok(Some(made)) => {
            tx.commit().await?;
            made
        }
        Ok(None) => {
            tx.rollback().await;
            return refuse(format!(
                "the database is seeded already ({OWNER_EMAIL} exists): sign in with the \
                 password printed then, or start afresh with `rowguard db reset` and seed again"
            ));
        }
        Err(error) => {
            tx.rollback().await;
            return Err(anyhow::anyhow!("seeding failed: {error}"));
        }
    };
    // Stock lives in a store's context: one transaction per store, each like a
    // request with X-Store-ID.
    for (index, store_id) in store_ids.iter().enumerate() {
        let tx = state
            .db
            .begin_context(&Scope::tenant(tenant_id, owner_id).in_store(Some(*store_id)))
            .await?;
        let stocked = async {
            for ((_, _, _, stock), product_id) in PRODUCTS.iter().zip(&product_ids) {
                if stock[index] > 0 {
                    products::adjust_stock(&tx, *product_id, stock[index], "opening stock").await?;
                }
            }
            Ok(())
        }
        .await;
        tx.finish(stocked).await?;
    }

    println!(
        "seeded tenant {TENANT} ({tenant_id}) on plan {PLAN}: {} stores, {} products with stock",
        STORES.len(),
        PRODUCTS.len()
    );
    println!("sign in with POST /api/v1/auth/login {{\"email\": ..., \"password\": ...}} as:");
    for (email, _, role, in_store) in MEMBERS {
        let place = if *in_store {
            format!("in the {} store ({})", STORES[0].0, store_ids[0])
        } else {
            "tenant-wide".into()
        };
        println!("  {email:<28} {role:<14} {place}");
    }
    if generated {
        println!("password of each (shown once): {password}");
    } else {
        println!("password of each: the value of {PASSWORD_VARIABLE}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The tenant, its Owner, stores, products and other members, in the new tenant's
/// context; `None` when the Owner's email is taken (seeded already). The ids of the
/// stores and products, in the order of [`STORES`] and [`PRODUCTS`].
async fn make_tenant(
    state: &AppState,
    tx: &RequestTx,
    tenant_id: Uuid,
    owner_id: Uuid,
    hashes: &[String],
) -> Result<Option<(Vec<Uuid>, Vec<Uuid>)>, Error> {
    let identity = &state.identity;
    let name = |text: &str| Name::parse(text).map_err(|why| Error::invalid("name", &why));
    let (owner_email, owner_name, _, _) = MEMBERS[0];
    match identity
        .create_user(tx, owner_id, owner_email, &name(owner_name)?, &hashes[0])
        .await
    {
        Err(Error::Conflict(_)) => return Ok(None),
        other => other?,
    }
    tenancy::found(tx, tenant_id, TENANT, owner_id, PLAN, chrono::Utc::now()).await?;
    let mut store_ids = Vec::with_capacity(STORES.len());
    for (store, code, address) in STORES {
        store_ids.push(stores::create(tx, &name(store)?, Some(code), Some(address)).await?);
    }
    let mut product_ids = Vec::with_capacity(PRODUCTS.len());
    for (sku, product, price, _) in PRODUCTS {
        product_ids.push(products::create(tx, sku, product, *price).await?);
    }
    for ((email, full_name, role, in_store), hash) in MEMBERS.iter().zip(hashes).skip(1) {
        let id = Uuid::new_v4();
        identity
            .create_user(tx, id, email, &name(full_name)?, hash)
            .await?;
        tenancy::add_member(tx, id).await?;
        let role = rbac::service::role_named(tx, role).await?;
        let store = in_store.then_some(store_ids[0]);
        rbac::service::assign_role(tx, id, role.id, store).await?;
    }
    Ok(Some((store_ids, product_ids)))
}
