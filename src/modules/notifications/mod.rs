//! In-app notifications: messages to one member of a tenant, each written by another
//! module's flow with [`notify`], in that flow's own request transaction (so a
//! notification exists exactly when the change it tells of does), and read by its
//! recipient alone through `/api/v1/notifications` (`api`). Who may read which row is
//! the policy of `policies/notifications.sql`, not this module's SQL.
//!
//! Email is this module's too: the `email.send` job (`email.rs`) delivers what the
//! flows enqueue (invitations, resets, verification links) and what [`notify`] sends
//! for the kinds that have an email.

pub mod api;
mod db;
mod email;

pub use email::jobs;

use serde_json::Value;
use uuid::Uuid;

use crate::{error::Error, platform::db::RequestTx};

/// Writes a notification for `user_id`, a member of the context's tenant (any member:
/// a flow of one member may notify another), in the caller's transaction; returns its
/// id. `kind` is `resource.event` (`invitation.accepted`); `data` holds what a client
/// needs to act on it. A `user_id` that is not a member of the tenant is a foreign-key
/// violation: a bug of the caller, a 500.
///
/// A kind that has an email ([`EMAILED_KINDS`]) also enqueues it to the member, in the
/// same transaction, rendered from `data` (so `data` carries what the template says).
pub async fn notify(
    tx: &RequestTx,
    user_id: Uuid,
    kind: &str,
    title: &str,
    body: &str,
    data: &Value,
) -> Result<Uuid, Error> {
    let id = db::insert(tx, user_id, kind, title, body, data).await?;
    if let Some((_, template)) = EMAILED_KINDS.iter().find(|(emailed, _)| *emailed == kind) {
        db::email_member(tx, user_id, template, data).await?;
    }
    Ok(id)
}

/// The notification kinds that are also emailed, and their email templates
/// (`templates/email/`).
pub const EMAILED_KINDS: &[(&str, &str)] = &[
    ("invitation.accepted", "invitation_accepted"),
    ("invoice.issued", "invoice_issued"),
    ("subscription.past_due", "subscription_past_due"),
    ("usage.threshold_reached", "usage_threshold"),
    ("payment.received", "payment_received"),
    ("payment.failed", "payment_failed"),
];

/// This module's operations, as the registry mounts them.
pub type Api = api::NotificationsApi;

pub fn api(state: &super::AppState) -> Api {
    api::NotificationsApi {
        db: state.db.clone(),
    }
}

pub const OPERATIONS: &[&[crate::platform::auth::access::Operation]] = &[api::OPERATIONS];
