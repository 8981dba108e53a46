//! Password hashing with argon2id (OWASP: m = 19 MiB, t = 2, p = 1) on a bounded blocking pool.
//!
//! Hashing costs ~30 ms of CPU, so it runs in `spawn_blocking` behind a semaphore sized to the
//! number of cores: logins never stall the async runtime and never queue more hashing than the
//! machine can do. Unknown users are checked against a dummy hash so that a failed login takes
//! the same time whether or not the account exists.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Argon2, PasswordHash};
use tokio::sync::Semaphore;

/// The password hasher.
#[derive(Debug, Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// Computed off the start-up path (a hash costs ~30 ms; readiness must not wait for it).
    dummy: Arc<OnceLock<String>>,
}

impl Default for Passwords {
    fn default() -> Self {
        Self::new()
    }
}

/// Hashes a password (blocking; call from a blocking context or the CLI).
pub fn hash_blocking(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

fn dummy_hash() -> String {
    hash_blocking(&crate::crypto::new_id()).unwrap_or_default()
}

fn verify_blocking(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        // A malformed stored hash is a failed login, never a panic.
        Err(_) => false,
    }
}

impl Passwords {
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let dummy: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
        let d = dummy.clone();
        std::thread::spawn(move || {
            d.get_or_init(dummy_hash);
        });
        Passwords {
            permits: Arc::new(Semaphore::new(cores)),
            dummy,
        }
    }

    /// Verifies `password` against `phc`, or against the dummy hash when there is no user.
    pub async fn verify(&self, password: String, phc: Option<String>) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let exists = phc.is_some();
        let dummy = self.dummy.clone();
        let ok = tokio::task::spawn_blocking(move || {
            let phc = phc.unwrap_or_else(|| dummy.get_or_init(dummy_hash).clone());
            verify_blocking(&password, &phc)
        })
        .await
        .unwrap_or(false);
        ok && exists
    }

    pub async fn hash(&self, password: String) -> Result<String, String> {
        let _permit = self.permits.acquire().await.map_err(|e| e.to_string())?;
        tokio::task::spawn_blocking(move || hash_blocking(&password))
            .await
            .map_err(|e| e.to_string())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owasp_argon2id_parameters_and_malformed_hash() {
        let h = hash_blocking("pw").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_blocking("pw", &h));
        assert!(!verify_blocking("pw2", &h));
        assert!(!verify_blocking("pw", "$argon2id$garbage"));
        assert!(!verify_blocking("pw", "é"));
    }
}
