//! `/api/v1/permissions` and `/api/v1/roles`: the permission catalog and a tenant's
//! roles. Guards: nobody grants a permission they do not hold (403), and the system
//! role Owner cannot be changed or deleted (409).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, param::Query, payload::Json};
use serde_json::json;
use uuid::Uuid;

use super::db::{self as rbac, RoleRow};
use crate::{
    error::Error,
    modules::{
        Tag,
        audit::db::{self as audit, Event},
    },
    platform::{
        auth::access::{Operation, authorize},
        db::{Database, RequestTx},
        domain::{Fields, Name},
        http::{
            common::{Deleted, ensure_holds, invalid, page},
            problem::ApiError,
            security::BearerAuth,
        },
    },
};

pub struct RbacApi {
    pub db: Database,
}

// What each operation requires (see `auth::access`): one line per route below.
const PERMISSIONS_LIST: Operation = Operation::member("permissions_list");
const ROLES_LIST: Operation = Operation::permission("roles_list", "roles.view");
const ROLES_CREATE: Operation =
    Operation::permission("roles_create", "roles.create").reading_held_permissions();
const ROLES_GET: Operation = Operation::permission("roles_get", "roles.view");
const ROLES_UPDATE: Operation =
    Operation::permission("roles_update", "roles.edit").reading_held_permissions();
const ROLES_DELETE: Operation = Operation::permission("roles_delete", "roles.delete");
const ROLES_SET_PERMISSIONS: Operation =
    Operation::permission("roles_set_permissions", "roles.edit").reading_held_permissions();

pub const OPERATIONS: &[Operation] = &[
    PERMISSIONS_LIST,
    ROLES_LIST,
    ROLES_CREATE,
    ROLES_GET,
    ROLES_UPDATE,
    ROLES_DELETE,
    ROLES_SET_PERMISSIONS,
];

#[derive(Object)]
pub struct PermissionDto {
    pub code: String,
    pub description: String,
}

#[derive(Object)]
pub struct RoleDto {
    pub id: Uuid,
    pub name: String,
    #[oai(nullable)]
    pub description: Option<String>,
    /// Owner, Admin, Store Manager and Staff are created with every tenant.
    pub is_system: bool,
    pub permissions: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl From<RoleRow> for RoleDto {
    fn from(row: RoleRow) -> Self {
        RoleDto {
            id: row.id,
            name: row.name,
            description: row.description,
            is_system: row.is_system,
            permissions: row.permissions,
            created_at: row.created_at,
        }
    }
}

#[derive(Object)]
pub struct RoleList {
    pub items: Vec<RoleDto>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(Object)]
pub struct CreateRoleRequest {
    pub name: String,
    #[oai(nullable)]
    pub description: Option<String>,
    /// Permission codes; each must be one the caller holds.
    pub permissions: Vec<String>,
}

#[derive(Object)]
pub struct UpdateRoleRequest {
    #[oai(nullable)]
    pub name: Option<String>,
    #[oai(nullable)]
    pub description: Option<String>,
    /// Replaces the role's permissions when given.
    #[oai(nullable)]
    pub permissions: Option<Vec<String>>,
}

#[derive(Object)]
pub struct SetPermissionsRequest {
    pub permissions: Vec<String>,
}

#[derive(ApiResponse)]
pub enum PermissionsResponse {
    /// The permission catalog.
    #[oai(status = 200)]
    Ok(Json<Vec<PermissionDto>>),
}

#[derive(ApiResponse)]
pub enum RoleListResponse {
    #[oai(status = 200)]
    Ok(Json<RoleList>),
}

#[derive(ApiResponse)]
pub enum RoleResponse {
    #[oai(status = 200)]
    Ok(Json<RoleDto>),
}

#[derive(ApiResponse)]
pub enum RoleCreated {
    #[oai(status = 201)]
    Created(Json<RoleDto>),
}

/// Sorted, deduplicated, known codes; 422 for unknown ones.
async fn known_permissions(tx: &RequestTx, codes: &[String]) -> Result<Vec<String>, Error> {
    let codes: Vec<String> = codes
        .iter()
        .map(|c| c.trim().to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let unknown = rbac::unknown_permissions(tx, &codes).await?;
    if !unknown.is_empty() {
        return Err(invalid(
            "permissions",
            &format!("unknown permissions: {}", unknown.join(", ")),
        ));
    }
    Ok(codes)
}

fn description(fields: &mut Fields, description: Option<&String>) -> Option<String> {
    let description = description.map(|d| d.trim().to_string())?;
    if description.chars().count() > 500 {
        fields.fail("description", "must be at most 500 characters");
        return None;
    }
    Some(description)
}

fn refuse_owner(role: &RoleRow) -> Result<(), Error> {
    if role.is_owner() {
        return Err(Error::Conflict(
            "the system role Owner cannot be changed".into(),
        ));
    }
    Ok(())
}

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Rbac")]
impl RbacApi {
    /// The permission catalog (code-defined, seeded by migrations).
    #[oai(
        path = "/permissions",
        method = "get",
        operation_id = "permissions_list"
    )]
    async fn permissions(&self, auth: BearerAuth) -> Result<PermissionsResponse, ApiError> {
        let (tx, _) = authorize(&self.db, &auth.0, None, &PERMISSIONS_LIST).await?;
        let rows = rbac::permission_catalog(&tx).await;
        let rows = tx.finish(rows).await?;
        Ok(PermissionsResponse::Ok(Json(
            rows.into_iter()
                .map(|p| PermissionDto {
                    code: p.code,
                    description: p.description,
                })
                .collect(),
        )))
    }

    /// The tenant's roles.
    #[oai(path = "/roles", method = "get", operation_id = "roles_list")]
    async fn list(
        &self,
        auth: BearerAuth,
        /// 1 to 100, default 50.
        limit: Query<Option<i64>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<RoleListResponse, ApiError> {
        let page = page(limit.0, cursor.0)?;
        let (tx, _) = authorize(&self.db, &auth.0, None, &ROLES_LIST).await?;
        let rows = rbac::list_roles(tx, &page).await?;
        let (rows, next_cursor) = page.finish(rows, |r| (r.created_at, r.id));
        Ok(RoleListResponse::Ok(Json(RoleList {
            items: rows.into_iter().map(Into::into).collect(),
            next_cursor,
        })))
    }

    /// Create a role with permissions the caller holds.
    #[oai(path = "/roles", method = "post", operation_id = "roles_create")]
    async fn create(
        &self,
        auth: BearerAuth,
        body: Json<CreateRoleRequest>,
    ) -> Result<RoleCreated, ApiError> {
        let mut fields = Fields::new();
        let name = fields.check("name", Name::parse(&body.name));
        let description = description(&mut fields, body.description.as_ref());
        fields.finish()?;
        let name = name.expect("validated");
        let (tx, access) = authorize(&self.db, &auth.0, None, &ROLES_CREATE).await?;
        let result = async {
            let permissions = known_permissions(&tx, &body.permissions).await?;
            ensure_holds(&access, &permissions)?;
            let id = rbac::create_role(&tx, name.as_str(), description.as_deref()).await?;
            rbac::set_role_permissions(&tx, id, &permissions).await?;
            audit::record(
                &tx,
                Event {
                    action: "role.created",
                    target_type: "role",
                    target_id: Some(id),
                    store_id: None,
                    details: json!({"after": {"name": name.as_str(), "permissions": permissions}}),
                },
            )
            .await?;
            rbac::role(&tx, id).await
        }
        .await;
        Ok(RoleCreated::Created(Json(tx.finish(result).await?.into())))
    }

    /// One role.
    #[oai(path = "/roles/:id", method = "get", operation_id = "roles_get")]
    async fn get(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<RoleResponse, ApiError> {
        let (tx, _) = authorize(&self.db, &auth.0, None, &ROLES_GET).await?;
        let role = rbac::role(&tx, id.0).await;
        Ok(RoleResponse::Ok(Json(tx.finish(role).await?.into())))
    }

    /// Change a role; permissions added must be held by the caller. Owner: 409.
    #[oai(path = "/roles/:id", method = "patch", operation_id = "roles_update")]
    async fn update(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: Json<UpdateRoleRequest>,
    ) -> Result<RoleResponse, ApiError> {
        let mut fields = Fields::new();
        let name = body
            .name
            .as_deref()
            .and_then(|n| fields.check("name", Name::parse(n)));
        let description = description(&mut fields, body.description.as_ref());
        fields.finish()?;
        let (tx, access) = authorize(&self.db, &auth.0, None, &ROLES_UPDATE).await?;
        let result = async {
            let before = rbac::role(&tx, id.0).await?;
            refuse_owner(&before)?;
            if let Some(permissions) = &body.permissions {
                let permissions = known_permissions(&tx, permissions).await?;
                let added: Vec<String> = permissions
                    .iter()
                    .filter(|p| !before.permissions.contains(p))
                    .cloned()
                    .collect();
                ensure_holds(&access, &added)?;
                rbac::set_role_permissions(&tx, id.0, &permissions).await?;
            }
            rbac::update_role(
                &tx,
                id.0,
                name.as_ref().map(Name::as_str),
                description.as_deref(),
            )
            .await?;
            let after = rbac::role(&tx, id.0).await?;
            audit::record(
                &tx,
                Event {
                    action: "role.updated",
                    target_type: "role",
                    target_id: Some(id.0),
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
        .await;
        Ok(RoleResponse::Ok(Json(tx.finish(result).await?.into())))
    }

    /// Delete a role nobody holds (409 while assigned). Owner: 409.
    #[oai(path = "/roles/:id", method = "delete", operation_id = "roles_delete")]
    async fn delete(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<Deleted, ApiError> {
        let (tx, _) = authorize(&self.db, &auth.0, None, &ROLES_DELETE).await?;
        let result = async {
            let role = rbac::role(&tx, id.0).await?;
            refuse_owner(&role)?;
            rbac::delete_role(&tx, id.0).await?;
            audit::record(
                &tx,
                Event {
                    action: "role.deleted",
                    target_type: "role",
                    target_id: Some(id.0),
                    store_id: None,
                    details: json!({"before": {"name": role.name, "permissions": role.permissions}}),
                },
            )
            .await
        }
        .await;
        tx.finish(result).await?;
        Ok(Deleted::NoContent)
    }

    /// Replace a role's permissions; those added must be held by the caller. Owner: 409.
    #[oai(
        path = "/roles/:id/permissions",
        method = "put",
        operation_id = "roles_set_permissions"
    )]
    async fn set_permissions(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: Json<SetPermissionsRequest>,
    ) -> Result<RoleResponse, ApiError> {
        let (tx, access) = authorize(&self.db, &auth.0, None, &ROLES_SET_PERMISSIONS).await?;
        let result = async {
            let before = rbac::role(&tx, id.0).await?;
            refuse_owner(&before)?;
            let permissions = known_permissions(&tx, &body.permissions).await?;
            let added: Vec<String> = permissions.iter().filter(|p| !before.permissions.contains(p)).cloned().collect();
            ensure_holds(&access, &added)?;
            rbac::set_role_permissions(&tx, id.0, &permissions).await?;
            audit::record(
                &tx,
                Event {
                    action: "role.permissions_set",
                    target_type: "role",
                    target_id: Some(id.0),
                    store_id: None,
                    details: json!({"before": {"permissions": before.permissions}, "after": {"permissions": permissions}}),
                },
            )
            .await?;
            rbac::role(&tx, id.0).await
        }
        .await;
        Ok(RoleResponse::Ok(Json(tx.finish(result).await?.into())))
    }
}
