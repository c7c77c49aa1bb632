//! Authorization of a request, in the round trip that opens its transaction.
//!
//! Every operation declares what it requires as an [`Operation`] constant, one line
//! next to its route (`const STORES_LIST: Operation = Operation::permission(...)`).
//! The verified token says who and in which tenant; the opening statement
//! (`src/platform/db/begin_request.sql`) then says, in the same statement that sets the
//! context, whether that still holds (tenant active, membership active), whether the
//! store named by `X-Store-ID` is reachable, and whether the declared permission is
//! held. A removed or suspended member is refused on their next request, not when
//! their token expires. The declarations are also published in the OpenAPI document
//! as `x-permission`, with the `X-Store-ID` header on every operation that reads it
//! (see `modules::spec_json`).

use uuid::Uuid;

use super::{Caller, Credential};
use crate::{
    error::Error,
    platform::db::{Access, Database, RequestTx, Scope},
};

/// What an operation requires of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requires {
    /// No credentials (login, registration, health).
    Public,
    /// Any active member of the token's tenant (the caller's own profile).
    Member,
    /// This permission, tenant-wide or through a role in the store of `X-Store-ID`.
    Permission(&'static str),
    /// This permission tenant-wide or in at least one store: lists that a store-scoped
    /// user sees part of.
    PermissionInSomeStore(&'static str),
    /// An active member who is a platform admin (`users.is_platform_admin`): the
    /// operator routes `/platform/*`. Refused with 403 `forbidden` naming
    /// [`PLATFORM_ADMIN`].
    PlatformAdmin,
}

/// What a refused platform route names as missing.
pub const PLATFORM_ADMIN: &str = "platform_admin";

/// An operation's declaration: its `operationId` and what it requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    pub id: &'static str,
    pub requires: Requires,
    /// The handler reads the caller's effective permissions (to check that what it
    /// grants is held, or to show them): the opening statement lists them only then.
    pub reads_held_permissions: bool,
    /// Store-scoped: `X-Store-ID` is required (400 without it), and the store is the
    /// context that store-scoped tables' policies filter by.
    pub requires_store: bool,
    /// Roles scoped to the store of `X-Store-ID` count toward the permission (and the
    /// held permissions). Only for operations that act in that store: elsewhere a role
    /// held in one store must not act tenant-wide because the request names the store.
    pub store_grants: bool,
    /// The error statuses the operation returns beyond those that follow from how it
    /// is called (see [`Operation::error_statuses`]): 409 for a write that can
    /// conflict, 401 for a public operation that checks a credential, ...
    pub also_returns: &'static [u16],
    /// The feature of the tenant's plan the operation needs (`inventory`, ...): 403
    /// `feature_not_in_plan` without it. Checked by the opening statement.
    pub feature: Option<&'static str>,
    /// The plan limit the operation creates a row of (`stores`, `members`, `products`):
    /// its SQL checks the limit in the creating transaction
    /// (`app.within_plan_limit`, 403 `limit_exceeded`); declared here so that the
    /// OpenAPI document says so and an unpaid subscription refuses it.
    pub limit: Option<&'static str>,
    /// Only a person's access token may call it, never an API key (`/api-keys*`: a
    /// key must not mint or revoke keys). 401 `unauthenticated` for a key. (`/auth/*`
    /// and `/me*` refuse keys by reading the caller's token, `Caller::token`.)
    pub people_only: bool,
}

impl Operation {
    pub const fn public(id: &'static str) -> Operation {
        Operation {
            id,
            requires: Requires::Public,
            reads_held_permissions: false,
            requires_store: false,
            store_grants: false,
            also_returns: &[],
            feature: None,
            limit: None,
            people_only: false,
        }
    }

    pub const fn member(id: &'static str) -> Operation {
        Operation {
            id,
            requires: Requires::Member,
            reads_held_permissions: false,
            requires_store: false,
            store_grants: false,
            also_returns: &[],
            feature: None,
            limit: None,
            people_only: false,
        }
    }

    pub const fn permission(id: &'static str, permission: &'static str) -> Operation {
        Operation {
            id,
            requires: Requires::Permission(permission),
            reads_held_permissions: false,
            requires_store: false,
            store_grants: false,
            also_returns: &[],
            feature: None,
            limit: None,
            people_only: false,
        }
    }

    /// The operator's powers are a person's: a platform admin's API key acts in their
    /// tenant, never as the operator (`people_only`).
    pub const fn platform_admin(id: &'static str) -> Operation {
        Operation {
            id,
            requires: Requires::PlatformAdmin,
            reads_held_permissions: false,
            requires_store: false,
            store_grants: false,
            also_returns: &[],
            feature: None,
            limit: None,
            people_only: true,
        }
    }

    pub const fn permission_in_some_store(id: &'static str, permission: &'static str) -> Operation {
        Operation {
            id,
            requires: Requires::PermissionInSomeStore(permission),
            reads_held_permissions: false,
            requires_store: false,
            store_grants: false,
            also_returns: &[],
            feature: None,
            limit: None,
            people_only: false,
        }
    }

    /// See [`Operation::reads_held_permissions`].
    pub const fn reading_held_permissions(self) -> Operation {
        Operation {
            reads_held_permissions: true,
            ..self
        }
    }

    /// See [`Operation::requires_store`]; roles of that store count.
    pub const fn in_store(self) -> Operation {
        Operation {
            requires_store: true,
            store_grants: true,
            ..self
        }
    }

    /// See [`Operation::store_grants`], for an operation where the store is optional
    /// (`GET /me`: the permissions effective in the store named, if any).
    pub const fn with_store_grants(self) -> Operation {
        Operation {
            store_grants: true,
            ..self
        }
    }

    /// See [`Operation::feature`]: one of the feature codes of
    /// `catalog::FEATURE_CODES`.
    pub const fn feature(self, feature: &'static str) -> Operation {
        Operation {
            feature: Some(feature),
            ..self
        }
    }

    /// See [`Operation::people_only`].
    pub const fn for_people_only(self) -> Operation {
        Operation {
            people_only: true,
            ..self
        }
    }

    /// See [`Operation::limit`]: one of the limit codes of `catalog::LIMIT_CODES`.
    pub const fn limited_by(self, limit: &'static str) -> Operation {
        Operation {
            limit: Some(limit),
            ..self
        }
    }

    /// Gated by the plan: it declares a feature or creates a limited thing, so an
    /// unpaid subscription refuses it (402 `payment_required`).
    pub fn gated(&self) -> bool {
        self.feature.is_some() || self.limit.is_some()
    }

    /// See [`Operation::also_returns`].
    pub const fn returning(self, statuses: &'static [u16]) -> Operation {
        Operation {
            also_returns: statuses,
            ..self
        }
    }

    /// Every error status the operation can answer with, given whether it takes path
    /// or query parameters and a body: 500 and 503 always; with a bearer token, 400 (a
    /// malformed `X-Store-ID`), 401 and 403; with parameters 400, and 404 when one is
    /// in the path; with a body 400, 413, 415 and 422; 402 when gated by the plan; and
    /// [`Operation::also_returns`].
    pub fn error_statuses(
        &self,
        path_parameters: bool,
        query_parameters: bool,
        body: bool,
    ) -> Vec<u16> {
        let mut statuses = vec![500, 503];
        if self.takes_bearer() {
            statuses.extend([400, 401, 403]);
        }
        if path_parameters || query_parameters {
            statuses.push(400);
        }
        if path_parameters {
            statuses.push(404);
        }
        if body {
            statuses.extend([400, 413, 415, 422]);
        }
        if self.gated() {
            statuses.push(402);
        }
        statuses.extend(self.also_returns);
        statuses.sort_unstable();
        statuses.dedup();
        statuses
    }

    /// Whether a bearer token is required (everything but public operations).
    pub fn takes_bearer(&self) -> bool {
        self.requires != Requires::Public
    }

    /// The permission code, if the operation requires one.
    pub fn permission_code(&self) -> Option<&'static str> {
        match self.requires {
            Requires::Permission(code) | Requires::PermissionInSomeStore(code) => Some(code),
            Requires::Public | Requires::Member | Requires::PlatformAdmin => None,
        }
    }
}

/// Opens the request transaction for an authenticated caller of `operation`, in the
/// store the caller named (`X-Store-ID`), or refuses with the matching error.
pub async fn authorize(
    db: &Database,
    caller: &Caller,
    operation: &Operation,
) -> Result<(RequestTx, Access), Error> {
    if operation.requires_store && caller.store_id.is_none() {
        return Err(Error::BadRequest(
            "the X-Store-ID header is required".into(),
        ));
    }
    begin_checked(db, caller, caller.store_id, operation).await
}

async fn begin_checked(
    db: &Database,
    caller: &Caller,
    store_id: Option<Uuid>,
    operation: &Operation,
) -> Result<(RequestTx, Access), Error> {
    if operation.people_only {
        caller.token()?;
    }
    let grant_store = store_id.filter(|_| operation.store_grants);
    let (tx, access) = db
        .begin(&scope(caller, store_id, grant_store, operation))
        .await?;
    if matches!(caller.credential, Credential::ApiKey(_)) {
        // A token's caller is named by the bearer scheme; a key's only now.
        crate::telemetry::record_principal(access.tenant_id, access.user_id);
    }
    let refused = match caller_refusal(caller, &access, store_id, operation) {
        None if operation.requires == Requires::PlatformAdmin => platform_admin_refusal(&tx).await,
        other => other,
    };
    match refused {
        None => Ok((tx, access)),
        Some(error) => {
            tx.rollback().await;
            Err(error)
        }
    }
}

/// One more statement, only on the operator routes: whether the caller is a platform
/// admin (the functions those routes call check it again themselves).
async fn platform_admin_refusal(tx: &RequestTx) -> Option<Error> {
    let answer = async {
        let statement = tx
            .prepare("SELECT app.current_user_is_platform_admin()")
            .await?;
        let admin: bool = tx.query_one(&statement, &[]).await?.try_get(0)?;
        Ok::<_, Error>(admin)
    }
    .await;
    match answer {
        Ok(true) => None,
        Ok(false) => Some(Error::Forbidden {
            permission: PLATFORM_ADMIN.to_string(),
        }),
        Err(error) => Some(error),
    }
}

/// For operations on a store named in the path (`/stores/{id}/...`): a permission held
/// tenant-wide suffices, as for any operation; otherwise the grants of roles scoped to
/// that very store count (a Store Manager manages their own store). A store the caller
/// cannot reach is not found, like any resource of another tenant. The path's store is
/// the one acted on; an `X-Store-ID` naming another store must still be reachable, as
/// on every operation, but grants nothing here.
pub async fn authorize_for_store(
    db: &Database,
    caller: &Caller,
    store_id: Uuid,
    operation: &Operation,
) -> Result<(RequestTx, Access), Error> {
    if let Some(named) = caller.store_id.filter(|named| *named != store_id) {
        // One more round trip, only for a request that names two stores.
        let (tx, _) =
            begin_checked(db, caller, Some(named), &Operation::member(operation.id)).await?;
        tx.rollback().await;
    }
    let tenant_wide = begin_checked(db, caller, None, operation).await;
    match tenant_wide {
        Err(Error::Forbidden { .. }) => {}
        other => return other,
    }
    // Held in no tenant-wide role: try the store's own (one more round trip, only for
    // store-scoped users).
    let scope = scope(caller, Some(store_id), Some(store_id), operation);
    let (tx, access) = db.begin(&scope).await?;
    let refused = match caller_refusal(caller, &access, None, operation) {
        // Membership and tenant problems first, then a store out of reach (not found,
        // whatever the permission), then the permission itself.
        Some(error @ (Error::Unauthenticated | Error::TenantSuspended)) => Some(error),
        _ if !access.store_accessible => Some(Error::NotFound),
        other => other,
    };
    match refused {
        None => Ok((tx, access)),
        Some(error) => {
            tx.rollback().await;
            Err(error)
        }
    }
}

/// The token's user in the token's tenant and session (or the key, whose row says
/// both), asking what `operation` requires, with roles of `grant_store` counting (see
/// [`Scope::grant_store_id`]).
fn scope(
    caller: &Caller,
    store_id: Option<Uuid>,
    grant_store: Option<Uuid>,
    operation: &Operation,
) -> Scope {
    let (tenant_id, user_id, session_id, api_key) = match &caller.credential {
        Credential::Token(claims) => (Some(claims.tid), Some(claims.sub), Some(claims.sid), None),
        Credential::ApiKey(key) => (None, None, None, Some(key.key.clone())),
    };
    Scope {
        tenant_id,
        user_id,
        store_id,
        grant_store_id: grant_store,
        permission: operation.permission_code(),
        with_permissions: operation.reads_held_permissions,
        session_id,
        feature: operation.feature,
        gated: operation.gated(),
        api_key,
    }
}

/// [`refusal`], for the caller's credential. A key acts as its creator: a key whose
/// creator is no longer an active member (removed, or suspended in the tenant) is
/// no credential at all (401), where the creator's own token would be told
/// `tenant_suspended`. A suspended tenant is still 403 `tenant_suspended`. A key's
/// request counts on the usage meter for the key's tenant once that is known.
fn caller_refusal(
    caller: &Caller,
    access: &Access,
    store_id: Option<Uuid>,
    operation: &Operation,
) -> Option<Error> {
    if let Credential::ApiKey(key) = &caller.credential {
        let Some(tenant) = access.tenant_id else {
            return Some(Error::Unauthenticated);
        };
        key.count(tenant);
        if access.member_status.as_deref() != Some("active") {
            return Some(Error::Unauthenticated);
        }
    }
    refusal(access, store_id, operation)
}

/// What the opening statement's answers mean for `operation`, or `None` when it may
/// proceed. Public so that flows opening their own scope (switching tenant) refuse
/// the same way.
pub fn refusal(access: &Access, store_id: Option<Uuid>, operation: &Operation) -> Option<Error> {
    // Logged out, reset, changed, or revoked for reuse: the token ended with its session.
    if !access.session_active {
        return Some(Error::Unauthenticated);
    }
    match access.member_status.as_deref() {
        // Removed from the tenant (or the tenant is gone): the token no longer holds.
        None => return Some(Error::Unauthenticated),
        Some("active") if access.tenant_active => {}
        Some(_) => return Some(Error::TenantSuspended),
    }
    if store_id.is_some() && !access.store_accessible {
        return Some(Error::StoreAccessDenied);
    }
    let granted = match operation.requires {
        Requires::Public | Requires::Member | Requires::PlatformAdmin => true,
        Requires::Permission(_) => access.permission_granted,
        Requires::PermissionInSomeStore(_) => access.permission_in_some_store,
    };
    if let Some(permission) = operation.permission_code().filter(|_| !granted) {
        return Some(Error::Forbidden {
            permission: permission.to_string(),
        });
    }
    // Who may act first, then what the tenant pays for: a plan without the feature
    // is refused whatever the subscription's state (paying would not add it), then an
    // unpaid subscription refuses every gated operation.
    if let Some(feature) = operation.feature.filter(|_| !access.feature_in_plan) {
        return Some(Error::FeatureNotInPlan {
            feature: feature.to_string(),
        });
    }
    if access.payment_required {
        return Some(Error::PaymentRequired);
    }
    None
}
