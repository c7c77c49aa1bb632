//! The SQL of identity: users, tenants at registration, sessions, passwords. Every
//! function runs inside the caller's request transaction (`RequestTx`), never commits,
//! and lists its columns. Anything touching credentials or tokens goes through the
//! SECURITY DEFINER functions of `sql/V3__identity.sql` (the throttles:
//! `sql/V9__identity_throttles.sql`).

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use super::service::LoginLimits;
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
    /// The user proved they receive mail at `email` (`POST /auth/verify-email`).
    pub email_verified: bool,
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
            email_verified: row.try_get("email_verified")?,
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
    /// The attempt's rows, recorded as a failure, taken back if the login succeeds.
    pub attempt_ids: Vec<i64>,
}

/// The login throttle's answer to a password check.
#[derive(Debug)]
pub struct Throttle {
    /// > 0: refused, nothing recorded.
    pub retry_after_secs: i32,
    /// The attempt's rows, recorded as a failure.
    pub attempt_ids: Vec<i64>,
}

/// What registration learns before hashing.
#[derive(Debug)]
pub struct RegistrationAttempt {
    /// > 0: too many attempts from the client.
    pub retry_after_secs: i32,
    pub email_taken: bool,
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
    match try_create_user(tx, id, email, full_name, password_hash).await? {
        true => Ok(()),
        false => Err(Error::Conflict("the email is already registered".into())),
    }
}

/// `false` when the email is registered already (the unique index decides); the
/// transaction is then aborted and must be rolled back.
pub async fn try_create_user(
    tx: &RequestTx,
    id: Uuid,
    email: &str,
    full_name: &str,
    password_hash: &str,
) -> Result<bool, Error> {
    let statement = tx.prepare("SELECT app.create_user($1, $2, $3, $4)").await?;
    match tx
        .execute(&statement, &[&id, &email, &full_name, &password_hash])
        .await
    {
        Ok(_) => Ok(true),
        Err(Error::Constraint { name, .. }) if name == "users_email_key" => Ok(false),
        Err(error) => Err(error),
    }
}

/// Whether bootstrap is still open (no user exists), asked before hashing.
pub async fn bootstrap_open(tx: &RequestTx) -> Result<bool, Error> {
    let statement = tx.prepare("SELECT app.bootstrap_open()").await?;
    Ok(tx.query_one(&statement, &[]).await?.try_get(0)?)
}

/// Counts a registration attempt of `client` (refused past `max_per_hour`; 0: no
/// limit) and says whether `email` is taken.
pub async fn registration_attempt(
    tx: &RequestTx,
    client: &str,
    email: &str,
    max_per_hour: i32,
) -> Result<RegistrationAttempt, Error> {
    let statement = tx
        .prepare("SELECT retry_after_secs, email_taken FROM app.registration_attempt($1, $2, $3)")
        .await?;
    let row = tx
        .query_one(&statement, &[&client, &email, &max_per_hour])
        .await?;
    Ok(RegistrationAttempt {
        retry_after_secs: row.try_get("retry_after_secs")?,
        email_taken: row
            .try_get::<_, Option<bool>>("email_taken")?
            .unwrap_or(false),
    })
}

/// An email, through the job queue (`email.send`).
pub async fn enqueue_notification(
    tx: &RequestTx,
    recipient: &str,
    template: &str,
    payload: &serde_json::Value,
) -> Result<(), Error> {
    let statement = tx
        .prepare("SELECT app.enqueue_notification($1, $2, $3)")
        .await?;
    tx.execute(&statement, &[&recipient, &template, payload])
        .await?;
    Ok(())
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
    limits: &LoginLimits,
) -> Result<LoginLookup, Error> {
    let statement = tx
        .prepare(
            "SELECT retry_after_secs, user_id, user_status, password_hash, attempt_ids
             FROM app.login_lookup($1, $2, $3, $4, $5, $6, $7)",
        )
        .await?;
    let row = tx
        .query_one(
            &statement,
            &[
                &email,
                &client,
                &limits.window_secs,
                &limits.max_per_email_client,
                &limits.max_per_client,
                &limits.delay_after,
                &limits.max_delay_secs,
            ],
        )
        .await?;
    Ok(LoginLookup {
        retry_after_secs: row.try_get("retry_after_secs")?,
        user_id: row.try_get("user_id")?,
        user_status: row.try_get("user_status")?,
        password_hash: row.try_get("password_hash")?,
        attempt_ids: row
            .try_get::<_, Option<Vec<i64>>>("attempt_ids")?
            .unwrap_or_default(),
    })
}

/// The login throttle for a password check of `email` from `client`: refused, or
/// recorded as a failure (see `app.login_throttle`).
pub async fn login_throttle(
    tx: &RequestTx,
    email: &str,
    client: &str,
    limits: &LoginLimits,
) -> Result<Throttle, Error> {
    let statement = tx
        .prepare(
            "SELECT retry_after_secs, attempt_ids
             FROM app.login_throttle($1, $2, $3, $4, $5, $6, $7)",
        )
        .await?;
    let row = tx
        .query_one(
            &statement,
            &[
                &email,
                &client,
                &limits.window_secs,
                &limits.max_per_email_client,
                &limits.max_per_client,
                &limits.delay_after,
                &limits.max_delay_secs,
            ],
        )
        .await?;
    Ok(Throttle {
        retry_after_secs: row.try_get("retry_after_secs")?,
        attempt_ids: row
            .try_get::<_, Option<Vec<i64>>>("attempt_ids")?
            .unwrap_or_default(),
    })
}

/// A password check passed: its attempt is taken back, with the earlier failures of
/// the email from that client.
pub async fn clear_login_failures(
    tx: &RequestTx,
    email: &str,
    client: &str,
    attempt_ids: &[i64],
) -> Result<(), Error> {
    let statement = tx
        .prepare("SELECT app.clear_login_failures($1, $2, $3)")
        .await?;
    tx.execute(&statement, &[&email, &client, &attempt_ids])
        .await?;
    Ok(())
}

/// Takes back the login's recorded attempt (and the email's failures from the client),
/// picks the tenant and starts a session for the context's (authenticated) user;
/// returns the outcome and the tenant.
#[allow(
    clippy::too_many_arguments,
    reason = "the parameters of app.complete_login, one each"
)]
pub async fn complete_login(
    tx: &RequestTx,
    email: &str,
    client: &str,
    attempt_ids: &[i64],
    requested_tenant: Option<Uuid>,
    family_id: Uuid,
    token_hash: &[u8],
    expires_at: DateTime<Utc>,
) -> Result<(String, Option<Uuid>), Error> {
    let statement = tx
        .prepare("SELECT outcome, tenant_id FROM app.complete_login($1, $2, $3, $4, $5, $6, $7)")
        .await?;
    let row = tx
        .query_one(
            &statement,
            &[
                &email,
                &client,
                &attempt_ids,
                &requested_tenant,
                &family_id,
                &token_hash,
                &expires_at,
            ],
        )
        .await?;
    Ok((row.try_get("outcome")?, row.try_get("tenant_id")?))
}

/// Forgets at most `batch` throttle attempts older than `older_than_secs`; returns how
/// many.
pub async fn prune_attempts(
    tx: &RequestTx,
    older_than_secs: i32,
    batch: i32,
) -> Result<i32, Error> {
    let statement = tx.prepare("SELECT app.prune_attempts($1, $2)").await?;
    Ok(tx
        .query_one(&statement, &[&older_than_secs, &batch])
        .await?
        .try_get(0)?)
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
        .prepare(
            "SELECT id, email, full_name, is_platform_admin, status,
                    email_verified_at IS NOT NULL AS email_verified, created_at
             FROM users WHERE id = $1",
        )
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
             RETURNING id, email, full_name, is_platform_admin, status,
                       email_verified_at IS NOT NULL AS email_verified, created_at",
        )
        .await?;
    let row = tx
        .query_opt(&statement, &[&id, &full_name])
        .await?
        .ok_or(Error::NotFound)?;
    UserRow::from_row(&row)
}

/// A verification email for the user of the transaction's context, unless verified
/// already or sent five times this hour; whether one was enqueued.
pub async fn request_email_verification(tx: &RequestTx) -> Result<bool, Error> {
    let statement = tx
        .prepare("SELECT app.request_email_verification()")
        .await?;
    Ok(tx.query_one(&statement, &[]).await?.try_get(0)?)
}

/// The user whose address the token verified; `None` for a bad, used or expired token.
pub async fn verify_email(tx: &RequestTx, token_hash: &[u8]) -> Result<Option<Uuid>, Error> {
    let statement = tx.prepare("SELECT app.verify_email($1)").await?;
    Ok(tx.query_one(&statement, &[&token_hash]).await?.try_get(0)?)
}
