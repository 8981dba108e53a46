//! Verification with keys the caller already holds (an authorization server checking what it
//! issued itself): RFC 9068 §4 access tokens with any audience, and OIDC RP-Initiated Logout
//! 1.0 §2 `id_token_hint`s.
//!
//! [`LocalVerifier::from_jwks`] parses the keys once; [`LocalVerifier::verify`] and
//! [`LocalVerifier::verify_id_token_hint`] check tokens with them. The rules are
//! `Validator::validate`'s; the differences are documented on each method.
//!
//! Not here: fetching keys (`validator`), the JWS and claim rules (`jws`, `access_token`).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use keycard_protocol::{Audience, Issuer, UnixTime};

use crate::access_token::{self, AccessToken, check_claims};
use crate::jwks::{self, Key};
use crate::jws::Jws;
use crate::validator::{FetchError, ValidationError, ValidatorOptions, leeway_secs};

/// The `typ` of the id tokens Keycard signs.
const ID_TOKEN_TYP: crate::jws::Typ = crate::jws::Typ::new("JWT");

/// What an `id_token_hint` says, once its signature is verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdTokenHint {
    /// Whom it was issued for.
    pub sub: keycard_protocol::Subject,
    /// The client(s) it was issued to.
    pub aud: Vec<Audience>,
    /// The browser session it was issued in, if it says.
    pub sid: Option<keycard_protocol::SessionId>,
}

/// Verification with keys the caller already holds instead of fetching them: an authorization
/// server checking the access tokens it issued itself (introspection, userinfo).
///
/// The rules are [`Validator::validate`]'s (size cap, `typ`, algorithm from the key, `crit`,
/// `iss`, time) except two: every audience is accepted, the caller deciding which it serves,
/// and `exp` has no leeway. Keys are parsed once, in [`LocalVerifier::from_jwks`].
///
/// ```
/// # fn demo(jwks: &[u8], token: &str) -> Result<(), Box<dyn std::error::Error>> {
/// use keycard_protocol::{Clock, Issuer};
/// use keycard_validate::{LocalVerifier, SystemClock};
///
/// let issuer = Issuer::from_wire("https://auth.example.com")?;
/// let verifier = LocalVerifier::from_jwks(issuer, jwks)?;
/// let token = verifier.verify(token, SystemClock.now())?;
/// println!("{} may {:?}", token.sub(), token.scope());
/// # Ok(())
/// # }
/// ```
pub struct LocalVerifier {
    issuer: Issuer,
    keys: HashMap<String, Arc<Key>>,
    leeway: i64,
}

impl fmt::Debug for LocalVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalVerifier")
            .field("issuer", &self.issuer)
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl LocalVerifier {
    /// Parses a JWKS document (RFC 7517 §5) once. Keys this crate cannot use are skipped; a
    /// document that is not a JWKS, or holds no usable key, is an error.
    pub fn from_jwks(issuer: Issuer, jwks: &[u8]) -> Result<LocalVerifier, FetchError> {
        let keys = jwks::parse_jwks(jwks).map_err(FetchError::Malformed)?;
        if keys.is_empty() {
            return Err(FetchError::NoUsableKeys);
        }
        Ok(LocalVerifier {
            issuer,
            keys,
            leeway: leeway_secs(ValidatorOptions::default().leeway),
        })
    }

    /// Verifies an id token this issuer signed, given back as an RP-initiated logout's
    /// `id_token_hint` (OIDC RP-Initiated Logout 1.0 §2): the signature with these keys, `typ`
    /// `JWT` and `iss`. Expiry is deliberately not checked — an expired hint still proves whom
    /// it was issued for and to — and nothing else is trusted from it.
    pub fn verify_id_token_hint(&self, token: &str) -> Result<IdTokenHint, ValidationError> {
        let jws = Jws::parse(token)?;
        let header = jws.header.check(ID_TOKEN_TYP)?;
        let key = self
            .keys
            .get(header.kid())
            .ok_or(ValidationError::UnknownKey)?;
        jws.signed.verify_signature(&header, key)?;
        let claims = jws.claims;
        if claims.get("iss").and_then(serde_json::Value::as_str) != Some(self.issuer.as_str()) {
            return Err(ValidationError::WrongIssuer);
        }
        Ok(IdTokenHint {
            sub: access_token::required(&claims, "sub", keycard_protocol::Subject::parse)?,
            aud: access_token::audiences(&claims)?,
            sid: claims
                .get("sid")
                .and_then(serde_json::Value::as_str)
                .and_then(|s| keycard_protocol::SessionId::parse(s).ok()),
        })
    }

    /// Verifies a JWT access token at `now` and returns its claims.
    pub fn verify(&self, token: &str, now: UnixTime) -> Result<AccessToken, ValidationError> {
        let jws = Jws::parse(token)?;
        let header = jws.header.check(access_token::TYP)?;
        let key = self
            .keys
            .get(header.kid())
            .ok_or(ValidationError::UnknownKey)?;
        jws.signed.verify_signature(&header, key)?;
        let token = check_claims(jws.claims, &self.issuer, None, now, self.leeway)?;
        // The leeway absorbs clock skew between the issuer's nodes for `iat` and `nbf`, but
        // the issuer's own clock decides expiry: an expired token is never reported live.
        if now >= token.exp {
            return Err(ValidationError::Expired);
        }
        Ok(token)
    }
}
