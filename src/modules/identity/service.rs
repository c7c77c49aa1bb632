//! The identity flows of docs/api.md ("Auth" and "Me"): registration, bootstrap, login,
//! refresh-token rotation, logout, tenant switch, password reset and change. Each flow
//! validates its input into domain types, hashes off the async workers, and does its
//! database work in request transactions through `super::db`. A database connection
//! is never held while a password is hashed. Other modules use [`Identity`] to create
//! users and sessions (accepting an invitation), to check a password under the login
//! throttle, and to end sessions (removing a member).
//!
//! Every password check (login, the current password of a password change, an
//! existing user accepting an invitation) goes through one throttle
//! (`app.login_throttle`, sql/V9): per email and client address, per client address,
//! and a delay per email from everywhere; it refuses before anything is verified.
//! Anything that can be answered without a hash (a closed bootstrap, invalid fields,
//! a taken email, a throttled client) is answered before hashing, and unauthenticated
//! hashing is admitted apart from logins (`PasswordHasher::admit_unauthenticated`).

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use uuid::Uuid;

use super::db::{self as sql, Membership, UserRow};
use crate::{
    config::{Registration, Settings},
    error::{Error, FieldError},
    modules::{
        rbac, subscriptions,
        tenancy::{self, TenantRow},
    },
    platform::{
        auth::{
            Caller, OpaqueToken, PasswordHasher, TokenIssuer,
            access::{Operation, authorize, refusal},
        },
        db::{Database, RequestTx, Scope},
        domain::{Email, Fields, Name, Password},
        http::client::TrustedProxies,
    },
};

const BAD_REFRESH_TOKEN: Error =
    Error::InvalidToken("the refresh token is invalid, expired, used or revoked");
const BAD_RESET_TOKEN: Error =
    Error::InvalidToken("the reset token is invalid, expired or already used");
const BAD_VERIFICATION_TOKEN: Error =
    Error::InvalidToken("the verification token is invalid, expired or already used");

fn email_taken() -> Error {
    Error::Conflict("the email is already registered".into())
}

/// Reset tokens expire after an hour (docs/api.md).
const RESET_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// The windows of forgot-password and registration (sql/V9): one hour.
const HOURLY_WINDOW_SECS: i32 = 3600;

/// Attempts forgotten per transaction while pruning.
const PRUNE_BATCH: i32 = 10_000;

/// The notification an email's owner gets when someone tries to register it
/// (`ROWGUARD_REGISTER_CONCEAL_TAKEN_EMAILS`).
const REGISTRATION_ATTEMPTED: &str = "registration_attempted";
const WELCOME: &str = "welcome";

/// The login throttle's settings, as `app.login_throttle` takes them.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    pub window_secs: i32,
    pub max_per_email_client: i32,
    pub max_per_client: i32,
    pub delay_after: i32,
    pub max_delay_secs: i32,
}

/// Limits taken from the settings.
#[derive(Debug, Clone)]
pub struct Limits {
    pub registration: Registration,
    pub login: LoginLimits,
    pub forgot_max_per_hour: i32,
    /// 0: no limit.
    pub register_max_taken_emails_per_client: i32,
    pub register_conceal_taken_emails: bool,
    /// `ROWGUARD_DEFAULT_PLAN`: what a new tenant's subscription starts on.
    pub default_plan: String,
}

impl Limits {
    pub fn from_settings(settings: &Settings) -> Limits {
        let clamp = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        Limits {
            registration: settings.registration,
            login: LoginLimits {
                window_secs: clamp(settings.login_throttle_window_secs),
                max_per_email_client: clamp(settings.login_max_failures_per_email),
                max_per_client: clamp(settings.login_max_failures_per_client),
                delay_after: clamp(settings.login_delay_after_failures_per_email),
                max_delay_secs: clamp(settings.login_max_delay_secs),
            },
            forgot_max_per_hour: clamp(settings.forgot_password_max_per_hour),
            register_max_taken_emails_per_client: clamp(
                settings.register_max_taken_emails_per_client,
            ),
            register_conceal_taken_emails: settings.register_conceal_taken_emails,
            default_plan: settings.default_plan.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Identity {
    /// Requests (runtime role rowguard_api): /me and what other modules ask.
    pub db: Database,
    /// The credential flows (runtime role rowguard_auth): whatever reads or changes a
    /// password, a session or a token goes through this pool, which request sessions
    /// can never become (README, "Database roles").
    pub credentials: Database,
    pub hasher: PasswordHasher,
    pub tokens: Arc<TokenIssuer>,
    pub limits: Limits,
    /// Whose forwarding headers say who the client is (the routes' data, read by
    /// `platform::http::client::ClientAddress`).
    pub trusted_proxies: Arc<TrustedProxies>,
}

/// What registration answers.
pub enum Registered {
    /// The user, their tenant and a session.
    Created(Box<(UserRow, TenantRow, Session)>),
    /// `ROWGUARD_REGISTER_CONCEAL_TAKEN_EMAILS`: a new account was created, or the
    /// email was taken and its owner is told; the caller cannot tell which.
    Accepted,
}

/// A password check under the login throttle, recorded as a failed login until it
/// passes ([`Identity::begin_password_check`]).
pub struct PasswordCheck {
    email: String,
    client: String,
    attempt_ids: Vec<i64>,
}

/// A signed-in session: the token pair handed to the client.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
}

/// What registration and bootstrap ask for.
pub struct NewAccount<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub full_name: &'a str,
    pub tenant_name: &'a str,
    /// Onboarding (`POST /onboarding/register`): the plan chosen, started with its
    /// trial when it has one, and a welcome email. `None`: the default plan
    /// (`ROWGUARD_DEFAULT_PLAN`), as registration and bootstrap start it.
    pub plan_code: Option<&'a str>,
}

struct ParsedAccount {
    email: Email,
    password: Password,
    full_name: Name,
    tenant_name: Name,
    plan_code: Option<String>,
}

impl NewAccount<'_> {
    fn parse(&self) -> Result<ParsedAccount, Error> {
        let mut fields = Fields::new();
        let email = Email::parse(self.email);
        let password = Password::parse(self.password, email.as_ref().ok());
        let email = fields.check("email", email);
        let password = fields.check("password", password);
        let full_name = fields.check("full_name", Name::parse(self.full_name));
        let tenant_name = fields.check("tenant_name", Name::parse(self.tenant_name));
        let (email, password, full_name, tenant_name) =
            fields.finish((email, password, full_name, tenant_name))?;
        Ok(ParsedAccount {
            email,
            password,
            full_name,
            tenant_name,
            plan_code: self.plan_code.map(str::to_string),
        })
    }
}

/// What /me shows.
pub struct Me {
    pub user: UserRow,
    pub tenant: TenantRow,
    pub memberships: Vec<Membership>,
    pub roles: Vec<rbac::AssignmentRow>,
    pub permissions: Vec<String>,
}

impl Identity {
    pub fn new(
        db: Database,
        credentials: Database,
        settings: &Settings,
        jwt_secret: &[u8],
    ) -> anyhow::Result<Identity> {
        Ok(Identity {
            db,
            credentials,
            hasher: PasswordHasher::new(
                settings.hash_concurrency(),
                settings.hash_unauthenticated_queue,
            )?,
            tokens: Arc::new(TokenIssuer::new(
                jwt_secret,
                &settings.jwt_issuer,
                &settings.jwt_audience,
                Duration::from_secs(settings.access_token_ttl_secs),
                Duration::from_secs(settings.refresh_token_ttl_secs),
            )),
            limits: Limits::from_settings(settings),
            trusted_proxies: Arc::new(settings.trusted_proxies.clone()),
        })
    }

    fn refresh_expiry(&self) -> chrono::DateTime<Utc> {
        Utc::now() + self.tokens.refresh_ttl
    }

    /// Starts a session (a new refresh-token family) for the context's user and
    /// tenant, inside `tx`.
    pub async fn start_session(
        &self,
        tx: &RequestTx,
        user_id: Uuid,
        tenant_id: Uuid,
    ) -> Result<Session, Error> {
        let family = Uuid::new_v4();
        let refresh = OpaqueToken::generate();
        sql::issue_refresh_token(tx, family, &refresh.hash, self.refresh_expiry()).await?;
        self.session(user_id, tenant_id, family, refresh.token)
    }

    /// Creates a user (the email must be free: 409 otherwise). The caller hashed the
    /// password in the unauthenticated class.
    pub async fn create_user(
        &self,
        tx: &RequestTx,
        id: Uuid,
        email: &str,
        full_name: &Name,
        password_hash: &str,
    ) -> Result<(), Error> {
        sql::create_user(tx, id, email, full_name.as_str(), password_hash).await
    }

    /// Ends every session of `user_id` in the context's tenant (a removed member).
    pub async fn end_member_sessions(&self, tx: &RequestTx, user_id: Uuid) -> Result<(), Error> {
        sql::revoke_member_sessions(tx, user_id).await
    }

    fn session(
        &self,
        user_id: Uuid,
        tenant_id: Uuid,
        family: Uuid,
        refresh_token: String,
    ) -> Result<Session, Error> {
        Ok(Session {
            user_id,
            tenant_id,
            access_token: self.tokens.issue(user_id, tenant_id, family)?,
            refresh_token,
            expires_in: self.tokens.access_ttl.as_secs(),
        })
    }

    /// A user, their first tenant with its system roles, the user as its Owner, and
    /// (`with_session`) a session; all in one transaction. `bootstrap` makes the user a
    /// platform admin and is refused once any user exists. `None`: the email was
    /// registered meanwhile (the unique index decides), nothing is left behind.
    async fn create_account(
        &self,
        account: &ParsedAccount,
        password_hash: &str,
        bootstrap: bool,
        with_session: bool,
    ) -> Result<Option<(UserRow, TenantRow, Option<Session>)>, Error> {
        let (user_id, tenant_id) = (Uuid::new_v4(), Uuid::new_v4());
        // The new tenant's id is the context, so the tenant-scoped inserts below pass
        // the same policies as any request.
        let (tx, _) = self
            .credentials
            .begin(&Scope::tenant(tenant_id, user_id))
            .await?;
        let result = async {
            let (email, name) = (account.email.as_str(), account.full_name.as_str());
            if bootstrap {
                if !sql::bootstrap_user(&tx, user_id, email, name, password_hash).await? {
                    return Err(Error::BootstrapClosed);
                }
            } else if !sql::try_create_user(&tx, user_id, email, name, password_hash).await? {
                return Ok(None);
            }
            let tenant =
                tenancy::create_tenant(&tx, tenant_id, account.tenant_name.as_str(), user_id)
                    .await?;
            match account.plan_code.as_deref() {
                None => subscriptions::start(&tx, &self.limits.default_plan, Utc::now()).await?,
                Some(plan) => {
                    subscriptions::start_chosen(&tx, plan, Utc::now()).await?;
                    // Sent by the email job once this transaction commits, like the
                    // verification below: a failed onboarding sends nothing.
                    sql::enqueue_notification(
                        &tx,
                        email,
                        WELCOME,
                        &serde_json::json!({
                            "full_name": name,
                            "tenant_name": account.tenant_name.as_str(),
                        }),
                    )
                    .await?;
                }
            }
            let owner = rbac::service::create_system_roles(&tx).await?;
            rbac::service::assign_role(&tx, user_id, owner, None).await?;
            if !bootstrap {
                // The new user is the context: the email is theirs (the function makes
                // the token; only its hash stays once the email is delivered).
                sql::request_email_verification(&tx).await?;
            }
            let session = if with_session {
                Some(self.start_session(&tx, user_id, tenant_id).await?)
            } else {
                None
            };
            let user = sql::user(&tx, user_id).await?;
            Ok(Some((user, tenant, session)))
        }
        .await;
        match result {
            Ok(Some(created)) => tx.commit().await.map(|()| Some(created)),
            // The failed insert aborted the transaction.
            Ok(None) => {
                tx.rollback().await;
                Ok(None)
            }
            Err(error) => {
                tx.rollback().await;
                Err(error)
            }
        }
    }

    /// Registers a user and their first tenant. Everything that needs no hash is
    /// answered first: registration closed (403), invalid fields (422), too many
    /// attempts from the client (429), a taken email (409). With
    /// `ROWGUARD_REGISTER_CONCEAL_TAKEN_EMAILS` a taken email is answered like a new
    /// registration instead, after the same work (a hash), and its owner is told.
    pub async fn register(
        &self,
        account: NewAccount<'_>,
        client: &str,
    ) -> Result<Registered, Error> {
        if self.limits.registration == Registration::Closed {
            return Err(Error::RegistrationClosed);
        }
        let account = account.parse()?;
        if let Some(plan) = account.plan_code.as_deref()
            && !subscriptions::can_start(&self.db, plan).await?
        {
            return Err(Error::invalid(
                "plan_code",
                "there is no such plan, or it cannot start without a payment",
            ));
        }
        let (tx, _) = self.credentials.begin(&Scope::anonymous()).await?;
        let attempt = sql::registration_attempt(
            &tx,
            client,
            account.email.as_str(),
            self.limits.register_max_taken_emails_per_client,
        )
        .await;
        let attempt = tx.finish(attempt).await?;
        if attempt.retry_after_secs > 0 {
            return Err(Error::RateLimited {
                retry_after_secs: attempt.retry_after_secs.unsigned_abs().into(),
            });
        }
        let conceal = self.limits.register_conceal_taken_emails;
        if attempt.email_taken && !conceal {
            return Err(email_taken());
        }
        let password_hash = self
            .hasher
            .hash_unauthenticated(account.password.expose())
            .await?;
        let created = if attempt.email_taken {
            None
        } else {
            self.create_account(&account, &password_hash, false, !conceal)
                .await?
        };
        match created {
            Some((user, tenant, Some(session))) => {
                Ok(Registered::Created(Box::new((user, tenant, session))))
            }
            Some((_, _, None)) => Ok(Registered::Accepted),
            None if conceal => {
                self.tell_owner_of_registration_attempt(&account.email)
                    .await?;
                Ok(Registered::Accepted)
            }
            None => Err(email_taken()),
        }
    }

    /// The owner of a taken email hears that someone tried to register it, through
    /// email like every message; nothing else the caller sent is passed on.
    async fn tell_owner_of_registration_attempt(&self, email: &Email) -> Result<(), Error> {
        let (tx, _) = self.credentials.begin(&Scope::anonymous()).await?;
        let queued = sql::enqueue_notification(
            &tx,
            email.as_str(),
            REGISTRATION_ATTEMPTED,
            &serde_json::json!({"email": email.as_str(), "attempted_at": Utc::now()}),
        )
        .await;
        tx.finish(queued).await
    }

    /// The first user, a platform admin, with their tenant. Closed once any user
    /// exists: answered before the body is validated or the password hashed.
    pub async fn bootstrap(
        &self,
        account: NewAccount<'_>,
    ) -> Result<(UserRow, TenantRow, Session), Error> {
        let (tx, _) = self.credentials.begin(&Scope::anonymous()).await?;
        let open = sql::bootstrap_open(&tx).await;
        if !tx.finish(open).await? {
            return Err(Error::BootstrapClosed);
        }
        let account = account.parse()?;
        let password_hash = self
            .hasher
            .hash_unauthenticated(account.password.expose())
            .await?;
        match self
            .create_account(&account, &password_hash, true, true)
            .await?
        {
            Some((user, tenant, Some(session))) => Ok((user, tenant, session)),
            _ => Err(Error::BootstrapClosed),
        }
    }

    /// Begins checking a password of the account `email` for `client`, inside `tx`,
    /// which the caller commits before verifying: refused with 429 when the login
    /// throttle is locked for them; otherwise the attempt is recorded as a failed
    /// login, until [`Identity::password_check_passed`] takes it back.
    pub async fn begin_password_check(
        &self,
        tx: &RequestTx,
        email: &str,
        client: &str,
    ) -> Result<PasswordCheck, Error> {
        let throttle = sql::login_throttle(tx, email, client, &self.limits.login).await?;
        if throttle.retry_after_secs > 0 {
            return Err(Error::RateLimited {
                retry_after_secs: throttle.retry_after_secs.unsigned_abs().into(),
            });
        }
        Ok(PasswordCheck {
            email: email.to_string(),
            client: client.to_string(),
            attempt_ids: throttle.attempt_ids,
        })
    }

    /// The password of `check` proved right: its attempt is taken back, with the
    /// earlier failures of the email from that client.
    pub async fn password_check_passed(
        &self,
        tx: &RequestTx,
        check: &PasswordCheck,
    ) -> Result<(), Error> {
        sql::clear_login_failures(tx, &check.email, &check.client, &check.attempt_ids).await
    }

    /// Forgets the throttle attempts that no window counts any more (older than the
    /// login window, and than the hour of forgot-password and registration); returns
    /// how many. The hourly job `identity.prune_attempts` (`jobs.rs`) calls it.
    pub async fn prune_attempts(&self) -> Result<u64, Error> {
        let older_than = self.limits.login.window_secs.max(HOURLY_WINDOW_SECS);
        let mut total = 0;
        loop {
            let (tx, _) = self.credentials.begin(&Scope::anonymous()).await?;
            let deleted = sql::prune_attempts(&tx, older_than, PRUNE_BATCH).await;
            let deleted = tx.finish(deleted).await?;
            total += u64::from(deleted.unsigned_abs());
            if deleted < PRUNE_BATCH {
                return Ok(total);
            }
        }
    }

    /// Unknown email and wrong password fail alike: same error, one verification each.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        tenant_id: Option<Uuid>,
        client: &str,
    ) -> Result<Session, Error> {
        // A string that is not an email cannot have an account, but still costs a
        // verification, so it cannot be told apart by time either.
        // The throttle counts per normalized email, or per raw input when it is not one.
        let key = match Email::parse(email) {
            Ok(email) => email.as_str().to_string(),
            Err(_) => email.trim().to_lowercase().chars().take(254).collect(),
        };

        let (tx, _) = self.credentials.begin(&Scope::anonymous()).await?;
        let lookup = sql::login_lookup(&tx, &key, client, &self.limits.login).await;
        let lookup = tx.finish(lookup).await?;
        if lookup.retry_after_secs > 0 {
            return Err(Error::RateLimited {
                retry_after_secs: lookup.retry_after_secs.unsigned_abs().into(),
            });
        }

        // The attempt is already recorded as a failure (login_lookup); a success takes
        // it back below.
        let verified = self
            .hasher
            .verify(password, lookup.password_hash.as_deref())
            .await?;
        let user_id = match (verified, lookup.user_id, lookup.user_status.as_deref()) {
            (true, Some(user_id), Some("active")) => user_id,
            _ => return Err(Error::InvalidCredentials),
        };

        // Authenticated: from here the user is the context, and the rest of the login
        // is one statement.
        let user_scope = Scope {
            user_id: Some(user_id),
            ..Scope::anonymous()
        };
        let family = Uuid::new_v4();
        let refresh = OpaqueToken::generate();
        let (tx, _) = self.credentials.begin(&user_scope).await?;
        let completed = sql::complete_login(
            &tx,
            &key,
            client,
            &lookup.attempt_ids,
            tenant_id,
            family,
            &refresh.hash,
            self.refresh_expiry(),
        )
        .await;
        match tx.finish(completed).await? {
            (outcome, Some(tenant_id)) if outcome == "ok" => {
                self.session(user_id, tenant_id, family, refresh.token)
            }
            (outcome, _) if outcome == "not_member" => Err(Error::NotFound),
            _ => Err(Error::TenantSuspended),
        }
    }

    /// Rotates a refresh token. A token presented twice revokes its whole family: the
    /// revocation is committed even though the answer is 401.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Session, Error> {
        if !OpaqueToken::looks_valid(refresh_token) {
            return Err(BAD_REFRESH_TOKEN);
        }
        let next = OpaqueToken::generate();
        let (tx, _) = self.credentials.begin(&Scope::anonymous()).await?;
        let rotation = async {
            sql::rotate_refresh_token(
                &tx,
                &OpaqueToken::hash_of(refresh_token),
                &next.hash,
                self.refresh_expiry(),
            )
            .await
        }
        .await;
        let rotation = tx.finish(rotation).await?;
        match (
            rotation.outcome.as_str(),
            rotation.user_id,
            rotation.tenant_id,
            rotation.family_id,
        ) {
            ("ok", Some(user), Some(tenant), Some(family)) => {
                self.session(user, tenant, family, next.token)
            }
            ("suspended", ..) => Err(Error::TenantSuspended),
            (outcome, ..) => {
                if outcome == "reused" {
                    tracing::warn!(family = ?rotation.family_id, "refresh token reused; its family is revoked");
                }
                Err(BAD_REFRESH_TOKEN)
            }
        }
    }

    /// Ends the session of the refresh token. Unknown tokens are ignored.
    pub async fn logout(&self, refresh_token: &str) -> Result<(), Error> {
        if !OpaqueToken::looks_valid(refresh_token) {
            return Ok(());
        }
        let (tx, _) = self.credentials.begin(&Scope::anonymous()).await?;
        let revoked = sql::revoke_refresh_family(&tx, &OpaqueToken::hash_of(refresh_token)).await;
        tx.finish(revoked).await
    }

    /// A token pair in another tenant the user is a member of, in the same session:
    /// the session moves (its live refresh token is used up and succeeded in the
    /// target tenant, as in a rotation), so it stays one chain: logging out, a
    /// detected reuse or a password change end it wherever it is, and a switch made
    /// with a stolen access token is caught as a reuse at the owner's next refresh.
    /// Switching to the token's own tenant is refused.
    pub async fn switch_tenant(
        &self,
        caller: &Caller,
        operation: &Operation,
        tenant_id: Uuid,
    ) -> Result<Session, Error> {
        let claims = caller.token()?;
        if tenant_id == claims.tid {
            return Err(Error::Conflict(
                "the token already acts in this tenant".into(),
            ));
        }
        if caller.store_id.is_some() {
            // As on every operation, a store named by X-Store-ID must be reachable in
            // the token's tenant (one more round trip, only when one is named); it has
            // no bearing on the new tenant's tokens.
            let (tx, _) = authorize(&self.credentials, caller, operation).await?;
            tx.rollback().await;
        }
        // The target tenant's scope, in the token's session (checked alive in the same
        // round trip).
        let scope = Scope::tenant(tenant_id, claims.sub).in_session(claims.sid);
        let (tx, access) = self.credentials.begin(&scope).await?;
        let session = async {
            if !access.session_active {
                return Err(Error::Unauthenticated);
            }
            match refusal(&access, None, operation) {
                // Not a member of the target: as if it did not exist.
                Some(Error::Unauthenticated) => Err(Error::NotFound),
                Some(error) => Err(error),
                None => {
                    let refresh = OpaqueToken::generate();
                    let expires = self.refresh_expiry();
                    if !sql::move_session_to_tenant(&tx, claims.sid, &refresh.hash, expires).await?
                    {
                        return Err(Error::Unauthenticated);
                    }
                    self.session(claims.sub, tenant_id, claims.sid, refresh.token)
                }
            }
        }
        .await;
        tx.finish(session).await
    }

    /// Always succeeds (the caller answers 202 whatever happened); the token travels
    /// by email.
    pub async fn forgot_password(&self, email: &str) -> Result<(), Error> {
        let Ok(email) = Email::parse(email) else {
            return Ok(());
        };
        let token = OpaqueToken::generate();
        let expires_at = Utc::now() + RESET_TOKEN_TTL;
        let (tx, _) = self.credentials.begin(&Scope::anonymous()).await?;
        let requested = sql::request_password_reset(
            &tx,
            email.as_str(),
            &token.token,
            &token.hash,
            expires_at,
            self.limits.forgot_max_per_hour,
        )
        .await;
        tx.finish(requested).await
    }

    /// Uses a reset token once; every session of the user ends.
    pub async fn reset_password(&self, token: &str, new_password: &str) -> Result<(), Error> {
        if !OpaqueToken::looks_valid(token) {
            return Err(Error::BadRequest("the reset token is malformed".into()));
        }
        let token_hash = OpaqueToken::hash_of(token);
        let (tx, _) = self.credentials.begin(&Scope::anonymous()).await?;
        let email = sql::password_reset_email(&tx, &token_hash).await;
        let email = tx.finish(email).await?.ok_or(BAD_RESET_TOKEN)?;
        let email = Email::parse(&email).ok();

        let mut fields = Fields::new();
        let password = fields.check(
            "new_password",
            Password::parse(new_password, email.as_ref()),
        );
        let password = fields.finish(password)?;
        let password_hash = self.hasher.hash_unauthenticated(password.expose()).await?;

        let (tx, _) = self.credentials.begin(&Scope::anonymous()).await?;
        let outcome = sql::reset_password(&tx, &token_hash, &password_hash).await;
        match tx.finish(outcome).await?.as_str() {
            "ok" => Ok(()),
            _ => Err(BAD_RESET_TOKEN),
        }
    }

    /// Changes the caller's password after checking the current one, under the login
    /// throttle of the caller's email and client (a wrong current password is a failed
    /// login; 429 before verifying while they are locked); every other session of the
    /// user ends.
    pub async fn change_password(
        &self,
        caller: &Caller,
        operation: &Operation,
        current: &str,
        new_password: &str,
        client: &str,
    ) -> Result<(), Error> {
        let claims = caller.token()?;
        let (tx, _) = authorize(&self.credentials, caller, operation).await?;
        let checked = async {
            let user = sql::user(&tx, claims.sub).await?;
            // The new password is checked first: a refused one is no failed login.
            let email = Email::parse(&user.email).ok();
            let mut fields = Fields::new();
            let password = fields.check(
                "new_password",
                Password::parse(new_password, email.as_ref()),
            );
            let password = fields.finish(password)?;
            let check = self.begin_password_check(&tx, &user.email, client).await?;
            let hash = sql::session_password_hash(&tx, claims.sid).await?;
            Ok((password, check, hash))
        }
        .await;
        let (password, check, current_hash) = tx.finish(checked).await?;

        if !self.hasher.verify(current, current_hash.as_deref()).await? {
            return Err(Error::Validation(vec![FieldError::new(
                "current_password",
                "is not the current password",
            )]));
        }
        let new_hash = self.hasher.hash(password.expose()).await?;

        let (tx, _) = authorize(&self.credentials, caller, operation).await?;
        let changed = async {
            if !sql::set_session_password(&tx, claims.sid, &new_hash).await? {
                // The session ended while the password was being hashed.
                return Err(Error::Unauthenticated);
            }
            self.password_check_passed(&tx, &check).await
        }
        .await;
        tx.finish(changed).await
    }

    pub async fn me(&self, caller: &Caller, operation: &Operation) -> Result<Me, Error> {
        let claims = caller.token()?;
        let (tx, access) = authorize(&self.db, caller, operation).await?;
        // Four independent reads, polled together: tokio-postgres pipelines them into
        // one round trip.
        let me = async {
            let (user, tenant, memberships, roles) = tokio::try_join!(
                sql::user(&tx, claims.sub),
                tenancy::tenant(&tx, claims.tid),
                sql::memberships(&tx),
                rbac::service::assignments(&tx, claims.sub),
            )?;
            Ok(Me {
                user,
                tenant,
                memberships,
                roles,
                permissions: access.held_permissions()?.to_vec(),
            })
        }
        .await;
        tx.finish(me).await
    }

    pub async fn update_me(
        &self,
        caller: &Caller,
        operation: &Operation,
        full_name: &str,
    ) -> Result<UserRow, Error> {
        let mut fields = Fields::new();
        let name = fields.check("full_name", Name::parse(full_name));
        let name = fields.finish(name)?;
        let user_id = caller.token()?.sub;
        let (tx, _) = authorize(&self.db, caller, operation).await?;
        let user = sql::update_full_name(&tx, user_id, name.as_str()).await;
        tx.finish(user).await
    }

    /// Sends the caller a new verification link (at most a few an hour; none once
    /// verified). Answered alike either way.
    pub async fn send_verification_email(
        &self,
        caller: &Caller,
        operation: &Operation,
    ) -> Result<(), Error> {
        let (tx, _) = authorize(&self.db, caller, operation).await?;
        let sent = sql::request_email_verification(&tx).await.map(|_| ());
        tx.finish(sent).await
    }

    /// Marks the token's user's address verified (single use, while they still have
    /// the address it was sent to).
    pub async fn verify_email(&self, token: &str) -> Result<(), Error> {
        if !OpaqueToken::looks_valid(token) {
            return Err(Error::BadRequest(
                "the verification token is malformed".into(),
            ));
        }
        let (tx, _) = self.credentials.begin(&Scope::anonymous()).await?;
        let verified = sql::verify_email(&tx, &OpaqueToken::hash_of(token)).await;
        match tx.finish(verified).await? {
            Some(_) => Ok(()),
            None => Err(BAD_VERIFICATION_TOKEN),
        }
    }
}

impl Identity {
    /// A user with a password and no tenant yet (the operator's `rowguard user
    /// create`): 422 naming each invalid field, 409 when the email is registered.
    /// The password is checked as registration checks it.
    pub async fn create_user_with_password(
        &self,
        email: &str,
        full_name: &str,
        password: &str,
    ) -> Result<UserRow, Error> {
        let mut fields = Fields::new();
        let parsed = Email::parse(email);
        let password = Password::parse(password, parsed.as_ref().ok());
        let email = fields.check("email", parsed);
        let password = fields.check("password", password);
        let full_name = fields.check("full_name", Name::parse(full_name));
        let (email, password, full_name) = fields.finish((email, password, full_name))?;
        let hash = self.hasher.hash(password.expose()).await?;
        let id = Uuid::new_v4();
        // The new user is the context, so that the user row is visible once made.
        let scope = Scope {
            user_id: Some(id),
            ..Scope::anonymous()
        };
        let tx = self.credentials.begin_context(&scope).await?;
        let created = async {
            self.create_user(&tx, id, email.as_str(), &full_name, &hash)
                .await?;
            sql::user(&tx, id).await
        }
        .await;
        tx.finish(created).await
    }
}
