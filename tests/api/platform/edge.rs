//! The HTTP edge (platform/http): the OpenAPI document, Swagger UI, request ids,
//! problem+json, the body limit, graceful shutdown.

use reqwest::Method;

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn an_unknown_path_answers_a_problem_json_404() {
    let app = spawn_app().await;
    // Not an operation: no operation method sends that.
    let unknown = app.request(Method::GET, "/api/v1/nothing-here").await;
    let body = assert_problem(unknown, 404, "not_found").await;
    assert!(body["request_id"].is_string());
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_keeps_a_callers_own() {
    let app = spawn_app().await;
    let response = app.health_get().await;
    let id = response
        .headers()
        .get("x-request-id")
        .expect("a request id");
    assert_eq!(id.len(), 36, "a UUID");

    let response = app
        .health_get()
        .header("x-request-id", "from-the-load-balancer-42")
        .await;
    assert_eq!(
        response.headers()["x-request-id"],
        "from-the-load-balancer-42"
    );

    // Anything that could forge log lines is replaced.
    let response = app
        .health_get()
        .header("x-request-id", "evil id\" injected=1")
        .await;
    assert_ne!(response.headers()["x-request-id"], "evil id\" injected=1");
}

#[tokio::test]
async fn the_openapi_document_names_every_operation_resource_underscore_action() {
    let app = spawn_app().await;
    let response = app.openapi_document().await;
    assert_eq!(response.status(), 200);
    let spec: serde_json::Value = response.json().await.unwrap();
    let mut operations = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap_or_default();
            let (resource, action) = id.split_once('_').unwrap_or_default();
            assert!(
                !resource.is_empty()
                    && !action.is_empty()
                    && id.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{method} {path} has operationId {id:?}"
            );
            operations += 1;
        }
    }
    assert!(operations >= 2);
}

#[tokio::test]
async fn swagger_ui_is_served_at_docs() {
    let app = spawn_app().await;
    let response = app.swagger_ui().await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("swagger"), "{html}");
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413_before_it_is_read() {
    let app = spawn_app().await;
    // A method /health does not take, and raw bytes: no operation method sends that.
    let response = app
        .request(Method::POST, "/health")
        .body(vec![b'x'; 1024 * 1024])
        .await;
    assert_problem(response, 413, "payload_too_large").await;
}

#[tokio::test]
async fn graceful_shutdown_stops_the_server_cleanly() {
    let app = spawn_app().await;
    assert_eq!(app.health_get().await.status(), 200);
    let address = app.address;
    app.stop().await.expect("the server stops without error");
    assert!(
        tokio::net::TcpStream::connect(address).await.is_err(),
        "still listening"
    );
}

#[tokio::test]
async fn every_problem_carries_a_detail() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let answers = [
        (
            app.products_get(&acme.token, uuid::Uuid::new_v4()).await,
            404,
        ),
        (
            app.request(reqwest::Method::GET, "/api/v1/no-such-route")
                .await,
            404,
        ),
        (app.request(reqwest::Method::PUT, "/health").await, 405),
        (app.request(reqwest::Method::GET, "/api/v1/me").await, 401),
        (app.products_list(&acme.token).limit(0).await, 400),
    ];
    for (response, status) in answers {
        assert_eq!(response.status().as_u16(), status);
        let body: serde_json::Value = response.json().await.unwrap();
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(!detail.is_empty(), "no detail in {body}");
    }
}
