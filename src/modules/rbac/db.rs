//! The SQL of role-based access control: the permission catalog, a tenant's roles and
//! their permissions, and role assignments (tenant-wide or per store). Row-level
//! security scopes every statement to the context's tenant.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::error::Error;
use crate::platform::db::{RequestTx, page::Page};

/// The system role that holds every permission and that a tenant always keeps.
pub const OWNER: &str = "Owner";

pub struct PermissionRow {
    pub code: String,
    pub description: String,
}

pub async fn permission_catalog(tx: &RequestTx) -> Result<Vec<PermissionRow>, Error> {
    let statement = tx
        .prepare("SELECT code, description FROM permissions ORDER BY code")
        .await?;
    tx.query(&statement, &[])
        .await?
        .iter()
        .map(|row| {
            Ok(PermissionRow {
                code: row.try_get("code")?,
                description: row.try_get("description")?,
            })
        })
        .collect()
}

/// The codes among `codes` that are not in the catalog.
pub async fn unknown_permissions(tx: &RequestTx, codes: &[String]) -> Result<Vec<String>, Error> {
    let statement = tx
        .prepare(
            "SELECT c FROM unnest($1::text[]) AS c
             WHERE NOT EXISTS (SELECT 1 FROM permissions p WHERE p.code = c) ORDER BY c",
        )
        .await?;
    tx.query(&statement, &[&codes])
        .await?
        .iter()
        .map(|row| Ok(row.try_get(0)?))
        .collect()
}

#[derive(Debug, Clone)]
pub struct RoleRow {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub is_system: bool,
    pub permissions: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl RoleRow {
    fn from_row(row: &Row) -> Result<RoleRow, Error> {
        Ok(RoleRow {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            is_system: row.try_get("is_system")?,
            permissions: row.try_get("permissions")?,
            created_at: row.try_get("created_at")?,
        })
    }

    pub fn is_owner(&self) -> bool {
        self.is_system && self.name == OWNER
    }
}

macro_rules! role_select {
    () => {
        "SELECT r.id, r.name, r.description, r.is_system, r.created_at,
                coalesce((SELECT array_agg(rp.permission_code ORDER BY rp.permission_code)
                          FROM role_permissions rp WHERE rp.tenant_id = r.tenant_id AND rp.role_id = r.id),
                         '{}') AS permissions
         FROM roles r "
    };
}

pub async fn list_roles(tx: RequestTx, page: &Page) -> Result<Vec<RoleRow>, Error> {
    let statement = tx
        .prepare(concat!(
            role_select!(),
            "WHERE (r.created_at, r.id) > ($1, $2)
             ORDER BY r.created_at, r.id LIMIT $3"
        ))
        .await?;
    let (after_time, after_id) = page.after();
    tx.query_and_commit(&statement, &[&after_time, &after_id, &page.fetch()])
        .await?
        .iter()
        .map(RoleRow::from_row)
        .collect()
}

const ROLE_BY_ID: &str = concat!(role_select!(), "WHERE r.id = $1");

pub async fn role(tx: &RequestTx, id: Uuid) -> Result<RoleRow, Error> {
    let statement = tx.prepare(ROLE_BY_ID).await?;
    RoleRow::from_row(
        &tx.query_opt(&statement, &[&id])
            .await?
            .ok_or(Error::NotFound)?,
    )
}

/// `GET /roles/{id}`: the read written with the COMMIT (two round trips in all).
pub async fn read_role(tx: RequestTx, id: Uuid) -> Result<RoleRow, Error> {
    let statement = tx.prepare(ROLE_BY_ID).await?;
    RoleRow::from_row(
        &tx.query_opt_and_commit(&statement, &[&id])
            .await?
            .ok_or(Error::NotFound)?,
    )
}

/// The roles assigned to someone in `store_id` (the assignments that go with the store).
pub async fn roles_assigned_in_store(
    tx: &RequestTx,
    store_id: Uuid,
) -> Result<Vec<RoleRow>, Error> {
    let statement = tx
        .prepare(concat!(
            role_select!(),
            "WHERE EXISTS (SELECT 1 FROM user_roles ur
                           WHERE ur.role_id = r.id AND ur.store_id = $1)
             ORDER BY r.created_at, r.id"
        ))
        .await?;
    tx.query(&statement, &[&store_id])
        .await?
        .iter()
        .map(RoleRow::from_row)
        .collect()
}

/// Locks a role's row until the transaction ends, so that a change decided on what
/// the role holds is not made against a concurrent change of it.
pub async fn lock_role(tx: &RequestTx, id: Uuid) -> Result<(), Error> {
    let statement = tx
        .prepare("SELECT id FROM roles WHERE id = $1 FOR UPDATE")
        .await?;
    tx.query(&statement, &[&id]).await?;
    Ok(())
}

fn name_taken() -> Error {
    Error::Conflict("the tenant already has a role of that name".into())
}

pub async fn create_role(
    tx: &RequestTx,
    name: &str,
    description: Option<&str>,
) -> Result<Uuid, Error> {
    let statement = tx
        .prepare("INSERT INTO roles (tenant_id, name, description) VALUES (app.current_tenant_id(), $1, $2) RETURNING id")
        .await?;
    let row = tx
        .query_one(&statement, &[&name, &description])
        .await
        .map_err(|error| error.on_constraint("roles_tenant_id_name_key", name_taken))?;
    Ok(row.try_get(0)?)
}

pub async fn update_role(
    tx: &RequestTx,
    id: Uuid,
    name: Option<&str>,
    description: Option<&str>,
) -> Result<(), Error> {
    let statement = tx
        .prepare(
            "UPDATE roles SET name = coalesce($2, name), description = coalesce($3, description), updated_at = now()
             WHERE id = $1",
        )
        .await?;
    let updated = tx
        .execute(&statement, &[&id, &name, &description])
        .await
        .map_err(|error| error.on_constraint("roles_tenant_id_name_key", name_taken))?;
    if updated == 0 {
        Err(Error::NotFound)
    } else {
        Ok(())
    }
}

/// Replaces a role's permissions.
pub async fn set_role_permissions(tx: &RequestTx, id: Uuid, codes: &[String]) -> Result<(), Error> {
    let delete = tx
        .prepare("DELETE FROM role_permissions WHERE role_id = $1")
        .await?;
    tx.execute(&delete, &[&id]).await?;
    let insert = tx
        .prepare(
            "INSERT INTO role_permissions (tenant_id, role_id, permission_code)
             SELECT app.current_tenant_id(), $1, c FROM unnest($2::text[]) AS c
             ON CONFLICT DO NOTHING",
        )
        .await?;
    tx.execute(&insert, &[&id, &codes]).await?;
    Ok(())
}

/// Deletes a role that nobody holds and no invitation names; `Conflict` otherwise.
pub async fn delete_role(tx: &RequestTx, id: Uuid) -> Result<(), Error> {
    let statement = tx.prepare("DELETE FROM roles WHERE id = $1").await?;
    let still_used =
        || Error::Conflict("the role is still assigned or has pending invitations".into());
    let deleted = tx.execute(&statement, &[&id]).await.map_err(|error| {
        error
            .on_constraint("user_roles_tenant_id_role_id_fkey", still_used)
            .on_constraint("invitations_tenant_id_role_id_fkey", still_used)
    })?;
    if deleted == 0 {
        Err(Error::NotFound)
    } else {
        Ok(())
    }
}

/// Every permission the member holds through any assignment, tenant-wide or in a
/// store: what someone must hold themselves to suspend or remove them.
pub async fn permissions_of(tx: &RequestTx, user_id: Uuid) -> Result<Vec<String>, Error> {
    let statement = tx
        .prepare(
            "SELECT DISTINCT rp.permission_code
             FROM user_roles ur
             JOIN role_permissions rp ON rp.tenant_id = ur.tenant_id AND rp.role_id = ur.role_id
             WHERE ur.user_id = $1 ORDER BY 1",
        )
        .await?;
    tx.query(&statement, &[&user_id])
        .await?
        .iter()
        .map(|row| Ok(row.try_get(0)?))
        .collect()
}

/// Whether an active member holds, through tenant-wide roles, every one of `codes`:
/// what an invitation's issuer had to hold when issuing it, checked again when it is
/// accepted.
pub async fn still_holds_tenant_wide(
    tx: &RequestTx,
    user_id: Uuid,
    codes: &[String],
) -> Result<bool, Error> {
    let statement = tx
        .prepare(
            "SELECT EXISTS (SELECT 1 FROM tenant_users tu JOIN users u ON u.id = tu.user_id
                            WHERE tu.user_id = $1 AND tu.status = 'active' AND u.status = 'active')
                AND NOT EXISTS (
                    SELECT 1 FROM unnest($2::text[]) AS c
                    WHERE NOT EXISTS (
                        SELECT 1 FROM user_roles ur
                        JOIN role_permissions rp ON rp.tenant_id = ur.tenant_id AND rp.role_id = ur.role_id
                        WHERE ur.user_id = $1 AND ur.store_id IS NULL AND rp.permission_code = c))",
        )
        .await?;
    Ok(tx
        .query_one(&statement, &[&user_id, &codes])
        .await?
        .try_get(0)?)
}

#[derive(Debug, Clone)]
pub struct AssignmentRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub role_id: Uuid,
    pub role_name: String,
    pub store_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl AssignmentRow {
    fn from_row(row: &Row) -> Result<AssignmentRow, Error> {
        Ok(AssignmentRow {
            id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            role_id: row.try_get("role_id")?,
            role_name: row.try_get("role_name")?,
            store_id: row.try_get("store_id")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

pub async fn assignments_of(tx: &RequestTx, user_id: Uuid) -> Result<Vec<AssignmentRow>, Error> {
    let statement = tx
        .prepare(
            "SELECT ur.id, ur.user_id, ur.role_id, r.name AS role_name, ur.store_id, ur.created_at
             FROM user_roles ur JOIN roles r ON r.tenant_id = ur.tenant_id AND r.id = ur.role_id
             WHERE ur.user_id = $1 ORDER BY ur.created_at, ur.id",
        )
        .await?;
    tx.query(&statement, &[&user_id])
        .await?
        .iter()
        .map(AssignmentRow::from_row)
        .collect()
}

pub async fn assignment(tx: &RequestTx, user_id: Uuid, id: Uuid) -> Result<AssignmentRow, Error> {
    let statement = tx
        .prepare(
            "SELECT ur.id, ur.user_id, ur.role_id, r.name AS role_name, ur.store_id, ur.created_at
             FROM user_roles ur JOIN roles r ON r.tenant_id = ur.tenant_id AND r.id = ur.role_id
             WHERE ur.user_id = $1 AND ur.id = $2",
        )
        .await?;
    AssignmentRow::from_row(
        &tx.query_opt(&statement, &[&user_id, &id])
            .await?
            .ok_or(Error::NotFound)?,
    )
}

pub async fn assign(
    tx: &RequestTx,
    user_id: Uuid,
    role_id: Uuid,
    store_id: Option<Uuid>,
) -> Result<Uuid, Error> {
    let statement = tx
        .prepare(
            "INSERT INTO user_roles (tenant_id, user_id, role_id, store_id)
             VALUES (app.current_tenant_id(), $1, $2, $3) RETURNING id",
        )
        .await?;
    let row = tx
        .query_one(&statement, &[&user_id, &role_id, &store_id])
        .await
        .map_err(|error| {
            error.on_constraint("user_roles_tenant_id_user_id_role_id_store_id_key", || {
                Error::Conflict("the member already holds that role there".into())
            })
        })?;
    Ok(row.try_get(0)?)
}

/// Creates Owner, Admin, Store Manager and Staff in the context's tenant; returns the
/// Owner role's id.
pub async fn create_system_roles(tx: &RequestTx) -> Result<Uuid, Error> {
    let statement = tx.prepare("SELECT app.create_system_roles()").await?;
    Ok(tx.query_one(&statement, &[]).await?.try_get(0)?)
}

pub async fn unassign(tx: &RequestTx, id: Uuid) -> Result<(), Error> {
    let statement = tx.prepare("DELETE FROM user_roles WHERE id = $1").await?;
    tx.execute(&statement, &[&id]).await?;
    Ok(())
}

/// Serializes every change that could take away the tenant's last Owner: each such
/// change locks the Owner role's row first, so two concurrent demotions of the last
/// two Owners run one after the other, and the second sees the first's result.
pub async fn lock_owners(tx: &RequestTx) -> Result<(), Error> {
    let statement = tx
        .prepare("SELECT id FROM roles WHERE is_system AND name = 'Owner' FOR UPDATE")
        .await?;
    tx.query(&statement, &[]).await?;
    Ok(())
}

/// The active members holding the Owner role tenant-wide.
pub async fn active_owners(tx: &RequestTx) -> Result<Vec<Uuid>, Error> {
    let statement = tx
        .prepare(
            "SELECT DISTINCT ur.user_id
             FROM user_roles ur
             JOIN roles r ON r.tenant_id = ur.tenant_id AND r.id = ur.role_id
             JOIN tenant_users tu ON tu.tenant_id = ur.tenant_id AND tu.user_id = ur.user_id
             JOIN users u ON u.id = ur.user_id
             WHERE r.is_system AND r.name = 'Owner' AND ur.store_id IS NULL
               AND tu.status = 'active' AND u.status = 'active'
             ORDER BY ur.user_id",
        )
        .await?;
    tx.query(&statement, &[])
        .await?
        .iter()
        .map(|row| Ok(row.try_get(0)?))
        .collect()
}

/// Active members holding the Owner role tenant-wide.
pub async fn active_owner_count(tx: &RequestTx) -> Result<i64, Error> {
    let statement = tx
        .prepare(
            "SELECT count(DISTINCT ur.user_id)
             FROM user_roles ur
             JOIN roles r ON r.tenant_id = ur.tenant_id AND r.id = ur.role_id
             JOIN tenant_users tu ON tu.tenant_id = ur.tenant_id AND tu.user_id = ur.user_id
             JOIN users u ON u.id = ur.user_id
             WHERE r.is_system AND r.name = 'Owner' AND ur.store_id IS NULL
               AND tu.status = 'active' AND u.status = 'active'",
        )
        .await?;
    Ok(tx.query_one(&statement, &[]).await?.try_get(0)?)
}

/// The context tenant's role named `name` (names are unique per tenant).
pub async fn role_named(tx: &RequestTx, name: &str) -> Result<RoleRow, Error> {
    let statement = tx
        .prepare(concat!(role_select!(), "WHERE r.name = $1"))
        .await?;
    RoleRow::from_row(
        &tx.query_opt(&statement, &[&name])
            .await?
            .ok_or(Error::NotFound)?,
    )
}

/// The system roles the context's tenant lacks, made as `app.create_system_roles()`
/// (sql/V6) makes them for a new tenant; their names. A role of the tenant's own that
/// took a system role's name keeps it, and that system role stays missing.
pub async fn create_missing_system_roles(tx: &RequestTx) -> Result<Vec<String>, Error> {
    // The names and descriptions of sql/V6's app.create_system_roles().
    let statement = tx
        .prepare(
            "INSERT INTO roles (tenant_id, name, description, is_system)
             SELECT app.current_tenant_id(), v.name, v.description, true
             FROM (VALUES
                 (1, 'Owner', 'Every permission; cannot be changed; a tenant always keeps one'),
                 (2, 'Admin', 'Runs the tenant: everything but editing the tenant itself'),
                 (3, 'Store Manager', 'Runs stores: their staff, products and inventory'),
                 (4, 'Staff', 'Works in a store: sees products, keeps inventory')
             ) AS v (rank, name, description)
             WHERE NOT EXISTS (SELECT 1 FROM roles AS r WHERE r.name = v.name)
             ORDER BY v.rank
             RETURNING name",
        )
        .await?;
    tx.query(&statement, &[])
        .await?
        .iter()
        .map(|row| Ok(row.try_get("name")?))
        .collect()
}

/// Grants the context tenant's system roles the default permissions they lack (the
/// rules of sql/V6: Owner every permission, Admin every one not withheld, Store
/// Manager and Staff those of `app.system_role_grants`); how many grants were added.
pub async fn grant_missing_system_permissions(tx: &RequestTx) -> Result<u64, Error> {
    let statement = tx
        .prepare(
            "INSERT INTO role_permissions (tenant_id, role_id, permission_code)
             SELECT r.tenant_id, r.id, p.code
             FROM roles AS r JOIN permissions AS p ON r.name = 'Owner'
             WHERE r.is_system
             UNION ALL
             SELECT r.tenant_id, r.id, p.code
             FROM roles AS r JOIN permissions AS p ON r.name = 'Admin'
             WHERE r.is_system
               AND NOT EXISTS (SELECT 1 FROM app.admin_withheld_permissions AS w
                               WHERE w.permission_code = p.code)
             UNION ALL
             SELECT r.tenant_id, r.id, g.permission_code
             FROM roles AS r JOIN app.system_role_grants AS g ON g.role_name = r.name
             WHERE r.is_system
             ON CONFLICT DO NOTHING",
        )
        .await?;
    tx.execute(&statement, &[]).await
}
