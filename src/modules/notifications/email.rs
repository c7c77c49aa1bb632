//! The `email.send` job: renders and sends one email a flow enqueued (through
//! `app.enqueue_notification`, in that flow's transaction), then completes, which
//! erases the token it carried (docs/design.md invariant 14).
//!
//! Its payload is `{to, template, data, link?, secret?}`: `link` names the console page
//! its link leads to (`reset-password`, `accept-invitation`, `verify-email`) and
//! `secret` the token that link carries. The link is made here, from
//! `ROWGUARD_PUBLIC_URL`, so the database never holds a URL with a token in it and a
//! deployment that moves keeps its queued emails working.

use futures_util::future::BoxFuture;
use serde::Deserialize;
use serde_json::Value;

use crate::{
    modules::AppState,
    platform::{
        email::{Mailer, SendError},
        jobs::{Every, FnHandler, Handler, JobError, JobRun, Kind},
    },
};

pub const SEND_EMAIL: &str = "email.send";
/// Hourly (and `rowguard jobs run notifications.deliver` after an SMTP outage): the
/// emails waiting for a retry are tried again now, so none waits longer than an hour
/// whatever its backoff.
pub const DELIVER: &str = "notifications.deliver";

/// The console pages an email may link to (`link` in the payload).
const LINKED_PAGES: &[&str] = &["accept-invitation", "reset-password", "verify-email"];

pub fn jobs(state: &AppState) -> Vec<Kind> {
    vec![
        Kind::new(
            SEND_EMAIL,
            SendEmail {
                mailer: state.mailer.clone(),
                public_url: state.public_url.clone(),
            },
        ),
        Kind::periodic(DELIVER, Every::Hour, FnHandler(deliver)),
    ]
}

fn deliver(run: JobRun<'_>) -> BoxFuture<'_, Result<(), JobError>> {
    Box::pin(async move {
        let expedited = run.queue.expedite(SEND_EMAIL, run.now).await?;
        if expedited > 0 {
            tracing::info!(expedited, "emails waiting for a retry are due now");
        }
        Ok(())
    })
}

#[derive(Deserialize)]
struct Payload {
    to: String,
    template: String,
    #[serde(default)]
    data: Value,
    link: Option<String>,
    secret: Option<String>,
}

struct SendEmail {
    mailer: Mailer,
    public_url: String,
}

impl SendEmail {
    /// What the template renders: the flow's data, the link with its token, and the
    /// console's address.
    fn template_data(&self, payload: &Payload) -> Result<Value, JobError> {
        let mut data = match &payload.data {
            Value::Object(map) => map.clone(),
            Value::Null => serde_json::Map::new(),
            _ => {
                return Err(JobError::Permanent(
                    "the email's data is not an object".into(),
                ));
            }
        };
        // The link and the console's address are this job's to make, never the data's.
        data.remove("link");
        data.remove("console_url");
        let console = format!("{}/console", self.public_url);
        if let Some(page) = &payload.link {
            if !LINKED_PAGES.contains(&page.as_str()) {
                return Err(JobError::Permanent(format!("no console page {page}")));
            }
            let token = payload
                .secret
                .as_deref()
                .ok_or_else(|| JobError::Permanent("a link without its token".into()))?;
            // Tokens are URL-safe base64; anything else is not a token of ours.
            if !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(JobError::Permanent("the token is not URL-safe".into()));
            }
            data.insert(
                "link".into(),
                format!("{console}/{page}?token={token}").into(),
            );
        }
        data.insert("console_url".into(), console.into());
        Ok(Value::Object(data))
    }
}

impl Handler for SendEmail {
    /// The message is sent before the job's transaction commits: if the commit fails
    /// after the server accepted it, the retry sends it again (at least once, never
    /// lost).
    fn run<'a>(&'a self, run: JobRun<'a>) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let payload: Payload =
                serde_json::from_value(run.job.payload.clone()).map_err(|error| {
                    JobError::Permanent(format!("the email job's payload: {error}"))
                })?;
            let data = self.template_data(&payload)?;
            self.mailer
                .send(&payload.to, &payload.template, &data)
                .await
                .map_err(|error| match error {
                    SendError::Permanent(why) => JobError::Permanent(why),
                    SendError::Transient(why) => JobError::Retry(why),
                })
        })
    }
}
