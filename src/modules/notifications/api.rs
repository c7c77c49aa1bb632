//! `/api/v1/notifications`: the caller's own notifications in the current tenant.
//! Any member may call these; the policies make every row but the caller's own
//! invisible, so another member's notification is a 404 like a missing one.

use chrono::{DateTime, Utc};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, param::Query};
use uuid::Uuid;

use super::db::{self as notifications, NotificationRow};
use crate::{
    modules::Tag,
    platform::{
        auth::access::{Operation, authorize},
        db::Database,
        http::{
            common::{Limit, page},
            json::{JsonBody, rfc3339, rfc3339_or_null},
            problem::ApiError,
            security::BearerAuth,
        },
    },
};

pub struct NotificationsApi {
    pub db: Database,
}

// What each operation requires (see `auth::access`): one line per route below.
// A person's own notifications: never an API key's, whatever its permissions.
const NOTIFICATIONS_LIST: Operation = Operation::member("notifications_list").for_people_only();
const NOTIFICATIONS_READ: Operation = Operation::member("notifications_read").for_people_only();
const NOTIFICATIONS_READ_ALL: Operation =
    Operation::member("notifications_read_all").for_people_only();
const NOTIFICATIONS_UNREAD_COUNT: Operation =
    Operation::member("notifications_unread_count").for_people_only();

pub const OPERATIONS: &[Operation] = &[
    NOTIFICATIONS_LIST,
    NOTIFICATIONS_READ,
    NOTIFICATIONS_READ_ALL,
    NOTIFICATIONS_UNREAD_COUNT,
];

#[derive(Object, serde::Serialize)]
pub struct Notification {
    pub id: Uuid,
    /// What happened, `resource.event` (`invitation.accepted`).
    pub kind: String,
    pub title: String,
    pub body: String,
    /// What a client needs to act on it (the ids it concerns).
    pub data: serde_json::Value,
    /// When the recipient first read it; `null` while unread.
    #[oai(nullable)]
    #[serde(serialize_with = "rfc3339_or_null")]
    pub read_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
}

impl From<NotificationRow> for Notification {
    fn from(row: NotificationRow) -> Self {
        Notification {
            id: row.id,
            kind: row.kind,
            title: row.title,
            body: row.body,
            data: row.data,
            read_at: row.read_at,
            created_at: row.created_at,
        }
    }
}

#[derive(Object, serde::Serialize)]
pub struct NotificationList {
    pub items: Vec<Notification>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(Object, serde::Serialize)]
pub struct UnreadCount {
    pub count: i64,
}

#[derive(ApiResponse)]
pub enum NotificationListResponse {
    #[oai(status = 200)]
    Ok(JsonBody<NotificationList>),
}

#[derive(ApiResponse)]
pub enum NotificationResponse {
    #[oai(status = 200)]
    Ok(JsonBody<Notification>),
}

#[derive(ApiResponse)]
pub enum AllRead {
    /// Every notification of the caller in the tenant is read.
    #[oai(status = 204)]
    NoContent,
}

#[derive(ApiResponse)]
pub enum UnreadCountResponse {
    #[oai(status = 200)]
    Ok(JsonBody<UnreadCount>),
}

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Notifications")]
impl NotificationsApi {
    /// The caller's notifications in the current tenant, newest first.
    #[oai(
        path = "/notifications",
        method = "get",
        operation_id = "notifications_list"
    )]
    async fn list(
        &self,
        auth: BearerAuth,
        /// `true`: only the unread ones.
        unread: Query<Option<bool>>,
        limit: Query<Option<Limit>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<NotificationListResponse, ApiError> {
        let page = page(limit.0, cursor.0)?;
        let (tx, _) = authorize(&self.db, &auth.0, &NOTIFICATIONS_LIST).await?;
        let rows = notifications::list(tx, &page, unread.0.unwrap_or(false)).await?;
        let (rows, next_cursor) = page.finish(rows, |n| (n.created_at, n.id));
        Ok(NotificationListResponse::Ok(JsonBody(NotificationList {
            items: rows.into_iter().map(Into::into).collect(),
            next_cursor,
        })))
    }

    /// Mark one of the caller's notifications read. Reading it again changes nothing:
    /// `read_at` stays the time of the first read.
    #[oai(
        path = "/notifications/:id/read",
        method = "put",
        operation_id = "notifications_read"
    )]
    async fn read(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<NotificationResponse, ApiError> {
        let (tx, _) = authorize(&self.db, &auth.0, &NOTIFICATIONS_READ).await?;
        let notification = notifications::mark_read(&tx, id.0).await;
        Ok(NotificationResponse::Ok(JsonBody(
            tx.finish(notification).await?.into(),
        )))
    }

    /// Mark every notification of the caller in the current tenant read.
    #[oai(
        path = "/notifications/read-all",
        method = "post",
        operation_id = "notifications_read_all"
    )]
    async fn read_all(&self, auth: BearerAuth) -> Result<AllRead, ApiError> {
        let (tx, _) = authorize(&self.db, &auth.0, &NOTIFICATIONS_READ_ALL).await?;
        let done = notifications::mark_all_read(&tx).await;
        tx.finish(done).await?;
        Ok(AllRead::NoContent)
    }

    /// How many of the caller's notifications in the current tenant are unread.
    #[oai(
        path = "/notifications/unread-count",
        method = "get",
        operation_id = "notifications_unread_count"
    )]
    async fn unread_count(&self, auth: BearerAuth) -> Result<UnreadCountResponse, ApiError> {
        let (tx, _) = authorize(&self.db, &auth.0, &NOTIFICATIONS_UNREAD_COUNT).await?;
        let count = notifications::unread_count(tx).await?;
        Ok(UnreadCountResponse::Ok(JsonBody(UnreadCount { count })))
    }
}
