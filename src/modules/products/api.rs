//! `/api/v1/products` (tenant-scoped) and `/api/v1/inventory` (store-scoped,
//! `X-Store-ID` required).
//!
//! This is how a module's HTTP layer is written: declare each operation's permission
//! next to its route, parse the body into domain values, open the request transaction
//! with `authorize`, call the module's SQL (`super::db`), finish, map the answer.

use chrono::{DateTime, Utc};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, param::Query};
use uuid::Uuid;

use super::db::{self as products, AdjustmentRow, ProductRow};
use crate::{
    error::Error,
    modules::Tag,
    platform::{
        auth::access::{Operation, authorize},
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

pub struct ProductsApi {
    pub db: Database,
}

// What each operation requires (see `auth::access`): one line per route below.
const PRODUCTS_LIST: Operation = Operation::permission("products_list", "products.view");
const PRODUCTS_CREATE: Operation = Operation::permission("products_create", "products.create")
    .limited_by("products")
    .returning(&[409]);
const PRODUCTS_GET: Operation = Operation::permission("products_get", "products.view");
const PRODUCTS_UPDATE: Operation =
    Operation::permission("products_update", "products.edit").returning(&[409]);
const PRODUCTS_DELETE: Operation = Operation::permission("products_delete", "products.delete");
const INVENTORY_LIST: Operation = Operation::permission("inventory_list", "inventory.view")
    .in_store()
    .feature("inventory");
const INVENTORY_ADJUST: Operation = Operation::permission("inventory_adjust", "inventory.adjust")
    .in_store()
    .feature("inventory")
    .returning(&[409]);

pub const OPERATIONS: &[Operation] = &[
    PRODUCTS_LIST,
    PRODUCTS_CREATE,
    PRODUCTS_GET,
    PRODUCTS_UPDATE,
    PRODUCTS_DELETE,
    INVENTORY_LIST,
    INVENTORY_ADJUST,
];

#[derive(Object, serde::Serialize)]
pub struct Product {
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub price_cents: i64,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339")]
    pub updated_at: DateTime<Utc>,
}

impl From<ProductRow> for Product {
    fn from(row: ProductRow) -> Self {
        Product {
            id: row.id,
            sku: row.sku,
            name: row.name,
            price_cents: row.price_cents,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Object, serde::Serialize)]
pub struct ProductList {
    pub items: Vec<Product>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

/// A stock-keeping unit, unique in the tenant: 1 to 64 characters, no spaces.
pub type Sku = Text<Bounded<1, 64>>;

#[derive(Object)]
#[oai(example)]
pub struct CreateProductRequest {
    pub sku: Sku,
    pub name: NameText,
    /// Zero or more.
    pub price_cents: i64,
}

impl poem_openapi::types::Example for CreateProductRequest {
    fn example() -> Self {
        CreateProductRequest {
            sku: "TEA-500G".into(),
            name: "Kericho Gold tea, 500 g".into(),
            price_cents: 45000,
        }
    }
}

#[derive(Object)]
pub struct UpdateProductRequest {
    #[oai(nullable)]
    pub sku: Option<Sku>,
    #[oai(nullable)]
    pub name: Option<NameText>,
    #[oai(nullable)]
    pub price_cents: Option<i64>,
}

#[derive(Object, serde::Serialize)]
pub struct Stock {
    pub product_id: Uuid,
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    #[serde(serialize_with = "rfc3339")]
    pub updated_at: DateTime<Utc>,
}

#[derive(Object, serde::Serialize)]
pub struct StockList {
    pub items: Vec<Stock>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(Object)]
pub struct AdjustmentRequest {
    pub product_id: Uuid,
    /// Non-zero; negative takes stock out.
    pub delta: i64,
    pub reason: Text<Bounded<1, 500>>,
}

#[derive(Object, serde::Serialize)]
pub struct Adjustment {
    pub id: Uuid,
    pub product_id: Uuid,
    pub delta: i64,
    pub reason: String,
    /// The store's stock of the product after the adjustment.
    pub quantity: i64,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
}

impl From<AdjustmentRow> for Adjustment {
    fn from(row: AdjustmentRow) -> Self {
        Adjustment {
            id: row.id,
            product_id: row.product_id,
            delta: row.delta,
            reason: row.reason,
            quantity: row.quantity,
            created_at: row.created_at,
        }
    }
}

#[derive(ApiResponse)]
pub enum ProductListResponse {
    #[oai(status = 200)]
    Ok(JsonBody<ProductList>),
}

#[derive(ApiResponse)]
pub enum ProductResponse {
    #[oai(status = 200)]
    Ok(JsonBody<Product>),
}

#[derive(ApiResponse)]
pub enum ProductCreated {
    #[oai(status = 201)]
    Created(JsonBody<Product>),
}

#[derive(ApiResponse)]
pub enum StockListResponse {
    #[oai(status = 200)]
    Ok(JsonBody<StockList>),
}

#[derive(ApiResponse)]
pub enum AdjustmentCreated {
    #[oai(status = 201)]
    Created(JsonBody<Adjustment>),
}

fn parse_sku(sku: &str) -> Result<String, String> {
    let sku = sku.trim();
    if sku.is_empty()
        || sku.chars().count() > 64
        || sku.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err("must be 1 to 64 characters without spaces".into());
    }
    Ok(sku.to_string())
}

fn parse_delta(delta: i64) -> Result<i64, String> {
    if delta == 0 || delta.unsigned_abs() > 1_000_000_000 {
        return Err("must be non-zero and at most 1000000000 in size".into());
    }
    Ok(delta)
}

fn parse_reason(reason: &str) -> Result<String, String> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err("must be 1 to 500 characters".into());
    }
    Ok(reason.to_string())
}

fn parse_price(price_cents: i64) -> Result<i64, String> {
    if price_cents < 0 {
        return Err("must be zero or more".into());
    }
    Ok(price_cents)
}

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Products")]
impl ProductsApi {
    /// The tenant's products.
    #[oai(path = "/products", method = "get", operation_id = "products_list")]
    async fn list(
        &self,
        auth: BearerAuth,
        limit: Query<Option<Limit>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<ProductListResponse, ApiError> {
        let page = page(limit.0, cursor.0)?;
        let (tx, _) = authorize(&self.db, &auth.0, &PRODUCTS_LIST).await?;
        let rows = products::list(tx, &page).await?;
        let (rows, next_cursor) = page.finish(rows, |p| (p.created_at, p.id));
        Ok(ProductListResponse::Ok(JsonBody(ProductList {
            items: rows.into_iter().map(Into::into).collect(),
            next_cursor,
        })))
    }

    /// Create a product.
    #[oai(path = "/products", method = "post", operation_id = "products_create")]
    async fn create(
        &self,
        auth: BearerAuth,
        body: JsonBody<CreateProductRequest>,
    ) -> Result<ProductCreated, ApiError> {
        let mut fields = Fields::new();
        let sku = fields.check("sku", parse_sku(&body.sku));
        let name = fields.check("name", Name::parse(&body.name));
        let price = fields.check("price_cents", parse_price(body.price_cents));
        let (sku, name, price) = fields.finish((sku, name, price))?;
        let (tx, _) = authorize(&self.db, &auth.0, &PRODUCTS_CREATE).await?;
        let product = products::create(&tx, &sku, name.as_str(), price).await;
        Ok(ProductCreated::Created(JsonBody(
            tx.finish(product).await?.into(),
        )))
    }

    /// One product.
    #[oai(path = "/products/:id", method = "get", operation_id = "products_get")]
    async fn get(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<ProductResponse, ApiError> {
        let (tx, _) = authorize(&self.db, &auth.0, &PRODUCTS_GET).await?;
        Ok(ProductResponse::Ok(JsonBody(
            products::read(tx, id.0).await?.into(),
        )))
    }

    /// Change a product; omitted fields stay as they are.
    #[oai(
        path = "/products/:id",
        method = "patch",
        operation_id = "products_update"
    )]
    async fn update(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: JsonBody<UpdateProductRequest>,
    ) -> Result<ProductResponse, ApiError> {
        let mut fields = Fields::new();
        let sku = fields.check_optional("sku", body.sku.as_deref(), parse_sku);
        let name = fields.check_optional("name", body.name.as_deref(), Name::parse);
        let price = fields.check_optional("price_cents", body.price_cents, parse_price);
        let (sku, name, price) = fields.finish((sku, name, price))?;
        let (tx, _) = authorize(&self.db, &auth.0, &PRODUCTS_UPDATE).await?;
        let product = products::update(
            &tx,
            id.0,
            sku.as_deref(),
            name.as_ref().map(Name::as_str),
            price,
        )
        .await;
        Ok(ProductResponse::Ok(JsonBody(
            tx.finish(product).await?.into(),
        )))
    }

    /// Delete a product, with its stock in every store.
    #[oai(
        path = "/products/:id",
        method = "delete",
        operation_id = "products_delete"
    )]
    async fn delete(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<Deleted, ApiError> {
        let (tx, _) = authorize(&self.db, &auth.0, &PRODUCTS_DELETE).await?;
        let deleted = products::delete(&tx, id.0).await;
        tx.finish(deleted).await?;
        Ok(Deleted::NoContent)
    }

    /// The stock of the store named by `X-Store-ID` (required).
    #[oai(path = "/inventory", method = "get", operation_id = "inventory_list")]
    async fn inventory(
        &self,
        auth: BearerAuth,
        limit: Query<Option<Limit>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<StockListResponse, ApiError> {
        let page = page(limit.0, cursor.0)?;
        let (tx, _) = authorize(&self.db, &auth.0, &INVENTORY_LIST).await?;
        let rows = products::inventory(tx, &page).await?;
        // The list is in product id order; the cursor's time part is unused here.
        let (rows, next_cursor) =
            page.finish(rows, |s| (chrono::DateTime::UNIX_EPOCH, s.product_id));
        Ok(StockListResponse::Ok(JsonBody(StockList {
            items: rows
                .into_iter()
                .map(|s| Stock {
                    product_id: s.product_id,
                    sku: s.sku,
                    name: s.name,
                    quantity: s.quantity,
                    updated_at: s.updated_at,
                })
                .collect(),
            next_cursor,
        })))
    }

    /// Adjust the stock of a product in the store named by `X-Store-ID` (required).
    /// 409 when the stock would go below zero.
    #[oai(
        path = "/inventory/adjustments",
        method = "post",
        operation_id = "inventory_adjust"
    )]
    async fn adjust(
        &self,
        auth: BearerAuth,
        body: JsonBody<AdjustmentRequest>,
    ) -> Result<AdjustmentCreated, ApiError> {
        let mut fields = Fields::new();
        let delta = fields.check("delta", parse_delta(body.delta));
        let reason = fields.check("reason", parse_reason(&body.reason));
        let (delta, reason) = fields.finish((delta, reason))?;
        let (tx, _) = authorize(&self.db, &auth.0, &INVENTORY_ADJUST).await?;
        let result = async {
            if let Err(Error::NotFound) = products::get(&tx, body.product_id).await {
                return Err(Error::invalid("product_id", "no such product"));
            }
            products::adjust(&tx, body.product_id, delta, &reason).await
        }
        .await;
        Ok(AdjustmentCreated::Created(JsonBody(
            tx.finish(result).await?.into(),
        )))
    }
}
