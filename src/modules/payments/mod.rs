//! Payments: paying an invoice by M-Pesa (Daraja's STK push) — `POST
//! /api/v1/payments/mpesa/initiate` (`api`), the callback Daraja posts the result to
//! ([`callback_endpoint`]), `payments.reconcile` for results that never arrived
//! (`jobs`), and the history (`sql/V17__payments.sql`). A success pays the invoice
//! with `billing::record_payment`, in the transaction that records it.
//!
//! Daraja is behind a trait ([`gateway::Gateway`]) with a configurable base URL, so
//! tests run against a local fake, never Safaricom (DESIGN.md invariant 13).
//!
//! The callback is unsigned, so it is believed only when it comes by the secret path
//! (`ROWGUARD_MPESA_CALLBACK_TOKEN`: anything else is a 404), from an allowed address
//! (`ROWGUARD_MPESA_CALLBACK_ALLOW`, forwarded addresses only from
//! `ROWGUARD_TRUSTED_PROXIES`: 403), names a payment of ours by its CheckoutRequestID
//! (else recorded and ignored), and for a success pays the amount asked.

pub mod api;
pub mod callback;
pub mod daraja;
mod db;
pub mod gateway;
mod jobs;
pub mod phone;
pub mod service;

use std::{net::IpAddr, sync::Arc, time::Duration};

use poem::{Endpoint, IntoResponse, Request, Response, http::StatusCode};
use poem_openapi::payload::Json;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

pub use jobs::{RECONCILE, RECONCILE_TENANT, jobs};

use crate::{
    config::{Secret, Settings},
    error::Error,
    platform::{
        db::{Database, Scope},
        http::{
            client::{TrustedProxies, client_ip},
            problem::{ApiError, Problem, ProblemCode},
        },
    },
};
use gateway::Gateway;

/// The callback's path under the server (the contract's: it avoids the words Daraja
/// refuses in callback URLs, "mpesa" among them).
pub const CALLBACK_PATH: &str = "/api/v1/payments/callbacks";
/// What `/metrics` calls the callback (not an OpenAPI operation: Daraja's own shape).
pub const CALLBACK_OPERATION: &str = "payments_callback";

/// What payments need of the settings, built once at start-up.
#[derive(Clone)]
pub struct Payments {
    pub gateway: Arc<dyn Gateway>,
    callback_token: Option<Secret>,
    callback_allow: Arc<TrustedProxies>,
    trusted_proxies: Arc<TrustedProxies>,
    callback_url: String,
    /// How long a callback's answer waits for its settlement.
    callback_answer_within: Duration,
    /// The callbacks being settled, some of them already answered.
    settlements: TaskTracker,
    /// Room for callbacks settling apart from their answer; when it is full, a
    /// callback is settled before it is answered (the sender waits: back-pressure).
    settling: Arc<Semaphore>,
}

/// At most this many callbacks settle in tasks at once (each holds its body, at most
/// `MAX_CALLBACK_BYTES`, while it waits for the pool).
const MAX_SETTLING: usize = 1024;

impl Payments {
    /// Daraja when every M-Pesa setting is given, else a gateway that refuses
    /// (initiating answers 503 `payment_gateway_error`; the callback route is a 404).
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Payments> {
        let configured = match (
            &settings.mpesa_consumer_key,
            &settings.mpesa_consumer_secret,
            &settings.mpesa_shortcode,
            &settings.mpesa_passkey,
            &settings.mpesa_callback_token,
        ) {
            (Some(key), Some(secret), Some(shortcode), Some(passkey), Some(_)) => {
                Some(daraja::DarajaConfig {
                    base_url: settings.mpesa_base_url.clone(),
                    consumer_key: key.clone(),
                    consumer_secret: secret.clone(),
                    shortcode: shortcode.clone(),
                    passkey: passkey.clone(),
                    timeout: Duration::from_millis(settings.mpesa_timeout_ms),
                })
            }
            _ => None,
        };
        let gateway: Arc<dyn Gateway> = match configured {
            Some(config) => Arc::new(daraja::Daraja::new(config)?),
            None => Arc::new(gateway::Unconfigured),
        };
        let token = settings
            .mpesa_callback_token
            .clone()
            .filter(|token| !token.expose().trim().is_empty());
        Ok(Payments {
            gateway,
            callback_url: format!(
                "{}{CALLBACK_PATH}/{}",
                settings.public_url(),
                token.as_ref().map_or("", |token| token.expose())
            ),
            callback_token: token,
            callback_allow: Arc::new(settings.mpesa_callback_allow.clone()),
            trusted_proxies: Arc::new(settings.trusted_proxies.clone()),
            callback_answer_within: Duration::from_millis(settings.mpesa_callback_answer_ms),
            settlements: TaskTracker::new(),
            settling: Arc::new(Semaphore::new(MAX_SETTLING)),
        })
    }

    /// Waits (up to `grace`) for the callbacks answered before they were settled:
    /// called once the server has stopped taking requests.
    pub async fn finish_settling(&self, grace: Duration) {
        self.settlements.close();
        if tokio::time::timeout(grace, self.settlements.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                unsettled = self.settlements.len(),
                "payment callbacks still settling at shutdown; reconciliation will query them"
            );
        }
    }

    /// The same, with another gateway (embedders, tools).
    pub fn with_gateway(mut self, gateway: Arc<dyn Gateway>) -> Payments {
        self.gateway = gateway;
        self
    }
}

/// This module's operations, as the registry mounts them.
pub type Api = api::PaymentsApi;

pub fn api(state: &super::AppState) -> Api {
    api::PaymentsApi {
        db: state.db.clone(),
        gateway: state.payments.gateway.clone(),
        callback_url: state.payments.callback_url.clone(),
    }
}

pub const OPERATIONS: &[&[crate::platform::auth::access::Operation]] = &[api::OPERATIONS];

/// The callback route, `POST /api/v1/payments/callbacks/{token}` (mounted by
/// `modules::routes`).
pub fn callback_endpoint(state: &super::AppState) -> CallbackEndpoint {
    CallbackEndpoint {
        db: state.db.clone(),
        payments: state.payments.clone(),
    }
}

pub struct CallbackEndpoint {
    db: Database,
    payments: Payments,
}

/// Daraja's callbacks are a few hundred bytes; a larger body is no callback of its.
const MAX_CALLBACK_BYTES: usize = 64 * 1024;

/// Equal tokens, compared by their digests: the time taken says nothing of how much
/// of a guess was right.
fn same_token(given: &str, expected: &str) -> bool {
    Sha256::digest(given.as_bytes()) == Sha256::digest(expected.as_bytes())
}

fn refused(status: StatusCode, code: ProblemCode, detail: &str) -> Response {
    let problem = Json(Problem::new(status, code, detail));
    match status {
        StatusCode::FORBIDDEN => ApiError::Forbidden(problem).into_response(),
        _ => ApiError::NotFound(problem).into_response(),
    }
}

impl Endpoint for CallbackEndpoint {
    type Output = Response;

    async fn call(&self, mut request: Request) -> poem::Result<Response> {
        let token_matches = match (
            &self.payments.callback_token,
            request.raw_path_param("token"),
        ) {
            (Some(expected), Some(given)) => same_token(given, expected.expose()),
            _ => false,
        };
        if !token_matches {
            return Ok(refused(
                StatusCode::NOT_FOUND,
                ProblemCode::NotFound,
                "no such resource",
            ));
        }
        let source: Option<IpAddr> = request
            .remote_addr()
            .as_socket_addr()
            .map(|peer| client_ip(peer.ip(), request.headers(), &self.payments.trusted_proxies));
        let Some(source) = source.filter(|ip| self.payments.callback_allow.contains(*ip)) else {
            tracing::warn!(source = ?source, "a payment callback from an address not allowed");
            return Ok(refused(
                StatusCode::FORBIDDEN,
                ProblemCode::Forbidden,
                "callbacks are accepted only from the payment gateway's addresses",
            ));
        };
        // Whatever the body says (or fails to), Daraja gets its 200: it retries a
        // callback that is not accepted, and a body that cannot be used would fail
        // the same way each time. What went wrong is recorded, and a payment a
        // callback could not settle is settled by `payments.reconcile`.
        let body = request
            .take_body()
            .into_bytes_limit(MAX_CALLBACK_BYTES)
            .await
            .unwrap_or_default();
        let db = self.db.clone();
        let settle = async move {
            if let Err(error) = handle_callback(&db, &body, &source.to_string()).await {
                tracing::error!(%error, "a payment callback could not be recorded; reconciliation will query it");
            }
        };
        // Settled in a task of its own, so that a burst of callbacks queueing for the
        // pool is answered in time all the same: the answer waits for the settlement
        // up to the budget, then goes while the task carries on (and a shutdown waits
        // for it). Daraja's answer says only "received"; what the settlement did is
        // in the database either way (README, "The callback's answer", for what a
        // crash in between costs).
        match self.payments.settling.clone().try_acquire_owned() {
            Ok(room) => {
                let settlement = self.payments.settlements.spawn(async move {
                    settle.await;
                    drop(room);
                });
                match tokio::time::timeout(self.payments.callback_answer_within, settlement).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => {
                        tracing::error!(%error, "a payment callback's settlement panicked; reconciliation will query it");
                    }
                    Err(_) => tracing::debug!("a payment callback answered before it was settled"),
                }
            }
            // As many settling as there is room for: this one waits for its own.
            Err(_) => settle.await,
        }
        Ok(Response::builder()
            .content_type("application/json")
            .body(r#"{"ResultCode":0,"ResultDesc":"Accepted"}"#))
    }
}

/// Records a callback and settles its payment: in the payment's tenant's context when
/// it names one of ours, else as an unknown callback.
pub async fn handle_callback(db: &Database, body: &[u8], source: &str) -> Result<(), Error> {
    let payload = String::from_utf8_lossy(body);
    let parsed = callback::parse(body);
    let lookup = db.begin_context(&Scope::anonymous()).await?;
    let now = chrono::Utc::now();
    let found = async {
        let Some(callback) = &parsed else {
            return Ok(None);
        };
        if let Some(tenant) = db::tenant_of(&lookup, &callback.checkout_request_id).await? {
            return Ok(Some((tenant, None)));
        }
        // A success naming no payment: perhaps the prompt of a push Daraja never
        // answered (service::initiate recorded it).
        let (Some(0), Some(amount), Some(phone)) =
            (callback.result_code, callback.amount_minor, &callback.phone)
        else {
            return Ok(None);
        };
        Ok(db::unanswered_push_for(
            &lookup,
            amount,
            phone,
            now - service::UNANSWERED_PUSH_WINDOW,
        )
        .await?
        .map(|(tenant, push)| (tenant, Some(push))))
    }
    .await;
    let found = lookup.finish(found).await?;
    let (Some((tenant, unanswered)), Some(callback)) = (found, &parsed) else {
        return record_unknown(db, parsed.as_ref(), &payload, source).await;
    };
    let settled = settle_callback(db, tenant, unanswered, callback, &payload, source, now).await;
    if unanswered.is_some()
        && let Err(error) = &settled
    {
        // The matched push's payment could not be made (another payment of the
        // invoice pending, say): the money is the operator's to place.
        tracing::error!(%error, checkout_request_id = %callback.checkout_request_id,
            "a success callback fit an unanswered push but could not be applied");
        return record_unknown(db, Some(callback), &payload, source).await;
    }
    settled
}

async fn record_unknown(
    db: &Database,
    callback: Option<&callback::StkCallback>,
    payload: &str,
    source: &str,
) -> Result<(), Error> {
    let named = callback.map(|c| c.checkout_request_id.as_str());
    let level_is_money = callback.is_some_and(|c| c.result_code == Some(0));
    if level_is_money {
        tracing::error!(checkout_request_id = ?named, %source,
            "a success callback naming no payment of ours: money the operator must place");
    } else {
        tracing::warn!(checkout_request_id = ?named, %source, "a payment callback naming no payment of ours");
    }
    let tx = db.begin_context(&Scope::anonymous()).await?;
    let recorded = db::record_unknown(&tx, named, payload, source).await;
    tx.finish(recorded).await
}

/// Settles the payment `callback` names in `tenant`'s context (first making it from
/// the unanswered push it was matched to, if it was), and records the callback.
async fn settle_callback(
    db: &Database,
    tenant: uuid::Uuid,
    unanswered: Option<uuid::Uuid>,
    callback: &callback::StkCallback,
    payload: &str,
    source: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), Error> {
    let tx = db
        .begin_context(&Scope {
            tenant_id: Some(tenant),
            ..Scope::anonymous()
        })
        .await?;
    let settled = async {
        if let Some(push) = unanswered {
            let made = db::payment_from_unanswered(
                &tx,
                push,
                &callback.merchant_request_id,
                &callback.checkout_request_id,
            )
            .await?;
            // None: a repeat of this callback, at the same moment, matched it first;
            // the payment it made is found below.
            if made.is_some() {
                tracing::info!(checkout_request_id = %callback.checkout_request_id,
                    "a success callback matched a push Daraja had not answered");
            }
        }
        let Some(payment) = db::lock_by_checkout(&tx, &callback.checkout_request_id).await? else {
            return match unanswered {
                // Matched meanwhile by a callback naming another push: not this one's.
                Some(_) => Err(Error::Conflict(
                    "the unanswered push was matched already".into(),
                )),
                None => Ok(()),
            };
        };
        let applied = match callback.result_code {
            Some(code) => {
                service::settle(
                    &tx,
                    &payment,
                    &service::Reported {
                        code,
                        description: &callback.result_desc,
                        amount_minor: callback.amount_minor,
                        receipt: callback.receipt.as_deref(),
                    },
                    now,
                )
                .await?
            }
            None => false,
        };
        db::insert_callback(&tx, payment.id, payload, source, applied).await
    }
    .await;
    tx.finish(settled).await
}
