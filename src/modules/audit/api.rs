//! `/api/v1/audit-events`: who changed what in the tenant, newest first.

use chrono::{DateTime, Utc};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Query};
use uuid::Uuid;

use super::{Action, Target, db as audit};
use crate::{
    modules::Tag,
    platform::{
        auth::access::{Operation, authorize},
        db::Database,
        http::{
            common::{Limit, page},
            json::{JsonBody, rfc3339},
            problem::ApiError,
            security::BearerAuth,
        },
    },
};

pub struct AuditApi {
    pub db: Database,
}

// What each operation requires (see `auth::access`): one line per route below.
const AUDIT_EVENTS_LIST: Operation =
    Operation::permission("audit_events_list", "audit.view").feature("audit_log");

pub const OPERATIONS: &[Operation] = &[AUDIT_EVENTS_LIST];

#[derive(Object, serde::Serialize)]
pub struct AuditEvent {
    pub id: Uuid,
    #[oai(nullable)]
    pub actor_user_id: Option<Uuid>,
    pub action: Action,
    pub target_type: Target,
    #[oai(nullable)]
    pub target_id: Option<Uuid>,
    #[oai(nullable)]
    pub store_id: Option<Uuid>,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    /// A before/after summary of the change.
    pub details: serde_json::Value,
}

#[derive(Object, serde::Serialize)]
pub struct AuditEventList {
    pub items: Vec<AuditEvent>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(ApiResponse)]
pub enum AuditEventListResponse {
    #[oai(status = 200)]
    Ok(JsonBody<AuditEventList>),
}

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Audit")]
impl AuditApi {
    /// The tenant's audit trail, newest first.
    #[oai(
        path = "/audit-events",
        method = "get",
        operation_id = "audit_events_list"
    )]
    async fn list(
        &self,
        auth: BearerAuth,
        limit: Query<Option<Limit>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<AuditEventListResponse, ApiError> {
        let page = page(limit.0, cursor.0)?;
        let (tx, _) = authorize(&self.db, &auth.0, &AUDIT_EVENTS_LIST).await?;
        let rows = audit::list(tx, &page).await?;
        let (rows, next_cursor) = page.finish(rows, |e| (e.created_at, e.id));
        Ok(AuditEventListResponse::Ok(JsonBody(AuditEventList {
            items: rows
                .into_iter()
                .map(|e| AuditEvent {
                    id: e.id,
                    actor_user_id: e.actor_user_id,
                    action: e.action,
                    target_type: e.target_type,
                    target_id: e.target_id,
                    store_id: e.store_id,
                    created_at: e.created_at,
                    details: e.details,
                })
                .collect(),
            next_cursor,
        })))
    }
}
