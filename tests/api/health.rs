//! The health module: the process and its database.

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn health_answers_ok() {
    let app = spawn_app().await;
    let response = app.health_get().await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ok"}));
}

#[tokio::test]
async fn health_db_answers_ok_when_the_database_is_migrated() {
    let app = spawn_app().await;
    let response = app.health_db().await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn health_db_answers_503_unavailable_when_a_migration_is_missing() {
    let app = spawn_app().await;
    app.db
        .superuser()
        .await
        .batch_execute("DELETE FROM refinery_schema_history WHERE version = (SELECT max(version) FROM refinery_schema_history)")
        .await
        .unwrap();
    assert_problem(app.health_db().await, 503, "unavailable").await;
}
