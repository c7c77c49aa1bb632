//! JSON in and out of every operation: [`JsonBody`], poem-openapi's `Json` payload
//! (the same schema, the same content type) except for how a request body fails and
//! how a reply is written.
//!
//! In a request, malformed JSON is a 400 `bad_request` saying where (line and
//! column); JSON that does not fit the body's schema (a number where a
//! string is declared, a missing field, an unknown enum value) is a 422
//! `validation_failed` naming each field, found by walking the body against the
//! schema that the type registers for the OpenAPI document. No message names a Rust
//! or schema type.
//!
//! The walk ([`mismatches`], [`expectation`]) is also what names a malformed query or
//! path parameter (`super::params`).
//!
//! In a reply (every module's operations), the value is written straight from its
//! `Serialize` instead of through the `serde_json::Value` tree that poem-openapi's
//! `ToJSON` builds first. The problem+json answers (`super::problem`) and `/health`
//! keep poem-openapi's `Json`: they are small and not on the hot path.

use std::ops::{Deref, DerefMut};

use chrono::{DateTime, Utc};
use poem::{FromRequest, IntoResponse, Request, RequestBody, Response};
use poem_openapi::{
    ApiResponse,
    payload::{Json, ParsePayload, Payload},
    registry::{MetaResponses, MetaSchemaRef, Registry},
    types::{ParseFromJSON, ToJSON, Type},
};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::problem::ApiError;
use crate::error::{Error, FieldError};

/// A JSON body of type `T`, of a request or of a reply (see the module's comment).
///
/// A reply, why not poem-openapi's `Json`: it turns the value into a
/// `serde_json::Value` (a `BTreeMap` per object, a `String` per field), then writes
/// that, which was 29% of the server's instructions for a page of 20 stores
/// (`bench/run.sh --instructions --profile`). `T`'s `Serialize` must write what its
/// `ToJSON` gives: the derives agree field by field (serde's `rename_all` as
/// poem-openapi's, timestamps through [`rfc3339`]), and a debug build checks every
/// reply it sends against `ToJSON`, so each API test that reads a body is also a test
/// of the two agreeing.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<T> Deref for JsonBody<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for JsonBody<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = Json::<T>::CONTENT_TYPE;

    fn check_content_type(content_type: &str) -> bool {
        Json::<T>::check_content_type(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: ParseFromJSON> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = T::IS_REQUIRED;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let data = Vec::<u8>::from_request(request, body).await?;
        let value = if data.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&data)
                .map_err(|error| reject(Error::BadRequest(not_json(&error))))?
        };
        match T::parse_from_json(Some(value)) {
            Ok(value) => Ok(JsonBody(value)),
            // Parsed again only on failure, so that a good body is not copied.
            Err(_) => Err(reject(diagnose::<T>(
                &serde_json::from_slice(&data).unwrap_or(Value::Null),
            ))),
        }
    }
}

poem_openapi::impl_apirequest_for_payload!(JsonBody<T>, T: ParseFromJSON);

impl<T: ToJSON + Serialize> IntoResponse for JsonBody<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => {
                #[cfg(debug_assertions)]
                agrees_with_to_json(&self.0, &body);
                Response::builder()
                    .content_type(Self::CONTENT_TYPE)
                    .body(body)
            }
            // Only a map with keys that are not strings fails to serialize, and no
            // reply holds one. If one ever did: a problem body with the cause logged,
            // under the status of the operation's answer, which poem-openapi's
            // `ApiResponse` derive sets after this (as it does for its own `Json`).
            Err(error) => reject(Error::Internal(error.into())).into_response(),
        }
    }
}

/// The debug build's check (see [`JsonBody`]): a disagreement panics, which the edge
/// answers with a 500, so the test that sent the request fails. The panic names where
/// the two differ, never the values: a reply may hold a token or a key, and the edge
/// logs a panic's message.
#[cfg(debug_assertions)]
fn agrees_with_to_json<T: ToJSON>(value: &T, body: &[u8]) {
    let written: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let schema_faithful = value.to_json().unwrap_or(Value::Null);
    let mut differences = Vec::new();
    differ(&written, &schema_faithful, "", &mut differences);
    assert!(
        differences.is_empty(),
        "a reply's Serialize differs from its ToJSON at: {}",
        differences.join(", ")
    );
}

/// The paths at which `a` and `b` differ (`items[3].created_at`), into `out`.
#[cfg(debug_assertions)]
fn differ(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for key in a.keys().chain(b.keys().filter(|key| !a.contains_key(*key))) {
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => differ(x, y, &join(path, key), out),
                    _ => out.push(join(path, key)),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (index, (x, y)) in a.iter().zip(b).enumerate() {
                differ(x, y, &format!("{path}[{index}]"), out);
            }
        }
        _ if a != b => out.push(if path.is_empty() {
            "the body".into()
        } else {
            path.into()
        }),
        _ => {}
    }
}

impl<T: ToJSON + Serialize> ApiResponse for JsonBody<T> {
    fn meta() -> MetaResponses {
        Json::<T>::meta()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

/// A timestamp as poem-openapi's `ToJSON` writes it (`to_rfc3339`: `+00:00`, not
/// serde's `Z`): `#[serde(serialize_with = "rfc3339")]` on a `DateTime<Utc>` field of a
/// [`JsonBody`].
pub fn rfc3339<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339())
}

/// [`rfc3339`] of a nullable timestamp.
pub fn rfc3339_or_null<S: Serializer>(
    at: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => rfc3339(at, serializer),
        None => serializer.serialize_none(),
    }
}

/// Why the body is not JSON, and where: serde_json's words, except for a number no
/// field could take (`1e400`), which it calls "out of range" (words a client would
/// take for the database's).
fn not_json(error: &serde_json::Error) -> String {
    let message = error.to_string();
    if message.starts_with("number out of range") {
        return format!(
            "the request body holds a number too large to read, at line {} column {}",
            error.line(),
            error.column()
        );
    }
    format!("the request body is not valid JSON: {message}")
}

/// An error as the problem+json answer it is (the edge passes it on unchanged).
fn reject(error: Error) -> poem::Error {
    ApiError::from(error).into()
}

/// Why `value` is not a `T`, from `T`'s schema.
fn diagnose<T: Type>(value: &Value) -> Error {
    let mut registry = Registry::new();
    T::register(&mut registry);
    let components = match serde_json::to_value(&registry.schemas) {
        Ok(Value::Object(components)) => components,
        _ => Map::new(),
    };
    let root = serde_json::to_value(T::schema_ref()).unwrap_or(Value::Null);
    let mut errors = Vec::new();
    mismatches(value, &root, &components, "", &mut errors);
    match errors.iter().find(|error| error.field.is_empty()) {
        Some(whole) => Error::BadRequest(format!("the request body {}", whole.message)),
        None if errors.is_empty() => {
            Error::BadRequest("the request body does not match its schema".into())
        }
        None => Error::Validation(errors),
    }
}

/// The schema `schema` names, following a `$ref` into `components`.
pub fn resolve<'a>(schema: &'a Value, components: &'a Map<String, Value>) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => reference
            .rsplit('/')
            .next()
            .and_then(|name| components.get(name))
            .unwrap_or(schema),
        None => schema,
    }
}

/// Records under `field` (`name`, `user.name`, `permissions[2]`) each way `value`
/// does not fit `schema`.
pub fn mismatches(
    value: &Value,
    schema: &Value,
    components: &Map<String, Value>,
    field: &str,
    errors: &mut Vec<FieldError>,
) {
    let schema = resolve(schema, components);
    if value.is_null() && schema.get("nullable") == Some(&Value::Bool(true)) {
        return;
    }
    for part in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        mismatches(value, part, components, field, errors);
    }
    if !fits(value, schema) {
        errors.push(FieldError::new(field, expectation(schema, components)));
        return;
    }
    match value {
        Value::Object(object) => {
            let required = |name: &str| {
                schema
                    .get("required")
                    .and_then(Value::as_array)
                    .is_some_and(|required| required.iter().any(|r| r == name))
            };
            let properties = schema.get("properties").and_then(Value::as_object);
            for (name, property) in properties.into_iter().flatten() {
                let inner = join(field, name);
                match object.get(name) {
                    // An optional field may be null, as poem-openapi reads `Option`.
                    None | Some(Value::Null) => {
                        if required(name) {
                            errors.push(FieldError::new(inner, "is required"));
                        }
                    }
                    Some(value) => mismatches(value, property, components, &inner, errors),
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                for (index, value) in items.iter().enumerate() {
                    mismatches(
                        value,
                        item,
                        components,
                        &format!("{field}[{index}]"),
                        errors,
                    );
                }
            }
        }
        _ => {}
    }
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}.{name}")
    }
}

/// Whether `value` is of the schema's type, format and enum (not its lengths or
/// ranges, which the domain parsers check).
fn fits(value: &Value, schema: &Value) -> bool {
    let text = |key: &str| schema.get(key).and_then(Value::as_str);
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values.contains(value);
    }
    match (text("type"), value) {
        (None, _) => true,
        (Some("string"), Value::String(text_value)) => match text("format") {
            Some("uuid") => uuid::Uuid::parse_str(text_value).is_ok(),
            Some("date-time") => chrono::DateTime::parse_from_rfc3339(text_value).is_ok(),
            _ => true,
        },
        (Some("integer"), Value::Number(number)) => match text("format") {
            Some(format) if format.starts_with("uint") => number.is_u64(),
            _ => number.is_i64(),
        },
        (Some("number"), Value::Number(_))
        | (Some("boolean"), Value::Bool(_))
        | (Some("array"), Value::Array(_))
        | (Some("object"), Value::Object(_)) => true,
        _ => false,
    }
}

/// What a value of `schema` must be, in a client's words.
pub fn expectation(schema: &Value, components: &Map<String, Value>) -> String {
    let schema = resolve(schema, components);
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let names: Vec<String> = values
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect();
        return format!("must be one of: {}", names.join(", "));
    }
    let format = schema.get("format").and_then(Value::as_str);
    match (schema.get("type").and_then(Value::as_str), format) {
        (Some("string"), Some("uuid")) => "must be a UUID".into(),
        (Some("string"), Some("date-time")) => "must be an RFC 3339 date and time".into(),
        (Some("string"), _) => "must be a string".into(),
        (Some("integer"), format) => match integer_range(schema, format) {
            Some((min, max)) => format!("must be an integer from {min} to {max}"),
            None => "must be an integer".into(),
        },
        (Some("number"), _) => "must be a number".into(),
        (Some("boolean"), _) => "must be true or false".into(),
        (Some("array"), _) => "must be an array".into(),
        (Some("object"), _) => "must be a JSON object".into(),
        _ => "is not valid".into(),
    }
}

/// The integers a schema takes: its `minimum` and `maximum`, else its format's
/// (`int64`: what a PostgreSQL `bigint` holds).
fn integer_range(schema: &Value, format: Option<&str>) -> Option<(i128, i128)> {
    // The document's bounds are JSON numbers written as floats (`100.0`).
    let bound = |key: &str| schema.get(key).and_then(Value::as_f64).map(|v| v as i128);
    let (min, max) = match format {
        Some("int64") => (i128::from(i64::MIN), i128::from(i64::MAX)),
        Some("int32") => (i128::from(i32::MIN), i128::from(i32::MAX)),
        Some("uint64") => (0, i128::from(u64::MAX)),
        Some("uint32") => (0, i128::from(u32::MAX)),
        _ => (bound("minimum")?, bound("maximum")?),
    };
    Some((
        bound("minimum").unwrap_or(min),
        bound("maximum").unwrap_or(max),
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A reply whose timestamp is serde's own (`Z`) where poem-openapi writes
    /// `+00:00`, beside a token that must not reach the log.
    #[derive(poem_openapi::Object, serde::Serialize)]
    struct Drifted {
        token: String,
        at: DateTime<Utc>,
    }

    /// The same reply written as the schema says.
    #[derive(poem_openapi::Object, serde::Serialize)]
    struct Faithful {
        token: String,
        #[serde(serialize_with = "rfc3339")]
        at: DateTime<Utc>,
    }

    fn check_message<T: ToJSON + Serialize>(value: &T) -> Option<String> {
        let body = serde_json::to_vec(value).unwrap();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            agrees_with_to_json(value, &body)
        }))
        .err()
        .map(|panic| panic.downcast_ref::<String>().cloned().unwrap_or_default())
    }

    #[test]
    fn a_reply_that_differs_from_its_schema_is_caught_by_field_without_its_values() {
        let at = DateTime::parse_from_rfc3339("2026-12-02T10:00:00.5+00:00")
            .unwrap()
            .with_timezone(&Utc);
        let faithful = Faithful {
            token: "rgk_secret".into(),
            at,
        };
        assert_eq!(check_message(&faithful), None, "the faithful reply passes");

        let drifted = Drifted {
            token: "rgk_secret".into(),
            at,
        };
        let message = check_message(&drifted).expect("the drifted reply is caught");
        assert!(message.ends_with("at: at"), "{message}");
        assert!(!message.contains("rgk_secret") && !message.contains("2026"));
    }

    fn errors(value: Value, schema: Value, components: Value) -> Vec<(String, String)> {
        let Value::Object(components) = components else {
            panic!("components are an object");
        };
        let mut errors = Vec::new();
        mismatches(&value, &schema, &components, "", &mut errors);
        errors.into_iter().map(|e| (e.field, e.message)).collect()
    }

    #[test]
    fn each_field_that_does_not_fit_is_named() {
        let components = json!({
            "Status": {"type": "string", "enum": ["active", "archived"]},
            "Body": {
                "type": "object",
                "required": ["name", "count"],
                "properties": {
                    "name": {"type": "string"},
                    "count": {"type": "integer", "format": "int64"},
                    "id": {"type": "string", "format": "uuid"},
                    "status": {"allOf": [{"$ref": "#/components/schemas/Status"}, {"nullable": true}], "nullable": true},
                    "tags": {"type": "array", "items": {"type": "string"}},
                },
            },
        });
        let found = errors(
            json!({"name": 5, "id": "x", "status": "gone", "tags": ["a", true]}),
            json!({"$ref": "#/components/schemas/Body"}),
            components.clone(),
        );
        let expected = [
            ("name", "must be a string"),
            ("count", "is required"),
            ("id", "must be a UUID"),
            ("status", "must be one of: active, archived"),
            ("tags[1]", "must be a string"),
        ];
        let mut sorted = found.clone();
        sorted.sort();
        let mut expected: Vec<(String, String)> = expected
            .iter()
            .map(|(f, m)| (f.to_string(), m.to_string()))
            .collect();
        expected.sort();
        assert_eq!(sorted, expected);
        let fine = errors(
            json!({"name": "n", "count": 1, "status": null}),
            json!({"$ref": "#/components/schemas/Body"}),
            components,
        );
        assert!(fine.is_empty(), "{fine:?}");
    }

    #[test]
    fn an_integer_too_large_for_its_field_is_told_the_range_in_our_words() {
        let int64 = json!({"type": "integer", "format": "int64"});
        let limit = json!({"type": "integer", "format": "int64", "minimum": 1.0, "maximum": 100.0});
        assert_eq!(
            errors(json!(9_223_372_036_854_775_808_u64), int64, json!({})),
            [(
                String::new(),
                "must be an integer from -9223372036854775808 to 9223372036854775807".to_string()
            )]
        );
        assert_eq!(
            expectation(&limit, &Map::new()),
            "must be an integer from 1 to 100"
        );
        let unreadable = serde_json::from_str::<Value>(r#"{"n": 1e400}"#).unwrap_err();
        let detail = not_json(&unreadable);
        assert!(detail.contains("too large"), "{detail}");
        assert!(!detail.contains("out of range"), "{detail}");
    }

    #[test]
    fn a_body_that_is_not_an_object_is_named_as_a_whole() {
        let found = errors(json!([1]), json!({"type": "object"}), json!({}));
        assert_eq!(
            found,
            [(String::new(), "must be a JSON object".to_string())]
        );
    }
}
