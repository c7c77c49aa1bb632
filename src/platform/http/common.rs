//! Pieces of request parsing and answering that every module's API shares:
//! pagination parameters, one-field validation errors, the bare 204.

use poem_openapi::ApiResponse;

use crate::{
    error::{Error, FieldError},
    platform::db::page::Page,
};

/// Parses `?limit=&cursor=`.
pub fn page(limit: Option<i64>, cursor: Option<String>) -> Result<Page, Error> {
    Page::parse(limit, cursor.as_deref())
}

/// A 422 for one field.
pub fn invalid(field: &str, message: &str) -> Error {
    Error::Validation(vec![FieldError::new(field, message)])
}

#[derive(ApiResponse)]
pub enum Deleted {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}
