//! The feature modules, and the registry that mounts them: each module's OpenAPI
//! operations, their declarations (what each requires), and later their jobs. A
//! module is a folder here (`api` for HTTP, `db` for its SQL, private to it; `service`
//! for rules that span transactions or other modules' tables) plus one line in each
//! list below. Modules use each other only through what a module's `mod.rs` makes
//! public, never each other's SQL; the platform layer (`crate::platform`) uses none.

pub mod api_keys;
pub mod audit;
pub mod billing;
pub mod health;
pub mod identity;
pub mod notifications;
pub mod onboarding;
pub mod payments;
pub mod platform_admin;
pub mod products;
pub mod rbac;
pub mod stores;
pub mod subscriptions;
pub mod tenancy;
pub mod tenant_lifecycle;
pub mod usage;

use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::{OpenApiService, Tags};
use serde_json::{Value, json};

use crate::config::Settings;
use crate::platform::{
    auth::access::{Operation, Requires},
    db::Database,
    email::Mailer,
    http::{
        console,
        cors::{CorsLayer, CorsOrigins},
        edge::Edge,
        edge_stack_with,
        params::NameParameters,
        security::STORE_HEADER,
    },
    jobs::{Queue, Registry},
    metering::Meter,
    metrics::Metrics,
};
use identity::service::Identity;

#[derive(Tags)]
pub enum Tag {
    /// Liveness and readiness.
    Health,
    /// Registration, login, tokens, password reset.
    Auth,
    /// The caller.
    Me,
    /// The current tenant, its members and invitations.
    Tenancy,
    /// A tenant's stores.
    Stores,
    /// Permissions, roles and role assignments.
    Rbac,
    /// The reference feature module: products and store inventory.
    Products,
    /// Who changed what.
    Audit,
    /// Plans and subscriptions.
    Subscriptions,
    /// Invoices.
    Billing,
    /// Paying invoices by M-Pesa.
    Payments,
    /// Operators' routes: platform admins only.
    Platform,
    /// The caller's in-app notifications.
    Notifications,
    /// What the tenant uses of its plan's limits, per period.
    Usage,
    /// Credentials for integrations, acting as their creator.
    ApiKeys,
}

/// Everything the handlers need; each module takes what its `XxxApi`s hold.
#[derive(Clone)]
pub struct AppState {
    pub db: Database,
    pub identity: Identity,
    /// Sends email (SMTP, or the log without `ROWGUARD_SMTP_URL`); the `email.send`
    /// job uses it.
    pub mailer: Mailer,
    /// `ROWGUARD_PUBLIC_URL`: the base of links in emails.
    pub public_url: String,
    /// The job queue's machinery (as `rowguard_auth`): the operator routes read it.
    pub queue: Queue,
    /// `ROWGUARD_BILLING_GRACE_DAYS`: how long a subscription is `past_due` before it
    /// is `unpaid`.
    pub billing_grace: chrono::TimeDelta,
    /// This process's count of API requests per tenant, flushed on the machinery's
    /// pool (the bearer scheme counts on it: it is attached to the routes).
    pub meter: Meter,
    /// The payment gateway (Daraja, or a refusal without `ROWGUARD_MPESA_*`) and the
    /// callback's settings.
    pub payments: payments::Payments,
    /// `ROWGUARD_TENANT_PURGE_DAYS`: from a tenant's deletion to its purge.
    pub tenant_purge_after: chrono::TimeDelta,
    /// `ROWGUARD_MAX_TENANTS_PER_USER`.
    pub max_tenants_per_user: i64,
    /// `ROWGUARD_CORS_ORIGINS` and `ROWGUARD_CORS_ALLOW_CREDENTIALS`: which other
    /// origins' pages may call the API.
    pub cors: (CorsOrigins, bool),
    /// What the edge counts (`ROWGUARD_METRICS_BIND`; off without it).
    pub metrics: Metrics,
}

impl AppState {
    /// The state of a server or worker with `settings` (the mailer is built here:
    /// a bad SMTP URL or sender stops start-up).
    pub fn new(
        db: Database,
        identity: Identity,
        queue: Queue,
        settings: &Settings,
    ) -> anyhow::Result<AppState> {
        Ok(AppState {
            db,
            identity,
            mailer: Mailer::from_settings(settings)?,
            public_url: settings.public_url().to_string(),
            meter: Meter::new(queue.machinery().clone())?,
            queue,
            billing_grace: chrono::TimeDelta::days(i64::from(settings.billing_grace_days)),
            payments: payments::Payments::from_settings(settings)?,
            tenant_purge_after: chrono::TimeDelta::days(i64::from(settings.tenant_purge_days)),
            max_tenants_per_user: i64::from(settings.max_tenants_per_user),
            cors: (
                settings.cors_origins.clone(),
                settings.cors_allow_credentials,
            ),
            metrics: if settings.metrics_bind.is_some() {
                Metrics::new()?
            } else {
                Metrics::off()
            },
        })
    }
}

/// Every module's operations: one member per module (each a tuple of its own
/// `XxxApi`s), so the 16-member limit of poem-openapi's tuples is per module.
type Apis = (
    health::Api,
    identity::Api,
    tenancy::Api,
    stores::Api,
    rbac::Api,
    products::Api,
    audit::Api,
    notifications::Api,
    platform_admin::Api,
    subscriptions::Api,
    onboarding::Api,
    billing::Api,
    usage::Api,
    payments::Api,
    api_keys::Api,
    tenant_lifecycle::Api,
);

pub fn openapi_service(state: &AppState) -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            health::api(state),
            identity::api(state),
            tenancy::api(state),
            stores::api(state),
            rbac::api(state),
            products::api(state),
            audit::api(state),
            notifications::api(state),
            platform_admin::api(state),
            subscriptions::api(state),
            onboarding::api(state),
            billing::api(state),
            usage::api(state),
            payments::api(state),
            api_keys::api(state),
            tenant_lifecycle::api(state),
        ),
        "rowguard",
        env!("CARGO_PKG_VERSION"),
    )
    // The API is served where the document is: generated clients take a base URL.
    .server("/")
    .description(
        "The multi-tenant, multi-store core of a SaaS backend: identity, tenancy, \
         role-based access control, with PostgreSQL row-level security as the tenant filter. \
         Each operation's required permission is in its `x-permission` extension.",
    )
}

/// Every module's job kinds (see `platform::jobs`), as the workers run them.
pub fn jobs(state: &AppState) -> Registry {
    Registry::new(
        [
            crate::platform::jobs::kinds(),
            identity::jobs(state),
            notifications::jobs(state),
            billing::jobs(state),
            usage::jobs(state),
            payments::jobs(state),
            tenant_lifecycle::jobs(state),
        ]
        .concat(),
    )
}

/// Every operation's declaration (see `platform::auth::access`), from each module.
pub fn operations() -> Vec<Operation> {
    [
        health::OPERATIONS,
        identity::OPERATIONS,
        tenancy::OPERATIONS,
        stores::OPERATIONS,
        rbac::OPERATIONS,
        products::OPERATIONS,
        audit::OPERATIONS,
        notifications::OPERATIONS,
        platform_admin::OPERATIONS,
        subscriptions::OPERATIONS,
        onboarding::OPERATIONS,
        billing::OPERATIONS,
        usage::OPERATIONS,
        payments::OPERATIONS,
        api_keys::OPERATIONS,
        tenant_lifecycle::OPERATIONS,
    ]
    .concat()
    .concat()
}

/// The OpenAPI document, completed from each operation's declaration: the required
/// permission as `x-permission` and in the description, `security: []` on public
/// operations, the `X-Store-ID` header on every operation that reads it (all that
/// take a bearer token; required on store-scoped ones), and only the error statuses
/// the operation can answer with (`Operation::error_statuses`; every operation's
/// `ApiError` lists them all). Response headers get their standard casing
/// (poem-openapi upper-cases them).
pub fn spec_json(service: &OpenApiService<Apis, ()>) -> String {
    let declared = operations();
    let mut spec: Value = match serde_json::from_str(&service.spec()) {
        Ok(spec) => spec,
        Err(_) => return service.spec(),
    };
    if let Some(paths) = spec.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for operation in item.values_mut().filter_map(Value::as_object_mut) {
                let id = operation
                    .get("operationId")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if let Some(declaration) = declared.iter().find(|d| d.id == id) {
                    complete_operation(operation, declaration);
                }
            }
        }
    }
    let enums: serde_json::Map<String, Value> = spec
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .map(|schemas| {
            schemas
                .iter()
                .filter(|(_, schema)| schema.get("enum").is_some())
                .map(|(name, schema)| (format!("#/components/schemas/{name}"), schema.clone()))
                .collect()
        })
        .unwrap_or_default();
    inline_enum_refs(&mut spec, &enums);
    // An enum every use of which was inlined is a schema nobody refers to: generators
    // warn about it, and it names nothing a client can meet.
    let text = spec.to_string();
    let unused: Vec<String> = enums
        .keys()
        .filter(|reference| !text.contains(&format!("\"{reference}\"")))
        .filter_map(|reference| reference.strip_prefix("#/components/schemas/"))
        .map(str::to_string)
        .collect();
    if let Some(schemas) = spec
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for name in &unused {
            schemas.remove(name);
        }
    }
    serde_json::to_string_pretty(&spec).unwrap_or_else(|_| service.spec())
}

/// poem-openapi gives a property that refers to a schema and says more (a
/// description, `nullable`) as `allOf: [{$ref}, {...}]`; generators cannot take the
/// `allOf` of an enum (openapi-python-client drops the whole object). Such a property
/// gets the enum inline, with what it says.
fn inline_enum_refs(value: &mut Value, enums: &serde_json::Map<String, Value>) {
    match value {
        Value::Object(object) => {
            let referenced = object
                .get("allOf")
                .and_then(Value::as_array)
                .and_then(|parts| {
                    parts
                        .iter()
                        .find_map(|part| enums.get(part.get("$ref")?.as_str()?))
                })
                .cloned();
            if let Some(Value::Object(mut inline)) = referenced {
                let parts = object.remove("allOf");
                let extras = parts
                    .iter()
                    .flat_map(|parts| parts.as_array().into_iter().flatten());
                for extra in extras.filter_map(Value::as_object) {
                    inline.extend(
                        extra
                            .iter()
                            .filter(|(key, _)| *key != "$ref")
                            .map(|(k, v)| (k.clone(), v.clone())),
                    );
                }
                inline.extend(std::mem::take(object));
                inline.remove("title");
                *object = inline;
            }
            object.values_mut().for_each(|v| inline_enum_refs(v, enums));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| inline_enum_refs(v, enums)),
        _ => {}
    }
}

fn complete_operation(operation: &mut serde_json::Map<String, Value>, declared: &Operation) {
    let has_parameter = |place: &str| {
        operation
            .get("parameters")
            .and_then(Value::as_array)
            .is_some_and(|parameters| parameters.iter().any(|p| p["in"] == place))
    };
    let statuses = declared.error_statuses(
        has_parameter("path"),
        has_parameter("query"),
        operation.contains_key("requestBody"),
    );
    if let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    {
        responses.retain(|status, _| match status.parse::<u16>() {
            Ok(status) if status >= 400 => statuses.contains(&status),
            _ => true,
        });
        for response in responses.values_mut() {
            if let Some(headers) = response.get_mut("headers").and_then(Value::as_object_mut) {
                *headers = std::mem::take(headers)
                    .into_iter()
                    .map(|(name, header)| (standard_header_name(&name), header))
                    .collect();
            }
        }
    }
    let requirement = match declared.requires {
        Requires::Public => {
            operation.insert("security".into(), json!([]));
            "Public: no credentials.".to_string()
        }
        Requires::Member => "Any active member of the token's tenant.".to_string(),
        Requires::PlatformAdmin => {
            "Platform admins only (users with `is_platform_admin`); anyone else 403 `forbidden`."
                .to_string()
        }
        Requires::Permission(code) if declared.store_grants => format!(
            "Requires the permission `{code}`, held tenant-wide or through a role in the \
             store of `{STORE_HEADER}`."
        ),
        Requires::Permission(code) => {
            format!("Requires the permission `{code}`, held through a tenant-wide role.")
        }
        Requires::PermissionInSomeStore(code) => format!(
            "Requires the permission `{code}`, held tenant-wide or in at least one store \
             (a store-scoped user sees their stores' part)."
        ),
    };
    if let Some(code) = declared.permission_code() {
        operation.insert("x-permission".into(), code.into());
    }
    if declared.requires == Requires::PlatformAdmin {
        operation.insert("x-platform-admin".into(), true.into());
    }
    let mut requirement = requirement;
    if let Some(feature) = declared.feature {
        operation.insert("x-feature".into(), feature.into());
        requirement.push_str(&format!(
            " The tenant's plan must include the feature `{feature}` \
             (403 `feature_not_in_plan` otherwise)."
        ));
    }
    if let Some(limit) = declared.limit {
        operation.insert("x-limit".into(), limit.into());
        requirement.push_str(&format!(
            " Creates one of the plan's `{limit}`: beyond the plan's limit, 403 \
             `limit_exceeded`."
        ));
    }
    if declared.gated() {
        requirement.push_str(" An unpaid subscription answers 402 `payment_required`.");
    }
    if declared.people_only {
        operation.insert("x-api-keys".into(), false.into());
        requirement.push_str(" A person's access token only: an API key answers 401.");
    }
    let description = match operation.get("description").and_then(Value::as_str) {
        Some(text) => format!("{text}\n\n{requirement}"),
        None => requirement,
    };
    operation.insert("description".into(), description.into());
    if declared.takes_bearer() {
        let header = json!({
            "name": STORE_HEADER,
            "in": "header",
            "required": declared.requires_store,
            "description": if declared.requires_store {
                "The store to act in (required): store-scoped rows of other stores are invisible."
            } else {
                "The store to act in, if any: it must be one the caller can reach \
                 (403 `store_access_denied` otherwise)."
            },
            "schema": {"type": "string", "format": "uuid"},
        });
        match operation
            .get_mut("parameters")
            .and_then(Value::as_array_mut)
        {
            Some(parameters) => parameters.push(header),
            None => {
                operation.insert("parameters".into(), json!([header]));
            }
        }
    }
}

/// `WWW-AUTHENTICATE` → `WWW-Authenticate`, `RETRY-AFTER` → `Retry-After`.
fn standard_header_name(name: &str) -> String {
    name.split('-')
        .map(|word| match word.to_ascii_uppercase().as_str() {
            upper @ ("WWW" | "ID") => upper.to_string(),
            upper => {
                let mut chars = upper.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_string() + &chars.as_str().to_ascii_lowercase()
                })
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// The whole HTTP application.
pub fn routes(state: AppState) -> impl Endpoint {
    let service = openapi_service(&state);
    let spec = spec_json(&service);
    let docs = service.swagger_ui();
    let names = NameParameters::new(serde_json::from_str(&spec).unwrap_or_default());
    let callback = payments::callback_endpoint(&state);
    let routes =
        Route::new()
            .at(
                format!("{}/:token", payments::CALLBACK_PATH),
                // Named like an operation, so that /metrics counts callbacks apart.
                poem::post(callback.map_to_response().map(
                    |mut response: poem::Response| async move {
                        response.set_data(poem_openapi::OperationId(payments::CALLBACK_OPERATION));
                        response
                    },
                )),
            )
            .at(
                "/openapi.json",
                poem::endpoint::make_sync(move |_| {
                    poem::Response::builder()
                        .content_type("application/json; charset=utf-8")
                        .body(spec.clone())
                }),
            )
            .nest("/docs", docs)
            .nest(console::PATH, console::endpoint())
            .nest("/", service.with(names))
            .data(state.identity.tokens.clone())
            .data(state.meter.clone())
            .data(state.identity.trusted_proxies.clone());
    let edge = Edge {
        metrics: state.metrics.clone(),
        trusted_proxies: state.identity.trusted_proxies.clone(),
    };
    // CORS outside the edge, so that its headers go on every answer the edge makes,
    // problem+json included.
    edge_stack_with(routes, edge).with(CorsLayer::new(state.cors.0.clone(), state.cors.1))
}
