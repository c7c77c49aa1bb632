//! Argon2id password hashing at OWASP's recommended parameters (19 MiB, t=2, p=1),
//! off the async workers: each hash runs on the blocking pool, and a semaphore bounds
//! how many run at once, so a login storm queues instead of starving other requests or
//! taking `concurrency × 19 MiB` of memory without bound.
//!
//! Verifying against an unknown email still costs one verification, against a dummy
//! hash made at start-up with the same parameters, so the two failures take the same
//! time.

use std::sync::Arc;

use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{PasswordHasher as _, PasswordVerifier as _},
};
use tokio::sync::Semaphore;

use crate::error::Error;

/// OWASP Password Storage Cheat Sheet, argon2id option 2: m=19 MiB, t=2, p=1.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;

fn argon2() -> Argon2<'static> {
    let params =
        Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    /// `concurrency` hashes at most run at once.
    pub fn new(concurrency: usize) -> PasswordHasher {
        let dummy_hash = argon2()
            .hash_password(b"rowguard dummy password for unknown emails")
            .expect("hashing the dummy password")
            .to_string();
        PasswordHasher {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy_hash: dummy_hash.into(),
        }
    }

    pub async fn hash(&self, password: &str) -> Result<String, Error> {
        let password = password.to_string();
        self.run(move || {
            argon2()
                .hash_password(password.as_bytes())
                .map(|hash| hash.to_string())
                .map_err(|error| Error::Internal(anyhow::anyhow!("hashing a password: {error}")))
        })
        .await
    }

    /// Whether `password` matches `hash`; with no hash (unknown user), verifies against
    /// the dummy hash and answers false, taking the same time.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, Error> {
        let password = password.to_string();
        let known = hash.is_some();
        let hash: Arc<str> = hash
            .map(Arc::from)
            .unwrap_or_else(|| self.dummy_hash.clone());
        let matches = self
            .run(move || {
                Ok(argon2()
                    .verify_password(password.as_bytes(), &*hash)
                    .is_ok())
            })
            .await?;
        Ok(known && matches)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Error::Unavailable("password hashing is shut down".into()))?;
        tokio::task::spawn_blocking(work).await.map_err(|error| {
            Error::Internal(anyhow::anyhow!("password hashing task failed: {error}"))
        })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_no_other() {
        let hasher = PasswordHasher::new(1);
        let hash = hasher.hash("correct horse battery").await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            hasher
                .verify("correct horse battery", Some(&hash))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify("wrong horse battery", Some(&hash))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn verifying_without_a_hash_is_always_false() {
        let hasher = PasswordHasher::new(1);
        assert!(
            !hasher
                .verify("rowguard dummy password for unknown emails", None)
                .await
                .unwrap()
        );
    }
}
