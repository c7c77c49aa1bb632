//! Argon2id password hashing at OWASP's recommended parameters (19 MiB, t=2, p=1), on
//! a fixed set of dedicated threads, never on the async workers.
//!
//! Each hashing thread owns one 19 MiB block buffer, allocated once and reused for
//! every hash and verification: memory for hashing is `threads × 19 MiB`, whatever the
//! load. (Allocating per hash, as the crate's convenience API does, lets the C
//! allocator keep freed buffers in per-thread arenas: RSS grew past 800 MiB under a
//! login storm before this.)
//!
//! Two admission classes share the threads. Verifications and the hashes of
//! authenticated callers (logins, password checks, a password change) are admitted
//! as many at a time as there are threads and otherwise wait in the async runtime,
//! costing a few bytes per waiting request. Unauthenticated hashing (registration,
//! bootstrap, a new user accepting an invitation, a password reset), which anyone
//! can ask for, runs on at most half the threads and never all of them (the pool has
//! at least two), waits only in a short queue of its own, and is refused at once
//! (503) when that is full; a free thread always takes a waiting login first. So a
//! registration flood cannot queue ahead of logins or starve them of threads.
//!
//! Verifying against an unknown email still costs one verification, against a dummy
//! hash made at start-up with the same parameters, so the two failures take the same
//! time.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Condvar, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
};

use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::phc::{Output, PasswordHash, Salt},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, oneshot};

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

/// The two admission classes (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Authenticated,
    Unauthenticated,
}

/// The jobs waiting for a thread, by class.
struct Queue {
    state: Mutex<QueueState>,
    ready: Condvar,
}

struct QueueState {
    authenticated: VecDeque<Job>,
    unauthenticated: VecDeque<Job>,
    /// Unauthenticated jobs on a thread now; at most `unauthenticated_threads`.
    unauthenticated_running: usize,
    unauthenticated_threads: usize,
    /// Set when the last hasher is dropped: the threads end.
    closed: bool,
}

impl Queue {
    fn push(&self, class: Class, job: Job) -> Result<(), Error> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| Error::Unavailable("password hashing is shut down".into()))?;
        if state.closed {
            return Err(Error::Unavailable("password hashing is shut down".into()));
        }
        match class {
            Class::Authenticated => state.authenticated.push_back(job),
            Class::Unauthenticated => state.unauthenticated.push_back(job),
        }
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// The next job for a thread: an authenticated one first, else an unauthenticated
    /// one while fewer than their share of threads run them; `None` once closed.
    fn next(&self) -> Option<(Class, Job)> {
        let mut state = self.state.lock().ok()?;
        loop {
            if state.closed {
                return None;
            }
            if let Some(job) = state.authenticated.pop_front() {
                return Some((Class::Authenticated, job));
            }
            if state.unauthenticated_running < state.unauthenticated_threads
                && let Some(job) = state.unauthenticated.pop_front()
            {
                state.unauthenticated_running += 1;
                return Some((Class::Unauthenticated, job));
            }
            state = self.ready.wait(state).ok()?;
        }
    }

    fn finished(&self, class: Class) {
        if class == Class::Unauthenticated {
            if let Ok(mut state) = self.state.lock() {
                state.unauthenticated_running -= 1;
            }
            // A waiting unauthenticated job may go now.
            self.ready.notify_all();
        }
    }

    fn close(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.closed = true;
        }
        self.ready.notify_all();
    }
}

/// Closes the queue when the last clone of the hasher is dropped.
struct Closer(Arc<Queue>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[derive(Clone)]
pub struct PasswordHasher {
    queue: Arc<Queue>,
    _closer: Arc<Closer>,
    /// Authenticated jobs admitted at once: the concurrency asked for (by default one
    /// per CPU but one), never more than there are threads.
    permits: Arc<Semaphore>,
    /// Unauthenticated jobs admitted at once, running or waiting.
    unauthenticated: Arc<Semaphore>,
    dummy_hash: Arc<str>,
    /// Hashes and verifications run so far (skipped jobs not counted).
    completed: Arc<std::sync::atomic::AtomicU64>,
    /// Authenticated callers waiting for a permit (they wait in the runtime, before
    /// the queue): part of the queue's depth as `/metrics` shows it.
    awaiting_permit: Arc<AtomicUsize>,
    /// Jobs on a thread now, by class: authenticated, unauthenticated.
    running: Arc<[AtomicUsize; 2]>,
}

/// What the hashing threads have to do now ([`PasswordHasher::load`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HashLoad {
    pub authenticated_queued: usize,
    pub authenticated_running: usize,
    pub unauthenticated_queued: usize,
    pub unauthenticated_running: usize,
}

/// Counts one waiting caller for as long as it waits, however the wait ends (a
/// caller whose client went away is dropped mid-wait).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Waiting<'a> {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn class_index(class: Class) -> usize {
    match class {
        Class::Authenticated => 0,
        Class::Unauthenticated => 1,
    }
}

/// One admitted unauthenticated hash ([`PasswordHasher::admit_unauthenticated`]):
/// its place, running or waiting, until dropped.
pub struct Admission {
    _permit: OwnedSemaphorePermit,
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
    /// Starts hashing threads for `concurrency` authenticated hashes at once (logins,
    /// password checks), at least two threads in all (unauthenticated hashing runs on
    /// at most half of them, so it never takes the authenticated one), and admits up to
    /// `unauthenticated_queue` unauthenticated hashes waiting for theirs. With one
    /// authenticated hash at a time on two threads, a login storm hashes on one core
    /// and leaves the other to everything else. The threads end when the last clone of
    /// the hasher is dropped. Fails when the system cannot start a thread.
    pub fn new(concurrency: usize, unauthenticated_queue: usize) -> anyhow::Result<PasswordHasher> {
        let concurrency = concurrency.max(1);
        let threads = concurrency.max(2);
        let unauthenticated_threads = threads / 2;
        let queue = Arc::new(Queue {
            state: Mutex::new(QueueState {
                authenticated: VecDeque::new(),
                unauthenticated: VecDeque::new(),
                unauthenticated_running: 0,
                unauthenticated_threads,
                closed: false,
            }),
            ready: Condvar::new(),
        });
        let running: Arc<[AtomicUsize; 2]> = Arc::default();
        for n in 0..threads {
            let queue = queue.clone();
            let running = running.clone();
            thread::Builder::new()
                .name(format!("password-hash-{n}"))
                .spawn(move || {
                    lower_priority();
                    let mut blocks = vec![Block::new(); params().block_count()];
                    while let Some((class, job)) = queue.next() {
                        let running = &running[class_index(class)];
                        running.fetch_add(1, Ordering::Relaxed);
                        job(&mut blocks);
                        running.fetch_sub(1, Ordering::Relaxed);
                        queue.finished(class);
                    }
                })
                .map_err(|error| anyhow::anyhow!("starting a password-hashing thread: {error}"))?;
        }
        let closer = Arc::new(Closer(queue.clone()));
        let mut blocks = vec![Block::new(); params().block_count()];
        let dummy_hash = hash_with(&mut blocks, b"rowguard dummy password for unknown emails")
            .map_err(|error| anyhow::anyhow!("hashing the dummy password: {error:?}"))?;
        Ok(PasswordHasher {
            queue,
            _closer: closer,
            permits: Arc::new(Semaphore::new(concurrency)),
            unauthenticated: Arc::new(Semaphore::new(
                unauthenticated_threads + unauthenticated_queue,
            )),
            dummy_hash: dummy_hash.into(),
            completed: Arc::default(),
            awaiting_permit: Arc::default(),
            running,
        })
    }

    /// The jobs waiting for a thread (authenticated ones also while they wait for
    /// their permit) and those on one, by class: the depth `/metrics` shows. Each
    /// figure is read on its own, so under load they may be a moment apart.
    pub fn load(&self) -> HashLoad {
        let (authenticated, unauthenticated) = self
            .queue
            .state
            .lock()
            .map(|state| (state.authenticated.len(), state.unauthenticated.len()))
            .unwrap_or_default();
        HashLoad {
            authenticated_queued: authenticated + self.awaiting_permit.load(Ordering::Relaxed),
            authenticated_running: self.running[0].load(Ordering::Relaxed),
            unauthenticated_queued: unauthenticated,
            unauthenticated_running: self.running[1].load(Ordering::Relaxed),
        }
    }

    /// Hashes a password for an authenticated caller (a password change).
    pub async fn hash(&self, password: &str) -> Result<String, Error> {
        let permit = self.authenticated_permit().await?;
        self.run(Class::Authenticated, permit, hash_job(password))
            .await?
    }

    /// Admits one unauthenticated hash, or refuses at once (503 `unavailable`) when
    /// their threads are busy and their queue is full.
    pub fn admit_unauthenticated(&self) -> Result<Admission, Error> {
        match self.unauthenticated.clone().try_acquire_owned() {
            Ok(permit) => Ok(Admission { _permit: permit }),
            Err(TryAcquireError::NoPermits) => Err(Error::Unavailable(
                "too many unauthenticated password hashes at once".into(),
            )),
            Err(TryAcquireError::Closed) => {
                Err(Error::Unavailable("password hashing is shut down".into()))
            }
        }
    }

    /// Hashes a password for an unauthenticated caller: admitted at once or refused
    /// (see [`PasswordHasher::admit_unauthenticated`]). Call it only once the request
    /// has passed every check that needs no hash.
    pub async fn hash_unauthenticated(&self, password: &str) -> Result<String, Error> {
        let admission = self.admit_unauthenticated()?;
        self.run(Class::Unauthenticated, admission, hash_job(password))
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
        let permit = self.authenticated_permit().await?;
        let matches = self
            .run(Class::Authenticated, permit, move |blocks| {
                verify_with(blocks, &password, &hash)
            })
            .await?;
        Ok(known && matches)
    }

    /// How many hashes and verifications have run: the work a flow did, which is what
    /// makes an unknown email answer like a wrong password (one verification each),
    /// counted rather than timed.
    pub fn completed(&self) -> u64 {
        self.completed.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn authenticated_permit(&self) -> Result<OwnedSemaphorePermit, Error> {
        let _waiting = Waiting::new(&self.awaiting_permit);
        self.permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Unavailable("password hashing is shut down".into()))
    }

    /// Queues `work` in `class`. `admission` (the job's permit) travels with the job
    /// and is released when the job is done, not when its caller stops waiting: a
    /// client that disconnects does not free its place while its hash still queues
    /// or runs. A job whose caller went away before its turn is skipped.
    async fn run<T: Send + 'static>(
        &self,
        class: Class,
        admission: impl Send + 'static,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, Error> {
        let (done, result) = oneshot::channel();
        let completed = self.completed.clone();
        self.queue.push(
            class,
            Box::new(move |blocks| {
                if done.is_closed() {
                    return;
                }
                let output = work(blocks);
                completed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                // Released before the answer, so the caller finds its place free.
                drop(admission);
                let _ = done.send(output);
            }),
        )?;
        result
            .await
            .map_err(|_| Error::Internal(anyhow::anyhow!("a password-hashing job was lost")))
    }
}

fn hash_job(
    password: &str,
) -> impl FnOnce(&mut Vec<Block>) -> Result<String, Error> + Send + use<> {
    let password = password.as_bytes().to_vec();
    move |blocks| {
        hash_with(blocks, &password)
            .map_err(|error| Error::Internal(anyhow::anyhow!("hashing a password: {error}")))
    }
}

#[cfg(test)]
mod tests {
    use argon2::{PasswordHasher as _, PasswordVerifier as _};

    use super::*;

    #[test]
    fn the_dummy_hash_has_the_parameters_of_every_other_hash() {
        // An unknown email verifies against it: the same parameters make the same work.
        let hasher = PasswordHasher::new(2, 1).unwrap();
        let mut blocks = vec![Block::new(); params().block_count()];
        let real = hash_with(&mut blocks, b"correct horse battery").unwrap();
        let parameters = |phc: &str| phc.rsplitn(3, '$').nth(2).unwrap().to_string();
        assert_eq!(parameters(&hasher.dummy_hash), parameters(&real));
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_no_other() {
        let hasher = PasswordHasher::new(2, 0).unwrap();
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
        let hasher = PasswordHasher::new(2, 0).unwrap();
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
        let hasher = PasswordHasher::new(2, 0).unwrap();
        assert!(
            !hasher
                .verify("rowguard dummy password for unknown emails", None)
                .await
                .unwrap()
        );
    }

    /// A job that holds its thread until its sender is dropped or sends; counts its
    /// start in `started`.
    fn holding(
        started: &Arc<std::sync::atomic::AtomicUsize>,
    ) -> (
        std::sync::mpsc::Sender<()>,
        impl FnOnce(&mut Vec<Block>) + Send + 'static,
    ) {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let started = started.clone();
        let job = move |_: &mut Vec<Block>| {
            started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = held.recv();
        };
        (release, job)
    }

    /// Fails a test that would otherwise hang; not a measure of speed.
    const HANG_GUARD: std::time::Duration = std::time::Duration::from_secs(120);

    #[tokio::test]
    async fn an_unauthenticated_hash_is_refused_at_once_when_its_class_is_full() {
        // Two threads: one for unauthenticated hashing, and a queue of one.
        let hasher = PasswordHasher::new(2, 1).unwrap();
        assert!(
            hasher
                .hash_unauthenticated("first passphrase")
                .await
                .is_ok()
        );
        let held = [
            hasher.admit_unauthenticated().unwrap(),
            hasher.admit_unauthenticated().unwrap(),
        ];
        assert!(matches!(
            hasher.hash_unauthenticated("second passphrase").await,
            Err(Error::Unavailable(_))
        ));
        drop(held);
        assert!(
            hasher
                .hash_unauthenticated("third passphrase")
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_caller_that_goes_away_keeps_its_place_until_its_hash_is_done() {
        // Two threads: one for unauthenticated hashing, and a queue of one: two places.
        let hasher = PasswordHasher::new(2, 1).unwrap();
        let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (release, job) = holding(&started);
        let caller = {
            let hasher = hasher.clone();
            let admission = hasher.admit_unauthenticated().unwrap();
            tokio::spawn(async move { hasher.run(Class::Unauthenticated, admission, job).await })
        };
        tokio::time::timeout(HANG_GUARD, async {
            while started.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the job starts");
        // The client disconnects: its request is dropped, its hash still runs.
        caller.abort();
        let _ = caller.await;
        let second = hasher.admit_unauthenticated().unwrap();
        assert!(
            matches!(hasher.admit_unauthenticated(), Err(Error::Unavailable(_))),
            "a hash whose caller went away gave its place back while it still ran"
        );
        drop(second);
        // The job ends: its place is free again.
        release.send(()).unwrap();
        tokio::time::timeout(HANG_GUARD, async {
            loop {
                let places = (
                    hasher.admit_unauthenticated(),
                    hasher.admit_unauthenticated(),
                );
                if places.0.is_ok() && places.1.is_ok() {
                    return;
                }
                drop(places);
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the place is given back when the job is done");
    }

    #[tokio::test]
    async fn a_verification_gets_a_thread_while_unauthenticated_hashes_hold_theirs() {
        let hasher = PasswordHasher::new(2, 4).unwrap();
        let hash = hasher.hash("correct horse battery").await.unwrap();
        let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut releases = Vec::new();
        let mut holders = Vec::new();
        for _ in 0..3 {
            let (release, job) = holding(&started);
            releases.push(release);
            let hasher = hasher.clone();
            let admission = hasher.admit_unauthenticated().unwrap();
            holders.push(tokio::spawn(async move {
                let _admission = admission;
                hasher.run(Class::Unauthenticated, (), job).await
            }));
        }
        tokio::time::timeout(HANG_GUARD, async {
            while started.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("an unauthenticated job starts");
        // Three unauthenticated jobs, one running on its share (one of two threads),
        // two waiting: the other thread is the verification's.
        let verified = tokio::time::timeout(
            HANG_GUARD,
            hasher.verify("correct horse battery", Some(&hash)),
        )
        .await
        .expect("the verification was not starved by unauthenticated hashing");
        assert!(verified.unwrap());
        assert_eq!(
            started.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "unauthenticated hashing took more than its share of the threads"
        );
        drop(releases);
        for holder in holders {
            holder.await.unwrap().unwrap();
        }
        assert_eq!(started.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_free_thread_takes_a_waiting_verification_before_a_waiting_unauthenticated_hash() {
        let hasher = PasswordHasher::new(2, 4).unwrap();
        let hash = hasher.hash("correct horse battery").await.unwrap();
        let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        // Both threads held: one by an unauthenticated job, one by an authenticated one.
        let (release_unauthenticated, job) = holding(&started);
        let unauthenticated = {
            let hasher = hasher.clone();
            let admission = hasher.admit_unauthenticated().unwrap();
            tokio::spawn(async move {
                let _admission = admission;
                hasher.run(Class::Unauthenticated, (), job).await
            })
        };
        let (release_authenticated, job) = holding(&started);
        let authenticated = {
            let hasher = hasher.clone();
            tokio::spawn(async move { hasher.run(Class::Authenticated, (), job).await })
        };
        tokio::time::timeout(HANG_GUARD, async {
            while started.load(std::sync::atomic::Ordering::SeqCst) < 2 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("both threads are held");
        // Queued in this order: an unauthenticated hash, then a verification.
        let order = Arc::new(Mutex::new(Vec::new()));
        let waiting_hash = {
            let (hasher, order) = (hasher.clone(), order.clone());
            let admission = hasher.admit_unauthenticated().unwrap();
            tokio::spawn(async move {
                let _admission = admission;
                hasher
                    .run(Class::Unauthenticated, (), move |_| {
                        order.lock().unwrap().push("unauthenticated")
                    })
                    .await
            })
        };
        tokio::time::timeout(HANG_GUARD, async {
            while hasher
                .queue
                .state
                .lock()
                .unwrap()
                .unauthenticated
                .is_empty()
            {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the unauthenticated hash is queued");
        let waiting_verification = {
            let (hasher, order) = (hasher.clone(), order.clone());
            tokio::spawn(async move {
                hasher
                    .run(Class::Authenticated, (), move |blocks| {
                        order.lock().unwrap().push("verification");
                        verify_with(blocks, b"correct horse battery", &hash)
                    })
                    .await
            })
        };
        tokio::time::timeout(HANG_GUARD, async {
            while hasher.queue.state.lock().unwrap().authenticated.is_empty() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the verification is queued");
        // The unauthenticated thread frees first: it takes the verification.
        drop(release_unauthenticated);
        assert!(waiting_verification.await.unwrap().unwrap());
        drop(release_authenticated);
        waiting_hash.await.unwrap().unwrap();
        unauthenticated.await.unwrap().unwrap();
        authenticated.await.unwrap().unwrap();
        assert_eq!(*order.lock().unwrap(), ["verification", "unauthenticated"]);
    }

    #[tokio::test]
    async fn a_malformed_hash_does_not_verify() {
        let hasher = PasswordHasher::new(2, 0).unwrap();
        assert!(
            !hasher
                .verify("anything", Some("$argon2id$garbage"))
                .await
                .unwrap()
        );
    }
}
