//! Bearer secrets, one type per kind (RFC 6749 §10.10; OAuth 2.1 §7.7; RFC 9700 §4.14).
//!
//! [`Secret<K>`] holds a secret of kind `K` (an authorization code, a refresh token, a client
//! secret, a browser session id, ...): an authorization code cannot be passed where a refresh
//! token is expected, because they are different types. [`SecretHash<K>`] is its SHA-256, the
//! only form a store ever sees; the kind carries over, so a code's hash cannot be looked up as a
//! session's.
//!
//! Invariants: a secret has no `Display`, no `Serialize` and no `PartialEq`; `Debug` prints only
//! the kind (`RefreshToken(..)`); [`Secret::secret`] is the one way to read it, for putting it on
//! the wire; comparisons go through hashes in constant time ([`SecretHash::ct_eq`],
//! [`Secret::matches`]). Fresh secrets are made from caller-supplied random bytes
//! ([`Secret::from_random`]); this crate has no random generator (see `keycard-os`).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::OAuthError;

/// Number of random bytes in a generated secret (OAuth 2.1 §7.7: at least 128 bits; we use 256).
pub const SECRET_BYTES: usize = 32;

/// What a secret is for. The kind is a type parameter only; it has no values.
pub trait SecretKind: Send + Sync + 'static {
    /// The name `Debug` prints, e.g. `RefreshToken`.
    const NAME: &'static str;
    /// The longest value accepted from a request.
    const MAX_LEN: usize = 4096;
}

/// The kinds of secrets Keycard handles. Each is an uninhabited marker type.
pub mod kind {
    use super::SecretKind;

    macro_rules! kinds {
        ($($(#[$doc:meta])* $name:ident $(= $max:expr)?;)*) => {$(
            $(#[$doc])*
            #[derive(Debug)]
            pub enum $name {}
            impl SecretKind for $name {
                const NAME: &'static str = stringify!($name);
                $(const MAX_LEN: usize = $max;)?
            }
        )*};
    }

    kinds! {
        /// An authorization code (RFC 6749 §4.1.2).
        AuthorizationCode;
        /// A refresh token (RFC 6749 §1.5).
        RefreshToken;
        /// A client secret (RFC 6749 §2.3.1).
        ClientSecret;
        /// The browser's single sign-on session cookie.
        SessionToken;
        /// The handle of a pending login or consent transaction, carried in page URLs.
        TransactionId;
        /// A CSRF token, double-submitted as a cookie and a form field.
        CsrfToken;
        /// A device code (RFC 8628 §3.2).
        DeviceCode;
        /// A user code (RFC 8628 §3.2, §6.1): never made by [`super::Secret::from_random`],
        /// only hashed (see `crate::device::UserCode`).
        UserCode = 64;
        /// An access token as presented by a client (RFC 6750 §2.1); Keycard's are JWTs.
        BearerToken = 8 * 1024;
        /// An OpenID Connect id token as a compact JWT (OIDC Core §2).
        IdToken = 16 * 1024;
    }
}

/// An authorization code (RFC 6749 §4.1.2).
pub type AuthorizationCode = Secret<kind::AuthorizationCode>;
/// A refresh token (RFC 6749 §1.5).
pub type RefreshToken = Secret<kind::RefreshToken>;
/// A client secret (RFC 6749 §2.3.1).
pub type ClientSecret = Secret<kind::ClientSecret>;
/// The browser session cookie's value.
pub type SessionToken = Secret<kind::SessionToken>;
/// A login/consent transaction handle.
pub type TransactionId = Secret<kind::TransactionId>;
/// A CSRF token.
pub type CsrfToken = Secret<kind::CsrfToken>;
/// A device code (RFC 8628 §3.2).
pub type DeviceCode = Secret<kind::DeviceCode>;
/// An access token string (RFC 6750 §2.1).
pub type BearerToken = Secret<kind::BearerToken>;
/// An id token string (OIDC Core §2).
pub type IdToken = Secret<kind::IdToken>;

/// A secret of kind `K`: base64url text, never printed, never compared with `==`.
pub struct Secret<K: SecretKind> {
    value: String,
    kind: PhantomData<fn() -> K>,
}

impl<K: SecretKind> Secret<K> {
    fn new(value: String) -> Self {
        Secret {
            value,
            kind: PhantomData,
        }
    }

    /// A fresh secret from caller-supplied random bytes: 256 bits, base64url without padding.
    pub fn from_random(bytes: &[u8; SECRET_BYTES]) -> Self {
        Secret::new(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// A secret presented in a request: non-empty and at most `K::MAX_LEN` bytes.
    pub fn parse(s: &str) -> Result<Self, OAuthError> {
        if s.is_empty() {
            return Err(OAuthError::invalid_request(format!("{} is empty", K::NAME)));
        }
        if s.len() > K::MAX_LEN {
            return Err(OAuthError::invalid_request(format!(
                "{} is too long",
                K::NAME
            )));
        }
        Ok(Secret::new(s.to_owned()))
    }

    /// The only way to read the secret; call it only to put it on the wire.
    pub fn secret(&self) -> &str {
        &self.value
    }

    /// The SHA-256 the store keys this secret by.
    pub fn hash(&self) -> SecretHash<K> {
        SecretHash::digest(self.value.as_bytes())
    }

    /// Whether two secrets are equal, compared through their hashes in constant time.
    pub fn matches(&self, other: &Secret<K>) -> bool {
        self.hash().ct_eq(&other.hash())
    }
}

impl<K: SecretKind> Clone for Secret<K> {
    fn clone(&self) -> Self {
        Secret::new(self.value.clone())
    }
}

impl<K: SecretKind> fmt::Debug for Secret<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(..)", K::NAME)
    }
}

/// SHA-256 of a secret of kind `K`. Not secret itself, but compared in constant time when it
/// decides an access ([`SecretHash::ct_eq`]).
pub struct SecretHash<K: SecretKind> {
    bytes: [u8; 32],
    kind: PhantomData<fn() -> K>,
}

impl<K: SecretKind> SecretHash<K> {
    pub(crate) fn digest(input: &[u8]) -> Self {
        let d = digest::digest(&digest::SHA256, input);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(d.as_ref());
        SecretHash::from_bytes(bytes)
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        SecretHash {
            bytes,
            kind: PhantomData,
        }
    }

    /// A stored hash read back; `None` when it is not 32 bytes.
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(b).ok().map(SecretHash::from_bytes)
    }

    /// Constant-time comparison, for secrets checked against a stored hash.
    pub fn ct_eq(&self, other: &SecretHash<K>) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(&self.bytes, &other.bytes).is_ok()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl<K: SecretKind> Clone for SecretHash<K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K: SecretKind> Copy for SecretHash<K> {}

// Equality and hashing of hashes serve map keys and test assertions; access decisions use
// `ct_eq`.
impl<K: SecretKind> PartialEq for SecretHash<K> {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl<K: SecretKind> Eq for SecretHash<K> {}

impl<K: SecretKind> Hash for SecretHash<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

impl<K: SecretKind> fmt::Debug for SecretHash<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Eight hex digits are enough to correlate log lines.
        let b = &self.bytes;
        write!(
            f,
            "{}Hash({:02x}{:02x}{:02x}{:02x}..)",
            K::NAME,
            b[0],
            b[1],
            b[2],
            b[3]
        )
    }
}

/// Serde support for secrets inside wire documents (a token response carries tokens), kept
/// private to this crate so that nothing else serialises a secret by accident.
pub(crate) mod wire {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::{Secret, SecretKind};

    pub(crate) fn serialize<K: SecretKind, S: Serializer>(
        s: &Secret<K>,
        ser: S,
    ) -> Result<S::Ok, S::Error> {
        ser.serialize_str(s.secret())
    }

    pub(crate) fn deserialize<'de, K: SecretKind, D: Deserializer<'de>>(
        de: D,
    ) -> Result<Secret<K>, D::Error> {
        let s = String::deserialize(de)?;
        Secret::parse(&s).map_err(serde::de::Error::custom)
    }

    pub(crate) mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        use super::super::{Secret, SecretKind};

        pub(crate) fn serialize<K: SecretKind, S: Serializer>(
            s: &Option<Secret<K>>,
            ser: S,
        ) -> Result<S::Ok, S::Error> {
            match s {
                Some(s) => ser.serialize_some(s.secret()),
                None => ser.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, K: SecretKind, D: Deserializer<'de>>(
            de: D,
        ) -> Result<Option<Secret<K>>, D::Error> {
            Option::<String>::deserialize(de)?
                .map(|s| Secret::parse(&s).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_names_the_kind_and_nothing_else() {
        let s = RefreshToken::from_random(&[7u8; 32]);
        assert_eq!(format!("{s:?}"), "RefreshToken(..)");
        assert_eq!(s.secret().len(), 43);
        let h = format!("{:?}", s.hash());
        assert!(h.starts_with("RefreshTokenHash("), "{h}");
    }

    #[test]
    fn rfc6749_s10_10_secrets_compare_in_constant_time_through_hashes() {
        let a = CsrfToken::parse("abc").unwrap();
        let b = CsrfToken::parse("abc").unwrap();
        let c = CsrfToken::parse("abd").unwrap();
        assert!(a.matches(&b));
        assert!(!a.matches(&c));
        assert!(a.hash().ct_eq(&b.hash()));
    }

    #[test]
    fn secret_parse_bounds_follow_the_kind() {
        assert!(AuthorizationCode::parse("").is_err());
        assert!(AuthorizationCode::parse(&"a".repeat(4096)).is_ok());
        assert!(AuthorizationCode::parse(&"a".repeat(4097)).is_err());
        assert!(BearerToken::parse(&"a".repeat(8192)).is_ok());
        assert!(BearerToken::parse(&"a".repeat(8193)).is_err());
    }
}
