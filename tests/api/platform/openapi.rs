//! The OpenAPI document is one a client generator can use fully, and the server keeps
//! to it: only a JSON string is a string (a number or a boolean in its place is a
//! problem naming the field, never coerced), a number no column holds is refused in
//! our words, never PostgreSQL's, closed sets are enums, each operation
//! documents the statuses it can answer with, and parameters are documented as they
//! are checked. Driven from the served document, so that a new operation is covered
//! without a new test.

use reqwest::Method;
use rowguard::platform::auth::{access::Requires, catalog::PERMISSION_CODES};
use serde_json::{Map, Value, json};

use crate::helpers::{TestApp, spawn_app};

async fn document(app: &TestApp) -> Value {
    app.openapi().await
}

/// Any operation of the document, by method and path: these tests are driven from the
/// document, not written per operation, so they use the low-level request builder.
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut call = app.request(method, path);
    if let Some(token) = token {
        call = call.bearer(token);
    }
    if let Some(body) = body {
        call = call.json(body);
    }
    call.await
}

fn components(spec: &Value) -> &Map<String, Value> {
    spec["components"]["schemas"].as_object().unwrap()
}

/// The schema behind a `$ref`, or behind the `allOf` of a nullable or described one.
fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    if let Some(reference) = schema["$ref"].as_str() {
        return resolve(
            spec,
            &components(spec)[reference.rsplit('/').next().unwrap()],
        );
    }
    match schema["allOf"].as_array() {
        Some(parts) => parts
            .iter()
            .map(|part| resolve(spec, part))
            .find(|part| part.get("type").is_some() || part.get("enum").is_some())
            .unwrap_or(schema),
        None => schema,
    }
}

/// A value that fits `schema`: its example when it has one.
fn valid(spec: &Value, schema: &Value) -> Value {
    let schema = resolve(spec, schema);
    if let Some(example) = schema.get("example") {
        return example.clone();
    }
    if let Some(first) = schema["enum"].as_array().and_then(|values| values.first()) {
        return first.clone();
    }
    match (schema["type"].as_str(), schema["format"].as_str()) {
        (Some("object"), _) => {
            let mut object = Map::new();
            for (name, property) in schema["properties"].as_object().into_iter().flatten() {
                object.insert(name.clone(), valid(spec, property));
            }
            Value::Object(object)
        }
        (Some("array"), _) => json!([]),
        (Some("string"), Some("uuid")) => json!("00000000-0000-4000-8000-000000000000"),
        (Some("string"), Some("email")) => json!("someone@example.com"),
        (Some("string"), Some("password")) => json!("a long enough password"),
        (Some("string"), _) => json!("Text"),
        (Some("integer"), _) => json!(1),
        (Some("boolean"), _) => json!(true),
        _ => Value::Null,
    }
}

/// Each operation with a JSON body: method, path (ids filled in), operationId, the
/// body's schema, and whether it takes a bearer token.
fn bodies(spec: &Value) -> Vec<(Method, String, String, Value, bool)> {
    let mut found = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let Some(content) = operation["requestBody"]["content"].as_object() else {
                continue;
            };
            let (_, media) = content.iter().next().unwrap();
            let path = path
                .split('/')
                .map(|s| match s.starts_with('{') {
                    true => "00000000-0000-4000-8000-000000000000",
                    false => s,
                })
                .collect::<Vec<_>>()
                .join("/");
            let bearer = operation["security"]
                .as_array()
                .is_some_and(|s| !s.is_empty());
            found.push((
                method.to_uppercase().parse().unwrap(),
                path,
                operation["operationId"].as_str().unwrap().to_string(),
                media["schema"].clone(),
                bearer,
            ));
        }
    }
    found
}

/// Where a string goes in a body: a property (`name`), or an array's item
/// (`permissions[0]`), with the body that has a `replacement` there.
fn string_places(spec: &Value, schema: &Value, replacement: &Value) -> Vec<(String, Value)> {
    let schema = resolve(spec, schema);
    let base = valid(spec, schema);
    let mut places = Vec::new();
    for (name, property) in schema["properties"].as_object().into_iter().flatten() {
        let property = resolve(spec, property);
        let mut body = base.clone();
        if property["type"] == "string" {
            body[name] = replacement.clone();
            places.push((name.clone(), body));
        } else if property["type"] == "array"
            && resolve(spec, &property["items"])["type"] == "string"
        {
            body[name] = json!([replacement]);
            places.push((format!("{name}[0]"), body));
        }
    }
    places
}

/// Words of the server's internals that no answer may show.
fn internal_names(spec: &Value) -> Vec<String> {
    let mut names: Vec<String> = components(spec).keys().cloned().collect();
    names.extend(["int64", "occurred while parsing", "Expected input type"].map(String::from));
    names
}

/// Whether a response is the body parser refusing the body (as opposed to a later
/// answer: not found, a rule's 422, a missing store header).
fn refused_by_the_parser(status: u16, body: &Value) -> bool {
    let detail = body["detail"].as_str().unwrap_or_default();
    let type_errors = body["errors"].as_array().into_iter().flatten().any(|e| {
        let message = e["message"].as_str().unwrap_or_default();
        [
            "must be a string",
            "must be one of",
            "must be an integer",
            "must be a UUID",
        ]
        .iter()
        .any(|m| message.starts_with(m))
            || message == "is required"
    });
    (status == 400 && detail.contains("request body")) || (status == 422 && type_errors)
}

#[tokio::test]
async fn a_number_or_a_boolean_in_place_of_any_string_of_any_body_is_a_problem_naming_the_field() {
    let app = spawn_app().await;
    let spec = document(&app).await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let internals = internal_names(&spec);
    let operations = bodies(&spec);
    assert!(
        operations.len() >= 20,
        "{} operations with a body",
        operations.len()
    );
    let mut checked = 0;
    for (method, path, id, schema, bearer) in operations {
        let token = bearer.then_some(acme.token.as_str());
        let good = valid(&spec, &schema);
        let answer = send(&app, method.clone(), &path, token, Some(&good)).await;
        let status = answer.status().as_u16();
        let body: Value = answer.json().await.unwrap_or_default();
        assert!(
            !refused_by_the_parser(status, &body),
            "{id}: the valid body {good} was refused: {status} {body}"
        );
        for replacement in [json!(5), json!(true)] {
            for (field, bad) in string_places(&spec, &schema, &replacement) {
                let answer = send(&app, method.clone(), &path, token, Some(&bad)).await;
                let status = answer.status().as_u16();
                let content_type = answer.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .to_string();
                let text = answer.text().await.unwrap();
                assert!(
                    matches!(status, 400 | 422),
                    "{id}: {field} = {replacement} answered {status}: {text}"
                );
                assert!(content_type.starts_with("application/problem+json"), "{id}");
                let problem: Value = serde_json::from_str(&text).unwrap();
                let named = problem["errors"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|error| error["field"] == field.as_str())
                    || problem["detail"].as_str().unwrap().contains(&field);
                assert!(named, "{id}: {field} = {replacement} is not named: {text}");
                for internal in &internals {
                    assert!(
                        !text.contains(internal.as_str()),
                        "{id}: {field} = {replacement}: the answer shows {internal:?}: {text}"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 40, "only {checked} string fields were tried");
}

#[tokio::test]
async fn a_store_named_by_a_number_is_refused_and_none_is_created() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let post = |body: Value| {
        let (app, token) = (&app, acme.token.clone());
        async move {
            send(
                app,
                Method::POST,
                "/api/v1/stores",
                Some(&token),
                Some(&body),
            )
            .await
        }
    };
    let refused = post(json!({"name": 5})).await;
    assert_eq!(refused.status(), 422);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["code"], "validation_failed");
    assert_eq!(
        problem["errors"],
        json!([{"field": "name", "message": "must be a string"}])
    );
    let stores: Value = app.stores_list(&acme.token).await.json().await.unwrap();
    assert_eq!(stores["items"], json!([]));
    let missing = post(json!({"code": "X"})).await;
    let problem: Value = missing.json().await.unwrap();
    assert_eq!(
        problem["errors"],
        json!([{"field": "name", "message": "is required"}])
    );
}

#[tokio::test]
async fn a_login_with_a_numeric_email_is_a_422_not_a_401() {
    let app = spawn_app().await;
    let response = app
        .auth_login(&json!({"email": 123, "password": "whatever it is"}))
        .await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "email");
}

#[tokio::test]
async fn an_unknown_status_in_a_patch_is_a_422_naming_the_field() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let store = app.store(&acme.token, "Main").await;
    let response = app
        .stores_update(&acme.token, &store, &json!({"status": "closed"}))
        .await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "status");
    assert_eq!(
        problem["errors"][0]["message"],
        "must be one of: active, archived"
    );
    let member = app
        .users_update(&acme.token, &acme.owner_id, &json!({"status": "gone"}))
        .await;
    assert_eq!(member.status(), 422);
    let problem: Value = member.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "status");
}

#[tokio::test]
async fn malformed_json_is_a_400_that_says_where_and_shows_no_internal_names() {
    let app = spawn_app().await;
    let spec = document(&app).await;
    let response = app
        .request(Method::POST, "/api/v1/auth/login")
        .header("content-type", "application/json")
        .body("{\"email\": \"a@example.com\",")
        .await;
    assert_eq!(response.status(), 400);
    let text = response.text().await.unwrap();
    let problem: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(problem["code"], "bad_request");
    assert!(
        problem["detail"].as_str().unwrap().contains("line 1"),
        "{text}"
    );
    for internal in internal_names(&spec) {
        assert!(!text.contains(&internal), "{internal:?} in {text}");
    }
}

#[tokio::test]
async fn a_malformed_parameter_is_a_400_naming_it_without_type_names() {
    let app = spawn_app().await;
    let spec = document(&app).await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    for (method, path, name) in [
        (Method::GET, "/api/v1/stores?limit=abc", "`limit`"),
        (Method::GET, "/api/v1/stores/not-a-uuid", "`id`"),
        (
            Method::DELETE,
            "/api/v1/stores/00000000-0000-4000-8000-000000000000/users/x",
            "`user_id`",
        ),
        (Method::GET, "/api/v1/invitations?status=lost", "`status`"),
    ] {
        let response = send(&app, method, path, Some(&acme.token), None).await;
        assert_eq!(response.status(), 400, "{path}");
        let text = response.text().await.unwrap();
        let problem: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(problem["code"], "bad_request", "{path}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(name), "{path}: {detail}");
        assert!(
            !detail.contains("param0") && !detail.contains("param1"),
            "{path}: {detail}"
        );
        for internal in internal_names(&spec) {
            assert!(!text.contains(&internal), "{path}: {internal:?} in {text}");
        }
    }
}

/// Properties whose values are a closed set, wherever they appear.
const CLOSED_SETS: &[&str] = &[
    "status",
    "action",
    "target_type",
    "token_type",
    "permission",
];

#[tokio::test]
async fn every_closed_set_property_in_the_document_is_an_enum() {
    let app = spawn_app().await;
    let spec = document(&app).await;
    let mut checked = Vec::new();
    for (schema_name, schema) in components(&spec) {
        for (name, property) in schema["properties"].as_object().into_iter().flatten() {
            // A problem's `status` is the HTTP status, a number.
            let http_status = schema_name == "Problem" && name == "status";
            let closed = (CLOSED_SETS.contains(&name.as_str()) && !http_status)
                || name == "permissions"
                || (schema_name == "Problem" && name == "code")
                || (schema_name == "Permission" && name == "code");
            if !closed {
                continue;
            }
            let mut value = resolve(&spec, property);
            if value["type"] == "array" {
                value = resolve(&spec, &value["items"]);
            }
            assert!(
                value["enum"].as_array().is_some_and(|e| !e.is_empty()),
                "{schema_name}.{name} is not an enum: {property}"
            );
            checked.push(format!("{schema_name}.{name}"));
        }
    }
    for expected in [
        "Store.status",
        "UpdateStoreRequest.status",
        "Member.status",
        "UpdateMemberRequest.status",
        "Tenant.status",
        "User.status",
        "Membership.status",
        "Invitation.status",
        "Problem.code",
        "Problem.permission",
        "AuditEvent.action",
        "AuditEvent.target_type",
        "TokenPair.token_type",
        "Role.permissions",
        "Me.permissions",
    ] {
        assert!(
            checked.iter().any(|c| c == expected),
            "{expected} was not checked"
        );
    }
    let codes = resolve(&spec, &components(&spec)["Problem"]["properties"]["code"]);
    for code in [
        "validation_failed",
        "store_access_denied",
        "unsupported_media_type",
    ] {
        assert!(
            codes["enum"].as_array().unwrap().contains(&json!(code)),
            "{code}"
        );
    }
}

#[tokio::test]
async fn the_permission_codes_of_the_document_are_the_catalog() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let catalog: Value = app
        .permissions_list(&acme.token)
        .await
        .json()
        .await
        .unwrap();
    let mut codes: Vec<&str> = catalog
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    codes.sort_unstable();
    let mut known = PERMISSION_CODES.to_vec();
    known.sort_unstable();
    assert_eq!(codes, known);
}

#[test]
fn every_declared_permission_is_in_the_catalog() {
    for operation in rowguard::modules::operations() {
        if let Some(code) = operation.permission_code() {
            assert!(PERMISSION_CODES.contains(&code), "{}: {code}", operation.id);
        }
    }
}

#[tokio::test]
async fn public_operations_have_no_security_and_others_document_401_and_403() {
    let app = spawn_app().await;
    let spec = document(&app).await;
    let declared = rowguard::modules::operations();
    for item in spec["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            let id = operation["operationId"].as_str().unwrap();
            let declaration = declared.iter().find(|d| d.id == id).unwrap();
            let responses = operation["responses"].as_object().unwrap();
            if declaration.requires == Requires::Public {
                assert_eq!(operation["security"], json!([]), "{id}");
            } else {
                assert!(
                    responses.contains_key("401") && responses.contains_key("403"),
                    "{id}"
                );
                assert!(
                    responses["401"]["headers"]
                        .get("WWW-Authenticate")
                        .is_some(),
                    "{id}"
                );
            }
        }
    }
}

#[tokio::test]
async fn each_operation_documents_only_the_statuses_it_can_answer_with() {
    let app = spawn_app().await;
    let spec = document(&app).await;
    let statuses = |path: &str, method: &str| -> Vec<String> {
        spec["paths"][path][method]["responses"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let register = statuses("/api/v1/auth/register", "post");
    for absent in ["401", "404"] {
        assert!(
            !register.contains(&absent.to_string()),
            "register documents {absent}"
        );
    }
    for present in [
        "201", "202", "400", "403", "409", "413", "415", "422", "429", "500", "503",
    ] {
        assert!(
            register.contains(&present.to_string()),
            "register lacks {present}"
        );
    }
    let login = statuses("/api/v1/auth/login", "post");
    for present in ["401", "403", "429"] {
        assert!(
            login.contains(&present.to_string()),
            "login lacks {present}"
        );
    }
    assert!(
        spec["paths"]["/api/v1/auth/login"]["post"]["responses"]["429"]["headers"]
            .get("Retry-After")
            .is_some()
    );
    let list = statuses("/api/v1/stores", "get");
    for absent in ["404", "409", "413", "415", "422"] {
        assert!(
            !list.contains(&absent.to_string()),
            "stores_list documents {absent}"
        );
    }
    assert!(statuses("/api/v1/stores/{id}", "get").contains(&"404".to_string()));
}

#[tokio::test]
async fn limit_documents_its_range_and_default() {
    let app = spawn_app().await;
    let spec = document(&app).await;
    let mut seen = 0;
    for item in spec["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                if parameter["name"] == "limit" {
                    let schema = &parameter["schema"];
                    assert_eq!(
                        (&schema["minimum"], &schema["maximum"], &schema["default"]),
                        (&json!(1.0), &json!(100.0), &json!(50)),
                        "{}",
                        operation["operationId"]
                    );
                    seen += 1;
                }
            }
        }
    }
    assert!(seen >= 6, "limit on {seen} operations");
}

#[tokio::test]
async fn request_bodies_have_examples_and_strings_document_their_formats() {
    let app = spawn_app().await;
    let spec = document(&app).await;
    let schemas = components(&spec);
    for name in [
        "RegisterRequest",
        "LoginRequest",
        "CreateStoreRequest",
        "CreateProductRequest",
        "CreateInvitationRequest",
    ] {
        assert!(
            schemas[name]["example"].is_object(),
            "{name} has no example"
        );
    }
    let register = &schemas["RegisterRequest"]["properties"];
    assert_eq!(register["email"]["format"], "email");
    assert_eq!(register["email"]["maxLength"], 254);
    assert_eq!(
        (
            &register["password"]["minLength"],
            &register["password"]["maxLength"]
        ),
        (&json!(8), &json!(128))
    );
    assert_eq!(
        (
            &register["full_name"]["minLength"],
            &register["full_name"]["maxLength"]
        ),
        (&json!(1), &json!(200))
    );
}

#[tokio::test]
async fn header_names_in_the_document_have_their_standard_casing() {
    let app = spawn_app().await;
    let spec = document(&app).await;
    for item in spec["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            for response in operation["responses"].as_object().unwrap().values() {
                for name in response["headers"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|h| h.0)
                {
                    assert!(
                        ["WWW-Authenticate", "Retry-After", "X-Request-ID"]
                            .contains(&name.as_str()),
                        "{name} in {}",
                        operation["operationId"]
                    );
                }
            }
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                if parameter["in"] == "header" {
                    // Payment initiation's Idempotency-Key is the one header of its own.
                    assert!(
                        parameter["name"] == "X-Store-ID"
                            || (parameter["name"] == "Idempotency-Key"
                                && operation["operationId"] == "payments_mpesa_initiate"),
                        "{} in {}",
                        parameter["name"],
                        operation["operationId"]
                    );
                }
            }
        }
    }
}

/// PostgreSQL's words for a value it cannot take (`bigint out of range`, `invalid
/// input syntax for type ...`, `... violates check constraint`, `timestamp out of
/// range`): none may reach an answer.
const POSTGRESQL_PHRASES: &[&str] = &[
    "out of range",
    "invalid input syntax",
    "violates",
    "bigint",
    "timestamp",
    "numeric",
    "invalid byte sequence",
];

/// Numbers at and beyond the edges of what a `bigint` holds, as JSON text (sent as
/// written: `1e400` has no `serde_json::Value`).
const EDGE_NUMBERS: &[&str] = &[
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "-9223372036854775809",
    "99999999999999999999999999999",
    "1e30",
    "-1e30",
    "1e400",
    "1.5",
];

/// Cursors made by hand around a real row id: times before 1970, before 4713 BC (which
/// chrono holds and PostgreSQL does not), after 9999, and microseconds beyond i64.
fn edge_cursors(id: &str) -> Vec<String> {
    use base64::Engine as _;
    [
        i64::MIN.to_string(),
        "-300000000000000000".into(),
        "-1".into(),
        "253402300800000000".into(),
        i64::MAX.to_string(),
        "99999999999999999999999".into(),
    ]
    .iter()
    .map(|micros| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{micros}|{id}")))
    .collect()
}

/// Asserts that an answer is not a server error and shows none of PostgreSQL's words.
async fn in_our_words(what: &str, response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let is_problem = response
        .headers()
        .get("content-type")
        .is_some_and(|t| t.as_bytes().starts_with(b"application/problem+json"));
    let text = response.text().await.unwrap();
    assert!(status < 500, "{what}: {status} {text}");
    assert!(status < 400 || is_problem, "{what}: {status} {text}");
    let lowered = text.to_lowercase();
    for phrase in POSTGRESQL_PHRASES {
        assert!(!lowered.contains(phrase), "{what}: {phrase:?} in {text}");
    }
    (status, text)
}

#[tokio::test]
async fn numbers_beyond_what_postgresql_holds_are_refused_in_our_words_wherever_a_number_goes() {
    let app = spawn_app().await;
    let spec = document(&app).await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let store = app.store(&acme.token, "North").await;
    let product = app.product(&acme.token, "W-1").await;
    app.product(&acme.token, "W-2").await;
    // Bodies name the tenant's product, paths its product too, so that a value that
    // passes the parser goes on to the rules and the SQL.
    let placeholder = "00000000-0000-4000-8000-000000000000";
    let real = |text: &str| text.replace(placeholder, &product);

    // Lists: `limit` and `cursor`, in the store (the inventory needs one).
    let mut lists = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        let Some(get) = item.get("get") else { continue };
        // Platform admins only (403 for the tenant's Owner): their inputs are checked
        // by the platform routes' own tests.
        if get["x-platform-admin"] == true {
            continue;
        }
        let names: Vec<&str> = get["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["name"].as_str())
            .collect();
        if names.contains(&"limit") && names.contains(&"cursor") {
            lists.push(path.clone());
        }
    }
    assert!(lists.len() >= 7, "{lists:?}");
    let list = |path: &str| {
        app.request(Method::GET, path)
            .bearer(&acme.token)
            .in_store(&store)
    };
    for path in &lists {
        // The legitimate page works, and so does the cursor it gives.
        let first = list(path).limit(1).await;
        let (status, text) = in_our_words(path, first).await;
        assert_eq!(status, 200, "{path}: {text}");
        if let Some(next) = serde_json::from_str::<Value>(&text).unwrap()["next_cursor"].as_str() {
            let second = list(path).limit(1).cursor(next).await;
            assert_eq!(in_our_words(path, second).await.0, 200, "{path}");
        }
        for limit in EDGE_NUMBERS.iter().chain(&["0", "101"]) {
            let what = format!("{path}?limit={limit}");
            let (status, _) = in_our_words(&what, list(path).query("limit", limit).await).await;
            assert_eq!(status, 400, "{what}");
        }
        for cursor in edge_cursors(&product) {
            let what = format!("{path}?cursor={cursor}");
            let (status, _) = in_our_words(&what, list(path).cursor(&cursor).await).await;
            assert_eq!(status, 400, "{what}");
        }
    }
    let products: Value = app
        .products_list(&acme.token)
        .limit(1)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        products["next_cursor"].is_string(),
        "a real cursor was tried"
    );

    // Bodies: each integer property, at and beyond the edges.
    let mut fields = 0;
    for (method, path, id, schema, _) in bodies(&spec) {
        let schema = resolve(&spec, &schema);
        let integers: Vec<&String> = schema["properties"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, property)| resolve(&spec, property)["type"] == "integer")
            .map(|(name, _)| name)
            .collect();
        if integers.is_empty() {
            continue;
        }
        let good = real(&valid(&spec, schema).to_string());
        let answer = app
            .request(method.clone(), real(&path))
            .bearer(&acme.token)
            .in_store(&store)
            .header("content-type", "application/json")
            .body(good.clone())
            .await;
        let (status, text) = in_our_words(&id, answer).await;
        let body: Value = serde_json::from_str(&text).unwrap_or_default();
        assert!(
            !refused_by_the_parser(status, &body),
            "{id}: the valid body {good} was refused: {status} {text}"
        );
        for name in integers {
            fields += 1;
            for number in EDGE_NUMBERS {
                let mut bad: Value = serde_json::from_str(&good).unwrap();
                bad[name] = json!("NUMBER");
                let bad = bad.to_string().replace("\"NUMBER\"", number);
                let answer = app
                    .request(method.clone(), real(&path))
                    .bearer(&acme.token)
                    .in_store(&store)
                    .header("content-type", "application/json")
                    .body(bad)
                    .await;
                in_our_words(&format!("{id}: {name} = {number}"), answer).await;
            }
        }
    }
    assert!(fields >= 3, "only {fields} integer fields were tried");

    // Path ids and the store header: a number where a UUID goes (or a path's token:
    // then, like any unknown one, not found).
    let huge = "99999999999999999999";
    for (path, item) in spec["paths"].as_object().unwrap() {
        if !path.contains('{') {
            continue;
        }
        let path = path
            .split('/')
            .map(|s| if s.starts_with('{') { huge } else { s })
            .collect::<Vec<_>>()
            .join("/");
        for method in item.as_object().unwrap().keys() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let what = format!("{method} {path}");
            let answer = app.request(method, &path).bearer(&acme.token).await;
            let (status, _) = in_our_words(&what, answer).await;
            assert!(matches!(status, 400 | 404), "{what}: {status}");
        }
    }
    let header = app.me_get(&acme.token).header("X-Store-ID", huge).await;
    assert_eq!(in_our_words("X-Store-ID", header).await.0, 400);
}

#[test]
fn every_declared_feature_and_limit_is_in_the_catalog() {
    use rowguard::platform::auth::catalog::{FEATURE_CODES, LIMIT_CODES};
    for operation in rowguard::modules::operations() {
        if let Some(feature) = operation.feature {
            assert!(
                FEATURE_CODES.contains(&feature),
                "{}: {feature}",
                operation.id
            );
        }
        if let Some(limit) = operation.limit {
            // api_requests is metered, never checked when something is created.
            assert!(
                LIMIT_CODES.contains(&limit) && limit != "api_requests",
                "{}: {limit}",
                operation.id
            );
        }
    }
}

#[tokio::test]
async fn the_feature_and_limit_codes_of_the_code_are_the_seeded_ones() {
    use rowguard::platform::auth::catalog::{FEATURE_CODES, LIMIT_CODES};
    let app = spawn_app().await;
    let plans: Value = app.plans_list().await.json().await.unwrap();
    for plan in plans["items"].as_array().unwrap() {
        let mut features: Vec<&str> = plan["features"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        features.sort_unstable();
        assert_eq!(features, FEATURE_CODES, "{}", plan["code"]);
        let mut limits: Vec<&str> = plan["limits"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        limits.sort_unstable();
        assert_eq!(limits, LIMIT_CODES, "{}", plan["code"]);
    }
    // The plan's own tables, not only what GET /plans makes of them.
    let client = app.db.superuser().await;
    let seeded: Vec<String> = client
        .query("SELECT code FROM features ORDER BY code", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(seeded, FEATURE_CODES);
    let seeded: Vec<String> = client
        .query("SELECT code FROM plan_limit_kinds ORDER BY code", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(seeded, LIMIT_CODES);
}

#[tokio::test]
async fn the_document_publishes_each_operations_feature_and_limit() {
    let app = spawn_app().await;
    let spec = document(&app).await;
    let operation = |path: &str, method: &str| spec["paths"][path][method].clone();
    let inventory = operation("/api/v1/inventory", "get");
    assert_eq!(inventory["x-feature"], "inventory");
    assert!(inventory["responses"].get("402").is_some());
    assert_eq!(
        operation("/api/v1/audit-events", "get")["x-feature"],
        "audit_log"
    );
    let create_store = operation("/api/v1/stores", "post");
    assert_eq!(create_store["x-limit"], "stores");
    assert!(create_store["responses"].get("402").is_some());
    assert_eq!(operation("/api/v1/products", "post")["x-limit"], "products");
    assert_eq!(
        operation("/api/v1/invitations", "post")["x-limit"],
        "members"
    );
    // Ungated operations carry neither, and no 402.
    let list_stores = operation("/api/v1/stores", "get");
    assert!(list_stores.get("x-feature").is_none() && list_stores.get("x-limit").is_none());
    assert!(list_stores["responses"].get("402").is_none());
}
