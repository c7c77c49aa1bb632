//! The SQL of tenancy: the current tenant, its members and invitations. No
//! query here filters by tenant: row-level security does (policies/). Functions run in
//! the caller's request transaction and never commit.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::{
    error::Error,
    platform::db::{RequestTx, enum_column, page::Page},
};

pub use super::api::{InvitationStatus, MemberStatus, TenantStatus};

// --- tenant -----------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct TenantRow {
    pub id: Uuid,
    pub name: String,
    pub status: TenantStatus,
    pub created_at: DateTime<Utc>,
}

impl TenantRow {
    fn from_row(row: &Row) -> Result<TenantRow, Error> {
        Ok(TenantRow {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            status: enum_column(row, "status")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// Inserts the tenant whose id is the transaction's context (the tenants policy
/// admits no other).
pub async fn create_tenant(tx: &RequestTx, id: Uuid, name: &str) -> Result<TenantRow, Error> {
    let statement = tx
        .prepare(
            "INSERT INTO tenants (id, name) VALUES ($1, $2) RETURNING id, name, status, created_at",
        )
        .await?;
    TenantRow::from_row(&tx.query_one(&statement, &[&id, &name]).await?)
}

pub async fn tenant(tx: &RequestTx, id: Uuid) -> Result<TenantRow, Error> {
    let statement = tx
        .prepare("SELECT id, name, status, created_at FROM tenants WHERE id = $1")
        .await?;
    let row = tx
        .query_opt(&statement, &[&id])
        .await?
        .ok_or(Error::NotFound)?;
    TenantRow::from_row(&row)
}

pub async fn current_tenant(tx: &RequestTx) -> Result<TenantRow, Error> {
    let statement = tx
        .prepare(
            "SELECT id, name, status, created_at FROM tenants WHERE id = app.current_tenant_id()",
        )
        .await?;
    let row = tx
        .query_opt(&statement, &[])
        .await?
        .ok_or(Error::NotFound)?;
    TenantRow::from_row(&row)
}

pub async fn rename_tenant(tx: &RequestTx, id: Uuid, name: &str) -> Result<TenantRow, Error> {
    let statement = tx
        .prepare("UPDATE tenants SET name = $2, updated_at = now() WHERE id = $1 RETURNING id, name, status, created_at")
        .await?;
    let row = tx
        .query_opt(&statement, &[&id, &name])
        .await?
        .ok_or(Error::NotFound)?;
    TenantRow::from_row(&row)
}

// --- members ----------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct MemberRow {
    pub user_id: Uuid,
    pub email: String,
    pub full_name: String,
    pub status: MemberStatus,
    pub joined_at: DateTime<Utc>,
}

impl MemberRow {
    pub(crate) fn from_row(row: &Row) -> Result<MemberRow, Error> {
        Ok(MemberRow {
            user_id: row.try_get("user_id")?,
            email: row.try_get("email")?,
            full_name: row.try_get("full_name")?,
            status: enum_column(row, "status")?,
            joined_at: row.try_get("joined_at")?,
        })
    }
}

pub async fn list_members(tx: RequestTx, page: &Page) -> Result<Vec<MemberRow>, Error> {
    let statement = tx
        .prepare(
            "SELECT tu.user_id, u.email, u.full_name, tu.status, tu.created_at AS joined_at
             FROM tenant_users tu JOIN users u ON u.id = tu.user_id
             WHERE (tu.created_at, tu.user_id) > ($1, $2)
             ORDER BY tu.created_at, tu.user_id
             LIMIT $3",
        )
        .await?;
    let (after_time, after_id) = page.after();
    tx.query_and_commit(&statement, &[&after_time, &after_id, &page.fetch()])
        .await?
        .iter()
        .map(MemberRow::from_row)
        .collect()
}

const MEMBER_BY_ID: &str =
    "SELECT tu.user_id, u.email, u.full_name, tu.status, tu.created_at AS joined_at
     FROM tenant_users tu JOIN users u ON u.id = tu.user_id
     WHERE tu.user_id = $1";

pub async fn member(tx: &RequestTx, user_id: Uuid) -> Result<MemberRow, Error> {
    let statement = tx.prepare(MEMBER_BY_ID).await?;
    MemberRow::from_row(
        &tx.query_opt(&statement, &[&user_id])
            .await?
            .ok_or(Error::NotFound)?,
    )
}

/// `GET /users/{id}`: the read written with the COMMIT (two round trips in all).
pub async fn read_member(tx: RequestTx, user_id: Uuid) -> Result<MemberRow, Error> {
    let statement = tx.prepare(MEMBER_BY_ID).await?;
    MemberRow::from_row(
        &tx.query_opt_and_commit(&statement, &[&user_id])
            .await?
            .ok_or(Error::NotFound)?,
    )
}

pub async fn set_member_status(tx: &RequestTx, user_id: Uuid, status: &str) -> Result<(), Error> {
    let statement = tx
        // Reactivating a suspended member takes a seat again: within the plan's
        // members (sql/V14). Suspending is never refused (it frees a seat), so the
        // operation is not declared limited and works on an unpaid subscription.
        .prepare(
            "UPDATE tenant_users SET status = $2
             WHERE user_id = $1
               AND ($2 <> 'active' OR status = 'active' OR app.within_plan_limit('members'))",
        )
        .await?;
    match tx.execute(&statement, &[&user_id, &status]).await? {
        0 => Err(Error::NotFound),
        _ => Ok(()),
    }
}

/// Removes the membership; its role assignments and store links go with it (cascade).
pub async fn remove_member(tx: &RequestTx, user_id: Uuid) -> Result<(), Error> {
    let statement = tx
        .prepare("DELETE FROM tenant_users WHERE user_id = $1")
        .await?;
    match tx.execute(&statement, &[&user_id]).await? {
        0 => Err(Error::NotFound),
        _ => Ok(()),
    }
}

pub async fn is_member_email(tx: &RequestTx, email: &str) -> Result<bool, Error> {
    let statement = tx
        .prepare("SELECT EXISTS (SELECT 1 FROM tenant_users tu JOIN users u ON u.id = tu.user_id WHERE u.email = $1)")
        .await?;
    Ok(tx.query_one(&statement, &[&email]).await?.try_get(0)?)
}

/// The tenant's members (active members plus pending invitations) are within its
/// plan's limit, counted with the caller's writes and under the limit's lock
/// (`app.plan_limit_holds`): 403 `limit_exceeded` otherwise.
pub async fn members_within_plan(tx: &RequestTx) -> Result<(), Error> {
    let statement = tx.prepare("SELECT app.plan_limit_holds('members')").await?;
    tx.execute(&statement, &[]).await?;
    Ok(())
}

/// Makes `user_id` an active member of the context's tenant.
pub async fn add_member(tx: &RequestTx, user_id: Uuid) -> Result<(), Error> {
    let statement = tx
        .prepare(
            "INSERT INTO tenant_users (tenant_id, user_id, last_used_at)
             VALUES (app.current_tenant_id(), $1, now())",
        )
        .await?;
    tx.execute(&statement, &[&user_id]).await.map_err(|error| {
        error.on_constraint("tenant_users_pkey", || {
            Error::Conflict("already a member".into())
        })
    })?;
    Ok(())
}

// --- invitations ----------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct InvitationRow {
    pub id: Uuid,
    pub email: String,
    pub role_id: Uuid,
    pub store_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub status: InvitationStatus,
}

impl InvitationRow {
    fn from_row(row: &Row) -> Result<InvitationRow, Error> {
        Ok(InvitationRow {
            id: row.try_get("id")?,
            email: row.try_get("email")?,
            role_id: row.try_get("role_id")?,
            store_id: row.try_get("store_id")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
            status: enum_column(row, "status")?,
        })
    }
}

/// An invitation's state, as an SQL expression (a macro, so statements stay literals).
macro_rules! invitation_status {
    () => {
        "CASE WHEN accepted_at IS NOT NULL THEN 'accepted' WHEN revoked_at IS NOT NULL THEN 'revoked' \
         WHEN expires_at <= now() THEN 'expired' ELSE 'pending' END"
    };
}

pub async fn has_pending_invitation(tx: &RequestTx, email: &str) -> Result<bool, Error> {
    let statement = tx
        .prepare(
            "SELECT EXISTS (SELECT 1 FROM invitations WHERE email = $1
                AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now())",
        )
        .await?;
    Ok(tx.query_one(&statement, &[&email]).await?.try_get(0)?)
}

pub async fn create_invitation(
    tx: &RequestTx,
    email: &str,
    role_id: Uuid,
    store_id: Option<Uuid>,
    invited_by: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<InvitationRow, Error> {
    let statement = tx
        .prepare(
            // A pending invitation holds a seat: within the plan's members, checked
            // and serialised in this statement (sql/V14).
            "INSERT INTO invitations (tenant_id, email, role_id, store_id, invited_by, expires_at)
             SELECT app.current_tenant_id(), $1::text, $2::uuid, $3::uuid, $4::uuid, $5::timestamptz
             WHERE app.within_plan_limit('members')
             RETURNING id, email, role_id, store_id, created_at, expires_at, 'pending' AS status",
        )
        .await?;
    InvitationRow::from_row(
        &tx.query_one(
            &statement,
            &[&email, &role_id, &store_id, &invited_by, &expires_at],
        )
        .await?,
    )
}

pub async fn set_invitation_token(
    tx: &RequestTx,
    invitation_id: Uuid,
    token_hash: &[u8],
) -> Result<(), Error> {
    let statement = tx
        .prepare("SELECT app.set_invitation_token($1, $2)")
        .await?;
    tx.execute(&statement, &[&invitation_id, &token_hash])
        .await?;
    Ok(())
}

/// Enqueues the invitation's email, carrying `token`: whether the invitation (of the
/// context's tenant, pending, storing that token's hash) exists.
pub async fn send_invitation_email(
    tx: &RequestTx,
    invitation_id: Uuid,
    token: &str,
) -> Result<bool, Error> {
    let statement = tx
        .prepare("SELECT app.send_invitation_email($1, $2)")
        .await?;
    Ok(tx
        .query_one(&statement, &[&invitation_id, &token])
        .await?
        .try_get(0)?)
}

/// The invitations in `status`; without one, all but the revoked (a revoked
/// invitation is one its tenant deleted).
pub async fn list_invitations(
    tx: RequestTx,
    page: &Page,
    status: Option<&str>,
) -> Result<Vec<InvitationRow>, Error> {
    let statement = tx
        .prepare(concat!(
            "SELECT id, email, role_id, store_id, created_at, expires_at, status
             FROM (SELECT id, email, role_id, store_id, created_at, expires_at, revoked_at, ",
            invitation_status!(),
            " AS status FROM invitations WHERE (created_at, id) > ($1, $2)) AS i
             WHERE CASE WHEN $4::text IS NULL THEN revoked_at IS NULL ELSE status = $4 END
             ORDER BY created_at, id
             LIMIT $3"
        ))
        .await?;
    let (after_time, after_id) = page.after();
    tx.query_and_commit(
        &statement,
        &[&after_time, &after_id, &page.fetch(), &status],
    )
    .await?
    .iter()
    .map(InvitationRow::from_row)
    .collect()
}

pub async fn delete_finished_invitations_for_role(
    tx: &RequestTx,
    role_id: Uuid,
) -> Result<(), Error> {
    let statement = tx
        .prepare(concat!(
            "DELETE FROM invitations WHERE role_id = $1 AND ",
            invitation_status!(),
            " <> 'pending'"
        ))
        .await?;
    tx.execute(&statement, &[&role_id]).await?;
    Ok(())
}

/// Who issued an invitation (`None` once their account is gone).
pub async fn inviter_of(tx: &RequestTx, invitation_id: Uuid) -> Result<Option<Uuid>, Error> {
    let statement = tx
        .prepare("SELECT invited_by FROM invitations WHERE id = $1")
        .await?;
    Ok(tx
        .query_opt(&statement, &[&invitation_id])
        .await?
        .map(|row| row.try_get(0))
        .transpose()?
        .flatten())
}

/// Revokes the pending invitations `user_id` issued (they are removed or suspended).
pub async fn revoke_invitations_by(tx: &RequestTx, user_id: Uuid) -> Result<u64, Error> {
    let statement = tx
        .prepare(concat!(
            "UPDATE invitations SET revoked_at = now() WHERE invited_by = $1 AND ",
            invitation_status!(),
            " = 'pending'"
        ))
        .await?;
    tx.execute(&statement, &[&user_id]).await
}

/// Revokes a pending invitation; `NotFound` when there is none by that id.
pub async fn revoke_invitation(tx: &RequestTx, id: Uuid) -> Result<InvitationRow, Error> {
    let statement = tx
        .prepare(concat!(
            "UPDATE invitations SET revoked_at = coalesce(revoked_at, now())
             WHERE id = $1 AND accepted_at IS NULL
             RETURNING id, email, role_id, store_id, created_at, expires_at, ",
            invitation_status!(),
            " AS status"
        ))
        .await?;
    InvitationRow::from_row(
        &tx.query_opt(&statement, &[&id])
            .await?
            .ok_or(Error::NotFound)?,
    )
}

/// What a token says about its invitation, before any tenant context.
#[derive(Debug, Clone)]
pub struct InvitationForToken {
    pub tenant_id: Uuid,
    pub invitation_id: Uuid,
    pub email: String,
    pub role_id: Uuid,
    pub store_id: Option<Uuid>,
    pub status: String,
}

pub async fn invitation_for_token(
    tx: &RequestTx,
    token_hash: &[u8],
) -> Result<Option<InvitationForToken>, Error> {
    let statement = tx
        .prepare(
            "SELECT tenant_id, invitation_id, email, role_id, store_id, status
             FROM app.invitation_for_token($1)",
        )
        .await?;
    tx.query_opt(&statement, &[&token_hash])
        .await?
        .map(|row| {
            Ok(InvitationForToken {
                tenant_id: row.try_get("tenant_id")?,
                invitation_id: row.try_get("invitation_id")?,
                email: row.try_get("email")?,
                role_id: row.try_get("role_id")?,
                store_id: row.try_get("store_id")?,
                status: row.try_get("status")?,
            })
        })
        .transpose()
}

/// Whether the tenant of an invitation token is active (false for an unknown token).
pub async fn invitation_tenant_active(tx: &RequestTx, token_hash: &[u8]) -> Result<bool, Error> {
    let statement = tx
        .prepare("SELECT app.invitation_tenant_active($1)")
        .await?;
    Ok(tx.query_one(&statement, &[&token_hash]).await?.try_get(0)?)
}

/// The existing account behind an invited email, if any.
pub struct InvitedUser {
    pub user_id: Uuid,
    pub status: String,
    pub password_hash: Option<String>,
}

pub async fn invitation_account(
    tx: &RequestTx,
    token_hash: &[u8],
) -> Result<Option<InvitedUser>, Error> {
    let statement = tx
        .prepare("SELECT user_id, status, password_hash FROM app.invitation_account($1)")
        .await?;
    tx.query_opt(&statement, &[&token_hash])
        .await?
        .map(|row| {
            Ok(InvitedUser {
                user_id: row.try_get("user_id")?,
                status: row.try_get("status")?,
                password_hash: row.try_get("password_hash")?,
            })
        })
        .transpose()
}

/// Marks a pending invitation accepted; false when it no longer is pending (a
/// concurrent accept won, or it was revoked meanwhile).
pub async fn mark_invitation_accepted(tx: &RequestTx, id: Uuid) -> Result<bool, Error> {
    let statement = tx
        .prepare(
            "UPDATE invitations SET accepted_at = now()
             WHERE id = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()",
        )
        .await?;
    Ok(tx.execute(&statement, &[&id]).await? == 1)
}
