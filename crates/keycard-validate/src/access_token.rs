//! JWT access tokens (RFC 9068): the claim checks of §4, the required claims of §2.2, and the
//! [`AccessToken`] handed to handlers.
//!
//! [`check_claims`] turns a decoded payload into an [`AccessToken`] or refuses it; [`TYP`] is the
//! `typ` the header must carry (§2.1). The claim readers (`numeric`, `required`, `audiences`)
//! serve the id-token checks too.
//!
//! No I/O and no clock: `now` and the leeway are parameters. The payload may still be unverified
//! (`jws` parsed it, the signature may come later), so a result is only trusted once the caller
//! has also verified the signature. Times are NumericDates: numbers, never strings.
//!
//! Not here: the JWS structure, header rules and signature (`jws`), keys and the `aud` the
//! resource server requires (`validator`).

use keycard_protocol::{Audience, ClientId, Issuer, Jti, OAuthError, ScopeSet, Subject, UnixTime};
use serde_json::{Map, Value};

use crate::jws::Typ;
use crate::validator::ValidationError;

/// The `typ` of a JWT access token (RFC 9068 §2.1, §4).
pub(crate) const TYP: Typ = Typ::new("at+jwt");

/// A validated RFC 9068 access token: signature, `typ`, `iss`, `aud` and time have been checked.
///
/// Only [`Validator::validate`](crate::Validator::validate) creates one. It holds the claims,
/// typed as the protocol values they are, never the token string.
#[derive(Clone, Debug)]
pub struct AccessToken {
    pub(crate) iss: Issuer,
    pub(crate) sub: Subject,
    pub(crate) client_id: ClientId,
    pub(crate) aud: Vec<Audience>,
    pub(crate) scope: ScopeSet,
    pub(crate) jti: Jti,
    pub(crate) exp: UnixTime,
    pub(crate) iat: UnixTime,
    pub(crate) auth_time: Option<UnixTime>,
    pub(crate) claims: Map<String, Value>,
}

impl AccessToken {
    /// `iss`: the issuer, equal to the validator's.
    pub fn iss(&self) -> &Issuer {
        &self.iss
    }

    /// `sub`: the resource owner, or the client for client-credentials tokens (RFC 9068 §2.2).
    pub fn sub(&self) -> &Subject {
        &self.sub
    }

    /// `client_id`: the client the token was issued to (RFC 9068 §2.2).
    pub fn client_id(&self) -> &ClientId {
        &self.client_id
    }

    /// Whether this is a machine token: issued by client credentials, its subject is the client
    /// itself (RFC 9068 §2.2), so no user is behind it (RFC 9700 §4.15).
    pub fn is_machine(&self) -> bool {
        self.sub.is_client(&self.client_id)
    }

    /// `aud`: every audience of the token; one of them is this resource server.
    pub fn aud(&self) -> &[Audience] {
        &self.aud
    }

    /// `scope`: the granted scopes (RFC 9068 §2.2.3); empty when the claim is absent.
    pub fn scope(&self) -> &ScopeSet {
        &self.scope
    }

    /// Whether `scope` contains this scope token.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.contains(scope)
    }

    /// `jti`: the token's unique identifier.
    pub fn jti(&self) -> &Jti {
        &self.jti
    }

    /// `exp`.
    pub fn exp(&self) -> UnixTime {
        self.exp
    }

    /// `iat`.
    pub fn iat(&self) -> UnixTime {
        self.iat
    }

    /// `auth_time`, when the token carries it.
    pub fn auth_time(&self) -> Option<UnixTime> {
        self.auth_time
    }

    /// All claims, for anything not typed above.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }
}

/// A NumericDate (RFC 7519 §2): a non-negative JSON number, never a string.
pub(crate) fn numeric(v: &Value) -> Option<UnixTime> {
    if let Some(n) = v.as_i64() {
        return (n >= 0).then_some(UnixTime(n));
    }
    let f = v.as_f64()?;
    (f.is_finite() && f >= 0.0 && f < i64::MAX as f64).then(|| UnixTime(f.floor() as i64))
}

pub(crate) fn required_time(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<UnixTime, ValidationError> {
    claims
        .get(name)
        .and_then(numeric)
        .ok_or(ValidationError::InvalidClaim(name))
}

pub(crate) fn optional_time(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<UnixTime>, ValidationError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => numeric(v)
            .map(Some)
            .ok_or(ValidationError::InvalidClaim(name)),
    }
}

/// A string claim parsed into its protocol value; absent, not a string, or not a valid value
/// is [`ValidationError::InvalidClaim`].
pub(crate) fn required<T>(
    claims: &Map<String, Value>,
    name: &'static str,
    parse: impl FnOnce(&str) -> Result<T, OAuthError>,
) -> Result<T, ValidationError> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .and_then(|s| parse(s).ok())
        .ok_or(ValidationError::InvalidClaim(name))
}

/// `aud` as a string or an array of strings (RFC 7519 §4.1.3).
pub(crate) fn audiences(claims: &Map<String, Value>) -> Result<Vec<Audience>, ValidationError> {
    let bad = ValidationError::InvalidClaim("aud");
    match claims.get("aud") {
        Some(Value::String(s)) => Ok(vec![Audience::parse(s).map_err(|_| bad)?]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().and_then(|s| Audience::parse(s).ok()))
            .collect::<Option<Vec<_>>>()
            .ok_or(bad),
        _ => Err(bad),
    }
}

/// RFC 9068 §4 claim checks and RFC 9068 §2.2 required claims.
pub(crate) fn check_claims(
    claims: Map<String, Value>,
    issuer: &Issuer,
    audience: Option<&Audience>,
    now: UnixTime,
    leeway: i64,
) -> Result<AccessToken, ValidationError> {
    // `iss` is compared as the exact string (RFC 8414 §3.3), before it is parsed as a URL.
    if claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
        return Err(match claims.get("iss") {
            Some(Value::String(_)) => ValidationError::WrongIssuer,
            _ => ValidationError::InvalidClaim("iss"),
        });
    }
    let aud = audiences(&claims)?;
    if let Some(audience) = audience
        && !aud.contains(audience)
    {
        return Err(ValidationError::WrongAudience);
    }
    let exp = required_time(&claims, "exp")?;
    if now >= exp.plus(leeway) {
        return Err(ValidationError::Expired);
    }
    if let Some(nbf) = optional_time(&claims, "nbf")?
        && nbf > now.plus(leeway)
    {
        return Err(ValidationError::NotYetValid);
    }
    let iat = required_time(&claims, "iat")?;
    if iat > now.plus(leeway) {
        return Err(ValidationError::IssuedInFuture);
    }
    let auth_time = optional_time(&claims, "auth_time")?;
    let scope = match claims.get("scope") {
        None => ScopeSet::default(),
        Some(Value::String(s)) => {
            ScopeSet::parse(s).map_err(|_| ValidationError::InvalidClaim("scope"))?
        }
        Some(_) => return Err(ValidationError::InvalidClaim("scope")),
    };
    Ok(AccessToken {
        iss: issuer.clone(),
        sub: required(&claims, "sub", Subject::parse)?,
        client_id: required(&claims, "client_id", ClientId::parse)?,
        jti: required(&claims, "jti", Jti::parse)?,
        aud,
        scope,
        exp,
        iat,
        auth_time,
        claims,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const NOW: i64 = 1_700_000_000;

    fn claims(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    /// Claims that pass every check at [`NOW`] for the test validator's issuer and audience.
    pub(crate) fn good() -> Value {
        serde_json::json!({"iss": "http://127.0.0.1:8080", "aud": ["x", "https://api.example.com"],
            "sub": "u", "client_id": "c", "jti": "j", "exp": NOW + 60, "iat": NOW, "scope": "a  b"})
    }

    fn check(v: Value) -> Result<AccessToken, ValidationError> {
        check_claims(
            claims(v),
            &Issuer::from_wire("http://127.0.0.1:8080").unwrap(),
            Some(&Audience::parse("https://api.example.com").unwrap()),
            UnixTime(NOW),
            30,
        )
    }

    #[test]
    fn rfc9068_s4_claim_table() {
        let at = check(good()).unwrap();
        assert_eq!(at.scope().iter().collect::<Vec<_>>(), vec!["a", "b"]);
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "exp string (CVE-2026-25537)",
                serde_json::json!("9999999999"),
                "exp",
            ),
            (
                "exp expired beyond leeway",
                serde_json::json!(NOW - 31),
                "exp",
            ),
            ("iat in the future", serde_json::json!(NOW + 31), "iat"),
            ("iat string", serde_json::json!("1"), "iat"),
            ("nbf in the future", serde_json::json!(NOW + 31), "nbf"),
            ("nbf string", serde_json::json!("1"), "nbf"),
            ("aud number", serde_json::json!(1), "aud"),
            (
                "aud foreign",
                serde_json::json!(["https://other.example.com"]),
                "aud",
            ),
            (
                "iss trailing slash",
                serde_json::json!("http://127.0.0.1:8080/"),
                "iss",
            ),
            ("scope array", serde_json::json!(["a"]), "scope"),
            ("sub missing", Value::Null, "sub"),
        ];
        for (name, value, claim) in cases {
            let mut c = good();
            if value.is_null() {
                c.as_object_mut().unwrap().remove(claim);
            } else {
                c[claim] = value;
            }
            assert!(check(c).is_err(), "{name} was accepted");
        }
        // Within the leeway.
        let mut c = good();
        c["exp"] = serde_json::json!(NOW - 29);
        c["iat"] = serde_json::json!(NOW + 29);
        c["nbf"] = serde_json::json!(NOW + 29);
        assert!(check(c).is_ok());
    }
}
