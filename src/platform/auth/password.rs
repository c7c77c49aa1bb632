//! Argon2id password hashing at OWASP's recommended parameters (19 MiB, t=2, p=1), on
//! a fixed set of dedicated threads, never on the async workers.
//!
//! Each hashing thread owns one 19 MiB block buffer, allocated once and reused for
//! every hash and verification: memory for hashing is `threads × 19 MiB`, whatever the
//! load. (Allocating per hash, as the crate's convenience API does, lets the C
//! allocator keep freed buffers in per-thread arenas: RSS grew past 800 MiB under a
//! login storm before this.) A semaphore admits as many jobs as there are threads, so
//! a storm waits in the async runtime, costing a few bytes per waiting request.
//!
//! Verifying against an unknown email still costs one verification, against a dummy
//! hash made at start-up with the same parameters, so the two failures take the same
//! time.

use std::{
    sync::{Arc, Mutex, mpsc},
    thread,
};

use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::phc::{Output, PasswordHash, Salt},
};
use tokio::sync::{Semaphore, oneshot};

use crate::error::Error;

/// OWASP Password Storage Cheat Sheet, argon2id option 2: m=19 MiB, t=2, p=1.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;
const OUTPUT_LEN: usize = 32;

#[allow(
    clippy::expect_used,
    reason = "constant parameters within argon2's bounds; every unit test below builds them"
)]
fn params() -> Params {
    Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, Some(OUTPUT_LEN))
        .expect("valid argon2 parameters")
}

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

#[derive(Clone)]
pub struct PasswordHasher {
    jobs: mpsc::Sender<Job>,
    permits: Arc<Semaphore>,
    dummy_hash: Arc<str>,
}

/// Hashes `password` with a fresh salt into a PHC string, using `blocks` as memory.
fn hash_with(
    blocks: &mut Vec<Block>,
    password: &[u8],
) -> Result<String, argon2::password_hash::Error> {
    let params = params();
    let salt = Salt::generate();
    let mut out = [0u8; OUTPUT_LEN];
    let memory = memory_for(blocks, &params);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, salt.as_ref(), &mut out, memory)?;
    let hash = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: (&params).try_into()?,
        salt: Some(salt),
        hash: Some(Output::new(&out)?),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `hash`, using `blocks` as memory. The
/// parameters are the hash's own, so hashes made with older parameters still verify.
fn verify_with(blocks: &mut Vec<Block>, password: &[u8], hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(params), Some(salt), Some(expected)) =
        (Params::try_from(&parsed), parsed.salt, parsed.hash)
    else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let Ok(version) = Version::try_from(parsed.version.unwrap_or(0x13)) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let memory = memory_for(blocks, &params);
    let computed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password,
        salt.as_ref(),
        &mut out,
        memory,
    );
    // Output's equality is constant-time.
    computed.is_ok() && Output::new(&out).is_ok_and(|out| out == expected)
}

/// The first `block_count` blocks of the thread's buffer, grown if a hash asks more.
fn memory_for<'a>(blocks: &'a mut Vec<Block>, params: &Params) -> &'a mut [Block] {
    let needed = params.block_count();
    if blocks.len() < needed {
        blocks.resize(needed, Block::new());
    }
    &mut blocks[..needed]
}

/// Hashing yields the CPU to everything else: the hashing threads run under Linux's
/// SCHED_IDLE policy, so any other runnable thread (the async workers serving every
/// other request, PostgreSQL) preempts them at once, while logins still use all the
/// CPU that is left. Elsewhere, or if the policy is refused, they keep the default.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: sched_setscheduler on the calling thread (id 0) with a valid parameter
    // struct has no memory-safety concerns.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        let _ = libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
    }
}

impl PasswordHasher {
    /// Starts `threads` hashing threads (at least one). They end when the last clone
    /// of the hasher is dropped. Fails when the system cannot start a thread.
    pub fn new(threads: usize) -> anyhow::Result<PasswordHasher> {
        let threads = threads.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads {
            let queue = queue.clone();
            thread::Builder::new()
                .name(format!("password-hash-{n}"))
                .spawn(move || {
                    lower_priority();
                    let mut blocks = vec![Block::new(); params().block_count()];
                    loop {
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(&mut blocks),
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|error| anyhow::anyhow!("starting a password-hashing thread: {error}"))?;
        }
        let mut blocks = vec![Block::new(); params().block_count()];
        let dummy_hash = hash_with(&mut blocks, b"rowguard dummy password for unknown emails")
            .map_err(|error| anyhow::anyhow!("hashing the dummy password: {error:?}"))?;
        Ok(PasswordHasher {
            jobs,
            permits: Arc::new(Semaphore::new(threads)),
            dummy_hash: dummy_hash.into(),
        })
    }

    pub async fn hash(&self, password: &str) -> Result<String, Error> {
        let password = password.as_bytes().to_vec();
        self.run(move |blocks| {
            hash_with(blocks, &password)
                .map_err(|error| Error::Internal(anyhow::anyhow!("hashing a password: {error}")))
        })
        .await?
    }

    /// Whether `password` matches `hash`; with no hash (unknown user), verifies against
    /// the dummy hash and answers false, taking the same time.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, Error> {
        let password = password.as_bytes().to_vec();
        let known = hash.is_some();
        let hash: Arc<str> = hash
            .map(Arc::from)
            .unwrap_or_else(|| self.dummy_hash.clone());
        let matches = self
            .run(move |blocks| verify_with(blocks, &password, &hash))
            .await?;
        Ok(known && matches)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, Error> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Error::Unavailable("password hashing is shut down".into()))?;
        let (done, result) = oneshot::channel();
        self.jobs
            .send(Box::new(move |blocks| {
                let _ = done.send(work(blocks));
            }))
            .map_err(|_| Error::Unavailable("password hashing is shut down".into()))?;
        result
            .await
            .map_err(|_| Error::Internal(anyhow::anyhow!("a password-hashing job was lost")))
    }
}

#[cfg(test)]
mod tests {
    use argon2::{PasswordHasher as _, PasswordVerifier as _};

    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_no_other() {
        let hasher = PasswordHasher::new(1).unwrap();
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
    async fn hashes_are_standard_phc_strings_both_ways() {
        let hasher = PasswordHasher::new(1).unwrap();
        // Ours verifies with the reference implementation...
        let ours = hasher.hash("interoperable").await.unwrap();
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, params());
        assert!(
            reference
                .verify_password(b"interoperable", ours.as_str())
                .is_ok()
        );
        // ...and the reference implementation's verifies with ours.
        let theirs = reference
            .hash_password(b"interoperable")
            .unwrap()
            .to_string();
        assert!(hasher.verify("interoperable", Some(&theirs)).await.unwrap());
    }

    #[tokio::test]
    async fn verifying_without_a_hash_is_always_false() {
        let hasher = PasswordHasher::new(1).unwrap();
        assert!(
            !hasher
                .verify("rowguard dummy password for unknown emails", None)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn a_malformed_hash_does_not_verify() {
        let hasher = PasswordHasher::new(1).unwrap();
        assert!(
            !hasher
                .verify("anything", Some("$argon2id$garbage"))
                .await
                .unwrap()
        );
    }
}
