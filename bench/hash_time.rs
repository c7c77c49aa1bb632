//! How long one argon2id verification takes on this machine, through the server's own
//! hasher (OWASP parameters, one verification at a time): the figure that bounds
//! logins per second, whatever the rest of the server does. Run by bench/run.sh;
//! prints the median of 20 verifications in milliseconds.
#![allow(
    clippy::expect_used,
    reason = "a benchmark fails by panicking, with the message"
)]

use std::time::Instant;

use rowguard::platform::auth::PasswordHasher;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let hasher = PasswordHasher::new(2, 0).expect("hashing threads start");
    let hash = hasher
        .hash("benchmark passphrase 1")
        .await
        .expect("hashing");
    let mut times: Vec<f64> = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let matches = hasher
            .verify("benchmark passphrase 1", Some(&hash))
            .await
            .expect("verifying");
        assert!(matches);
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!("{:.2}", times[times.len() / 2]);
}
