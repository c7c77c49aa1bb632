//! The fake Daraja of the tests as a server of its own, for the manual check of the
//! README ("Payments: M-Pesa", "A manual check"): it accepts the credentials of
//! `tests/api/helpers/fake_daraja.rs`, and a few seconds after each STK push posts a
//! success callback to the push's CallBackURL, as a payer typing the PIN would.
//!   cargo run --example fake_daraja -- 127.0.0.1:9000 [seconds before paying: 3]

#![allow(
    dead_code,
    reason = "the tests' fake, of which this server uses a part"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a development tool"
)]

#[path = "../tests/api/helpers/fake_daraja.rs"]
mod fake_daraja;

use std::time::Duration;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:9000".into());
    let delay: u64 = args.next().map_or(3, |s| s.parse().expect("seconds"));
    let fake = fake_daraja::FakeDaraja::start_on(&address).await;
    fake.autopay(Duration::from_secs(delay), None);
    println!(
        "fake Daraja on {}; every push is paid {delay} s later",
        fake.base_url()
    );
    println!(
        "ROWGUARD_MPESA_BASE_URL={} ROWGUARD_MPESA_CONSUMER_KEY={} ROWGUARD_MPESA_CONSUMER_SECRET={} \
         ROWGUARD_MPESA_SHORTCODE={} ROWGUARD_MPESA_PASSKEY={} ROWGUARD_MPESA_CALLBACK_TOKEN={} \
         ROWGUARD_MPESA_CALLBACK_ALLOW=127.0.0.1/32",
        fake.base_url(),
        fake_daraja::CONSUMER_KEY,
        fake_daraja::CONSUMER_SECRET,
        fake_daraja::SHORTCODE,
        fake_daraja::PASSKEY,
        fake_daraja::CALLBACK_TOKEN,
    );
    tokio::signal::ctrl_c().await.ok();
    for complaint in fake.complaints() {
        println!("fake Daraja complained: {complaint}");
    }
}
