//! The HTTP layer: one `XxxApi` per resource, combined into one OpenAPI service, plus
//! the spec (`/openapi.json`) and Swagger UI (`/docs`). Handlers parse and answer HTTP
//! only; the SQL lives in `db/` and the services they call.

pub mod audit;
pub mod health;
pub mod identity;
pub mod products;
pub mod rbac;
pub mod stores;
pub mod tenancy;

use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::{OpenApiService, Tags};

use crate::platform::{auth::access::Operation, db::Database, http::edge_stack};
use identity::service::Identity;

#[derive(Tags)]
pub enum Tag {
    /// Liveness and readiness.
    Health,
    /// Registration, login, tokens, password reset.
    Auth,
    /// The caller.
    Me,
    /// The current tenant, its members and invitations.
    Tenancy,
    /// A tenant's stores.
    Stores,
    /// Permissions and roles.
    Rbac,
    /// The reference feature module: products and store inventory.
    Products,
    /// Who changed what.
    Audit,
}

/// Everything the handlers need; cloned into each `XxxApi`.
#[derive(Clone)]
pub struct AppState {
    pub db: Database,
    pub identity: Identity,
}

type Apis = (
    health::api::HealthApi,
    identity::api::auth::AuthApi,
    identity::api::me::MeApi,
    tenancy::api::tenants::TenantsApi,
    tenancy::api::invitations::InvitationsApi,
    stores::api::StoresApi,
    rbac::api::RbacApi,
    products::api::ProductsApi,
    audit::api::AuditApi,
);

pub fn openapi_service(state: &AppState) -> OpenApiService<Apis, ()> {
    let db = || state.db.clone();
    OpenApiService::new(
        (
            health::api::HealthApi { db: db() },
            identity::api::auth::AuthApi {
                identity: state.identity.clone(),
            },
            identity::api::me::MeApi {
                identity: state.identity.clone(),
            },
            tenancy::api::tenants::TenantsApi { db: db() },
            tenancy::api::invitations::InvitationsApi {
                identity: state.identity.clone(),
            },
            stores::api::StoresApi { db: db() },
            rbac::api::RbacApi { db: db() },
            products::api::ProductsApi { db: db() },
            audit::api::AuditApi { db: db() },
        ),
        "rowguard",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "The multi-tenant, multi-store core of a SaaS backend: identity, tenancy, \
         role-based access control, with PostgreSQL row-level security as the tenant filter. \
         Each operation's required permission is in its `x-permission` extension.",
    )
}

/// Every operation's declaration (see `auth::access`), from each resource's module.
pub fn operations() -> Vec<Operation> {
    [
        health::api::OPERATIONS,
        identity::api::auth::OPERATIONS,
        identity::api::me::OPERATIONS,
        tenancy::api::tenants::OPERATIONS,
        tenancy::api::invitations::OPERATIONS,
        stores::api::OPERATIONS,
        rbac::api::OPERATIONS,
        products::api::OPERATIONS,
        audit::api::OPERATIONS,
    ]
    .concat()
}

/// The OpenAPI document, with each operation's required permission added as the
/// `x-permission` extension, so generated clients and the console can show it.
pub fn spec_json(service: &OpenApiService<Apis, ()>) -> String {
    let declared = operations();
    let mut spec: serde_json::Value = match serde_json::from_str(&service.spec()) {
        Ok(spec) => spec,
        Err(_) => return service.spec(),
    };
    if let Some(paths) = spec.get_mut("paths").and_then(|p| p.as_object_mut()) {
        for item in paths.values_mut().filter_map(|i| i.as_object_mut()) {
            for operation in item.values_mut().filter_map(|o| o.as_object_mut()) {
                let id = operation
                    .get("operationId")
                    .and_then(|i| i.as_str())
                    .unwrap_or_default();
                if let Some(permission) = declared
                    .iter()
                    .find(|d| d.id == id)
                    .and_then(Operation::permission_code)
                {
                    operation.insert("x-permission".into(), permission.into());
                }
            }
        }
    }
    serde_json::to_string_pretty(&spec).unwrap_or_else(|_| service.spec())
}

/// The whole HTTP application.
pub fn routes(state: AppState) -> impl Endpoint {
    let service = openapi_service(&state);
    let spec = spec_json(&service);
    let docs = service.swagger_ui();
    let routes = Route::new()
        .at(
            "/openapi.json",
            poem::endpoint::make_sync(move |_| {
                poem::Response::builder()
                    .content_type("application/json; charset=utf-8")
                    .body(spec.clone())
            }),
        )
        .nest("/docs", docs)
        .nest("/", service)
        .data(state.identity.tokens.clone());
    edge_stack(routes)
}
