//! Pieces shared by the resource APIs: the store header, pagination parameters, the
//! permission guard for grants, and small response types.

use poem_openapi::ApiResponse;
use uuid::Uuid;

use crate::{
    error::{Error, FieldError},
    platform::db::{Access, page::Page},
};

/// Parses `?limit=&cursor=`.
pub fn page(limit: Option<i64>, cursor: Option<String>) -> Result<Page, Error> {
    Page::parse(limit, cursor.as_deref())
}

/// "Nobody grants a permission they do not hold": every code in `granted` must be
/// among the caller's effective permissions; otherwise 403 naming the first missing.
pub fn ensure_holds(access: &Access, granted: &[String]) -> Result<(), Error> {
    let held = access.held_permissions()?;
    match granted.iter().find(|code| !held.contains(code)) {
        Some(missing) => Err(Error::Forbidden {
            permission: missing.clone(),
        }),
        None => Ok(()),
    }
}

/// A 422 for one field.
pub fn invalid(field: &str, message: &str) -> Error {
    Error::Validation(vec![FieldError::new(field, message)])
}

/// `X-Store-ID` is required by store-scoped operations (400 without it).
pub fn require_store(store_id: Option<Uuid>) -> Result<Uuid, Error> {
    store_id.ok_or_else(|| Error::BadRequest("the X-Store-ID header is required".into()))
}

#[derive(ApiResponse)]
pub enum Deleted {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}
