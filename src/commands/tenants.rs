//! Tenants, as the operator: `rowguard tenant create`, `tenant seed-roles`, `tenant
//! suspend|activate`.

use std::process::ExitCode;

use uuid::Uuid;

use super::{
    Outcome::{self, Failure, Refusal},
    open, refuse,
};
use crate::{
    config::{TenantCommand, TenantCreateArgs},
    error::Error,
    modules::{self, AppState, rbac, tenancy},
    platform::{
        db::{self, Scope},
        domain::Name,
    },
};

pub async fn run(command: TenantCommand) -> anyhow::Result<ExitCode> {
    let (state, _target) = open(&command.database().settings()).await?;
    let outcome = match &command {
        TenantCommand::Create(args) => create(&state, args).await,
        TenantCommand::SeedRoles { id, .. } => seed_roles(&state, *id).await,
        TenantCommand::Suspend { id, .. } => set_status(&state, *id, "suspended").await,
        TenantCommand::Activate { id, .. } => set_status(&state, *id, "active").await,
    };
    match outcome {
        Ok(done) => {
            println!("{done}");
            Ok(ExitCode::SUCCESS)
        }
        Err(Refusal(why)) => refuse(why),
        Err(Failure(error)) => Err(anyhow::anyhow!("{error}")),
    }
}

/// A tenant founded as registration founds one, with an existing user as its Owner:
/// in the new tenant's context, on the credential flows' pool (as registration).
async fn create(state: &AppState, args: &TenantCreateArgs) -> Result<String, Outcome> {
    let plan = args
        .plan
        .clone()
        .unwrap_or_else(|| state.identity.limits.default_plan.clone());
    if !modules::subscriptions::plan_exists(&state.db, &plan).await? {
        return Err(Refusal(format!(
            "there is no plan {plan} (GET /api/v1/plans lists them)"
        )));
    }
    let name = Name::parse(&args.name).map_err(|why| Refusal(format!("name: {why}")))?;
    let id = Uuid::new_v4();
    let tx = state
        .identity
        .credentials
        .begin_context(&Scope::tenant(id, args.owner))
        .await?;
    let founded = tenancy::found(
        &tx,
        id,
        name.as_str(),
        args.owner,
        &plan,
        chrono::Utc::now(),
    )
    .await
    .map_err(|error| {
        // The tenant's row names its creator first, then the membership the owner.
        let no_user = || Error::Conflict(format!("there is no user {}", args.owner));
        error
            .on_constraint("tenants_created_by_fkey", no_user)
            .on_constraint("tenant_users_user_id_fkey", no_user)
    });
    let tenant = tx.finish(founded).await?;
    Ok(format!(
        "created tenant {} ({}) on plan {plan}, owned by user {}",
        tenant.name, tenant.id, args.owner
    ))
}

/// The system roles and default permissions a tenant lacks, restored in its context.
async fn seed_roles(state: &AppState, id: Uuid) -> Result<String, Outcome> {
    let scope = Scope {
        tenant_id: Some(id),
        ..Scope::anonymous()
    };
    let tx = state.identity.credentials.begin_context(&scope).await?;
    let restored = async {
        tenancy::tenant(&tx, id).await?;
        rbac::service::restore_system_roles(&tx).await
    }
    .await;
    match tx.finish(restored).await {
        Err(Error::NotFound) => Err(Refusal(format!("no tenant {id}"))),
        Err(error) => Err(error.into()),
        Ok(restored) => Ok(format!(
            "tenant {id}: {}; {} default permission grant(s) restored",
            if restored.roles.is_empty() {
                "no system role was missing".to_string()
            } else {
                format!("restored the system roles {}", restored.roles.join(", "))
            },
            restored.grants
        )),
    }
}

/// `tenant suspend|activate <id>`: through `app.set_tenant_status` on the machinery's
/// role (`rowguard_auth`), the operator's; no request role can call it.
async fn set_status(state: &AppState, id: Uuid, status: &str) -> Result<String, Outcome> {
    let tx = state
        .identity
        .credentials
        .begin_context(&db::Scope::anonymous())
        .await?;
    let set = async {
        let statement = tx.prepare("SELECT app.set_tenant_status($1, $2)").await?;
        let found: bool = tx
            .query_one(&statement, &[&id, &status])
            .await?
            .try_get(0)?;
        Ok::<_, Error>(found)
    }
    .await;
    if tx.finish(set).await? {
        Ok(format!("tenant {id} is {status}"))
    } else {
        Err(Refusal(format!("no tenant {id}")))
    }
}
