//! The writes of stores, each with its audit event in the same transaction.

use serde_json::json;
use uuid::Uuid;

use super::db::{self, StoreRow, StoreStatus};
use crate::{
    error::Error,
    modules::{
        audit::{self, Action, Event, Target},
        rbac, tenancy,
    },
    platform::{
        db::{Access, RequestTx},
        domain::Name,
        http::common::wire_name,
    },
};

/// A store's changes as parsed from a request; `None` leaves a field as it is.
pub struct StoreFields {
    pub name: Option<Name>,
    pub code: Option<String>,
    pub address: Option<String>,
    pub status: Option<StoreStatus>,
}

pub async fn create(
    tx: &RequestTx,
    name: &Name,
    code: Option<&str>,
    address: Option<&str>,
) -> Result<StoreRow, Error> {
    let store = db::create_store(tx, name.as_str(), code, address).await?;
    audit::record(
        tx,
        Event {
            action: Action::StoreCreated,
            target_type: Target::Store,
            target_id: Some(store.id),
            store_id: Some(store.id),
            details: json!({"after": {"name": store.name, "code": store.code}}),
        },
    )
    .await?;
    Ok(store)
}

pub async fn update(tx: &RequestTx, id: Uuid, fields: StoreFields) -> Result<StoreRow, Error> {
    let before = db::store(tx, id).await?;
    let store = db::update_store(
        tx,
        id,
        fields.name.as_ref().map(Name::as_str),
        fields.code.as_deref(),
        fields.address.as_deref(),
        fields.status.map(|status| wire_name(&status)).as_deref(),
    )
    .await?;
    audit::record(
        tx,
        Event {
            action: Action::StoreUpdated,
            target_type: Target::Store,
            target_id: Some(store.id),
            store_id: Some(store.id),
            details: json!({
                "before": {"name": before.name, "code": before.code, "address": before.address, "status": before.status},
                "after": {"name": store.name, "code": store.code, "address": store.address, "status": store.status},
            }),
        },
    )
    .await?;
    Ok(store)
}

/// Deletes a store, with its inventory, links and store-scoped assignments: only by
/// someone who could remove each of those assignments directly.
pub async fn delete(tx: &RequestTx, access: &Access, id: Uuid) -> Result<(), Error> {
    db::lock_store(tx, id).await?;
    rbac::service::ensure_may_remove_assignments_in_store(tx, access, id).await?;
    let store = db::delete_store(tx, id).await?;
    audit::record(
        tx,
        Event {
            action: Action::StoreDeleted,
            target_type: Target::Store,
            target_id: Some(store.id),
            store_id: None,
            details: json!({"before": {"name": store.name, "code": store.code}}),
        },
    )
    .await
}

/// The members linked to a store (404 when the store is not the tenant's).
pub async fn members(tx: &RequestTx, id: Uuid) -> Result<Vec<tenancy::MemberRow>, Error> {
    db::store(tx, id).await?;
    db::store_members(tx, id).await
}

/// Links a member to a store; idempotent (a repeat records nothing).
pub async fn link(tx: &RequestTx, store_id: Uuid, user_id: Uuid) -> Result<(), Error> {
    db::store(tx, store_id).await?;
    tenancy::member(tx, user_id).await?;
    if db::link_store_user(tx, store_id, user_id).await? {
        audit::record(
            tx,
            Event {
                action: Action::StoreUserLinked,
                target_type: Target::User,
                target_id: Some(user_id),
                store_id: Some(store_id),
                details: json!({}),
            },
        )
        .await?;
    }
    Ok(())
}

pub async fn unlink(tx: &RequestTx, store_id: Uuid, user_id: Uuid) -> Result<(), Error> {
    db::unlink_store_user(tx, store_id, user_id).await?;
    audit::record(
        tx,
        Event {
            action: Action::StoreUserUnlinked,
            target_type: Target::User,
            target_id: Some(user_id),
            store_id: Some(store_id),
            details: json!({}),
        },
    )
    .await
}
