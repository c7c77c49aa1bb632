//! `POST /api/v1/onboarding/register`.

use poem_openapi::{ApiResponse, Object, OpenApi, types::Example};

use crate::{
    modules::{
        Tag,
        identity::{
            api::{auth::TokenType, me::User},
            service::{Identity, NewAccount, Registered},
        },
        subscriptions::{self, api::Subscription},
        tenancy::api::Tenant,
    },
    platform::{
        auth::access::Operation,
        db::{Database, Scope},
        http::{
            client::ClientAddress,
            json::JsonBody,
            problem::ApiError,
            text::{EmailText, NameText, PasswordText, Text},
        },
    },
};

/// The same answers as `auth_register`: 403 registration closed, 409 a taken email,
/// 429 too many attempts from the client.
const ONBOARDING_REGISTER: Operation =
    Operation::public("onboarding_register").returning(&[403, 409, 429]);

pub const OPERATIONS: &[Operation] = &[ONBOARDING_REGISTER];

pub struct OnboardingApi {
    pub identity: Identity,
    /// Reads the new tenant's subscription for the answer.
    pub db: Database,
}

#[derive(Object)]
#[oai(example)]
pub struct OnboardingRequest {
    pub email: EmailText,
    /// 8 to 128 characters, not the email.
    pub password: PasswordText,
    pub full_name: NameText,
    /// The name of the new tenant (the company).
    pub tenant_name: NameText,
    /// The plan to start on (`GET /plans`): its trial when it has one; a plan with
    /// neither a trial nor a price of 0 cannot start without a payment (422).
    pub plan_code: Text,
}

impl Example for OnboardingRequest {
    fn example() -> Self {
        OnboardingRequest {
            email: "amina@example.com".into(),
            password: "correct horse battery".into(),
            full_name: "Amina Odhiambo".into(),
            tenant_name: "Duka La Amina".into(),
            plan_code: "starter".into(),
        }
    }
}

/// The new account: the user, their tenant, its subscription and a session.
#[derive(Object, serde::Serialize)]
pub struct Onboarded {
    pub user: User,
    pub tenant: Tenant,
    pub subscription: Subscription,
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: TokenType,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

#[derive(ApiResponse)]
#[allow(
    clippy::large_enum_variant,
    reason = "one answer per sign-up; boxing it would save nothing anyone could measure"
)]
pub enum Onboarding {
    /// The user, the tenant, its subscription, and a session.
    #[oai(status = 201)]
    Created(JsonBody<Onboarded>),
    /// Only with `ROWGUARD_REGISTER_CONCEAL_TAKEN_EMAILS`, as for `auth_register`: the
    /// account was created (log in to get a session), or the email already had one.
    #[oai(status = 202)]
    Accepted,
}

#[OpenApi(prefix_path = "/api/v1/onboarding", tag = "Tag::Auth")]
impl OnboardingApi {
    /// Sign up a new customer: the user, their tenant (the user its Owner), the
    /// subscription to the plan chosen (`trialing` when the plan has a trial), and
    /// the welcome and verification emails, in one transaction.
    #[oai(
        path = "/register",
        method = "post",
        operation_id = "onboarding_register"
    )]
    async fn register(
        &self,
        client: ClientAddress,
        body: JsonBody<OnboardingRequest>,
    ) -> Result<Onboarding, ApiError> {
        let account = NewAccount {
            email: body.email.as_str(),
            password: body.password.as_str(),
            full_name: body.full_name.as_str(),
            tenant_name: body.tenant_name.as_str(),
            plan_code: Some(body.plan_code.as_str()),
        };
        let (user, tenant, session) = match self.identity.register(account, client.as_str()).await?
        {
            Registered::Created(created) => *created,
            Registered::Accepted => return Ok(Onboarding::Accepted),
        };
        // Committed with the account; read as the new Owner in their tenant, under the
        // same policies as their next request.
        let (tx, _) = self.db.begin(&Scope::tenant(tenant.id, user.id)).await?;
        let read = subscriptions::current(&tx).await;
        let subscription = tx.finish(read).await?;
        Ok(Onboarding::Created(JsonBody(Onboarded {
            user: user.into(),
            tenant: tenant.into(),
            subscription,
            access_token: session.access_token,
            refresh_token: session.refresh_token,
            token_type: TokenType::Bearer,
            expires_in: session.expires_in,
        })))
    }
}
