//! In-app notifications: messages to one member of a tenant, each written by another
//! module's flow with [`notify`], in that flow's own request transaction (so a
//! notification exists exactly when the change it tells of does), and read by its
//! recipient alone through `/api/v1/notifications` (`api`). Who may read which row is
//! the policy of `policies/notifications.sql`, not this module's SQL.

pub mod api;
mod db;

use serde_json::Value;
use uuid::Uuid;

use crate::{error::Error, platform::db::RequestTx};

/// Writes a notification for `user_id`, a member of the context's tenant (any member:
/// a flow of one member may notify another), in the caller's transaction; returns its
/// id. `kind` is `resource.event` (`invitation.accepted`); `data` holds what a client
/// needs to act on it. A `user_id` that is not a member of the tenant is a foreign-key
/// violation: a bug of the caller, a 500.
pub async fn notify(
    tx: &RequestTx,
    user_id: Uuid,
    kind: &str,
    title: &str,
    body: &str,
    data: &Value,
) -> Result<Uuid, Error> {
    db::insert(tx, user_id, kind, title, body, data).await
}

/// This module's operations, as the registry mounts them.
pub type Api = api::NotificationsApi;

pub fn api(state: &super::AppState) -> Api {
    api::NotificationsApi {
        db: state.db.clone(),
    }
}

pub const OPERATIONS: &[&[crate::platform::auth::access::Operation]] = &[api::OPERATIONS];
