//! Signing keys: loaded once, decrypted once, parsed once, and swapped atomically on rotation.
//!
//! Life cycle (`keycard keys rotate`): a *next* key is published in the JWKS before it signs
//! anything; rotation makes it *active*, retires the old active key, and creates a new next key.
//! A retired key stays in the JWKS until every token it signed has expired, then the janitor
//! deletes it. Every node re-reads the key table every `Settings::key_reload`.

use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use keycard_jose::{Alg, SigningKey};
use keycard_os::new_id;
use keycard_protocol::{Issuer, Kid, UnixTime};
use keycard_store::{KeyState, Revocation, Store, StoredKey};

use crate::crypto::MasterKey;
use crate::settings::Settings;

/// The keys in force: the signer and the published JWKS, both precomputed.
#[derive(Debug)]
pub(crate) struct KeySet {
    pub(crate) active: Arc<SigningKey>,
    /// The JWKS document as served.
    pub(crate) jwks_bytes: Bytes,
    /// The same keys, parsed once, for verifying our own access tokens at `/userinfo` and
    /// `/introspect` (the resource servers' rules, through `keycard-validate`).
    pub(crate) verifier: keycard_validate::LocalVerifier,
    /// Since when the active key signs (scheduled rotation counts from here).
    pub(crate) active_since: UnixTime,
    /// Tokens these keys verified that introspection found unrevoked (`verified`); a reload
    /// starts afresh with the new set.
    pub(crate) verified: crate::verified::VerifiedTokens,
    fingerprint: Vec<(Kid, KeyState)>,
}

impl KeySet {
    pub(crate) fn alg(&self) -> Alg {
        self.active.alg()
    }
}

/// Why the keys could not be loaded at start-up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyLoadError {
    #[error(transparent)]
    Store(#[from] keycard_store::StoreError),
    #[error("{0}")]
    Keys(String),
}

/// Holds the current [`KeySet`] and replaces it when the store changes.
#[derive(Debug)]
pub(crate) struct KeyManager {
    master: MasterKey,
    issuer: Issuer,
    current: RwLock<Arc<KeySet>>,
}

fn fingerprint(keys: &[StoredKey]) -> Vec<(Kid, KeyState)> {
    let mut f: Vec<_> = keys.iter().map(|k| (k.kid.clone(), k.state)).collect();
    f.sort_by(|a, b| a.0.cmp(&b.0));
    f
}

/// Generates a key of `alg`, encrypted for storage.
pub(crate) fn new_stored_key(
    master: &MasterKey,
    alg: Alg,
    state: KeyState,
    now: UnixTime,
) -> Result<StoredKey, String> {
    let kid: Kid = new_id();
    let (_, der) = SigningKey::generate(alg, kid.clone()).map_err(|e| e.to_string())?;
    let sealed = master.seal(&kid, &der.0)?;
    Ok(StoredKey {
        kid,
        alg: alg.as_str().to_owned(),
        private_key_enc: sealed,
        state,
        created_at: now,
        retire_until: None,
        activated_at: (state == KeyState::Active).then_some(now),
    })
}

/// Rotates keys in the store (used by `keycard keys rotate` and the schedule; servers pick it
/// up on reload): the published next key signs from now on, the active one stays published
/// until its last token expires, and a new next key is published. With `due_after`, only if
/// the active key has signed that long (several nodes on a schedule: one rotates). Returns
/// whether it rotated.
pub async fn rotate<S: Store>(
    store: &S,
    master: &MasterKey,
    alg: Alg,
    now: UnixTime,
    max_ttl: i64,
    due_after: Option<i64>,
) -> Result<bool, String> {
    // RSA key generation takes a few hundred milliseconds: off the async runtime.
    let master = MasterKey::from_bytes(*master.bytes());
    let next =
        tokio::task::spawn_blocking(move || new_stored_key(&master, alg, KeyState::Next, now))
            .await
            .map_err(|e| e.to_string())??;
    let r = Revocation {
        at: now,
        until: now.plus(max_ttl),
    };
    store
        .rotate_keys(&next, now.plus(max_ttl), due_after, r)
        .await
        .map_err(|e| e.to_string())
}

/// Removes a key at once (`keycard keys revoke`): it leaves the JWKS on every node's next
/// reload and the tokens it signed stop validating; a fresh next key replaces it.
pub async fn revoke<S: Store>(
    store: &S,
    master: &MasterKey,
    kid: &Kid,
    alg: Alg,
    now: UnixTime,
    max_ttl: i64,
) -> Result<(), keycard_store::StoreError> {
    let replacement = new_stored_key(master, alg, KeyState::Next, now)
        .map_err(keycard_store::StoreError::Unavailable)?;
    let r = Revocation {
        at: now,
        until: now.plus(max_ttl),
    };
    store.revoke_key(kid, &replacement, r).await
}

impl KeyManager {
    /// Loads the stored keys, creating an active and a next key on first start.
    pub(crate) async fn load_or_create<S: Store>(
        store: &S,
        master: MasterKey,
        settings: &Settings,
        now: UnixTime,
    ) -> Result<KeyManager, KeyLoadError> {
        let mut keys = store.signing_keys().await?;
        let has = |keys: &[StoredKey], s: KeyState| keys.iter().any(|k| k.state == s);
        if !has(&keys, KeyState::Active) {
            let k = new_stored_key(&master, settings.signing_alg, KeyState::Active, now)
                .map_err(KeyLoadError::Keys)?;
            store.insert_key(&k).await?;
            keys.push(k);
        }
        if !has(&keys, KeyState::Next) {
            let k = new_stored_key(&master, settings.signing_alg, KeyState::Next, now)
                .map_err(KeyLoadError::Keys)?;
            store.insert_key(&k).await?;
            keys.push(k);
        }
        let issuer = settings.issuer.clone();
        let set = build(&master, &keys, &issuer).map_err(KeyLoadError::Keys)?;
        Ok(KeyManager {
            master,
            issuer,
            current: RwLock::new(Arc::new(set)),
        })
    }

    pub(crate) fn master(&self) -> &MasterKey {
        &self.master
    }

    pub(crate) fn current(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the key table and swaps in a new set if anything changed.
    pub(crate) async fn reload<S: Store>(&self, store: &S) -> Result<bool, String> {
        let keys = store.signing_keys().await.map_err(|e| e.to_string())?;
        if fingerprint(&keys) == self.current().fingerprint {
            return Ok(false);
        }
        let set = build(&self.master, &keys, &self.issuer)?;
        tracing::info!(active = %set.active.kid(), keys = keys.len(), "signing keys changed");
        match self.current.write() {
            Ok(mut g) => *g = Arc::new(set),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(set),
        }
        Ok(true)
    }
}

fn build(master: &MasterKey, keys: &[StoredKey], issuer: &Issuer) -> Result<KeySet, String> {
    let mut active = None;
    let mut jwks = Vec::new();
    // The JWKS lists keys in the store's order (oldest first), whatever order they arrived
    // in: the node that created them at first start must publish the same document as every
    // node that read them from the database.
    let mut ordered: Vec<&StoredKey> = keys.iter().collect();
    ordered.sort_by(|a, b| (a.created_at.secs(), &a.kid).cmp(&(b.created_at.secs(), &b.kid)));
    for k in ordered {
        let alg =
            Alg::parse(&k.alg).ok_or_else(|| format!("key {} has unknown alg {}", k.kid, k.alg))?;
        let der = master.open(&k.kid, &k.private_key_enc)?;
        let key = SigningKey::from_pkcs8(alg, k.kid.clone(), &der).map_err(|e| e.to_string())?;
        jwks.push(key.public_jwk());
        if k.state == KeyState::Active {
            active = Some((Arc::new(key), k.activated_at.unwrap_or(k.created_at)));
        }
    }
    let (active, active_since) = active.ok_or("no active signing key")?;
    let doc = Bytes::from(keycard_jose::jwks_json(&jwks).to_string());
    let verifier = keycard_validate::LocalVerifier::from_jwks(issuer.clone(), &doc)
        .map_err(|e| e.to_string())?;
    Ok(KeySet {
        active,
        jwks_bytes: doc,
        verifier,
        active_since,
        verified: crate::verified::VerifiedTokens::default(),
        fingerprint: fingerprint(keys),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published JWKS depends on the key set, not on the order the keys were handed over.
    #[test]
    fn jwks_order_is_the_stores_whatever_the_input_order() {
        let master = MasterKey::generate();
        let now = UnixTime(1_700_000_000);
        let mut keys = vec![
            new_stored_key(&master, Alg::ES256, KeyState::Active, now).unwrap(),
            new_stored_key(&master, Alg::ES256, KeyState::Next, now).unwrap(),
            new_stored_key(
                &master,
                Alg::ES256,
                KeyState::Retired,
                UnixTime(now.secs() - 10),
            )
            .unwrap(),
        ];
        let issuer = Issuer::parse("https://id.example.com", false).unwrap();
        let a = build(&master, &keys, &issuer).unwrap();
        keys.reverse();
        let b = build(&master, &keys, &issuer).unwrap();
        assert_eq!(a.jwks_bytes, b.jwks_bytes);
        let doc: serde_json::Value = serde_json::from_slice(&a.jwks_bytes).unwrap();
        let kids: Vec<&str> = doc["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        // After the reverse, keys[0] is the retired key, created 10 s before the other two,
        // which were created in the same second and so come in kid order.
        let mut same_second = [keys[1].kid.as_str(), keys[2].kid.as_str()];
        same_second.sort_unstable();
        assert_eq!(kids, [keys[0].kid.as_str(), same_second[0], same_second[1]]);
    }
}
