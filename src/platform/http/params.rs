//! A malformed parameter (`?limit=abc`, a path id that is not a UUID) as a 400
//! `bad_request` that names the parameter in the client's terms. poem-openapi's own
//! message names Rust types, and calls path parameters `param0`, `param1`: the names
//! and schemas are taken back from the OpenAPI document instead.

use std::sync::Arc;

use poem::{Endpoint, Middleware, Request, http::Method};
use poem_openapi::error::{ParseParamError, ParsePathError};
use serde_json::{Map, Value};

use super::{json::expectation, problem::ApiError};
use crate::error::Error;

/// The middleware, over the operations of `document` (the OpenAPI document as JSON).
#[derive(Clone)]
pub struct NameParameters {
    document: Arc<Value>,
}

impl NameParameters {
    pub fn new(document: Value) -> Self {
        NameParameters {
            document: Arc::new(document),
        }
    }

    /// The parameter's declaration and its `n`th place among the path's placeholders.
    fn parameter(&self, method: &Method, path: &str, wanted: Wanted<'_>) -> Option<&Value> {
        let paths = self.document.get("paths")?.as_object()?;
        let (template, item) = paths.iter().find(|(template, _)| matches(template, path))?;
        let operation = item.get(method.as_str().to_lowercase())?;
        let name = match wanted {
            Wanted::Named(name) => name.to_string(),
            Wanted::PathPlace(place) => template
                .split('/')
                .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
                .nth(place)?
                .to_string(),
        };
        operation
            .get("parameters")?
            .as_array()?
            .iter()
            .find(|parameter| parameter.get("name").and_then(Value::as_str) == Some(&name))
    }

    fn describe(&self, method: &Method, path: &str, error: poem::Error) -> poem::Error {
        let wanted = if let Some(error) = error.downcast_ref::<ParseParamError>() {
            Wanted::Named(error.name)
        } else if let Some(error) = error.downcast_ref::<ParsePathError>() {
            match error
                .name
                .strip_prefix("param")
                .and_then(|n| n.parse().ok())
            {
                Some(place) => Wanted::PathPlace(place),
                None => Wanted::Named(error.name),
            }
        } else {
            return error;
        };
        let empty = Map::new();
        let components = self
            .document
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let detail = match self.parameter(method, path, wanted) {
            Some(parameter) => format!(
                "the {} parameter `{}` {}",
                parameter
                    .get("in")
                    .and_then(Value::as_str)
                    .unwrap_or("request"),
                parameter.get("name").and_then(Value::as_str).unwrap_or("?"),
                expectation(parameter.get("schema").unwrap_or(&Value::Null), components),
            ),
            None => "a parameter of the request is not valid".to_string(),
        };
        ApiError::from(Error::BadRequest(detail)).into()
    }
}

#[derive(Clone, Copy)]
enum Wanted<'a> {
    Named(&'a str),
    PathPlace(usize),
}

/// Whether `path` is an instance of `template` (`/stores/{id}`).
fn matches(template: &str, path: &str) -> bool {
    let (mut template, mut path) = (template.split('/'), path.split('/'));
    loop {
        match (template.next(), path.next()) {
            (None, None) => return true,
            (Some(expected), Some(actual)) => {
                if !(expected.starts_with('{') || expected == actual) {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

impl<E: Endpoint> Middleware<E> for NameParameters {
    type Output = NameParametersEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        NameParametersEndpoint {
            inner,
            names: self.clone(),
        }
    }
}

pub struct NameParametersEndpoint<E> {
    inner: E,
    names: NameParameters,
}

impl<E: Endpoint> Endpoint for NameParametersEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, request: Request) -> poem::Result<E::Output> {
        // Kept for the error case only; both are cheap to clone (no copy of the path).
        let (method, uri) = (request.method().clone(), request.uri().clone());
        self.inner
            .call(request)
            .await
            .map_err(|error| self.names.describe(&method, uri.path(), error))
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn a_path_matches_its_template_segment_by_segment() {
        assert!(matches("/api/v1/stores/{id}", "/api/v1/stores/abc"));
        assert!(!matches("/api/v1/stores/{id}", "/api/v1/stores/abc/users"));
        assert!(!matches("/api/v1/stores/{id}", "/api/v1/roles/abc"));
    }
}
