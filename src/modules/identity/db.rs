//! The SQL of identity: users, tenants at registration, sessions, passwords. Every
//! function runs inside the caller's request transaction (`RequestTx`), never commits,
//! and lists its columns. Anything touching credentials or tokens goes through the
//! SECURITY DEFINER functions of `sql/V3__identity.sql`.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::error::Error;
use crate::modules::tenancy::MemberStatus;
use crate::platform::db::{RequestTx, enum_column};

pub use super::api::me::UserStatus;

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub full_name: String,
    pub is_platform_admin: bool,
    pub status: UserStatus,
    pub created_at: DateTime<Utc>,
}

impl UserRow {
    fn from_row(row: &Row) -> Result<UserRow, Error> {
        Ok(UserRow {
            id: row.try_get("id")?,
            email: row.try_get("email")?,
            full_name: row.try_get("full_name")?,
            is_platform_admin: row.try_get("is_platform_admin")?,
            status: enum_column(row, "status")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Membership {
    pub tenant_id: Uuid,
    pub tenant_name: String,
    pub tenant_status: String,
    pub member_status: MemberStatus,
}

/// What login learns before verifying the password.
#[derive(Debug)]
pub struct LoginLookup {
    pub retry_after_secs: i32,
    pub user_id: Option<Uuid>,
    pub user_status: Option<String>,
    pub password_hash: Option<String>,
    /// The attempt recorded for the client address, taken back if the login succeeds.
    pub client_attempt_id: Option<i64>,
}

/// The outcome of presenting a refresh token.
#[derive(Debug)]
pub struct Rotation {
    /// ok | invalid | expired | reused | revoked | removed | suspended
    pub outcome: String,
    pub user_id: Option<Uuid>,
    pub tenant_id: Option<Uuid>,
    pub family_id: Option<Uuid>,
}

pub async fn create_user(
    tx: &RequestTx,
    id: Uuid,
    email: &str,
    full_name: &str,
    password_hash: &str,
) -> Result<(), Error> {
    let statement = tx.prepare("SELECT app.create_user($1, $2, $3, $4)").await?;
    tx.execute(&statement, &[&id, &email, &full_name, &password_hash])
        .await
        .map(|_| ())
        .map_err(|error| {
            error.on_constraint("users_email_key", || {
                Error::Conflict("the email is already registered".into())
            })
        })
}

/// `false` when bootstrap is closed (some user exists).
pub async fn bootstrap_user(
    tx: &RequestTx,
    id: Uuid,
    email: &str,
    full_name: &str,
    password_hash: &str,
) -> Result<bool, Error> {
    let statement = tx
        .prepare("SELECT app.bootstrap_user($1, $2, $3, $4)")
        .await?;
    Ok(tx
        .query_one(&statement, &[&id, &email, &full_name, &password_hash])
        .await?
        .try_get(0)?)
}

pub async fn login_lookup(
    tx: &RequestTx,
    email: &str,
    client: &str,
    window_secs: i32,
    max_per_email: i32,
    max_per_client: i32,
) -> Result<LoginLookup, Error> {
    let statement = tx
        .prepare(
            "SELECT retry_after_secs, user_id, user_status, password_hash, client_attempt_id
             FROM app.login_lookup($1, $2, $3, $4, $5)",
        )
        .await?;
    let row = tx
        .query_one(
            &statement,
            &[
                &email,
                &client,
                &window_secs,
                &max_per_email,
                &max_per_client,
            ],
        )
        .await?;
    Ok(LoginLookup {
        retry_after_secs: row.try_get("retry_after_secs")?,
        user_id: row.try_get("user_id")?,
        user_status: row.try_get("user_status")?,
        password_hash: row.try_get("password_hash")?,
        client_attempt_id: row.try_get("client_attempt_id")?,
    })
}

/// Takes back the login's recorded attempt (and the email's failures), picks the tenant and starts a session for the
/// context's (authenticated) user; returns the outcome and the tenant.
pub async fn complete_login(
    tx: &RequestTx,
    email: &str,
    client_attempt_id: Option<i64>,
    requested_tenant: Option<Uuid>,
    family_id: Uuid,
    token_hash: &[u8],
    expires_at: DateTime<Utc>,
) -> Result<(String, Option<Uuid>), Error> {
    let statement = tx
        .prepare("SELECT outcome, tenant_id FROM app.complete_login($1, $2, $3, $4, $5, $6)")
        .await?;
    let row = tx
        .query_one(
            &statement,
            &[
                &email,
                &client_attempt_id,
                &requested_tenant,
                &family_id,
                &token_hash,
                &expires_at,
            ],
        )
        .await?;
    Ok((row.try_get("outcome")?, row.try_get("tenant_id")?))
}

/// The context user's memberships, most recently used first.
pub async fn memberships(tx: &RequestTx) -> Result<Vec<Membership>, Error> {
    let statement = tx
        .prepare("SELECT tenant_id, tenant_name, tenant_status, member_status FROM app.current_user_memberships()")
        .await?;
    tx.query(&statement, &[])
        .await?
        .iter()
        .map(|row| {
            Ok(Membership {
                tenant_id: row.try_get("tenant_id")?,
                tenant_name: row.try_get("tenant_name")?,
                tenant_status: row.try_get("tenant_status")?,
                member_status: enum_column(row, "member_status")?,
            })
        })
        .collect()
}

/// Stores a refresh token for the context's user and tenant.
pub async fn issue_refresh_token(
    tx: &RequestTx,
    family_id: Uuid,
    token_hash: &[u8],
    expires_at: DateTime<Utc>,
) -> Result<(), Error> {
    let statement = tx
        .prepare("SELECT app.issue_refresh_token($1, $2, $3)")
        .await?;
    tx.execute(&statement, &[&family_id, &token_hash, &expires_at])
        .await?;
    Ok(())
}

pub async fn rotate_refresh_token(
    tx: &RequestTx,
    token_hash: &[u8],
    new_hash: &[u8],
    expires_at: DateTime<Utc>,
) -> Result<Rotation, Error> {
    let statement = tx
        .prepare("SELECT outcome, user_id, tenant_id, family_id FROM app.rotate_refresh_token($1, $2, $3)")
        .await?;
    let row = tx
        .query_one(&statement, &[&token_hash, &new_hash, &expires_at])
        .await?;
    Ok(Rotation {
        outcome: row.try_get("outcome")?,
        user_id: row.try_get("user_id")?,
        tenant_id: row.try_get("tenant_id")?,
        family_id: row.try_get("family_id")?,
    })
}

/// Moves the session `family_id` of the context user into the context tenant: its live
/// refresh token is used up and `token_hash` succeeds it. `false` when the session has
/// no live token (ended, or moved meanwhile by a concurrent switch).
pub async fn move_session_to_tenant(
    tx: &RequestTx,
    family_id: Uuid,
    token_hash: &[u8],
    expires_at: DateTime<Utc>,
) -> Result<bool, Error> {
    let statement = tx
        .prepare("SELECT app.move_session_to_tenant($1, $2, $3)")
        .await?;
    Ok(tx
        .query_one(&statement, &[&family_id, &token_hash, &expires_at])
        .await?
        .try_get(0)?)
}

/// Ends every session of `user_id` in the context tenant.
pub async fn revoke_member_sessions(tx: &RequestTx, user_id: Uuid) -> Result<(), Error> {
    let statement = tx.prepare("SELECT app.revoke_member_sessions($1)").await?;
    tx.execute(&statement, &[&user_id]).await?;
    Ok(())
}

pub async fn revoke_refresh_family(tx: &RequestTx, token_hash: &[u8]) -> Result<(), Error> {
    let statement = tx.prepare("SELECT app.revoke_refresh_family($1)").await?;
    tx.execute(&statement, &[&token_hash]).await?;
    Ok(())
}

/// The password hash of the user of the live session `family_id` (the context user's),
/// to verify a current password against; `None` when the session has ended.
pub async fn session_password_hash(
    tx: &RequestTx,
    family_id: Uuid,
) -> Result<Option<String>, Error> {
    let statement = tx.prepare("SELECT app.session_password_hash($1)").await?;
    Ok(tx.query_one(&statement, &[&family_id]).await?.try_get(0)?)
}

/// Sets the password of the live session's user, ending the user's other sessions;
/// `false` when the session has ended.
pub async fn set_session_password(
    tx: &RequestTx,
    family_id: Uuid,
    password_hash: &str,
) -> Result<bool, Error> {
    let statement = tx
        .prepare("SELECT app.set_session_password($1, $2)")
        .await?;
    Ok(tx
        .query_one(&statement, &[&family_id, &password_hash])
        .await?
        .try_get(0)?)
}

pub async fn request_password_reset(
    tx: &RequestTx,
    email: &str,
    token: &str,
    token_hash: &[u8],
    expires_at: DateTime<Utc>,
    max_per_hour: i32,
) -> Result<(), Error> {
    let statement = tx
        .prepare("SELECT app.request_password_reset($1, $2, $3, $4, $5)")
        .await?;
    tx.execute(
        &statement,
        &[&email, &token, &token_hash, &expires_at, &max_per_hour],
    )
    .await?;
    Ok(())
}

pub async fn password_reset_email(
    tx: &RequestTx,
    token_hash: &[u8],
) -> Result<Option<String>, Error> {
    let statement = tx.prepare("SELECT app.password_reset_email($1)").await?;
    Ok(tx.query_one(&statement, &[&token_hash]).await?.try_get(0)?)
}

/// ok | invalid | used | expired
pub async fn reset_password(
    tx: &RequestTx,
    token_hash: &[u8],
    password_hash: &str,
) -> Result<String, Error> {
    let statement = tx.prepare("SELECT app.reset_password($1, $2)").await?;
    Ok(tx
        .query_one(&statement, &[&token_hash, &password_hash])
        .await?
        .try_get(0)?)
}

pub async fn user(tx: &RequestTx, id: Uuid) -> Result<UserRow, Error> {
    let statement = tx
        .prepare("SELECT id, email, full_name, is_platform_admin, status, created_at FROM users WHERE id = $1")
        .await?;
    let row = tx
        .query_opt(&statement, &[&id])
        .await?
        .ok_or(Error::NotFound)?;
    UserRow::from_row(&row)
}

pub async fn update_full_name(tx: &RequestTx, id: Uuid, full_name: &str) -> Result<UserRow, Error> {
    let statement = tx
        .prepare(
            "UPDATE users SET full_name = $2, updated_at = now() WHERE id = $1
             RETURNING id, email, full_name, is_platform_admin, status, created_at",
        )
        .await?;
    let row = tx
        .query_opt(&statement, &[&id, &full_name])
        .await?
        .ok_or(Error::NotFound)?;
    UserRow::from_row(&row)
}
