//! Liveness and readiness, for load balancers and orchestrators.

use poem_openapi::{ApiResponse, Enum, Object, OpenApi, payload::Json};

use crate::{
    modules::Tag,
    platform::{
        auth::access::Operation,
        db::Database,
        http::problem::{Problem, ProblemCode},
    },
};

// What each operation requires (see `auth::access`).
pub const OPERATIONS: &[Operation] = &[
    Operation::public("health_get"),
    Operation::public("health_db"),
];

pub struct HealthApi {
    pub db: Database,
}

#[derive(Debug, Object)]
pub struct HealthStatus {
    pub status: Health,
}

/// A health check that answers 200 says `ok`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum Health {
    Ok,
}

#[derive(ApiResponse)]
#[allow(
    clippy::large_enum_variant,
    reason = "answered once per probe; boxing the problem would not show in any figure"
)]
pub enum DbHealthResponse {
    /// The database answers and every migration of this build is applied.
    #[oai(status = 200)]
    Ok(Json<HealthStatus>),
    /// The database does not answer, or migrations are missing (`unavailable`).
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>),
}

#[OpenApi(tag = "Tag::Health")]
impl HealthApi {
    /// The process is alive.
    #[oai(path = "/health", method = "get", operation_id = "health_get")]
    async fn health(&self) -> Json<HealthStatus> {
        Json(HealthStatus { status: Health::Ok })
    }

    /// The database answers and its schema is current.
    #[oai(path = "/health/db", method = "get", operation_id = "health_db")]
    async fn health_db(&self) -> DbHealthResponse {
        let unavailable = |detail: &str| {
            DbHealthResponse::Unavailable(Json(Problem::new(
                poem::http::StatusCode::SERVICE_UNAVAILABLE,
                ProblemCode::Unavailable,
                detail,
            )))
        };
        match self.db.migrations_current().await {
            Ok(true) => DbHealthResponse::Ok(Json(HealthStatus { status: Health::Ok })),
            Ok(false) => unavailable("database migrations are not current"),
            Err(error) => {
                tracing::warn!(%error, "database health check failed");
                unavailable("the database does not answer")
            }
        }
    }
}
