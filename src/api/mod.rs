//! The HTTP layer: one `XxxApi` per resource, combined into one OpenAPI service, plus
//! the spec (`/openapi.json`) and Swagger UI (`/docs`). Handlers parse and answer HTTP
//! only; the SQL lives in `db/` and the services they call.

pub mod edge;
pub mod health;
pub mod problem;

use poem::{Endpoint, EndpointExt, Route, middleware::CatchPanic};
use poem_openapi::{OpenApiService, Tags};

use crate::db::Database;

#[derive(Tags)]
pub enum Tag {
    /// Liveness and readiness.
    Health,
}

/// Everything the handlers need; cloned into each `XxxApi`.
#[derive(Clone)]
pub struct AppState {
    pub db: Database,
}

pub fn openapi_service(state: &AppState) -> OpenApiService<health::HealthApi, ()> {
    OpenApiService::new(
        health::HealthApi {
            db: state.db.clone(),
        },
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
        .with(CatchPanic::new().with_handler(edge::panic_response))
        .with(edge::Edge)
}
