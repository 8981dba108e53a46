//! Token contents: RFC 9068 access-token claims, OIDC Core §2 id-token claims, the RFC 6749
//! §5.1 token response, and OIDC Core §5.3 userinfo claims chosen by scope.
//!
//! Pure construction: the caller supplies `now`, the `jti` and the user's profile.

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::values::{ScopeSet, UnixTime};

/// `aud` as a string or an array (RFC 7519 §4.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Aud {
    One(String),
    Many(Vec<String>),
}

impl Aud {
    pub fn from_vec(mut v: Vec<String>) -> Aud {
        if v.len() == 1 {
            Aud::One(v.remove(0))
        } else {
            Aud::Many(v)
        }
    }

    pub fn contains(&self, a: &str) -> bool {
        match self {
            Aud::One(x) => x == a,
            Aud::Many(v) => v.iter().any(|x| x == a),
        }
    }
}

/// JWT access-token claims (RFC 9068 §2.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Aud,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub auth_time: Option<i64>,
}

/// The user facts a token may carry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    pub sub: String,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub picture: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
}

/// Standard claims released by scope (OIDC Core §5.4).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopedClaims {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

impl ScopedClaims {
    pub fn for_scope(p: &Profile, scope: &ScopeSet) -> Self {
        let profile = scope.contains("profile");
        let email = scope.contains("email");
        ScopedClaims {
            name: p.name.clone().filter(|_| profile),
            given_name: p.given_name.clone().filter(|_| profile),
            family_name: p.family_name.clone().filter(|_| profile),
            picture: p.picture.clone().filter(|_| profile),
            email: p.email.clone().filter(|_| email),
            email_verified: (email && p.email.is_some()).then_some(p.email_verified),
        }
    }
}

/// ID-token claims (OIDC Core §2, §3.1.3.6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub azp: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(flatten)]
    pub claims: ScopedClaims,
}

/// The `/userinfo` response (OIDC Core §5.3.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserinfoResponse {
    pub sub: String,
    #[serde(flatten)]
    pub claims: ScopedClaims,
}

/// The successful token response (RFC 6749 §5.1).
#[derive(Clone, Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
}

/// The hash used for `at_hash` follows the JWS algorithm (OIDC Core §3.1.3.6): SHA-256 for
/// RS256/ES256, SHA-512 for EdDSA (Ed25519).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HalfHash {
    Sha256,
    Sha512,
}

/// `at_hash`: base64url of the left half of the hash of the access token's ASCII bytes.
pub fn at_hash(access_token: &str, alg: HalfHash) -> String {
    let d = match alg {
        HalfHash::Sha256 => digest::digest(&digest::SHA256, access_token.as_bytes()),
        HalfHash::Sha512 => digest::digest(&digest::SHA512, access_token.as_bytes()),
    };
    let bytes = d.as_ref();
    URL_SAFE_NO_PAD.encode(bytes.get(..bytes.len() / 2).unwrap_or(bytes))
}

/// The `jti` of an access token issued from a user grant: the grant id, a dot, a random part.
///
/// Carrying the grant in the `jti` lets introspection find the grant (and so a revocation of
/// its refresh-token family, RFC 7009 §2.1) without a stored row per access token, which cost
/// a write per issued token. The `jti` stays unique (the random part) and opaque to resource
/// servers; grant ids are random and say nothing about the user. Machine tokens have no grant
/// and their `jti` is the random part alone.
pub fn grant_jti(grant_id: &str, random: &str) -> String {
    format!("{grant_id}.{random}")
}

/// The grant id inside a `jti` made by [`grant_jti`], if there is one.
pub fn jti_grant(jti: &str) -> Option<&str> {
    jti.rsplit_once('.')
        .map(|(grant, _)| grant)
        .filter(|g| !g.is_empty())
}

/// Builds access-token claims for a user grant or a machine grant (`sub` = client id, RFC 9068 §2.2).
#[allow(clippy::too_many_arguments)]
pub fn access_token(
    iss: &str,
    sub: &str,
    aud: Vec<String>,
    client_id: &str,
    scope: &ScopeSet,
    jti: String,
    now: UnixTime,
    ttl_secs: i64,
    auth_time: Option<UnixTime>,
) -> AccessTokenClaims {
    AccessTokenClaims {
        iss: iss.to_owned(),
        sub: sub.to_owned(),
        aud: Aud::from_vec(aud),
        exp: now.plus(ttl_secs).secs(),
        iat: now.secs(),
        jti,
        client_id: client_id.to_owned(),
        scope: scope.to_wire(),
        auth_time: auth_time.map(UnixTime::secs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7009_s2_1_grant_is_found_from_the_access_token_jti() {
        let jti = grant_jti("0f1e2d3c", "a1b2");
        assert_eq!(jti, "0f1e2d3c.a1b2");
        assert_eq!(jti_grant(&jti), Some("0f1e2d3c"));
        // Machine tokens and tokens from before grants were carried have no grant.
        assert_eq!(jti_grant("a1b2c3"), None);
        assert_eq!(jti_grant(".a1b2"), None);
    }

    #[test]
    fn oidc_core_s3_1_3_6_at_hash_example() {
        // Expected values computed independently with Python's hashlib and base64.
        assert_eq!(
            at_hash(
                "jHkWEdUXMU1BwAsC4vtUsZwnNEhbuo6T7fVqEHHL1R0",
                HalfHash::Sha256
            ),
            "KuJV8FgxzCLvNf7B0zoZgg"
        );
        assert_eq!(
            at_hash(
                "jHkWEdUXMU1BwAsC4vtUsZwnNEhbuo6T7fVqEHHL1R0",
                HalfHash::Sha512
            )
            .len(),
            43
        );
    }

    #[test]
    fn oidc_core_s5_4_claims_by_scope() {
        let p = Profile {
            sub: "u1".into(),
            name: Some("Alice".into()),
            email: Some("a@example.com".into()),
            email_verified: true,
            ..Profile::default()
        };
        let none = ScopedClaims::for_scope(&p, &ScopeSet::parse("openid").unwrap());
        assert_eq!(none, ScopedClaims::default());
        let email = ScopedClaims::for_scope(&p, &ScopeSet::parse("openid email").unwrap());
        assert_eq!(email.email.as_deref(), Some("a@example.com"));
        assert_eq!(email.email_verified, Some(true));
        assert_eq!(email.name, None);
        let profile = ScopedClaims::for_scope(&p, &ScopeSet::parse("openid profile").unwrap());
        assert_eq!(profile.name.as_deref(), Some("Alice"));
        assert_eq!(profile.email, None);
    }

    #[test]
    fn rfc9068_s2_2_machine_token_claims() {
        let c = access_token(
            "https://id",
            "m2m",
            vec!["https://api".into()],
            "m2m",
            &ScopeSet::parse("read").unwrap(),
            "j".into(),
            UnixTime(10),
            60,
            None,
        );
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["aud"], "https://api");
        assert_eq!(v["exp"], 70);
        assert!(v.get("auth_time").is_none());
    }
}
