//! `/api/v1/invitations` and `POST /api/v1/auth/accept-invitation`.

use chrono::{DateTime, Utc};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, param::Path, param::Query};
use uuid::Uuid;

use crate::{
    modules::{
        Tag,
        identity::{api::auth::TokenPair, service::Identity},
        tenancy::{
            db::{self, InvitationRow},
            service::{self, NewInvitation},
        },
    },
    platform::{
        auth::access::{Operation, authorize},
        domain::{Email, Fields},
        http::{
            client::ClientAddress,
            common::{Deleted, Limit, page, wire_name},
            json::{JsonBody, rfc3339},
            problem::ApiError,
            security::BearerAuth,
            text::{EmailText, NameText, SecretText, Text},
        },
    },
};

pub struct InvitationsApi {
    pub identity: Identity,
}

// What each operation requires (see `auth::access`): one line per route below.
const INVITATIONS_CREATE: Operation = Operation::permission("invitations_create", "users.invite")
    .limited_by("members")
    .reading_held_permissions()
    .returning(&[409]);
const INVITATIONS_LIST: Operation = Operation::permission("invitations_list", "users.invite");
const INVITATIONS_DELETE: Operation = Operation::permission("invitations_delete", "users.invite");
/// 403: the tenant is suspended; 429: the login throttle of an existing user's email.
const AUTH_ACCEPT_INVITATION: Operation =
    Operation::public("auth_accept_invitation").returning(&[401, 403, 409, 429]);

pub const OPERATIONS: &[Operation] = &[
    INVITATIONS_CREATE,
    INVITATIONS_LIST,
    INVITATIONS_DELETE,
    AUTH_ACCEPT_INVITATION,
];

#[derive(Object)]
#[oai(example)]
pub struct CreateInvitationRequest {
    pub email: EmailText,
    /// The role the invitee gets; the caller must hold all its permissions.
    pub role_id: Uuid,
    /// Give the role in this store only.
    #[oai(nullable)]
    pub store_id: Option<Uuid>,
}

impl poem_openapi::types::Example for CreateInvitationRequest {
    fn example() -> Self {
        CreateInvitationRequest {
            email: "wanjiru@example.com".into(),
            role_id: uuid::uuid!("0b9e3c1a-5f7d-4e2b-9a61-3c8d2e4f6a70"),
            store_id: None,
        }
    }
}

#[derive(Object, serde::Serialize)]
pub struct Invitation {
    pub id: Uuid,
    pub email: String,
    pub role_id: Uuid,
    #[oai(nullable)]
    pub store_id: Option<Uuid>,
    #[serde(serialize_with = "rfc3339")]
    pub expires_at: DateTime<Utc>,
    pub status: InvitationStatus,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
}

impl From<InvitationRow> for Invitation {
    fn from(row: InvitationRow) -> Self {
        Invitation {
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

/// The state of an invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Revoked,
    Expired,
}

#[derive(Object, serde::Serialize)]
pub struct InvitationList {
    pub items: Vec<Invitation>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(Object)]
pub struct AcceptInvitationRequest {
    /// The token from the invitation message.
    pub token: Text,
    /// A new user's password (8 to 128 characters); an existing user's own password.
    #[oai(nullable)]
    pub password: Option<SecretText>,
    /// Required when the email has no account yet.
    #[oai(nullable)]
    pub full_name: Option<NameText>,
}

#[derive(ApiResponse)]
pub enum InvitationCreated {
    /// Invited; the token travels by email, never in this response.
    #[oai(status = 201)]
    Created(JsonBody<Invitation>),
}

#[derive(ApiResponse)]
pub enum InvitationListResponse {
    #[oai(status = 200)]
    Ok(JsonBody<InvitationList>),
}

#[derive(ApiResponse)]
pub enum Accepted {
    /// A session in the tenant that invited the user.
    #[oai(status = 200)]
    Ok(JsonBody<TokenPair>),
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
        body: JsonBody<CreateInvitationRequest>,
    ) -> Result<InvitationCreated, ApiError> {
        let mut fields = Fields::new();
        let email = fields.check("email", Email::parse(&body.email));
        let email = fields.finish(email)?;
        let (tx, access) = authorize(&self.identity.db, &auth.0, &INVITATIONS_CREATE).await?;
        let invitation = NewInvitation {
            email,
            role_id: body.role_id,
            store_id: body.store_id,
        };
        let created = async {
            let inviter = access.user()?;
            service::invite(&tx, &access, inviter, invitation, Utc::now()).await
        }
        .await;
        Ok(InvitationCreated::Created(JsonBody(
            tx.finish(created).await?.into(),
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
        limit: Query<Option<Limit>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Only the invitations in this state; default: all but the revoked.
        status: Query<Option<InvitationStatus>>,
    ) -> Result<InvitationListResponse, ApiError> {
        let page = page(limit.0, cursor.0)?;
        let (tx, _) = authorize(&self.identity.db, &auth.0, &INVITATIONS_LIST).await?;
        let status = status.0.map(|status| wire_name(&status));
        let rows = db::list_invitations(tx, &page, status.as_deref()).await?;
        let (rows, next_cursor) = page.finish(rows, |i| (i.created_at, i.id));
        Ok(InvitationListResponse::Ok(JsonBody(InvitationList {
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
        let (tx, _) = authorize(&self.identity.db, &auth.0, &INVITATIONS_DELETE).await?;
        let revoked = service::revoke_invitation(&tx, id.0).await;
        tx.finish(revoked).await?;
        Ok(Deleted::NoContent)
    }

    /// Accept an invitation: creates the user when the email is new (password and
    /// full_name required), or links the existing user, who proves it with their own
    /// password, checked under the login throttle (a wrong one is a failed login).
    /// 401 for a bad, expired, revoked or used token; 403 `tenant_suspended` while the
    /// tenant is suspended (the invitation stays pending).
    #[oai(
        path = "/auth/accept-invitation",
        method = "post",
        operation_id = "auth_accept_invitation",
        tag = "Tag::Auth"
    )]
    async fn accept(
        &self,
        client: ClientAddress,
        body: JsonBody<AcceptInvitationRequest>,
    ) -> Result<Accepted, ApiError> {
        let session = service::accept_invitation(
            &self.identity,
            &body.token,
            body.password.as_deref(),
            body.full_name.as_deref(),
            client.as_str(),
        )
        .await?;
        Ok(Accepted::Ok(JsonBody(session.into())))
    }
}
