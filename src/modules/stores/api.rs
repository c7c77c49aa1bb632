//! `/api/v1/stores`: a tenant's branches and who works in them.

use chrono::{DateTime, Utc};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, param::Query, payload::Json};
use serde_json::json;
use uuid::Uuid;

use crate::{
    error::Error,
    modules::{
        Tag,
        audit::db::{self as audit, Event},
        tenancy::{
            api::tenants::MemberDto,
            db::{self as tenancy, StoreRow},
        },
    },
    platform::{
        auth::access::{Operation, authorize, authorize_for_store},
        db::Database,
        domain::{Fields, Name},
        http::{
            common::{Deleted, page},
            problem::ApiError,
            security::BearerAuth,
        },
    },
};

pub struct StoresApi {
    pub db: Database,
}

// What each operation requires (see `auth::access`): one line per route below.
const STORES_LIST: Operation = Operation::permission_in_some_store("stores_list", "stores.view");
const STORES_CREATE: Operation = Operation::permission("stores_create", "stores.create");
const STORES_GET: Operation = Operation::permission_in_some_store("stores_get", "stores.view");
const STORES_UPDATE: Operation = Operation::permission("stores_update", "stores.edit");
const STORES_DELETE: Operation = Operation::permission("stores_delete", "stores.delete");
const STORE_USERS_LIST: Operation =
    Operation::permission("store_users_list", "stores.assign_users");
const STORE_USERS_PUT: Operation = Operation::permission("store_users_put", "stores.assign_users");
const STORE_USERS_DELETE: Operation =
    Operation::permission("store_users_delete", "stores.assign_users");

pub const OPERATIONS: &[Operation] = &[
    STORES_LIST,
    STORES_CREATE,
    STORES_GET,
    STORES_UPDATE,
    STORES_DELETE,
    STORE_USERS_LIST,
    STORE_USERS_PUT,
    STORE_USERS_DELETE,
];

#[derive(Object)]
pub struct StoreDto {
    pub id: Uuid,
    pub name: String,
    #[oai(nullable)]
    pub code: Option<String>,
    #[oai(nullable)]
    pub address: Option<String>,
    /// `active` or `archived`.
    pub status: String,
    pub created_at: DateTime<Utc>,
}

impl From<StoreRow> for StoreDto {
    fn from(row: StoreRow) -> Self {
        StoreDto {
            id: row.id,
            name: row.name,
            code: row.code,
            address: row.address,
            status: row.status,
            created_at: row.created_at,
        }
    }
}

#[derive(Object)]
pub struct StoreList {
    pub items: Vec<StoreDto>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(Object)]
pub struct CreateStoreRequest {
    pub name: String,
    /// Short code, unique in the tenant.
    #[oai(nullable)]
    pub code: Option<String>,
    #[oai(nullable)]
    pub address: Option<String>,
}

#[derive(Object)]
pub struct UpdateStoreRequest {
    #[oai(nullable)]
    pub name: Option<String>,
    #[oai(nullable)]
    pub code: Option<String>,
    #[oai(nullable)]
    pub address: Option<String>,
    /// `active` or `archived`.
    #[oai(nullable)]
    pub status: Option<String>,
}

#[derive(Object)]
pub struct StoreMemberList {
    pub items: Vec<MemberDto>,
}

#[derive(ApiResponse)]
pub enum StoreListResponse {
    #[oai(status = 200)]
    Ok(Json<StoreList>),
}

#[derive(ApiResponse)]
pub enum StoreResponse {
    #[oai(status = 200)]
    Ok(Json<StoreDto>),
}

#[derive(ApiResponse)]
pub enum StoreCreated {
    #[oai(status = 201)]
    Created(Json<StoreDto>),
}

#[derive(ApiResponse)]
pub enum StoreMembersResponse {
    #[oai(status = 200)]
    Ok(Json<StoreMemberList>),
}

fn parse_code(fields: &mut Fields, code: Option<&String>) -> Option<String> {
    let code = code.map(|c| c.trim().to_string())?;
    if code.is_empty()
        || code.len() > 32
        || !code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        fields.fail("code", "must be 1 to 32 letters, digits, - or _");
        return None;
    }
    Some(code)
}

fn parse_address(fields: &mut Fields, address: Option<&String>) -> Option<String> {
    let address = address.map(|a| a.trim().to_string())?;
    if address.chars().count() > 500 || address.chars().any(|c| c.is_control() && c != '\n') {
        fields.fail(
            "address",
            "must be at most 500 characters, without control characters",
        );
        return None;
    }
    Some(address)
}

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Stores")]
impl StoresApi {
    /// The stores the caller can see: all of them with a tenant-wide role, otherwise
    /// only the stores they are linked to or hold a role in.
    #[oai(path = "/stores", method = "get", operation_id = "stores_list")]
    async fn list(
        &self,
        auth: BearerAuth,
        /// 1 to 100, default 50.
        limit: Query<Option<i64>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<StoreListResponse, ApiError> {
        let page = page(limit.0, cursor.0)?;
        let (tx, _) = authorize(&self.db, &auth.0, None, &STORES_LIST).await?;
        let rows = tenancy::list_visible_stores(tx, &page).await?;
        let (rows, next_cursor) = page.finish(rows, |s| (s.created_at, s.id));
        Ok(StoreListResponse::Ok(Json(StoreList {
            items: rows.into_iter().map(Into::into).collect(),
            next_cursor,
        })))
    }

    /// Create a store.
    #[oai(path = "/stores", method = "post", operation_id = "stores_create")]
    async fn create(
        &self,
        auth: BearerAuth,
        body: Json<CreateStoreRequest>,
    ) -> Result<StoreCreated, ApiError> {
        let mut fields = Fields::new();
        let name = fields.check("name", Name::parse(&body.name));
        let code = parse_code(&mut fields, body.code.as_ref());
        let address = parse_address(&mut fields, body.address.as_ref());
        fields.finish()?;
        let name = name.expect("validated");
        let (tx, _) = authorize(&self.db, &auth.0, None, &STORES_CREATE).await?;
        let result = async {
            let store =
                tenancy::create_store(&tx, name.as_str(), code.as_deref(), address.as_deref())
                    .await?;
            audit::record(
                &tx,
                Event {
                    action: "store.created",
                    target_type: "store",
                    target_id: Some(store.id),
                    store_id: Some(store.id),
                    details: json!({"after": {"name": store.name, "code": store.code}}),
                },
            )
            .await?;
            Ok(store)
        }
        .await;
        Ok(StoreCreated::Created(Json(tx.finish(result).await?.into())))
    }

    /// One store (404 when it is not visible to the caller).
    #[oai(path = "/stores/:id", method = "get", operation_id = "stores_get")]
    async fn get(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<StoreResponse, ApiError> {
        let (tx, _) = authorize(&self.db, &auth.0, None, &STORES_GET).await?;
        let store = tenancy::visible_store(&tx, id.0).await;
        Ok(StoreResponse::Ok(Json(tx.finish(store).await?.into())))
    }

    /// Change a store; omitted fields stay as they are.
    #[oai(path = "/stores/:id", method = "patch", operation_id = "stores_update")]
    async fn update(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: Json<UpdateStoreRequest>,
    ) -> Result<StoreResponse, ApiError> {
        let mut fields = Fields::new();
        let name = body
            .name
            .as_deref()
            .and_then(|n| fields.check("name", Name::parse(n)));
        let code = parse_code(&mut fields, body.code.as_ref());
        let address = parse_address(&mut fields, body.address.as_ref());
        if let Some(status) = &body.status
            && !matches!(status.as_str(), "active" | "archived")
        {
            fields.fail("status", "must be active or archived");
        }
        fields.finish()?;
        let (tx, _) = authorize_for_store(&self.db, &auth.0, id.0, &STORES_UPDATE).await?;
        let result = async {
            let before = tenancy::store(&tx, id.0).await?;
            let store = tenancy::update_store(
                &tx,
                id.0,
                name.as_ref().map(Name::as_str),
                code.as_deref(),
                address.as_deref(),
                body.status.as_deref(),
            )
            .await?;
            audit::record(
                &tx,
                Event {
                    action: "store.updated",
                    target_type: "store",
                    target_id: Some(store.id),
                    store_id: Some(store.id),
                    details: json!({
                        "before": {"name": before.name, "code": before.code, "address": before.address, "status": before.status},
                        "after": {"name": store.name, "code": store.code, "address": store.address, "status": store.status},
                    }),
                },
            )
            .await?;
            Ok(store)
        }
        .await;
        Ok(StoreResponse::Ok(Json(tx.finish(result).await?.into())))
    }

    /// Delete a store, with its inventory, links and store-scoped assignments.
    #[oai(
        path = "/stores/:id",
        method = "delete",
        operation_id = "stores_delete"
    )]
    async fn delete(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<Deleted, ApiError> {
        let (tx, _) = authorize_for_store(&self.db, &auth.0, id.0, &STORES_DELETE).await?;
        let result = async {
            let store = tenancy::delete_store(&tx, id.0).await?;
            audit::record(
                &tx,
                Event {
                    action: "store.deleted",
                    target_type: "store",
                    target_id: Some(store.id),
                    store_id: None,
                    details: json!({"before": {"name": store.name, "code": store.code}}),
                },
            )
            .await
        }
        .await;
        tx.finish(result).await?;
        Ok(Deleted::NoContent)
    }

    /// The members linked to a store.
    #[oai(
        path = "/stores/:id/users",
        method = "get",
        operation_id = "store_users_list"
    )]
    async fn list_users(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<StoreMembersResponse, ApiError> {
        let (tx, _) = authorize_for_store(&self.db, &auth.0, id.0, &STORE_USERS_LIST).await?;
        let result = async {
            tenancy::store(&tx, id.0).await?;
            tenancy::store_members(&tx, id.0).await
        }
        .await;
        let rows = tx.finish(result).await?;
        Ok(StoreMembersResponse::Ok(Json(StoreMemberList {
            items: rows.into_iter().map(Into::into).collect(),
        })))
    }

    /// Link a member to a store (idempotent).
    #[oai(
        path = "/stores/:id/users/:user_id",
        method = "put",
        operation_id = "store_users_put"
    )]
    async fn put_user(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        user_id: Path<Uuid>,
    ) -> Result<Deleted, ApiError> {
        let (tx, _) = authorize_for_store(&self.db, &auth.0, id.0, &STORE_USERS_PUT).await?;
        let result = async {
            tenancy::store(&tx, id.0).await?;
            tenancy::member(&tx, user_id.0).await?;
            if tenancy::link_store_user(&tx, id.0, user_id.0).await? {
                audit::record(
                    &tx,
                    Event {
                        action: "store.user_linked",
                        target_type: "user",
                        target_id: Some(user_id.0),
                        store_id: Some(id.0),
                        details: json!({}),
                    },
                )
                .await?;
            }
            Ok::<_, Error>(())
        }
        .await;
        tx.finish(result).await?;
        Ok(Deleted::NoContent)
    }

    /// Unlink a member from a store.
    #[oai(
        path = "/stores/:id/users/:user_id",
        method = "delete",
        operation_id = "store_users_delete"
    )]
    async fn delete_user(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        user_id: Path<Uuid>,
    ) -> Result<Deleted, ApiError> {
        let (tx, _) = authorize_for_store(&self.db, &auth.0, id.0, &STORE_USERS_DELETE).await?;
        let result = async {
            tenancy::unlink_store_user(&tx, id.0, user_id.0).await?;
            audit::record(
                &tx,
                Event {
                    action: "store.user_unlinked",
                    target_type: "user",
                    target_id: Some(user_id.0),
                    store_id: Some(id.0),
                    details: json!({}),
                },
            )
            .await
        }
        .await;
        tx.finish(result).await?;
        Ok(Deleted::NoContent)
    }
}
