//! The HTTP layer: one `XxxApi` per resource, combined into one OpenAPI service, plus
//! the spec (`/openapi.json`) and Swagger UI (`/docs`). Handlers parse and answer HTTP
//! only; the SQL lives in `db/` and the services they call.

pub mod auth;
pub mod edge;
pub mod health;
pub mod me;
pub mod problem;
pub mod security;

use poem::{Endpoint, EndpointExt, Route, middleware::CatchPanic};
use poem_openapi::{OpenApiService, Tags};

use crate::{db::Database, identity::Identity};

#[derive(Tags)]
pub enum Tag {
    /// Liveness and readiness.
    Health,
    /// Registration, login, tokens, password reset.
    Auth,
    /// The caller.
    Me,
}

/// Everything the handlers need; cloned into each `XxxApi`.
#[derive(Clone)]
pub struct AppState {
    pub db: Database,
    pub identity: Identity,
}

type Apis = (health::HealthApi, auth::AuthApi, me::MeApi);

pub fn openapi_service(state: &AppState) -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            health::HealthApi {
                db: state.db.clone(),
            },
            auth::AuthApi {
                identity: state.identity.clone(),
            },
            me::MeApi {
                identity: state.identity.clone(),
            },
        ),
        "rowguard",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "The multi-tenant, multi-store core of a SaaS backend: identity, tenancy, \
         role-based access control, with PostgreSQL row-level security as the tenant filter.",
    )
}

/// The whole HTTP application.
pub fn routes(state: AppState) -> impl Endpoint {
    let service = openapi_service(&state);
    let spec = service.spec_endpoint();
    let docs = service.swagger_ui();
    Route::new()
        .at("/openapi.json", spec)
        .nest("/docs", docs)
        .nest("/", service)
        .data(state.identity.tokens.clone())
        .with(CatchPanic::new().with_handler(edge::panic_response))
        .with(edge::Edge)
}
