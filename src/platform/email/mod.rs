//! Email: a message rendered from a template (`templates`) and sent over SMTP, or,
//! without an SMTP URL, written to the log so a developer finds the link in the
//! terminal.
//!
//! Message bodies carry tokens (reset, invitation, verification links), so no error
//! and no log line of a real send includes one.

mod templates;

use std::{fmt, sync::Arc, time::Duration};

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
    transport::smtp::PoolConfig,
};

pub use templates::{Rendered, TEMPLATES, render};

/// How long one SMTP command may take (lettre's default is 60 s): a job that hangs
/// on a dead server holds its worker that long before it can retry.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);
const SMTP_POOL_SIZE: u32 = 4;

/// The log target of the logging transport.
const LOG_TARGET: &str = "rowguard::email";

/// A configuration the mailer cannot start with.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    // The URL itself is never quoted: it may hold the SMTP password.
    #[error("the SMTP URL (ROWGUARD_SMTP_URL) is not usable: {0}")]
    SmtpUrl(String),
    #[error(
        "the sender (ROWGUARD_MAIL_FROM) is not a mailbox such as `Name <address@example.com>`: {0}"
    )]
    From(String),
    #[error("the email templates do not compile: {0}")]
    Templates(String),
    #[error("the SMTP transport must be built inside a tokio runtime (its pool runs a task)")]
    NoRuntime,
}

/// Why a message was not sent. Never includes the message body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth another try later: a 4xx reply, a timeout, a refused or broken connection.
    #[error("email not sent (transient): {0}")]
    Transient(String),
    /// Would fail again: a 5xx reply (such as 550, a refused recipient), an address
    /// that does not parse, an unknown template or a render failure.
    #[error("email not sent (permanent): {0}")]
    Permanent(String),
}

impl SendError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, SendError::Permanent(_))
    }
}

/// Sends the emails of every module. Cheap to clone; build it once at start-up.
#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Inner>,
}

struct Inner {
    from: Mailbox,
    transport: Transport,
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Log,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.inner.from.to_string())
            .field("transport", &if self.is_logging() { "log" } else { "smtp" })
            .finish()
    }
}

impl Mailer {
    /// SMTP to `smtp_url` when there is one (`smtp://host:port`, `?tls=required` for
    /// STARTTLS, `smtps://user:password@host:port`), a pooled connection; without one
    /// (or an empty one), the logging transport. Call it inside the tokio runtime.
    pub fn new(smtp_url: Option<&str>, from: &str) -> Result<Mailer, EmailError> {
        templates::check().map_err(EmailError::Templates)?;
        let from = from
            .parse::<Mailbox>()
            .map_err(|error| EmailError::From(error.to_string()))?;
        let transport = match smtp_url.map(str::trim).filter(|url| !url.is_empty()) {
            None => Transport::Log,
            Some(url) => {
                if tokio::runtime::Handle::try_current().is_err() {
                    return Err(EmailError::NoRuntime);
                }
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|error| EmailError::SmtpUrl(error.to_string()))?
                    .timeout(Some(SMTP_TIMEOUT))
                    .pool_config(PoolConfig::new().max_size(SMTP_POOL_SIZE))
                    .build();
                Transport::Smtp(transport)
            }
        };
        Ok(Mailer {
            inner: Arc::new(Inner { from, transport }),
        })
    }

    pub fn from_settings(settings: &crate::config::Settings) -> Result<Mailer, EmailError> {
        Mailer::new(
            settings.smtp_url.as_ref().map(|url| url.expose()),
            &settings.mail_from,
        )
    }

    /// True when messages go to the log instead of an SMTP server.
    pub fn is_logging(&self) -> bool {
        matches!(self.inner.transport, Transport::Log)
    }

    /// Renders message `template` with `data` and sends it to `to`.
    pub async fn send(
        &self,
        to: &str,
        template: &str,
        data: &serde_json::Value,
    ) -> Result<(), SendError> {
        let rendered = render(template, data)?;
        let recipient = to.parse::<Mailbox>().map_err(|error| {
            SendError::Permanent(format!("the recipient address is not valid: {error}"))
        })?;
        match &self.inner.transport {
            Transport::Log => {
                tracing::info!(
                    target: LOG_TARGET,
                    to = %recipient,
                    subject = %rendered.subject,
                    "email not sent (no SMTP URL configured), its text part:\n{}",
                    rendered.text
                );
                Ok(())
            }
            Transport::Smtp(transport) => {
                let message = Message::builder()
                    .from(self.inner.from.clone())
                    .to(recipient)
                    .subject(rendered.subject)
                    .multipart(MultiPart::alternative_plain_html(
                        rendered.text,
                        rendered.html,
                    ))
                    .map_err(|error| {
                        SendError::Permanent(format!("the message cannot be built: {error}"))
                    })?;
                transport.send(message).await.map_err(classify)?;
                tracing::debug!(target: LOG_TARGET, template, "email sent");
                Ok(())
            }
        }
    }
}

/// Only a 5xx reply is final; anything else (4xx, timeout, connection, TLS, a reply
/// that does not parse) may be the server or the network having a bad moment.
fn classify(error: lettre::transport::smtp::Error) -> SendError {
    // lettre's Display is the reply code and the server's text (or the IO error),
    // never the message.
    if error.is_permanent() {
        SendError::Permanent(error.to_string())
    } else {
        SendError::Transient(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_that_is_not_a_mailbox_is_refused() {
        let error = Mailer::new(None, "not an address").err().unwrap();
        assert!(matches!(error, EmailError::From(_)), "{error}");
    }

    #[tokio::test]
    async fn an_smtp_url_that_does_not_parse_is_refused_without_quoting_it() {
        let error = Mailer::new(Some("smtp//secret-password@"), "a@example.com")
            .err()
            .unwrap();
        assert!(matches!(error, EmailError::SmtpUrl(_)), "{error}");
        assert!(!error.to_string().contains("secret-password"));
    }

    #[tokio::test]
    async fn an_unknown_url_scheme_is_refused() {
        let error = Mailer::new(Some("http://127.0.0.1:25"), "a@example.com")
            .err()
            .unwrap();
        assert!(matches!(error, EmailError::SmtpUrl(_)), "{error}");
    }

    #[test]
    fn no_smtp_url_means_the_logging_transport() {
        assert!(Mailer::new(None, "a@example.com").unwrap().is_logging());
        assert!(Mailer::new(Some(""), "a@example.com").unwrap().is_logging());
    }

    #[tokio::test]
    async fn an_smtp_url_means_the_smtp_transport() {
        let mailer = Mailer::new(Some("smtp://127.0.0.1:2525"), "a@example.com").unwrap();
        assert!(!mailer.is_logging());
    }

    #[tokio::test]
    async fn a_recipient_that_does_not_parse_is_a_permanent_error() {
        let mailer = Mailer::new(None, "a@example.com").unwrap();
        let error = mailer
            .send(
                "not an address",
                "email_verification",
                &serde_json::json!({ "link": "https://x.example/?token=t" }),
            )
            .await
            .err()
            .unwrap();
        assert!(error.is_permanent(), "{error}");
    }
}
