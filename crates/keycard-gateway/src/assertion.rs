//! The identity assertion: a short-lived JWT, signed by the gateway, that tells an upstream who
//! the verified caller is (RFC 7519; RFC 7515 compact JWS, ES256 per RFC 7518 §3.4).
//!
//! [`AssertionSigner::generate`] makes a fresh P-256 key when the gateway starts (it lives only
//! in memory, so there is nothing to rotate or leak from disk) and [`AssertionSigner::jwks`] is
//! the document the gateway serves at `/.well-known/jwks.json` for upstreams to verify with.
//! [`AssertionSigner::sign`] writes `iss` = [`ISSUER`], `aud` = the route's upstream, `sub`,
//! `client_id`, `scope`, `iat`, `exp` = `iat` + 60 s and a random `jti`.
//!
//! Invariants: the assertion never contains the caller's token; the audience is the upstream,
//! so an assertion sent to one upstream is refused by another that checks `aud`. Not here:
//! deciding whether a route sends one (`route`), the header it travels in (`config`).

use bytes::Bytes;
use keycard_jose::{Alg, JoseError, SigningKey, TokenTyp};
use keycard_protocol::{Jti, Kid, UnixTime};

/// The `iss` of every assertion.
pub const ISSUER: &str = "keycard-gateway";

/// How long an assertion is valid.
pub const LIFETIME_SECS: i64 = 60;

/// The verified identity of a request, from a validated token or an introspection answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub sub: Option<String>,
    pub client_id: Option<String>,
    pub scope: String,
}

/// The gateway's signing key for identity assertions.
pub struct AssertionSigner {
    key: SigningKey,
    jwks: Bytes,
}

impl std::fmt::Debug for AssertionSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssertionSigner")
            .field("kid", self.key.kid())
            .finish_non_exhaustive()
    }
}

impl AssertionSigner {
    /// A fresh ES256 key with a random `kid`.
    pub fn generate() -> Result<AssertionSigner, JoseError> {
        let (key, _) = SigningKey::generate(Alg::ES256, keycard_os::new_id::<Kid>())?;
        let jwks = keycard_jose::jwks_json(&[key.public_jwk()]).to_string();
        Ok(AssertionSigner {
            key,
            jwks: Bytes::from(jwks),
        })
    }

    /// The JWKS (RFC 7517 §5) holding the public key.
    pub fn jwks(&self) -> Bytes {
        self.jwks.clone()
    }

    /// An assertion of `identity` for `audience`, issued at `now`.
    pub fn sign(&self, identity: &Identity, audience: &str, now: UnixTime) -> Option<String> {
        let claims = serde_json::json!({
            "iss": ISSUER,
            "aud": audience,
            "sub": identity.sub,
            "client_id": identity.client_id,
            "scope": identity.scope,
            "iat": now.secs(),
            "exp": now.plus(LIFETIME_SECS).secs(),
            "jti": keycard_os::new_id::<Jti>().as_str(),
        });
        // Typed `JWT`: it is not an access token and must not pass for one.
        self.key.sign(TokenTyp::IdToken, &claims).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7519_assertion_verifies_with_the_served_jwks() {
        let s = AssertionSigner::generate().unwrap();
        let id = Identity {
            sub: Some("alice".into()),
            client_id: Some("web".into()),
            scope: "photos:read".into(),
        };
        let now = UnixTime(1_800_000_000);
        let jwt = s.sign(&id, "http://127.0.0.1:9090", now).unwrap();
        let jwks: serde_json::Value = serde_json::from_slice(&s.jwks()).unwrap();
        let jwks = keycard_jose::parse_jwks(&jwks).unwrap();
        let claims: serde_json::Value =
            keycard_jose::verify(&jwt, &jwks, "JWT", now.secs()).unwrap();
        assert_eq!(claims["aud"], "http://127.0.0.1:9090");
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["exp"], now.secs() + LIFETIME_SECS);
    }
}
