//! `/api/v1/api-keys`: create (the key shown once), list, revoke. Every operation
//! needs the plan's feature `api_keys` and a person's access token: a key neither
//! mints nor revokes keys.

use chrono::{DateTime, Utc};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, param::Query};
use serde_json::json;
use uuid::Uuid;

use super::db::{self as keys, KeyRow, NewKeyRow};
use crate::{
    error::Error,
    modules::{
        Tag,
        audit::{self, Action, Event, Target},
        rbac::service::ensure_holds,
    },
    platform::{
        auth::{
            access::{Operation, authorize},
            api_key::NewKey,
            catalog::{PERMISSION_CODES, PermissionCode},
        },
        db::Database,
        domain::{Fields, Name},
        http::{
            common::{Deleted, Limit, page},
            json::{JsonBody, rfc3339, rfc3339_or_null},
            problem::ApiError,
            security::BearerAuth,
            text::NameText,
        },
    },
};

pub struct ApiKeysApi {
    pub db: Database,
}

// What each operation requires (see `auth::access`): one line per route below.
const API_KEYS_LIST: Operation = Operation::permission("api_keys_list", "api_keys.view")
    .feature("api_keys")
    .for_people_only();
const API_KEYS_CREATE: Operation = Operation::permission("api_keys_create", "api_keys.manage")
    .feature("api_keys")
    .reading_held_permissions()
    .for_people_only();
const API_KEYS_REVOKE: Operation = Operation::permission("api_keys_revoke", "api_keys.manage")
    .feature("api_keys")
    .for_people_only();

pub const OPERATIONS: &[Operation] = &[API_KEYS_LIST, API_KEYS_CREATE, API_KEYS_REVOKE];

/// The longest a key may live: a year (a leaked key ends by itself).
const MAX_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::days(366);

#[derive(Object, serde::Serialize)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    /// The key's first characters (`rgk_` and its id): not secret, to tell keys apart.
    pub prefix: String,
    pub permissions: Vec<PermissionCode>,
    /// The member the key acts as.
    pub created_by: Uuid,
    #[serde(serialize_with = "rfc3339")]
    pub expires_at: DateTime<Utc>,
    #[oai(nullable)]
    #[serde(serialize_with = "rfc3339_or_null")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// Recorded at most once a minute.
    #[oai(nullable)]
    #[serde(serialize_with = "rfc3339_or_null")]
    pub last_used_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
}

impl From<KeyRow> for ApiKey {
    fn from(row: KeyRow) -> Self {
        ApiKey {
            id: row.id,
            name: row.name,
            prefix: row.prefix,
            permissions: row.permissions.into_iter().map(Into::into).collect(),
            created_by: row.created_by,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            last_used_at: row.last_used_at,
            created_at: row.created_at,
        }
    }
}

/// A new key, with the key itself: shown in this response only.
#[derive(Object, serde::Serialize)]
pub struct CreatedApiKey {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub permissions: Vec<PermissionCode>,
    #[serde(serialize_with = "rfc3339")]
    pub expires_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    /// `rgk_` + id (32 hex digits) + secret (43 base62 characters) + checksum (6):
    /// use it as `Authorization: Bearer <key>`. Only its hash is stored: it cannot be
    /// shown again.
    pub key: String,
}

#[derive(Object, serde::Serialize)]
pub struct ApiKeyList {
    pub items: Vec<ApiKey>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(Object)]
#[oai(example)]
pub struct CreateApiKeyRequest {
    pub name: NameText,
    /// Held by the caller (403 naming the first that is not).
    pub permissions: Vec<PermissionCode>,
    /// Required, in the future, at most a year ahead.
    pub expires_at: DateTime<Utc>,
}

impl poem_openapi::types::Example for CreateApiKeyRequest {
    fn example() -> Self {
        CreateApiKeyRequest {
            name: "Till 1 at the Westlands store".into(),
            permissions: vec!["products.view".into()],
            expires_at: DateTime::UNIX_EPOCH,
        }
    }
}

#[derive(ApiResponse)]
pub enum ApiKeyListResponse {
    #[oai(status = 200)]
    Ok(JsonBody<ApiKeyList>),
}

#[derive(ApiResponse)]
pub enum ApiKeyCreated {
    #[oai(status = 201)]
    Created(JsonBody<CreatedApiKey>),
}

fn parse_expiry(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if expires_at <= now {
        return Err("must be in the future".into());
    }
    if expires_at > now + MAX_LIFETIME {
        return Err("must be at most a year ahead".into());
    }
    Ok(expires_at)
}

fn parse_permissions(permissions: &[PermissionCode]) -> Result<Vec<String>, String> {
    let mut codes: Vec<String> = permissions.iter().map(|code| code.to_string()).collect();
    codes.sort();
    codes.dedup();
    if codes.is_empty() {
        return Err("must name at least one permission".into());
    }
    if let Some(unknown) = codes
        .iter()
        .find(|code| !PERMISSION_CODES.contains(&code.as_str()))
    {
        return Err(format!("{unknown} is not a permission"));
    }
    Ok(codes)
}

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::ApiKeys")]
impl ApiKeysApi {
    /// The tenant's API keys, revoked ones included, oldest first. Never the key.
    #[oai(path = "/api-keys", method = "get", operation_id = "api_keys_list")]
    async fn list(
        &self,
        auth: BearerAuth,
        limit: Query<Option<Limit>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<ApiKeyListResponse, ApiError> {
        let page = page(limit.0, cursor.0)?;
        let (tx, _) = authorize(&self.db, &auth.0, &API_KEYS_LIST).await?;
        let rows = keys::list(tx, &page).await?;
        let (rows, next_cursor) = page.finish(rows, |k| (k.created_at, k.id));
        Ok(ApiKeyListResponse::Ok(JsonBody(ApiKeyList {
            items: rows.into_iter().map(Into::into).collect(),
            next_cursor,
        })))
    }

    /// Create an API key acting as the caller, with permissions the caller holds.
    /// The key is in this response only.
    #[oai(path = "/api-keys", method = "post", operation_id = "api_keys_create")]
    async fn create(
        &self,
        auth: BearerAuth,
        body: JsonBody<CreateApiKeyRequest>,
    ) -> Result<ApiKeyCreated, ApiError> {
        let mut fields = Fields::new();
        let name = fields.check("name", Name::parse(&body.name));
        let permissions = fields.check("permissions", parse_permissions(&body.permissions));
        let expires_at = fields.check("expires_at", parse_expiry(body.expires_at, Utc::now()));
        let (name, permissions, expires_at) = fields.finish((name, permissions, expires_at))?;
        let (tx, access) = authorize(&self.db, &auth.0, &API_KEYS_CREATE).await?;
        let new = NewKey::generate();
        let created = async {
            // "You cannot grant what you do not hold": a key is a grant to a program.
            ensure_holds(&access, &permissions)?;
            let prefix = new.display_prefix();
            let row = keys::insert(
                &tx,
                &NewKeyRow {
                    id: new.id,
                    name: name.as_str(),
                    prefix: &prefix,
                    hash: &new.hash,
                    permissions: &permissions,
                    expires_at,
                },
            )
            .await?;
            audit::record(
                &tx,
                Event {
                    action: Action::ApiKeyCreated,
                    target_type: Target::ApiKey,
                    target_id: Some(row.id),
                    store_id: None,
                    details: json!({
                        "name": row.name,
                        "permissions": row.permissions,
                        "expires_at": row.expires_at,
                    }),
                },
            )
            .await?;
            Ok::<_, Error>(row)
        }
        .await;
        let row = tx.finish(created).await?;
        Ok(ApiKeyCreated::Created(JsonBody(CreatedApiKey {
            id: row.id,
            name: row.name,
            prefix: row.prefix,
            permissions: row.permissions.into_iter().map(Into::into).collect(),
            expires_at: row.expires_at,
            created_at: row.created_at,
            key: new.key,
        })))
    }

    /// Revoke an API key: its next request is refused (401). Revoking a revoked key
    /// does nothing more.
    #[oai(
        path = "/api-keys/:id",
        method = "delete",
        operation_id = "api_keys_revoke"
    )]
    async fn revoke(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<Deleted, ApiError> {
        let (tx, _) = authorize(&self.db, &auth.0, &API_KEYS_REVOKE).await?;
        let revoked = async {
            let row = keys::revoke(&tx, id.0).await?;
            audit::record(
                &tx,
                Event {
                    action: Action::ApiKeyRevoked,
                    target_type: Target::ApiKey,
                    target_id: Some(row.id),
                    store_id: None,
                    details: json!({ "name": row.name }),
                },
            )
            .await
        }
        .await;
        tx.finish(revoked).await?;
        Ok(Deleted::NoContent)
    }
}
