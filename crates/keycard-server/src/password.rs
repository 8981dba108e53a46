//! Password hashing with argon2id (OWASP: m = 19 MiB, t = 2, p = 1) on a fixed pool of worker
//! threads, one per core.
//!
//! A check costs ~15–30 ms of CPU and 19 MiB of memory. The workers share a stack of 19 MiB
//! block buffers that they reuse for every check, so memory stays at most cores × 19 MiB however
//! many logins arrive, and one buffer under light load. (A fresh allocation per check let glibc
//! keep a 19 MiB heap per thread arena: 745 MiB under load.) Hashing never runs on the async
//! runtime. Unknown users are checked against a dummy hash so a failed login takes the same
//! time whether or not the account exists.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::PasswordHasher as _;
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};

/// Stored hashes asking for more memory than this are refused rather than computed.
const MAX_BLOCKS: usize = 256 * 1024;

struct Job {
    password: String,
    phc: Option<String>,
    reply: tokio::sync::oneshot::Sender<bool>,
}

/// The password checker.
#[derive(Clone)]
pub(crate) struct Passwords {
    jobs: Sender<Job>,
    /// Bounds the queue: excess logins wait here, in their async tasks.
    permits: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passwords(..)")
    }
}

impl Default for Passwords {
    fn default() -> Self {
        Self::new()
    }
}

/// Hashes a new password into a PHC string (admin commands; allocates its own memory).
pub fn hash_blocking(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

fn dummy_hash() -> String {
    let random: keycard_protocol::ClientSecret = keycard_os::new_secret();
    hash_blocking(random.secret()).unwrap_or_default()
}

/// Checks `password` against a PHC string, computing into the caller's reusable `memory`.
/// A malformed or unsupported stored hash is a failed check, never a panic.
pub fn verify_with_memory(password: &[u8], phc: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(h) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&h.salt, &h.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(h.algorithm.as_str()) else {
        return false;
    };
    let version = match h.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&h) else {
        return false;
    };
    let need = params.block_count();
    if need > MAX_BLOCKS {
        return false;
    }
    if memory.len() < need {
        memory.resize(need, Block::default());
    }
    let expected = expected.as_bytes();
    let mut out = [0u8; 64];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    let Some(blocks) = memory.get_mut(..need) else {
        return false;
    };
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, out, blocks)
        .is_ok()
        && aws_lc_rs::constant_time::verify_slices_are_equal(out, expected).is_ok()
}

/// Buffers are freed after this long without work, so an idle server stays small.
const IDLE_RELEASE: std::time::Duration = std::time::Duration::from_secs(30);

/// Spare 19 MiB buffers, shared by the workers. A check takes one (or allocates one) and puts
/// it back, so the number of buffers is the highest number of checks that ever ran at once:
/// one under light load, one per core under a login storm.
type Buffers = Arc<Mutex<Vec<Vec<Block>>>>;

fn worker(jobs: Arc<Mutex<Receiver<Job>>>, dummy: Arc<OnceLock<String>>, buffers: Buffers) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv_timeout(IDLE_RELEASE),
            Err(poisoned) => poisoned.into_inner().recv_timeout(IDLE_RELEASE),
        };
        let job = match job {
            Ok(job) => job,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if let Ok(mut b) = buffers.lock() {
                    b.clear();
                }
                continue;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let exists = job.phc.is_some();
        let phc = job
            .phc
            .unwrap_or_else(|| dummy.get_or_init(dummy_hash).clone());
        let mut memory = buffers
            .lock()
            .ok()
            .and_then(|mut b| b.pop())
            .unwrap_or_default();
        let ok = verify_with_memory(job.password.as_bytes(), &phc, &mut memory);
        if let Ok(mut b) = buffers.lock() {
            b.push(memory);
        }
        let _ = job.reply.send(ok && exists);
    }
}

impl Passwords {
    pub(crate) fn new() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let dummy: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let buffers: Buffers = Arc::default();
        for i in 0..cores {
            let (rx, dummy, buffers) = (rx.clone(), dummy.clone(), buffers.clone());
            let _ = std::thread::Builder::new()
                .name(format!("keycard-argon2-{i}"))
                .spawn(move || worker(rx, dummy, buffers));
        }
        let _ = std::thread::Builder::new()
            .name("keycard-argon2-dummy".into())
            .spawn(move || {
                dummy.get_or_init(dummy_hash);
            });
        Passwords {
            jobs: tx,
            permits: Arc::new(tokio::sync::Semaphore::new(cores * 2)),
        }
    }

    /// Verifies `password` against `phc`, or against the dummy hash when there is no user.
    pub(crate) async fn verify(&self, password: String, phc: Option<String>) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        if self
            .jobs
            .send(Job {
                password,
                phc,
                reply,
            })
            .is_err()
        {
            return false;
        }
        answer.await.unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owasp_argon2id_parameters_and_malformed_hash() {
        let h = hash_blocking("pw").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        let mut mem = Vec::new();
        assert!(verify_with_memory(b"pw", &h, &mut mem));
        assert!(!verify_with_memory(b"pw2", &h, &mut mem));
        assert!(
            verify_with_memory(b"pw", &h, &mut mem),
            "memory is reusable"
        );
        assert!(!verify_with_memory(b"pw", "$argon2id$garbage", &mut mem));
        assert!(!verify_with_memory(b"pw", "é", &mut mem));
        // Absurd stored parameters are refused, not computed.
        assert!(!verify_with_memory(
            b"pw",
            "$argon2id$v=19$m=4000000,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            &mut mem
        ));
    }

    #[tokio::test]
    async fn pool_verifies_and_unknown_users_fail() {
        let p = Passwords::new();
        let h = hash_blocking("secret pw").unwrap();
        assert!(p.verify("secret pw".into(), Some(h.clone())).await);
        assert!(!p.verify("wrong".into(), Some(h)).await);
        assert!(!p.verify("secret pw".into(), None).await);
    }
}
