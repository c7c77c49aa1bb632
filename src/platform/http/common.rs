//! Pieces of request parsing and answering that every module's API shares:
//! pagination parameters, the bare 204, the wire names
//! of enums.

use std::borrow::Cow;

use poem_openapi::{
    ApiResponse,
    registry::{MetaSchema, MetaSchemaRef},
    types::{ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type},
};
use serde_json::Value;

use crate::{
    error::Error,
    platform::db::page::{DEFAULT_LIMIT, MAX_LIMIT, Page},
};

/// Parses `?limit=&cursor=`.
pub fn page(limit: Option<Limit>, cursor: Option<String>) -> Result<Page, Error> {
    Page::parse(limit.map(|limit| limit.0), cursor.as_deref())
}

/// `?limit=`: any integer parses; [`Page::parse`] says whether it is in range (400).
/// The schema documents the range and the default.
#[derive(Debug, Clone, Copy)]
pub struct Limit(pub i64);

impl Type for Limit {
    const IS_REQUIRED: bool = true;

    type RawValueType = i64;

    type RawElementValueType = i64;

    fn name() -> Cow<'static, str> {
        "integer(int64)".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        let mut schema = MetaSchema::new_with_format("integer", "int64");
        schema.minimum = Some(1.0);
        schema.maximum = Some(MAX_LIMIT as f64);
        schema.default = Some(DEFAULT_LIMIT.into());
        MetaSchemaRef::Inline(Box::new(schema))
    }

    fn as_raw_value(&self) -> Option<&i64> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a i64> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ParseFromParameter for Limit {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        value.parse().map(Limit).map_err(ParseError::custom)
    }
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
