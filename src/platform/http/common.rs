//! Pieces of request parsing and answering that every module's API shares:
//! pagination parameters, the bare 204.

use poem_openapi::ApiResponse;

use crate::{error::Error, platform::db::page::Page};

/// Parses `?limit=&cursor=`.
pub fn page(limit: Option<i64>, cursor: Option<String>) -> Result<Page, Error> {
    Page::parse(limit, cursor.as_deref())
}

#[derive(ApiResponse)]
pub enum Deleted {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}
