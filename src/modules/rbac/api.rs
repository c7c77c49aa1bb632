//! `/api/v1/permissions`, `/api/v1/roles` and `/api/v1/users/{id}/roles`: the
//! permission catalog, a tenant's roles, and members' role assignments. The guards
//! (nobody grants what they do not hold: 403; Owner is not changed and a tenant keeps
//! an active Owner: 409) are the rules of `super::service`.

use chrono::{DateTime, Utc};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, param::Query};
use uuid::Uuid;

use super::{
    db::{self as rbac, AssignmentRow, RoleRow},
    service::{self, RoleChange},
};
use crate::{
    modules::Tag,
    platform::{
        auth::access::{Operation, authorize},
        auth::catalog::PermissionCode,
        db::Database,
        domain::{Fields, Name},
        http::{
            common::{Deleted, Limit, page},
            json::{JsonBody, rfc3339},
            problem::ApiError,
            security::BearerAuth,
            text::{Bounded, NameText, Text},
        },
    },
};

pub struct RbacApi {
    pub db: Database,
}

// What each operation requires (see `auth::access`): one line per route below.
const PERMISSIONS_LIST: Operation = Operation::member("permissions_list");
const ROLES_LIST: Operation = Operation::permission("roles_list", "roles.view");
const ROLES_CREATE: Operation = Operation::permission("roles_create", "roles.create")
    .reading_held_permissions()
    .returning(&[409]);
const ROLES_GET: Operation = Operation::permission("roles_get", "roles.view");
const ROLES_UPDATE: Operation = Operation::permission("roles_update", "roles.edit")
    .reading_held_permissions()
    .returning(&[409]);
const ROLES_DELETE: Operation =
    Operation::permission("roles_delete", "roles.delete").returning(&[409]);
const ROLES_SET_PERMISSIONS: Operation =
    Operation::permission("roles_set_permissions", "roles.edit")
        .reading_held_permissions()
        .returning(&[409]);
const USER_ROLES_LIST: Operation = Operation::permission("user_roles_list", "roles.assign");
const USER_ROLES_CREATE: Operation = Operation::permission("user_roles_create", "roles.assign")
    .reading_held_permissions()
    .returning(&[409]);
const USER_ROLES_DELETE: Operation = Operation::permission("user_roles_delete", "roles.assign")
    .reading_held_permissions()
    .returning(&[409]);

pub const OPERATIONS: &[Operation] = &[
    PERMISSIONS_LIST,
    ROLES_LIST,
    ROLES_CREATE,
    ROLES_GET,
    ROLES_UPDATE,
    ROLES_DELETE,
    ROLES_SET_PERMISSIONS,
    USER_ROLES_LIST,
    USER_ROLES_CREATE,
    USER_ROLES_DELETE,
];

#[derive(Object, serde::Serialize)]
pub struct Permission {
    pub code: PermissionCode,
    pub description: String,
}

#[derive(Object, serde::Serialize)]
pub struct Role {
    pub id: Uuid,
    pub name: String,
    #[oai(nullable)]
    pub description: Option<String>,
    /// Owner, Admin, Store Manager and Staff are created with every tenant.
    pub is_system: bool,
    pub permissions: Vec<PermissionCode>,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
}

impl From<RoleRow> for Role {
    fn from(row: RoleRow) -> Self {
        Role {
            id: row.id,
            name: row.name,
            description: row.description,
            is_system: row.is_system,
            permissions: row.permissions.into_iter().map(Into::into).collect(),
            created_at: row.created_at,
        }
    }
}

#[derive(Object, serde::Serialize)]
pub struct RoleList {
    pub items: Vec<Role>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

/// What a role is for, at most 500 characters.
pub type Description = Text<Bounded<0, 500>>;

#[derive(Object)]
pub struct CreateRoleRequest {
    pub name: NameText,
    #[oai(nullable)]
    pub description: Option<Description>,
    /// Permission codes; each must be one the caller holds.
    pub permissions: Vec<PermissionCode>,
}

#[derive(Object)]
pub struct UpdateRoleRequest {
    #[oai(nullable)]
    pub name: Option<NameText>,
    #[oai(nullable)]
    pub description: Option<Description>,
    /// Replaces the role's permissions when given.
    #[oai(nullable)]
    pub permissions: Option<Vec<PermissionCode>>,
}

#[derive(Object)]
pub struct SetPermissionsRequest {
    pub permissions: Vec<PermissionCode>,
}

#[derive(Object)]
pub struct AssignRoleRequest {
    pub role_id: Uuid,
    /// Assign in this store only; omit for tenant-wide.
    #[oai(nullable)]
    pub store_id: Option<Uuid>,
}

#[derive(Object, serde::Serialize)]
pub struct Assignment {
    pub id: Uuid,
    pub role_id: Uuid,
    pub role_name: String,
    #[oai(nullable)]
    pub store_id: Option<Uuid>,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
}

impl From<AssignmentRow> for Assignment {
    fn from(row: AssignmentRow) -> Self {
        Assignment {
            id: row.id,
            role_id: row.role_id,
            role_name: row.role_name,
            store_id: row.store_id,
            created_at: row.created_at,
        }
    }
}

#[derive(Object, serde::Serialize)]
pub struct AssignmentList {
    pub items: Vec<Assignment>,
}

#[derive(ApiResponse)]
pub enum AssignmentListResponse {
    #[oai(status = 200)]
    Ok(JsonBody<AssignmentList>),
}

#[derive(ApiResponse)]
pub enum AssignmentCreated {
    #[oai(status = 201)]
    Created(JsonBody<Assignment>),
}

#[derive(ApiResponse)]
pub enum PermissionsResponse {
    /// The permission catalog.
    #[oai(status = 200)]
    Ok(JsonBody<Vec<Permission>>),
}

#[derive(ApiResponse)]
pub enum RoleListResponse {
    #[oai(status = 200)]
    Ok(JsonBody<RoleList>),
}

#[derive(ApiResponse)]
pub enum RoleResponse {
    #[oai(status = 200)]
    Ok(JsonBody<Role>),
}

#[derive(ApiResponse)]
pub enum RoleCreated {
    #[oai(status = 201)]
    Created(JsonBody<Role>),
}

fn parse_description(description: &str) -> Result<String, String> {
    let description = description.trim();
    if description.chars().count() > 500 {
        return Err("must be at most 500 characters".into());
    }
    Ok(description.to_string())
}

/// The codes as the rules take them (checked against the database's catalog there).
fn codes(permissions: &[PermissionCode]) -> Vec<String> {
    permissions.iter().map(|code| code.to_string()).collect()
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
        let (tx, _) = authorize(&self.db, &auth.0, &PERMISSIONS_LIST).await?;
        let rows = rbac::permission_catalog(&tx).await;
        let rows = tx.finish(rows).await?;
        Ok(PermissionsResponse::Ok(JsonBody(
            rows.into_iter()
                .map(|p| Permission {
                    code: p.code.into(),
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
        limit: Query<Option<Limit>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<RoleListResponse, ApiError> {
        let page = page(limit.0, cursor.0)?;
        let (tx, _) = authorize(&self.db, &auth.0, &ROLES_LIST).await?;
        let rows = rbac::list_roles(tx, &page).await?;
        let (rows, next_cursor) = page.finish(rows, |r| (r.created_at, r.id));
        Ok(RoleListResponse::Ok(JsonBody(RoleList {
            items: rows.into_iter().map(Into::into).collect(),
            next_cursor,
        })))
    }

    /// Create a role with permissions the caller holds.
    #[oai(path = "/roles", method = "post", operation_id = "roles_create")]
    async fn create(
        &self,
        auth: BearerAuth,
        body: JsonBody<CreateRoleRequest>,
    ) -> Result<RoleCreated, ApiError> {
        let mut fields = Fields::new();
        let name = fields.check("name", Name::parse(&body.name));
        let description = fields.check_optional(
            "description",
            body.description.as_deref(),
            parse_description,
        );
        let (name, description) = fields.finish((name, description))?;
        let (tx, access) = authorize(&self.db, &auth.0, &ROLES_CREATE).await?;
        let role = service::create_role(
            &tx,
            &access,
            &name,
            description.as_deref(),
            &codes(&body.permissions),
        )
        .await;
        Ok(RoleCreated::Created(JsonBody(
            tx.finish(role).await?.into(),
        )))
    }

    /// One role.
    #[oai(path = "/roles/:id", method = "get", operation_id = "roles_get")]
    async fn get(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<RoleResponse, ApiError> {
        let (tx, _) = authorize(&self.db, &auth.0, &ROLES_GET).await?;
        Ok(RoleResponse::Ok(JsonBody(
            rbac::read_role(tx, id.0).await?.into(),
        )))
    }

    /// Change a role; permissions added must be held by the caller. Owner: 409.
    #[oai(path = "/roles/:id", method = "patch", operation_id = "roles_update")]
    async fn update(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: JsonBody<UpdateRoleRequest>,
    ) -> Result<RoleResponse, ApiError> {
        let mut fields = Fields::new();
        let name = fields.check_optional("name", body.name.as_deref(), Name::parse);
        let description = fields.check_optional(
            "description",
            body.description.as_deref(),
            parse_description,
        );
        let (name, description) = fields.finish((name, description))?;
        let (tx, access) = authorize(&self.db, &auth.0, &ROLES_UPDATE).await?;
        let permissions = body.permissions.as_deref().map(codes);
        let change = RoleChange {
            name,
            description,
            permissions: permissions.as_deref(),
        };
        let role = service::update_role(&tx, &access, id.0, change).await;
        Ok(RoleResponse::Ok(JsonBody(tx.finish(role).await?.into())))
    }

    /// Delete a role nobody holds (409 while assigned). Owner: 409.
    #[oai(path = "/roles/:id", method = "delete", operation_id = "roles_delete")]
    async fn delete(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<Deleted, ApiError> {
        let (tx, _) = authorize(&self.db, &auth.0, &ROLES_DELETE).await?;
        let deleted = service::delete_role(&tx, id.0).await;
        tx.finish(deleted).await?;
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
        body: JsonBody<SetPermissionsRequest>,
    ) -> Result<RoleResponse, ApiError> {
        let (tx, access) = authorize(&self.db, &auth.0, &ROLES_SET_PERMISSIONS).await?;
        let role =
            service::set_role_permissions(&tx, &access, id.0, &codes(&body.permissions)).await;
        Ok(RoleResponse::Ok(JsonBody(tx.finish(role).await?.into())))
    }

    /// A member's role assignments.
    #[oai(
        path = "/users/:id/roles",
        method = "get",
        operation_id = "user_roles_list"
    )]
    async fn list_user_roles(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<AssignmentListResponse, ApiError> {
        let (tx, _) = authorize(&self.db, &auth.0, &USER_ROLES_LIST).await?;
        let rows = service::assignments_of(&tx, id.0).await;
        let rows = tx.finish(rows).await?;
        Ok(AssignmentListResponse::Ok(JsonBody(AssignmentList {
            items: rows.into_iter().map(Into::into).collect(),
        })))
    }

    /// Assign a role to a member, tenant-wide or in one store. The caller must hold
    /// every permission of the role (403 otherwise).
    #[oai(
        path = "/users/:id/roles",
        method = "post",
        operation_id = "user_roles_create"
    )]
    async fn create_user_role(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: JsonBody<AssignRoleRequest>,
    ) -> Result<AssignmentCreated, ApiError> {
        let (tx, access) = authorize(&self.db, &auth.0, &USER_ROLES_CREATE).await?;
        let assignment = service::assign(&tx, &access, id.0, body.role_id, body.store_id).await;
        Ok(AssignmentCreated::Created(JsonBody(
            tx.finish(assignment).await?.into(),
        )))
    }

    /// Remove a role assignment. The caller must hold every permission of the role;
    /// the last active Owner keeps theirs (409).
    #[oai(
        path = "/users/:id/roles/:assignment_id",
        method = "delete",
        operation_id = "user_roles_delete"
    )]
    async fn delete_user_role(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        assignment_id: Path<Uuid>,
    ) -> Result<Deleted, ApiError> {
        let (tx, access) = authorize(&self.db, &auth.0, &USER_ROLES_DELETE).await?;
        let removed = service::unassign(&tx, &access, id.0, assignment_id.0).await;
        tx.finish(removed).await?;
        Ok(Deleted::NoContent)
    }
}
