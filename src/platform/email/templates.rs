//! The email templates: files under `templates/email/`, compiled into the binary so a
//! deployment is one file. Each message is three templates, `<name>.subject.txt`,
//! `<name>.txt` and `<name>.html`; minijinja escapes by extension, so only the HTML
//! part is HTML-escaped.

use std::sync::LazyLock;

use minijinja::{Environment, UndefinedBehavior};

use super::SendError;

/// One message, ready to send.
#[derive(Clone)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

macro_rules! email_templates {
    ($($name:literal),* $(,)?) => {
        /// The messages there are templates for.
        pub const TEMPLATES: &[&str] = &[$($name),*];

        const SOURCES: &[(&str, &str)] = &[$(
            (concat!($name, ".subject.txt"), include_str!(concat!("../../../templates/email/", $name, ".subject.txt"))),
            (concat!($name, ".txt"), include_str!(concat!("../../../templates/email/", $name, ".txt"))),
            (concat!($name, ".html"), include_str!(concat!("../../../templates/email/", $name, ".html"))),
        )*];
    };
}

email_templates!(
    "invitation",
    "password_reset",
    "email_verification",
    "welcome",
    "registration_attempted",
    "invitation_accepted",
    "invoice_issued",
    "subscription_past_due",
    "usage_threshold",
    "payment_received",
    "payment_failed",
);

// A syntax error is kept rather than panicked on: `Mailer::new` reports it at start-up,
// and a unit test renders every template, so it never ships.
static ENVIRONMENT: LazyLock<Result<Environment<'static>, String>> = LazyLock::new(|| {
    let mut environment = Environment::new();
    // A missing key must fail the send, not put an empty string (or "none") into a link.
    environment.set_undefined_behavior(UndefinedBehavior::Strict);
    for (name, source) in SOURCES {
        environment
            .add_template(name, source)
            .map_err(|error| format!("{name}: {error}"))?;
    }
    Ok(environment)
});

/// Checks that every template compiles (once per process).
pub(super) fn check() -> Result<(), String> {
    ENVIRONMENT.as_ref().map(|_| ()).map_err(Clone::clone)
}

/// Renders message `template` with `data` (keys the template does not use are
/// ignored). An unknown template, a missing key or any other render failure is a
/// [`SendError::Permanent`]: sending again would fail the same way.
pub fn render(template: &str, data: &serde_json::Value) -> Result<Rendered, SendError> {
    if !TEMPLATES.contains(&template) {
        return Err(SendError::Permanent(format!(
            "unknown email template `{template}`"
        )));
    }
    let environment = ENVIRONMENT
        .as_ref()
        .map_err(|error| SendError::Permanent(format!("email templates: {error}")))?;
    let part = |suffix: &str| {
        let name = format!("{template}{suffix}");
        environment
            .get_template(&name)
            .and_then(|compiled| compiled.render(data))
            // `{error}`, never `{error:#}`: the alternate form quotes the template
            // source around the failing line, and the plain form names the place only.
            .map_err(|error| SendError::Permanent(format!("rendering {name}: {error}")))
    };
    let subject = part(".subject.txt")?;
    Ok(Rendered {
        // A header is one line: a template's stray newline must not fold the subject.
        subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
        text: part(".txt")?,
        html: part(".html")?,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn documented_data(template: &str) -> serde_json::Value {
        match template {
            "invitation" => json!({
                "link": "https://app.example/console/accept-invitation?token=abc",
                "tenant_name": "Acme",
                "inviter_name": "Ada Lovelace",
                "role_name": "Manager",
                "expires_at": "2026-05-01 12:00 UTC",
            }),
            "password_reset" => json!({
                "link": "https://app.example/console/reset-password?token=abc",
                "expires_at": "2026-05-01 12:00 UTC",
            }),
            "email_verification" => {
                json!({ "link": "https://app.example/console/verify-email?token=abc" })
            }
            "welcome" => json!({
                "full_name": "Ada Lovelace",
                "tenant_name": "Acme",
                "console_url": "https://app.example/console",
            }),
            "registration_attempted" => json!({ "console_url": "https://app.example/console" }),
            "invitation_accepted" => json!({
                "invitee_email": "grace@example.com",
                "tenant_name": "Acme",
                "console_url": "https://app.example/console",
            }),
            "invoice_issued" => json!({
                "tenant_name": "Acme",
                "number": "INV-000001",
                "amount": "KES 2,500.00",
                "plan_name": "Starter",
                "period_start": "2027-01-31",
                "period_end": "2027-02-28",
                "due_at": "2027-01-31 00:00 UTC",
                "console_url": "https://app.example/console",
            }),
            "subscription_past_due" => json!({
                "tenant_name": "Acme",
                "number": "INV-000001",
                "amount": "KES 2,500.00",
                "due_at": "2027-01-31 00:00 UTC",
                "grace_ends_at": "2027-02-07 00:00 UTC",
                "console_url": "https://app.example/console",
            }),
            "usage_threshold" => json!({
                "tenant_name": "Acme",
                "limit_name": "products",
                "threshold": 80,
                "value": 80,
                "max": 100,
                "period_ends": "2026-05-01 12:00 UTC",
                "console_url": "https://app.example/console",
            }),
            "payment_received" => json!({
                "tenant_name": "Acme",
                "number": "INV-000001",
                "amount": "KES 2,500.00",
                "receipt": "RKT0000001",
                "console_url": "https://app.example/console",
            }),
            "payment_failed" => json!({
                "tenant_name": "Acme",
                "number": "INV-000001",
                "amount": "KES 2,500.00",
                "reason": "Request cancelled by user",
                "console_url": "https://app.example/console",
            }),
            other => panic!("no documented data for template {other}"),
        }
    }

    #[test]
    fn every_template_renders_with_its_documented_keys() {
        for template in TEMPLATES {
            let data = documented_data(template);
            let rendered = render(template, &data)
                .unwrap_or_else(|error| panic!("{template} does not render: {error}"));
            assert!(!rendered.subject.is_empty(), "{template}: empty subject");
            assert!(!rendered.subject.contains('\n'), "{template}: subject");
            let url = data
                .get("link")
                .or_else(|| data.get("console_url"))
                .and_then(|url| url.as_str())
                .unwrap();
            assert!(rendered.text.contains(url), "{template}: text lacks {url}");
            assert!(
                rendered.html.contains("<a href="),
                "{template}: html has no link"
            );
        }
    }

    #[test]
    fn every_template_fails_without_each_of_its_keys() {
        for template in TEMPLATES {
            let data = documented_data(template);
            for key in data.as_object().unwrap().keys() {
                let mut partial = data.clone();
                partial.as_object_mut().unwrap().remove(key);
                let error = render(template, &partial).err().unwrap_or_else(|| {
                    panic!("{template} rendered without `{key}`");
                });
                assert!(error.is_permanent(), "{template} without {key}: {error}");
            }
        }
    }

    #[test]
    fn keys_a_template_does_not_use_are_ignored() {
        let mut data = documented_data("email_verification");
        data["unused"] = json!("whatever");
        assert!(render("email_verification", &data).is_ok());
    }

    #[test]
    fn an_unknown_template_is_a_permanent_error() {
        let error = render("no_such_template", &json!({})).err().unwrap();
        assert!(error.is_permanent());
    }

    #[test]
    fn the_html_part_escapes_and_the_text_part_does_not() {
        let mut data = documented_data("welcome");
        data["tenant_name"] = json!("<b>Acme</b> & Co");
        let rendered = render("welcome", &data).unwrap();
        assert!(
            rendered
                .html
                .contains("&lt;b&gt;Acme&lt;&#x2f;b&gt; &amp; Co")
        );
        assert!(rendered.text.contains("<b>Acme</b> & Co"));
        assert!(rendered.subject.contains("<b>Acme</b> & Co"));
    }
}
