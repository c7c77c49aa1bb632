//! The rules of RBAC, each where a test can call it: nobody grants a permission they
//! do not hold, the system role Owner cannot be changed, and a tenant always keeps an
//! active Owner. Every function runs in the caller's request transaction and records
//! its audit event there.

use std::collections::BTreeSet;

use serde_json::json;
use uuid::Uuid;

use super::db::{self, AssignmentRow, RoleRow};
use crate::{
    error::Error,
    modules::{
        audit::{self, Action, Event, Target},
        stores, tenancy,
    },
    platform::{
        db::{Access, RequestTx},
        domain::Name,
    },
};

/// "Nobody grants a permission they do not hold": every code in `granted` must be
/// among the caller's effective permissions; otherwise 403 naming the first missing.
/// (The operation must declare `reading_held_permissions()`.)
pub fn ensure_holds(access: &Access, granted: &[String]) -> Result<(), Error> {
    let held = access.held_permissions()?;
    match granted.iter().find(|code| !held.contains(code)) {
        Some(missing) => Err(Error::Forbidden {
            permission: missing.clone(),
        }),
        None => Ok(()),
    }
}

/// Serializes every change that could take away the tenant's last Owner: each such
/// change locks the Owner role's row first, so two concurrent demotions of the last
/// two Owners run one after the other, and the second sees the first's result. Call
/// before the change, and [`ensure_an_owner_remains`] after it.
pub async fn lock_owners(tx: &RequestTx) -> Result<(), Error> {
    db::lock_owners(tx).await
}

/// The tenant's active Owners: whom the tenant's own notices go to (invoices, payments,
/// usage thresholds).
pub async fn active_owners(tx: &RequestTx) -> Result<Vec<Uuid>, Error> {
    db::active_owners(tx).await
}

/// After a change that may have removed an Owner: the tenant must keep one (409).
pub async fn ensure_an_owner_remains(tx: &RequestTx) -> Result<(), Error> {
    if db::active_owner_count(tx).await? == 0 {
        return Err(Error::Conflict(
            "the tenant must keep at least one active Owner".into(),
        ));
    }
    Ok(())
}

/// Every permission `user_id` holds through any assignment: what someone must hold
/// themselves to suspend or remove them (an Admin cannot suspend an Owner).
pub async fn ensure_holds_all_of(
    tx: &RequestTx,
    access: &Access,
    user_id: Uuid,
) -> Result<(), Error> {
    ensure_holds(access, &db::permissions_of(tx, user_id).await?)
}

/// `GET /roles/{id}`: the role, read with the COMMIT.
pub async fn read_role(tx: RequestTx, id: Uuid) -> Result<RoleRow, Error> {
    db::read_role(tx, id).await
}

/// Owner, Admin, Store Manager and Staff for a new tenant (the context's); returns
/// the Owner role's id.
pub async fn create_system_roles(tx: &RequestTx) -> Result<Uuid, Error> {
    db::create_system_roles(tx).await
}

/// Assigns a role without the grant checks: for flows that decided already (the
/// creator of a tenant becomes its Owner; an invitation checked when it was issued).
pub async fn assign_role(
    tx: &RequestTx,
    user_id: Uuid,
    role_id: Uuid,
    store_id: Option<Uuid>,
) -> Result<Uuid, Error> {
    db::assign(tx, user_id, role_id, store_id).await
}

/// The role of `role_id` for a grant: 422 when there is none, 422 when `store_id`
/// names no store of the tenant, 403 when the caller does not hold all its
/// permissions.
pub async fn grantable_role(
    tx: &RequestTx,
    access: &Access,
    role_id: Uuid,
    store_id: Option<Uuid>,
) -> Result<RoleRow, Error> {
    let role = match db::role(tx, role_id).await {
        Err(Error::NotFound) => return Err(Error::invalid("role_id", "no such role")),
        other => other?,
    };
    if let Some(store_id) = store_id
        && !stores::exists(tx, store_id).await?
    {
        return Err(Error::invalid("store_id", "no such store"));
    }
    ensure_holds(access, &role.permissions)?;
    Ok(role)
}

/// Whether `user_id` could still issue an invitation with `role_id`: an active member
/// holding `users.invite` and every permission of the role through tenant-wide roles,
/// as when they issued it.
pub async fn could_still_invite_with(
    tx: &RequestTx,
    user_id: Uuid,
    role_id: Uuid,
) -> Result<bool, Error> {
    let mut needed = db::role(tx, role_id).await?.permissions;
    needed.push("users.invite".into());
    db::still_holds_tenant_wide(tx, user_id, &needed).await
}

/// What a role is created or changed with.
pub struct RoleChange<'a> {
    pub name: Option<Name>,
    pub description: Option<String>,
    pub permissions: Option<&'a [String]>,
}

/// Creates a role with permissions the caller holds.
pub async fn create_role(
    tx: &RequestTx,
    access: &Access,
    name: &Name,
    description: Option<&str>,
    permissions: &[String],
) -> Result<RoleRow, Error> {
    let permissions = known_permissions(tx, permissions).await?;
    ensure_holds(access, &permissions)?;
    let id = db::create_role(tx, name.as_str(), description).await?;
    db::set_role_permissions(tx, id, &permissions).await?;
    audit::record(
        tx,
        Event {
            action: Action::RoleCreated,
            target_type: Target::Role,
            target_id: Some(id),
            store_id: None,
            details: json!({"after": {"name": name.as_str(), "permissions": permissions}}),
        },
    )
    .await?;
    db::role(tx, id).await
}

/// Changes a role: the caller must hold every permission it has, before and after
/// (otherwise a `roles.edit` holder could empty a role above them, then act on its
/// holders as if they held nothing). Owner: 409; a system role keeps its name (409).
pub async fn update_role(
    tx: &RequestTx,
    access: &Access,
    id: Uuid,
    change: RoleChange<'_>,
) -> Result<RoleRow, Error> {
    db::lock_role(tx, id).await?;
    let before = db::role(tx, id).await?;
    refuse_owner(&before)?;
    ensure_holds(access, &before.permissions)?;
    if before.is_system
        && change
            .name
            .as_ref()
            .is_some_and(|name| name.as_str() != before.name)
    {
        return Err(Error::Conflict("a system role keeps its name".into()));
    }
    if let Some(permissions) = change.permissions {
        replace_permissions(tx, access, &before, permissions).await?;
    }
    db::update_role(
        tx,
        id,
        change.name.as_ref().map(Name::as_str),
        change.description.as_deref(),
    )
    .await?;
    let after = db::role(tx, id).await?;
    audit::record(
        tx,
        Event {
            action: Action::RoleUpdated,
            target_type: Target::Role,
            target_id: Some(id),
            store_id: None,
            details: json!({
                "before": {"name": before.name, "permissions": before.permissions},
                "after": {"name": after.name, "permissions": after.permissions},
            }),
        },
    )
    .await?;
    Ok(after)
}

/// Replaces a role's permissions; the caller must hold every permission it has, before
/// and after. Owner: 409.
pub async fn set_role_permissions(
    tx: &RequestTx,
    access: &Access,
    id: Uuid,
    permissions: &[String],
) -> Result<RoleRow, Error> {
    db::lock_role(tx, id).await?;
    let before = db::role(tx, id).await?;
    refuse_owner(&before)?;
    ensure_holds(access, &before.permissions)?;
    let permissions = replace_permissions(tx, access, &before, permissions).await?;
    audit::record(
        tx,
        Event {
            action: Action::RolePermissionsSet,
            target_type: Target::Role,
            target_id: Some(id),
            store_id: None,
            details: json!({"before": {"permissions": before.permissions}, "after": {"permissions": permissions}}),
        },
    )
    .await?;
    db::role(tx, id).await
}

/// Deletes a role nobody holds (409 while assigned). Owner: 409.
pub async fn delete_role(tx: &RequestTx, id: Uuid) -> Result<(), Error> {
    let role = db::role(tx, id).await?;
    refuse_owner(&role)?;
    // Invitations already accepted, revoked or expired go with the role; a pending one
    // keeps it (409).
    tenancy::forget_finished_invitations_for_role(tx, id).await?;
    db::delete_role(tx, id).await?;
    audit::record(
        tx,
        Event {
            action: Action::RoleDeleted,
            target_type: Target::Role,
            target_id: Some(id),
            store_id: None,
            details: json!({"before": {"name": role.name, "permissions": role.permissions}}),
        },
    )
    .await
}

/// The role assignments of `user_id` in the context's tenant, oldest first.
pub async fn assignments(tx: &RequestTx, user_id: Uuid) -> Result<Vec<AssignmentRow>, Error> {
    db::assignments_of(tx, user_id).await
}

/// A member's role assignments (404 when `user_id` is not a member).
pub async fn assignments_of(tx: &RequestTx, user_id: Uuid) -> Result<Vec<AssignmentRow>, Error> {
    tenancy::member(tx, user_id).await?;
    db::assignments_of(tx, user_id).await
}

/// Assigns a role to a member, tenant-wide or in one store; the caller must hold every
/// permission of the role.
pub async fn assign(
    tx: &RequestTx,
    access: &Access,
    user_id: Uuid,
    role_id: Uuid,
    store_id: Option<Uuid>,
) -> Result<AssignmentRow, Error> {
    tenancy::member(tx, user_id).await?;
    let role = grantable_role(tx, access, role_id, store_id).await?;
    let assignment_id = db::assign(tx, user_id, role.id, store_id).await?;
    audit::record(
        tx,
        Event {
            action: Action::RoleAssigned,
            target_type: Target::User,
            target_id: Some(user_id),
            store_id,
            details: json!({"after": {"assignment_id": assignment_id, "role_id": role.id, "role": role.name}}),
        },
    )
    .await?;
    db::assignment(tx, user_id, assignment_id).await
}

/// Before deleting a store: its store-scoped assignments go with it, so the caller must
/// be one who could remove each of them directly (hold every permission of its role).
pub async fn ensure_may_remove_assignments_in_store(
    tx: &RequestTx,
    access: &Access,
    store_id: Uuid,
) -> Result<(), Error> {
    for role in db::roles_assigned_in_store(tx, store_id).await? {
        ensure_holds(access, &role.permissions)?;
    }
    Ok(())
}

/// Removes an assignment; the caller must hold every permission of the role, and the
/// last active Owner keeps theirs (409).
pub async fn unassign(
    tx: &RequestTx,
    access: &Access,
    user_id: Uuid,
    assignment_id: Uuid,
) -> Result<(), Error> {
    lock_owners(tx).await?;
    let assignment = db::assignment(tx, user_id, assignment_id).await?;
    let role = db::role(tx, assignment.role_id).await?;
    ensure_holds(access, &role.permissions)?;
    db::unassign(tx, assignment.id).await?;
    ensure_an_owner_remains(tx).await?;
    audit::record(
        tx,
        Event {
            action: Action::RoleUnassigned,
            target_type: Target::User,
            target_id: Some(user_id),
            store_id: assignment.store_id,
            details: json!({"before": {"assignment_id": assignment.id, "role_id": role.id, "role": role.name}}),
        },
    )
    .await
}

/// Sets `role`'s permissions to `requested` (known codes only; those added must be
/// held, as the callers check for those removed); returns them sorted and deduplicated.
async fn replace_permissions(
    tx: &RequestTx,
    access: &Access,
    role: &RoleRow,
    requested: &[String],
) -> Result<Vec<String>, Error> {
    let permissions = known_permissions(tx, requested).await?;
    let added: Vec<String> = permissions
        .iter()
        .filter(|p| !role.permissions.contains(p))
        .cloned()
        .collect();
    ensure_holds(access, &added)?;
    db::set_role_permissions(tx, role.id, &permissions).await?;
    Ok(permissions)
}

/// Sorted, deduplicated, known codes; 422 for unknown ones.
async fn known_permissions(tx: &RequestTx, codes: &[String]) -> Result<Vec<String>, Error> {
    let codes: Vec<String> = codes
        .iter()
        .map(|c| c.trim().to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let unknown = db::unknown_permissions(tx, &codes).await?;
    if !unknown.is_empty() {
        return Err(Error::invalid(
            "permissions",
            &format!("unknown permissions: {}", unknown.join(", ")),
        ));
    }
    Ok(codes)
}

fn refuse_owner(role: &RoleRow) -> Result<(), Error> {
    if role.is_owner() {
        return Err(Error::Conflict(
            "the system role Owner cannot be changed".into(),
        ));
    }
    Ok(())
}

/// The context tenant's role named `name` (404 when it has none).
pub async fn role_named(tx: &RequestTx, name: &str) -> Result<RoleRow, Error> {
    db::role_named(tx, name).await
}

/// What [`restore_system_roles`] put back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The system roles that were missing, now made.
    pub roles: Vec<String>,
    /// Default permissions of system roles that were missing, now granted.
    pub grants: u64,
}

/// Puts back what a tenant's system roles lack against the defaults of a new tenant:
/// the missing roles, and the default permissions they miss (a permission added by a
/// migration that did not grant it to existing tenants, or one taken away by hand).
/// Nothing is taken away: a permission granted beyond the defaults stays.
pub async fn restore_system_roles(tx: &RequestTx) -> Result<Restored, Error> {
    let roles = db::create_missing_system_roles(tx).await?;
    let grants = db::grant_missing_system_permissions(tx).await?;
    Ok(Restored { roles, grants })
}
