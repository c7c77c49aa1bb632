//! An SMTP server in the test process: it speaks enough real SMTP for lettre (the
//! same client as production), keeps every message, and can refuse a recipient (550)
//! or go down, so tests see exactly what a mail server would have received.

use std::{
    collections::HashSet,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::Notify,
    task::AbortHandle,
};

/// A message as the sink received it: the envelope, and the parsed content (decoded,
/// so links split by quoted-printable soft breaks are whole again).
#[derive(Debug, Clone)]
pub struct Mail {
    /// The envelope sender (`MAIL FROM`).
    pub from: String,
    /// The envelope recipients the sink accepted (`RCPT TO`).
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The DATA as sent, dot-unstuffed.
    pub raw: String,
}

impl Mail {
    fn parse(from: String, to: Vec<String>, raw: Vec<u8>) -> Mail {
        let parsed = mail_parser::MessageParser::default()
            .parse(&raw)
            .unwrap_or_else(|| panic!("the sink received a message that does not parse"));
        Mail {
            from,
            to,
            subject: parsed.subject().unwrap_or_default().to_string(),
            text: parsed
                .body_text(0)
                .map(|text| text.into_owned())
                .unwrap_or_default(),
            html: parsed
                .html_bodies()
                .next()
                .and_then(|part| part.text_contents())
                .map(str::to_string)
                .unwrap_or_default(),
            raw: String::from_utf8_lossy(&raw).into_owned(),
        }
    }

    /// The first URL in the text part that contains `path_prefix`
    /// (`"/console/reset-password?token="`).
    pub fn link(&self, path_prefix: &str) -> String {
        urls(&self.text)
            .find(|url| url.contains(path_prefix))
            .unwrap_or_else(|| {
                panic!(
                    "no link containing {path_prefix:?} in the text part of {:?}:\n{}",
                    self.subject, self.text
                )
            })
            .to_string()
    }

    /// The `token` query value of the first URL in the text part that has one.
    pub fn token(&self) -> String {
        let url = self.link("token=");
        let (_, query) = url.split_once('?').unwrap_or(("", &url));
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("token="))
            .unwrap_or_else(|| panic!("no token= query value in {url}"))
            .to_string()
    }
}

fn urls(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\''))
        .filter(|word| word.starts_with("http://") || word.starts_with("https://"))
        .map(|url| url.trim_end_matches(['.', ',', ')', ';']))
}

#[derive(Default)]
struct Shared {
    messages: Mutex<Vec<Mail>>,
    refused: Mutex<HashSet<String>>,
    arrived: Notify,
    /// The accept loop and every open connection, aborted by `stop`.
    tasks: Mutex<Vec<AbortHandle>>,
}

/// Stops itself when dropped.
pub struct SmtpSink {
    address: SocketAddr,
    shared: Arc<Shared>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let accepting = tokio::spawn(accept(listener, shared.clone()));
        shared.tasks.lock().unwrap().push(accepting.abort_handle());
        SmtpSink { address, shared }
    }

    /// `smtp://127.0.0.1:PORT`: plain SMTP, no authentication.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.address)
    }

    /// A URL on a port nobody listens on: connecting to it is refused.
    pub fn unused_url() -> String {
        // Bound and closed at once: the kernel does not hand a just-freed ephemeral
        // port out again straight away.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        format!("smtp://{address}")
    }

    /// `RCPT TO` for `address` answers `550 5.1.1 no such user` from now on.
    pub fn refuse(&self, address: &str) {
        self.shared
            .refused
            .lock()
            .unwrap()
            .insert(address.to_ascii_lowercase());
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Mail> {
        self.shared.messages.lock().unwrap().clone()
    }

    /// The first message received for `to`, waiting up to `timeout` for it.
    pub async fn wait_for(&self, to: &str, timeout: Duration) -> Mail {
        self.wait_for_matching(to, "any message", timeout, |_| true)
            .await
    }

    /// The first message for `to` whose text part links to `path` (for example
    /// `/console/reset-password?token=`), waiting up to `timeout` for it.
    pub async fn wait_for_link(&self, to: &str, path: &str, timeout: Duration) -> Mail {
        self.wait_for_matching(to, path, timeout, |mail| mail.text.contains(path))
            .await
    }

    async fn wait_for_matching(
        &self,
        to: &str,
        what: &str,
        timeout: Duration,
        matches: impl Fn(&Mail) -> bool,
    ) -> Mail {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before looking, so a message that arrives in between still
            // wakes this waiter.
            let arrived = self.shared.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if let Some(mail) = self.messages().into_iter().find(|mail| {
                mail.to.iter().any(|rcpt| rcpt.eq_ignore_ascii_case(to)) && matches(mail)
            }) {
                return mail;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                let received: Vec<_> = self
                    .messages()
                    .into_iter()
                    .map(|mail| (mail.to, mail.subject))
                    .collect();
                panic!("no email ({what}) to {to} within {timeout:?}; received: {received:?}");
            }
        }
    }

    /// Closes the listener and every open connection: from now on connecting is
    /// refused, and a pooled connection breaks.
    pub fn stop(&self) {
        for task in self.shared.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let connection = tokio::spawn(converse(stream, shared.clone()));
        shared.tasks.lock().unwrap().push(connection.abort_handle());
    }
}

/// Mailbox of a `MAIL FROM:<a@b> BODY=8BITMIME` or `RCPT TO:<a@b>` argument.
fn mailbox(argument: &str) -> String {
    let start = argument.find('<').map_or(0, |i| i + 1);
    let end = argument[start..]
        .find('>')
        .map_or(argument.len(), |i| start + i);
    argument[start..end].trim().to_string()
}

async fn converse(stream: TcpStream, shared: Arc<Shared>) {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let mut from = String::new();
    let mut to: Vec<String> = Vec::new();
    let mut line = Vec::new();
    if writer.write_all(b"220 sink ESMTP\r\n").await.is_err() {
        return;
    }
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let command = String::from_utf8_lossy(&line).trim_end().to_string();
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            "HELO" => b"250 sink\r\n",
            "MAIL" => {
                from = mailbox(&command[4..]);
                to.clear();
                b"250 2.1.0 ok\r\n"
            }
            "RCPT" => {
                let address = mailbox(&command[4..]);
                if shared
                    .refused
                    .lock()
                    .unwrap()
                    .contains(&address.to_ascii_lowercase())
                {
                    b"550 5.1.1 no such user\r\n"
                } else {
                    to.push(address);
                    b"250 2.1.5 ok\r\n"
                }
            }
            "DATA" if to.is_empty() => b"554 5.5.1 no valid recipients\r\n",
            "DATA" => {
                if writer
                    .write_all(b"354 end with <CRLF>.<CRLF>\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
                let mut data = Vec::new();
                loop {
                    line.clear();
                    match reader.read_until(b'\n', &mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    if line == b".\r\n" || line == b".\n" {
                        break;
                    }
                    let unstuffed = if line.starts_with(b"..") {
                        &line[1..]
                    } else {
                        &line[..]
                    };
                    data.extend_from_slice(unstuffed);
                }
                let mail = Mail::parse(std::mem::take(&mut from), std::mem::take(&mut to), data);
                shared.messages.lock().unwrap().push(mail);
                shared.arrived.notify_waiters();
                b"250 2.0.0 queued\r\n"
            }
            "RSET" => {
                from.clear();
                to.clear();
                b"250 2.0.0 ok\r\n"
            }
            "NOOP" => b"250 2.0.0 ok\r\n",
            "QUIT" => {
                let _ = writer.write_all(b"221 2.0.0 bye\r\n").await;
                return;
            }
            _ => b"502 5.5.2 command not implemented\r\n",
        };
        if writer.write_all(reply).await.is_err() {
            return;
        }
    }
}
