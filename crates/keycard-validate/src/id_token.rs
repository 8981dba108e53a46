//! OpenID Connect id tokens (Core §3.1.3.7, §3.1.3.8, §12.2) and logout tokens (Back-Channel
//! Logout 1.0 §2.4, §2.6), verified for one client against its provider's keys.
//!
//! [`IdTokenVerifier`] holds the provider's key cache (the same single-flight JWKS cache as
//! [`Validator`], discovered the same way) and the client's id. [`IdTokenVerifier::verify`]
//! checks an id token from a token response against an [`IdTokenCheck`] (the nonce sent, the
//! access token beside it, the session's subject after a refresh) and yields a
//! [`VerifiedIdToken`]; [`IdTokenVerifier::verify_logout_token`] checks a back-channel logout
//! token and yields a [`LogoutToken`] naming the `sid` and/or `sub` to sign out.
//!
//! The JWS rules are the access tokens' (`jws`: size cap, no `none`/HMAC, no `crit`, the
//! algorithm from the key), with the `typ` of each kind: an id token may say `JWT` or nothing,
//! a logout token must say `logout+jwt`, and neither accepts the other's `typ` or `at+jwt`
//! (RFC 8725 §3.11: a logout token never passes as an id token, nor an id token as an access
//! token). The cheap claim checks run before the key lookup, as in [`Validator`], so a refused
//! token never causes a fetch. `iat` must be recent ([`IdTokenVerifier::max_token_age`]): both
//! kinds are verified right after they were issued.
//!
//! Not here: remembering logout-token `jti`s (the caller's store: §2.6 item 7 needs state),
//! finding the sessions a logout token names, and the authorization request that set the nonce.

use std::fmt;
use std::sync::Arc;

use keycard_protocol::claims::{HalfHash, at_hash};
use keycard_protocol::{Audience, ClientId, Issuer, Jti, Nonce, SessionId, Subject, UnixTime};
use serde_json::{Map, Value};

use crate::access_token::{audiences, optional_time, required, required_time};
use crate::http::HttpClient;
use crate::jws::{Jws, Typ};
use crate::validator::{ValidationError, Validator, ValidatorOptions};

/// An id token's `typ`: `JWT` or none at all (OpenID Connect Core §2 does not require one).
const ID_TOKEN_TYP: Typ = Typ::or_absent("JWT");
/// A logout token's `typ` (Back-Channel Logout 1.0 §2.4, explicit typing).
const LOGOUT_TOKEN_TYP: Typ = Typ::new("logout+jwt");
/// The member of `events` that makes a JWT a logout token (Back-Channel Logout 1.0 §2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How long ago a token verified right after issuance may have been issued, by default.
const DEFAULT_MAX_TOKEN_AGE: i64 = 10 * 60;

/// What an id token must match besides the provider and the client.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdTokenCheck<'a> {
    nonce: NonceRule<'a>,
    access_token: Option<&'a str>,
    subject: Option<&'a Subject>,
}

#[derive(Clone, Copy, Debug, Default)]
enum NonceRule<'a> {
    /// No nonce was sent; any `nonce` in the token is ignored.
    #[default]
    None,
    /// A nonce was sent in the authorization request: the token must carry exactly it.
    Required(&'a Nonce),
    /// A refreshed id token may omit the nonce, but one it carries must be the original
    /// (OpenID Connect Core §12.2).
    IfPresent(&'a Nonce),
}

impl<'a> IdTokenCheck<'a> {
    /// No nonce, no access token, any subject.
    pub fn new() -> IdTokenCheck<'a> {
        IdTokenCheck::default()
    }

    /// The nonce of the authorization request: the token must carry it (Core §3.1.3.7 item 11).
    pub fn nonce(mut self, nonce: &'a Nonce) -> IdTokenCheck<'a> {
        self.nonce = NonceRule::Required(nonce);
        self
    }

    /// For an id token from a refresh: a `nonce` it carries must be this one (Core §12.2).
    pub fn nonce_if_present(mut self, nonce: &'a Nonce) -> IdTokenCheck<'a> {
        self.nonce = NonceRule::IfPresent(nonce);
        self
    }

    /// The access token issued with the id token: an `at_hash` must match it (Core §3.1.3.8).
    pub fn access_token(mut self, token: &'a str) -> IdTokenCheck<'a> {
        self.access_token = Some(token);
        self
    }

    /// The session's subject: a refreshed id token must name the same one (Core §12.2).
    pub fn subject(mut self, sub: &'a Subject) -> IdTokenCheck<'a> {
        self.subject = Some(sub);
        self
    }
}

/// A verified id token: signature, `typ`, `iss`, `aud`, `azp`, time, `nonce` and `at_hash` have
/// been checked. Holds the claims, never the token string.
#[derive(Clone, Debug)]
pub struct VerifiedIdToken {
    iss: Issuer,
    sub: Subject,
    aud: Vec<Audience>,
    exp: UnixTime,
    iat: UnixTime,
    auth_time: Option<UnixTime>,
    sid: Option<SessionId>,
    claims: Map<String, Value>,
}

impl VerifiedIdToken {
    /// `iss`, equal to the verifier's issuer.
    pub fn iss(&self) -> &Issuer {
        &self.iss
    }

    /// `sub`: the end user at the provider.
    pub fn sub(&self) -> &Subject {
        &self.sub
    }

    /// `aud`: contains the client.
    pub fn aud(&self) -> &[Audience] {
        &self.aud
    }

    /// `exp`.
    pub fn exp(&self) -> UnixTime {
        self.exp
    }

    /// `iat`.
    pub fn iat(&self) -> UnixTime {
        self.iat
    }

    /// `auth_time`, when present.
    pub fn auth_time(&self) -> Option<UnixTime> {
        self.auth_time
    }

    /// `sid`: the provider's session (OpenID Connect Front-/Back-Channel Logout §2), when the
    /// provider sends one.
    pub fn sid(&self) -> Option<&SessionId> {
        self.sid.as_ref()
    }

    /// A string claim such as `name` or `email`, when present and a string.
    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// All claims.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }
}

/// A verified back-channel logout token (Back-Channel Logout 1.0 §2.4): it names `sid`, `sub`
/// or both; every session matching what it names is to end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogoutToken {
    iss: Issuer,
    sub: Option<Subject>,
    sid: Option<SessionId>,
    jti: Jti,
    exp: UnixTime,
}

impl LogoutToken {
    /// `iss`, equal to the verifier's issuer.
    pub fn iss(&self) -> &Issuer {
        &self.iss
    }

    /// `sub`, when the token names the user.
    pub fn sub(&self) -> Option<&Subject> {
        self.sub.as_ref()
    }

    /// `sid`, when the token names one session.
    pub fn sid(&self) -> Option<&SessionId> {
        self.sid.as_ref()
    }

    /// `jti`: the caller refuses a second token with the same one (§2.6 item 7).
    pub fn jti(&self) -> &Jti {
        &self.jti
    }

    /// `exp`: how long the `jti` must be remembered.
    pub fn exp(&self) -> UnixTime {
        self.exp
    }
}

/// Verifies id tokens and logout tokens issued by one provider to one client. Cheap to clone.
#[derive(Clone)]
pub struct IdTokenVerifier {
    keys: Validator,
    client_id: ClientId,
    audience: Audience,
    max_age: i64,
}

impl fmt::Debug for IdTokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdTokenVerifier")
            .field("issuer", self.keys.issuer())
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl IdTokenVerifier {
    /// A verifier for tokens from `issuer` (compared exactly) to `client_id`. Keys are found
    /// and cached as [`Validator::new`] does, with the same options.
    pub fn new(
        issuer: Issuer,
        client_id: ClientId,
        http: Arc<dyn HttpClient>,
        options: ValidatorOptions,
    ) -> IdTokenVerifier {
        let audience = Audience::from(&client_id);
        IdTokenVerifier {
            keys: Validator::new(issuer, audience.clone(), http, options),
            client_id,
            audience,
            max_age: DEFAULT_MAX_TOKEN_AGE,
        }
    }

    /// How far in the past `iat` may lie; default 10 minutes. Tokens are verified right after
    /// they were issued, so an old `iat` means a replayed token.
    pub fn max_token_age(mut self, age: std::time::Duration) -> IdTokenVerifier {
        self.max_age = i64::try_from(age.as_secs()).unwrap_or(i64::MAX);
        self
    }

    /// The issuer this verifier accepts.
    pub fn issuer(&self) -> &Issuer {
        self.keys.issuer()
    }

    /// The client the tokens must be for.
    pub fn client_id(&self) -> &ClientId {
        &self.client_id
    }

    /// Fetches the provider's keys now (see [`Validator::refresh`]).
    pub async fn refresh(&self) -> Result<(), ValidationError> {
        self.keys.refresh().await
    }

    /// Verifies an id token (OpenID Connect Core §3.1.3.7; §3.1.3.8 `at_hash`; §12.2 after a
    /// refresh).
    pub async fn verify(
        &self,
        token: &str,
        check: &IdTokenCheck<'_>,
    ) -> Result<VerifiedIdToken, ValidationError> {
        let jws = Jws::parse(token)?;
        let header = jws.header.check(ID_TOKEN_TYP)?;
        let claims = jws.claims;
        let (iss, aud, exp, iat) = self.common_claims(&claims)?;
        self.check_authorized_party(&claims, &aud)?;
        let sub = required(&claims, "sub", Subject::parse)?;
        if let Some(expected) = check.subject
            && &sub != expected
        {
            return Err(ValidationError::WrongSubject);
        }
        let nonce = match claims.get("nonce") {
            None => None,
            Some(Value::String(n)) => Some(n.as_str()),
            Some(_) => return Err(ValidationError::InvalidClaim("nonce")),
        };
        match (check.nonce, nonce) {
            (NonceRule::None, _) | (NonceRule::IfPresent(_), None) => {}
            (NonceRule::Required(want) | NonceRule::IfPresent(want), Some(got)) => {
                if !constant_time_eq(want.as_str(), got) {
                    return Err(ValidationError::WrongNonce);
                }
            }
            (NonceRule::Required(_), None) => return Err(ValidationError::WrongNonce),
        }
        if let Some(access_token) = check.access_token {
            match claims.get("at_hash") {
                None => {}
                Some(Value::String(got)) => {
                    let want = at_hash(access_token, half_hash(header.alg())?);
                    if !constant_time_eq(&want, got) {
                        return Err(ValidationError::WrongAtHash);
                    }
                }
                Some(_) => return Err(ValidationError::InvalidClaim("at_hash")),
            }
        }
        let auth_time = optional_time(&claims, "auth_time")?;
        let sid = optional_string(&claims, "sid", SessionId::parse)?;
        let key = self.keys.key_for(header.kid()).await?;
        jws.signed.verify_signature(&header, &key)?;
        Ok(VerifiedIdToken {
            iss,
            sub,
            aud,
            exp,
            iat,
            auth_time,
            sid,
            claims,
        })
    }

    /// Verifies a back-channel logout token (Back-Channel Logout 1.0 §2.6 items 2–6): the JWS
    /// rules with `typ` `logout+jwt`, `iss`, `aud`, `iat`, `exp`, `jti`, the logout event in
    /// `events`, no `nonce`, and `sub` and/or `sid`. Item 7 (a `jti` seen before) is the
    /// caller's, with [`LogoutToken::jti`] and [`LogoutToken::exp`].
    pub async fn verify_logout_token(&self, token: &str) -> Result<LogoutToken, ValidationError> {
        let jws = Jws::parse(token)?;
        let header = jws.header.check(LOGOUT_TOKEN_TYP)?;
        let claims = jws.claims;
        let (iss, _aud, exp, _iat) = self.common_claims(&claims)?;
        let jti = required(&claims, "jti", Jti::parse)?;
        let has_event = claims
            .get("events")
            .and_then(Value::as_object)
            .and_then(|events| events.get(BACKCHANNEL_LOGOUT_EVENT))
            .is_some_and(Value::is_object);
        if !has_event {
            return Err(ValidationError::MissingLogoutEvent);
        }
        // §2.6 item 6: a nonce would let a logout token pass as an id token elsewhere.
        if claims.contains_key("nonce") {
            return Err(ValidationError::NonceInLogoutToken);
        }
        let sub = optional_string(&claims, "sub", Subject::parse)?;
        let sid = optional_string(&claims, "sid", SessionId::parse)?;
        if sub.is_none() && sid.is_none() {
            return Err(ValidationError::NoLogoutSubject);
        }
        let key = self.keys.key_for(header.kid()).await?;
        jws.signed.verify_signature(&header, &key)?;
        Ok(LogoutToken {
            iss,
            sub,
            sid,
            jti,
            exp,
        })
    }

    /// `iss` (exact), `aud` (contains the client), `exp` (required, not passed beyond the
    /// leeway) and `iat` (required, neither in the future nor older than the maximum age).
    fn common_claims(
        &self,
        claims: &Map<String, Value>,
    ) -> Result<(Issuer, Vec<Audience>, UnixTime, UnixTime), ValidationError> {
        let issuer = self.keys.issuer();
        if claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
            return Err(match claims.get("iss") {
                Some(Value::String(_)) => ValidationError::WrongIssuer,
                _ => ValidationError::InvalidClaim("iss"),
            });
        }
        let aud = audiences(claims)?;
        if !aud.contains(&self.audience) {
            return Err(ValidationError::WrongAudience);
        }
        let now = self.keys.claims_now();
        let leeway = self.keys.leeway();
        let exp = required_time(claims, "exp")?;
        if now >= exp.plus(leeway) {
            return Err(ValidationError::Expired);
        }
        let iat = required_time(claims, "iat")?;
        if iat > now.plus(leeway) {
            return Err(ValidationError::IssuedInFuture);
        }
        if now.since(iat) > self.max_age.saturating_add(leeway) {
            return Err(ValidationError::IssuedTooLongAgo);
        }
        Ok((issuer.clone(), aud, exp, iat))
    }

    /// Core §3.1.3.7 items 3–5: with several audiences `azp` must be present, and an `azp` must
    /// name this client.
    fn check_authorized_party(
        &self,
        claims: &Map<String, Value>,
        aud: &[Audience],
    ) -> Result<(), ValidationError> {
        match claims.get("azp") {
            None if aud.len() > 1 => Err(ValidationError::WrongAuthorizedParty),
            None => Ok(()),
            Some(Value::String(azp)) if azp == self.client_id.as_str() => Ok(()),
            Some(_) => Err(ValidationError::WrongAuthorizedParty),
        }
    }
}

/// The hash of `at_hash` follows the JWS algorithm (Core §3.1.3.6): SHA-256 for RS256 and
/// ES256, SHA-512 for EdDSA over Ed25519.
fn half_hash(alg: &str) -> Result<HalfHash, ValidationError> {
    match alg {
        "RS256" | "ES256" => Ok(HalfHash::Sha256),
        "EdDSA" => Ok(HalfHash::Sha512),
        _ => Err(ValidationError::DisallowedAlgorithm),
    }
}

fn optional_string<T>(
    claims: &Map<String, Value>,
    name: &'static str,
    parse: impl FnOnce(&str) -> Result<T, keycard_protocol::OAuthError>,
) -> Result<Option<T>, ValidationError> {
    match claims.get(name) {
        None => Ok(None),
        Some(_) => required(claims, name, parse).map(Some),
    }
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests;
