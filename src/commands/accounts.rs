//! People, as the operator: `rowguard bootstrap` (the first user), `rowguard user
//! create` and `rowguard user assign-role`.

use std::process::ExitCode;

use serde_json::json;

use super::{
    Outcome::{self, Failure, Refusal},
    explain, open, prompt, refuse,
};
use crate::{
    config::{AssignRoleArgs, BootstrapArgs, UserCreateArgs},
    error::Error,
    modules::{
        audit::{self, Action, Event, Target},
        identity::service::{Identity, NewAccount},
        rbac, stores, tenancy,
    },
    platform::{
        auth::OpaqueToken,
        db::{RequestTx, Scope},
    },
};

/// `rowguard bootstrap --email ... --tenant ...`: the first user, as the HTTP
/// bootstrap would create them, without a running server.
pub async fn bootstrap(args: &BootstrapArgs) -> anyhow::Result<ExitCode> {
    let (state, _target) = open(&args.database.settings()).await?;
    let (password, generated) = match &args.password {
        Some(password) => (password.clone(), false),
        None => (OpaqueToken::generate().token, true),
    };
    let account = NewAccount {
        email: &args.email,
        password: &password,
        full_name: &args.full_name,
        tenant_name: &args.tenant,
        plan_code: None,
    };
    match state.identity.bootstrap(account).await {
        Ok((user, tenant, _session)) => {
            println!(
                "created platform admin {} ({}) in tenant {} ({})",
                user.email, user.id, tenant.name, tenant.id
            );
            if generated {
                println!("generated password (shown once): {password}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(Error::BootstrapClosed) => refuse("bootstrap is closed: a user already exists"),
        Err(error) => match explain(&error) {
            Some(why) => refuse(why),
            None => Err(anyhow::anyhow!("bootstrap failed: {error}")),
        },
    }
}

/// `rowguard user create --email ... --full-name ...`: a user with no tenant yet
/// (`rowguard user assign-role` or `tenant create --owner` gives them one); the
/// password from ROWGUARD_USER_PASSWORD or the terminal.
pub async fn create_user(args: &UserCreateArgs) -> anyhow::Result<ExitCode> {
    // Asked before the database is opened: a refusal costs nothing.
    let password = prompt::password("ROWGUARD_USER_PASSWORD", &args.email)?;
    let (state, _target) = open(&args.database.settings()).await?;
    match state
        .identity
        .create_user_with_password(&args.email, &args.full_name, &password)
        .await
    {
        Ok(user) => {
            println!("created user {} ({})", user.email, user.id);
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => match explain(&error) {
            Some(why) => refuse(format!("user not created: {why}")),
            None => Err(anyhow::anyhow!("creating the user failed: {error}")),
        },
    }
}

/// `rowguard user assign-role --user ID --tenant ID --role NAME [--store ID]`.
pub async fn assign_role(args: &AssignRoleArgs) -> anyhow::Result<ExitCode> {
    let (state, _target) = open(&args.database.settings()).await?;
    match assign(&state.identity, args).await {
        Ok(joined) => {
            println!(
                "user {} {}holds {} in tenant {}{}",
                args.user,
                if joined { "is now a member and " } else { "" },
                args.role,
                args.tenant,
                args.store
                    .map(|store| format!(", in store {store}"))
                    .unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(Refusal(why)) => refuse(why),
        Err(Failure(error)) => Err(anyhow::anyhow!("assigning the role failed: {error}")),
    }
}

/// In the tenant's context with no acting user (the operator is nobody the tenant
/// knows: the audit event has no actor), under its row-level security, on the
/// credential flows' pool, which may add members as accepting an invitation does.
/// Whether the user joined the tenant.
async fn assign(identity: &Identity, args: &AssignRoleArgs) -> Result<bool, Outcome> {
    let scope = Scope {
        tenant_id: Some(args.tenant),
        ..Scope::anonymous()
    };
    let tx = identity.credentials.begin_context(&scope).await?;
    let result = assign_in(&tx, args).await;
    match result {
        Ok(joined) => {
            tx.commit().await?;
            Ok(joined)
        }
        Err(outcome) => {
            tx.rollback().await;
            Err(outcome)
        }
    }
}

async fn assign_in(tx: &RequestTx, args: &AssignRoleArgs) -> Result<bool, Outcome> {
    match tenancy::tenant(tx, args.tenant).await {
        Err(Error::NotFound) => return Err(Refusal(format!("no tenant {}", args.tenant))),
        other => other?,
    };
    let role = match rbac::service::role_named(tx, &args.role).await {
        Err(Error::NotFound) => {
            return Err(Refusal(format!(
                "tenant {} has no role named {:?} (`rowguard tenant seed-roles {}` restores \
                 the system roles)",
                args.tenant, args.role, args.tenant
            )));
        }
        other => other?,
    };
    if let Some(store) = args.store
        && !stores::exists(tx, store).await?
    {
        return Err(Refusal(format!(
            "tenant {} has no store {store}",
            args.tenant
        )));
    }
    let joined = match tenancy::member(tx, args.user).await {
        Ok(_) => false,
        Err(Error::NotFound) => {
            tenancy::add_member(tx, args.user).await.map_err(|error| {
                error.on_constraint("tenant_users_user_id_fkey", || {
                    Error::Conflict(format!("there is no user {}", args.user))
                })
            })?;
            true
        }
        Err(error) => return Err(error.into()),
    };
    let assignment = rbac::service::assign_role(tx, args.user, role.id, args.store).await?;
    audit::record(
        tx,
        Event {
            action: Action::RoleAssigned,
            target_type: Target::User,
            target_id: Some(args.user),
            store_id: args.store,
            details: json!({"after": {"assignment_id": assignment, "role_id": role.id, "role": role.name}, "by": "rowguard user assign-role"}),
        },
    )
    .await?;
    Ok(joined)
}
