//! JWT access tokens (RFC 9068): the claim checks of §4, the required claims of §2.2, and the
//! [`AccessToken`] handed to handlers.
//!
//! [`check_claims`] turns a decoded payload into an [`AccessToken`] or refuses it; [`TYP`] is the
//! `typ` the header must carry (§2.1); [`parse_scope`] splits a `scope` value, for introspection
//! too.
//!
//! No I/O and no clock: `now` and the leeway are parameters. The payload may still be unverified
//! (`jws` parsed it, the signature may come later), so a result is only trusted once the caller
//! has also verified the signature. Times are NumericDates: numbers, never strings.
//!
//! Not here: the JWS structure, header rules and signature (`jws`), keys and the `aud` the
//! resource server requires (`validator`).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::jws::Typ;
use crate::validator::ValidationError;

/// The `typ` of a JWT access token (RFC 9068 §2.1, §4).
pub(crate) const TYP: Typ = Typ::new("at+jwt");

/// A validated RFC 9068 access token: signature, `typ`, `iss`, `aud` and time have been checked.
///
/// Only [`Validator::validate`](crate::Validator::validate) creates one. It holds the claims,
/// never the token string.
#[derive(Clone, Debug)]
pub struct AccessToken {
    pub(crate) iss: String,
    pub(crate) sub: String,
    pub(crate) client_id: String,
    pub(crate) aud: Vec<String>,
    pub(crate) scope: BTreeSet<String>,
    pub(crate) jti: String,
    pub(crate) exp: u64,
    pub(crate) iat: u64,
    pub(crate) auth_time: Option<u64>,
    pub(crate) claims: Map<String, Value>,
}

impl AccessToken {
    /// `iss`: the issuer, equal to the validator's.
    pub fn iss(&self) -> &str {
        &self.iss
    }

    /// `sub`: the resource owner, or the client for client-credentials tokens (RFC 9068 §2.2).
    pub fn sub(&self) -> &str {
        &self.sub
    }

    /// `client_id`: the client the token was issued to (RFC 9068 §2.2).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// `aud`: every audience of the token; one of them is this resource server.
    pub fn aud(&self) -> &[String] {
        &self.aud
    }

    /// `scope`: the granted scopes (RFC 9068 §2.2.3); empty when the claim is absent.
    pub fn scope(&self) -> &BTreeSet<String> {
        &self.scope
    }

    /// Whether `scope` contains this scope token.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.contains(scope)
    }

    /// `jti`: the token's unique identifier.
    pub fn jti(&self) -> &str {
        &self.jti
    }

    /// `exp` in Unix seconds.
    pub fn exp(&self) -> u64 {
        self.exp
    }

    /// `iat` in Unix seconds.
    pub fn iat(&self) -> u64 {
        self.iat
    }

    /// `auth_time` in Unix seconds, when the token carries it.
    pub fn auth_time(&self) -> Option<u64> {
        self.auth_time
    }

    /// All claims, for anything not typed above.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }
}

/// Splits a `scope` value (RFC 6749 §3.3) into its tokens.
pub(crate) fn parse_scope(s: &str) -> BTreeSet<String> {
    s.split(' ')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A NumericDate (RFC 7519 §2): a non-negative JSON number, never a string.
fn numeric(v: &Value) -> Option<u64> {
    if let Some(n) = v.as_u64() {
        return Some(n);
    }
    let f = v.as_f64()?;
    (f.is_finite() && f >= 0.0).then(|| f.floor() as u64)
}

fn required_time(claims: &Map<String, Value>, name: &'static str) -> Result<u64, ValidationError> {
    claims
        .get(name)
        .and_then(numeric)
        .ok_or(ValidationError::InvalidClaim(name))
}

fn optional_time(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<u64>, ValidationError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => numeric(v)
            .map(Some)
            .ok_or(ValidationError::InvalidClaim(name)),
    }
}

fn required_str(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<String, ValidationError> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or(ValidationError::InvalidClaim(name))
}

/// RFC 9068 §4 claim checks and RFC 9068 §2.2 required claims.
pub(crate) fn check_claims(
    claims: Map<String, Value>,
    issuer: &str,
    audience: Option<&str>,
    now: u64,
    leeway: u64,
) -> Result<AccessToken, ValidationError> {
    let iss = required_str(&claims, "iss")?;
    if iss != issuer {
        return Err(ValidationError::WrongIssuer);
    }
    let aud = match claims.get("aud") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or(ValidationError::InvalidClaim("aud"))?,
        _ => return Err(ValidationError::InvalidClaim("aud")),
    };
    if let Some(audience) = audience
        && !aud.iter().any(|a| a == audience)
    {
        return Err(ValidationError::WrongAudience);
    }
    let exp = required_time(&claims, "exp")?;
    if now >= exp.saturating_add(leeway) {
        return Err(ValidationError::Expired);
    }
    if let Some(nbf) = optional_time(&claims, "nbf")?
        && nbf > now.saturating_add(leeway)
    {
        return Err(ValidationError::NotYetValid);
    }
    let iat = required_time(&claims, "iat")?;
    if iat > now.saturating_add(leeway) {
        return Err(ValidationError::IssuedInFuture);
    }
    let auth_time = optional_time(&claims, "auth_time")?;
    let scope = match claims.get("scope") {
        None => Default::default(),
        Some(Value::String(s)) => parse_scope(s),
        Some(_) => return Err(ValidationError::InvalidClaim("scope")),
    };
    Ok(AccessToken {
        iss,
        sub: required_str(&claims, "sub")?,
        client_id: required_str(&claims, "client_id")?,
        jti: required_str(&claims, "jti")?,
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

    pub(crate) const NOW: u64 = 1_700_000_000;

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
            "http://127.0.0.1:8080",
            Some("https://api.example.com"),
            NOW,
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
