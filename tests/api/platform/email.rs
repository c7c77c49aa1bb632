//! The mailer against a real SMTP conversation (the in-process sink): what arrives,
//! and how each failure is classified for the job runner (retry, or give up).

use std::time::Duration;

use rowguard::platform::email::{Mailer, SendError};
use serde_json::{Value, json};

use crate::helpers::{Mail, SmtpSink};

const FROM: &str = "rowguard <no-reply@rowguard.test>";
const WAIT: Duration = Duration::from_secs(10);

fn reset_data() -> Value {
    json!({
        // Long enough that lettre encodes the text part as quoted-printable.
        "link": "http://localhost:8080/console/reset-password?token=Q2hhbmdlIG1lIHBsZWFzZSwgaXQgaXMgYSB0b2tlbg",
        "expires_at": "2026-05-01 12:00 UTC",
    })
}

fn welcome_data(tenant_name: &str) -> Value {
    json!({
        "full_name": "Ada Lovelace",
        "tenant_name": tenant_name,
        "console_url": "http://localhost:8080/console",
    })
}

#[tokio::test]
async fn a_message_arrives_with_its_subject_a_text_part_and_an_html_part() {
    let sink = SmtpSink::start().await;
    let mailer = Mailer::new(Some(&sink.url()), FROM).unwrap();

    mailer
        .send("ada@example.com", "password_reset", &reset_data())
        .await
        .unwrap();

    let mail: Mail = sink.wait_for("ada@example.com", WAIT).await;
    assert_eq!(mail.from, "no-reply@rowguard.test");
    assert_eq!(mail.to, vec!["ada@example.com".to_string()]);
    assert_eq!(mail.subject, "Reset your password");
    assert!(mail.raw.contains("multipart/alternative"), "{}", mail.raw);
    // The link is whole only because the sink decodes what lettre encoded.
    assert!(mail.raw.contains("quoted-printable"), "{}", mail.raw);
    assert!(mail.text.contains("choose a new password"), "{}", mail.text);
    assert!(mail.html.contains("<a href="), "{}", mail.html);
    assert_eq!(
        mail.link("/console/reset-password?token="),
        reset_data()["link"].as_str().unwrap()
    );
    assert_eq!(mail.token(), "Q2hhbmdlIG1lIHBsZWFzZSwgaXQgaXMgYSB0b2tlbg");
}

#[tokio::test]
async fn markup_in_the_data_is_escaped_in_the_html_part_and_literal_in_the_text_part() {
    let sink = SmtpSink::start().await;
    let mailer = Mailer::new(Some(&sink.url()), FROM).unwrap();
    let script = "<script>alert(1)</script>";

    mailer
        .send("ada@example.com", "welcome", &welcome_data(script))
        .await
        .unwrap();

    let mail = sink.wait_for("ada@example.com", WAIT).await;
    assert!(!mail.html.contains(script), "{}", mail.html);
    assert!(
        mail.html
            .contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "{}",
        mail.html
    );
    assert!(mail.text.contains(script), "{}", mail.text);
}

#[tokio::test]
async fn a_recipient_the_server_refuses_is_a_permanent_error() {
    let sink = SmtpSink::start().await;
    sink.refuse("gone@example.com");
    let mailer = Mailer::new(Some(&sink.url()), FROM).unwrap();

    let error = mailer
        .send("gone@example.com", "password_reset", &reset_data())
        .await
        .unwrap_err();

    assert!(matches!(error, SendError::Permanent(_)), "{error}");
    assert!(error.to_string().contains("550"), "{error}");
    assert!(!error.to_string().contains("token"), "{error}");
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn a_server_that_is_down_is_a_transient_error() {
    let mailer = Mailer::new(Some(&SmtpSink::unused_url()), FROM).unwrap();

    let error = mailer
        .send("ada@example.com", "password_reset", &reset_data())
        .await
        .unwrap_err();

    assert!(matches!(error, SendError::Transient(_)), "{error}");
}

#[tokio::test]
async fn a_server_that_went_down_after_a_send_is_a_transient_error() {
    let sink = SmtpSink::start().await;
    let mailer = Mailer::new(Some(&sink.url()), FROM).unwrap();
    mailer
        .send("ada@example.com", "password_reset", &reset_data())
        .await
        .unwrap();
    sink.wait_for("ada@example.com", WAIT).await;

    sink.stop();
    let error = mailer
        .send("bob@example.com", "password_reset", &reset_data())
        .await
        .unwrap_err();

    assert!(matches!(error, SendError::Transient(_)), "{error}");
}

#[tokio::test]
async fn a_template_missing_a_variable_is_a_permanent_error_and_nothing_is_sent() {
    let sink = SmtpSink::start().await;
    let mailer = Mailer::new(Some(&sink.url()), FROM).unwrap();

    let error = mailer
        .send(
            "ada@example.com",
            "password_reset",
            &json!({ "expires_at": "2026-05-01 12:00 UTC" }),
        )
        .await
        .unwrap_err();

    assert!(matches!(error, SendError::Permanent(_)), "{error}");
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn an_unknown_template_is_a_permanent_error() {
    let sink = SmtpSink::start().await;
    let mailer = Mailer::new(Some(&sink.url()), FROM).unwrap();

    let error = mailer
        .send("ada@example.com", "no_such_template", &json!({}))
        .await
        .unwrap_err();

    assert!(error.is_permanent(), "{error}");
}

#[tokio::test]
async fn the_logging_transport_succeeds_without_a_server() {
    let mailer = Mailer::new(None, FROM).unwrap();
    assert!(mailer.is_logging());

    mailer
        .send("ada@example.com", "password_reset", &reset_data())
        .await
        .unwrap();
}
