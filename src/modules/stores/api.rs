//! `/api/v1/stores`: a tenant's branches and who works in them.

use chrono::{DateTime, Utc};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, param::Path, param::Query};
use uuid::Uuid;

use super::{
    db::{self, StoreRow},
    service::{self, StoreFields},
};
use crate::{
    modules::{Tag, tenancy::api::Member},
    platform::{
        auth::access::{Operation, authorize, authorize_for_store},
        db::Database,
        domain::{Fields, Name},
        http::{
            common::{Deleted, Limit, page},
            json::{JsonBody, rfc3339},
            problem::ApiError,
            security::BearerAuth,
            text::{Bounded, NameText, Text},
        },
    },
};

pub struct StoresApi {
    pub db: Database,
}

// What each operation requires (see `auth::access`): one line per route below.
const STORES_LIST: Operation = Operation::permission_in_some_store("stores_list", "stores.view");
const STORES_CREATE: Operation = Operation::permission("stores_create", "stores.create")
    .limited_by("stores")
    .returning(&[409]);
const STORES_GET: Operation = Operation::permission_in_some_store("stores_get", "stores.view");
const STORES_UPDATE: Operation =
    Operation::permission("stores_update", "stores.edit").returning(&[409]);
const STORES_DELETE: Operation = Operation::permission("stores_delete", "stores.delete")
    .returning(&[409])
    .reading_held_permissions();
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

#[derive(Object, serde::Serialize)]
pub struct Store {
    pub id: Uuid,
    pub name: String,
    #[oai(nullable)]
    pub code: Option<String>,
    #[oai(nullable)]
    pub address: Option<String>,
    pub status: StoreStatus,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
}

/// Whether a store is in use; an archived store keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum StoreStatus {
    Active,
    Archived,
}

/// A store's short code, unique in the tenant: letters, digits, `-` and `_`.
pub type StoreCode = Text<Bounded<1, 32>>;
/// A postal address, lines separated by newlines.
pub type Address = Text<Bounded<0, 500>>;

impl From<StoreRow> for Store {
    fn from(row: StoreRow) -> Self {
        Store {
            id: row.id,
            name: row.name,
            code: row.code,
            address: row.address,
            status: row.status,
            created_at: row.created_at,
        }
    }
}

#[derive(Object, serde::Serialize)]
pub struct StoreList {
    pub items: Vec<Store>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(Object)]
#[oai(example)]
pub struct CreateStoreRequest {
    pub name: NameText,
    /// Short code, unique in the tenant.
    #[oai(nullable)]
    pub code: Option<StoreCode>,
    #[oai(nullable)]
    pub address: Option<Address>,
}

impl poem_openapi::types::Example for CreateStoreRequest {
    fn example() -> Self {
        CreateStoreRequest {
            name: "Westlands".into(),
            code: Some("WL-01".into()),
            address: Some("Waiyaki Way 12, Nairobi".into()),
        }
    }
}

#[derive(Object)]
pub struct UpdateStoreRequest {
    #[oai(nullable)]
    pub name: Option<NameText>,
    #[oai(nullable)]
    pub code: Option<StoreCode>,
    #[oai(nullable)]
    pub address: Option<Address>,
    #[oai(nullable)]
    pub status: Option<StoreStatus>,
}

#[derive(Object, serde::Serialize)]
pub struct StoreMemberList {
    pub items: Vec<Member>,
}

#[derive(ApiResponse)]
pub enum StoreListResponse {
    #[oai(status = 200)]
    Ok(JsonBody<StoreList>),
}

#[derive(ApiResponse)]
pub enum StoreResponse {
    #[oai(status = 200)]
    Ok(JsonBody<Store>),
}

#[derive(ApiResponse)]
pub enum StoreCreated {
    #[oai(status = 201)]
    Created(JsonBody<Store>),
}

#[derive(ApiResponse)]
pub enum StoreMembersResponse {
    #[oai(status = 200)]
    Ok(JsonBody<StoreMemberList>),
}

fn parse_code(code: &str) -> Result<String, String> {
    let code = code.trim();
    if code.is_empty()
        || code.len() > 32
        || !code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err("must be 1 to 32 letters, digits, - or _".into());
    }
    Ok(code.to_string())
}

fn parse_address(address: &str) -> Result<String, String> {
    let address = address.trim();
    if address.chars().count() > 500 || address.chars().any(|c| c.is_control() && c != '\n') {
        return Err("must be at most 500 characters, without control characters".into());
    }
    Ok(address.to_string())
}

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Stores")]
impl StoresApi {
    /// The stores the caller can see: all of them with a tenant-wide role, otherwise
    /// only the stores they are linked to or hold a role in.
    #[oai(path = "/stores", method = "get", operation_id = "stores_list")]
    async fn list(
        &self,
        auth: BearerAuth,
        limit: Query<Option<Limit>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<StoreListResponse, ApiError> {
        let page = page(limit.0, cursor.0)?;
        let (tx, _) = authorize(&self.db, &auth.0, &STORES_LIST).await?;
        let rows = db::list_visible_stores(tx, &page).await?;
        let (rows, next_cursor) = page.finish(rows, |s| (s.created_at, s.id));
        Ok(StoreListResponse::Ok(JsonBody(StoreList {
            items: rows.into_iter().map(Into::into).collect(),
            next_cursor,
        })))
    }

    /// Create a store.
    #[oai(path = "/stores", method = "post", operation_id = "stores_create")]
    async fn create(
        &self,
        auth: BearerAuth,
        body: JsonBody<CreateStoreRequest>,
    ) -> Result<StoreCreated, ApiError> {
        let mut fields = Fields::new();
        let name = fields.check("name", Name::parse(&body.name));
        let code = fields.check_optional("code", body.code.as_deref(), parse_code);
        let address = fields.check_optional("address", body.address.as_deref(), parse_address);
        let (name, code, address) = fields.finish((name, code, address))?;
        let (tx, _) = authorize(&self.db, &auth.0, &STORES_CREATE).await?;
        let store = service::create(&tx, &name, code.as_deref(), address.as_deref()).await;
        Ok(StoreCreated::Created(JsonBody(
            tx.finish(store).await?.into(),
        )))
    }

    /// One store (404 when it is not visible to the caller).
    #[oai(path = "/stores/:id", method = "get", operation_id = "stores_get")]
    async fn get(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<StoreResponse, ApiError> {
        let (tx, _) = authorize(&self.db, &auth.0, &STORES_GET).await?;
        Ok(StoreResponse::Ok(JsonBody(
            db::read_visible_store(tx, id.0).await?.into(),
        )))
    }

    /// Change a store; omitted fields stay as they are.
    #[oai(path = "/stores/:id", method = "patch", operation_id = "stores_update")]
    async fn update(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: JsonBody<UpdateStoreRequest>,
    ) -> Result<StoreResponse, ApiError> {
        let mut fields = Fields::new();
        let name = fields.check_optional("name", body.name.as_deref(), Name::parse);
        let code = fields.check_optional("code", body.code.as_deref(), parse_code);
        let address = fields.check_optional("address", body.address.as_deref(), parse_address);
        let (name, code, address) = fields.finish((name, code, address))?;
        let (tx, _) = authorize_for_store(&self.db, &auth.0, id.0, &STORES_UPDATE).await?;
        let fields = StoreFields {
            name,
            code,
            address,
            status: body.status,
        };
        let store = service::update(&tx, id.0, fields).await;
        Ok(StoreResponse::Ok(JsonBody(tx.finish(store).await?.into())))
    }

    /// Delete a store, with its inventory, links and store-scoped assignments.
    #[oai(
        path = "/stores/:id",
        method = "delete",
        operation_id = "stores_delete"
    )]
    async fn delete(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<Deleted, ApiError> {
        let (tx, access) = authorize_for_store(&self.db, &auth.0, id.0, &STORES_DELETE).await?;
        let deleted = service::delete(&tx, &access, id.0).await;
        tx.finish(deleted).await?;
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
        let rows = service::members(&tx, id.0).await;
        let rows = tx.finish(rows).await?;
        Ok(StoreMembersResponse::Ok(JsonBody(StoreMemberList {
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
        let linked = service::link(&tx, id.0, user_id.0).await;
        tx.finish(linked).await?;
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
        let unlinked = service::unlink(&tx, id.0, user_id.0).await;
        tx.finish(unlinked).await?;
        Ok(Deleted::NoContent)
    }
}
