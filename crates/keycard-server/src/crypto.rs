//! At-rest encryption of private keys (AES-256-GCM with the master key); randomness comes from
//! `keycard-os`.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use keycard_os::random_bytes;

/// The key that encrypts signing keys at rest.
pub struct MasterKey([u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    pub fn from_bytes(b: [u8; 32]) -> Self {
        MasterKey(b)
    }

    pub fn generate() -> Self {
        MasterKey(random_bytes())
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn key(&self) -> Result<LessSafeKey, String> {
        UnboundKey::new(&AES_256_GCM, &self.0)
            .map(LessSafeKey::new)
            .map_err(|_| "bad master key".to_owned())
    }

    /// Encrypts with a random nonce; output is `nonce || ciphertext || tag`. The key id is the
    /// associated data, so a ciphertext cannot be moved to another key's row.
    pub(crate) fn seal(&self, kid: &str, plaintext: &[u8]) -> Result<Vec<u8>, String> {
        let nonce_bytes = random_bytes::<NONCE_LEN>();
        let mut buf = plaintext.to_vec();
        self.key()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(kid.as_bytes()),
                &mut buf,
            )
            .map_err(|_| "encryption failed".to_owned())?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    pub(crate) fn open(&self, kid: &str, sealed: &[u8]) -> Result<Vec<u8>, String> {
        if sealed.len() < NONCE_LEN {
            return Err("ciphertext too short".into());
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| "bad nonce".to_owned())?;
        let mut buf = ct.to_vec();
        let pt = self
            .key()?
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buf)
            .map_err(|_| "cannot decrypt a signing key: wrong master key?".to_owned())?;
        Ok(pt.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_kid_binding() {
        let k = MasterKey::generate();
        let c = k.seal("kid1", b"private").unwrap();
        assert_eq!(k.open("kid1", &c).unwrap(), b"private");
        assert!(k.open("kid2", &c).is_err());
        assert!(MasterKey::generate().open("kid1", &c).is_err());
    }
}
