//! `/api/v1/auth/*`: registration, bootstrap, login, tokens, password reset.

use poem_openapi::{ApiResponse, Enum, Object, OpenApi, types::Example};
use uuid::Uuid;

use super::me::User;
use crate::{
    modules::{
        Tag,
        identity::{
            db::UserRow,
            service::{Identity, NewAccount, Registered, Session},
        },
        tenancy::{TenantRow, api::Tenant},
    },
    platform::{
        auth::access::Operation,
        http::{
            client::ClientAddress,
            json::JsonBody,
            problem::ApiError,
            security::BearerAuth,
            text::{EmailText, NameText, PasswordText, SecretText, Text},
        },
    },
};

// What each operation requires (see `auth::access`): one line per route below.
const AUTH_BOOTSTRAP: Operation = Operation::public("auth_bootstrap").returning(&[409]);
/// 429: `ROWGUARD_REGISTER_MAX_TAKEN_EMAILS_PER_CLIENT`.
const AUTH_REGISTER: Operation = Operation::public("auth_register").returning(&[403, 409, 429]);
/// 404: a `tenant_id` the user is not a member of.
const AUTH_LOGIN: Operation = Operation::public("auth_login").returning(&[401, 403, 404, 429]);
const AUTH_REFRESH: Operation = Operation::public("auth_refresh").returning(&[401, 403]);
const AUTH_LOGOUT: Operation = Operation::public("auth_logout");
/// Any authenticated user; membership of the target tenant is checked by the flow.
const AUTH_SWITCH_TENANT: Operation = Operation::member("auth_switch_tenant")
    .returning(&[404, 409])
    .for_people_only();
const AUTH_FORGOT_PASSWORD: Operation = Operation::public("auth_forgot_password");
const AUTH_RESET_PASSWORD: Operation = Operation::public("auth_reset_password").returning(&[401]);
const AUTH_VERIFY_EMAIL: Operation = Operation::public("auth_verify_email").returning(&[401]);

pub const OPERATIONS: &[Operation] = &[
    AUTH_BOOTSTRAP,
    AUTH_REGISTER,
    AUTH_LOGIN,
    AUTH_REFRESH,
    AUTH_LOGOUT,
    AUTH_SWITCH_TENANT,
    AUTH_FORGOT_PASSWORD,
    AUTH_RESET_PASSWORD,
    AUTH_VERIFY_EMAIL,
];

pub struct AuthApi {
    pub identity: Identity,
}

#[derive(Object)]
#[oai(example)]
pub struct RegisterRequest {
    pub email: EmailText,
    /// 8 to 128 characters, not the email.
    pub password: PasswordText,
    pub full_name: NameText,
    /// The name of the user's first tenant.
    pub tenant_name: NameText,
}

impl Example for RegisterRequest {
    fn example() -> Self {
        RegisterRequest {
            email: "amina@example.com".into(),
            password: "correct horse battery".into(),
            full_name: "Amina Odhiambo".into(),
            tenant_name: "Odhiambo Traders".into(),
        }
    }
}

/// How to present the access token: always `Bearer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
pub enum TokenType {
    Bearer,
}

#[derive(Object, serde::Serialize)]
pub struct AccountCreated {
    pub user: User,
    pub tenant: Tenant,
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: TokenType,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

#[derive(Object)]
#[oai(example)]
pub struct LoginRequest {
    pub email: EmailText,
    pub password: SecretText,
    /// The tenant to act in; default: the one used last.
    #[oai(nullable)]
    pub tenant_id: Option<Uuid>,
}

impl Example for LoginRequest {
    fn example() -> Self {
        LoginRequest {
            email: "amina@example.com".into(),
            password: "correct horse battery".into(),
            tenant_id: None,
        }
    }
}

#[derive(Object, serde::Serialize)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: TokenType,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub tenant_id: Uuid,
}

impl From<Session> for TokenPair {
    fn from(session: Session) -> Self {
        TokenPair {
            access_token: session.access_token,
            refresh_token: session.refresh_token,
            token_type: TokenType::Bearer,
            expires_in: session.expires_in,
            tenant_id: session.tenant_id,
        }
    }
}

#[derive(Object)]
pub struct RefreshRequest {
    pub refresh_token: Text,
}

#[derive(Object)]
pub struct SwitchTenantRequest {
    pub tenant_id: Uuid,
}

#[derive(Object)]
pub struct ForgotPasswordRequest {
    pub email: EmailText,
}

#[derive(Object)]
pub struct VerifyEmailRequest {
    /// The token from the verification email's link.
    pub token: Text,
}

#[derive(Object)]
pub struct ResetPasswordRequest {
    /// The token from the password-reset message.
    pub token: Text,
    pub new_password: PasswordText,
}

#[derive(ApiResponse)]
pub enum Created {
    /// The user, their tenant, and a session.
    #[oai(status = 201)]
    Created(JsonBody<AccountCreated>),
}

#[derive(ApiResponse)]
pub enum Registration {
    /// The user, their tenant, and a session.
    #[oai(status = 201)]
    Created(JsonBody<AccountCreated>),
    /// Only with `ROWGUARD_REGISTER_CONCEAL_TAKEN_EMAILS`, for every registration: the
    /// account was created (log in to get a session), or the email already had one
    /// (its owner is told). No body, so the two cannot be told apart.
    #[oai(status = 202)]
    Accepted,
}

#[derive(ApiResponse)]
pub enum Tokens {
    /// A new token pair.
    #[oai(status = 200)]
    Ok(JsonBody<TokenPair>),
}

#[derive(ApiResponse)]
pub enum NoContent {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}

#[derive(ApiResponse)]
pub enum Accepted {
    /// Accepted; if the email has an account, a reset token is on its way.
    #[oai(status = 202)]
    Accepted,
}

fn created(user: UserRow, tenant: TenantRow, session: Session) -> Created {
    Created::Created(JsonBody(AccountCreated {
        user: user.into(),
        tenant: tenant.into(),
        access_token: session.access_token,
        refresh_token: session.refresh_token,
        token_type: TokenType::Bearer,
        expires_in: session.expires_in,
    }))
}

#[OpenApi(prefix_path = "/api/v1/auth", tag = "Tag::Auth")]
impl AuthApi {
    /// Create the first user (a platform admin) and their tenant. Closed for good once
    /// any user exists.
    #[oai(path = "/bootstrap", method = "post", operation_id = "auth_bootstrap")]
    async fn bootstrap(&self, body: JsonBody<RegisterRequest>) -> Result<Created, ApiError> {
        let (user, tenant, session) = self.identity.bootstrap(account(&body)).await?;
        Ok(created(user, tenant, session))
    }

    /// Register a user and their first tenant; the user becomes its Owner.
    /// Registration attempts may be limited per client address (429).
    #[oai(path = "/register", method = "post", operation_id = "auth_register")]
    async fn register(
        &self,
        client: ClientAddress,
        body: JsonBody<RegisterRequest>,
    ) -> Result<Registration, ApiError> {
        match self
            .identity
            .register(account(&body), client.as_str())
            .await?
        {
            Registered::Created(account) => {
                let (user, tenant, session) = *account;
                let Created::Created(body) = created(user, tenant, session);
                Ok(Registration::Created(body))
            }
            Registered::Accepted => Ok(Registration::Accepted),
        }
    }

    /// Exchange email and password for a token pair. Failed attempts are throttled per
    /// email and client address, per client address, and (with a growing delay) per
    /// email.
    #[oai(path = "/login", method = "post", operation_id = "auth_login")]
    async fn login(
        &self,
        client: ClientAddress,
        body: JsonBody<LoginRequest>,
    ) -> Result<Tokens, ApiError> {
        let session = self
            .identity
            .login(&body.email, &body.password, body.tenant_id, client.as_str())
            .await?;
        Ok(Tokens::Ok(JsonBody(session.into())))
    }

    /// Rotate a refresh token: the old one stops working. Presenting a used refresh
    /// token again revokes its whole session.
    #[oai(path = "/refresh", method = "post", operation_id = "auth_refresh")]
    async fn refresh(&self, body: JsonBody<RefreshRequest>) -> Result<Tokens, ApiError> {
        Ok(Tokens::Ok(JsonBody(
            self.identity.refresh(&body.refresh_token).await?.into(),
        )))
    }

    /// End the session of a refresh token.
    #[oai(path = "/logout", method = "post", operation_id = "auth_logout")]
    async fn logout(&self, body: JsonBody<RefreshRequest>) -> Result<NoContent, ApiError> {
        self.identity.logout(&body.refresh_token).await?;
        Ok(NoContent::NoContent)
    }

    /// A token pair for another tenant the caller is a member of.
    #[oai(
        path = "/switch-tenant",
        method = "post",
        operation_id = "auth_switch_tenant"
    )]
    async fn switch_tenant(
        &self,
        auth: BearerAuth,
        body: JsonBody<SwitchTenantRequest>,
    ) -> Result<Tokens, ApiError> {
        Ok(Tokens::Ok(JsonBody(
            self.identity
                .switch_tenant(&auth.0, &AUTH_SWITCH_TENANT, body.tenant_id)
                .await?
                .into(),
        )))
    }

    /// Ask for a password-reset token, sent to the email if it has an account. Always
    /// 202, whether or not it does.
    #[oai(
        path = "/forgot-password",
        method = "post",
        operation_id = "auth_forgot_password"
    )]
    async fn forgot_password(
        &self,
        body: JsonBody<ForgotPasswordRequest>,
    ) -> Result<Accepted, ApiError> {
        self.identity.forgot_password(&body.email).await?;
        Ok(Accepted::Accepted)
    }

    /// Set a new password with a reset token (single use, valid for an hour). Every
    /// session of the user ends.
    #[oai(
        path = "/reset-password",
        method = "post",
        operation_id = "auth_reset_password"
    )]
    async fn reset_password(
        &self,
        body: JsonBody<ResetPasswordRequest>,
    ) -> Result<NoContent, ApiError> {
        self.identity
            .reset_password(&body.token, &body.new_password)
            .await?;
        Ok(NoContent::NoContent)
    }

    /// Verify the user's email address with the token of the verification email
    /// (single use, valid for three days).
    #[oai(
        path = "/verify-email",
        method = "post",
        operation_id = "auth_verify_email"
    )]
    async fn verify_email(
        &self,
        body: JsonBody<VerifyEmailRequest>,
    ) -> Result<NoContent, ApiError> {
        self.identity.verify_email(&body.token).await?;
        Ok(NoContent::NoContent)
    }
}

fn account(body: &RegisterRequest) -> NewAccount<'_> {
    NewAccount {
        email: body.email.as_str(),
        password: body.password.as_str(),
        full_name: body.full_name.as_str(),
        tenant_name: body.tenant_name.as_str(),
        plan_code: None,
    }
}
