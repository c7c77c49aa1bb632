//! How many round trips a request costs PostgreSQL, counted on the wire: a proxy
//! between the server and PostgreSQL counts each time the conversation turns from
//! PostgreSQL answering to the server sending again. Pipelined messages (BEGIN and the
//! opening statement; a list's query and COMMIT) are one turn, since the server does
//! not wait in between.

use std::sync::{
    Arc,
    atomic::{AtomicU8, AtomicUsize, Ordering},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use crate::helpers::{TestApp, TestDb, test_settings};

const FROM_CLIENT: u8 = 1;
const FROM_SERVER: u8 = 2;

/// Counts client-to-server turns across every connection through it.
struct TurnCounter {
    turns: Arc<AtomicUsize>,
    address: std::net::SocketAddr,
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    direction: u8,
    last: Arc<AtomicU8>,
    turns: Arc<AtomicUsize>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if direction == FROM_CLIENT && last.swap(FROM_CLIENT, Ordering::SeqCst) != FROM_CLIENT {
            turns.fetch_add(1, Ordering::SeqCst);
        } else if direction == FROM_SERVER {
            last.store(FROM_SERVER, Ordering::SeqCst);
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

async fn proxy(upstream: std::net::SocketAddr) -> TurnCounter {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let turns = Arc::new(AtomicUsize::new(0));
    let counted = turns.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = TcpStream::connect(upstream).await.unwrap();
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            let last = Arc::new(AtomicU8::new(FROM_SERVER));
            tokio::spawn(pump(
                client_read,
                server_write,
                FROM_CLIENT,
                last.clone(),
                counted.clone(),
            ));
            tokio::spawn(pump(
                server_read,
                client_write,
                FROM_SERVER,
                last,
                counted.clone(),
            ));
        }
    });
    TurnCounter { turns, address }
}

/// The same URL with host and port replaced.
fn through(url: &str, address: std::net::SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    let credentials = authority
        .rsplit_once('@')
        .map(|(c, _)| format!("{c}@"))
        .unwrap_or_default();
    format!("{scheme}://{credentials}{address}/{path}")
}

#[tokio::test]
async fn a_list_or_a_read_by_id_costs_two_round_trips_and_other_requests_three_once_prepared() {
    let db = TestDb::new().await;
    let config: tokio_postgres::Config = db.url.parse().unwrap();
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(host) => host.clone(),
        #[allow(unreachable_patterns)]
        _ => panic!("the test database is reached over TCP"),
    };
    let upstream = tokio::net::lookup_host((host.as_str(), config.get_ports()[0]))
        .await
        .unwrap()
        .next()
        .unwrap();
    let counter = proxy(upstream).await;

    let mut settings = test_settings(&through(&db.url, counter.address));
    settings.pool_size = 1;
    let application = rowguard::app::Application::build(&settings).await.unwrap();
    let address = application.local_addr();
    let server = tokio::spawn(application.run_until(std::future::pending()));
    let app = TestApp::attach(address, TestDb::detached(db.url.clone()));

    let acme = app.tenant("owner@acme.example", "Acme").await;
    let store = app.store(&acme.token, "Main").await;
    let key = crate::helpers::text(&app.api_key(&acme.token, &["products.view"]).await, "key");
    let product = app.product(&acme.token, "RT-1").await;
    let owner_role = app.role_id(&acme.token, "Owner").await;
    // A payment attempt, written as the payments module writes one (no gateway here).
    let payment: uuid::Uuid = db
        .superuser()
        .await
        .query_one(
            "WITH invoice AS (
               INSERT INTO invoices (tenant_id, seq, number, purpose, plan_code, currency,
                                     total_minor, period_start, period_end, due_at)
               VALUES ($1::text::uuid, 999, 'INV-000999', 'plan_change', 'starter', 'KES', 250000,
                       now(), now() + interval '1 month', now())
               RETURNING tenant_id, id)
             INSERT INTO payments (tenant_id, invoice_id, idempotency_key, request_hash, amount_minor,
                                   currency, phone_number, merchant_request_id, checkout_request_id,
                                   customer_message)
             SELECT tenant_id, id, 'rt', sha256('rt'), 250000, 'KES', '254712345678', 'mr',
                    'ws_CO_round_trips', 'ok' FROM invoice
             RETURNING id",
            &[&acme.id],
        )
        .await
        .unwrap()
        .get(0);
    for (call, expected) in [
        // Reads by id: the read is written with the COMMIT, as a list's query is.
        (app.products_get(&acme.token, &product), 2),
        (app.stores_get(&acme.token, &store), 2),
        (app.roles_get(&acme.token, &owner_role), 2),
        (app.users_get(&acme.token, &acme.owner_id), 2),
        (app.payments_get(&acme.token, payment), 2),
        // With an API key: the key is resolved in the opening round trip too.
        (app.products_list(&key).limit(20), 2),
        (app.products_list(&acme.token).limit(20), 2),
        (app.stores_list(&acme.token).limit(20), 2),
        // Lists gated by a feature of the plan: the gate costs no round trip.
        (app.audit_events_list(&acme.token).limit(20), 2),
        (
            app.inventory_list(&acme.token).in_store(&store).limit(20),
            2,
        ),
        // Four reads pipelined, then COMMIT.
        (app.me_get(&acme.token), 3),
    ] {
        // The first request on the connection prepares its statements.
        assert_eq!(call.clone().await.status(), 200);
        let before = counter.turns.load(Ordering::SeqCst);
        assert_eq!(call.clone().await.status(), 200);
        let turns = counter.turns.load(Ordering::SeqCst) - before;
        assert_eq!(turns, expected, "{call} took {turns} round trips");
    }
    server.abort();
}
