//! `/api/v1/me`: the caller, their tenant, memberships, roles and permissions.

use chrono::{DateTime, Utc};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use uuid::Uuid;

use crate::{
    modules::{
        Tag,
        identity::{db::UserRow, service::Identity},
        tenancy::{MemberStatus, api::Tenant},
    },
    platform::{
        auth::{access::Operation, catalog::PermissionCode},
        http::{
            client::ClientAddress,
            json::{JsonBody, rfc3339},
            problem::ApiError,
            security::BearerAuth,
            text::{NameText, PasswordText, SecretText},
        },
    },
};

pub struct MeApi {
    pub identity: Identity,
}

#[derive(Object, serde::Serialize)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub full_name: String,
    pub is_platform_admin: bool,
    pub status: UserStatus,
    /// The user proved they receive mail at `email` (the link of the verification email).
    pub email_verified: bool,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
}

/// A disabled user cannot log in anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Active,
    Disabled,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        User {
            id: row.id,
            email: row.email,
            full_name: row.full_name,
            is_platform_admin: row.is_platform_admin,
            status: row.status,
            email_verified: row.email_verified,
            created_at: row.created_at,
        }
    }
}

#[derive(Object, serde::Serialize)]
pub struct Membership {
    pub tenant_id: Uuid,
    pub tenant_name: String,
    /// The membership's status (`suspended` also when the tenant is).
    pub status: MemberStatus,
}

#[derive(Object, serde::Serialize)]
pub struct RoleAssignment {
    pub role_id: Uuid,
    pub name: String,
    /// `null` for a tenant-wide assignment.
    #[oai(nullable)]
    pub store_id: Option<Uuid>,
}

#[derive(Object, serde::Serialize)]
pub struct Me {
    pub user: User,
    pub tenant: Tenant,
    pub memberships: Vec<Membership>,
    pub roles: Vec<RoleAssignment>,
    /// Effective permission codes (in the store of `X-Store-ID`, when given).
    pub permissions: Vec<PermissionCode>,
}

#[derive(Object)]
pub struct UpdateMeRequest {
    pub full_name: NameText,
}

#[derive(Object)]
pub struct ChangePasswordRequest {
    pub current_password: SecretText,
    pub new_password: PasswordText,
}

#[derive(ApiResponse)]
pub enum MeResponse {
    #[oai(status = 200)]
    Ok(JsonBody<Me>),
}

#[derive(ApiResponse)]
pub enum UserResponse {
    #[oai(status = 200)]
    Ok(JsonBody<User>),
}

#[derive(ApiResponse)]
pub enum VerificationEmail {
    /// Accepted: unless the address is verified already (or several links were sent
    /// this hour), a new link is on its way.
    #[oai(status = 202)]
    Accepted,
}

#[derive(ApiResponse)]
pub enum PasswordChanged {
    /// Changed; every other session of the user has ended.
    #[oai(status = 204)]
    NoContent,
}

/// What each operation requires (see `auth::access`).
// A person's own account: never an API key's (`for_people_only`).
const ME_GET: Operation = Operation::member("me_get")
    .reading_held_permissions()
    .with_store_grants()
    .for_people_only();
const ME_UPDATE: Operation = Operation::member("me_update").for_people_only();
/// 429: the login throttle of the caller's email and client address.
const ME_CHANGE_PASSWORD: Operation = Operation::member("me_change_password")
    .returning(&[429])
    .for_people_only();
const ME_SEND_VERIFICATION_EMAIL: Operation =
    Operation::member("me_send_verification_email").for_people_only();

pub const OPERATIONS: &[Operation] = &[
    ME_GET,
    ME_UPDATE,
    ME_CHANGE_PASSWORD,
    ME_SEND_VERIFICATION_EMAIL,
];

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Me")]
impl MeApi {
    /// The caller: profile, current tenant, memberships, roles, effective permissions.
    #[oai(path = "/me", method = "get", operation_id = "me_get")]
    async fn get(&self, auth: BearerAuth) -> Result<MeResponse, ApiError> {
        let me = self.identity.me(&auth.0, &ME_GET).await?;
        Ok(MeResponse::Ok(JsonBody(Me {
            user: me.user.into(),
            tenant: me.tenant.into(),
            memberships: me
                .memberships
                .into_iter()
                .map(|m| Membership {
                    tenant_id: m.tenant_id,
                    tenant_name: m.tenant_name,
                    status: if m.tenant_status == "active" {
                        m.member_status
                    } else {
                        MemberStatus::Suspended
                    },
                })
                .collect(),
            roles: me
                .roles
                .into_iter()
                .map(|r| RoleAssignment {
                    role_id: r.role_id,
                    name: r.role_name,
                    store_id: r.store_id,
                })
                .collect(),
            permissions: me.permissions.into_iter().map(Into::into).collect(),
        })))
    }

    /// Change the caller's profile.
    #[oai(path = "/me", method = "patch", operation_id = "me_update")]
    async fn update(
        &self,
        auth: BearerAuth,
        body: JsonBody<UpdateMeRequest>,
    ) -> Result<UserResponse, ApiError> {
        let user = self
            .identity
            .update_me(&auth.0, &ME_UPDATE, &body.full_name)
            .await?;
        Ok(UserResponse::Ok(JsonBody(user.into())))
    }

    /// Change the caller's password (the current one is required). A wrong current
    /// password counts as a failed login of the caller's email from this client, and
    /// while logins are throttled for them this answers 429 before checking it.
    #[oai(
        path = "/me/password",
        method = "post",
        operation_id = "me_change_password"
    )]
    async fn change_password(
        &self,
        auth: BearerAuth,
        client: ClientAddress,
        body: JsonBody<ChangePasswordRequest>,
    ) -> Result<PasswordChanged, ApiError> {
        self.identity
            .change_password(
                &auth.0,
                &ME_CHANGE_PASSWORD,
                &body.current_password,
                &body.new_password,
                client.as_str(),
            )
            .await?;
        Ok(PasswordChanged::NoContent)
    }

    /// Send the caller a new email verification link.
    #[oai(
        path = "/me/verification-email",
        method = "post",
        operation_id = "me_send_verification_email"
    )]
    async fn send_verification_email(
        &self,
        auth: BearerAuth,
    ) -> Result<VerificationEmail, ApiError> {
        self.identity
            .send_verification_email(&auth.0, &ME_SEND_VERIFICATION_EMAIL)
            .await?;
        Ok(VerificationEmail::Accepted)
    }
}
