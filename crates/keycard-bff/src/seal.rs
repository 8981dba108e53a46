//! Tokens at rest and the logout form's CSRF token: AES-256-GCM (NIST SP 800-38D) and
//! HMAC-SHA-256 (RFC 2104), both from aws-lc-rs, under the configured [`SessionKey`].
//!
//! [`Sealer::seal`] encrypts a session's tokens or a pending login with a fresh random 96-bit
//! nonce; the associated data is the purpose and the row's key (the SHA-256 of the cookie), so
//! a sealed blob copied into another row, or a login blob read as tokens, does not open.
//! [`Sealer::open`] tries the current key, then the previous ones, so keys can be rotated
//! without ending every session. [`Sealer::csrf_token`] derives the token a plain HTML logout
//! form carries from the session's hash with a key derived from the session key, so it needs
//! no storage and is worthless for any other session.
//!
//! Invariants: key bytes never appear in `Debug`; nonces come only from `keycard_os`; a blob
//! that fails to open is `None`, never a panic. Not here: what is sealed (`session`, `login`).

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::store::SessionHash;

/// The 256-bit key that seals tokens at rest, given as 43 base64url characters (no padding).
#[derive(Clone)]
pub struct SessionKey([u8; 32]);

impl SessionKey {
    /// Parses 32 bytes written as base64url without padding (`openssl rand -base64 32 | tr
    /// '+/' '-_' | tr -d '='` makes one).
    pub fn parse(s: &str) -> Result<SessionKey, &'static str> {
        let bytes = URL_SAFE_NO_PAD
            .decode(s.trim())
            .map_err(|_| "the session key is not base64url without padding")?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map(SessionKey)
            .map_err(|_| "the session key must be 32 bytes (43 base64url characters)")
    }

    /// A key from raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> SessionKey {
        SessionKey(bytes)
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

/// What a sealed blob holds; part of the associated data.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Purpose {
    Tokens,
    Login,
}

impl Purpose {
    fn tag(self) -> &'static [u8] {
        match self {
            Purpose::Tokens => b"keycard-bff/tokens/v1\0",
            Purpose::Login => b"keycard-bff/login/v1\0",
        }
    }
}

/// Seals and opens blobs; derives CSRF tokens.
pub(crate) struct Sealer {
    current: LessSafeKey,
    previous: Vec<LessSafeKey>,
    csrf: hmac::Key,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("previous_keys", &self.previous.len())
            .finish_non_exhaustive()
    }
}

/// aws-lc refused a key or an operation; not a state a request can cause.
#[derive(Debug, thiserror::Error)]
#[error("sealing failed")]
pub(crate) struct SealError;

fn aead_key(k: &SessionKey) -> Result<LessSafeKey, SealError> {
    UnboundKey::new(&AES_256_GCM, &k.0)
        .map(LessSafeKey::new)
        .map_err(|_| SealError)
}

fn aad(purpose: Purpose, id: &[u8]) -> Vec<u8> {
    let mut v = purpose.tag().to_vec();
    v.extend_from_slice(id);
    v
}

impl Sealer {
    pub(crate) fn new(current: &SessionKey, previous: &[SessionKey]) -> Result<Sealer, SealError> {
        // A key for HMAC derived from the session key, so one key never serves two algorithms.
        let derive = hmac::Key::new(hmac::HMAC_SHA256, &current.0);
        let csrf_key = hmac::sign(&derive, b"keycard-bff csrf v1");
        Ok(Sealer {
            current: aead_key(current)?,
            previous: previous.iter().map(aead_key).collect::<Result<_, _>>()?,
            csrf: hmac::Key::new(hmac::HMAC_SHA256, csrf_key.as_ref()),
        })
    }

    /// `nonce || ciphertext || tag`.
    pub(crate) fn seal(
        &self,
        purpose: Purpose,
        id: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, SealError> {
        let nonce_bytes = keycard_os::random_bytes::<NONCE_LEN>();
        let mut in_out = plaintext.to_vec();
        self.current
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(aad(purpose, id).as_slice()),
                &mut in_out,
            )
            .map_err(|_| SealError)?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&in_out);
        Ok(out)
    }

    /// The plaintext, or `None` when no key opens the blob for this purpose and row.
    pub(crate) fn open(&self, purpose: Purpose, id: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let nonce = sealed.get(..NONCE_LEN)?;
        let body = sealed.get(NONCE_LEN..)?;
        let aad = aad(purpose, id);
        std::iter::once(&self.current)
            .chain(self.previous.iter())
            .find_map(|key| {
                let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
                let mut in_out = body.to_vec();
                let plain = key
                    .open_in_place(nonce, Aad::from(aad.as_slice()), &mut in_out)
                    .ok()?;
                Some(plain.to_vec())
            })
    }

    /// The CSRF token of a plain logout form for this session.
    pub(crate) fn csrf_token(&self, id: &SessionHash) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.csrf, id.as_bytes()).as_ref())
    }

    /// Whether `token` is this session's CSRF token (constant time).
    pub(crate) fn check_csrf(&self, id: &SessionHash, token: &str) -> bool {
        match URL_SAFE_NO_PAD.decode(token) {
            Ok(tag) => hmac::verify(&self.csrf, id.as_bytes(), &tag).is_ok(),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use keycard_protocol::SecretHash;

    use super::*;

    #[test]
    fn sealed_blobs_open_only_for_their_row_and_purpose() {
        let key = SessionKey::from_bytes([1; 32]);
        let s = Sealer::new(&key, &[]).unwrap();
        let blob = s.seal(Purpose::Tokens, b"row-1", b"secret").unwrap();
        assert_eq!(s.open(Purpose::Tokens, b"row-1", &blob).unwrap(), b"secret");
        assert!(s.open(Purpose::Tokens, b"row-2", &blob).is_none());
        assert!(s.open(Purpose::Login, b"row-1", &blob).is_none());
        let mut flipped = blob.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(s.open(Purpose::Tokens, b"row-1", &flipped).is_none());
        assert!(s.open(Purpose::Tokens, b"row-1", &blob[..5]).is_none());
        // Two seals of one plaintext differ (fresh nonces).
        assert_ne!(blob, s.seal(Purpose::Tokens, b"row-1", b"secret").unwrap());
    }

    #[test]
    fn previous_keys_still_open_after_rotation() {
        let old = SessionKey::from_bytes([1; 32]);
        let new = SessionKey::from_bytes([2; 32]);
        let blob = Sealer::new(&old, &[])
            .unwrap()
            .seal(Purpose::Tokens, b"r", b"x")
            .unwrap();
        assert!(
            Sealer::new(&new, &[])
                .unwrap()
                .open(Purpose::Tokens, b"r", &blob)
                .is_none()
        );
        let rotated = Sealer::new(&new, &[old]).unwrap();
        assert_eq!(rotated.open(Purpose::Tokens, b"r", &blob).unwrap(), b"x");
    }

    #[test]
    fn csrf_tokens_are_per_session() {
        let s = Sealer::new(&SessionKey::from_bytes([1; 32]), &[]).unwrap();
        let a: SessionHash = SecretHash::from_bytes([1; 32]);
        let b: SessionHash = SecretHash::from_bytes([2; 32]);
        let t = s.csrf_token(&a);
        assert!(s.check_csrf(&a, &t));
        assert!(!s.check_csrf(&b, &t));
        assert!(!s.check_csrf(&a, "not base64!"));
        assert!(!s.check_csrf(&a, ""));
    }

    #[test]
    fn session_key_parsing() {
        assert!(SessionKey::parse(&URL_SAFE_NO_PAD.encode([7u8; 32])).is_ok());
        assert!(SessionKey::parse(&URL_SAFE_NO_PAD.encode([7u8; 31])).is_err());
        assert!(SessionKey::parse("!!!").is_err());
        assert_eq!(
            format!("{:?}", SessionKey::from_bytes([7; 32])),
            "SessionKey(..)"
        );
    }
}
