//! `/api/v1/invitations` and `POST /api/v1/auth/accept-invitation`.

use chrono::{DateTime, Utc};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, param::Query, payload::Json};
use serde_json::json;
use uuid::Uuid;

use crate::{
    error::Error,
    modules::{
        Tag,
        audit::db::{self as audit, Event},
        identity::{api::auth::TokenPair, db as identity_sql, service::Identity},
        rbac::db as rbac,
        tenancy::db::{self as tenancy, InvitationRow},
    },
    platform::{
        auth::{
            OpaqueToken,
            access::{Operation, authorize},
        },
        domain::Email,
        http::{
            common::{Deleted, ensure_holds, invalid, page},
            problem::ApiError,
            security::BearerAuth,
        },
    },
};

/// Invitations expire after 7 days.
const INVITATION_TTL: chrono::Duration = chrono::Duration::days(7);

pub struct InvitationsApi {
    pub identity: Identity,
}

// What each operation requires (see `auth::access`): one line per route below.
const INVITATIONS_CREATE: Operation =
    Operation::permission("invitations_create", "users.invite").reading_held_permissions();
const INVITATIONS_LIST: Operation = Operation::permission("invitations_list", "users.invite");
const INVITATIONS_DELETE: Operation = Operation::permission("invitations_delete", "users.invite");
const AUTH_ACCEPT_INVITATION: Operation = Operation::public("auth_accept_invitation");

pub const OPERATIONS: &[Operation] = &[
    INVITATIONS_CREATE,
    INVITATIONS_LIST,
    INVITATIONS_DELETE,
    AUTH_ACCEPT_INVITATION,
];

#[derive(Object)]
pub struct CreateInvitationRequest {
    pub email: String,
    /// The role the invitee gets; the caller must hold all its permissions.
    pub role_id: Uuid,
    /// Give the role in this store only.
    #[oai(nullable)]
    pub store_id: Option<Uuid>,
}

#[derive(Object)]
pub struct InvitationDto {
    pub id: Uuid,
    pub email: String,
    pub role_id: Uuid,
    #[oai(nullable)]
    pub store_id: Option<Uuid>,
    pub expires_at: DateTime<Utc>,
    /// `pending`, `accepted`, `revoked` or `expired`.
    pub status: String,
    pub created_at: DateTime<Utc>,
}

impl From<InvitationRow> for InvitationDto {
    fn from(row: InvitationRow) -> Self {
        InvitationDto {
            id: row.id,
            email: row.email,
            role_id: row.role_id,
            store_id: row.store_id,
            expires_at: row.expires_at,
            status: row.status,
            created_at: row.created_at,
        }
    }
}

#[derive(Object)]
pub struct InvitationList {
    pub items: Vec<InvitationDto>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(Object)]
pub struct AcceptInvitationRequest {
    /// The token from the invitation message.
    pub token: String,
    /// A new user's password; an existing user's own password.
    #[oai(nullable)]
    pub password: Option<String>,
    /// Required when the email has no account yet.
    #[oai(nullable)]
    pub full_name: Option<String>,
}

#[derive(ApiResponse)]
pub enum InvitationCreated {
    /// Invited; the token travels by the notification outbox, never in this response.
    #[oai(status = 201)]
    Created(Json<InvitationDto>),
}

#[derive(ApiResponse)]
pub enum InvitationListResponse {
    #[oai(status = 200)]
    Ok(Json<InvitationList>),
}

#[derive(ApiResponse)]
pub enum Accepted {
    /// A session in the tenant that invited the user.
    #[oai(status = 200)]
    Ok(Json<TokenPair>),
}

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Tenancy")]
impl InvitationsApi {
    /// Invite someone by email (7 days, single use). 409 when they are already a
    /// member or have a pending invitation.
    #[oai(
        path = "/invitations",
        method = "post",
        operation_id = "invitations_create"
    )]
    async fn create(
        &self,
        auth: BearerAuth,
        body: Json<CreateInvitationRequest>,
    ) -> Result<InvitationCreated, ApiError> {
        let email = Email::parse(&body.email).map_err(|message| invalid("email", &message))?;
        let db = &self.identity.db;
        let (tx, access) = authorize(db, &auth.0, None, &INVITATIONS_CREATE).await?;
        let result = async {
            let role = match rbac::role(&tx, body.role_id).await {
                Err(Error::NotFound) => return Err(invalid("role_id", "no such role")),
                other => other?,
            };
            if let Some(store_id) = body.store_id
                && matches!(tenancy::store(&tx, store_id).await, Err(Error::NotFound))
            {
                return Err(invalid("store_id", "no such store"));
            }
            ensure_holds(&access, &role.permissions)?;
            if tenancy::is_member_email(&tx, email.as_str()).await? {
                return Err(Error::Conflict("already a member of this tenant".into()));
            }
            if tenancy::has_pending_invitation(&tx, email.as_str()).await? {
                return Err(Error::Conflict("a pending invitation exists for this email".into()));
            }
            let expires_at = Utc::now() + INVITATION_TTL;
            let invitation =
                tenancy::create_invitation(&tx, email.as_str(), role.id, body.store_id, auth.0.sub, expires_at).await?;
            let token = OpaqueToken::generate();
            tenancy::set_invitation_token(&tx, invitation.id, &token.hash).await?;
            let tenant = identity_sql::tenant(&tx, auth.0.tid).await?;
            tenancy::enqueue_notification(
                &tx,
                email.as_str(),
                "invitation",
                &json!({
                    "token": token.token,
                    "tenant_id": tenant.id,
                    "tenant_name": tenant.name,
                    "role": role.name,
                    "expires_at": expires_at,
                }),
            )
            .await?;
            audit::record(
                &tx,
                Event {
                    action: "invitation.created",
                    target_type: "invitation",
                    target_id: Some(invitation.id),
                    store_id: body.store_id,
                    details: json!({"after": {"email": invitation.email, "role_id": role.id, "role": role.name}}),
                },
            )
            .await?;
            Ok(invitation)
        }
        .await;
        Ok(InvitationCreated::Created(Json(
            tx.finish(result).await?.into(),
        )))
    }

    /// The tenant's invitations, oldest first.
    #[oai(
        path = "/invitations",
        method = "get",
        operation_id = "invitations_list"
    )]
    async fn list(
        &self,
        auth: BearerAuth,
        /// 1 to 100, default 50.
        limit: Query<Option<i64>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<InvitationListResponse, ApiError> {
        let page = page(limit.0, cursor.0)?;
        let (tx, _) = authorize(&self.identity.db, &auth.0, None, &INVITATIONS_LIST).await?;
        let rows = tenancy::list_invitations(tx, &page).await?;
        let (rows, next_cursor) = page.finish(rows, |i| (i.created_at, i.id));
        Ok(InvitationListResponse::Ok(Json(InvitationList {
            items: rows.into_iter().map(Into::into).collect(),
            next_cursor,
        })))
    }

    /// Revoke an invitation that was not accepted.
    #[oai(
        path = "/invitations/:id",
        method = "delete",
        operation_id = "invitations_delete"
    )]
    async fn delete(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<Deleted, ApiError> {
        let (tx, _) = authorize(&self.identity.db, &auth.0, None, &INVITATIONS_DELETE).await?;
        let result = async {
            let invitation = tenancy::revoke_invitation(&tx, id.0).await?;
            audit::record(
                &tx,
                Event {
                    action: "invitation.revoked",
                    target_type: "invitation",
                    target_id: Some(invitation.id),
                    store_id: invitation.store_id,
                    details: json!({"before": {"email": invitation.email}}),
                },
            )
            .await
        }
        .await;
        tx.finish(result).await?;
        Ok(Deleted::NoContent)
    }

    /// Accept an invitation: creates the user when the email is new (password and
    /// full_name required), or links the existing user, who proves it with their own
    /// password. 401 for a bad, expired, revoked or used token.
    #[oai(
        path = "/auth/accept-invitation",
        method = "post",
        operation_id = "auth_accept_invitation",
        tag = "Tag::Auth"
    )]
    async fn accept(&self, body: Json<AcceptInvitationRequest>) -> Result<Accepted, ApiError> {
        let session = self
            .identity
            .accept_invitation(
                &body.token,
                body.password.as_deref(),
                body.full_name.as_deref(),
            )
            .await?;
        Ok(Accepted::Ok(Json(session.into())))
    }
}
