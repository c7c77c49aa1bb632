//! Bearer tokens: what is refused, and a member locked out at once.

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::json;

use crate::helpers::{TestApp, assert_problem, spawn_app, test_settings, text};

fn secret(app: &TestApp) -> Vec<u8> {
    test_settings(&app.db.url)
        .jwt_secret
        .unwrap()
        .expose()
        .as_bytes()
        .to_vec()
}

fn claims_of(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// The legitimate case each attack below starts from: the claims as issued, signed
/// with the server's key, are accepted.
async fn accepted_as_issued(app: &TestApp, claims: &serde_json::Value) {
    assert_eq!(app.me_get(&sign(claims, &secret(app))).await.status(), 200);
}

fn sign(claims: &serde_json::Value, key: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(key),
    )
    .unwrap()
}

#[tokio::test]
async fn a_valid_token_is_accepted_and_carries_the_documented_claims() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com", "First").await;
    let token = text(&session, "access_token");
    let claims = claims_of(&token);
    for claim in ["sub", "tid", "iat", "exp", "iss", "aud", "jti"] {
        assert!(
            !claims[claim].is_null(),
            "claim {claim} missing from {claims}"
        );
    }
    assert_eq!(claims["tid"], session["tenant"]["id"]);
    assert_eq!(claims["sub"], session["user"]["id"]);
    // The same claims re-signed with the server's key are accepted: the refusals
    // below are about what was changed, not about how the test signs.
    assert_eq!(
        app.me_get(&sign(&claims, &secret(&app))).await.status(),
        200
    );
}

#[tokio::test]
async fn a_missing_or_malformed_authorization_header_answers_401_with_www_authenticate() {
    let app = spawn_app().await;
    // No Authorization header: no operation method sends that.
    let response = app.request(Method::GET, "/api/v1/me").await;
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_problem(response, 401, "unauthenticated").await;
    let response = app.me_get("not.a.jwt").await;
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_problem(response, 401, "unauthenticated").await;
}

#[tokio::test]
async fn an_expired_token_answers_401_token_expired() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com", "First").await;
    let mut claims = claims_of(&text(&session, "access_token"));
    accepted_as_issued(&app, &claims).await;
    let now = chrono::Utc::now().timestamp();
    claims["iat"] = json!(now - 3600);
    claims["exp"] = json!(now - 60);
    assert_problem(
        app.me_get(&sign(&claims, &secret(&app))).await,
        401,
        "token_expired",
    )
    .await;
}

#[tokio::test]
async fn a_token_signed_with_another_key_answers_401() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com", "First").await;
    let claims = claims_of(&text(&session, "access_token"));
    accepted_as_issued(&app, &claims).await;
    let forged = sign(&claims, b"someone else's key, also 32 bytes long");
    assert_problem(app.me_get(&forged).await, 401, "unauthenticated").await;
}

#[tokio::test]
async fn a_token_with_alg_none_answers_401() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com", "First").await;
    let claims = claims_of(&text(&session, "access_token"));
    accepted_as_issued(&app, &claims).await;
    let b64 = |value: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
    };
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims)
    );
    assert_problem(app.me_get(&unsigned).await, 401, "unauthenticated").await;
}

#[tokio::test]
async fn a_token_whose_tenant_was_changed_answers_401() {
    let app = spawn_app().await;
    let ada = app.register("ada@example.com", "First").await;
    let grace = app.register("grace@example.com", "Second").await;
    let token = text(&ada, "access_token");
    assert_eq!(app.me_get(&token).await.status(), 200);
    // Keep the signature, swap the payload's tid for another tenant's.
    let mut claims = claims_of(&token);
    claims["tid"] = grace["tenant"]["id"].clone();
    let parts: Vec<&str> = token.split('.').collect();
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
    let tampered = format!("{}.{}.{}", parts[0], payload, parts[2]);
    assert_problem(app.me_get(&tampered).await, 401, "unauthenticated").await;
}

#[tokio::test]
async fn a_token_of_another_issuer_or_audience_answers_401() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com", "First").await;
    for (claim, value) in [("iss", "someone-else"), ("aud", "another-api")] {
        let mut claims = claims_of(&text(&session, "access_token"));
        accepted_as_issued(&app, &claims).await;
        claims[claim] = json!(value);
        assert_problem(
            app.me_get(&sign(&claims, &secret(&app))).await,
            401,
            "unauthenticated",
        )
        .await;
    }
}

#[tokio::test]
async fn a_removed_member_is_refused_on_the_next_request_despite_a_valid_token() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com", "First").await;
    let token = text(&session, "access_token");
    assert_eq!(app.me_get(&token).await.status(), 200);
    app.db
        .superuser()
        .await
        .batch_execute("DELETE FROM tenant_users")
        .await
        .unwrap();
    assert_problem(app.me_get(&token).await, 401, "unauthenticated").await;
    let refresh = app
        .auth_refresh(&json!({"refresh_token": session["refresh_token"]}))
        .await;
    assert_problem(refresh, 401, "unauthenticated").await;
}

#[tokio::test]
async fn a_suspended_member_or_tenant_is_refused_on_the_next_request() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com", "First").await;
    let token = text(&session, "access_token");
    let superuser = app.db.superuser().await;
    superuser
        .batch_execute("UPDATE tenant_users SET status = 'suspended'")
        .await
        .unwrap();
    assert_problem(app.me_get(&token).await, 403, "tenant_suspended").await;
    let refresh = app
        .auth_refresh(&json!({"refresh_token": session["refresh_token"]}))
        .await;
    assert_problem(refresh, 403, "tenant_suspended").await;
    superuser
        .batch_execute(
            "UPDATE tenant_users SET status = 'active'; UPDATE tenants SET status = 'suspended'",
        )
        .await
        .unwrap();
    assert_problem(app.me_get(&token).await, 403, "tenant_suspended").await;
}

#[tokio::test]
async fn every_protected_operation_documents_401() {
    let app = spawn_app().await;
    let spec = app.openapi().await;
    let mut protected = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if operation["security"]
                .as_array()
                .is_some_and(|s| !s.is_empty())
            {
                protected += 1;
                assert!(
                    operation["responses"].get("401").is_some(),
                    "{method} {path} does not document 401"
                );
            }
        }
    }
    assert!(
        protected >= 4,
        "the bearer-protected operations are marked in the spec"
    );
}

#[tokio::test]
async fn a_token_of_a_session_that_was_never_issued_answers_401() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com", "First").await;
    let mut claims = claims_of(&text(&session, "access_token"));
    accepted_as_issued(&app, &claims).await;
    claims["sid"] = json!(uuid::Uuid::new_v4());
    let forged = sign(&claims, &secret(&app));
    assert_problem(app.me_get(&forged).await, 401, "unauthenticated").await;
}
