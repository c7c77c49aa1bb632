//! Pieces of request parsing and answering that every module's API shares:
//! pagination parameters, one-field validation errors, the bare 204, the wire names
//! of enums.

use poem_openapi::{
    ApiResponse,
    types::{ParseFromJSON, ToJSON},
};
use serde_json::Value;

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

/// The name a value of a poem-openapi enum has on the wire and in the database
/// (`StoreStatus::Archived` → `archived`): the names are written once, in the enum.
pub fn wire_name<T: ToJSON>(value: &T) -> String {
    match value.to_json() {
        Some(Value::String(name)) => name,
        other => other.map(|v| v.to_string()).unwrap_or_default(),
    }
}

/// The enum value of a wire name, if it is one.
pub fn from_wire<T: ParseFromJSON>(name: &str) -> Option<T> {
    T::parse_from_json(Some(Value::String(name.to_string()))).ok()
}
